"""The session's kind binary and node image: as given, found, or built once and cached.

A check that needs a tool the node image lacks (kind's own images have no ``ping`` and
no ``ipvsadm``) skips, naming the image, the tool and the command that found it missing:
the claim cannot be observed on that image, which is not the claim's failure.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest
from filelock import FileLock

from kindlab.drivers.clusters import require_node_image
from kindlab.drivers.kind import find_kind
from kindlab.drivers.node import ToolMissingError
from kindlab.nodeimage import source
from kindlab.pytest_plugin.options import single_version
from kindlab.pytest_plugin.output import one_line_errors, say
from kindlab.pytest_plugin.xdist import lock_dir


@pytest.fixture(scope="session")
def kind_binary(pytestconfig: pytest.Config) -> Path:
    """The kind binary: ``--kind-bin``, else PATH, else built with Go and cached."""
    with one_line_errors():
        return find_kind(
            pytestconfig.getoption("kind_bin"), progress=lambda m: say(pytestconfig, m)
        )


@pytest.fixture(scope="session")
def node_image(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The node image: ``--node-image``, else chosen by ``--node-image-source``."""
    lock = FileLock(str(lock_dir(tmp_path_factory) / "kindlab-node-image.lock"))
    with lock, one_line_errors():
        return choose_node_image(pytestconfig)


def choose_node_image(config: pytest.Config, *, kind_images: bool = True) -> str:
    """``--node-image`` if Docker has it, else the image ``--node-image-source`` finds.

    See :mod:`kindlab.nodeimage.source`; ``kind_images=False`` for the ipvs guest (kind's
    image has no ipvsadm). Raises :class:`~kindlab.errors.PreconditionError` (one line)
    when none is had.
    """
    explicit = config.getoption("node_image") or None
    asked = explicit is None and config.getoption("kubernetes_version") is not None
    wanted = source.Wanted(
        image=explicit,
        kubernetes_version=single_version(config) if asked else None,
        source=config.getoption("node_image_source"),
        registry=config.getoption("node_image_registry"),
        kind_images=kind_images,
    )
    choice = source.resolve(wanted, progress=lambda m: say(config, m), require=require_node_image)
    config.stash[chosen_key] = f"{choice.ref} ({choice.how})"
    return choice.ref


#: The image this process chose and how, for the report.
chosen_key = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A tool missing in the node (:class:`ToolMissingError`) skips the test, saying so."""
    try:
        return (yield)
    except ToolMissingError as exc:
        config = item.config
        image = config.stash.get(chosen_key, None) or config.getoption("node_image")
        pytest.skip(missing_tool_reason(exc, image))


def missing_tool_reason(exc: ToolMissingError, image: str | None) -> str:
    """Why a check cannot run: the node image (``ref (how)``, when known) lacks a tool."""
    said = (exc.stderr or exc.stdout).strip().splitlines()
    return (
        f"the node image{f' {image}' if image else ''} has no `{exc.tool}`, which this check "
        f"runs in the node (`{exc.command_line}` exited {exc.exit_code}"
        f"{f': {said[-1]}' if said else ''}); kindlab's own node image has it "
        "(--node-image-source build)"
    )
