"""ClusterManager's own logic (names, state files, leftovers, interrupts) with a fake kind.

Only the harness's bookkeeping is under test here; real clusters are the live tests' job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kindlab import clusters
from kindlab.clusters import ClusterCreateError, ClusterManager
from kindlab.kind import load_cluster_config
from kindlab.paths import clusters_dir


class FakeKind:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.existing: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def clusters(self) -> list[str]:
        return sorted(self.existing)

    def create(self, name: str, **_: Any) -> None:
        self.calls.append(("create", name))
        self.existing.add(name)  # kind leaves a half-made cluster behind when it fails
        if self.fail is not None:
            raise self.fail

    def delete(self, name: str, **_: Any) -> None:
        self.calls.append(("delete", name))
        self.existing.discard(name)

    def export_logs(self, name: str, dest: Path) -> Path:
        self.calls.append(("export_logs", name))
        return dest


class FakeKube:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def wait_nodes_ready(self, timeout: float = 0) -> list[str]:
        return ["control-plane"]


@pytest.fixture(autouse=True)
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(clusters, "Kube", FakeKube)
    monkeypatch.setattr(
        ClusterManager,
        "check_preconditions",
        lambda self, mode, config=None: load_cluster_config(clusters_dir() / f"{mode}.yaml"),
    )


def manager(kind: FakeKind, **kw: Any) -> ClusterManager:
    return ClusterManager(kind, image="kindlab/node:test", **kw)  # type: ignore[arg-type]


def test_run_clusters_have_unique_names_kept_ones_stable() -> None:
    kind = FakeKind()
    assert manager(kind, run_id="abc123").name_for("iptables") == "kindlab-iptables-abc123"
    assert manager(kind, keep=True).name_for("nftables") == "kindlab-nftables"


def test_create_writes_state_first_and_release_deletes() -> None:
    kind = FakeKind()
    m = manager(kind, run_id="r1")
    cluster = m.ensure("iptables")
    assert cluster.name == "kindlab-iptables-r1"
    state = m.states()[cluster.name]
    assert state["complete"] is True and state["run_id"] == "r1" and state["keep"] is False
    assert m.ensure("iptables") is cluster
    m.release_all()
    assert kind.existing == set()
    assert m.states() == {}


def test_interrupt_during_create_leaves_nothing() -> None:
    kind = FakeKind(fail=KeyboardInterrupt())
    m = manager(kind, run_id="r2", keep=True)
    with pytest.raises(KeyboardInterrupt):
        m.ensure("nftables")
    assert kind.existing == set()
    assert m.states() == {}


def test_failed_create_exports_logs_then_removes_the_cluster() -> None:
    kind = FakeKind(fail=RuntimeError("kubeadm init failed"))
    m = manager(kind, run_id="r3")
    with pytest.raises(ClusterCreateError, match="nothing was left behind"):
        m.ensure("iptables")
    assert [c[0] for c in kind.calls] == ["create", "export_logs", "delete"]
    assert kind.existing == set() and m.states() == {}


def test_leftovers_of_dead_runs_are_removed_kept_and_live_ones_stay(tmp_path: Path) -> None:
    kind = FakeKind()
    m = manager(kind, run_id="now")
    m.state_dir.mkdir(parents=True)
    import os
    import socket

    host = socket.gethostname()
    for name, pid, keep in [
        ("kindlab-iptables-dead", 2**22 + 1, False),
        ("kindlab-nftables-alive", os.getpid(), False),
        ("kindlab-iptables", 2**22 + 1, True),
    ]:
        kind.existing.add(name)
        (m.state_dir / f"{name}.json").write_text(
            json.dumps({"pid": pid, "host": host, "keep": keep, "complete": True})
        )
    assert m.remove_leftovers() == ["kindlab-iptables-dead"]
    assert kind.existing == {"kindlab-nftables-alive", "kindlab-iptables"}


def test_kept_cluster_is_reused_when_unchanged_and_recreated_when_image_changes() -> None:
    kind = FakeKind()
    first = manager(kind, keep=True).ensure("iptables")
    again = manager(kind, keep=True).ensure("iptables")
    assert again.name == first.name and kind.calls.count(("create", first.name)) == 1
    other = ClusterManager(kind, image="kindlab/node:other", keep=True)  # type: ignore[arg-type]
    other.ensure("iptables")
    assert kind.calls[-2:] == [("delete", first.name), ("create", first.name)]
    assert manager(kind).down() == [first.name]
    assert kind.existing == set()


def test_unknown_mode_is_refused_before_anything() -> None:
    with pytest.raises(clusters.PreconditionError, match="unknown proxy mode 'userspace'"):
        clusters.config_path("userspace")
