"""ip route get parser: real captures, edge cases, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.route import RouteGet, parse_route_get

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "route"


def load(name: str) -> str:
    return (FIXTURES / f"{name}.out").read_text()


EXPECTED: dict[str, RouteGet] = {
    "local-32": RouteGet(
        type="local",
        dst="10.96.0.10",
        dev="lo",
        src="10.96.0.10",
        uid=0,
        cached=True,
        cache_flags=("local",),
    ),
    "local-kube-ipvs0": RouteGet(
        type="local",
        dst="10.96.0.10",
        dev="lo",
        src="10.96.0.10",
        uid=0,
        cached=True,
        cache_flags=("local",),
    ),
    "loopback": RouteGet(
        type="local",
        dst="127.0.0.1",
        dev="lo",
        src="127.0.0.1",
        uid=0,
        cached=True,
        cache_flags=("local",),
    ),
    "via-gateway": RouteGet(
        dst="10.99.1.1", via="172.17.0.1", dev="eth0", src="172.17.0.2", uid=0, cached=True
    ),
    "mark-uid": RouteGet(
        dst="10.99.1.1",
        via="172.17.0.1",
        dev="eth0",
        src="172.17.0.2",
        mark="0x4000",
        uid=1000,
        cached=True,
    ),
    "on-link": RouteGet(dst="172.17.0.50", dev="eth0", src="172.17.0.2", uid=0, cached=True),
    "peer": RouteGet(dst="10.250.0.2", dev="veth-b", src="10.250.0.1", uid=0, cached=True),
    "bridge-subnet-from": RouteGet(
        dst="10.244.0.5", from_addr="10.244.0.1", dev="kl-br0", uid=0, cached=True
    ),
    "broadcast": RouteGet(
        type="broadcast",
        dst="10.244.0.255",
        dev="kl-br0",
        src="10.244.0.1",
        uid=0,
        cached=True,
        cache_flags=("local", "brd"),
    ),
    "multicast": RouteGet(
        type="multicast",
        dst="224.0.0.5",
        dev="eth0",
        src="172.17.0.2",
        uid=0,
        flags=("rt_offload_failed",),
        cached=True,
        cache_flags=("mc",),
    ),
    "ipv6-local": RouteGet(
        type="local",
        dst="fd00:10:244::1",
        from_addr="::",
        dev="lo",
        table="local",
        proto="kernel",
        src="fd00:10:244::1",
        metric=0,
        pref="medium",
    ),
    "unreachable": RouteGet(type=None, error="No route to host"),
    "ipv6-unreachable": RouteGet(type=None, error="No route to host"),
    "prohibit": RouteGet(type=None, error="Permission denied"),
    "ipv6-prohibit": RouteGet(type=None, error="Permission denied"),
    "blackhole": RouteGet(type=None, error="Invalid argument"),
    "network-unreachable": RouteGet(type=None, error="Network is unreachable"),
    "ipv6-offlink": RouteGet(type=None, error="Network is unreachable"),
}
ERROR_FIXTURES = {"bad-address"}


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in FIXTURES.glob("*.out")} == set(EXPECTED) | ERROR_FIXTURES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture(name: str) -> None:
    assert parse_route_get(load(name)) == EXPECTED[name]


@pytest.mark.parametrize(
    ("name", "reachable", "is_local", "error_route_type"),
    [
        ("local-32", True, True, None),
        ("via-gateway", True, False, None),
        ("broadcast", True, False, None),
        ("unreachable", False, False, "unreachable"),
        ("prohibit", False, False, "prohibit"),
        ("blackhole", False, False, "blackhole"),
        ("network-unreachable", False, False, None),
    ],
)
def test_accessors(
    name: str, reachable: bool, is_local: bool, error_route_type: str | None
) -> None:
    r = parse_route_get(load(name))
    assert (r.reachable, r.is_local, r.error_route_type) == (
        reachable,
        is_local,
        error_route_type,
    )


def test_raw_lines_are_kept() -> None:
    r = parse_route_get(load("local-32"))
    assert r.raw == ("local 10.96.0.10 dev lo src 10.96.0.10 uid 0 ", "    cache <local> ")
    assert parse_route_get(load("unreachable")).raw == ("RTNETLINK answers: No route to host",)


# --- edge cases -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param(
            "10.0.0.9 via 10.0.0.1 dev eth0 src 10.0.0.2 uid 0 \n"
            "    cache expires 297sec mtu 1400 \n",
            RouteGet(
                dst="10.0.0.9",
                via="10.0.0.1",
                dev="eth0",
                src="10.0.0.2",
                uid=0,
                cached=True,
                attrs=(("expires", "297sec"), ("mtu", "1400")),
            ),
            id="cache-attrs",
        ),
        pytest.param(
            "192.0.2.9 via inet6 fe80::1 dev eth0 src 192.0.2.2 uid 0 \n    cache \n",
            RouteGet(
                dst="192.0.2.9",
                via="inet6 fe80::1",
                dev="eth0",
                src="192.0.2.2",
                uid=0,
                cached=True,
            ),
            id="via-other-family",
        ),
        pytest.param(
            "unreachable fd00:200::1 from :: dev lo table main proto boot metric 1024 error -113 "
            "pref medium\n",
            RouteGet(
                type="unreachable",
                dst="fd00:200::1",
                from_addr="::",
                dev="lo",
                table="main",
                proto="boot",
                metric=1024,
                pref="medium",
                attrs=(("error", "-113"),),
            ),
            id="ipv6-unreachable-route-printed",
        ),
        pytest.param(
            "10.0.0.9 dev eth0 src 10.0.0.2 uid 0 onlink \n    cache \n",
            RouteGet(
                dst="10.0.0.9", dev="eth0", src="10.0.0.2", uid=0, flags=("onlink",), cached=True
            ),
            id="bare-flag",
        ),
        pytest.param(
            "10.0.0.9 dev eth0 src 10.0.0.2 uid 0\r\n    cache\r\n",
            RouteGet(dst="10.0.0.9", dev="eth0", src="10.0.0.2", uid=0, cached=True),
            id="crlf",
        ),
    ],
)
def test_edge_cases(text: str, want: RouteGet) -> None:
    assert parse_route_get(text) == want


def test_unreachable_type_is_not_reachable() -> None:
    r = parse_route_get("unreachable 10.200.1.1 dev lo table main\n")
    assert not r.reachable and r.type == "unreachable"


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line_no", "expected"),
    [
        pytest.param(load("bad-address"), 1, "a route line", id="ip-usage-error"),
        pytest.param("", 1, "a route line or 'RTNETLINK", id="empty"),
        pytest.param("    cache\n", 1, "a route line", id="continuation-first"),
        pytest.param("local\n", 1, "a destination", id="type-only"),
        pytest.param("10.0.0.1 dev\n", 1, "a value after 'dev'", id="key-without-value"),
        pytest.param("10.0.0.1 dev eth0 uid root\n", 1, "an integer after 'uid'", id="bad-uid"),
        pytest.param(
            "10.0.0.1 dev eth0\n10.0.0.2 dev eth1\n", 2, "one route only", id="two-routes"
        ),
        pytest.param(
            "RTNETLINK answers: No route to host\nmore\n", 2, "nothing after", id="after-error"
        ),
    ],
)
def test_errors_name_the_line(text: str, line_no: int, expected: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_route_get(text)
    assert exc.value.tool == "ip route get"
    assert exc.value.line_no == line_no
    assert expected in exc.value.expected
