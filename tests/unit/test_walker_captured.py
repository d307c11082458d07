"""The walker on whole ``iptables-save`` dumps captured from real kind clusters.

Each folder under tests/fixtures/captured says in the README there how and when
it was captured. The walk must find every endpoint of the Service at an equal
share, and leave ICMP to the ClusterIP untranslated.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from kindlab.netfilter.walker import Packet, walk
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.iptables import Table, parse_iptables_save

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


# --- a Service with 1003 endpoints --------------------------------------------

BIG = CAPTURED / "v1.34.4-iptables-1000ep"
BIG_IP = "10.104.152.136"
BIG_DUMPS = ("iptables-save.out", "iptables-save-t-nat.out")


def big_endpoints() -> set[str]:
    """What the capture's manifest.json put in the Service's EndpointSlices."""
    manifest = json.loads((BIG / "manifest.json").read_text())
    slices = [i for i in manifest["items"] if i["kind"] == "EndpointSlice"]
    return {
        f"{address}:{s['ports'][0]['port']}"
        for s in slices
        for e in s["endpoints"]
        for address in e["addresses"]
    }


def big_nat(name: str = "iptables-save.out") -> Table:
    return parse_iptables_save((BIG / name).read_text()).table("nat")


def node_addresses() -> list[str]:
    addrs = parse_ip_addr_json((BIG / "ip-j-addr.out").read_text())
    return [a.local for _, a in addrs.addresses()]


@contextmanager
def stack_of(frames: int) -> Iterator[None]:
    """Let the code under test use at most ``frames`` more Python frames than the caller."""
    depth = len(inspect.stack(0))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@pytest.mark.parametrize("name", BIG_DUMPS)
def test_each_of_1003_endpoints_gets_an_equal_share_and_the_shares_sum_to_1(name: str) -> None:
    nat = big_nat(name)
    want = big_endpoints()
    assert len(want) == 1003
    # A walk that recursed once per endpoint would need thousands of frames.
    with stack_of(200):
        result = walk(nat, "OUTPUT", Packet(dst=BIG_IP, proto="tcp", dport=80))
    assert {o.to for o in result.outcomes} == want
    assert {o.share for o in result.outcomes} == {Fraction(1, 1003)}
    assert sum(o.share for o in result.outcomes) == 1
    assert result.determined


def test_from_the_node_with_its_addresses_known_every_rule_is_decided() -> None:
    packet = Packet(dst=BIG_IP, proto="tcp", dport=80, src="172.18.0.2")
    result = walk(big_nat(), "OUTPUT", packet, local_addresses=node_addresses())
    assert result.notes == ()
    assert len(result.translations) == 1003
    # The node is outside the pod range: the hairpin rule marks it for masquerade.
    assert [s.chain for s in result.path][-2:] == ["KUBE-MARK-MASQ", "KUBE-MARK-MASQ"]


@pytest.mark.parametrize("name", BIG_DUMPS)
def test_icmp_to_the_big_cluster_ip_is_not_translated(name: str) -> None:
    with stack_of(200):
        result = walk(big_nat(name), "OUTPUT", Packet(dst=BIG_IP, proto="icmp"))
    assert not result.translated
    assert [(o.verdict, o.share) for o in result.outcomes] == [("ACCEPT", Fraction(1))]


def test_the_walk_holds_each_step_once() -> None:
    result = walk(big_nat(), "OUTPUT", Packet(dst=BIG_IP, proto="tcp", dport=80))
    # Per endpoint: taken, its KUBE-SEP's two rules, and not taken (but the last).
    assert len(result.tree()) <= 4 * 1003 + 10
    assert len(result.tree(trace=True)) <= 4 * 1003 + 100
