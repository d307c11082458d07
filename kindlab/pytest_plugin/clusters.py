"""One kind cluster per proxy mode for the session, and the fixtures that reach into it.

Each mode's cluster is created on first use and shared by the whole session; under
pytest-xdist the first worker creates it (under a file lock), the others reuse it,
and the controller deletes it at the end. The drivers own the resources
(:class:`~kindlab.drivers.clusters.ClusterManager`); these fixtures are thin.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from kindlab.drivers.clusters import Cluster, ClusterManager, ModeUnsupported, preflight
from kindlab.drivers.debugpod import run_labels
from kindlab.drivers.kind import Kind, find_kind
from kindlab.drivers.node import NodeBase
from kindlab.drivers.state import read_states
from kindlab.drivers.target import LabCluster
from kindlab.drivers.vm import tuning
from kindlab.drivers.vm.guest import TUNING_ENV
from kindlab.errors import PreconditionError
from kindlab.lab.evidence import Evidence
from kindlab.lab.samples import Samples, deploy_samples, wait_proxy_synced
from kindlab.pytest_plugin.existing import existing_for
from kindlab.pytest_plugin.markers import mode_of
from kindlab.pytest_plugin.options import existing_kubeconfig, versions_key
from kindlab.pytest_plugin.output import one_line_errors, say
from kindlab.pytest_plugin.vm import cluster_manager_key, ipvs_vm
from kindlab.pytest_plugin.xdist import is_controller, lock_dir, run_id
from kindlab.versions import mode_support

_samples_key = pytest.StashKey[dict[str, Samples]]()


@pytest.fixture(scope="session")
def cluster_manager(
    pytestconfig: pytest.Config,
    kind_binary: Path,
    node_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterManager]:
    """Owns this session's clusters; deletes them at the end unless ``--keep-clusters``."""
    progress = lambda m: say(pytestconfig, m)  # noqa: E731
    manager = ClusterManager(
        Kind(kind_binary, progress=progress),
        image=node_image,
        keep=pytestconfig.getoption("keep_clusters"),
        run_id=run_id(pytestconfig),
        progress=progress,
        after_create=_guest_tuning(),
        layout=pytestconfig.getoption("cluster_layout"),
    )
    # Each process holds its own state files' pids alive, so xdist workers of this
    # run never remove each other's clusters; the lock keeps two removals apart.
    with FileLock(str(lock_dir(tmp_path_factory) / "kindlab-leftovers.lock")):
        manager.remove_leftovers()
    pytestconfig.stash[cluster_manager_key] = manager
    try:
        yield manager
    finally:
        # Under xdist the controller deletes the run's clusters once every worker is done.
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            manager.release_all()


def _guest_tuning() -> Callable[[Cluster], None] | None:
    """Inside a qemu guest under TCG, each new cluster is settled (vm/tuning.py)."""
    if os.environ.get(TUNING_ENV) != "tcg":
        return None

    def settle(cluster: Cluster) -> None:
        tuning.settle(cluster.kube)

    return settle


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under xdist, the controller deletes the clusters the workers shared."""
    config = session.config
    if not is_controller(config) or config.getoption("keep_clusters"):
        return
    this_run = run_id(config)
    if not any(s.run_id == this_run for s in read_states().values()):
        return
    kind = Kind(find_kind(config.getoption("kind_bin")))
    progress = lambda m: say(config, m)  # noqa: E731
    ClusterManager(kind, image="", run_id=this_run, progress=progress).release_run()


def _cluster(
    manager: ClusterManager, mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Cluster:
    with FileLock(str(lock_dir(tmp_path_factory) / f"kindlab-{mode}.lock")):
        try:
            return manager.ensure(mode)
        except ModeUnsupported as exc:
            pytest.skip(f"{mode} mode cannot run here: {exc}")
        except PreconditionError as exc:
            pytest.fail(f"kindlab: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def iptables_cluster(
    cluster_manager: ClusterManager, tmp_path_factory: pytest.TempPathFactory
) -> Cluster:
    """A kind cluster whose kube-proxy runs in iptables mode (clusters/iptables.yaml)."""
    return _cluster(cluster_manager, "iptables", tmp_path_factory)


@pytest.fixture(scope="session")
def nftables_cluster(
    cluster_manager: ClusterManager, tmp_path_factory: pytest.TempPathFactory
) -> Cluster:
    """A kind cluster whose kube-proxy runs in nftables mode (clusters/nftables.yaml)."""
    return _cluster(cluster_manager, "nftables", tmp_path_factory)


@pytest.fixture(scope="session")
def ipvs_cluster(
    cluster_manager: ClusterManager, tmp_path_factory: pytest.TempPathFactory
) -> Cluster:
    """A kind cluster whose kube-proxy runs in ipvs mode; skips where the kernel lacks IP_VS."""
    return _cluster(cluster_manager, "ipvs", tmp_path_factory)


def _version_lacks(config: pytest.Config, mode: str) -> str | None:
    """Why the run's Kubernetes version cannot run ``mode`` (None: it can)."""
    if config.getoption("node_image"):
        return None  # an image of the user's: its version is known once it runs
    wanted = config.stash[versions_key]
    if len(wanted) != 1:
        return None  # the cluster fixture says why several versions cannot run yet
    support = mode_support(mode, wanted[0])
    if support.skip_reason:
        return support.skip_reason
    if support.feature_gate:
        return (
            f"kube-proxy {support.minor} has {mode} mode only behind the feature gate "
            f"{support.feature_gate}, which kindlab's clusters/{mode}.yaml does not turn on yet"
        )
    return None


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> LabCluster:
    """The cluster of the proxy mode this test is marked with (``@pytest.mark.iptables``…).

    With ``--kubeconfig``: that cluster, for checks of the mode its kube-proxy runs.
    """
    mode = mode_of(request.node)
    if existing_kubeconfig(request.config):
        return existing_for(request, mode)
    skip = _version_lacks(request.config, mode)
    if skip:
        pytest.skip(skip)
    if mode == "ipvs":
        # Ask before the session fixture so that an unsupported kernel skips without
        # building a node image first. (Where a VM runs them, ipvs items never get here.)
        decision = ipvs_vm(request.config).decision_for()
        if decision.error:
            pytest.fail(f"kindlab: {decision.error}", pytrace=False)
        if decision.skip_reason:
            pytest.skip(decision.skip_reason)
        with one_line_errors():
            try:
                preflight(mode)  # the node_image fixture checks the image
            except ModeUnsupported as exc:
                pytest.skip(f"ipvs mode cannot run here: {exc}")
    result: Cluster = request.getfixturevalue(f"{mode}_cluster")
    return result


@pytest.fixture
def node(cluster: LabCluster, evidence: Evidence) -> NodeBase:
    """The cluster's control-plane node; every command run in it is recorded as evidence."""
    return cluster.node(recorder=evidence.record)


@pytest.fixture
def samples(cluster: LabCluster, pytestconfig: pytest.Config) -> Samples:
    """The sample Services (labs/manifests), deployed once per cluster, endpoints ready."""
    deployed = pytestconfig.stash.setdefault(_samples_key, {})
    if cluster.name not in deployed:
        samples = deploy_samples(
            cluster.kube,
            labels=run_labels(run_id(pytestconfig)),
            progress=lambda m: say(pytestconfig, m),
        )
        say(pytestconfig, "waiting for kube-proxy to program them")
        nodes = [cluster.node(n) for n in cluster.node_names]
        for state in wait_proxy_synced(nodes, since=time.time()):
            say(pytestconfig, f"kube-proxy synced: {state}")
        deployed[cluster.name] = samples
    return deployed[cluster.name]
