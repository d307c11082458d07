"""The kind binary and node image of each Kubernetes version of the run: as given,
found, or built once and cached.

The node image of that version, and the kind release that version needs
(:func:`kindlab.versions.kind_for`); :mod:`.kubeversions` asks for them per version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kindlab.constants import KIND_VERSION
from kindlab.drivers.clusters import require_node_image
from kindlab.drivers.kind import find_kind, install_kind
from kindlab.errors import PreconditionError
from kindlab.pytest_plugin.options import single_version
from kindlab.pytest_plugin.output import say
from kindlab.versions import choose


def choose_node_image(config: pytest.Config, version: str | None = None) -> str:
    """``--node-image`` if Docker has it, else kindlab's offline image of ``version``
    (default: the run's one version), built or reused.

    Raises :class:`~kindlab.errors.PreconditionError` (one line) when the named image
    is missing, or when kindlab cannot build the version's image yet.
    """
    explicit = config.getoption("node_image")
    if explicit:
        require_node_image(str(explicit))
        return str(explicit)
    from kindlab import nodeimage

    choice = choose(version if version is not None else single_version(config))
    if choice.kind.version != KIND_VERSION:
        raise PreconditionError(
            f"Kubernetes {choice.patch} needs kind {choice.kind.version} ({choice.kind.note}), "
            f"and kindlab's node image follows kind {KIND_VERSION}'s base image (its "
            "images/base files and containerd config): building it for another kind "
            "release is not done yet (issue 8)"
        )
    return nodeimage.build(choice.patch, progress=lambda m: say(config, m))


def kind_binary_for(config: pytest.Config, version: str | None) -> Path:
    """The kind binary for clusters of ``version``: ``--kind-bin`` if given; else the
    kind release the version needs, from PATH when that is kindlab's pinned release,
    else built with Go and cached (``<cache>/bin/kind-VERSION``)."""
    explicit = config.getoption("kind_bin")
    progress = lambda m: say(config, m)  # noqa: E731
    if explicit or version is None:
        return find_kind(explicit, progress=progress)
    wanted = choose(version).kind.version
    if wanted == KIND_VERSION:
        return find_kind(None, progress=progress)
    return install_kind(wanted, progress=progress)
