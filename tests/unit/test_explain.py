"""``kindlab explain`` on a node that replays outputs captured from a real kind cluster.

The node's commands answer with the files in tests/fixtures/captured/v1.34.4-iptables
(see its README), so explain's probes, parsers and walks run on real output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kindlab import explain
from kindlab.kube import Endpoint, ServiceInfo, ServicePort
from kindlab.node import ExecResult
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.iptables import parse_iptables_save
from kindlab.walk_render import text
from kindlab.walker import Packet, walk

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured" / "v1.34.4-iptables"
CLUSTER_IP = "10.105.96.116"  # Service default/agnhost in that capture
NODE_IP = "172.19.0.2"
PODS = ("10.244.0.5", "10.244.0.6", "10.244.0.7")


class ReplayNode:
    """Answers the commands explain runs with what a real node printed."""

    def __init__(self, name: str, recorder: Callable[[ExecResult], None] | None = None) -> None:
        self.name = name

    def _result(self, argv: tuple[str, ...], capture: str, exit_code: int = 0) -> ExecResult:
        out = (CAPTURED / capture).read_text()
        return ExecResult(self.name, argv, exit_code, out, "", 0.0)

    def ping(self, ip: str, *, count: int, wait: float) -> ExecResult:
        return self._result(("ping", ip), "ping-c2-clusterip.out", exit_code=1)

    def ip_route_get(self, ip: str) -> ExecResult:
        return self._result(("ip", "route", "get", ip), "ip-route-get-clusterip.out")

    def ip_addr(self, *, json: bool) -> ExecResult:
        return self._result(("ip", "-j", "addr"), "ip-j-addr.out")

    def http_get(self, ip: str, port: int, path: str) -> ExecResult:
        return ExecResult(self.name, ("curl", ip), 0, "agnhost-7d9f-abcde\n", "", 0.0)

    def iptables_save(self, table: str | None, *, counters: bool = False) -> ExecResult:
        return self._result(("iptables-save", "-t", str(table)), "iptables-save-t-nat.out")


class FakeKube:
    def service(self, namespace: str, name: str) -> ServiceInfo:
        endpoints = tuple(Endpoint(ip, True, "kindlab-x-control-plane", None) for ip in PODS)
        return ServiceInfo(
            namespace, name, CLUSTER_IP, (ServicePort("http", "TCP", 80, 8080),), endpoints
        )


def test_explain_prints_the_walks_as_kindlab_walk_does(monkeypatch: pytest.MonkeyPatch) -> None:
    def find_service(cluster_ip: str) -> tuple[str, str, Any, str]:
        return "kindlab-x", "iptables", FakeKube(), "default/agnhost"

    monkeypatch.setattr(explain, "find_service", find_service)
    monkeypatch.setattr(explain, "Node", ReplayNode)
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


def _local_addresses() -> list[str]:
    addrs = parse_ip_addr_json((CAPTURED / "ip-j-addr.out").read_text())
    return [a.local for _, a in addrs.addresses()]
