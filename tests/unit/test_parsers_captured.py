"""Parsers on captures from real kind clusters, checked against what each capture showed.

``tests/fixtures/captured/capture.py`` (and for ipvs ``scripts/ipvs-in-qemu.sh``) wrote
``<probe>.out``, and for some probes ``.err`` / ``.rc``, into one folder per
``<kubernetes-version>-<mode>``. Each folder has a row below, taken from the
folders' README: the ClusterIP pinged, the node's address, the route to the
ClusterIP, and who answered the ping. A folder of the whole probe set without a
row fails, so a new capture cannot go untested.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.ipvsadm import ipvs_unavailable_reason, parse_ipvsadm
from kindlab.parsers.nft import cluster_ip_entries, kube_proxy_table, parse_nft_json
from kindlab.parsers.ping import parse_ping
from kindlab.parsers.route import parse_route_get

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"


@dataclass(frozen=True)
class Capture:
    """What one folder of captures recorded, as its README tells it."""

    folder: str
    cluster_ip: str
    node_ip: str
    route: tuple[str, str | None, str, str]
    """``ip route get CLUSTER_IP``: (type, via, dev, src)."""
    icmp_error: tuple[str, str]
    """(sender, message) of every ICMP error that ``ping -c 2`` got back."""

    @property
    def mode(self) -> str:
        return self.folder.rsplit("-", 1)[1]

    def output(self, probe: str) -> str:
        """stdout, then stderr if the capture kept it: what the terminal would have shown."""
        out = CAPTURED / self.folder / f"{probe}.out"
        err = out.with_suffix(".err")
        return out.read_text() + (err.read_text() if err.exists() else "")


CAPTURES = [
    # The host's egress guard rejects what leaves by the default route.
    Capture(
        "v1.34.4-iptables",
        "10.105.96.116",
        "172.19.0.2",
        ("unicast", "172.19.0.1", "eth0", "172.19.0.2"),
        ("172.19.0.1", "Destination Net Unreachable"),
    ),
    # kube-proxy's own reject rule, on the node: the error comes from the node's address.
    Capture(
        "v1.34.4-nftables",
        "10.111.237.187",
        "172.19.0.2",
        ("unicast", "172.19.0.1", "eth0", "172.19.0.2"),
        ("172.19.0.2", "Destination Port Unreachable"),
    ),
    # The ClusterIP is local (kube-ipvs0); KUBE-IPVS-FILTER rejects in INPUT, as the ClusterIP.
    Capture(
        "v1.34.4-ipvs",
        "10.111.47.139",
        "172.18.0.2",
        ("local", None, "lo", "10.111.47.139"),
        ("10.111.47.139", "Destination Port Unreachable"),
    ),
]


def by_mode(*modes: str) -> list[pytest.ParameterSet]:
    return [pytest.param(c, id=c.folder) for c in CAPTURES if c.mode in modes]


ALL = by_mode("iptables", "nftables", "ipvs")


def test_every_capture_folder_has_a_row() -> None:
    # A folder of the whole probe set has a ping in it; a folder captured by hand for one
    # test (v1.34.4-iptables-1000ep, the walker's) is checked by that test.
    folders = {p.parent.name for p in CAPTURED.glob("*/ping-c2-clusterip.out")}
    assert folders == {c.folder for c in CAPTURES}


@pytest.mark.parametrize("capture", ALL)
def test_the_node_address_and_who_holds_the_clusterip(capture: Capture) -> None:
    addrs = parse_ip_addr_json(capture.output("ip-j-addr"))
    assert [a.local for a in addrs.link("eth0").inet()] == [capture.node_ip]
    owner = addrs.owner(capture.cluster_ip)
    assert (owner.name if owner else None) == ("kube-ipvs0" if capture.mode == "ipvs" else None)


@pytest.mark.parametrize("capture", ALL)
def test_route_to_the_clusterip(capture: Capture) -> None:
    route = parse_route_get(capture.output("ip-route-get-clusterip"))
    assert route.dst == capture.cluster_ip
    assert (route.type, route.via, route.dev, route.src) == capture.route


@pytest.mark.parametrize("capture", ALL)
def test_ping_to_the_clusterip_sent_two_and_got_only_icmp_errors(capture: Capture) -> None:
    ping = parse_ping(capture.output("ping-c2-clusterip"))
    assert ping.address == capture.cluster_ip
    assert (ping.transmitted, ping.received, ping.errors, ping.answered) == (2, 0, 2, False)
    assert {(e.from_addr, e.message) for e in ping.icmp_errors} == {capture.icmp_error}
    assert ping.failure is None


@pytest.mark.parametrize("capture", by_mode("nftables"))
def test_nftables_mode_maps_the_clusterip_in_kube_proxys_table(capture: Capture) -> None:
    table = kube_proxy_table(parse_nft_json(capture.output("nft-j-list-ruleset")))
    assert table is not None
    entries = cluster_ip_entries(table, capture.cluster_ip)
    assert [e.key for e in entries.cluster_ips] == [(capture.cluster_ip,)]
    assert [(e.key, e.target) for e in entries.service_ips] == [
        ((capture.cluster_ip, "tcp", "80"), "service-IBHLH6PI-default/agnhost/tcp/")
    ]


@pytest.mark.parametrize("capture", by_mode("iptables"))
def test_iptables_mode_has_no_kube_proxy_nft_table(capture: Capture) -> None:
    ruleset = parse_nft_json(capture.output("nft-j-list-ruleset"))
    assert kube_proxy_table(ruleset) is None
    # iptables-nft's own tables are there: the ruleset was read, not empty.
    assert ruleset.table("ip", "nat") is not None


@pytest.mark.parametrize("capture", by_mode("iptables", "nftables"))
def test_ipvsadm_says_the_kernel_lacks_ip_vs(capture: Capture) -> None:
    text = capture.output("ipvsadm-Ln")
    assert ipvs_unavailable_reason(text) is not None
    with pytest.raises(ParseError, match="the kernel lacks IP_VS"):
        parse_ipvsadm(text)
