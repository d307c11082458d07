"""Cluster lifecycle: one kind cluster per proxy mode, named, recorded, removable.

:class:`ClusterManager` owns the clusters of one run. Before ``kind create
cluster`` starts, it writes a state file (:mod:`kindlab.drivers.state`) with the owner's
pid, so that a crashed or interrupted run's clusters are found and removed at the
next start. Every failure path (a bad input, a failed create, Ctrl-C) leaves
nothing behind unless the user asked to keep clusters.

:func:`preflight` is every check that can fail before anything is created; the
manager, ``kindlab up`` and the pytest plugin all call it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from kindlab.constants import CLUSTER_PREFIX, LAYOUTS, PROXY_MODES
from kindlab.drivers import kernel
from kindlab.drivers.kind import (
    KUBEADM_V1BETA4,
    ClusterConfig,
    Kind,
    load_cluster_config,
    render_cluster_config,
)
from kindlab.drivers.kube import Kube
from kindlab.drivers.node import Node, Recorder, docker_client
from kindlab.drivers.proc import pid_alive
from kindlab.drivers.state import (
    ClusterState,
    default_dir,
    forget,
    kubeconfig_path,
    read_states,
    write_state,
)
from kindlab.errors import CommandError, KindlabError, PreconditionError
from kindlab.paths import cache_dir, clusters_dir
from kindlab.timing import scaled
from kindlab.versions import Choice, Minor, kubelet_patch

Progress = Callable[[str], None]

#: kind gives a new node's systemd a fixed 30 s to log "Reached target Multi-User
#: System" (sigs.k8s.io/kind v0.30.0, pkg/cluster/internal/providers/docker/provision.go,
#: createContainerWithWaitUntilSystemdReachesMultiUserSystem). On a loaded host, and
#: under emulation in the ipvs guest, systemd can take longer; kind then fails with
#: this text and nothing about the cluster is wrong. That one failure is retried.
SYSTEMD_WAIT_FAILURE = "Multi-User System"
#: Attempts of ``kind create cluster`` when the only failure is the systemd wait.
CREATE_ATTEMPTS = 2


def _quiet(_: str) -> None:
    pass


class ModeUnsupported(PreconditionError):
    """The host kernel cannot run this proxy mode (e.g. ipvs without IP_VS)."""


class ClusterCreateError(KindlabError):
    """``kind create cluster`` failed; the message names the exported logs."""


@dataclass
class Cluster:
    """A running kind cluster kindlab created (or reuses): its state, API and nodes."""

    state: ClusterState
    kubeconfig: Path
    config: ClusterConfig
    node_names: list[str] = field(default_factory=list)
    _kube: Kube | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def mode(self) -> str:
        return self.state.mode

    @property
    def kept(self) -> bool:
        return self.state.keep

    @property
    def control_plane(self) -> str:
        return self.state.control_plane

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.kubeconfig)
        return self._kube

    @property
    def service_subnet(self) -> str:
        return self.config.service_subnet

    def node(self, name: str | None = None, *, recorder: Recorder | None = None) -> Node:
        return Node(name or self.control_plane, recorder=recorder)

    def kubernetes_version(self) -> str:
        return self.kube.server_version()


def config_path(mode: str, layout: str = "single") -> Path:
    """kindlab's kind config for ``mode`` and ``layout``; refuses an unknown mode or layout.

    ``clusters/MODE.yaml`` for the single node, ``clusters/MODE-LAYOUT.yaml`` otherwise.
    """
    if mode not in PROXY_MODES:
        raise PreconditionError(
            f"unknown proxy mode {mode!r}; expected one of {', '.join(PROXY_MODES)}"
        )
    if layout not in LAYOUTS:
        raise PreconditionError(
            f"unknown cluster layout {layout!r}; expected one of {', '.join(LAYOUTS)}"
        )
    return clusters_dir() / (f"{mode}.yaml" if layout == "single" else f"{mode}-{layout}.yaml")


def cluster_base_name(mode: str, layout: str = "single") -> str:
    """``kindlab-MODE``, or ``kindlab-MODE-LAYOUT``: the layouts of a mode never share a name."""
    return f"{CLUSTER_PREFIX}{mode}" + ("" if layout == "single" else f"-{layout}")


def config_for_version(
    mode: str, version: Choice, directory: Path | None = None, *, layout: str = "single"
) -> Path:
    """kindlab's kind config for ``mode`` and ``layout`` as Kubernetes ``version`` needs it.

    kindlab's own (clusters/MODE.yaml, or MODE-LAYOUT.yaml) where it fits as it is; else
    a config made from it (:func:`~kindlab.drivers.kind.render_cluster_config`) and written under
    ``<cache>/configs/``, named by content: with the feature gate a mode needs in this
    version (nftables: ``NFTablesProxyMode`` in 1.29 and 1.30, from
    :func:`kindlab.versions.mode_support`), and its kubeadm patches in the form of the
    kubeadm API the version's kind writes, and from 1.35 the kubelet told to run on
    cgroup v1 (:func:`kindlab.versions.kubelet_patch`). Raises :class:`PreconditionError` when the
    version lacks the mode.
    """
    base = config_path(mode, layout)
    support = version.mode(mode)
    if not support.available:
        raise PreconditionError(support.reason)
    gates = {support.feature_gate: True} if support.feature_gate else {}
    api = version.kind.kubeadm_api
    kubelet = kubelet_patch(version.minor)
    if not gates and api != KUBEADM_V1BETA4 and kubelet is None:
        return base
    why = [f"{g}=true (kube-proxy {version.minor} has {mode} mode only behind it)" for g in gates]
    if api == KUBEADM_V1BETA4:
        why.append(f"kubeadm patches in {api}'s form (kind {version.kind.version})")
    if kubelet is not None:
        why.append(f"kubelet failCgroupV1: false (kubelet {version.minor} refuses cgroup v1)")
    header = f"Made by kindlab from {base.name} for Kubernetes {version.patch}: " + "; ".join(why)
    text = render_cluster_config(
        base.read_text(),
        feature_gates=gates,
        kubeadm_api=api,
        extra_patches=[kubelet] if kubelet else [],
        header=header,
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = (directory or cache_dir() / "configs") / f"{base.stem}-{version.patch}-{digest}.yaml"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return out


def version_label(minor: Minor) -> str:
    """What a cluster's name carries of its Kubernetes version: ``Minor(1, 29)`` -> ``v1-29``."""
    return f"v{minor.major}-{minor.minor}"


