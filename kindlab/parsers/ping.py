"""Parser for ``ping`` output: iputils (Debian trixie, 20240905) and busybox.

Pure: text in, frozen dataclasses out. Give it stdout and stderr together, in any
order (``ping`` writes replies to stdout and ``ping: ...`` errors to stderr, so
their interleaving depends on buffering). Every record keeps its raw line.

Schema::

    PingResult
      target: str | None                    # as given: "10.96.0.10", "web.example"
      address: str | None                   # as resolved: "10.96.0.10"
      style: "iputils" | "busybox" | None   # None when nothing but "ping: ..." was printed
      replies: (EchoReply, ...)
      icmp_errors: (IcmpError, ...)         # "From X icmp_seq=N Destination Port Unreachable"
      local_errors: (LocalError, ...)       # "ping: sendmsg: Operation not permitted"
      stats: PingStats | None               # None when ping gave up before sending
      raw: (str, ...)                       # every non-empty line
      accessors: answered, errors_from, failure,
                 transmitted, received, errors, time_ms
    EchoReply
      size: int, from_addr: str, from_name: str | None, seq: int,
      ttl: int | None, time_ms: float | None, duplicate: bool, raw: str
    IcmpError
      from_addr: str, from_name: str | None, seq: int | None,
      message: str                          # "Destination Port Unreachable"
      raw: str
    LocalError
      message: str                          # "connect: Network is unreachable"
      raw: str
    PingStats
      transmitted, received: int
      duplicates, corrupted, errors: int    # "+N duplicates", "+N errors"; 0 if absent
      loss_percent: float
      time_ms: int | None                   # busybox prints no time
      rtt_min, rtt_avg, rtt_max, rtt_mdev: float | None
      pipe: int | None
      raw: (str, ...)

Example::

    >>> r = parse_ping('''PING 10.96.0.10 (10.96.0.10) 56(84) bytes of data.
    ... From 172.17.0.3 icmp_seq=1 Destination Port Unreachable
    ... ping: sendmsg: Operation not permitted
    ...
    ... --- 10.96.0.10 ping statistics ---
    ... 1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms
    ... ''')
    >>> r.answered, r.errors, r.errors_from, r.icmp_errors[0].message
    (False, 1, ('172.17.0.3',), 'Destination Port Unreachable')
    >>> parse_ping("ping: connect: Network is unreachable").failure
    'connect: Network is unreachable'

Errors raise :class:`kindlab.errors.ParseError` naming the line and what was
expected: a line that is none of the above, a statistics line without its
header, a reply whose fields do not read, empty output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kindlab.errors import ParseError

__all__ = [
    "EchoReply",
    "IcmpError",
    "LocalError",
    "PingResult",
    "PingStats",
    "parse_ping",
]

TOOL = "ping"

# "[1700000000.123456] " when ping runs with -D.
_TS = r"(?:\[\d+(?:\.\d+)?\]\s+)?"
_HOST = r"(?P<first>[^\s()]+)(?:\s+\((?P<second>[^\s()]+)\))?"
_HEADER_RE = re.compile(
    r"^PING\s+(?P<target>\S+)\s+\((?P<address>[^)]+)\)"
    r"(?:\s+from\s+\S+\s+\S+:)?"
    r"(?P<busybox>:)?\s+\d+(?:\(\d+\))?\s+(?:data\s+)?bytes(?: of data)?\.?$"
)
_REPLY_RE = re.compile(
    rf"^{_TS}(?P<size>\d+)\s+bytes\s+from\s+{_HOST}:\s+"
    r"(?:icmp_seq|seq)=(?P<seq>\d+)"
    r"(?:\s+ttl=(?P<ttl>\d+))?"
    r"(?:\s+time=(?P<time>[\d.]+)\s*ms)?"
    r"(?P<tail>.*)$"
)
_ICMP_ERROR_RE = re.compile(
    rf"^{_TS}From\s+{_HOST}(?::)?\s+(?:icmp_seq=(?P<seq>\d+)\s+)?(?P<message>\S.*)$"
)
_STATS_HEADER_RE = re.compile(r"^---\s+(?P<target>\S+)\s+ping statistics\s+---$")
_STATS_RE = re.compile(
    r"^(?P<tx>\d+)\s+packets transmitted,\s+(?P<rx>\d+)\s+(?:packets\s+)?received,"
    r"(?P<extras>(?:\s+\+?\d+\s+\w+,)*)"
    r"\s+(?P<loss>[\d.]+)%\s+packet loss"
    r"(?:,\s+time\s+(?P<time>\d+)\s*ms)?$"
)
_EXTRA_RE = re.compile(r"\+?(\d+)\s+(\w+)")
_RTT_RE = re.compile(
    r"^(?:rtt|round-trip)\s+min/avg/max(?:/mdev)?\s+=\s+"
    r"(?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)(?:/(?P<mdev>[\d.]+))?\s+ms"
    r"(?:,\s+pipe\s+(?P<pipe>\d+))?(?:,.*)?$"
)
_PIPE_RE = re.compile(r"^pipe\s+(?P<pipe>\d+)$")


@dataclass(frozen=True, slots=True)
class EchoReply:
    """An echo reply: "64 bytes from 10.96.0.10: icmp_seq=1 ttl=64 time=0.05 ms"."""

    size: int
    from_addr: str
    seq: int
    ttl: int | None
    time_ms: float | None
    from_name: str | None = None
    duplicate: bool = False
    raw: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error about one probe: "From 172.17.0.3 icmp_seq=1 Destination Port Unreachable"."""

    from_addr: str
    seq: int | None
    message: str
    from_name: str | None = None
    raw: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class LocalError:
    """A "ping: ..." line: a local failure (sendmsg refused, connect failed, unknown host)."""

    message: str
    raw: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class PingStats:
    """The statistics block at the end."""

    transmitted: int
    received: int
    loss_percent: float
    time_ms: int | None = None
    duplicates: int = 0
    corrupted: int = 0
    errors: int = 0
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None
    rtt_mdev: float | None = None
    pipe: int | None = None
    raw: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class PingResult:
    """Everything one ping run printed."""

    target: str | None
    address: str | None
    style: str | None
    replies: tuple[EchoReply, ...] = ()
    icmp_errors: tuple[IcmpError, ...] = ()
    local_errors: tuple[LocalError, ...] = ()
    stats: PingStats | None = None
    raw: tuple[str, ...] = field(default=(), compare=False)

    @property
    def answered(self) -> bool:
        """True when any echo reply came back (also with ``-q``, from the statistics)."""
        return bool(self.replies) or (self.stats is not None and self.stats.received > 0)

    @property
    def errors_from(self) -> tuple[str, ...]:
        """Addresses that sent ICMP errors, each once, in order of first appearance."""
        return tuple(dict.fromkeys(e.from_addr for e in self.icmp_errors))

    @property
    def failure(self) -> str | None:
        """Why ping stopped before its statistics ("connect: Network is unreachable")."""
        if self.stats is not None or not self.local_errors:
            return None
        return self.local_errors[-1].message

    @property
    def transmitted(self) -> int:
        return self.stats.transmitted if self.stats else 0

    @property
    def received(self) -> int:
        return self.stats.received if self.stats else 0

    @property
    def errors(self) -> int:
        return self.stats.errors if self.stats else 0

    @property
    def time_ms(self) -> int | None:
        return self.stats.time_ms if self.stats else None


