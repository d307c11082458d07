"""Parsers for ``ip address`` output: the text form (``ip a``) and JSON (``ip -j addr``).

Both forms parse into the same frozen dataclasses, so a test can read either.
Pure: text in, dataclasses out. Each link keeps the raw lines it was read from
(for JSON, the one object it came from, re-serialised compactly).

Schema::

    AddrList
      links: (Link, ...)                    # in the order ip printed them
      accessors: link(name), owner(ip), has_address(ip), addresses()
    Link
      index: int                            # 8 in "8: eth0@if9: ..."
      name: str                             # "eth0"
      link: str | None                      # "if9" / "veth-a": the part after "@"
      flags: (str, ...)                     # ("BROADCAST", "MULTICAST", "UP", "LOWER_UP")
      mtu: int | None
      qdisc, master, state, group: str | None
      qlen: int | None
      link_type: str | None                 # "ether", "loopback", "none", ...
      mac, brd: str | None                  # link-layer address and broadcast
      link_netnsid: int | None
      altnames: (str, ...)
      addresses: (Address, ...)
      raw: (str, ...)
      accessors: is_up (UP flag), lower_up, inet(), inet6()
    Address
      family: "inet" | "inet6"
      local: str                            # the address itself: "10.96.0.10"
      prefixlen: int
      peer: str | None                      # "10.250.0.2" in "inet A peer B/32"
      broadcast: str | None
      scope: str | None                     # "global", "host", "link"
      label: str | None                     # "kl-br0:svc"; IPv4 only
      flags: (str, ...)                     # "secondary", "dynamic", "noprefixroute", ...
      protocol: str | None                  # "kernel_ll", "kernel_lo"
      valid_lft, preferred_lft: int | None  # seconds; None means "forever"
      raw: (str, ...)
      accessors: cidr ("10.96.0.10/32"), interface (ipaddress.ip_interface)

Example::

    >>> addrs = parse_ip_addr('''\\
    ... 1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    ...     link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    ...     inet 10.96.0.10/32 scope global lo
    ...        valid_lft forever preferred_lft forever
    ... ''')
    >>> lo = addrs.link("lo")
    >>> lo.is_up, lo.mtu, lo.addresses[0].cidr, lo.addresses[0].valid_lft
    (True, 65536, '10.96.0.10/32', None)
    >>> addrs.owner("10.96.0.10").name
    'lo'

Errors raise :class:`kindlab.errors.ParseError` naming the line and what was
expected: text that does not start with a link line (``Device "x" does not
exist.``), an address before any link, a lifetime line without its address,
malformed numbers, JSON that is not a list of link objects.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kindlab.errors import ParseError

__all__ = [
    "AddrList",
    "Address",
    "Link",
    "parse_ip_addr",
    "parse_ip_addr_json",
]

TOOL = "ip addr"
TOOL_JSON = "ip -j addr"

# ip prints this for a lifetime of "forever" in JSON (INFINITY_LIFE_TIME).
_FOREVER = 0xFFFFFFFF

_LINK_RE = re.compile(
    r"^(?P<index>\d+):\s+(?P<name>[^:@\s]+)(?:@(?P<link>[^:\s]+))?:\s+<(?P<flags>[^>]*)>(?P<rest>.*)$"
)
_LINK_KEYS = {"mtu", "qdisc", "master", "state", "mode", "group", "qlen", "link-netnsid"}
_LINK_INT_KEYS = {"mtu", "qlen", "link-netnsid"}
# Keys of an "inet ..." line that take one value; everything else after "scope"
# is either a flag word or (IPv4 only) the label, which ip prints last.
_ADDR_VALUE_KEYS = {"peer", "brd", "scope", "proto", "metric", "any"}
_ADDR_FLAGS = {
    "secondary",
    "temporary",
    "tentative",
    "deprecated",
    "dadfailed",
    "dynamic",
    "noprefixroute",
    "home",
    "nodad",
    "optimistic",
    "mngtmpaddr",
    "stable-privacy",
    "autojoin",
    "permanent",
}
_LIFETIME_RE = re.compile(r"^valid_lft\s+(\S+)\s+preferred_lft\s+(\S+)$")


@dataclass(frozen=True, slots=True)
class Address:
    """One protocol address of a link."""

    family: str
    local: str
    prefixlen: int
    peer: str | None = None
    broadcast: str | None = None
    scope: str | None = None
    label: str | None = None
    flags: tuple[str, ...] = ()
    protocol: str | None = None
    valid_lft: int | None = None
    preferred_lft: int | None = None
    raw: tuple[str, ...] = field(default=(), compare=False)

    @property
    def cidr(self) -> str:
        return f"{self.local}/{self.prefixlen}"

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.cidr)


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface and its addresses."""

    index: int
    name: str
    link: str | None = None
    flags: tuple[str, ...] = ()
    mtu: int | None = None
    qdisc: str | None = None
    master: str | None = None
    state: str | None = None
    group: str | None = None
    qlen: int | None = None
    link_type: str | None = None
    mac: str | None = None
    brd: str | None = None
    link_netnsid: int | None = None
    altnames: tuple[str, ...] = ()
    addresses: tuple[Address, ...] = ()
    raw: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_up(self) -> bool:
        """The administrative UP flag (``ip link set X up``)."""
        return "UP" in self.flags

    @property
    def lower_up(self) -> bool:
        """The carrier flag: the link below is up too."""
        return "LOWER_UP" in self.flags

    def inet(self) -> tuple[Address, ...]:
        return tuple(a for a in self.addresses if a.family == "inet")

    def inet6(self) -> tuple[Address, ...]:
        return tuple(a for a in self.addresses if a.family == "inet6")


