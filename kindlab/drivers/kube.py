"""The Kubernetes API driver: apply manifests, wait for endpoints, read Services.

Talks to one cluster through its own kubeconfig file (never ``~/.kube/config``),
with the official ``kubernetes`` client. Apply is server-side apply with
kindlab's field manager, so re-running a lab on a kept cluster is idempotent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kindlab.errors import KindlabError, PreconditionError

FIELD_MANAGER = "kindlab"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class WaitTimeout(KindlabError):
    """A condition was not reached in time; the message says what was last seen."""


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None
    protocol: str
    port: int
    target_port: int | str


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    ready: bool
    node: str | None
    pod: str | None


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A Service as the lab sees it: its ClusterIP, ports and endpoints."""

    namespace: str
    name: str
    cluster_ip: str
    ports: tuple[ServicePort, ...]
    endpoints: tuple[Endpoint, ...]

    @property
    def ready_ips(self) -> list[str]:
        return sorted({e.ip for e in self.endpoints if e.ready})

    def port(self, name: str | None = None) -> ServicePort:
        for p in self.ports:
            if name is None or p.name == name:
                return p
        raise KeyError(f"service {self.namespace}/{self.name} has no port {name!r}")


def endpoints_from_slices(slice_list: dict[str, Any]) -> Iterator[Endpoint]:
    """Endpoints of an EndpointSliceList (as JSON); slices without endpoints add none."""
    for eps in slice_list.get("items") or []:
        for ep in eps.get("endpoints") or []:
            ready = bool((ep.get("conditions") or {}).get("ready"))
            pod = (ep.get("targetRef") or {}).get("name")
            for ip in ep.get("addresses") or []:
                yield Endpoint(ip=ip, ready=ready, node=ep.get("nodeName"), pod=pod)


