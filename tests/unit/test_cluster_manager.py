"""ClusterManager's own logic (names, state files, leftovers, interrupts) with a fake kind.

Only the harness's bookkeeping is under test here; real clusters are the live tests' job.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from kindlab.drivers import clusters
from kindlab.drivers.clusters import ClusterCreateError, ClusterManager, require_node_image
from kindlab.drivers.kind import load_cluster_config
from kindlab.drivers.state import ClusterState, write_state
from kindlab.errors import CommandError, PreconditionError
from kindlab.paths import clusters_dir
from kindlab.versions import Minor

#: A pid no process has (above Linux's pid_max of 2**22).
DEAD_PID = 2**22 + 1


class FakeKind:
    def __init__(self, fail: BaseException | None = None, ctrl_c_in_delete: bool = False) -> None:
        self.existing: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.fail = fail
        self.ctrl_c_in_delete = ctrl_c_in_delete

    def clusters(self) -> list[str]:
        return sorted(self.existing)

    def create(self, name: str, **_: Any) -> None:
        self.calls.append(("create", name))
        self.existing.add(name)  # kind leaves a half-made cluster behind when it fails
        if self.fail is not None:
            raise self.fail

    def delete(self, name: str, **_: Any) -> None:
        self.calls.append(("delete", name))
        if self.ctrl_c_in_delete:
            # A real SIGINT, as the terminal sends it, halfway through the delete.
            os.kill(os.getpid(), signal.SIGINT)
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
        clusters,
        "preflight",
        lambda mode, config=None, image=None: load_cluster_config(clusters_dir() / f"{mode}.yaml"),
    )


def manager(kind: FakeKind, **kw: Any) -> ClusterManager:
    return ClusterManager(kind, image="kindlab/node:test", **kw)  # type: ignore[arg-type]


def test_run_clusters_have_unique_names_kept_ones_stable() -> None:
    kind = FakeKind()
    assert manager(kind, run_id="abc123").name_for("iptables") == "kindlab-iptables-abc123"
    assert manager(kind, keep=True).name_for("nftables") == "kindlab-nftables"


def test_clusters_of_two_versions_have_two_names_and_coexist() -> None:
    kind = FakeKind()
    old = manager(kind, run_id="r1", version=Minor(1, 29))
    new = manager(kind, run_id="r1", version=Minor(1, 30))
    assert old.name_for("iptables") == "kindlab-iptables-v1-29-r1"
    assert manager(kind, keep=True, version=Minor(1, 29)).name_for("ipvs") == "kindlab-ipvs-v1-29"
    a, b = old.ensure("iptables"), new.ensure("iptables")
    assert kind.existing == {"kindlab-iptables-v1-29-r1", "kindlab-iptables-v1-30-r1"}
    old.release_all()
    assert kind.existing == {b.name} and a.name not in old.states()


def test_create_writes_state_first_and_release_deletes() -> None:
    kind = FakeKind()
    m = manager(kind, run_id="r1")
    cluster = m.ensure("iptables")
    assert cluster.name == "kindlab-iptables-r1"
    state = m.states()[cluster.name]
    assert (state.complete, state.run_id, state.keep, state.mode) == (True, "r1", False, "iptables")
    assert (
        cluster.state == state and cluster.kubeconfig == m.state_dir / f"{cluster.name}.kubeconfig"
    )
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


#: What kind v0.30.0 prints when a node's systemd is not at multi-user.target in 30 s.
SYSTEMD_SLOW = (
    "ERROR: failed to create cluster: could not find a log line that matches "
    '"Reached target .*Multi-User System.*|detected cgroup v1"'
)


class FlakyKind(FakeKind):
    """Fails ``create`` with ``errors`` in turn, then succeeds."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__()
        self.errors = errors

    def create(self, name: str, **kw: Any) -> None:
        self.fail = self.errors.pop(0) if self.errors else None
        super().create(name, **kw)


def test_kinds_fixed_systemd_wait_is_retried_once_after_deleting_the_half_made_node() -> None:
    kind = FlakyKind([CommandError(["kind", "create"], 1, SYSTEMD_SLOW)])
    m = manager(kind, run_id="r4")
    cluster = m.ensure("iptables")
    assert [c[0] for c in kind.calls] == ["create", "delete", "create"]
    assert kind.existing == {cluster.name}


def test_a_second_systemd_wait_failure_or_any_other_failure_is_not_retried() -> None:
    slow = CommandError(["kind", "create"], 1, SYSTEMD_SLOW)
    kind = FlakyKind([slow, slow])
    with pytest.raises(ClusterCreateError, match="Multi-User"):
        manager(kind, run_id="r5").ensure("iptables")
    assert [c[0] for c in kind.calls] == ["create", "delete", "create", "export_logs", "delete"]
    assert kind.existing == set()
    other = FlakyKind([CommandError(["kind", "create"], 1, "kubeadm init failed")])
    with pytest.raises(ClusterCreateError, match="kubeadm init failed"):
        manager(other, run_id="r6").ensure("iptables")
    assert [c[0] for c in other.calls] == ["create", "export_logs", "delete"]


