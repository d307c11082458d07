"""nftables mode (claim 9): the `ip kube-proxy` table holds the ClusterIP, TCP to
its port works, and a ping to it is rejected (kube-proxy rejects traffic to
ClusterIPs on ports no Service uses, since 1.30; 1.29's alpha mode has no such set
or rule, and its ping gets no echo reply). The post predates this mode."""

from __future__ import annotations

import pytest

from kindlab.drivers.node import NodeBase
from kindlab.lab import probes
from kindlab.lab.expectations import expect
from kindlab.lab.report import Finding
from kindlab.lab.samples import Samples
from kindlab.netfilter.nft_walker import walk_nft
from kindlab.netfilter.walker import Packet
from kindlab.parsers.nft import cluster_ip_entries, kube_proxy_table

pytestmark = pytest.mark.nftables


@pytest.mark.claim("nftables-table")
def test_kube_proxy_table_maps_the_clusterip_tcp_works_and_ping_is_rejected(
    node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    port = web.port("http").port
    ping_expectation = expect("ping-clusterip", "nftables", finding.kubernetes_version)
    wanted_error = ping_expectation.facts.get("icmp_error")
    set_expectation = expect("nftables-cluster-ips", "nftables", finding.kubernetes_version)
    has_set = bool(set_expectation.facts["cluster_ips_set"])
    view = probes.local_view(node)
    # kube-proxy's reject rule runs on the node, on the way out: the node itself answers,
    # with its own address (in ipvs mode the ClusterIP is local and answers as itself).
    rejected_by = f", sent by the node itself ({view.address}), not by the ClusterIP"
    finding.expected = (
        f"`ip kube-proxy` maps {web.cluster_ip} . tcp . {port} in @service-ips; "
        f"{set_expectation.text}; TCP answered by a pod; "
        f"ping: {ping_expectation.text}{rejected_by if wanted_error else ''}"
    )
    ruleset = probes.nft(node)
    table = kube_proxy_table(ruleset)
    assert table is not None, finding.explain("there is no `ip kube-proxy` table")
    icmp_walk = finding.walk(
        "ICMP echo from the node (ip kube-proxy, output hook)",
        walk_nft(
            ruleset,
            "OUTPUT",
            Packet(dst=web.cluster_ip, proto="icmp", src=view.address),
            local_addresses=view.local,
        ),
    )
    tcp_walk = finding.walk(
        f"TCP to port {port} from the node (ip kube-proxy, output hook)",
        walk_nft(
            ruleset,
            "OUTPUT",
            Packet(dst=web.cluster_ip, proto="tcp", dport=port, src=view.address),
            local_addresses=view.local,
        ),
    )
    icmp_ends = [f"{o.verdict} {o.reject_with or ''}".strip() for o in icmp_walk.outcomes]
    entries = cluster_ip_entries(table, web.cluster_ip)
    rejecting = [r for r in table.rules() if r.rejects and "@cluster-ips" in r.references]
    finding.evidence.note(
        "kube-proxy's nftables entries for the ClusterIP",
        "\n".join(
            [f"@cluster-ips: {e.text}" for e in entries.cluster_ips]
            + [f"@service-ips: {e.text}" for e in entries.service_ips]
            + [f"{r.chain}: {r.text}" for r in rejecting]
        ),
    )
    answer = probes.http(node, web.cluster_ip, port)
    ping = probes.ping(node, web.cluster_ip)
    pods = {e.pod for e in web.endpoints if e.ready and e.pod}
    finding.observed = (
        f"@cluster-ips: {[e.text for e in entries.cluster_ips]}; @service-ips: "
        f"{[e.text for e in entries.service_ips]}; reject rules on @cluster-ips: "
        f"{[f'{r.chain}: {r.text}' for r in rejecting]}; TCP: "
        f"{'answered by pod ' + answer.body if answer.ok else answer.error}; ping: "
        f"{probes.summarize_ping(ping)}; the node is {view.address}; the walk: ICMP ends "
        f"{icmp_ends}, TCP DNATed to {sorted(o.to or '?' for o in tcp_walk.translations)}"
    )
    if has_set:
        assert entries.cluster_ips, finding.explain("the ClusterIP is not in @cluster-ips")
    else:
        assert not entries.cluster_ips and not rejecting, finding.explain(
            "this version was expected to have no @cluster-ips set and no rule rejecting "
            "traffic to it, and it has them"
        )
    assert any(e.key == (web.cluster_ip, "tcp", str(port)) for e in entries.service_ips), (
        finding.explain("@service-ips does not map the ClusterIP's TCP port")
    )
    assert answer.ok and answer.body in pods, finding.explain("TCP was not answered by a pod")
    assert tcp_walk.translated and not icmp_walk.translated, finding.explain(
        "the walk through `ip kube-proxy` does not DNAT TCP, or translates ICMP"
    )
    assert ping.transmitted > 0, finding.explain(
        "ping sent no echo request, so nothing was there to be rejected"
    )
    assert ping.answered is ping_expectation.facts["answered"], finding.explain(
        "ping to the ClusterIP was answered"
    )
    if wanted_error:
        assert any(wanted_error in e.message for e in ping.icmp_errors), finding.explain(
            f"ping did not get {wanted_error}"
        )
        strangers = [ip for ip in ping.errors_from if ip not in view.local]
        assert not strangers, finding.explain(
            f"the ICMP errors came from {', '.join(strangers)}, not from the node itself: "
            "something other than kube-proxy's rule on the node turned the ping away"
        )
        assert rejecting, finding.explain("no rule rejects traffic to @cluster-ips")
        assert [o.verdict for o in icmp_walk.outcomes] == ["REJECT"], finding.explain(
            "the walk of the ping through `ip kube-proxy` does not end in a reject"
        )