@dataclass(frozen=True, slots=True)
class AddrList:
    """Everything one ``ip address`` call printed."""

    links: tuple[Link, ...]

    def __iter__(self) -> Iterator[Link]:
        return iter(self.links)

    def __len__(self) -> int:
        return len(self.links)

    def link(self, name: str) -> Link:
        """The link called ``name``; KeyError names the links there are."""
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(f"no link {name!r}; links: {', '.join(lk.name for lk in self.links)}")

    def addresses(self) -> tuple[tuple[Link, Address], ...]:
        return tuple((link, a) for link in self.links for a in link.addresses)

    def owner(self, ip: str) -> Link | None:
        """The link that has ``ip`` as a local address, or None."""
        want = ipaddress.ip_address(ip)
        for link, a in self.addresses():
            if ipaddress.ip_address(a.local) == want:
                return link
        return None

    def has_address(self, ip: str) -> bool:
        return self.owner(ip) is not None


# -- text ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _LinkBuilder:
    fields: dict[str, Any]
    raw: list[str]
    addresses: list[Address] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    pending_raw: list[str] = field(default_factory=list)

    def flush_address(self) -> None:
        if self.pending is not None:
            self.addresses.append(Address(**self.pending, raw=tuple(self.pending_raw)))
        self.pending = None
        self.pending_raw = []

    def build(self) -> Link:
        self.flush_address()
        return Link(**self.fields, addresses=tuple(self.addresses), raw=tuple(self.raw))


def parse_ip_addr(text: str) -> AddrList:
    """Parse the text of ``ip address`` / ``ip a`` / ``ip addr show dev X``."""
    links: list[Link] = []
    current: _LinkBuilder | None = None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if not line[0].isspace():
            if current is not None:
                links.append(current.build())
            current = _LinkBuilder(_parse_link_line(line, line_no), [line])
            continue
        if current is None:
            raise ParseError(TOOL, line_no, line, "a link line first ('N: NAME: <FLAGS> ...')")
        current.raw.append(line)
        words = line.split()
        head = words[0]
        if head.startswith("link/"):
            current.fields.update(_parse_link_layer(words, line_no, line))
        elif head == "altname":
            current.fields["altnames"] = (*current.fields.get("altnames", ()), *words[1:])
        elif head in ("inet", "inet6"):
            current.flush_address()
            current.pending = _parse_address_line(words, line_no, line)
            current.pending_raw = [line]
        elif head == "valid_lft":
            if current.pending is None:
                raise ParseError(TOOL, line_no, line, "an inet/inet6 line before its lifetimes")
            valid, preferred = _parse_lifetimes(line.strip(), line_no, line)
            current.pending["valid_lft"] = valid
            current.pending["preferred_lft"] = preferred
            current.pending_raw.append(line)
        else:
            # Detail lines (-d: "vrf_slave", "bridge_slave", "veth", ...) add nothing the
            # lab reads; keeping them in raw is enough.
            continue
    if current is not None:
        links.append(current.build())
    return AddrList(tuple(links))