def parse_ping(text: str) -> PingResult:
    """Parse the output of one ``ping`` run (stdout and stderr together)."""
    target: str | None = None
    address: str | None = None
    style: str | None = None
    replies: list[EchoReply] = []
    icmp_errors: list[IcmpError] = []
    local_errors: list[LocalError] = []
    raw: list[str] = []
    stats_target: str | None = None
    stats_line_no = 0
    stats_fields: dict[str, int | float | None] = {}
    stats_raw: list[str] = []

    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        raw.append(line)
        if stripped.startswith("ping: "):
            local_errors.append(LocalError(stripped.removeprefix("ping: "), raw=line))
        elif m := _HEADER_RE.match(stripped):
            target, address = m["target"], m["address"]
            style = "busybox" if m["busybox"] else "iputils"
        elif m := _REPLY_RE.match(stripped):
            replies.append(_reply(m))
        elif m := _ICMP_ERROR_RE.match(stripped):
            first, second = m["first"], m["second"]
            icmp_errors.append(
                IcmpError(
                    from_addr=second or first,
                    from_name=first if second else None,
                    seq=int(m["seq"]) if m["seq"] else None,
                    message=m["message"].strip(),
                    raw=line,
                )
            )
        elif m := _STATS_HEADER_RE.match(stripped):
            stats_target = m["target"]
            stats_line_no = line_no
            stats_raw.append(line)
        elif m := _STATS_RE.match(stripped):
            if stats_target is None:
                raise ParseError(TOOL, line_no, line, "'--- X ping statistics ---' before it")
            stats_fields.update(_stats_counts(m, line_no, line))
            stats_raw.append(line)
        elif m := _RTT_RE.match(stripped):
            _require_counts(stats_fields, line_no, line)
            stats_fields.update(
                rtt_min=float(m["min"]),
                rtt_avg=float(m["avg"]),
                rtt_max=float(m["max"]),
                rtt_mdev=float(m["mdev"]) if m["mdev"] else None,
            )
            if m["pipe"]:
                stats_fields["pipe"] = int(m["pipe"])
            stats_raw.append(line)
        elif m := _PIPE_RE.match(stripped):
            _require_counts(stats_fields, line_no, line)
            stats_fields["pipe"] = int(m["pipe"])
            stats_raw.append(line)
        else:
            raise ParseError(
                TOOL,
                line_no,
                line,
                "a ping line: 'PING ...', a reply, 'From X icmp_seq=N ...', 'ping: ...', "
                "or the statistics",
            )

    if not raw:
        raise ParseError(TOOL, 1, text, "some ping output")
    if stats_target is not None and "transmitted" not in stats_fields:
        raise ParseError(TOOL, stats_line_no, stats_raw[0], "'N packets transmitted' after it")
    stats = _build_stats(stats_fields, tuple(stats_raw)) if stats_fields else None
    return PingResult(
        target=target,
        address=address,
        style=style,
        replies=tuple(replies),
        icmp_errors=tuple(icmp_errors),
        local_errors=tuple(local_errors),
        stats=stats,
        raw=tuple(raw),
    )


