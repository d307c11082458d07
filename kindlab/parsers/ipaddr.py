"""Parser for ``ip -j address`` output (iproute2's JSON).

Pure: text in, frozen dataclasses out. Each link and address keeps, as its raw
form, the one JSON object it came from, re-serialised compactly.

Schema::

    AddrList
      links: (Link, ...)                    # in the order ip printed them
      accessors: link(name), owner(ip), addresses()
    Link
      index: int                            # "ifindex"
      name: str                             # "eth0"
      link: str | None                      # "veth-a", or "if9" for a peer in another netns
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
      accessors: inet()
    Address
      family: "inet" | "inet6"
      local: str                            # the address itself: "10.96.0.10"
      prefixlen: int
      peer: str | None                      # "10.250.0.2" of "inet A peer B/32"
      broadcast: str | None
      scope: str | None                     # "global", "host", "link"
      label: str | None                     # "kl-br0:svc"; IPv4 only
      flags: (str, ...)                     # "secondary", "dynamic", "noprefixroute", ...
      protocol: str | None                  # "kernel_ll", "kernel_lo"
      valid_lft, preferred_lft: int | None  # seconds; None means "forever"
      raw: (str, ...)

Example::

    >>> addrs = parse_ip_addr_json(
    ...     '[{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"],'
    ...     ' "mtu": 65536, "addr_info": [{"family": "inet", "local": "10.96.0.10",'
    ...     ' "prefixlen": 32, "scope": "global", "label": "lo",'
    ...     ' "valid_life_time": 4294967295, "preferred_life_time": 4294967295}]}]'
    ... )
    >>> lo = addrs.link("lo")
    >>> a = lo.addresses[0]
    >>> lo.flags, lo.mtu, a.local, a.prefixlen, a.valid_lft
    (('LOOPBACK', 'UP', 'LOWER_UP'), 65536, '10.96.0.10', 32, None)
    >>> addrs.owner("10.96.0.10").name
    'lo'

Errors raise :class:`kindlab.errors.ParseError` naming what was expected: output
that is not JSON (``Device "x" does not exist.``), not a list of link objects, a
link without ``ifindex`` and ``ifname``, an address without ``local`` and
``prefixlen``, a number that is not one. JSON output is one line, so the "line"
an error names is the link's position in the list.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kindlab.errors import ParseError

__all__ = [
    "AddrList",
    "Address",
    "Link",
    "parse_ip_addr_json",
]

TOOL = "ip -j addr"

# ip prints this for a lifetime of "forever" in JSON (INFINITY_LIFE_TIME).
_FOREVER = 0xFFFFFFFF


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

    def inet(self) -> tuple[Address, ...]:
        return tuple(a for a in self.addresses if a.family == "inet")


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


def parse_ip_addr_json(text: str) -> AddrList:
    """Parse the output of ``ip -j addr`` (or ``ip -j addr show dev X``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        lines = text.splitlines() or [""]
        bad = lines[min(e.lineno, len(lines)) - 1]
        raise ParseError(TOOL, e.lineno, bad, f"JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise ParseError(TOOL, 1, text[:200], "a JSON list of link objects")
    links: list[Link] = []
    for pos, obj in enumerate(data, start=1):
        raw = json.dumps(obj, separators=(",", ":"))
        # JSON output is one line; the "line" an error names is the link's position.
        if not isinstance(obj, dict) or "ifindex" not in obj or "ifname" not in obj:
            raise ParseError(TOOL, pos, raw, "a link object with 'ifindex' and 'ifname'")
        links.append(_link_from_json(obj, pos, raw))
    return AddrList(tuple(links))


def _link_from_json(obj: dict[str, Any], pos: int, raw: str) -> Link:
    link = obj.get("link")
    if link is None and "link_index" in obj:
        # A peer in another namespace: ip's text form prints "eth0@if9"; JSON has the index.
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
        raise ParseError(TOOL, pos, raw, "addr_info entries with 'local' and 'prefixlen'")
    family = str(a.get("family", ""))
    # A label is an IPv4 address's (an alias such as "kl-br0:svc"); IPv6 has none.
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
        raise ParseError(TOOL, pos, raw, f"an integer {what}, not {value!r}")
    return value
