"""The session's kind binary and node image: as given, found, or built once and cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock

from kindlab.constants import KIND_VERSION
from kindlab.drivers.clusters import require_node_image
from kindlab.drivers.kind import find_kind
from kindlab.errors import PreconditionError
from kindlab.pytest_plugin.options import single_version
from kindlab.pytest_plugin.output import one_line_errors, say
from kindlab.pytest_plugin.xdist import lock_dir
from kindlab.versions import choose


@pytest.fixture(scope="session")
def kind_binary(pytestconfig: pytest.Config) -> Path:
    """The kind binary: ``--kind-bin``, else PATH, else built with Go and cached."""
    with one_line_errors():
        return find_kind(
            pytestconfig.getoption("kind_bin"), progress=lambda m: say(pytestconfig, m)
        )


@pytest.fixture(scope="session")
def node_image(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The node image: ``--node-image``, else kindlab's offline image (built once, cached)."""
    lock = FileLock(str(lock_dir(tmp_path_factory) / "kindlab-node-image.lock"))
    with lock, one_line_errors():
        return choose_node_image(pytestconfig)


def choose_node_image(config: pytest.Config) -> str:
    """``--node-image`` if Docker has it, else kindlab's offline image, built or reused.

    Raises :class:`~kindlab.errors.PreconditionError` (one line) when the named image
    is missing.
    """
    explicit = config.getoption("node_image")
    if explicit:
        require_node_image(str(explicit))
        return str(explicit)
    from kindlab import nodeimage

    choice = choose(single_version(config))
    if choice.kind.version != KIND_VERSION:
        raise PreconditionError(
            f"Kubernetes {choice.patch} needs kind {choice.kind.version}, not kindlab's "
            f"{KIND_VERSION}: {choice.kind.note}; not supported yet (issue 8)"
        )
    return nodeimage.build(choice.patch, progress=lambda m: say(config, m))
