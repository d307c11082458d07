"""kindlab's command-line options (the ``kindlab`` group) and its line in the header.

The qemu guest's options are :mod:`.vm`'s, in the same group.
"""

from __future__ import annotations

import os

import pytest

GROUP = ("kindlab", "kindlab: kind clusters per kube-proxy mode")


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
        help="Kubernetes version of the node image kindlab builds when --node-image is not given",
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


def pytest_report_header(config: pytest.Config) -> list[str]:
    image = config.getoption("node_image") or "kindlab offline image (built on first use)"
    keep = "kept for reuse" if config.getoption("keep_clusters") else "deleted at the end"
    return [f"kindlab: node image {image}; clusters {keep}"]
