"""The kind binary and node image of each Kubernetes version of the run: as given,
found, or built once and cached.

:mod:`.kubeversions` asks for them per version: the node image
(:mod:`kindlab.nodeimage.source`), and the kind release that version needs
(:func:`kindlab.versions.kind_for`).

A check that needs a tool the node image lacks (kind's own images have no ``ping`` and
no ``ipvsadm``) skips, naming the image, the tool and the command that found it missing:
the claim cannot be observed on that image, which is not the claim's failure.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from kindlab.constants import KIND_VERSION
from kindlab.drivers.clusters import require_node_image
from kindlab.drivers.kind import find_kind
from kindlab.drivers.node import ToolMissingError
from kindlab.nodeimage import source
from kindlab.pytest_plugin.options import item_version, run_versions, single_version, versions_key
from kindlab.pytest_plugin.output import say
from kindlab.versions import choose


def choose_node_image(
    config: pytest.Config, version: str | None = None, *, kind_images: bool = True
) -> str:
    """``--node-image`` if Docker has it, else the image ``--node-image-source`` finds for
    ``version`` (a patch of the run's; default: the run's one version).

    See :mod:`kindlab.nodeimage.source`; ``kind_images=False`` for the ipvs guest (kind's
    image has no ipvsadm). Raises :class:`~kindlab.errors.PreconditionError` (one line)
    when none is had.
    """
    explicit = config.getoption("node_image") or None
    asked = explicit is None and config.getoption("kubernetes_version") is not None
    wanted = source.Wanted(
        image=explicit,
        kubernetes_version=_as_asked(config, version) if asked else None,
        source=config.getoption("node_image_source"),
        registry=config.getoption("node_image_registry"),
        kind_images=kind_images,
    )
    choice = source.resolve(wanted, progress=lambda m: say(config, m), require=require_node_image)
    chosen = config.stash.setdefault(chosen_key, {})
    chosen[version or ""] = f"{choice.ref} ({choice.how})"
    return choice.ref


def _as_asked(config: pytest.Config, version: str | None) -> str:
    """The run's version ``version`` (a chosen patch) as the user wrote it: a minor
    (``1.34``) lets any patch of it serve, a patch only itself."""
    if version is None:
        return single_version(config)
    written_all: tuple[str, ...] = config.stash[versions_key]
    for written, patch in zip(written_all, run_versions(config), strict=True):
        if patch == version:
            return written
    return version


def kind_binary_for(config: pytest.Config, version: str | None) -> Path:
    """The kind binary for clusters of ``version``: ``--kind-bin`` if given, else the
    kind release the version needs (:func:`~kindlab.drivers.kind.find_kind`)."""
    return find_kind(
        config.getoption("kind_bin"),
        progress=lambda m: say(config, m),
        version=choose(version).kind.version if version is not None else KIND_VERSION,
    )


#: The images this process chose and how, by the run's version ("" when the run's one).
chosen_key = pytest.StashKey[dict[str, str]]()


def chosen_images(config: pytest.Config) -> str | None:
    """What :func:`choose_node_image` chose in this process, for the report (None: none)."""
    chosen = config.stash.get(chosen_key, {})
    return "; ".join(chosen[v] for v in sorted(chosen)) or None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A tool missing in the node (:class:`ToolMissingError`) skips the test, saying so."""
    try:
        return (yield)
    except ToolMissingError as exc:
        config = item.config
        chosen = config.stash.get(chosen_key, {})
        version = item_version(item) or ""
        image = chosen.get(version) or chosen_images(config) or config.getoption("node_image")
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
