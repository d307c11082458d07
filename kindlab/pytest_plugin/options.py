"""kindlab's command-line options (the ``kindlab`` group) and its line in the header.

The qemu guest's options are :mod:`.vm`'s, in the same group. The Kubernetes
versions a run asks for (``--kubernetes-version``) are checked against
:mod:`kindlab.versions` at configure and kept in the config's stash; a test's own
version is its ``kubernetes_version`` parameter when the run has several
(:mod:`.kubeversions`).
"""

from __future__ import annotations

import os

import pytest

from kindlab.constants import LAYOUTS
from kindlab.errors import PreconditionError
from kindlab.nodeimage import source
from kindlab.versions import VersionUnavailable, choose, parse_version_list

GROUP = ("kindlab", "kindlab: kind clusters per kube-proxy mode")
#: The Kubernetes versions of this run (``--kubernetes-version``), each as the user wrote it.
versions_key = pytest.StashKey[tuple[str, ...]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(*GROUP)
    group.addoption(
        "--kind-bin",
        default=os.environ.get("KINDLAB_KIND_BIN"),
        help="kind binary to use (default: kind on PATH, else built with Go and cached)",
    )
    group.addoption(
        "--node-image",
        default=os.environ.get("KINDLAB_NODE_IMAGE"),
        help="kind node image, used as it is (default: chosen by --node-image-source)",
    )
    group.addoption(
        "--kubernetes-version",
        default=None,
        metavar="VERSIONS",
        help="Kubernetes version(s) of the node image when --node-image is not given: one "
        "(1.30 or v1.30.14) or a comma-separated list",
    )
    group.addoption(
        "--node-image-source",
        choices=source.SOURCES,
        default=source.default_source(),
        help=source.SOURCE_HELP + " (or $KINDLAB_NODE_IMAGE_SOURCE)",
    )
    group.addoption(
        "--node-image-registry",
        default=source.default_registry(),
        metavar="REGISTRY",
        help=source.REGISTRY_HELP + " (or $KINDLAB_NODE_IMAGE_REGISTRY)",
    )
    group.addoption(
        "--cluster-layout",
        choices=LAYOUTS,
        default=os.environ.get("KINDLAB_CLUSTER_LAYOUT") or "single",
        help="single: one node per cluster (clusters/MODE.yaml); multinode: a control plane "
        "and two workers (clusters/MODE-multinode.yaml), for the checks across nodes "
        "(default: single, or $KINDLAB_CLUSTER_LAYOUT)",
    )
    group.addoption(
        "--keep-clusters",
        action="store_true",
        default=False,
        help="keep the lab's clusters after the run and reuse them next time (`kindlab down` "
        "removes them)",
    )
    group.addoption(
        "--kubeconfig",
        default=None,
        metavar="PATH",
        help="run the lab against the existing cluster of this kubeconfig instead of creating "
        "kind clusters: its proxy mode is what each node's kube-proxy says at /proxyMode "
        "(checks of other modes do not run), its nodes are reached through debug pods",
    )
    group.addoption(
        "--context",
        default=None,
        metavar="NAME",
        help="with --kubeconfig: the context to use (default: the kubeconfig's current one)",
    )
    group.addoption(
        "--debug-image",
        default=None,
        metavar="IMAGE",
        help="with --kubeconfig: the image of the debug pods that reach the nodes (needs "
        "nsenter and sleep; default: one of kindlab's images that every node already has)",
    )
    group.addoption(
        "--kindlab-report",
        default=None,
        metavar="PATH",
        help="write the lab report to PATH.md and PATH.json",
    )


def pytest_configure(config: pytest.Config) -> None:
    wanted = kubernetes_versions(config.getoption("kubernetes_version"))
    if len(wanted) > 1 and config.getoption("node_image"):
        raise pytest.UsageError(
            f"--kubernetes-version {','.join(wanted)} with --node-image: a node image is of "
            "one Kubernetes version; give one of them, not both"
        )
    if len(wanted) > 1 and config.getoption("kubeconfig"):
        raise pytest.UsageError(
            f"--kubernetes-version {','.join(wanted)} with --kubeconfig: an existing cluster "
            "is of the version it runs; leave --kubernetes-version out"
        )
    config.stash[versions_key] = wanted
    if not config.getoption("kubeconfig"):
        for option in ("context", "debug_image"):
            if config.getoption(option):
                flag = "--" + option.replace("_", "-")
                raise pytest.UsageError(f"{flag} goes with --kubeconfig (an existing cluster)")


def existing_kubeconfig(config: pytest.Config) -> str | None:
    """``--kubeconfig``: the lab runs against that cluster and creates none."""
    value = config.getoption("kubeconfig")
    return str(value) if value else None


def kubernetes_versions(option: str | None) -> tuple[str, ...]:
    """``--kubernetes-version`` as a tuple; each version must be one kindlab can build.

    Without the option: the default version. A version the Go module proxy cannot
    serve whole is a usage error naming the module it refused, before anything runs.
    """
    from kindlab.nodeimage.versions import DEFAULT_KUBERNETES_VERSION

    try:
        wanted = parse_version_list(option) if option else (DEFAULT_KUBERNETES_VERSION,)
        for version in wanted:
            choose(version)
    except (ValueError, VersionUnavailable) as exc:
        raise pytest.UsageError(f"--kubernetes-version: {exc}") from None
    return wanted


def single_version(config: pytest.Config) -> str:
    """The one version of this run, for what runs one version only: the ipvs guest."""
    wanted = config.stash[versions_key]
    if len(wanted) != 1:
        raise PreconditionError(
            f"--kubernetes-version {','.join(wanted)}: the ipvs guest holds the node image "
            "of one Kubernetes version, and runs its checks on that one; run `-m ipvs` "
            "once per version"
        )
    return wanted[0]


#: The parameter that carries a test's version (a fixture of its own).
PARAM = "kubernetes_version"


def run_versions(config: pytest.Config) -> tuple[str, ...]:
    """The patch releases of this run (``("v1.25.0", "v1.29.15")``), as chosen; ``()``
    with ``--node-image`` (the image is of whatever version it is)."""
    if config.getoption("node_image"):
        return ()
    return tuple(choose(v).patch for v in config.stash[versions_key])


def _param(item: pytest.Item) -> str | None:
    spec = getattr(item, "callspec", None)
    return spec.params.get(PARAM) if spec is not None else None


def item_version(item: pytest.Item) -> str | None:
    """The Kubernetes patch ``item`` runs on (None with ``--node-image``)."""
    param = _param(item)
    if param is not None:
        return str(param)
    versions = run_versions(item.config)
    return versions[0] if versions else None


def pytest_report_header(config: pytest.Config) -> list[str]:
    kubeconfig = existing_kubeconfig(config)
    if kubeconfig:
        context = config.getoption("context") or "its current context"
        return [f"kindlab: existing cluster {kubeconfig} ({context}); nodes via debug pods"]
    versions = ", ".join(run_versions(config))
    image = config.getoption("node_image") or (
        f"of {versions} by --node-image-source {config.getoption('node_image_source')}"
    )
    keep = "kept for reuse" if config.getoption("keep_clusters") else "deleted at the end"
    layout = config.getoption("cluster_layout")
    # The default layout goes unsaid: the line stays as it was for every run that asks none.
    said = "" if layout == "single" else f"; {layout} layout"
    return [f"kindlab: node image {image}; clusters {keep}{said}"]
