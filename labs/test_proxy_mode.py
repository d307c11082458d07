"""Claims 1 and 2: kube-proxy runs the mode the cluster asked for, and ClusterIPs
come from the service range (10.96.0.0/12, as in the post)."""

from __future__ import annotations

import ipaddress

import pytest

from kindlab.drivers.node import NodeBase
from kindlab.drivers.target import LabCluster
from kindlab.lab import probes
from kindlab.lab.report import Finding
from kindlab.lab.samples import Samples
from kindlab.pytest_plugin.markers import each_mode


@each_mode()
@pytest.mark.claim("proxy-mode")
def test_kube_proxy_reports_the_mode_the_cluster_was_created_with(
    mode: str, node: NodeBase, finding: Finding
) -> None:
    finding.expected = f"127.0.0.1:10249/proxyMode answers {mode!r} (clusters/{mode}.yaml)"
    answer = probes.proxy_mode(node)
    finding.observed = f"127.0.0.1:10249/proxyMode answers {answer!r}"
    assert answer == mode, finding.explain(
        f"kube-proxy fell back from {mode} mode to {answer!r} mode"
    )


@each_mode()
@pytest.mark.claim("service-range")
def test_cluster_ips_come_from_the_service_range(
    mode: str, cluster: LabCluster, samples: Samples, finding: Finding
) -> None:
    service_range = ipaddress.ip_network(cluster.service_subnet)
    first = str(service_range[1])
    finding.expected = f"every ClusterIP in {service_range}; default/kubernetes is {first}"
    ips = cluster.kube.cluster_ips()
    finding.evidence.note(
        "Service ClusterIPs (Kubernetes API)",
        "\n".join(f"{name:40} {ip}" for name, ip in sorted(ips.items())),
    )
    outside = {n: ip for n, ip in ips.items() if ipaddress.ip_address(ip) not in service_range}
    finding.observed = (
        f"{len(ips)} ClusterIPs, {len(outside)} outside {service_range}; "
        f"default/kubernetes is {ips.get('default/kubernetes')}"
    )
    assert not outside, finding.explain(f"ClusterIPs outside the service range: {outside}")
    assert ips.get("default/kubernetes") == first, finding.explain(
        "kubernetes.default does not take the range's first address"
    )