def test_leftovers_of_dead_runs_are_removed_kept_and_live_ones_stay() -> None:
    kind = FakeKind()
    m = manager(kind, run_id="now")
    host = socket.gethostname()
    for name, pid, keep in [
        ("kindlab-iptables-dead", DEAD_PID, False),
        ("kindlab-nftables-alive", os.getpid(), False),
        ("kindlab-iptables", DEAD_PID, True),
    ]:
        kind.existing.add(name)
        write_state(ClusterState(name, pid=pid, host=host, keep=keep, complete=True), m.state_dir)
    assert m.remove_leftovers() == ["kindlab-iptables-dead"]
    assert kind.existing == {"kindlab-nftables-alive", "kindlab-iptables"}
    assert sorted(m.states()) == ["kindlab-iptables", "kindlab-nftables-alive"]


def test_a_crashed_runs_state_files_that_cannot_be_read_still_get_their_clusters_removed() -> None:
    kind = FakeKind()
    said: list[str] = []
    m = manager(kind, run_id="now", progress=said.append)
    m.state_dir.mkdir(parents=True)
    files = {
        "kindlab-iptables-a1": '{"name": "kindlab-iptables-a1", "pid": 12',  # cut short
        "kindlab-nftables-b2": '{"name": "kindlab-nftables-b2", "pid": "12"}',  # pid a string
        "kindlab-ipvs-c3": '{"name": "kindlab-ipvs-c4"}',  # another cluster's
    }
    for name, text in files.items():
        kind.existing.add(name)
        (m.state_dir / f"{name}.json").write_text(text)
        (m.state_dir / f"{name}.kubeconfig").write_text("apiVersion: v1\n")
    assert sorted(m.remove_leftovers()) == sorted(files)
    assert kind.existing == set() and list(m.state_dir.iterdir()) == []
    reasons = [
        line for line in said if line.startswith("removing leftover cluster kindlab-nftables")
    ]
    assert len(reasons) == 1 and "field 'pid': expected int, got '12'" in reasons[0]


def test_a_state_file_of_an_older_kindlab_is_read_as_it_was_written() -> None:
    kind = FakeKind()
    m = manager(kind, run_id="now")
    m.state_dir.mkdir(parents=True)
    # Exactly what kindlab wrote before ClusterState (a dict), for a run that died.
    old = {
        "complete": True,
        "config": "/work/main/clusters/iptables.yaml",
        "created": 1764300000.5,
        "fingerprint": "0123456789abcdef",
        "host": socket.gethostname(),
        "image": "kindlab/node:v1.34.4-abc",
        "keep": False,
        "mode": "iptables",
        "name": "kindlab-iptables-0ld",
        "pid": DEAD_PID,
        "run_id": "0ld",
    }
    (m.state_dir / "kindlab-iptables-0ld.json").write_text(json.dumps(old))
    kind.existing.add("kindlab-iptables-0ld")
    state = m.states()["kindlab-iptables-0ld"]
    assert state.problem == "" and state.to_json() == old
    assert m.remove_leftovers() == ["kindlab-iptables-0ld"]


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
    with pytest.raises(PreconditionError, match="unknown proxy mode 'userspace'"):
        clusters.config_path("userspace")


def test_ctrl_c_while_a_cluster_is_deleted_waits_for_the_delete_then_counts() -> None:
    kind = FakeKind(fail=KeyboardInterrupt(), ctrl_c_in_delete=True)
    said: list[str] = []
    m = manager(kind, run_id="r4", progress=said.append)
    with pytest.raises(KeyboardInterrupt):
        m.ensure("iptables")
    assert kind.existing == set() and m.states() == {}
    assert said[-1] == "interrupted: deleting cluster kindlab-iptables-r4 first"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_the_final_cleanup_still_deletes_every_cluster() -> None:
    kind = FakeKind()
    m = manager(kind, run_id="r5")
    m.ensure("iptables")
    m.ensure("nftables")
    kind.ctrl_c_in_delete = True
    with pytest.raises(KeyboardInterrupt):
        m.release_all()
    assert [c for c in kind.calls if c[0] == "delete"] == [
        ("delete", "kindlab-iptables-r5"),
        ("delete", "kindlab-nftables-r5"),
    ]
    assert kind.existing == set() and m.states() == {} and m.clusters == {}


def engine_refusing(error: Exception, asked: list[str]) -> SimpleNamespace:
    """A Docker client whose images.get always fails with ``error``."""

    def get(name: str) -> None:
        asked.append(name)
        raise error

    return SimpleNamespace(images=SimpleNamespace(get=get))


def test_a_missing_node_image_is_one_line_naming_it_and_the_ways_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = "404 Client Error for http+docker://localhost/v1.41/images/kindlab/node:nope/json"
    asked: list[str] = []
    engine = engine_refusing(docker.errors.ImageNotFound(raw), asked)
    monkeypatch.setattr(clusters, "docker_client", lambda: engine)
    with pytest.raises(PreconditionError) as info:
        require_node_image("kindlab/node:nope")
    message = str(info.value)
    assert "\n" not in message and "404" not in message
    assert message.startswith("node image 'kindlab/node:nope' is not in Docker")
    for way in ("kindlab node-image build", "docker load -i", "docker pull kindlab/node:nope"):
        assert way in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no raw chain
    assert asked == ["kindlab/node:nope"]


def test_docker_refusing_to_answer_about_the_image_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = docker.errors.APIError("500 Server Error", explanation="layer does not exist")
    engine = engine_refusing(error, [])
    monkeypatch.setattr(clusters, "docker_client", lambda: engine)
    with pytest.raises(PreconditionError) as info:
        require_node_image("kindlab/node:x")
    assert str(info.value) == (
        "node image 'kindlab/node:x': Docker could not tell whether it has it: layer does not exist"
    )