def _parse_link_line(line: str, line_no: int) -> dict[str, Any]:
    m = _LINK_RE.match(line)
    if m is None:
        raise ParseError(TOOL, line_no, line, "a link line 'N: NAME[@LINK]: <FLAGS> mtu ...'")
    out: dict[str, Any] = {
        "index": int(m["index"]),
        "name": m["name"],
        "link": m["link"],
        "flags": tuple(f for f in m["flags"].split(",") if f),
    }
    words = m["rest"].split()
    i = 0
    while i < len(words):
        key = words[i]
        if key in _LINK_KEYS:
            if i + 1 >= len(words):
                raise ParseError(TOOL, line_no, line, f"a value after {key!r}")
            value = words[i + 1]
            name = key.replace("-", "_")
            if key in _LINK_INT_KEYS:
                out[name] = _int(value, line_no, line, key)
            elif key != "mode":
                out[name] = value
            i += 2
        else:
            i += 1
    return out


def _parse_link_layer(words: list[str], line_no: int, line: str) -> dict[str, Any]:
    out: dict[str, Any] = {"link_type": words[0].removeprefix("link/")}
    rest = words[1:]
    if rest and rest[0] not in ("brd", "link-netnsid", "permaddr"):
        out["mac"] = rest[0]
        rest = rest[1:]
    for key, value in zip(rest[::2], rest[1::2], strict=False):
        if key == "brd":
            out["brd"] = value
        elif key == "link-netnsid":
            out["link_netnsid"] = _int(value, line_no, line, key)
    return out


def _parse_address_line(words: list[str], line_no: int, line: str) -> dict[str, Any]:
    family = words[0]
    if len(words) < 2:
        raise ParseError(TOOL, line_no, line, f"an address after {family!r}")
    out: dict[str, Any] = {"family": family}
    local, _, plen = words[1].partition("/")
    out["local"] = local
    prefix: str | None = plen or None
    flags: list[str] = []
    i = 2
    while i < len(words):
        word = words[i]
        if word in _ADDR_VALUE_KEYS:
            if i + 1 >= len(words):
                raise ParseError(TOOL, line_no, line, f"a value after {word!r}")
            value = words[i + 1]
            if word == "peer":
                peer, _, peer_plen = value.partition("/")
                out["peer"] = peer
                prefix = peer_plen or prefix
            elif word == "brd":
                out["broadcast"] = value
            elif word == "scope":
                out["scope"] = value
            elif word == "proto":
                out["protocol"] = value
            i += 2
        else:
            flags.append(word)
            i += 1
    # ip prints an IPv4 label after the flag words, so the last word that is not a
    # known flag is the label; a flag newer than this parser stays a flag.
    if family == "inet" and flags:
        unknown = [w for w in flags if w not in _ADDR_FLAGS]
        if unknown:
            out["label"] = unknown[-1]
            flags.remove(unknown[-1])
    if prefix is None:
        raise ParseError(TOOL, line_no, line, "an address with its prefix length 'A/N'")
    out["prefixlen"] = _int(prefix, line_no, line, "prefix length")
    out["flags"] = tuple(flags)
    return out


def _parse_lifetimes(text: str, line_no: int, line: str) -> tuple[int | None, int | None]:
    m = _LIFETIME_RE.match(text)
    if m is None:
        raise ParseError(TOOL, line_no, line, "'valid_lft T preferred_lft T'")
    return _lifetime(m[1], line_no, line), _lifetime(m[2], line_no, line)


