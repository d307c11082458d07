"""ipvs mode (claims 7 and 8): every ClusterIP sits on kube-ipvs0, and whether it
answers ping depends on the version: up to 1.25 it does (the post's claim); from
1.26 kube-proxy's KUBE-IPVS-FILTER chain rejects it.

These checks need IP_VS and the dummy device in the host kernel (kind nodes share
it); where they are missing the tests skip, naming what is missing."""

from __future__ import annotations

import pytest

from kindlab.drivers.node import NodeBase
from kindlab.drivers.target import LabCluster
from kindlab.lab import probes
from kindlab.lab.expectations import Version, expect
from kindlab.lab.report import Finding
from kindlab.lab.samples import Samples

pytestmark = pytest.mark.ipvs


@pytest.mark.claim("ipvs-interface")
def test_every_clusterip_sits_on_kube_ipvs0_and_ipvsadm_lists_the_pods(
    cluster: LabCluster, node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    port = web.port("http").port
    cluster_ips = cluster.kube.cluster_ips()
    backends = sorted(f"{ip}:8080" for ip in web.ready_ips)
    finding.expected = (
        f"kube-ipvs0 carries all {len(cluster_ips)} ClusterIPs as /32; ipvsadm lists "
        f"TCP {web.cluster_ip}:{port} with real servers {backends}; TCP answered by a pod"
    )
    ipvs0 = probes.addresses(node).link("kube-ipvs0")
    on_ipvs0 = {a.local: a.prefixlen for a in ipvs0.inet()}
    service = probes.ipvs(node).service(web.cluster_ip, port, "TCP")
    answer = probes.http(node, web.cluster_ip, port)
    missing = sorted(set(cluster_ips.values()) - set(on_ipvs0))
    finding.observed = (
        f"kube-ipvs0 holds {len(on_ipvs0)} addresses, missing {missing}; ipvsadm: "
        f"{service.key if service else 'no such virtual service'} -> "
        f"{list(service.endpoints) if service else []}; TCP: "
        f"{'answered by pod ' + answer.body if answer.ok else answer.error}"
    )
    assert not missing, finding.explain("ClusterIPs missing from kube-ipvs0")
    assert all(on_ipvs0[ip] == 32 for ip in cluster_ips.values()), finding.explain("not /32")
    assert service is not None, finding.explain("ipvsadm has no virtual service for it")
    assert sorted(service.endpoints) == backends, finding.explain("wrong real servers")
    assert answer.ok, finding.explain("TCP to ClusterIP:port was not answered")


@pytest.mark.claim("ipvs-ping")
def test_clusterip_answers_ping_only_before_1_26(
    node: NodeBase, samples: Samples, finding: Finding
) -> None:
    web = samples.web
    expectation = expect("ping-clusterip", "ipvs", finding.kubernetes_version)
    finding.expected = f"Kubernetes {expectation.versions}: {expectation.text}"
    ping = probes.ping(node, web.cluster_ip)
    filter_rules = [
        r.raw
        for r in probes.iptables(node, "filter").table("filter").rules()
        if r.chain == "KUBE-IPVS-FILTER"
    ]
    finding.observed = (
        f"ping: {probes.summarize_ping(ping)}; KUBE-IPVS-FILTER rules: {len(filter_rules)}"
    )
    assert ping.answered is expectation.facts["answered"], finding.explain(
        "ping to the ClusterIP did not behave as this version should"
    )
    wanted_error = expectation.facts.get("icmp_error")
    if wanted_error:
        assert any(
            wanted_error in e.message and e.from_addr == web.cluster_ip for e in ping.icmp_errors
        ), finding.explain(f"ping did not get {wanted_error} from the ClusterIP")
    if Version.parse(finding.kubernetes_version) >= Version(1, 26):
        assert any("REJECT" in r for r in filter_rules), finding.explain(
            "KUBE-IPVS-FILTER has no REJECT rule"
        )
