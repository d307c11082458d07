"""The lab's sample workloads: deploy labs/manifests and wait until they serve."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kindlab.drivers.kube import Endpoint, Kube, ServiceInfo, WaitTimeout, load_manifests
from kindlab.drivers.node import NodeBase
from kindlab.parsers.prometheus import Metrics, parse_prometheus
from kindlab.paths import manifests_dir
from kindlab.timing import scaled
from kindlab.versions import RELEASES, Minor

NAMESPACE = "kindlab-lab"
#: The e2e test server the sample pods run; the manifests name one tag of it.
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost"
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
    labels: Mapping[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
    timeout: float | None = None,
) -> Samples:
    """Apply the sample manifests into ``namespace`` (with ``labels``) and wait for the
    endpoints.

    The pods run the agnhost the cluster's version pins (:func:`agnhost_for`): a node
    image of kindlab holds that tag only, and the pods never pull.
    """
    docs = _for_version(kube, load_manifests(manifests or manifests_dir()))
    kube.ensure_namespace(namespace, {"app.kubernetes.io/part-of": "kindlab", **(labels or {})})
    kube.apply(docs, namespace=namespace)
    progress(f"waiting for {WEB_REPLICAS} ready endpoints of {namespace}/web")
    wait = scaled(240) if timeout is None else timeout
    web = kube.wait_service_endpoints(namespace, "web", WEB_REPLICAS, timeout=wait)
    empty = kube.service(namespace, "empty")
    return Samples(namespace=namespace, web=web, empty=empty)


#: The multi-node layout's workloads, applied only there (not by :func:`deploy_samples`).
ACROSS_NODES_DIR = "multinode"
#: Replicas of the ``pinned`` Deployment, all on the worker labelled ``endpoints``.
PINNED_REPLICAS = 2


@dataclass(frozen=True, slots=True)
class AcrossNodes:
    """The multi-node layout's Services, as read back from the API (labs/manifests/multinode)."""

    pinned: ServiceInfo
    """ClusterIP Service whose endpoints are all on one worker (``lab.kindlab/side=endpoints``)."""
    client: Endpoint
    """The client pod, on the other worker (``lab.kindlab/side=client``): its IP and node."""

    @property
    def endpoint_nodes(self) -> frozenset[str]:
        """The nodes the pinned Service's ready endpoints run on."""
        return frozenset(e.node for e in self.pinned.endpoints if e.ready and e.node)


def deploy_across_nodes(
    kube: Kube,
    *,
    manifests: Path | None = None,
    namespace: str = NAMESPACE,
    progress: Callable[[str], None] = lambda _: None,
    timeout: float | None = None,
) -> AcrossNodes:
    """Apply labs/manifests/multinode into ``namespace`` and wait for both Services' pods."""
    docs = _for_version(kube, load_manifests(manifests or manifests_dir() / ACROSS_NODES_DIR))
    kube.ensure_namespace(namespace, {"app.kubernetes.io/part-of": "kindlab"})
    kube.apply(docs, namespace=namespace)
    wait = scaled(240) if timeout is None else timeout
    progress(f"waiting for {PINNED_REPLICAS} ready endpoints of {namespace}/pinned and the client")
    pinned = kube.wait_service_endpoints(namespace, "pinned", PINNED_REPLICAS, timeout=wait)
    client = kube.wait_service_endpoints(namespace, "client", 1, timeout=wait)
    return AcrossNodes(pinned=pinned, client=next(e for e in client.endpoints if e.ready))


def agnhost_for(server_version: str) -> str | None:
    """The agnhost image a Kubernetes version pins (kindlab.versions; None: no pins known).

    >>> agnhost_for("v1.29.15"), agnhost_for("v1.34.4")
    ('registry.k8s.io/e2e-test-images/agnhost:2.47', 'registry.k8s.io/e2e-test-images/agnhost:2.56')
    >>> agnhost_for("v1.99.0") is None
    True
    """
    try:
        minor = Minor.parse(server_version)
    except ValueError:
        return None
    release = RELEASES.get(minor)
    if release is None or release.pins is None:
        return None
    return f"{AGNHOST}:{release.pins.agnhost}"


def with_image(docs: Iterable[dict[str, Any]], repository: str, image: str) -> list[dict[str, Any]]:
    """``docs`` with every container of ``repository`` (any tag) running ``image`` instead.

    Pure: the documents given are not changed.
    """
    out = copy.deepcopy(list(docs))
    for doc in out:
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            if str(container.get("image", "")).startswith(f"{repository}:"):
                container["image"] = image
    return out


