"""Live fixtures: a real privileged container standing in for a node.

The container runs kindlab's own Debian root file system (the first stage of the
offline node image, built once and cached), with no network: the tests only
talk to its loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kindlab import labels
from kindlab.drivers.node import Node, docker_client
from kindlab.drivers.proc import run


@pytest.fixture(scope="session")
def box_image() -> str:
    """kindlab's Debian root file system image (debootstrap), built or reused."""
    from kindlab import nodeimage

    return nodeimage.rootfs_image(progress=print)


@pytest.fixture(scope="session")
def node_image() -> str:
    """This kindlab's node image for the default version (built if need be).

    Not merely the newest kindlab image in Docker: that may be another version's, whose
    node lacks the sample's agnhost tag (seen 2026-11-28 with a v1.29.15 image).
    """
    from kindlab.nodeimage.build import RecipeUnknown, build, recipe_tag

    try:
        tag = recipe_tag()
    except RecipeUnknown:
        return build(progress=print)
    if run(["docker", "images", "-q", tag]).strip():
        return tag
    return build(progress=print)


@pytest.fixture(scope="session")
def box(box_image: str) -> Iterator[Node]:
    """A running privileged container, removed at the end of the session."""
    client = docker_client()
    container = client.containers.run(
        box_image,
        ["sleep", "infinity"],
        name=f"kindlab-box-{os.getpid()}",
        labels={labels.MANAGED: "true"},
        privileged=True,
        network_mode="none",
        detach=True,
        auto_remove=False,
    )
    try:
        yield Node(container.name, client=client)
    finally:
        container.remove(force=True)