def preflight(mode: str, config: Path | None = None, *, image: str | None = None) -> ClusterConfig:
    """Every check that can fail before anything is created, cheapest first.

    The mode must be known and the cluster config (``config``, else kindlab's for the
    mode) must read and set that mode; Docker must have ``image`` (when one is named:
    kindlab's own is checked once built); the Docker host's kernel must support the
    mode, else :class:`ModeUnsupported`. Raises :class:`PreconditionError`, one line.
    """
    default = config_path(mode)  # refuses an unknown mode, whatever the config
    cfg = load_cluster_config(config or default)
    if cfg.proxy_mode != mode:
        raise PreconditionError(
            f"cluster config {cfg.path} sets kubeProxyMode {cfg.proxy_mode!r}, not {mode!r}"
        )
    if image is not None:
        require_node_image(image)
    support = kernel.host_support(mode)
    if not support.ok:
        raise ModeUnsupported(support.reason)
    return cfg


def require_node_image(image: str) -> None:
    """Raise :class:`PreconditionError` (one line) unless Docker has ``image``; never pulls."""
    import docker.errors  # lazily, as in kindlab.drivers.node: the parsers need no Docker

    try:
        docker_client().images.get(image)
    except docker.errors.ImageNotFound:
        raise PreconditionError(
            f"node image {image!r} is not in Docker, and kindlab does not pull a "
            "--node-image: leave it out (kindlab then finds, pulls or builds one, see "
            "--node-image-source), build one with `kindlab node-image build`, or get this "
            f"one with `docker load -i FILE` or `docker pull {image}`"
        ) from None
    except docker.errors.APIError as exc:
        raise PreconditionError(
            f"node image {image!r}: Docker could not tell whether it has it: "
            f"{exc.explanation or exc}"
        ) from None


class _HeldInterrupt:
    """The SIGINT handler while a cleanup runs: notes the Ctrl-C and says what comes first."""

    def __init__(self, progress: Progress, doing: str) -> None:
        self.progress = progress
        self.doing = doing
        self.received = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        if not self.received:
            self.progress(f"interrupted: {self.doing} first")
        self.received = True


