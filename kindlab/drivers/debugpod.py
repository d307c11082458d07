"""Nodes without Docker: a privileged debug pod per node, commands through the exec API.

What ``kubectl debug node/NAME`` does, kept for a whole run: a pod pinned to the node
with the host's network and PID namespaces, privileged, in a namespace of kindlab's
own (``kindlab-debug-RUN``). :class:`PodNode` runs a command in it through the
Kubernetes exec API, and its evidence line is the ``kubectl exec`` line that does the
same. Everything is labelled (:mod:`kindlab.labels`) with the run it belongs to, and
the namespace carries its owner (host and pid), so that a crashed run's namespaces
are found and removed at the next start (:func:`leftover_namespaces`).

Every command enters the node's mount namespace too (:data:`NSENTER`). Host network
and host PID alone would run ``iptables-save``, ``ip`` or ``curl`` in the node's
network namespace, but as the debug image's binaries: its ``iptables`` may speak the
other back end (legacy or nf_tables) than the one kube-proxy and the node use, and
then prints empty tables; it may lack ``ipvsadm`` or ``ping`` or differ in version.
With ``nsenter -t 1 -m -u -i -n -p --`` the node's own tools run, with the node's
view, exactly what ``docker exec`` runs in a kind node: the same claims hold on the
same evidence, and the debug image only needs ``nsenter`` and ``sleep``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kindlab import labels
from kindlab.drivers.kube import Kube, WaitTimeout
from kindlab.drivers.node import TIMED_OUT_EXITS, ExecResult, NodeBase, Recorder
from kindlab.errors import PreconditionError

#: Enter every namespace of the node's PID 1 (see the module's docstring for why).
NSENTER = ("nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--")
NAMESPACE_PREFIX = "kindlab-debug"
#: kindlab's images that carry ``nsenter`` and ``sleep``, smallest first: a kind cluster
#: whose nodes have one of them (``kind load docker-image``) needs no registry.
KINDLAB_IMAGES = ("kindlab/rootfs", "kindlab/node-base", "kindlab/node")
#: Seconds the exec API is given beyond the command's own limit in the node.
EXEC_SLACK = 15.0
#: Container states of a debug pod that no wait will fix.
_STUCK = ("ErrImageNeverPull", "ImagePullBackOff", "ErrImagePull", "InvalidImageName")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- names and manifests (pure) ------------------------------------------------------


def namespace_name(run_id: str, worker: str | None = None) -> str:
    """``kindlab-debug-RUN`` (``-gwN`` under pytest-xdist: each worker has its pods)."""
    return f"{NAMESPACE_PREFIX}-{run_id}" + (f"-{worker}" if worker else "")


def pod_name(node: str) -> str:
    """The debug pod of ``node``: ``debug-NODE``, cut to a valid name."""
    return f"debug-{node}"[:63].rstrip("-.")


def run_labels(run_id: str) -> dict[str, str]:
    """What marks everything a run creates in a cluster."""
    return {labels.MANAGED: "true", labels.RUN: run_id}


def namespace_manifest(name: str, run_id: str, owner: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**run_labels(run_id), labels.ROLE: "debug"},
            "annotations": {labels.OWNER: owner},
        },
    }


def pod_manifest(
    node: str, *, namespace: str, image: str, pull_policy: str, run_id: str
) -> dict[str, Any]:
    """A privileged pod on ``node`` with the host's network and PID namespaces.

    As ``kubectl debug node/NODE --profile=sysadmin``: pinned by ``nodeName`` (no
    scheduler, so taints need tolerating only for eviction), it sleeps until deleted.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(node),
            "namespace": namespace,
            "labels": {**run_labels(run_id), labels.ROLE: "debug"},
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": True,
            "hostPID": True,
            "hostIPC": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [
                {
                    "name": "debug",
                    "image": image,
                    "imagePullPolicy": pull_policy,
                    "command": ["sleep", "infinity"],
                    "securityContext": {"privileged": True},
                }
            ],
        },
    }


