"""Parser for ``ipvsadm -Ln`` (also ``--stats`` and ``--rate``), and "no IPVS" detection.

Pure: text in, frozen dataclasses out, raw lines kept. kube-proxy's ipvs mode
programs one virtual service per ClusterIP:port and one real server per
endpoint; this reads that table back.

On a kernel without IP_VS, ``ipvsadm`` prints no table but an error (see
:func:`ipvs_unavailable_reason`); :func:`parse_ipvsadm` refuses that output
with a ParseError that says so.

Schema::

    IpvsTable
      version: str | None                   # "1.2.1": "IP Virtual Server version 1.2.1 (size=4096)"
      size: int | None                      # connection hash table size
      columns: str                          # "list" | "stats" | "rate"
      services: (VirtualService, ...)
      raw: (str, ...)                       # the header lines
      accessors: service(address, port, protocol="TCP")
    VirtualService
      protocol: "TCP" | "UDP" | "SCTP" | "FWM"
      address: str | None                   # "10.96.0.10", "fd00:10:96::a"; None for FWM
      port: int | None                      # None for FWM
      fwmark: int | None
      scheduler: str | None                 # "rr", "wrr", "sh"...; None with --stats/--rate
      scheduler_flags: (str, ...)           # "sh (sh-port)" -> ("sh-port",)
      persistent: int | None                # seconds; kube-proxy's sessionAffinity: ClientIP
      netmask: str | None                   # persistence mask ("mask X")
      options: (str, ...)                   # other words: "ops", "pe sip" ...
      counters: IpvsCounters | None         # with --stats
      rates: IpvsRates | None               # with --rate
      real_servers: (RealServer, ...)
      raw: str
      accessors: key ("TCP 10.96.0.10:80"), endpoints ("10.244.0.5:8080", ...)
    RealServer
      address: str, port: int
      forward: str | None                   # "Masq" (kube-proxy), "Route", "Tunnel", "Local"
      weight, active_conns, inactive_conns: int | None   # None with --stats/--rate
      counters: IpvsCounters | None
      rates: IpvsRates | None
      raw: str
      accessors: endpoint ("10.244.0.5:8080", "[fd00::5]:8080")
    IpvsCounters: conns, in_packets, out_packets, in_bytes, out_bytes (ints; "12K" read as 12000)
    IpvsRates:    cps, in_pps, out_pps, in_bps, out_bps

Example::

    >>> t = parse_ipvsadm('''IP Virtual Server version 1.2.1 (size=4096)
    ... Prot LocalAddress:Port Scheduler Flags
    ...   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
    ... TCP  10.96.0.10:80 rr
    ...   -> 10.244.0.5:8080              Masq    1      0          0
    ... ''')
    >>> svc = t.service("10.96.0.10", 80)
    >>> svc.scheduler, svc.endpoints, svc.real_servers[0].forward
    ('rr', ('10.244.0.5:8080',), 'Masq')
    >>> ipvs_unavailable_reason("Can't initialize ipvs: Protocol not available")[:30]
    'the kernel lacks IP_VS (IPVS),'

Errors raise :class:`kindlab.errors.ParseError` naming the line and what was
expected: output without the column header (such as "No such service", or the
no-IPVS error, whose message then says the kernel lacks IP_VS), a real server
before any service, a service line that does not read, a bad count.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from kindlab.errors import ParseError

__all__ = [
    "IpvsCounters",
    "IpvsRates",
    "IpvsTable",
    "RealServer",
    "VirtualService",
    "ipvs_unavailable_reason",
    "parse_ipvsadm",
]

TOOL = "ipvsadm"

_VERSION_RE = re.compile(r"^IP Virtual Server version (?P<version>\S+) \(size=(?P<size>\d+)\)$")
_SERVICE_RE = re.compile(r"^(?P<proto>TCP|UDP|SCTP|FWM)\s+(?P<where>\S+)(?P<rest>.*)$")
_REAL_RE = re.compile(r"^->\s+(?P<where>\S+)(?P<rest>.*)$")
_COUNT_RE = re.compile(r"^(?P<n>\d+)(?P<unit>[KMGT]?)$")
_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}

# What ipvsadm (and modprobe, which it runs first) print on a kernel without IP_VS.
_NO_IPVS_MARKERS = (
    "Can't initialize ipvs",
    "Are you sure that IP Virtual Server is built in the kernel or as module?",
    "Module ip_vs not found",
)


@dataclass(frozen=True, slots=True)
class IpvsCounters:
    """Totals since the service was created (``--stats``)."""

    conns: int
    in_packets: int
    out_packets: int
    in_bytes: int
    out_bytes: int


@dataclass(frozen=True, slots=True)
class IpvsRates:
    """Per-second rates (``--rate``)."""

    cps: int
    in_pps: int
    out_pps: int
    in_bps: int
    out_bps: int


@dataclass(frozen=True, slots=True)
class RealServer:
    """One backend of a virtual service: a kube-proxy endpoint."""

    address: str
    port: int
    forward: str | None = None
    weight: int | None = None
    active_conns: int | None = None
    inactive_conns: int | None = None
    counters: IpvsCounters | None = None
    rates: IpvsRates | None = None
    raw: str = field(default="", compare=False)

    @property
    def endpoint(self) -> str:
        return _join(self.address, self.port)


@dataclass(frozen=True, slots=True)
class VirtualService:
    """One virtual service: a ClusterIP (NodePort, ...) and port, or a firewall mark."""

    protocol: str
    address: str | None
    port: int | None
    fwmark: int | None = None
    scheduler: str | None = None
    scheduler_flags: tuple[str, ...] = ()
    persistent: int | None = None
    netmask: str | None = None
    options: tuple[str, ...] = ()
    counters: IpvsCounters | None = None
    rates: IpvsRates | None = None
    real_servers: tuple[RealServer, ...] = ()
    raw: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        if self.address is None or self.port is None:
            return f"FWM {self.fwmark}"
        return f"{self.protocol} {_join(self.address, self.port)}"

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(rs.endpoint for rs in self.real_servers)


@dataclass(frozen=True, slots=True)
class IpvsTable:
    """The whole table one ``ipvsadm -L -n`` call printed."""

    version: str | None
    size: int | None
    columns: str
    services: tuple[VirtualService, ...]
    raw: tuple[str, ...] = field(default=(), compare=False)

    def service(self, address: str, port: int, protocol: str = "TCP") -> VirtualService | None:
        want = ipaddress.ip_address(address)
        for svc in self.services:
            if (
                svc.protocol == protocol.upper()
                and svc.port == port
                and svc.address is not None
                and ipaddress.ip_address(svc.address) == want
            ):
                return svc
        return None


def ipvs_unavailable_reason(output: str) -> str | None:
    """Why ipvsadm printed no table, when its output says the kernel has no IP_VS.

    Returns one sentence quoting ipvsadm, or None when the output shows no such
    error (a table, or some other failure).
    """
    lines = [line.strip() for line in output.splitlines()]
    # Quote ipvsadm's own words first; modprobe's line only says where it looked.
    for marker in _NO_IPVS_MARKERS:
        for line in lines:
            if marker in line:
                return (
                    f"the kernel lacks IP_VS (IPVS), so kube-proxy's ipvs mode cannot run: {line}"
                )
    return None


def parse_ipvsadm(text: str) -> IpvsTable:
    """Parse ``ipvsadm -Ln``, ``ipvsadm -Ln --stats`` or ``ipvsadm -Ln --rate``."""
    version: str | None = None
    size: int | None = None
    columns: str | None = None
    header: list[str] = []
    services: list[VirtualService] = []
    reals: list[RealServer] = []
    current: VirtualService | None = None

    def close() -> None:
        nonlocal current
        if current is not None:
            services.append(replace(current, real_servers=tuple(reals)))
        current = None
        reals.clear()

    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if m := _VERSION_RE.match(stripped):
            version, size = m["version"], int(m["size"])
            header.append(line)
        elif stripped.startswith("Prot LocalAddress:Port"):
            columns = _columns(stripped, line_no, line)
            header.append(line)
        elif stripped.startswith("-> RemoteAddress:Port"):
            header.append(line)
        elif columns is None:
            reason = ipvs_unavailable_reason(text)
            expected = "the 'Prot LocalAddress:Port ...' column header"
            if reason:
                expected += f"; this output says {reason}"
            raise ParseError(TOOL, line_no, line, expected)
        elif m := _REAL_RE.match(stripped):
            if current is None:
                raise ParseError(TOOL, line_no, line, "a virtual service line before '-> ...'")
            reals.append(_real(m, columns, line_no, line))
        elif m := _SERVICE_RE.match(stripped):
            close()
            current = _service(m, columns, line_no, line)
        else:
            raise ParseError(TOOL, line_no, line, "a virtual service line or '  -> SERVER'")
    close()
    if columns is None:
        raise ParseError(TOOL, 1, text.strip(), "the 'Prot LocalAddress:Port ...' column header")
    return IpvsTable(version, size, columns, tuple(services), raw=tuple(header))


def _columns(stripped: str, line_no: int, line: str) -> str:
    if "Scheduler" in stripped:
        return "list"
    if "Conns" in stripped:
        return "stats"
    if "CPS" in stripped:
        return "rate"
    raise ParseError(TOOL, line_no, line, "columns 'Scheduler Flags', 'Conns ...' or 'CPS ...'")


def _service(m: re.Match[str], columns: str, line_no: int, line: str) -> VirtualService:
    proto, where, rest = m["proto"], m["where"], m["rest"].split()
    address: str | None = None
    port: int | None = None
    fwmark: int | None = None
    if proto == "FWM":
        fwmark = _int(where, line_no, line, "a firewall mark")
    else:
        address, port = _split(where, line_no, line)
    if columns != "list":
        nums = _counts(rest, line_no, line)
        return VirtualService(
            protocol=proto,
            address=address,
            port=port,
            fwmark=fwmark,
            counters=IpvsCounters(*nums) if columns == "stats" else None,
            rates=IpvsRates(*nums) if columns == "rate" else None,
            raw=line,
        )
    if not rest:
        raise ParseError(TOOL, line_no, line, "a scheduler after the service address")
    scheduler, words = rest[0], rest[1:]
    sched_flags: tuple[str, ...] = ()
    if words and words[0].startswith("("):
        sched_flags = tuple(f for f in words[0].strip("()").split(",") if f)
        words = words[1:]
    persistent: int | None = None
    netmask: str | None = None
    options: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("persistent", "mask") and i + 1 < len(words):
            if word == "persistent":
                persistent = _int(words[i + 1], line_no, line, "persistence seconds")
            else:
                netmask = words[i + 1]
            i += 2
        else:
            options.append(word)
            i += 1
    return VirtualService(
        protocol=proto,
        address=address,
        port=port,
        fwmark=fwmark,
        scheduler=scheduler,
        scheduler_flags=sched_flags,
        persistent=persistent,
        netmask=netmask,
        options=tuple(options),
        raw=line,
    )


def _real(m: re.Match[str], columns: str, line_no: int, line: str) -> RealServer:
    address, port = _split(m["where"], line_no, line)
    rest = m["rest"].split()
    if columns != "list":
        nums = _counts(rest, line_no, line)
        return RealServer(
            address=address,
            port=port,
            counters=IpvsCounters(*nums) if columns == "stats" else None,
            rates=IpvsRates(*nums) if columns == "rate" else None,
            raw=line,
        )
    if len(rest) != 4:
        raise ParseError(TOOL, line_no, line, "'-> ADDR:PORT FORWARD WEIGHT ACTIVE INACTIVE'")
    forward, weight, active, inactive = rest
    return RealServer(
        address=address,
        port=port,
        forward=forward,
        weight=_int(weight, line_no, line, "a weight"),
        active_conns=_int(active, line_no, line, "an ActiveConn count"),
        inactive_conns=_int(inactive, line_no, line, "an InActConn count"),
        raw=line,
    )


def _split(where: str, line_no: int, line: str) -> tuple[str, int]:
    if where.startswith("["):
        host, sep, port = where[1:].partition("]:")
    else:
        host, sep, port = where.rpartition(":")
    if not sep or not host:
        raise ParseError(TOOL, line_no, line, f"ADDRESS:PORT, not {where!r}")
    return host, _int(port, line_no, line, "a port")


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _counts(words: list[str], line_no: int, line: str) -> tuple[int, int, int, int, int]:
    if len(words) != 5:
        raise ParseError(TOOL, line_no, line, "five counters after the address")
    values: list[int] = []
    for word in words:
        m = _COUNT_RE.match(word)
        if m is None:
            raise ParseError(TOOL, line_no, line, f"a count such as 12 or 34K, not {word!r}")
        # ipvsadm abbreviates big numbers ("34K") unless run with --exact.
        values.append(int(m["n"]) * _UNITS[m["unit"]])
    a, b, c, d, e = values
    return a, b, c, d, e


def _int(value: str, line_no: int, line: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ParseError(TOOL, line_no, line, f"{what}, not {value!r}") from None
