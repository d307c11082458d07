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
_COUNT = "kubeproxy_sync_proxy_rules_duration_seconds_count"
_SUM = "kubeproxy_sync_proxy_rules_duration_seconds_sum"
_PENDING = (
    "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
    "kubeproxy_sync_proxy_rules_service_changes_pending",
)
#: Longer than kube-proxy's informers take to see an API change (milliseconds here).
INFORMER_LAG = 2.0


@dataclass
class SyncWatch:
    """Has kube-proxy programmed what the API said at ``since``? Pure, fed one scrape at a time.

    What kube-proxy's metrics say (pkg/proxy/{iptables,ipvs,nftables}/proxier.go,
    v1.34): ``syncProxyRules`` takes the pending changes at its *start* (the pending
    gauges drop to 0 then), programs them, and sets ``last_timestamp`` at its *end*;
    its duration goes to the ``duration_seconds`` histogram; every change it hears of
    sets ``last_queued_timestamp``. So a sync that ended after ``since`` may have
    begun before it, with the old endpoints: under emulation one ipvs sync took 230 s,
    and a wait that took "synced after ``since``" from ``last_timestamp`` let claim 7
    look at ipvsadm while two of the changes were still unprogrammed (2026-11-28,
    kept in tests/fixtures/captured/v1.34.4-ipvs-tcg-race/).

    The wait therefore asks for a sync that *began* at least ``lag`` after ``since``
    (kube-proxy's informers had heard of the API's state by then), with nothing
    queued after it began and nothing pending. When a sync began is the end minus its
    duration, and the duration of the last sync is known from the histogram when it
    is the first one (count 1) or when the count rose by exactly one between two
    scrapes; otherwise the watch waits for the next sync.
    """

    since: float
    lag: float = INFORMER_LAG
    _count: float | None = None
    _sum: float = 0.0
    _began: float | None = None

    def observe(self, metrics: Metrics) -> tuple[bool, str]:
        """Feed one scrape of ``/metrics``; (synced?, what the gauges said)."""
        last = metrics.value(_SYNCED, ip_family="IPv4")
        queued = metrics.value(_QUEUED, ip_family="IPv4")
        count = metrics.value(_COUNT, ip_family="IPv4")
        total = metrics.value(_SUM, ip_family="IPv4") or 0.0
        pending = sum(metrics.value(name) or 0 for name in _PENDING)
        if last is None or not count:
            return False, f"kube-proxy reports no sync yet (pending changes {pending:g})"
        if count == 1:
            self._began = last - total
        elif self._count is not None and count == self._count + 1:
            self._began = last - (total - self._sum)
        elif self._count is None or count != self._count:
            self._began = None  # several syncs since the last scrape, or a restart
        self._count, self._sum = count, total
        need = self.since + self.lag
        began = "unknown yet" if self._began is None else f"{self._began:.1f}"
        state = (
            f"needs a sync begun after {need:.1f}; last sync began {began}, ended {last:.1f}; "
            f"last change queued {queued if queued is None else f'{queued:.1f}'}; "
            f"pending changes {pending:g}"
        )
        if self._began is None:
            return False, state
        fresh = self._began >= need
        caught_up = pending == 0 and (queued is None or queued <= self._began)
        return fresh and caught_up, state


def wait_proxy_synced(
    nodes: Iterable[Node], *, since: float, timeout: float | None = None
) -> list[str]:
    """Wait until kube-proxy on every node has programmed what the API said at ``since``.

    The API saying "endpoints ready" is not kube-proxy having written its rules:
    the lab waits for a sync of kube-proxy's that began after it had heard of them
    (:class:`SyncWatch`), before it looks at rules or traffic. Idle, that is its next
    periodic sync (``syncPeriod``, 30 s by default). Returns, per node, the gauges it
    ended on and how long it waited.
    """
    states = []
    for node in nodes:
        began = time.monotonic()
        limit = scaled(120) if timeout is None else timeout
        deadline = time.monotonic() + limit
        watch = SyncWatch(since, scaled(INFORMER_LAG))
        while True:
            result = node.http_get("127.0.0.1", 10249, "/metrics")
            ok, state = (
                watch.observe(parse_prometheus(result.stdout))
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
