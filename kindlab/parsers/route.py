"""Parser for ``ip route get ADDRESS`` output.

Pure: text in, a frozen dataclass out, raw lines kept. The kernel's answer to a
destination it cannot reach is an error, not a route ("RTNETLINK answers: No
route to host"); that parses too, into a result with ``error`` set, because the
lab wants to show it rather than crash on it.

Schema::

    RouteGet
      type: str | None          # "unicast" (unprinted), "local", "broadcast", "multicast",
                                # ...; None when the kernel answered an error
      dst: str | None           # "10.96.0.10"; None when the kernel answered an error
      via: str | None           # gateway: "172.17.0.1" (or "inet6 fe80::1" via another family)
      dev: str | None           # "eth0"
      src: str | None           # preferred source address
      from_addr: str | None     # "from X" given or chosen
      table, proto, pref, scope: str | None
      metric: int | None
      mark: str | None          # "0x4000" as printed
      uid: int | None
      flags: (str, ...)         # bare words on the route line: "onlink", "rt_offload_failed", ...
      cached: bool              # a "cache" line followed
      cache_flags: (str, ...)   # "cache <local,brd>" -> ("local", "brd")
      attrs: ((key, value), ...)  # any other "key value" pair, e.g. ("expires", "297sec")
      error: str | None         # "No route to host" from "RTNETLINK answers: ..."
      raw: (str, ...)
      accessors: reachable, is_local,
                 error_route_type  # the route type behind an error: "No route to host" ->
                                   # "unreachable", "Permission denied" -> "prohibit",
                                   # "Invalid argument" -> "blackhole"; None otherwise

Example::

    >>> r = parse_route_get('''10.99.1.1 via 172.17.0.1 dev eth0 src 172.17.0.2 uid 0
    ...     cache ''')
    >>> r.type, r.dst, r.via, r.dev, r.src, r.uid, r.reachable
    ('unicast', '10.99.1.1', '172.17.0.1', 'eth0', '172.17.0.2', 0, True)
    >>> parse_route_get("RTNETLINK answers: Network is unreachable").error
    'Network is unreachable'

Errors raise :class:`kindlab.errors.ParseError` naming the line and what was
expected: empty output, ``Error: ...`` usage messages from ``ip``, a second route
line, a key without its value, a non-numeric metric or uid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kindlab.errors import ParseError

__all__ = ["RouteGet", "parse_route_get"]

TOOL = "ip route get"

ROUTE_TYPES = frozenset(
    {
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "unreachable",
        "prohibit",
        "blackhole",
        "throw",
        "nat",
        "anycast",
    }
)
_UNREACHABLE_TYPES = frozenset({"unreachable", "prohibit", "blackhole", "throw"})
# The kernel answers a lookup that lands on a reject route with that route's errno
# (fib_props in net/ipv4/fib_semantics.c); "Network is unreachable" means no route
# matched at all, so it names no route type.
_ERROR_ROUTE_TYPES = {
    "No route to host": "unreachable",
    "Permission denied": "prohibit",
    "Invalid argument": "blackhole",
}

# Keys that ip prints followed by one value, on the route line or the cache line.
_VALUE_KEYS = frozenset(
    {
        "via",
        "dev",
        "src",
        "from",
        "table",
        "proto",
        "scope",
        "metric",
        "mark",
        "uid",
        "pref",
        "error",
        "expires",
        "mtu",
        "advmss",
        "rtt",
        "rttvar",
        "ssthresh",
        "cwnd",
        "initcwnd",
        "initrwnd",
        "hoplimit",
        "reordering",
        "iif",
        "oif",
        "tos",
        "dsfield",
        "realm",
        "realms",
        "nhid",
        "ipproto",
        "sport",
        "dport",
        "users",
        "age",
        "ipid",
        "used",
        "quickack",
        "features",
        "fastopen_no_cookie",
        "congctl",
        "rto_min",
        "lock",
    }
)
_NAMED_FIELDS = frozenset({"via", "dev", "src", "from", "table", "proto", "scope", "pref"})


@dataclass(frozen=True, slots=True)
class RouteGet:
    """The route the kernel picked for one destination (or the error it gave)."""

    type: str | None = "unicast"
    dst: str | None = None
    via: str | None = None
    dev: str | None = None
    src: str | None = None
    from_addr: str | None = None
    table: str | None = None
    proto: str | None = None
    scope: str | None = None
    pref: str | None = None
    metric: int | None = None
    mark: str | None = None
    uid: int | None = None
    flags: tuple[str, ...] = ()
    cached: bool = False
    cache_flags: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    raw: tuple[str, ...] = field(default=(), compare=False)

    @property
    def reachable(self) -> bool:
        """The kernel would send the packet somewhere (not an error, not a reject route)."""
        return self.error is None and self.type not in _UNREACHABLE_TYPES

    @property
    def is_local(self) -> bool:
        """The destination is an address of this host (network namespace)."""
        return self.type == "local"

    @property
    def error_route_type(self) -> str | None:
        """The kind of route that produced ``error``, when the errno tells."""
        return _ERROR_ROUTE_TYPES.get(self.error or "")


def parse_route_get(text: str) -> RouteGet:
    """Parse the output of one ``ip route get`` call."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ParseError(TOOL, 1, text, "a route line or 'RTNETLINK answers: ...'")
    raw = tuple(line for _, line in lines)
    first_no, first = lines[0]
    if first.startswith("RTNETLINK answers:"):
        if len(lines) > 1:
            raise ParseError(TOOL, lines[1][0], lines[1][1], "nothing after the RTNETLINK error")
        return RouteGet(type=None, error=first.removeprefix("RTNETLINK answers:").strip(), raw=raw)
    if first[0].isspace() or first.startswith("Error:"):
        raise ParseError(TOOL, first_no, first, "a route line 'DST [via GW] dev DEV ...'")

    words = first.split()
    rtype = "unicast"
    if words[0] in ROUTE_TYPES:
        rtype, words = words[0], words[1:]
    if not words:
        raise ParseError(TOOL, first_no, first, "a destination after the route type")
    fields: dict[str, str] = {}
    flags: list[str] = []
    attrs: list[tuple[str, str]] = []
    _read_pairs(words[1:], fields, flags, attrs, first_no, first)

    cached = False
    cache_flags: tuple[str, ...] = ()
    for line_no, line in lines[1:]:
        if not line[0].isspace():
            raise ParseError(TOOL, line_no, line, "one route only (continuation lines indented)")
        rest = line.split()
        if rest[0] == "cache":
            cached = True
            rest = rest[1:]
            if rest and rest[0].startswith("<") and rest[0].endswith(">"):
                cache_flags = tuple(f for f in rest[0][1:-1].split(",") if f)
                rest = rest[1:]
        _read_pairs(rest, fields, flags, attrs, line_no, line)

    return RouteGet(
        type=rtype,
        dst=words[0],
        via=fields.get("via"),
        dev=fields.get("dev"),
        src=fields.get("src"),
        from_addr=fields.get("from"),
        table=fields.get("table"),
        proto=fields.get("proto"),
        scope=fields.get("scope"),
        pref=fields.get("pref"),
        metric=_int_field(fields, "metric", first_no, first),
        mark=fields.get("mark"),
        uid=_int_field(fields, "uid", first_no, first),
        flags=tuple(flags),
        cached=cached,
        cache_flags=cache_flags,
        attrs=tuple(attrs),
        error=None,
        raw=raw,
    )


def _read_pairs(
    words: list[str],
    fields: dict[str, str],
    flags: list[str],
    attrs: list[tuple[str, str]],
    line_no: int,
    line: str,
) -> None:
    i = 0
    while i < len(words):
        key = words[i]
        if key not in _VALUE_KEYS:
            flags.append(key)
            i += 1
            continue
        if i + 1 >= len(words):
            raise ParseError(TOOL, line_no, line, f"a value after {key!r}")
        value = words[i + 1]
        i += 2
        if key == "via" and value in ("inet", "inet6") and i < len(words):
            # "via inet6 fe80::1": a gateway of the other family (RFC 5549).
            value = f"{value} {words[i]}"
            i += 1
        if key in _NAMED_FIELDS or key in ("metric", "mark", "uid"):
            fields[key] = value
        else:
            attrs.append((key, value))


def _int_field(fields: dict[str, str], key: str, line_no: int, line: str) -> int | None:
    value = fields.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ParseError(TOOL, line_no, line, f"an integer after {key!r}, not {value!r}") from None
