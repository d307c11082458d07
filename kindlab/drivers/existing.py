"""An existing cluster, named by a kubeconfig: the lab's target when kindlab creates none.

kindlab did not make it, so it reads what it needs from the cluster itself: the
Kubernetes version from the API, the proxy mode from each node's kube-proxy
(``127.0.0.1:10249/proxyMode``, asked through the node's debug pod), the service
range from the API server's flags or the ``ServiceCIDR`` API. It reaches nodes only
through debug pods (:mod:`kindlab.drivers.debugpod`), never through Docker, and at
the end removes every namespace its run created there, and at the start those of
runs that died (:meth:`ExistingCluster.remove_leftovers`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kindlab.constants import PROXY_MODES
from kindlab.drivers import debugpod
from kindlab.drivers.debugpod import DebugPods, KindlabNamespace, PodNode
from kindlab.drivers.kube import Kube
from kindlab.drivers.node import ExecResult, Recorder
from kindlab.drivers.proc import pid_alive
from kindlab.errors import PreconditionError
from kindlab.labels import MANAGED

Progress = Callable[[str], None]
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
_RANGE_FLAG = "--service-cluster-ip-range="


def _quiet(_: str) -> None:
    pass


def proxy_mode_of(answers: Mapping[str, ExecResult]) -> str:
    """The cluster's proxy mode: what every node's kube-proxy says at ``/proxyMode``.

    Raises :class:`PreconditionError` when a node's kube-proxy does not answer (none
    runs there, or it listens elsewhere), when nodes disagree, or when the mode is not
    one kindlab checks: the lab's claims would be about something else.
    """
    if not answers:
        raise PreconditionError("the cluster has no nodes to ask kube-proxy's mode on")
    silent = [
        f"{node}: `{result.command_line}` {_status(result)}: {result.output.strip() or 'no output'}"
        for node, result in sorted(answers.items())
        if not result.ok
    ]
    if silent:
        raise PreconditionError(
            "kube-proxy did not answer at 127.0.0.1:10249/proxyMode on every node (is it "
            "running, with its metrics on 127.0.0.1:10249?): " + "; ".join(silent)
        )
    said = {node: result.stdout.strip() for node, result in answers.items()}
    modes = set(said.values())
    if len(modes) != 1:
        raise PreconditionError(f"the nodes' kube-proxies run different modes: {said}")
    mode = modes.pop()
    if mode not in PROXY_MODES:
        raise PreconditionError(
            f"kube-proxy runs in {mode!r} mode, which kindlab has no claims for "
            f"(it checks {', '.join(PROXY_MODES)})"
        )
    return mode


def _status(result: ExecResult) -> str:
    return "timed out" if result.timed_out else f"exit {result.exit_code}"


def service_range_from_args(args: Sequence[str]) -> str | None:
    """``--service-cluster-ip-range`` of an API server's command line (IPv4 first)."""
    for arg in args:
        if arg.startswith(_RANGE_FLAG):
            return arg.removeprefix(_RANGE_FLAG).split(",")[0]
    return None


def current_context(kubeconfig: Path) -> str:
    """The context a kubeconfig selects when none is named."""
    from kubernetes import config

    contexts: Any = config.list_kube_config_contexts
    try:
        _, active = contexts(config_file=str(kubeconfig))
    except (OSError, config.ConfigException) as exc:
        raise PreconditionError(f"kubeconfig {kubeconfig}: {exc}") from exc
    return str(active["name"])