@contextlib.contextmanager
def _interrupt_after(progress: Progress, doing: str) -> Iterator[None]:
    """Ctrl-C during the block takes effect when it ends: half a cleanup leaks clusters.

    Signals reach only the main thread; elsewhere, or inside another such block, the
    block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread() or isinstance(
        signal.getsignal(signal.SIGINT), _HeldInterrupt
    ):
        yield
        return
    held = _HeldInterrupt(progress, doing)
    previous = signal.signal(signal.SIGINT, held)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held.received and callable(previous):
            previous(signal.SIGINT, None)


class ClusterManager:
    """Creates, reuses and removes kindlab's kind clusters."""

    def __init__(
        self,
        kind: Kind,
        *,
        image: str,
        keep: bool = False,
        run_id: str | None = None,
        state_dir: Path | None = None,
        progress: Progress = _quiet,
        after_create: Callable[[Cluster], None] | None = None,
        layout: str = "single",
        version: Minor | None = None,
    ) -> None:
        self.kind = kind
        #: every cluster of this manager: clusters/MODE.yaml, or MODE-LAYOUT.yaml
        self.layout = layout
        #: run on each new cluster once its nodes are Ready (a guest's tuning)
        self.after_create = after_create
        self.image = image
        #: The Kubernetes minor of ``image``, when known: clusters of different
        #: versions get different names and coexist.
        self.version = version
        self.keep = keep
        self.run_id = run_id or secrets.token_hex(3)
        self.state_dir = state_dir or default_dir()
        self.progress = progress
        self.clusters: dict[str, Cluster] = {}

    # -- names and state -------------------------------------------------------

    def name_for(self, mode: str) -> str:
        """Kept clusters have a stable name to be found again; others are per run.

        With a version, its minor is in the name (``kindlab-iptables-v1-29-1a2b3c``).
        """
        base = cluster_base_name(mode, self.layout)
        if self.version is not None:
            base += f"-{version_label(self.version)}"
        return base if self.keep else f"{base}-{self.run_id}"

    def states(self) -> dict[str, ClusterState]:
        return read_states(self.state_dir)

    def _forget(self, name: str) -> None:
        forget(name, self.state_dir)

    # -- lifecycle -------------------------------------------------------------

    def remove_leftovers(self) -> list[str]:
        """Delete clusters of earlier runs that died without cleaning up."""
        existing = set(self.kind.clusters())
        mine = {c.name for c in self.clusters.values()}
        removed = []
        for name, state in self.states().items():
            if state.keep or name in mine:
                continue
            if state.host == socket.gethostname() and pid_alive(state.pid):
                continue
            if name in existing:
                why = state.problem or f"its run, pid {state.pid}, is gone"
                self.progress(f"removing leftover cluster {name} ({why})")
                self.kind.delete(name)
                removed.append(name)
            self._forget(name)
        return removed

    def ensure(self, mode: str, config: Path | None = None) -> Cluster:
        """The cluster for ``mode``: reused if kept and healthy, else created."""
        if mode in self.clusters:
            return self.clusters[mode]
        cfg = preflight(mode, config or config_path(mode, self.layout), image=self.image)
        name = self.name_for(mode)
        fingerprint = _fingerprint(cfg.path, self.image)
        if name in self.kind.clusters():
            reused = self._reuse(name, cfg, fingerprint)
            if reused is not None:
                self.clusters[mode] = reused
                return reused
            self.kind.delete(name)
            self._forget(name)
        cluster = self._create(name, mode, cfg, fingerprint)
        self.clusters[mode] = cluster
        return cluster

    def _reuse(self, name: str, cfg: ClusterConfig, fingerprint: str) -> Cluster | None:
        """The existing cluster ``name`` if this run made it or it is kept and unchanged."""
        state = self.states().get(name)
        if state is None or not state.complete:
            self.progress(f"cluster {name} exists but was never completed; recreating it")
            return None
        if state.run_id != self.run_id and not (self.keep and state.fingerprint == fingerprint):
            self.progress(f"cluster {name} exists with another image or config; recreating it")
            return None
        cluster = Cluster(state, kubeconfig_path(name, self.state_dir), cfg)
        try:
            cluster.node_names = cluster.kube.wait_nodes_ready(timeout=60)
        except KindlabError as exc:
            self.progress(f"cluster {name} is unhealthy ({exc}); recreating it")
            return None
        self.progress(f"reusing cluster {name}")
        return cluster

    def _create(self, name: str, mode: str, cfg: ClusterConfig, fingerprint: str) -> Cluster:
        started = time.monotonic()
        state = ClusterState(
            name,
            mode=mode,
            image=self.image,
            config=str(cfg.path),
            fingerprint=fingerprint,
            keep=self.keep,
            pid=os.getpid(),
            run_id=self.run_id,
            host=socket.gethostname(),
            created=time.time(),
            complete=False,
        )
        kubeconfig = kubeconfig_path(name, self.state_dir)
        try:
            # Inside the try: a Ctrl-C just after the state is written still removes it.
            write_state(state, self.state_dir)
            self.progress(f"creating kind cluster {name} ({mode} mode, image {self.image})")
            self._kind_create(name, cfg, kubeconfig)
            cluster = Cluster(state, kubeconfig, cfg)
            cluster.node_names = cluster.kube.wait_nodes_ready(timeout=scaled(300))
            if self.after_create is not None:
                self.after_create(cluster)
        except KeyboardInterrupt:
            # kindlab.drivers.proc has stopped kind by now: nothing is still creating the cluster.
            self.progress(f"interrupted: deleting cluster {name}")
            self._discard(name)
            raise
        except Exception as exc:
            logs = self._export_logs(name)
            self._discard(name)
            raise ClusterCreateError(
                f"creating cluster {name} failed (logs: {logs}); nothing was left behind:\n{exc}"
            ) from exc
        cluster.state = dataclasses.replace(state, complete=True)
        write_state(cluster.state, self.state_dir)
        self.progress(f"cluster {name} ready in {time.monotonic() - started:.0f}s")
        return cluster

    def _kind_create(self, name: str, cfg: ClusterConfig, kubeconfig: Path) -> None:
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                self.kind.create(
                    name,
                    config=cfg.path,
                    image=self.image,
                    kubeconfig=kubeconfig,
                    wait=f"{scaled(300):.0f}s",
                )
                return
            except CommandError as exc:
                slow_systemd = SYSTEMD_WAIT_FAILURE in exc.stdout + exc.stderr
                if attempt == CREATE_ATTEMPTS or not slow_systemd:
                    raise
                self.progress(
                    f"kind gave up after its fixed 30 s wait for the node's systemd (a slow "
                    f"or loaded host): deleting {name}'s node and creating it again "
                    f"(attempt {attempt + 1} of {CREATE_ATTEMPTS})"
                )
                with contextlib.suppress(CommandError):
                    self.kind.delete(name)

    def _export_logs(self, name: str) -> Path | None:
        dest = cache_dir() / "logs" / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"
        try:
            return self.kind.export_logs(name, dest)
        except Exception as exc:
            self.progress(f"could not export logs of {name}: {exc}")
            return None

    def _discard(self, name: str) -> None:
        with _interrupt_after(self.progress, f"deleting cluster {name}"):
            with contextlib.suppress(Exception):
                self.kind.delete(name)
            self._forget(name)

    def release(self, mode: str) -> None:
        """Delete the mode's cluster unless clusters are kept."""
        cluster = self.clusters.get(mode)
        if cluster is None:
            return
        try:
            if not cluster.kept:
                self.progress(f"deleting cluster {cluster.name}")
                self._discard(cluster.name)
        finally:
            self.clusters.pop(mode, None)

    def release_all(self) -> None:
        with _interrupt_after(self.progress, "deleting this run's clusters"):
            for mode in list(self.clusters):
                self.release(mode)

    def release_run(self) -> list[str]:
        """Delete this run's clusters, whichever process created them (xdist workers)."""
        removed = []
        for name, state in self.states().items():
            if state.run_id == self.run_id and not state.keep:
                self.progress(f"deleting cluster {name}")
                self._discard(name)
                removed.append(name)
        self.clusters.clear()
        return removed

    def down(self) -> list[str]:
        """Delete every cluster kindlab has a record of, kept ones included."""
        existing = set(self.kind.clusters())
        removed = []
        for name in self.states():
            if name in existing:
                self.progress(f"deleting cluster {name}")
                self.kind.delete(name)
                removed.append(name)
            self._forget(name)
        return removed


def _fingerprint(config: Path, image: str) -> str:
    digest = hashlib.sha256(config.read_bytes())
    digest.update(image.encode())
    return digest.hexdigest()[:16]
