"""Claim 10, every mode: a Service with no endpoints refuses TCP connections at
once (kube-proxy rejects them) instead of letting them time out; the rule or set
element that does it is shown. The post does not cover this case."""

from __future__ import annotations

import pytest

from kindlab.drivers.node import NodeBase
from kindlab.lab import probes
from kindlab.lab.report import Finding
from kindlab.lab.samples import Samples
from kindlab.netfilter.rules import reject_rules
from kindlab.parsers.nft import kube_proxy_table, no_endpoint_reject
from kindlab.pytest_plugin.markers import each_mode


def _rejecting_rule(mode: str, node: NodeBase, ip: str, port: int) -> str | None:
    """The rule (or element) that turns the connection away, as the node prints it."""
    if mode == "iptables":
        rules = reject_rules(probes.iptables(node, "filter").table("filter"), ip)
        return "\n".join(r.raw for r in rules) or None
    if mode == "nftables":
        table = kube_proxy_table(probes.nft(node))
        found = no_endpoint_reject(table, ip, "tcp", port) if table else None
        return found.text if found and found.rules else None
    # ipvs: the virtual service exists with no real servers; IPVS itself refuses.
    service = probes.ipvs(node).service(ip, port, "TCP")
    return service.raw if service is not None and not service.real_servers else None


@each_mode()
@pytest.mark.claim("no-endpoints")
def test_service_without_endpoints_refuses_tcp(
    mode: str, node: NodeBase, samples: Samples, finding: Finding
) -> None:
    empty = samples.empty
    port = empty.port("http").port
    finding.expected = (
        f"TCP {empty.cluster_ip}:{port} refused (not a timeout); a rule or set element rejecting it"
    )
    rule = _rejecting_rule(mode, node, empty.cluster_ip, port)
    connect = probes.tcp_connect(node, empty.cluster_ip, port)
    finding.observed = (
        f"TCP connect: {'connected' if connect.ok else connect.error or 'no answer'}; "
        f"rejected by: {rule or 'nothing found'}"
    )
    assert not empty.endpoints, finding.explain("the empty Service has endpoints")
    assert connect.refused, finding.explain("the connection was not refused")
    assert rule, finding.explain("no rule or element rejecting the Service was found")