def _lifetime(value: str, line_no: int, line: str) -> int | None:
    if value == "forever":
        return None
    return _int(value.removesuffix("sec"), line_no, line, "lifetime in seconds")


def _int(value: str, line_no: int, line: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ParseError(TOOL, line_no, line, f"an integer {what}, not {value!r}") from None


# -- JSON ---------------------------------------------------------------------------------


def parse_ip_addr_json(text: str) -> AddrList:
    """Parse the output of ``ip -j addr`` (or ``ip -j addr show dev X``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        lines = text.splitlines() or [""]
        bad = lines[min(e.lineno, len(lines)) - 1]
        raise ParseError(TOOL_JSON, e.lineno, bad, f"JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise ParseError(TOOL_JSON, 1, text[:200], "a JSON list of link objects")
    links: list[Link] = []
    for pos, obj in enumerate(data, start=1):
        raw = json.dumps(obj, separators=(",", ":"))
        # JSON output is one line; the "line" an error names is the link's position.
        if not isinstance(obj, dict) or "ifindex" not in obj or "ifname" not in obj:
            raise ParseError(TOOL_JSON, pos, raw, "a link object with 'ifindex' and 'ifname'")
        links.append(_link_from_json(obj, pos, raw))
    return AddrList(tuple(links))


def _link_from_json(obj: dict[str, Any], pos: int, raw: str) -> Link:
    link = obj.get("link")
    if link is None and "link_index" in obj:
        # Text prints "eth0@if9" for a peer in another namespace; JSON gives only the index.
        link = f"if{obj['link_index']}"
    addresses = tuple(_address_from_json(a, pos, raw) for a in obj.get("addr_info", ()))
    return Link(
        index=_json_int(obj["ifindex"], pos, raw, "ifindex"),
        name=str(obj["ifname"]),
        link=link,
        flags=tuple(obj.get("flags", ())),
        mtu=obj.get("mtu"),
        qdisc=obj.get("qdisc"),
        master=obj.get("master"),
        state=obj.get("operstate"),
        group=obj.get("group"),
        qlen=obj.get("txqlen"),
        link_type=obj.get("link_type"),
        mac=obj.get("address"),
        brd=obj.get("broadcast"),
        link_netnsid=obj.get("link_netnsid"),
        altnames=tuple(obj.get("altnames", ())),
        addresses=addresses,
        raw=(raw,),
    )


_JSON_ADDR_KEYS = {
    "family",
    "local",
    "address",
    "prefixlen",
    "broadcast",
    "scope",
    "label",
    "protocol",
    "valid_life_time",
    "preferred_life_time",
    "metric",
}


def _address_from_json(a: Any, pos: int, raw: str) -> Address:
    if not isinstance(a, dict) or "local" not in a or "prefixlen" not in a:
        raise ParseError(TOOL_JSON, pos, raw, "addr_info entries with 'local' and 'prefixlen'")
    family = str(a.get("family", ""))
    # The text form shows the label only for IPv4; keep both forms equal.
    label = a.get("label") if family == "inet" else None
    flags = tuple(k for k, v in a.items() if k not in _JSON_ADDR_KEYS and v is True)
    return Address(
        family=family,
        local=str(a["local"]),
        prefixlen=_json_int(a["prefixlen"], pos, raw, "prefixlen"),
        peer=a.get("address"),
        broadcast=a.get("broadcast"),
        scope=a.get("scope"),
        label=label,
        flags=flags,
        protocol=a.get("protocol"),
        valid_lft=_json_lifetime(a.get("valid_life_time")),
        preferred_lft=_json_lifetime(a.get("preferred_life_time")),
        raw=(json.dumps(a, separators=(",", ":")),),
    )


def _json_lifetime(value: Any) -> int | None:
    if value is None or value == _FOREVER:
        return None
    return int(value)


def _json_int(value: Any, pos: int, raw: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(TOOL_JSON, pos, raw, f"an integer {what}, not {value!r}")
    return value
