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

from kindlab.errors import PreconditionError
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
        help="kind node image (default: kindlab's offline image, built or reused from cache)",
    )
    group.addoption(
        "--kubernetes-version",
        default=None,
        metavar="VERSIONS",
        help="Kubernetes version(s) of the node image kindlab builds when --node-image is not "
        "given: one (1.30 or v1.30.14) or a comma-separated list",
    )
    group.addoption(
        "--keep-clusters",
        action="store_true",
        default=False,
        help="keep the lab's clusters after the run and reuse them next time (`kindlab down` "
        "removes them)",
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
    config.stash[versions_key] = wanted


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
    versions = ", ".join(run_versions(config))
    image = (
        config.getoption("node_image")
        or f"kindlab offline image of {versions} (built on first use)"
    )
    keep = "kept for reuse" if config.getoption("keep_clusters") else "deleted at the end"
    return [f"kindlab: node image {image}; clusters {keep}"]
