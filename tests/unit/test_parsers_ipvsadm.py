"""ipvsadm parser: real captures (qemu guest with IP_VS; containers without), edges, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.ipvsadm import (
    IpvsCounters,
    IpvsRates,
    RealServer,
    VirtualService,
    ipvs_unavailable_reason,
    parse_ipvsadm,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm"


def load(name: str) -> str:
    return (FIXTURES / f"{name}.out").read_text()


KEYS = [
    "TCP 172.18.0.2:30080",
    "TCP 10.96.0.1:443",
    "TCP 10.96.0.10:53",
    "TCP 10.96.0.10:80",
    "TCP 10.96.0.20:80",
    "TCP 10.96.100.5:8080",
    "UDP 10.96.0.10:53",
    "TCP [fd00:10:96::a]:80",
    "FWM 100",
]


# --- real captured output -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "columns", "version", "keys"),
    [
        ("kube-proxy-like", "list", "1.2.1", KEYS),
        ("kube-proxy-like-stats", "stats", "1.2.1", KEYS),
        ("kube-proxy-like-rate", "rate", "1.2.1", KEYS),
        ("single-service", "list", None, ["TCP 10.96.0.10:80"]),
        ("empty-table", "list", "1.2.1", []),
    ],
)
def test_real_table(name: str, columns: str, version: str | None, keys: list[str]) -> None:
    table = parse_ipvsadm(load(name))
    assert (table.columns, table.version) == (columns, version)
    assert [s.key for s in table.services] == keys
    if version:
        assert table.size == 4096


def test_service_with_three_endpoints_in_full() -> None:
    svc = parse_ipvsadm(load("kube-proxy-like")).service("10.96.0.10", 80)
    assert svc == VirtualService(
        protocol="TCP",
        address="10.96.0.10",
        port=80,
        scheduler="rr",
        real_servers=(
            RealServer("10.244.0.5", 8080, "Masq", 1, 1, 0),
            RealServer("10.244.1.6", 8080, "Masq", 1, 2, 0),
            RealServer("10.244.2.7", 8080, "Masq", 0, 0, 0),
        ),
    )
    assert svc is not None
    assert svc.raw == "TCP  10.96.0.10:80 rr"
    assert svc.real_servers[0].raw.startswith("  -> 10.244.0.5:8080")
    assert svc.endpoints == ("10.244.0.5:8080", "10.244.1.6:8080", "10.244.2.7:8080")


def test_same_service_from_list_and_single_service_views() -> None:
    whole = parse_ipvsadm(load("kube-proxy-like")).service("10.96.0.10", 80)
    alone = parse_ipvsadm(load("single-service")).service("10.96.0.10", 80)
    assert whole == alone


@pytest.mark.parametrize(
    ("address", "port", "protocol", "check"),
    [
        ("10.96.0.20", 80, "TCP", lambda s: s.persistent == 10800 and s.scheduler == "rr"),
        ("10.96.100.5", 8080, "TCP", lambda s: s.real_servers == () and s.endpoints == ()),
        (
            "172.18.0.2",
            30080,
            "tcp",
            lambda s: s.scheduler == "wrr" and s.real_servers[0].weight == 3,
        ),
        (
            "10.96.0.10",
            53,
            "UDP",
            lambda s: s.protocol == "UDP" and s.endpoints == ("10.244.0.3:53", "10.244.0.4:53"),
        ),
        (
            "fd00:10:96:0::a",
            80,
            "TCP",
            lambda s: (
                s.endpoints == ("[fd00:10:244::5]:8080",)
                and s.real_servers[0].address == "fd00:10:244::5"
            ),
        ),
    ],
)
def test_kube_proxy_like_services(address: str, port: int, protocol: str, check: object) -> None:
    svc = parse_ipvsadm(load("kube-proxy-like")).service(address, port, protocol)
    assert svc is not None
    assert callable(check)
    assert check(svc)


def test_fwmark_service() -> None:
    table = parse_ipvsadm(load("kube-proxy-like"))
    (svc,) = [s for s in table.services if s.fwmark is not None]
    assert (svc.fwmark, svc.address, svc.port, svc.scheduler, svc.scheduler_flags) == (
        100,
        None,
        None,
        "sh",
        ("sh-port",),
    )
    assert svc.real_servers[0].forward == "Route"
    assert table.service("10.96.0.10", 81) is None


def test_stats_counters() -> None:
    svc = parse_ipvsadm(load("kube-proxy-like-stats")).service("10.96.0.10", 80)
    assert svc is not None
    assert svc.counters == IpvsCounters(2, 3, 0, 180, 0)
    assert svc.scheduler is None and svc.rates is None
    assert [r.counters for r in svc.real_servers] == [
        IpvsCounters(1, 2, 0, 120, 0),
        IpvsCounters(1, 1, 0, 60, 0),
        IpvsCounters(0, 0, 0, 0, 0),
    ]
    assert svc.real_servers[0].weight is None


def test_rates() -> None:
    svc = parse_ipvsadm(load("kube-proxy-like-rate")).service("10.96.0.10", 80)
    assert svc is not None
    assert svc.rates == IpvsRates(0, 0, 0, 21, 0)
    assert svc.real_servers[0].rates == IpvsRates(0, 0, 0, 15, 0)


# --- no IPVS --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lacks"),
    [
        ("no-ip-vs", True),
        ("no-ip-vs-stats", True),
        ("no-ip-vs-unprivileged", True),
        ("kube-proxy-like", False),
        ("empty-table", False),
        ("no-such-service", False),
    ],
)
def test_the_output_of_a_kernel_without_ip_vs_is_recognised(name: str, lacks: bool) -> None:
    assert (ipvs_unavailable_reason(load(name)) is not None) is lacks


def test_no_ipvs_reason_quotes_ipvsadm() -> None:
    reason = ipvs_unavailable_reason(load("no-ip-vs"))
    assert reason is not None
    assert "lacks IP_VS" in reason
    assert reason.endswith("Can't initialize ipvs: Protocol not available")
    modprobe = "modprobe: FATAL: Module ip_vs not found in directory /lib/x"
    assert ipvs_unavailable_reason(modprobe + "\n") == (
        f"the kernel lacks IP_VS (IPVS), so kube-proxy's ipvs mode cannot run: {modprobe}"
    )


@pytest.mark.parametrize("name", ["no-ip-vs", "no-ip-vs-stats", "no-ip-vs-unprivileged"])
def test_parsing_no_ipvs_output_says_why(name: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_ipvsadm(load(name))
    assert exc.value.line_no == 1
    assert "the kernel lacks IP_VS" in exc.value.expected


# --- edge cases ------------------------------------------------------------------------

HEADER = (
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
)


def test_persistence_mask_and_options() -> None:
    table = parse_ipvsadm(
        HEADER + "TCP  10.96.0.30:80 wlc persistent 360 mask 255.255.255.0 ops\n"
        "SCTP 10.96.0.31:9000 mh (mh-fallback,mh-port)\n"
    )
    tcp, sctp = table.services
    assert (tcp.persistent, tcp.netmask, tcp.options) == (360, "255.255.255.0", ("ops",))
    assert (sctp.protocol, sctp.scheduler_flags) == ("SCTP", ("mh-fallback", "mh-port"))


def test_abbreviated_counts() -> None:
    table = parse_ipvsadm(
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
        "  -> RemoteAddress:Port\n"
        "TCP  10.96.0.10:80                    12K     340K        0      21M        0\n"
    )
    assert table.services[0].counters == IpvsCounters(12000, 340000, 0, 21000000, 0)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line_no", "expected"),
    [
        pytest.param(load("no-such-service"), 1, "column header", id="no-such-service"),
        pytest.param("", 1, "column header", id="empty"),
        pytest.param(
            HEADER + "  -> 10.0.0.1:80 Masq 1 0 0\n",
            4,
            "a virtual service line before",
            id="real-first",
        ),
        pytest.param(HEADER + "TCP  10.96.0.10:80\n", 4, "a scheduler", id="no-scheduler"),
        pytest.param(HEADER + "TCP  10.96.0.10 rr\n", 4, "ADDRESS:PORT", id="no-port"),
        pytest.param(HEADER + "TCP  10.96.0.10:http rr\n", 4, "a port", id="named-port"),
        pytest.param(
            HEADER + "TCP  10.96.0.10:80 rr\n  -> 10.0.0.1:80 Masq 1 0\n",
            5,
            "FORWARD WEIGHT ACTIVE INACTIVE",
            id="short-real",
        ),
        pytest.param(
            HEADER + "TCP  10.96.0.10:80 rr\n  -> 10.0.0.1:80 Masq heavy 0 0\n",
            5,
            "a weight",
            id="bad-weight",
        ),
        pytest.param(HEADER + "ICMP 10.96.0.10:0 rr\n", 4, "a virtual service line", id="icmp"),
        pytest.param(
            "Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes\n"
            "TCP  10.96.0.10:80 1 2 3\n",
            2,
            "five counters",
            id="short-stats",
        ),
        pytest.param(
            "Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes\n"
            "TCP  10.96.0.10:80 1 2 3 4 5Q\n",
            2,
            "a count",
            id="bad-unit",
        ),
        pytest.param("Prot LocalAddress:Port Whatever\n", 1, "columns", id="unknown-columns"),
        pytest.param("FWM  x rr\n", 1, "column header", id="no-header"),
    ],
)
def test_errors_name_the_line(text: str, line_no: int, expected: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_ipvsadm(text)
    assert exc.value.tool == "ipvsadm"
    assert exc.value.line_no == line_no
    assert expected in exc.value.expected