def kubectl_line(
    kubeconfig: Path | None, context: str | None, namespace: str, pod: str
) -> tuple[str, ...]:
    """``kubectl [--kubeconfig K] [--context C] -n NS exec POD --``: how to paste a command."""
    argv = ["kubectl"]
    if kubeconfig is not None:
        argv += ["--kubeconfig", str(kubeconfig)]
    if context:
        argv += ["--context", context]
    return (*argv, "-n", namespace, "exec", pod, "--")


def choose_image(explicit: str | None, node_images: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """The debug pods' image and pull policy.

    ``explicit`` (``--debug-image``) is pulled if a node lacks it (``IfNotPresent``).
    Otherwise one of :data:`KINDLAB_IMAGES` that every node already has, never pulled.
    """
    if explicit:
        return explicit, "IfNotPresent"
    if not node_images:
        raise PreconditionError("the cluster lists no nodes")
    shared = set.intersection(*(set(names) for names in node_images.values()))
    for repo in KINDLAB_IMAGES:
        found = sorted(n for n in shared if _repo(n) == repo)
        if found:
            return found[-1], "Never"
    present = sorted({n for names in node_images.values() for n in names if "kindlab/" in n})
    raise PreconditionError(
        "no image for kindlab's debug pods is on every node (kindlab pulls nothing): pass "
        "--debug-image IMAGE (one with nsenter and sleep that the nodes have or can pull), "
        "or load one of kindlab's into the nodes, e.g. on kind: `kind load docker-image "
        f"kindlab/rootfs:TAG --name CLUSTER`; kindlab images on some nodes: {present or 'none'}"
    )


def _repo(image: str) -> str:
    name = image.split("@", 1)[0]
    name = name.removeprefix("docker.io/").removeprefix("library/")
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


@dataclass(frozen=True, slots=True)
class KindlabNamespace:
    """A namespace some kindlab run created in a cluster, as its labels tell."""

    name: str
    run: str
    owner_host: str | None = None
    owner_pid: int | None = None
    terminating: bool = False

    @classmethod
    def from_api(cls, obj: Any) -> KindlabNamespace:
        meta = obj.metadata
        owner = ((meta.annotations or {}).get(labels.OWNER) or "").split()
        host, pid = (
            (owner[0], int(owner[1])) if len(owner) == 2 and owner[1].isdigit() else (None, None)
        )
        phase = obj.status.phase if obj.status else None
        run = (meta.labels or {}).get(labels.RUN, "")
        return cls(meta.name, run, host, pid, phase == "Terminating")


def leftover_namespaces(
    namespaces: Iterable[KindlabNamespace],
    *,
    run_id: str,
    host: str,
    alive: Callable[[int], bool],
) -> list[str]:
    """Namespaces of runs that are over: no namespace of the run has a live owner.

    An owner on another host cannot be asked: its run counts as live. A run whose
    debug namespace is gone already (it ended between two deletions) is over.
    """
    found = list(namespaces)
    live = {
        ns.run
        for ns in found
        if ns.owner_host is not None
        and ns.owner_pid is not None
        and (ns.owner_host != host or alive(ns.owner_pid))
        and not ns.terminating
    }
    return sorted(
        ns.name for ns in found if ns.run != run_id and ns.run not in live and not ns.terminating
    )


def owner() -> str:
    """This process, as a namespace's owner annotation says it: ``HOST PID``."""
    return f"{socket.gethostname()} {os.getpid()}"


# -- the nodes ---------------------------------------------------------------------


class PodNode(NodeBase):
    """A node reached through its debug pod: ``kubectl exec POD -- nsenter … argv``."""

    def __init__(
        self,
        name: str,
        *,
        kube: Kube,
        namespace: str,
        pod: str,
        recorder: Recorder | None = None,
        default_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.kube = kube
        self.namespace = namespace
        self.pod = pod
        self.recorder = recorder
        self.default_timeout = default_timeout
        path = kube.kubeconfig
        self.via = (*kubectl_line(path, kube.context, namespace, pod), *NSENTER)

    def __repr__(self) -> str:
        return f"PodNode({self.name!r}, pod={self.namespace}/{self.pod})"

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = False,
    ) -> ExecResult:
        """Run ``argv`` in the node's namespaces as root, through the exec API."""
        wrapped = self._wrapped(argv, timeout)
        limit = float(wrapped[2])
        started = time.monotonic()
        code, out, err = self.kube.exec(
            self.namespace, self.pod, [*NSENTER, *wrapped], timeout=limit + EXEC_SLACK
        )
        result = ExecResult(
            node=self.name,
            argv=tuple(argv),
            exit_code=-1 if code is None else code,
            stdout=out,
            stderr=err,
            duration=time.monotonic() - started,
            timed_out=code is None or code in TIMED_OUT_EXITS,
            via=self.via,
        )
        return self._finish(result, check)


class DebugPods:
    """A run's debug namespace in one cluster and a pod per node in it."""

    def __init__(
        self,
        kube: Kube,
        *,
        run_id: str,
        worker: str | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.kube = kube
        self.run_id = run_id
        self.namespace = namespace_name(run_id, worker)
        self.progress = progress
        self.pods: dict[str, str] = {}

    def start(self, nodes: Sequence[str], image: str, pull_policy: str, *, timeout: float) -> None:
        """Create the namespace and a pod per node; wait until every pod runs."""
        docs = [namespace_manifest(self.namespace, self.run_id, owner())]
        docs += [
            pod_manifest(
                n,
                namespace=self.namespace,
                image=image,
                pull_policy=pull_policy,
                run_id=self.run_id,
            )
            for n in nodes
        ]
        self.progress(f"debug pods in {self.namespace}: image {image} ({pull_policy})")
        self.kube.apply(docs)
        self.pods = {n: pod_name(n) for n in nodes}
        self._wait_running(timeout)

    def _wait_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            waiting = {}
            for node, pod in self.pods.items():
                obj = self.kube.core.read_namespaced_pod(pod, self.namespace)
                if obj.status.phase == "Running":
                    continue
                state = _waiting_reason(obj)
                if state[0] in _STUCK:
                    raise PreconditionError(
                        f"debug pod {self.namespace}/{pod} on node {node}: {state[0]}: {state[1]}"
                    )
                waiting[pod] = state[0] or str(obj.status.phase)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise WaitTimeout(f"debug pods not running after {timeout:g}s: {waiting}")
            time.sleep(1)

    def node(self, name: str, *, recorder: Recorder | None = None) -> PodNode:
        if name not in self.pods:
            raise PreconditionError(f"node {name!r} has no debug pod (nodes: {sorted(self.pods)})")
        return PodNode(
            name, kube=self.kube, namespace=self.namespace, pod=self.pods[name], recorder=recorder
        )


def _waiting_reason(pod: Any) -> tuple[str, str]:
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None:
            return str(waiting.reason or ""), str(waiting.message or "")
    return "", ""


def remove_namespaces(kube: Kube, names: Iterable[str], *, progress: Progress = _quiet) -> None:
    """Delete the namespaces (their pods with them) and wait until they are gone."""
    names = list(names)
    for name in names:  # every deletion is asked for before any wait
        progress(f"deleting namespace {name}")
        kube.delete_namespace(name, wait=False)
    for name in names:
        kube.delete_namespace(name, wait=True)


def run_namespaces(kube: Kube, run_id: str) -> list[str]:
    """Every namespace the run ``run_id`` created in the cluster."""
    selector = f"{labels.MANAGED}=true,{labels.RUN}={run_id}"
    return sorted(ns.metadata.name for ns in kube.namespaces(selector))