def load_manifests(path: Path) -> list[dict[str, Any]]:
    """All documents of a YAML file (or of every *.yaml in a directory), in order."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    docs: list[dict[str, Any]] = []
    for file in files:
        try:
            loaded = list(yaml.safe_load_all(file.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise PreconditionError(f"manifest {file}: {exc}") from exc
        for doc in loaded:
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise PreconditionError(f"manifest {file}: a document lacks kind/apiVersion")
            docs.append(doc)
    return docs


class Kube:
    """One cluster's API, reached through ``kubeconfig``."""

    def __init__(self, kubeconfig: Path, *, progress: Progress = _quiet) -> None:
        from kubernetes import client, config

        self.kubeconfig = kubeconfig
        self.progress = progress
        # The client's models mark every field optional; the API fills them, so
        # the handles are typed loosely rather than asserting on each access.
        new_client: Any = config.new_client_from_config
        self.api_client: Any = new_client(config_file=str(kubeconfig))
        self.core: Any = client.CoreV1Api(self.api_client)
        self.apps: Any = client.AppsV1Api(self.api_client)
        self.discovery: Any = client.DiscoveryV1Api(self.api_client)
        self._version_api: Any = client.VersionApi(self.api_client)
        self._dynamic: Any = None

    def server_version(self) -> str:
        """The API server's gitVersion, e.g. ``v1.34.3``."""
        return str(self._version_api.get_code().git_version)

    # -- waiting -------------------------------------------------------------

    def _poll(self, what: str, check: Callable[[], tuple[bool, str]], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                done, last = check()
            except Exception as exc:  # the API may be briefly unavailable
                done, last = False, f"{type(exc).__name__}: {exc}"
            if done:
                return
            if time.monotonic() > deadline:
                raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last: {last}")
            time.sleep(2)

    def wait_nodes_ready(self, timeout: float = 300) -> list[str]:
        names: list[str] = []

        def check() -> tuple[bool, str]:
            nodes = self.core.list_node().items
            names[:] = [n.metadata.name for n in nodes]
            not_ready = [
                n.metadata.name
                for n in nodes
                if not any(
                    c.type == "Ready" and c.status == "True" for c in (n.status.conditions or [])
                )
            ]
            return bool(nodes) and not not_ready, f"not Ready: {not_ready or 'no nodes'}"

        self._poll("every node to be Ready", check, timeout)
        return names

    def wait_daemonset_rolled_out(self, namespace: str, name: str, timeout: float = 300) -> None:
        """Wait until every pod of the DaemonSet runs its current template and is ready."""

        def check() -> tuple[bool, str]:
            ds = self.apps.read_namespaced_daemon_set(name, namespace)
            st = ds.status
            want = st.desired_number_scheduled or 0
            updated = st.updated_number_scheduled or 0
            ready = st.number_ready or 0
            current = (st.observed_generation or 0) >= (ds.metadata.generation or 0)
            done = current and want > 0 and updated == want and ready == want
            return done, f"{updated}/{want} updated, {ready}/{want} ready"

        self._poll(f"DaemonSet {namespace}/{name} to roll out", check, timeout)

    def wait_service_endpoints(
        self, namespace: str, name: str, count: int, timeout: float = 180
    ) -> ServiceInfo:
        """Wait until the Service's EndpointSlices list ``count`` ready endpoints."""
        info: list[ServiceInfo] = []

        def check() -> tuple[bool, str]:
            svc = self.service(namespace, name)
            info[:] = [svc]
            ready = svc.ready_ips
            return len(ready) == count, f"ready endpoints {ready}, want {count}"

        self._poll(f"{count} ready endpoints of service {namespace}/{name}", check, timeout)
        return info[0]

    # -- reading -------------------------------------------------------------

    def service(self, namespace: str, name: str) -> ServiceInfo:
        svc = self.core.read_namespaced_service(name, namespace)
        ports = tuple(
            ServicePort(p.name, p.protocol, int(p.port), p.target_port)
            for p in (svc.spec.ports or [])
        )
        return ServiceInfo(
            namespace=namespace,
            name=name,
            cluster_ip=svc.spec.cluster_ip,
            ports=ports,
            endpoints=tuple(self.endpoints(namespace, name)),
        )

    def endpoints(self, namespace: str, service: str) -> Iterator[Endpoint]:
        # Read as plain JSON: some client releases refuse to build a model of a slice
        # whose `endpoints` is null, which is exactly what a Service without
        # endpoints has ("Invalid value for `endpoints`, must not be `None`").
        response = self.discovery.list_namespaced_endpoint_slice(
            namespace,
            label_selector=f"kubernetes.io/service-name={service}",
            _preload_content=False,
        )
        yield from endpoints_from_slices(json.loads(response.data))

    def cluster_ips(self) -> dict[str, str]:
        """Every Service's ClusterIP, by ``namespace/name`` (headless ones left out)."""
        out = {}
        for svc in self.core.list_service_for_all_namespaces().items:
            ip = svc.spec.cluster_ip
            if ip and ip != "None":
                out[f"{svc.metadata.namespace}/{svc.metadata.name}"] = ip
        return out

    # -- writing -------------------------------------------------------------

    def apply(self, docs: Iterable[dict[str, Any]], *, namespace: str | None = None) -> None:
        """Server-side apply each document (namespaced ones into ``namespace``)."""
        if self._dynamic is None:
            from kubernetes import dynamic

            make: Any = dynamic.DynamicClient
            self._dynamic = make(self.api_client)
        for doc in docs:
            resource = self._dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            body = dict(doc)
            ns = None
            if resource.namespaced:
                ns = body.get("metadata", {}).get("namespace") or namespace or "default"
                body["metadata"] = {**body.get("metadata", {}), "namespace": ns}
            self.progress(f"apply {doc['kind']} {ns + '/' if ns else ''}{body['metadata']['name']}")
            resource.server_side_apply(
                body=body,
                name=body["metadata"]["name"],
                namespace=ns,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        meta = {"name": name, "labels": labels or {}}
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": meta}])

    def delete_namespace(self, name: str, *, wait: bool = True, timeout: float = 180) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        if not wait:
            return

        def gone() -> tuple[bool, str]:
            try:
                ns = self.core.read_namespace(name)
            except ApiException as exc:
                if exc.status == 404:
                    return True, "gone"
                raise
            return False, f"phase {ns.status.phase}"

        self._poll(f"namespace {name} to be deleted", gone, timeout)
