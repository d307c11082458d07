"""An existing cluster (``--kubeconfig``): the lab's target instead of kind clusters.

The session connects once, removes the namespaces of earlier runs that died, starts a
debug pod per node and reads kube-proxy's mode from every node. A check of that mode
gets the cluster from the ``cluster`` fixture (see :mod:`.clusters`); a check of
another mode does not run, and its reason (the report's too) names the mode found.
At the end, and on Ctrl-C or SIGTERM, the run's namespaces are deleted. The driver,
:class:`~kindlab.drivers.existing.ExistingCluster`, owns all of it; this is wiring.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from kindlab.drivers.debugpod import remove_namespaces, run_namespaces
from kindlab.drivers.existing import ExistingCluster
from kindlab.drivers.kube import Kube
from kindlab.pytest_plugin.options import existing_kubeconfig
from kindlab.pytest_plugin.output import one_line_errors, say
from kindlab.pytest_plugin.xdist import is_controller, run_id
from kindlab.timing import scaled


@pytest.fixture(scope="session")
def existing_cluster(pytestconfig: pytest.Config) -> Iterator[ExistingCluster]:
    """The cluster of ``--kubeconfig``, a debug pod on each node; removed at the end."""
    kubeconfig = existing_kubeconfig(pytestconfig)
    if kubeconfig is None:
        raise pytest.UsageError("the existing_cluster fixture needs --kubeconfig")
    worker = os.environ.get("PYTEST_XDIST_WORKER") or None
    with one_line_errors():
        cluster = ExistingCluster(
            Path(kubeconfig),
            pytestconfig.getoption("context"),
            run_id=run_id(pytestconfig),
            worker=worker,
            debug_image=pytestconfig.getoption("debug_image"),
            progress=lambda m: say(pytestconfig, m),
        )
    with _sigterm_as_interrupt():
        opened = False
        try:
            with one_line_errors():
                cluster.open(timeout=scaled(180))
            opened = True
            yield cluster
        finally:
            try:
                # Under xdist each worker removes its own debug pods; the controller the rest.
                cluster.close(whole_run=worker is None)
            except Exception as exc:
                if opened:
                    raise
                # The reason it did not open matters more; this one is said, not raised.
                say(pytestconfig, f"could not remove this run's namespaces: {exc}")


def existing_for(request: pytest.FixtureRequest, mode: str) -> ExistingCluster:
    """The existing cluster for a check of ``mode``; a check of another mode skips."""
    cluster: ExistingCluster = request.getfixturevalue("existing_cluster")
    if cluster.mode != mode:
        pytest.skip(
            f"{mode} check not run: the existing cluster ({cluster.describe()}) runs "
            f"kube-proxy in {cluster.mode} mode (/proxyMode on each of its nodes)"
        )
    return cluster


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under xdist, the controller deletes the namespaces the workers shared."""
    config = session.config
    kubeconfig = existing_kubeconfig(config)
    if kubeconfig is None or not is_controller(config):
        return
    kube = Kube(Path(kubeconfig), context=config.getoption("context"))
    names = run_namespaces(kube, run_id(config))
    remove_namespaces(kube, names, progress=lambda m: say(config, m))


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (CI's timeout, a closed session) as a Ctrl-C, so that the pods go too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
