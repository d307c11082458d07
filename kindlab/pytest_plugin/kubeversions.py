"""The run's Kubernetes versions as an axis: one cluster per (mode, version).

With ``--kubernetes-version v1.25.0,v1.29.15`` every test that needs a cluster (the
``cluster`` fixture, or one built on it: ``node``, ``samples``, ``finding``) runs once
per version, with the version's patch in its id (``test_x[v1.29.15-iptables]``: the
checks of one version run together). With one version nothing is parametrized and
test ids stay as they were. Clusters are made when first needed and all deleted at
the end, so the versions' clusters coexist.

:class:`SessionClusters` holds one :class:`~kindlab.drivers.clusters.ClusterManager`
per version, made on first use: that version's node image (built or reused once, under
a lock shared with xdist workers), its kind release, and its minor in the clusters'
names. Under xdist each worker has its own, and the lock per (mode, version) makes one
worker create each cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from kindlab.drivers.clusters import Cluster, ClusterManager, config_for_version
from kindlab.drivers.kind import Kind
from kindlab.errors import KindlabError, PreconditionError
from kindlab.pytest_plugin.image import choose_node_image, kind_binary_for
from kindlab.pytest_plugin.options import PARAM, item_version, run_versions
from kindlab.pytest_plugin.output import say
from kindlab.pytest_plugin.xdist import run_id
from kindlab.versions import choose


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    versions = run_versions(metafunc.config)
    if len(versions) > 1 and PARAM in metafunc.fixturenames:
        metafunc.parametrize(PARAM, versions, indirect=True)


@pytest.fixture
def kubernetes_version(request: pytest.FixtureRequest) -> str | None:
    """The Kubernetes patch release of this test's cluster (``v1.29.15``); None when
    ``--node-image`` names the image (its version is the image's)."""
    return item_version(request.node)  # the parameter, where the run has several


class SessionClusters:
    """This session's cluster managers, one per Kubernetes version, made on first use."""

    def __init__(
        self,
        config: pytest.Config,
        locks: Path,
        *,
        after_create: Callable[[Cluster], None] | None = None,
    ) -> None:
        self.config = config
        self.locks = locks
        self.after_create = after_create  # every manager's (a guest's tuning)
        self.keep: bool = config.getoption("keep_clusters")
        self.managers: dict[str | None, ClusterManager] = {}
        self._failed: dict[str | None, str] = {}
        self._leftovers_removed = False

    def _say(self, message: str) -> None:
        say(self.config, message)

    @property
    def clusters(self) -> dict[str, Cluster]:
        """Every cluster this process holds, by name."""
        return {c.name: c for m in self.managers.values() for c in m.clusters.values()}

    def manager(self, version: str | None) -> ClusterManager:
        """The manager of ``version``'s clusters (None: ``--node-image``'s).

        A version whose node image or kind cannot be had (a precondition, or a build
        command that failed) fails every test of it, and is not tried again: the later
        ones fail with the first one's message as one line.
        """
        if version in self._failed:
            raise PreconditionError(self._failed[version])
        if version not in self.managers:
            try:
                self.managers[version] = self._make(version)
            except KindlabError as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._failed[version] = (
                    str(exc)
                    if isinstance(exc, PreconditionError)
                    else (
                        f"Kubernetes {version}: its node image or kind failed earlier in this "
                        f"run: {first}"
                    )
                )
                raise
        return self.managers[version]

    def _make(self, version: str | None) -> ClusterManager:
        with FileLock(str(self.locks / "kindlab-node-image.lock")):
            image = choose_node_image(self.config, version)
        manager = ClusterManager(
            Kind(kind_binary_for(self.config, version), progress=self._say),
            image=image,
            keep=self.keep,
            run_id=run_id(self.config),
            progress=self._say,
            after_create=self.after_create,
            layout=self.config.getoption("cluster_layout"),
            version=choose(version).minor if version is not None else None,
        )
        if not self._leftovers_removed:
            # Each process holds its own state files' pids alive, so xdist workers of
            # this run never remove each other's clusters; the lock keeps two removals
            # apart. Any kind release can list and delete any kindlab cluster.
            with FileLock(str(self.locks / "kindlab-leftovers.lock")):
                manager.remove_leftovers()
            self._leftovers_removed = True
        return manager

    def ensure(self, mode: str, version: str | None) -> Cluster:
        """The (mode, version) cluster: created once, also across xdist workers."""
        manager = self.manager(version)
        label = f"-{manager.version}" if manager.version is not None else ""
        with FileLock(str(self.locks / f"kindlab-{mode}{label}.lock")):
            config = (
                config_for_version(mode, choose(version), layout=manager.layout)
                if version is not None
                else None
            )
            return manager.ensure(mode, config)

    def release_all(self) -> None:
        for manager in self.managers.values():
            manager.release_all()
