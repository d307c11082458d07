"""Claim 11, every mode, multi-node layout: where the endpoints are does not change the answers.

A Service whose endpoints all run on one worker (labs/manifests/multinode, pinned by the
worker's label), probed from where none of them is: from the other worker, a node
with no local endpoint, and from a pod on that worker. kube-proxy programs every node
alike, so ping to the ClusterIP gets the mode's answer (claims 3, 8, 9: iptables
silence or an ICMP error from elsewhere, nftables and ipvs a reject from the node) and
TCP to its port is answered by a pod on the endpoints' node.

"From a pod" is the client pod's network namespace, entered from its node
(:mod:`kindlab.drivers.netns`): the packets leave through the pod's interface with the
pod's address, as the pod's own would.

These checks need the multi-node layout (``--cluster-layout multinode``); in the
single-node one they are deselected, before any cluster is made.
"""

from __future__ import annotations

import time

import pytest

from kindlab.drivers.clusters import Cluster
from kindlab.drivers.netns import pod_netns
from kindlab.drivers.node import Node
from kindlab.lab import probes
from kindlab.lab.evidence import Evidence
from kindlab.lab.expectations import expect
from kindlab.lab.report import Finding
from kindlab.lab.samples import AcrossNodes, deploy_across_nodes, wait_proxy_synced
from kindlab.pytest_plugin.markers import each_mode
from kindlab.pytest_plugin.output import say

#: Where a probe starts: the worker with no endpoint, or the client pod on it.
VANTAGES = ("node", "pod")
_deployed = pytest.StashKey[dict[str, AcrossNodes]]()


#: Selected only in the multi-node layout (kindlab.pytest_plugin.markers).
pytestmark = pytest.mark.multinode


@pytest.fixture
def across(cluster: Cluster, pytestconfig: pytest.Config) -> AcrossNodes:
    """labs/manifests/multinode, deployed once per cluster, kube-proxy synced on every node."""
    deployed = pytestconfig.stash.setdefault(_deployed, {})
    if cluster.name not in deployed:
        since = time.time()
        spread = deploy_across_nodes(cluster.kube, progress=lambda m: say(pytestconfig, m))
        nodes = [cluster.node(n) for n in cluster.node_names]
        for state in wait_proxy_synced(nodes, since=since):
            say(pytestconfig, f"kube-proxy synced: {state}")
        deployed[cluster.name] = spread
    return deployed[cluster.name]


def _vantage(vantage: str, cluster: Cluster, across: AcrossNodes, evidence: Evidence) -> Node:
    """The client's node (no endpoint of its own), or the client pod's network namespace."""
    node_name = across.client.node
    assert node_name, f"the client pod's endpoint names no node: {across.client}"
    node = cluster.node(node_name, recorder=evidence.record)
    if vantage == "node":
        return node
    return pod_netns(node, across.client.ip, pod=across.client.pod or "")


def _where(vantage: str, probe: Node, across: AcrossNodes) -> str:
    if vantage == "node":
        return f"node {probe.name} (no endpoint of its own)"
    return f"pod {across.client.pod} ({across.client.ip}) on node {probe.name}"


@each_mode()
@pytest.mark.parametrize("vantage", VANTAGES)
@pytest.mark.claim("across-nodes")
def test_ping_from_where_no_endpoint_runs_gets_the_modes_answer(
    mode: str,
    vantage: str,
    cluster: Cluster,
    across: AcrossNodes,
    evidence: Evidence,
    finding: Finding,
) -> None:
    pinned = across.pinned
    expectation = expect("ping-clusterip", mode, finding.kubernetes_version)
    wanted_error = expectation.facts.get("icmp_error")
    probe = _vantage(vantage, cluster, across, evidence)
    where = _where(vantage, probe, across)
    # The ICMP error of a reject comes from the node the packet went through.
    node_addresses = probes.local_view(cluster.node(probe.name)).local
    finding.expected = f"from {where}: {expectation.text.split(';')[0]}"
    ping = probes.ping(probe, pinned.cluster_ip)
    finding.observed = (
        f"from {where}, endpoints on {sorted(across.endpoint_nodes)}: ping "
        f"{pinned.cluster_ip}: {probes.summarize_ping(ping)}"
    )
    assert probe.name not in across.endpoint_nodes, finding.explain(
        f"the probe's node {probe.name} runs an endpoint of the Service"
    )
    assert ping.transmitted > 0, finding.explain(
        "ping sent no echo request, so its silence shows nothing"
    )
    assert ping.answered is expectation.facts["answered"], finding.explain(
        f"ping from {where} was {'not ' if expectation.facts['answered'] else ''}answered"
    )
    if wanted_error:
        assert any(wanted_error in e.message for e in ping.icmp_errors), finding.explain(
            f"ping did not get {wanted_error}"
        )
        strangers = [ip for ip in ping.errors_from if ip not in node_addresses]
        assert not strangers, finding.explain(
            f"the ICMP errors came from {', '.join(strangers)}, not from {probe.name}, "
            "the node the ping went through"
        )


@each_mode()
@pytest.mark.parametrize("vantage", VANTAGES)
@pytest.mark.claim("across-nodes")
def test_tcp_from_where_no_endpoint_runs_is_answered_by_a_pod_on_the_other_node(
    mode: str,
    vantage: str,
    cluster: Cluster,
    across: AcrossNodes,
    evidence: Evidence,
    finding: Finding,
) -> None:
    pinned = across.pinned
    port = pinned.port("http").port
    probe = _vantage(vantage, cluster, across, evidence)
    where = _where(vantage, probe, across)
    pods = {e.pod: e.node for e in pinned.endpoints if e.ready and e.pod}
    finding.expected = (
        f"from {where}: TCP {pinned.cluster_ip}:{port} answered by one of the pods "
        f"{sorted(pods)}, on {sorted(across.endpoint_nodes)}"
    )
    answers = [probes.http(probe, pinned.cluster_ip, port) for _ in range(4)]
    served = [a.body if a.ok else f"failed: {a.error}" for a in answers]
    finding.observed = f"from {where}: 4 requests to {pinned.cluster_ip}:{port}: {served}"
    assert probe.name not in across.endpoint_nodes, finding.explain(
        f"the probe's node {probe.name} runs an endpoint of the Service"
    )
    for answer in answers:
        assert answer.ok and answer.body in pods, finding.explain(
            f"a request was not answered by one of the pods {sorted(pods)}"
        )
        assert pods[answer.body] != probe.name, finding.explain(
            f"pod {answer.body} answered from the probe's own node"
        )
