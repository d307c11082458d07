"""The lab's sample workloads: deploy labs/manifests and wait until they serve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kindlab.kube import Kube, ServiceInfo, load_manifests
from kindlab.paths import manifests_dir

NAMESPACE = "kindlab-lab"
#: Replicas of the ``web`` Deployment (labs/manifests/web.yaml).
WEB_REPLICAS = 3


@dataclass(frozen=True, slots=True)
class Samples:
    """The deployed sample Services, as read back from the API."""

    namespace: str
    web: ServiceInfo
    """ClusterIP Service with three ready agnhost endpoints on TCP 80 -> 8080."""
    empty: ServiceInfo
    """ClusterIP Service with no endpoints."""


def deploy_samples(
    kube: Kube,
    *,
    manifests: Path | None = None,
    namespace: str = NAMESPACE,
    progress: Callable[[str], None] = lambda _: None,
    timeout: float = 240,
) -> Samples:
    """Apply the sample manifests into ``namespace`` and wait for the endpoints."""
    docs = load_manifests(manifests or manifests_dir())
    kube.ensure_namespace(namespace, {"app.kubernetes.io/part-of": "kindlab"})
    kube.apply(docs, namespace=namespace)
    progress(f"waiting for {WEB_REPLICAS} ready endpoints of {namespace}/web")
    web = kube.wait_service_endpoints(namespace, "web", WEB_REPLICAS, timeout=timeout)
    empty = kube.service(namespace, "empty")
    return Samples(namespace=namespace, web=web, empty=empty)
