"""``kindlab explain`` on a node that replays outputs captured from a real kind cluster.

The node's commands answer with the files in tests/fixtures/captured/v1.34.4-iptables
(or v1.34.4-nftables; see their README), so explain's probes, parsers and walks run on
real output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kindlab.drivers.kube import Endpoint, ServiceInfo, ServicePort
from kindlab.drivers.node import ExecResult
from kindlab.drivers.state import ClusterState, write_state
from kindlab.errors import PreconditionError
from kindlab.lab import explain, probes
from kindlab.netfilter.nft_walker import walk_nft
from kindlab.netfilter.render import text
from kindlab.netfilter.walker import Packet, walk
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.iptables import parse_iptables_save
from kindlab.parsers.nft import parse_nft_json
from kindlab.parsers.route import parse_route_get

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured" / "v1.34.4-iptables"
CLUSTER_IP = "10.105.96.116"  # Service default/agnhost in that capture
NODE_IP = "172.19.0.2"
PODS = ("10.244.0.5", "10.244.0.6", "10.244.0.7")


class ReplayNode:
    """Answers the commands explain runs with what a real node printed."""

    names: ClassVar[list[str]] = []
    captured: ClassVar[Path] = CAPTURED

    def __init__(self, name: str, recorder: Callable[[ExecResult], None] | None = None) -> None:
        self.name = name
        self.names.append(name)

    def _result(self, argv: tuple[str, ...], capture: str, exit_code: int = 0) -> ExecResult:
        out = (self.captured / capture).read_text()
        return ExecResult(self.name, argv, exit_code, out, "", 0.0)

    def ping(self, ip: str, *, count: int, wait: float) -> ExecResult:
        return self._result(("ping", ip), "ping-c2-clusterip.out", exit_code=1)

    def ip_route_get(self, ip: str) -> ExecResult:
        return self._result(("ip", "route", "get", ip), "ip-route-get-clusterip.out")

    def ip_addr(self) -> ExecResult:
        return self._result(("ip", "-j", "addr"), "ip-j-addr.out")

    def http_get(self, ip: str, port: int, path: str) -> ExecResult:
        return ExecResult(self.name, ("curl", ip), 0, "agnhost-7d9f-abcde\n", "", 0.0)

    def iptables_save(self, table: str | None, *, counters: bool = False) -> ExecResult:
        return self._result(("iptables-save", "-t", str(table)), "iptables-save-t-nat.out")

    def nft_ruleset(self, *, json: bool = False) -> ExecResult:
        return self._result(("nft", "-j", "list", "ruleset"), "nft-j-list-ruleset.out")


class FakeKube:
    def service(self, namespace: str, name: str) -> ServiceInfo:
        endpoints = tuple(Endpoint(ip, True, "kindlab-x-control-plane", None) for ip in PODS)
        return ServiceInfo(
            namespace, name, CLUSTER_IP, (ServicePort("http", "TCP", 80, 8080),), endpoints
        )


def test_explain_prints_the_walks_as_kindlab_walk_does(monkeypatch: pytest.MonkeyPatch) -> None:
    def find_service(cluster_ip: str) -> tuple[ClusterState, Any, str]:
        state = ClusterState("kindlab-x", mode="iptables", complete=True)
        return state, FakeKube(), "default/agnhost"

    monkeypatch.setattr(explain, "find_service", find_service)
    monkeypatch.setattr(explain, "Node", ReplayNode)
    monkeypatch.setattr(ReplayNode, "names", [])
    said: list[str] = []
    explain.explain(CLUSTER_IP, say=said.append)
    out = "\n".join(said)

    nat = parse_iptables_save((CAPTURED / "iptables-save-t-nat.out").read_text()).table("nat")
    for packet in (
        Packet(dst=CLUSTER_IP, proto="icmp", src=NODE_IP),
        Packet(dst=CLUSTER_IP, proto="tcp", dport=80, src=NODE_IP),
    ):
        result = walk(nat, "OUTPUT", packet, local_addresses=_local_addresses())
        assert text(result) in out, f"explain did not print the walk of {packet.describe()}"
    assert "Result: not translated (ACCEPT)" in out
    assert "Result: translated: DNAT to 10.244.0.5:8080 1/3 (33.33%)" in out
    assert "ping from the node: 2 sent, 0 echo replies" in out
    assert "ip route get: unicast via 172.19.0.1 dev eth0" in said
    assert set(ReplayNode.names) == {"kindlab-x-control-plane"}


ROUTES = Path(__file__).resolve().parents[1] / "fixtures" / "route"


@pytest.mark.parametrize(
    ("capture", "line"),
    [
        ("via-gateway", "unicast via 172.17.0.1 dev eth0"),
        ("on-link", "unicast dev eth0"),
        ("local-kube-ipvs0", "local dev lo"),
        ("unreachable", "no route: No route to host (route type unreachable)"),
        ("prohibit", "no route: Permission denied (route type prohibit)"),
        ("network-unreachable", "no route: Network is unreachable"),
    ],
)
def test_the_route_line_says_where_the_packet_goes_or_why_not(capture: str, line: str) -> None:
    route = parse_route_get((ROUTES / f"{capture}.out").read_text())
    assert probes.summarize_route(route) == line


def test_a_reject_route_printed_as_a_route_is_no_route() -> None:
    # ip -6 route get prints some reject routes instead of failing (see test_parsers_route).
    route = parse_route_get(
        "unreachable fd00:200::1 from :: dev lo proto boot metric 1024 pref medium\n"
    )
    assert probes.summarize_route(route) == "no route: unreachable dev lo"


def test_the_service_is_found_in_a_complete_cluster_through_its_state_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path))
    states = tmp_path / "clusters"
    ips = {"kindlab-iptables": "10.96.0.10", "kindlab-nftables": CLUSTER_IP}
    for name in ("kindlab-iptables", "kindlab-nftables", "kindlab-ipvs"):
        write_state(ClusterState(name, mode=name.split("-")[1], complete=True))
        (states / f"{name}.kubeconfig").write_text("apiVersion: v1\n")
    write_state(ClusterState("kindlab-ipvs", mode="ipvs", complete=False))  # never came up
    asked: list[Path] = []

    class ApiOf:
        def __init__(self, kubeconfig: Path) -> None:
            asked.append(kubeconfig)
            self.name = kubeconfig.stem

        def cluster_ips(self) -> dict[str, str]:
            return {"default/agnhost": ips[self.name]}

    monkeypatch.setattr(explain, "Kube", ApiOf)
    state, kube, svc = explain.find_service(CLUSTER_IP)
    assert (state.name, state.mode, svc) == ("kindlab-nftables", "nftables", "default/agnhost")
    assert isinstance(kube, ApiOf) and kube.name == "kindlab-nftables"
    assert asked == [states / "kindlab-iptables.kubeconfig", states / "kindlab-nftables.kubeconfig"]
    with pytest.raises(PreconditionError, match="no running kindlab cluster has a Service"):
        explain.find_service("10.96.9.9")


def _local_addresses() -> list[str]:
    addrs = parse_ip_addr_json((CAPTURED / "ip-j-addr.out").read_text())
    return [a.local for _, a in addrs.addresses()]


NFT_CAPTURED = CAPTURED.parent / "v1.34.4-nftables"
NFT_CLUSTER_IP = "10.111.237.187"  # Service default/agnhost in that capture


def test_explain_draws_the_nftables_walks_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def find_service(cluster_ip: str) -> tuple[ClusterState, Any, str]:
        state = ClusterState("kindlab-x", mode="nftables", complete=True)
        return state, FakeKube(), "default/agnhost"

    monkeypatch.setattr(explain, "find_service", find_service)
    monkeypatch.setattr(explain, "Node", ReplayNode)
    monkeypatch.setattr(ReplayNode, "names", [])
    monkeypatch.setattr(ReplayNode, "captured", NFT_CAPTURED)
    said: list[str] = []
    explain.explain(NFT_CLUSTER_IP, say=said.append)
    out = "\n".join(said)

    ruleset = parse_nft_json((NFT_CAPTURED / "nft-j-list-ruleset.out").read_text())
    local = [
        a.local
        for _, a in parse_ip_addr_json((NFT_CAPTURED / "ip-j-addr.out").read_text()).addresses()
    ]
    for packet in (
        Packet(dst=NFT_CLUSTER_IP, proto="icmp", src=NODE_IP),
        Packet(dst=NFT_CLUSTER_IP, proto="tcp", dport=80, src=NODE_IP),
    ):
        result = walk_nft(ruleset, "OUTPUT", packet, local_addresses=local)
        assert text(result) in out, f"explain did not print the walk of {packet.describe()}"
    assert f"@cluster-ips: {NFT_CLUSTER_IP}" in said
    assert "Result: not translated (REJECT)" in out
    assert "REJECT with icmp port-unreachable, no translation" in out
    assert "Result: translated: DNAT to 10.244.0.5:8080 1/3 (33.33%)" in out
