"""The nftables walker on ``nft -j list ruleset`` captured from real kind clusters.

tests/fixtures/captured/v1.34.4-nftables: kube-proxy v1.34.4 in nftables mode,
Service default/agnhost (ClusterIP 10.111.237.187, port 80, endpoints
10.244.0.5-7:8080); its README says how. A ping from the node got "Destination
Port Unreachable" from the node itself; the walk must say why.
tests/fixtures/nft: a hand-built kube-proxy-shaped table loaded into a real nft
(the only ruleset here with a Service without endpoints; see its README).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from bench.nft_walk import synthesize
from kindlab.netfilter.nft_walker import walk_nft
from kindlab.netfilter.render import describe_outcome, mermaid, text
from kindlab.netfilter.walker import Packet, WalkBudgetError, WalkResult
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.nft import NftRuleset, parse_nft_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURE = FIXTURES / "captured" / "v1.34.4-nftables"
BIG = FIXTURES / "captured" / "v1.34.4-nftables-1000ep"
CLUSTER_IP = "10.111.237.187"
ENDPOINTS = ("10.244.0.5:8080", "10.244.0.6:8080", "10.244.0.7:8080")
NODE = "172.19.0.2"


@pytest.fixture(scope="module")
def ruleset() -> NftRuleset:
    return parse_nft_json((CAPTURE / "nft-j-list-ruleset.out").read_text())


@pytest.fixture(scope="module")
def local() -> tuple[str, ...]:
    addrs = parse_ip_addr_json((CAPTURE / "ip-j-addr.out").read_text())
    return tuple(a.local for _, a in addrs.addresses())


def shares(result: WalkResult) -> dict[str | None, Fraction]:
    return {o.to: o.share for o in result.outcomes}


def test_tcp_to_the_cluster_ip_reaches_each_endpoint_at_one_third(ruleset: NftRuleset) -> None:
    result = walk_nft(ruleset, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80))
    assert result.translated and result.determined
    assert shares(result) == dict.fromkeys(ENDPOINTS, Fraction(1, 3))
    assert sum(o.share for o in result.outcomes) == 1
    assert [o.verdict for o in result.outcomes] == ["DNAT"] * 3
    chains = [s.chain for s in result.path]
    assert chains[:5] == [
        "filter-output-pre-dnat",
        "firewall-check",
        "filter-output-pre-dnat",
        "nat-output",
        "services",
    ]
    # After the DNAT the filter chains see the endpoint, not the ClusterIP: no reject.
    for outcome in result.outcomes:
        steps = outcome.path
        dnat = next(s for s in steps if s.action.startswith("dnat to"))
        assert dnat.enters == "filter-output"
        assert steps[-1].chain == "filter-output" and steps[-1].action == "policy accept"


def test_the_endpoint_is_chosen_by_numgen_and_shown_with_its_handle(ruleset: NftRuleset) -> None:
    result = walk_nft(ruleset, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80))
    randoms = [t.step for t in result.tree() if t.step.matched == "random: taken"]
    assert [s.share for s in randoms] == [Fraction(1, 3)] * 3
    assert {s.handle for s in randoms} == {83}
    assert all(s.raw and s.raw.startswith("numgen random mod 3 vmap") for s in randoms)
    out = text(result)
    assert f"Walking tcp ? -> {CLUSTER_IP}:80 through ip kube-proxy OUTPUT." in out
    assert "service-IBHLH6PI-default/agnhost/tcp/ [handle 83]" in out
    chart = mermaid(result)
    assert chart.count('-->|"1/3 (33.33%)"|') == 3
    assert '["ip kube-proxy filter-output-pre-dnat"]' in chart


def test_icmp_to_the_cluster_ip_is_rejected_by_the_node_untranslated(ruleset: NftRuleset) -> None:
    result = walk_nft(ruleset, "OUTPUT", Packet(dst=CLUSTER_IP, proto="icmp"))
    assert not result.translated and result.determined
    (outcome,) = result.outcomes
    assert (outcome.verdict, outcome.reject_with, outcome.share) == (
        "REJECT",
        "icmp port-unreachable",
        Fraction(1),
    )
    last = result.path[-1]
    assert (last.chain, last.handle) == ("cluster-ips-check", 40)
    assert last.raw is not None and "ip daddr @cluster-ips reject" in last.raw
    assert f"ip daddr {CLUSTER_IP} in @cluster-ips" in last.why
    # nft's "reject" in the ip family answers ICMP port unreachable, from the node itself:
    # what the ping in this capture got.
    ping = (CAPTURE / "ping-c2-clusterip.out").read_text()
    assert f"From {NODE} icmp_seq=1 Destination Port Unreachable" in ping
    assert describe_outcome(outcome) == (
        "REJECT with icmp port-unreachable, no translation, share 1 (100%)"
    )
    assert result.to_json()["endings"][0]["reject_with"] == "icmp port-unreachable"


def test_tcp_to_a_port_the_service_does_not_have_is_rejected(ruleset: NftRuleset) -> None:
    result = walk_nft(ruleset, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=81))
    assert [(o.verdict, o.to) for o in result.outcomes] == [("REJECT", None)]
    assert any(
        s.chain == "services" and f"no element {CLUSTER_IP} . tcp . 81 in @service-ips" in s.why
        for s in result.outcomes[0].trace
    )


@pytest.mark.parametrize("dst", ["8.8.8.8", "10.244.0.5", NODE])
def test_a_non_service_address_passes_untouched(ruleset: NftRuleset, dst: str) -> None:
    result = walk_nft(ruleset, "OUTPUT", Packet(dst=dst, proto="tcp", dport=8080))
    assert [(o.verdict, o.to, o.share) for o in result.outcomes] == [("ACCEPT", None, Fraction(1))]
    assert result.path[-1].matched == "policy" and result.path[-1].chain == "filter-output"
    assert not result.translated and result.determined


def test_an_unallocated_cluster_ip_is_dropped(ruleset: NftRuleset) -> None:
    result = walk_nft(ruleset, "OUTPUT", Packet(dst="10.96.5.5", proto="udp", dport=53))
    assert [o.verdict for o in result.outcomes] == ["DROP"]
    assert "ip daddr 10.96.5.5 in 10.96.0.0/12" in result.path[-1].why


def test_from_a_pod_the_walk_is_routed_through_forward(
    ruleset: NftRuleset, local: tuple[str, ...]
) -> None:
    pod = "10.244.0.9"
    tcp = walk_nft(
        ruleset,
        "PREROUTING",
        Packet(dst=CLUSTER_IP, proto="tcp", dport=80, src=pod),
        local_addresses=local,
    )
    assert shares(tcp) == dict.fromkeys(ENDPOINTS, Fraction(1, 3))
    assert all(o.path[-1].chain == "filter-forward" for o in tcp.outcomes)
    icmp = walk_nft(
        ruleset, "PREROUTING", Packet(dst=CLUSTER_IP, proto="icmp", src=pod), local_addresses=local
    )
    assert [(o.verdict, o.reject_with) for o in icmp.outcomes] == [
        ("REJECT", "icmp port-unreachable")
    ]
    assert "filter-forward" in [s.chain for s in icmp.path]


def test_without_local_addresses_the_routing_is_an_assumption(ruleset: NftRuleset) -> None:
    icmp = walk_nft(ruleset, "PREROUTING", Packet(dst=CLUSTER_IP, proto="icmp", src="10.244.0.9"))
    assert not icmp.determined
    ends = {o.verdict: o.assumptions for o in icmp.outcomes}
    assert set(ends) == {"ACCEPT", "REJECT"}
    assert "is an address of this node" in ends["ACCEPT"][0]
    assert "is forwarded" in ends["REJECT"][0]


def test_the_json_has_the_shape_of_the_iptables_walk(ruleset: NftRuleset) -> None:
    doc = walk_nft(ruleset, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80)).to_json()
    assert doc["table"] == "ip kube-proxy" and doc["hook"] == "OUTPUT"
    assert doc["translated"] is True
    assert sorted(o["to"] for o in doc["outcomes"]) == list(ENDPOINTS)
    assert [o["probability"] for o in doc["outcomes"]] == pytest.approx([1 / 3] * 3)
    assert {o["share"] for o in doc["outcomes"]} == {"1/3"}
    assert all(s["rule"] is None or isinstance(s["handle"], int) for s in doc["path"])
    assert doc["path"][0]["line"] is None


def test_a_service_without_endpoints_is_rejected() -> None:
    # Hand-built table (real nft output): kindlab/empty 10.96.100.5:80 has no endpoints.
    rs = parse_nft_json((FIXTURES / "nft" / "kube-proxy-handbuilt-ruleset.out").read_text())
    result = walk_nft(rs, "OUTPUT", Packet(dst="10.96.100.5", proto="tcp", dport=80))
    (outcome,) = result.outcomes
    assert (outcome.verdict, outcome.reject_with) == ("REJECT", "icmp port-unreachable")
    chains = [s.chain for s in result.path]
    assert chains[-3:] == ["filter-output", "service-endpoints-check", "reject-chain"]
    lookup = result.path[-2]
    assert 'comment "kindlab/empty:http" in @no-endpoint-services' in lookup.why
    assert lookup.action == "goto reject-chain"


def test_the_budget_ends_the_walk_with_a_typed_error(ruleset: NftRuleset) -> None:
    with pytest.raises(WalkBudgetError, match="after 5 steps"):
        walk_nft(ruleset, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80), max_steps=5)


# --- more than 1000 endpoints --------------------------------------------------------


def test_1003_endpoints_scaled_from_the_capture_each_get_an_equal_share() -> None:
    """Synthetic: the real capture's Service rewritten for 1003 endpoints (bench/nft_walk.py)."""
    rs = parse_nft_json(synthesize((CAPTURE / "nft-j-list-ruleset.out").read_text(), 1003))
    result = walk_nft(rs, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80))
    assert len(result.translations) == 1003
    assert {o.share for o in result.outcomes} == {Fraction(1, 1003)}
    assert sum(o.share for o in result.outcomes) == 1
    assert len({o.to for o in result.outcomes}) == 1003
    icmp = walk_nft(rs, "OUTPUT", Packet(dst=CLUSTER_IP, proto="icmp"))
    assert [(o.verdict, o.reject_with) for o in icmp.outcomes] == [
        ("REJECT", "icmp port-unreachable")
    ]
    # Each way shows the one element it took, not all 1003.
    assert max(len(s.raw or "") for s in (t.step for t in result.tree())) < 300


