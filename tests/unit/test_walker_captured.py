"""The walker on whole ``iptables-save`` dumps captured from real kind clusters.

Each folder under tests/fixtures/captured says in the README there how and when
it was captured. The walk must find every endpoint of the Service at an equal
share, and leave ICMP to the ClusterIP untranslated.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from kindlab.parsers.iptables import Table, parse_iptables_save
from kindlab.walker import Packet, walk

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"
DUMPS = ("iptables-save.out", "iptables-save-t-nat.out", "iptables-save-c.out")


@dataclass(frozen=True)
class Capture:
    folder: str
    cluster_ip: str
    port: int
    endpoints: tuple[str, ...]


AGNHOST = Capture(
    "v1.34.4-iptables",
    "10.105.96.116",
    80,
    ("10.244.0.5:8080", "10.244.0.6:8080", "10.244.0.7:8080"),
)


def nat_of(capture: Capture, name: str) -> Table:
    return parse_iptables_save((CAPTURED / capture.folder / name).read_text()).table("nat")


@pytest.mark.parametrize("name", DUMPS)
def test_tcp_to_the_cluster_ip_reaches_each_endpoint_at_one_third(name: str) -> None:
    nat = nat_of(AGNHOST, name)
    packet = Packet(dst=AGNHOST.cluster_ip, proto="tcp", dport=AGNHOST.port)
    result = walk(nat, "OUTPUT", packet)
    assert result.determined
    assert {o.to: o.share for o in result.outcomes} == {
        ep: Fraction(1, 3) for ep in AGNHOST.endpoints
    }
    assert [o.verdict for o in result.outcomes] == ["DNAT"] * 3
    assert [s.chain for s in result.path][:2] == ["OUTPUT", "KUBE-SERVICES"]


@pytest.mark.parametrize("name", DUMPS)
def test_icmp_to_the_cluster_ip_is_not_translated(name: str) -> None:
    result = walk(nat_of(AGNHOST, name), "OUTPUT", Packet(dst=AGNHOST.cluster_ip, proto="icmp"))
    assert not result.translated
    assert [(o.verdict, o.share) for o in result.outcomes] == [("ACCEPT", Fraction(1))]
    assert result.path[-1].action == "policy ACCEPT"
