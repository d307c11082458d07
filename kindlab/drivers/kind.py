"""The kind driver: find the kind binary, create, list and delete clusters.

Runs the real ``kind`` CLI through :mod:`kindlab.drivers.proc` (argv lists, a deadline,
Ctrl-C stops it) and streams its progress to the caller. Never touches the user's
``~/.kube/config``: every cluster gets a kubeconfig file of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from kindlab.constants import KIND_VERSION, PROXY_MODES
from kindlab.drivers.proc import run
from kindlab.errors import PreconditionError
from kindlab.paths import cache_dir

KIND_MODULE = "sigs.k8s.io/kind"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """The parts of a kind cluster config that kindlab relies on."""

    path: Path
    proxy_mode: str
    service_subnet: str
    pod_subnet: str | None
    node_roles: tuple[str, ...]


def load_cluster_config(path: Path) -> ClusterConfig:
    """Read and check a kind cluster config; raise :class:`PreconditionError` if unusable."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PreconditionError(f"cluster config {path}: cannot read it: {exc.strerror}") from exc
    return parse_cluster_config(text, path)


def parse_cluster_config(text: str, path: Path = Path("<config>")) -> ClusterConfig:
    """Check a kind ``Cluster`` config document (pure; see :func:`load_cluster_config`)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PreconditionError(f"cluster config {path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        kind = type(doc).__name__
        raise PreconditionError(f"cluster config {path}: expected a mapping, got {kind}")
    if doc.get("kind") != "Cluster" or not str(doc.get("apiVersion", "")).startswith(
        "kind.x-k8s.io/"
    ):
        raise PreconditionError(
            f"cluster config {path}: expected kind: Cluster and apiVersion: kind.x-k8s.io/v1alpha4"
        )
    net = doc.get("networking") or {}
    if not isinstance(net, dict):
        raise PreconditionError(f"cluster config {path}: networking must be a mapping")
    mode = net.get("kubeProxyMode", "iptables")
    if mode not in PROXY_MODES:
        raise PreconditionError(
            f"cluster config {path}: unknown kubeProxyMode {mode!r}; "
            f"expected one of {', '.join(PROXY_MODES)}"
        )
    nodes = doc.get("nodes") or [{"role": "control-plane"}]
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise PreconditionError(f"cluster config {path}: nodes must be a list of mappings")
    roles = tuple(str(n.get("role", "control-plane")) for n in nodes)
    if "control-plane" not in roles:
        raise PreconditionError(f"cluster config {path}: needs at least one control-plane node")
    return ClusterConfig(
        path=path,
        proxy_mode=mode,
        service_subnet=str(net.get("serviceSubnet", "10.96.0.0/12")),
        pod_subnet=net.get("podSubnet"),
        node_roles=roles,
    )


#: kubeadm's config API from which ``extraArgs`` is a list of ``{name, value}``
#: (v1beta4); before it (v1beta3) a map of name to value.
KUBEADM_V1BETA4 = "kubeadm.k8s.io/v1beta4"


def render_cluster_config(
    text: str,
    *,
    feature_gates: Mapping[str, bool] | None = None,
    kubeadm_api: str = "kubeadm.k8s.io/v1beta3",
    extra_patches: Sequence[str] = (),
    header: str = "",
) -> str:
    """A kind ``Cluster`` config made from ``text`` for one Kubernetes version (pure).

    ``feature_gates`` go into kind's top-level ``featureGates``, which kind writes into
    every component's config: the API server's, controller manager's and scheduler's
    ``feature-gates`` flag, and the ``featureGates`` of KubeletConfiguration and
    KubeProxyConfiguration (sigs.k8s.io/kind v0.30.0,
    pkg/cluster/internal/kubeadm/config.go). Where kind writes kubeadm ``v1beta4``
    (``kubeadm_api``), the ``extraArgs`` maps of ``kubeadmConfigPatches`` become
    v1beta4's lists of ``{name, value}``; kubeadm 1.37 reads no other form.
    ``extra_patches`` are added to ``kubeadmConfigPatches`` as they are. Comments
    of ``text`` are not kept: ``header`` says where the result came from.
    """
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise PreconditionError("cluster config: expected a mapping")
    if feature_gates:
        gates = dict(doc.get("featureGates") or {})
        gates.update(feature_gates)
        doc["featureGates"] = gates
    if kubeadm_api == KUBEADM_V1BETA4:
        doc["kubeadmConfigPatches"] = [
            _extra_args_as_list(patch) for patch in doc.get("kubeadmConfigPatches") or []
        ]
    if extra_patches:
        doc["kubeadmConfigPatches"] = [*(doc.get("kubeadmConfigPatches") or []), *extra_patches]
    body = yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + body


class _BlockDumper(yaml.SafeDumper):
    """Writes a string of several lines (a kubeadm patch) as a ``|`` block, as kindlab's
    own configs do."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str)