@pytest.mark.skipif(
    not (BIG / "nft-j-list-ruleset.out").exists(),
    reason="no real 1000-endpoint nftables capture yet: run "
    "`python tests/fixtures/captured/capture_1000ep.py nftables` (needs Docker and kind)",
)
def test_a_real_service_with_1003_endpoints_gets_equal_shares_and_icmp_is_rejected() -> None:
    from tests.fixtures.captured.capture_1000ep import SERVICE_PORT, read_capture

    capture = read_capture(BIG)
    rs = parse_nft_json((BIG / "nft-j-list-ruleset.out").read_text())
    tcp = walk_nft(rs, "OUTPUT", Packet(dst=capture.cluster_ip, proto="tcp", dport=SERVICE_PORT))
    assert {o.to for o in tcp.outcomes} == capture.endpoints
    assert {o.share for o in tcp.outcomes} == {Fraction(1, len(capture.endpoints))}
    assert sum(o.share for o in tcp.outcomes) == 1
    icmp = walk_nft(rs, "OUTPUT", Packet(dst=capture.cluster_ip, proto="icmp"))
    assert not icmp.translated
    assert [(o.verdict, o.reject_with) for o in icmp.outcomes] == [
        ("REJECT", "icmp port-unreachable")
    ]
    empty = walk_nft(
        rs, "OUTPUT", Packet(dst=capture.empty_cluster_ip, proto="tcp", dport=SERVICE_PORT)
    )
    assert [o.verdict for o in empty.outcomes] == ["REJECT"]
    assert "reject-chain" in [s.chain for s in empty.path]