def _for_version(kube: Kube, docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sample ``docs`` with the agnhost the cluster's version pins, where known."""
    agnhost = agnhost_for(kube.server_version())
    return with_image(docs, AGNHOST, agnhost) if agnhost is not None else list(docs)


_SYNCED = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
_QUEUED = "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"
_DURATION = "kubeproxy_sync_proxy_rules_duration_seconds"
_PENDING = (
    "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
    "kubeproxy_sync_proxy_rules_service_changes_pending",
)
#: kube-proxy's default ``minSyncPeriod`` (kind does not change it): the longest a queued
#: change waits before its sync starts, when no sync is running.
MIN_SYNC_PERIOD = 1.0
#: Longer than kube-proxy's informers take to see an API change (milliseconds natively;
#: scaled under emulation, where everything, informers included, runs much slower).
INFORMER_LAG = 5.0


@dataclass
class SyncWatch:
    """Has kube-proxy programmed what the API said at ``since``? Pure, fed one scrape at a time.

    What kube-proxy's metrics say (pkg/proxy/{iptables,ipvs,nftables}/proxier.go,
    v1.34): every change it hears of sets ``last_queued_timestamp`` and raises the
    pending gauges; ``syncProxyRules`` takes the pending changes at its *start* (the
    gauges drop to 0), programs them and sets ``last_timestamp`` at its *end*; its
    duration goes to the ``duration_seconds`` histogram. So "pending 0 and last sync
    after the last change queued" is not "programmed": the sync that took the change
    may still be running, and the one that ended may have begun before the change.
    Under emulation one ipvs sync took 230 s, and the lab's old wait, which read it so,
    let claim 7 look at ipvsadm while the web Service had 2 of its 3 real servers
    (2026-11-28, kept in tests/fixtures/captured/v1.34.4-ipvs-tcg-race/).

    kube-proxy has programmed every change it heard of when nothing is pending and
    either the last *finished* sync *began* after the last change was queued (when it
    began is its end minus its duration, exact for the first sync, count 1, or when
    the count rose by one between two scrapes), or all has been quiet since a sync that
    ended after it: every queued change makes kube-proxy's sync runner start a sync
    after it, at most ``minSyncPeriod`` later, and that sync takes no longer than the
    histogram's smallest bucket holding every sync so far; if none followed, the one
    that ended last was it. (Idle, kube-proxy may not sync again for an hour: in
    iptables mode the periodic sync is hourly; so the watch cannot wait for a new one.)
    And it has heard of what the API said at ``since`` once its informers have had
    ``lag`` seconds.
    """

    since: float
    lag: float = INFORMER_LAG
    min_sync: float = MIN_SYNC_PERIOD
    _count: float | None = None
    _sum: float = 0.0
    _began: float | None = None

    def observe(self, metrics: Metrics, now: float) -> tuple[bool, str]:
        """Feed one scrape of ``/metrics`` taken at ``now``; (synced?, what it said)."""
        last = _ipv4(metrics, _SYNCED)
        queued = _ipv4(metrics, _QUEUED)
        count = _ipv4(metrics, f"{_DURATION}_count")
        total = _ipv4(metrics, f"{_DURATION}_sum") or 0.0
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
        longest = _longest_sync(metrics, count)
        quiet = longest is not None and now - last >= longest + self.min_sync
        began = "unknown" if self._began is None else f"{self._began:.2f}"
        state = (
            f"last sync began {began} and ended {last:.2f}; last change queued "
            f"{'never' if queued is None else f'{queued:.2f}'}; pending changes {pending:g}"
        )
        heard = now >= self.since + self.lag
        programmed = pending == 0 and (
            queued is None
            or (self._began is not None and queued <= self._began)
            or (queued <= last and quiet)
        )
        if quiet:
            state += "; quiet since"
        if programmed and not heard:
            state += f"; giving its informers until {self.since + self.lag:.2f}"
        return programmed and heard, state


def _ipv4(metrics: Metrics, name: str) -> float | None:
    """The IPv4 proxier's sample of ``name``.

    kube-proxy labels these metrics ``ip_family`` from 1.33 (pkg/proxy/metrics/metrics.go:
    absent at v1.32.9, there at v1.33.13, the proxy's zips); before, its one series has
    no such label (seen on v1.29.15: ``kubeproxy_sync_proxy_rules_last_timestamp_seconds
    1.79e+09``).
    """
    labelled = metrics.value(name, ip_family="IPv4")
    if labelled is not None:
        return labelled
    plain = [s for s in metrics.values(name) if s.label("ip_family") is None]
    return plain[0].value if plain else None


def _longest_sync(metrics: Metrics, count: float) -> float | None:
    """The smallest finite bucket bound that holds every sync, if one does."""
    bounds = [
        float(le)
        for sample in metrics.values(f"{_DURATION}_bucket")
        if (le := sample.label("le")) not in (None, "+Inf")
        and sample.label("ip_family") in ("IPv4", None)  # no label before 1.33
        and sample.value >= count
    ]
    return min(bounds) if bounds else None


def wait_proxy_synced(
    nodes: Iterable[NodeBase], *, since: float, timeout: float | None = None
) -> list[str]:
    """Wait until kube-proxy on every node has programmed what the API said at ``since``.

    The API saying "endpoints ready" is not kube-proxy having written its rules:
    the lab waits until kube-proxy's own metrics show that a sync which began after
    every change it heard of has finished (:class:`SyncWatch`), before it looks at
    rules or traffic. Returns, per node, the gauges it ended on and how long it waited.
    """
    states = []
    for node in nodes:
        began = time.monotonic()
        limit = scaled(120) if timeout is None else timeout
        deadline = time.monotonic() + limit
        watch = SyncWatch(since, scaled(INFORMER_LAG), scaled(MIN_SYNC_PERIOD))
        while True:
            result = node.http_get("127.0.0.1", 10249, "/metrics")
            ok, state = (
                watch.observe(parse_prometheus(result.stdout), time.time())
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