class ExistingCluster:
    """A cluster kindlab did not create, with a debug pod per node for this run."""

    def __init__(
        self,
        kubeconfig: Path,
        context: str | None = None,
        *,
        run_id: str,
        worker: str | None = None,
        debug_image: str | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self.run_id = run_id
        self.debug_image = debug_image
        self.progress = progress
        self._kube = Kube(kubeconfig, context=context, progress=progress)
        self._name = context or current_context(kubeconfig)
        self.debug = DebugPods(self._kube, run_id=run_id, worker=worker, progress=progress)
        self.node_names: list[str] = []
        self.control_plane = ""
        self._mode = ""
        self._service_subnet: str | None = None

    def __repr__(self) -> str:
        return f"ExistingCluster({self.describe()})"

    def describe(self) -> str:
        return f"context {self._name} of {self.kubeconfig}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def kube(self) -> Kube:
        return self._kube

    @property
    def mode(self) -> str:
        if not self._mode:
            raise PreconditionError(f"{self.describe()}: not opened yet")
        return self._mode

    # -- the run -------------------------------------------------------------------

    def open(self, *, timeout: float) -> None:
        """Remove dead runs' namespaces, start a debug pod per node, read the mode."""
        self.remove_leftovers()
        self.node_names = self._kube.wait_nodes_ready(timeout=60)
        self.control_plane = _control_plane(self._kube.core.list_node().items)
        image, policy = debugpod.choose_image(self.debug_image, self._kube.node_images())
        self.debug.start(self.node_names, image, policy, timeout=timeout)
        answers = {name: self.node(name).proxy_mode() for name in self.node_names}
        self._mode = proxy_mode_of(answers)
        self.progress(
            f"{self.describe()}: Kubernetes {self.kubernetes_version()}, kube-proxy in "
            f"{self._mode} mode on all {len(answers)} nodes"
        )

    def close(self, *, whole_run: bool = True) -> None:
        """Delete this process's debug namespace; with ``whole_run``, every namespace of
        the run (the sample Services' too), the debug namespace last."""
        names = debugpod.run_namespaces(self._kube, self.run_id) if whole_run else []
        ordered = [n for n in names if n != self.debug.namespace] + [self.debug.namespace]
        debugpod.remove_namespaces(self._kube, ordered, progress=self.progress)

    def remove_leftovers(self) -> list[str]:
        """Delete the namespaces of kindlab runs on this cluster that are over."""
        found = [KindlabNamespace.from_api(ns) for ns in self._kube.namespaces(f"{MANAGED}=true")]
        leftovers = debugpod.leftover_namespaces(
            found, run_id=self.run_id, host=socket.gethostname(), alive=pid_alive
        )
        for name in leftovers:
            self.progress(f"removing leftover namespace {name} (its run is gone)")
        debugpod.remove_namespaces(self._kube, leftovers)
        return leftovers

    # -- what the lab reads ------------------------------------------------------------

    def node(self, name: str | None = None, *, recorder: Recorder | None = None) -> PodNode:
        return self.debug.node(name or self.control_plane, recorder=recorder)

    def kubernetes_version(self) -> str:
        return self._kube.server_version()

    @property
    def service_subnet(self) -> str:
        """The API server's ``--service-cluster-ip-range``, else the ``ServiceCIDR``'s."""
        if self._service_subnet is None:
            self._service_subnet = self._read_service_subnet()
        return self._service_subnet

    def _read_service_subnet(self) -> str:
        pods = self._kube.core.list_namespaced_pod(
            "kube-system", label_selector="component=kube-apiserver"
        ).items
        for pod in pods:
            for container in pod.spec.containers:
                found = service_range_from_args(
                    [*(container.command or []), *(container.args or [])]
                )
                if found:
                    return found
        cidrs = _service_cidrs(self._kube)
        if cidrs:
            return cidrs[0]
        raise PreconditionError(
            f"{self.describe()}: its service range is neither on a kube-apiserver pod's "
            "command line nor in a ServiceCIDR object"
        )


def _control_plane(nodes: Sequence[Any]) -> str:
    """A control-plane node (the first by name), else the first node."""
    names = sorted(n.metadata.name for n in nodes)
    planes = sorted(
        n.metadata.name for n in nodes if CONTROL_PLANE_LABEL in (n.metadata.labels or {})
    )
    if not names:
        raise PreconditionError("the cluster lists no nodes")
    return str((planes or names)[0])


def _service_cidrs(kube: Kube) -> list[str]:
    """The ``kubernetes`` ServiceCIDR's ranges (networking.k8s.io/v1, Kubernetes 1.33+)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.NetworkingV1Api(kube.api_client)
    try:
        obj = api.read_service_cidr("kubernetes")
    except (ApiException, AttributeError):
        return []
    return [str(c) for c in (obj.spec.cidrs or [])]