def _reply(m: re.Match[str]) -> EchoReply:
    first, second = m["first"], m["second"]
    # The tail holds markers such as "(DUP!)", "(truncated)" or "wrong data byte ...";
    # only DUP! changes what the reply means.
    tail = m["tail"]
    return EchoReply(
        size=int(m["size"]),
        from_addr=second or first,
        from_name=first if second else None,
        seq=int(m["seq"]),
        ttl=int(m["ttl"]) if m["ttl"] else None,
        time_ms=float(m["time"]) if m["time"] else None,
        duplicate="DUP!" in tail,
        raw=m.string,
    )


def _stats_counts(m: re.Match[str], line_no: int, line: str) -> dict[str, int | float | None]:
    out: dict[str, int | float | None] = {
        "transmitted": int(m["tx"]),
        "received": int(m["rx"]),
        "loss_percent": float(m["loss"]),
        "time_ms": int(m["time"]) if m["time"] else None,
    }
    for count, word in _EXTRA_RE.findall(m["extras"]):
        key = {"duplicates": "duplicates", "errors": "errors", "corrupted": "corrupted"}.get(word)
        if key is None:
            raise ParseError(TOOL, line_no, line, f"+N duplicates/corrupted/errors, not {word!r}")
        out[key] = int(count)
    return out


def _require_counts(fields: dict[str, int | float | None], line_no: int, line: str) -> None:
    if "transmitted" not in fields:
        raise ParseError(TOOL, line_no, line, "'N packets transmitted, ...' before it")


def _build_stats(f: dict[str, int | float | None], raw: tuple[str, ...]) -> PingStats:
    def i(key: str, default: int | None = 0) -> int | None:
        v = f.get(key, default)
        return None if v is None else int(v)

    def fl(key: str) -> float | None:
        v = f.get(key)
        return None if v is None else float(v)

    return PingStats(
        transmitted=i("transmitted") or 0,
        received=i("received") or 0,
        loss_percent=fl("loss_percent") or 0.0,
        time_ms=i("time_ms", None),
        duplicates=i("duplicates") or 0,
        corrupted=i("corrupted") or 0,
        errors=i("errors") or 0,
        rtt_min=fl("rtt_min"),
        rtt_avg=fl("rtt_avg"),
        rtt_max=fl("rtt_max"),
        rtt_mdev=fl("rtt_mdev"),
        pipe=i("pipe", None),
        raw=raw,
    )
