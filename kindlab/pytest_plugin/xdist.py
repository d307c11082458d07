"""One run, several processes: what pytest-xdist's workers share with the controller.

The controller picks the run id; every worker gets it, so that they agree on
cluster names. Locks live in the directory all workers' temp dirs share.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest

_run_id_key = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    if not is_worker(config):
        config.stash[_run_id_key] = secrets.token_hex(3)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker of this run gets the controller's run id (one cluster name)."""
    node.workerinput["kindlab_run_id"] = node.config.stash[_run_id_key]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """This process hands tests to xdist workers (it runs none itself)."""
    return bool(config.pluginmanager.hasplugin("dsession"))


def run_id(config: pytest.Config) -> str:
    """The controller's, in every xdist worker too, so that they agree on cluster names."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput["kindlab_run_id"])
    return config.stash[_run_id_key]


def lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this run's file locks go: one directory for the controller and its workers."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has basetemp/popen-gwN; the parent is shared.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