#: The keys whose map values v1beta4 takes as lists of ``{name, value}``.
_ARG_MAPS = ("extraArgs", "kubeletExtraArgs")


def _extra_args_as_list(patch: str) -> str:
    """One kubeadm config patch with every ``extraArgs`` map as a v1beta4 list."""
    doc = yaml.safe_load(patch)
    if not isinstance(doc, dict):
        return patch
    pending: list[object] = [doc]  # a worklist: no recursion over the patch's nesting
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key in _ARG_MAPS:
                if isinstance(node.get(key), dict):
                    node[key] = [{"name": k, "value": str(v)} for k, v in node[key].items()]
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def find_kind(
    explicit: str | os.PathLike[str] | None = None,
    *,
    progress: Progress = _quiet,
    version: str = KIND_VERSION,
) -> Path:
    """Locate the kind binary of kind release ``version``: ``explicit``, then ``PATH``,
    then kindlab's own build (:func:`install_kind`).

    ``PATH``'s kind is taken to be kindlab's pinned release, so it serves that release
    only; another (a Kubernetes version that needs it, :func:`kindlab.versions.kind_for`)
    is built.
    """
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PreconditionError(f"--kind-bin {path}: no executable file there")
        return path
    on_path = shutil.which("kind") if version == KIND_VERSION else None
    if on_path:
        return Path(on_path)
    return install_kind(version, progress=progress)


def install_kind(version: str = KIND_VERSION, *, progress: Progress = _quiet) -> Path:
    """``<cache>/bin/kind-VERSION``, built once with ``go install sigs.k8s.io/kind@VERSION``."""
    cached = cache_dir() / "bin" / f"kind-{version}"
    if cached.is_file():
        return cached
    go = shutil.which("go") or shutil.which("/usr/local/go/bin/go")
    if not go:
        raise PreconditionError(
            "no kind binary: pass --kind-bin, put kind on PATH, or install Go so that "
            f"kindlab can build {KIND_MODULE}@{version}"
        )
    gobin = cached.parent / f".gobin-{os.getpid()}"
    gobin.mkdir(parents=True, exist_ok=True)
    argv = [go, "install", "-trimpath", f"{KIND_MODULE}@{version}"]
    progress(f"building kind {version} with Go (once; cached in {cached.parent})")
    try:
        run(argv, env={"GOBIN": str(gobin), "CGO_ENABLED": "0"})
        (gobin / "kind").replace(cached)
    finally:
        shutil.rmtree(gobin, ignore_errors=True)
    return cached


class Kind:
    """The ``kind`` command line, as a plain object."""

    def __init__(self, binary: Path, *, progress: Progress = _quiet) -> None:
        self.binary = binary
        self.progress = progress

    def _run(self, args: Sequence[str], *, stream: bool = False, timeout: float = 600) -> str:
        """kind's stdout; with ``stream``, its output goes to the progress callback as it comes."""
        on_line = self.progress if stream else None
        return run([self.binary, *args], on_line=on_line, timeout=timeout)

    def version(self) -> str:
        return self._run(["version"]).strip()

    def clusters(self) -> list[str]:
        return [line for line in self._run(["get", "clusters"]).splitlines() if line.strip()]

    def nodes(self, name: str) -> list[str]:
        return [line for line in self._run(["get", "nodes", "--name", name]).splitlines() if line]

    def create(
        self,
        name: str,
        *,
        config: Path,
        image: str,
        kubeconfig: Path,
        wait: str = "300s",
    ) -> None:
        """``kind create cluster``; kind's progress goes to the progress callback."""
        kubeconfig.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # kind writes into the file; create it first so it is never world-readable.
        kubeconfig.touch(mode=0o600, exist_ok=True)
        kubeconfig.chmod(0o600)
        args = [
            "create", "cluster",
            "--name", name,
            "--config", str(config),
            "--image", image,
            "--kubeconfig", str(kubeconfig),
            "--wait", wait,
            "--retain",
        ]  # fmt: skip
        self._run(args, stream=True, timeout=900)
        kubeconfig.chmod(0o600)

    def delete(self, name: str, *, kubeconfig: Path | None = None) -> None:
        args = ["delete", "cluster", "--name", name]
        if kubeconfig is not None:
            args += ["--kubeconfig", str(kubeconfig)]
        self._run(args, timeout=300)

    def export_logs(self, name: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        self._run(["export", "logs", str(dest), "--name", name], timeout=300)
        return dest
