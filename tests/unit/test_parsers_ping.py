"""ping parser: real iputils and busybox captures, edge cases, errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.ping import EchoReply, IcmpError, PingStats, parse_ping

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ping"


def load(name: str) -> str:
    return (FIXTURES / f"{name}.out").read_text()


@dataclass(frozen=True)
class Want:
    style: str | None
    answered: bool
    transmitted: int
    received: int
    errors: int
    loss: float | None
    errors_from: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    failure: str | None = None
    replies: int = 0
    local_errors: int = 0


REJECT = ("ping: sendmsg: Operation not permitted",)
EXPECTED = {
    "local-32-answered": Want("iputils", True, 3, 3, 0, 0.0, replies=3),
    "loopback-answered": Want("iputils", True, 2, 2, 0, 0.0, replies=2),
    "ipv6-local": Want("iputils", True, 2, 2, 0, 0.0, replies=2),
    "quiet-answered": Want("iputils", True, 2, 2, 0, 0.0, replies=0),
    "partial-loss": Want("iputils", True, 4, 2, 0, 50.0, replies=2),
    "rejected-port-unreachable": Want(
        "iputils",
        False,
        2,
        0,
        2,
        100.0,
        ("172.17.0.3",),
        ("Destination Port Unreachable",) * 2,
        local_errors=2,
    ),
    "rejected-net-unreachable": Want(
        "iputils",
        False,
        2,
        0,
        2,
        100.0,
        ("172.17.0.3",),
        ("Destination Net Unreachable",) * 2,
        local_errors=2,
    ),
    "rejected-host-unreachable": Want(
        "iputils",
        False,
        2,
        0,
        2,
        100.0,
        ("172.17.0.3",),
        ("Destination Host Unreachable",) * 2,
        local_errors=2,
    ),
    "rejected-admin-prohibited": Want(
        "iputils", False, 2, 0, 2, 100.0, ("172.17.0.3",), ("Packet filtered",) * 2, local_errors=2
    ),
    "dropped-sendmsg": Want("iputils", False, 2, 0, 0, 100.0),
    "unowned-host-unreachable": Want(
        "iputils", False, 4, 0, 3, 100.0, ("172.18.0.2",), ("Destination Host Unreachable",) * 3
    ),
    "nft-clusterip-rejected": Want(
        "iputils",
        False,
        2,
        0,
        2,
        100.0,
        ("172.17.0.4",),
        ("Destination Port Unreachable",) * 2,
        local_errors=2,
    ),
    "nft-unallocated-clusterip-dropped": Want("iputils", False, 2, 0, 0, 100.0),
    "network-unreachable": Want(
        None, False, 0, 0, 0, None, failure="connect: Network is unreachable", local_errors=1
    ),
    "unreachable-route": Want(
        None, False, 0, 0, 0, None, failure="connect: No route to host", local_errors=1
    ),
    "prohibit-route": Want(
        None,
        False,
        0,
        0,
        0,
        None,
        failure="Do you want to ping broadcast? Then -b. If not, check your local firewall rules",
        local_errors=1,
    ),
    "unknown-host": Want(
        None,
        False,
        0,
        0,
        0,
        None,
        failure="no-such-host.invalid: Temporary failure in name resolution",
        local_errors=1,
    ),
    "busybox-answered": Want("busybox", True, 2, 2, 0, 0.0, replies=2),
    "busybox-rejected-port-unreachable": Want(
        "busybox", False, 0, 0, 0, None, failure="sendto: Operation not permitted", local_errors=1
    ),
    "busybox-dropped": Want(
        "busybox", False, 0, 0, 0, None, failure="sendto: Operation not permitted", local_errors=1
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.out")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture(name: str) -> None:
    want = EXPECTED[name]
    r = parse_ping(load(name))
    got = Want(
        style=r.style,
        answered=r.answered,
        transmitted=r.transmitted,
        received=r.received,
        errors=r.errors,
        loss=r.stats.loss_percent if r.stats else None,
        errors_from=r.errors_from,
        messages=tuple(e.message for e in r.icmp_errors),
        failure=r.failure,
        replies=len(r.replies),
        local_errors=len(r.local_errors),
    )
    assert got == want


def test_local_reply_details() -> None:
    r = parse_ping(load("local-32-answered"))
    assert (r.target, r.address) == ("10.96.0.10", "10.96.0.10")
    assert r.replies[0] == EchoReply(size=64, from_addr="10.96.0.10", seq=1, ttl=64, time_ms=0.756)
    assert [x.seq for x in r.replies] == [1, 2, 3]
    assert r.replies[0].raw == "64 bytes from 10.96.0.10: icmp_seq=1 ttl=64 time=0.756 ms"
    assert r.stats == PingStats(
        transmitted=3,
        received=3,
        loss_percent=0.0,
        time_ms=2049,
        rtt_min=0.046,
        rtt_avg=0.283,
        rtt_max=0.756,
        rtt_mdev=0.334,
    )
    assert r.time_ms == 2049
    assert r.stats.raw[0] == "--- 10.96.0.10 ping statistics ---"


def test_rejected_error_lines_keep_seq_and_raw() -> None:
    r = parse_ping(load("rejected-port-unreachable"))
    assert r.icmp_errors[1] == IcmpError(
        from_addr="172.17.0.3", seq=2, message="Destination Port Unreachable"
    )
    assert r.icmp_errors[0].raw == "From 172.17.0.3 icmp_seq=1 Destination Port Unreachable"
    assert r.local_errors[0].message == "sendmsg: Operation not permitted"
    assert r.failure is None  # statistics came: ping did run


def test_partial_loss_shows_which_seqs_answered() -> None:
    r = parse_ping(load("partial-loss"))
    assert [x.seq for x in r.replies] == [1, 3]
    assert r.stats is not None and r.stats.loss_percent == 50.0


def test_unowned_host_reports_pipe() -> None:
    r = parse_ping(load("unowned-host-unreachable"))
    assert r.stats is not None and r.stats.pipe == 3
    assert r.stats.rtt_avg is None


def test_network_unreachable_has_no_statistics() -> None:
    r = parse_ping(load("network-unreachable"))
    assert r.stats is None and r.failure == "connect: Network is unreachable"
    assert r.target is None and r.time_ms is None
    assert r.raw == ("ping: connect: Network is unreachable",)


def test_busybox_reply_and_stats() -> None:
    r = parse_ping(load("busybox-answered"))
    assert r.replies[0] == EchoReply(size=64, from_addr="127.0.0.1", seq=0, ttl=64, time_ms=0.226)
    assert r.stats is not None
    assert (r.stats.rtt_min, r.stats.rtt_mdev, r.stats.time_ms) == (0.075, None, None)


def test_stdout_and_stderr_in_either_order() -> None:
    text = load("rejected-port-unreachable")
    lines = text.splitlines()
    stderr = [x for x in lines if x.startswith("ping: ")]
    stdout = [x for x in lines if not x.startswith("ping: ")]
    assert parse_ping("\n".join(stdout + stderr)) == parse_ping("\n".join(stderr + stdout))


# --- edge cases -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "check"),
    [
        pytest.param(
            "PING web (10.96.0.10) 56(84) bytes of data.\n"
            "64 bytes from web.default.svc (10.96.0.10): icmp_seq=1 ttl=63 time=12 ms\n"
            "64 bytes from web.default.svc (10.96.0.10): icmp_seq=1 ttl=63 time=12.5 ms (DUP!)\n",
            lambda r: (
                r.replies[0].from_name == "web.default.svc"
                and r.replies[0].from_addr == "10.96.0.10"
                and r.replies[0].time_ms == 12.0
                and r.replies[1].duplicate
                and r.target == "web"
                and r.answered
            ),
            id="hostname-and-dup",
        ),
        pytest.param(
            "[1700000000.123456] 64 bytes from 10.0.0.1: icmp_seq=4 ttl=64 time=0.1 ms\n",
            lambda r: r.replies[0].seq == 4 and r.style is None,
            id="timestamps-D",
        ),
        pytest.param(
            "From gw.local (172.17.0.1) icmp_seq=1 Destination Net Unreachable\n"
            "From 10.0.0.254 icmp_seq=2 Time to live exceeded\n"
            "From 172.17.0.1 icmp_seq=3 Destination Net Unreachable\n",
            lambda r: (
                r.errors_from == ("172.17.0.1", "10.0.0.254")
                and r.icmp_errors[0].from_name == "gw.local"
                and r.icmp_errors[1].message == "Time to live exceeded"
            ),
            id="error-sources-deduplicated",
        ),
        pytest.param(
            "From 10.0.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1400)\n",
            lambda r: r.icmp_errors[0].message == "Frag needed and DF set (mtu = 1400)",
            id="frag-needed",
        ),
        pytest.param(
            "PING 10.0.0.1 (10.0.0.1) from 10.0.0.2 eth0: 56(84) bytes of data.\n",
            lambda r: r.address == "10.0.0.1" and r.style == "iputils",
            id="header-with-interface",
        ),
        pytest.param(
            "--- 10.0.0.1 ping statistics ---\n"
            "5 packets transmitted, 5 received, +1 duplicates, 0% packet loss, time 4005ms\n"
            "rtt min/avg/max/mdev = 0.1/0.2/0.3/0.05 ms, pipe 2\n",
            lambda r: r.stats.duplicates == 1 and r.stats.pipe == 2 and r.stats.rtt_max == 0.3,
            id="duplicates-and-pipe-after-rtt",
        ),
        pytest.param(
            "--- 10.0.0.1 ping statistics ---\n"
            "3 packets transmitted, 2 packets received, 1 duplicates, 33% packet loss\n",
            lambda r: r.stats.duplicates == 1 and r.stats.loss_percent == 33.0,
            id="busybox-duplicates",
        ),
        pytest.param(
            "--- 10.0.0.1 ping statistics ---\r\n"
            "1 packets transmitted, 1 received, 0% packet loss, time 0ms\r\n",
            lambda r: r.received == 1,
            id="crlf",
        ),
    ],
)
def test_edge_cases(text: str, check: object) -> None:
    assert callable(check)
    assert check(parse_ping(text))


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line_no", "expected"),
    [
        pytest.param("", 1, "some ping output", id="empty"),
        pytest.param(
            "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\nHello there\n",
            2,
            "a ping line",
            id="unknown-line",
        ),
        pytest.param(
            "2 packets transmitted, 0 received, 100% packet loss, time 1000ms\n",
            1,
            "ping statistics ---' before it",
            id="stats-without-header",
        ),
        pytest.param(
            "rtt min/avg/max/mdev = 0.1/0.2/0.3/0.05 ms\n",
            1,
            "packets transmitted",
            id="rtt-without-stats",
        ),
        pytest.param(
            "--- x ping statistics ---\n"
            "1 packets transmitted, 0 received, +1 ghosts, 100% packet loss, time 0ms\n",
            2,
            "+N duplicates/corrupted/errors",
            id="unknown-plus-count",
        ),
        pytest.param(
            "\n--- x ping statistics ---\n\n", 2, "'N packets transmitted'", id="header-only"
        ),
    ],
)
def test_errors_name_the_line(text: str, line_no: int, expected: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_ping(text)
    assert exc.value.tool == "ping"
    assert exc.value.line_no == line_no
    assert expected in exc.value.expected
