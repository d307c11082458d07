"""The lab's sample workloads: deploy labs/manifests and wait until they serve."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kindlab.drivers.kube import Kube, ServiceInfo, WaitTimeout, load_manifests
from kindlab.drivers.node import Node
from kindlab.parsers.prometheus import Metrics, parse_prometheus
from kindlab.paths import manifests_dir
from kindlab.timing import scaled

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
    timeout: float | None = None,
) -> Samples:
    """Apply the sample manifests into ``namespace`` and wait for the endpoints."""
    docs = load_manifests(manifests or manifests_dir())
    kube.ensure_namespace(namespace, {"app.kubernetes.io/part-of": "kindlab"})
    kube.apply(docs, namespace=namespace)
    progress(f"waiting for {WEB_REPLICAS} ready endpoints of {namespace}/web")
    wait = scaled(240) if timeout is None else timeout
    web = kube.wait_service_endpoints(namespace, "web", WEB_REPLICAS, timeout=wait)
    empty = kube.service(namespace, "empty")
    return Samples(namespace=namespace, web=web, empty=empty)


_SYNCED = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
_QUEUED = "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"
_PENDING = (
    "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
    "kubeproxy_sync_proxy_rules_service_changes_pending",
)
#: Longer than kube-proxy's informers take to see an API change (milliseconds here).
INFORMER_LAG = 2.0


def proxy_synced(
    metrics: Metrics, since: float, now: float, lag: float = INFORMER_LAG
) -> tuple[bool, str]:
    """Has kube-proxy programmed every change it knows of, including those up to ``since``?

    Pure: reads kube-proxy's own gauges. It is in sync when nothing is pending and
    its last sync is no older than the last one it queued; and it knows of the
    changes up to ``since`` once it synced after ``since``, or once its informers
    have had ``lag`` seconds to see them (:data:`INFORMER_LAG`, scaled where the
    cluster runs slowly: under emulation everything, informers included, is several
    times slower, and "caught up" two seconds after a change may only mean that
    kube-proxy has not heard of it yet).
    """
    last = metrics.value(_SYNCED, ip_family="IPv4")
    queued = metrics.value(_QUEUED, ip_family="IPv4")
    pending = sum(metrics.value(name) or 0 for name in _PENDING)
    state = f"last sync {last}, last queued {queued}, pending changes {pending:g}"
    if last is None:
        return False, f"kube-proxy reports no sync yet ({state})"
    caught_up = pending == 0 and (queued is None or last >= queued)
    informed = last >= since or now - since >= lag
    return caught_up and informed, state


def wait_proxy_synced(
    nodes: Iterable[Node], *, since: float, timeout: float | None = None
) -> list[str]:
    """Wait until kube-proxy on every node has synced the changes made up to ``since``.

    The API saying "endpoints ready" is not kube-proxy having written its rules:
    the lab waits for kube-proxy's word before it looks at rules or traffic.
    Returns, per node, the gauges it ended on and how long it waited.
    """
    states = []
    for node in nodes:
        began = time.monotonic()
        limit = scaled(90) if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            result = node.http_get("127.0.0.1", 10249, "/metrics")
            ok, state = (
                proxy_synced(
                    parse_prometheus(result.stdout), since, time.time(), scaled(INFORMER_LAG)
                )
                if result.ok
                else (False, result.stderr.strip())
            )
            if ok:
                states.append(f"{node.name}: {state} (waited {time.monotonic() - began:.1f}s)")
                break
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"kube-proxy on {node.name} did not sync within {limit:g}s: {state}"
                )
            time.sleep(0.5)
    return states
