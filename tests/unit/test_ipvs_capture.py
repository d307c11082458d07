"""ipvs mode as captured from a real cluster (qemu guest with IP_VS, v1.34.4).

What the lab's ipvs checks assert, checked on the real output they would read:
every ClusterIP a /32 on kube-ipvs0, ipvsadm's virtual services, and a ping to the
ClusterIP rejected by KUBE-IPVS-FILTER with Port Unreachable from the ClusterIP.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kindlab.drivers.node import ExecResult, Node
from kindlab.lab import probes
from kindlab.lab.expectations import expect
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.iptables import parse_iptables_save
from kindlab.parsers.ipvsadm import parse_ipvsadm
from kindlab.parsers.ping import parse_ping
from kindlab.parsers.route import parse_route_get

CAPTURED = Path(__file__).parent.parent / "fixtures" / "captured" / "v1.34.4-ipvs"
WEB, EMPTY = "10.111.47.139", "10.99.86.209"
CLUSTER_IPS = {"10.96.0.1", "10.96.0.10", WEB, EMPTY}


def read(name: str) -> str:
    return (CAPTURED / name).read_text()


def test_every_clusterip_is_a_32_on_kube_ipvs0() -> None:
    link = parse_ip_addr_json(read("ip-j-addr.out")).link("kube-ipvs0")
    assert {a.local: a.prefixlen for a in link.inet()} == dict.fromkeys(CLUSTER_IPS, 32)
    assert "UP" not in link.flags  # a dummy device that stays down: its addresses are local
    route = parse_route_get(read("ip-route-get-clusterip.out"))
    assert route.is_local and route.dev == "lo"


def test_ipvsadm_lists_a_virtual_service_per_clusterip_port() -> None:
    table = parse_ipvsadm(read("ipvsadm-Ln.out"))
    assert {s.key for s in table.services} == {
        "TCP 10.96.0.1:443",
        "TCP 10.96.0.10:53",
        "TCP 10.96.0.10:9153",
        f"TCP {EMPTY}:80",
        f"TCP {WEB}:80",
        "UDP 10.96.0.10:53",
    }
    api = table.service("10.96.0.1", 443)
    assert api is not None and api.scheduler == "rr" and api.endpoints == ("172.18.0.2:6443",)
    empty = table.service(EMPTY, 80)
    assert empty is not None and empty.real_servers == ()


def test_ping_is_rejected_by_kube_ipvs_filter_from_the_clusterip() -> None:
    ping = parse_ping(read("ping-c2-clusterip.out") + read("ping-c2-clusterip.err"))
    wanted = expect("ping-clusterip", "ipvs", "v1.34.4")
    assert ping.answered is wanted.facts["answered"] is False
    assert {(e.from_addr, e.message) for e in ping.icmp_errors} == {
        (WEB, str(wanted.facts["icmp_error"]))
    }
    filt = parse_iptables_save(read("iptables-save.out")).table("filter")
    last = filt.chain("KUBE-IPVS-FILTER").rules[-1]
    assert last.target == "REJECT" and last.match("set") is not None
    assert any(r.target == "KUBE-IPVS-FILTER" for r in filt.chain("INPUT").rules)


# The capture of each command kindlab runs. They ran the same argv, except proxymode
# (`curl -s 127.0.0.1:10249/proxyMode`).
CAPTURE_OF = {
    ("ipvsadm", "-Ln"): "ipvsadm-Ln",
    ("curl", "-sS", "--max-time", "5", "http://127.0.0.1:10249/proxyMode"): "proxymode",
    ("curl", "-sS", "--max-time", "5", f"http://{EMPTY}:80/"): "curl-empty",
}


class CapturedNode(Node):
    """The captured node: each command kindlab runs is answered with what the real node printed."""

    def run(
        self, argv: Sequence[str], *, timeout: float | None = None, check: bool = False
    ) -> ExecResult:
        probe = CAPTURE_OF[tuple(argv)]

        def part(suffix: str) -> str:
            path = CAPTURED / f"{probe}{suffix}"
            return path.read_text() if path.exists() else ""

        code = int(part(".rc") or 0)
        result = ExecResult(self.name, tuple(argv), code, part(".out"), part(".err"), 0.0)
        return result.check() if check else result


def test_a_service_without_endpoints_is_turned_away_at_once() -> None:
    node = CapturedNode("kindlab-ipvs-control-plane")
    assert probes.proxy_mode(node) == "ipvs"
    service = probes.ipvs(node).service(EMPTY, 80, "TCP")
    assert service is not None and service.real_servers == ()
    answer = probes.http(node, EMPTY, 80, "/")
    # curl's exit 7, not a timeout (28): nothing to connect to. (curl does not say whether
    # it was refused; the lab's claim 10 asks with a bare TCP connect, which does.)
    assert (answer.ok, answer.result.exit_code, answer.result.timed_out) == (False, 7, False)
    assert "Could not connect to server" in answer.error
