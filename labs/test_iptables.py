"""iptables mode (claims 3 to 6): why a ClusterIP does not answer ping.

The post: a ping from the node to a ClusterIP gets no answer; KUBE-SERVICES,
KUBE-SVC-* and KUBE-SEP-* only handle the Service's TCP port, with random
probabilities and DNAT; and the reason nobody answers is that "a virtual IP has
no MAC address". The rules part holds; the explanation does not: the ping never
enters PREROUTING, and it goes unanswered because no host owns the address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction

import pytest

from kindlab.drivers.node import NodeBase
from kindlab.lab import probes
from kindlab.lab.expectations import expect
from kindlab.lab.report import Finding
from kindlab.lab.samples import Samples
from kindlab.netfilter.rules import (
    even_split,
    hook_jumps,
    icmp_translations,
    probability_matches,
    service_rules,
)
from kindlab.netfilter.walker import Packet, WalkResult, walk
from kindlab.parsers.iptables import Rule, Table

pytestmark = pytest.mark.iptables


def walk_from(
    nat: Table,
    view: probes.LocalView,
    dst: str,
    proto: str,
    port: int | None = None,
    *,
    hook: str = "OUTPUT",
    src: str | None = None,
) -> WalkResult:
    """Walk a packet the node sends (OUTPUT) or one arriving from ``src`` (PREROUTING)."""
    packet = Packet(dst=dst, proto=proto, dport=port, src=src or view.address)
    return walk(nat, hook, packet, local_addresses=view.local)


@pytest.mark.claim("ping-clusterip")
def test_clusterip_gets_no_echo_reply_while_its_port_answers(
    node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    port = web.port("http").port
    expectation = expect("ping-clusterip", "iptables", finding.kubernetes_version)
    finding.expected = expectation.text
    ping = probes.ping(node, web.cluster_ip)
    answer = probes.http(node, web.cluster_ip, port)
    pods = {e.pod for e in web.endpoints if e.ready and e.pod}
    served = f"answered by pod {answer.body}" if answer.ok else f"failed: {answer.error}"
    finding.observed = (
        f"ping {web.cluster_ip}: {probes.summarize_ping(ping)}; "
        f"TCP {web.cluster_ip}:{port} {served}"
    )
    assert ping.transmitted > 0, finding.explain(
        "ping sent no echo request, so its silence shows nothing"
    )
    assert ping.answered is expectation.facts["answered"], finding.explain(
        "the ClusterIP answered ping in iptables mode"
    )
    assert answer.ok and answer.body in pods, finding.explain(
        f"TCP to the ClusterIP's port was not answered by one of the pods {sorted(pods)}"
    )


@pytest.mark.claim("iptables-rules")
def test_kube_services_matches_only_the_service_port_and_nothing_translates_icmp(
    node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    port = web.port("http").port
    view = probes.local_view(node)
    nat = probes.iptables(node, "nat").table("nat")
    jumps = hook_jumps(nat)
    svc = service_rules(nat, web.cluster_ip)
    finding.expected = (
        "nat PREROUTING and OUTPUT jump to KUBE-SERVICES; the ClusterIP's KUBE-SERVICES rules "
        f"match only tcp dport {port}; no rule translates ICMP to it"
    )
    icmp_out = finding.walk(
        "ICMP echo from the node (nat OUTPUT)",
        walk_from(nat, view, web.cluster_ip, "icmp"),
    )
    icmp_pre = finding.walk(
        "ICMP echo from a pod (nat PREROUTING)",
        walk_from(nat, view, web.cluster_ip, "icmp", hook="PREROUTING", src="10.244.0.99"),
    )
    tcp_out = finding.walk(
        f"TCP to port {port} from the node (nat OUTPUT)",
        walk_from(nat, view, web.cluster_ip, "tcp", port),
    )
    icmp_dnat = icmp_translations(nat, web.cluster_ip)
    finding.observed = (
        f"PREROUTING jumps: {len(jumps['PREROUTING'])}, OUTPUT jumps: {len(jumps['OUTPUT'])}; "
        f"ClusterIP rules: {[_brief(r) for r in svc.entry]}; "
        f"ICMP translated from OUTPUT: {icmp_out.translated}, from PREROUTING: "
        f"{icmp_pre.translated}; TCP translated: {tcp_out.translated}; "
        f"DNAT rules that could take ICMP: {len(icmp_dnat)}"
    )
    assert jumps["PREROUTING"] and jumps["OUTPUT"], finding.explain("a hook lacks its jump")
    assert svc.entry, finding.explain(f"KUBE-SERVICES has no rule for {web.cluster_ip}")
    for rule in svc.entry:
        assert (rule.protocol, rule.dport) == ("tcp", str(port)), finding.explain(
            f"a KUBE-SERVICES rule for the ClusterIP matches more than tcp/{port}: {rule.raw}"
        )
    assert svc.svc_chain, finding.explain("no KUBE-SERVICES rule jumps to a KUBE-SVC-* chain")
    assert not icmp_dnat, finding.explain(f"rules could DNAT ICMP: {[r.raw for r in icmp_dnat]}")
    assert [s.chain for s in icmp_out.path][:2] == ["OUTPUT", "KUBE-SERVICES"]
    assert not icmp_out.translated and not icmp_pre.translated, finding.explain(
        "the walker found a translation for ICMP"
    )
    assert tcp_out.translated, finding.explain("the walker found no DNAT for TCP to the port")


@pytest.mark.claim("iptables-probabilities")
def test_each_endpoint_gets_an_even_share(
    node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    port = web.port("http").port
    n = len(web.ready_ips)
    wanted = even_split(n)
    targets = sorted(f"{ip}:8080" for ip in web.ready_ips)
    finding.expected = (
        f"{n} KUBE-SEP rules with probabilities {[str(p) if p else 'none' for p in wanted]}; "
        f"each endpoint's share 1/{n}; each KUBE-SEP marks -s POD/32 for masquerade and "
        f"DNATs to one of {targets}"
    )
    view = probes.local_view(node)
    nat = probes.iptables(node, "nat").table("nat")
    svc = service_rules(nat, web.cluster_ip)
    tcp = finding.walk(
        f"TCP to {web.cluster_ip}:{port} from the node",
        walk_from(nat, view, web.cluster_ip, "tcp", port),
    )
    printed = [e.probability for e in svc.endpoints]
    shares = {o.to: o.share for o in tcp.translations}
    finding.observed = (
        f"{len(svc.endpoints)} KUBE-SEP rules with probabilities "
        f"{[p if p is not None else 'none' for p in printed]}; shares "
        f"{ {to: str(s) for to, s in sorted(shares.items())} }"
    )
    assert len(svc.endpoints) == n, finding.explain("KUBE-SVC has the wrong number of endpoints")
    for endpoint, want in zip(svc.endpoints, wanted, strict=True):
        assert probability_matches(endpoint.probability, want), finding.explain(
            f"{endpoint.rule.raw} should have probability {want}"
        )
        pod_ip = endpoint.to.rsplit(":", 1)[0] if endpoint.to else None
        assert endpoint.masq is not None and endpoint.masq.source == f"{pod_ip}/32", (
            finding.explain(f"{endpoint.sep_chain} lacks the hairpin masquerade rule")
        )
    assert sorted(e.to or "" for e in svc.endpoints) == targets, finding.explain("wrong DNATs")
    assert sorted(to for to in shares if to) == targets and set(shares.values()) == {
        Fraction(1, n)
    }, finding.explain(f"endpoints do not get 1/{n} each")


@contextlib.contextmanager
def temporary_rule(node: NodeBase, table: str, chain: str, spec: list[str]) -> Iterator[None]:
    """Insert a rule at the top of a chain, and always delete it again."""
    node.iptables("-t", table, "-I", chain, "1", *spec)
    try:
        yield
    finally:
        node.iptables("-t", table, "-D", chain, *spec)


def _counted(nat: Table, chain: str, comment: str) -> int:
    rule = next(r for r in nat.chain(chain).rules if r.comment == comment)
    assert rule.counters is not None
    return rule.counters.packets


@pytest.mark.claim("iptables-why")
def test_a_ping_from_the_node_takes_output_and_nobody_owns_the_clusterip(
    node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    ip = web.cluster_ip
    pod_ip = web.ready_ips[0]
    finding.expected = (
        "the echo request is counted in nat OUTPUT, never in PREROUTING; no interface holds "
        f"{ip}; `ip route get {ip}` leaves via the default gateway; with an ICMP DNAT to "
        f"{pod_ip} added by hand, ping is answered"
    )
    probe = "kindlab-probe: counts ICMP to the ClusterIP"
    count = ["-d", f"{ip}/32", "-p", "icmp", "-m", "comment", "--comment", probe]
    with (
        temporary_rule(node, "nat", "OUTPUT", count),
        temporary_rule(node, "nat", "PREROUTING", count),
    ):
        ping = probes.ping(node, ip, count=2)
        nat = probes.iptables(node, "nat", counters=True).table("nat")
        in_output = _counted(nat, "OUTPUT", probe)
        in_prerouting = _counted(nat, "PREROUTING", probe)
    owner = probes.addresses(node).owner(ip)
    route = probes.route(node, ip)
    dnat = [
        "-d",
        f"{ip}/32",
        "-p",
        "icmp",
        "-m",
        "comment",
        "--comment",
        "kindlab-experiment: ICMP DNAT to a pod",
        "-j",
        "DNAT",
        "--to-destination",
        pod_ip,
    ]
    with temporary_rule(node, "nat", "OUTPUT", dnat):
        answered = probes.ping(node, ip, count=2)
    finding.observed = (
        f"counted in nat OUTPUT: {in_output}, in PREROUTING: {in_prerouting} (ping: "
        f"{probes.summarize_ping(ping)}); owner of {ip}: {owner.name if owner else 'none'}; "
        f"route: {route.type} via {route.via} dev {route.dev}; with the ICMP DNAT: "
        f"{probes.summarize_ping(answered)}"
    )
    assert not ping.answered, finding.explain("the ClusterIP answered ping")
    assert in_output >= 1 and in_prerouting == 0, finding.explain(
        "the echo request did not take nat OUTPUT (only)"
    )
    assert owner is None, finding.explain(f"{ip} is on interface {owner and owner.name}")
    assert not route.is_local and route.via is not None, finding.explain(
        "the ClusterIP does not route to the default gateway"
    )
    assert answered.answered, finding.explain("the ICMP DNAT to a pod did not make ping answered")


def _brief(rule: Rule) -> str:
    return f"-d {rule.destination} -p {rule.protocol} --dport {rule.dport} -j {rule.target}"
