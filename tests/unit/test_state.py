"""ClusterState: the state file's fields, typed, both ways; files that cannot be read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kindlab.drivers.state import (
    ClusterState,
    StateError,
    forget,
    kubeconfig_path,
    read_states,
    write_state,
)

STATE = ClusterState(
    "kindlab-nftables-1a2b3c",
    mode="nftables",
    image="kindlab/node:v1.34.4-0123456789ab",
    config="/work/main/clusters/nftables.yaml",
    fingerprint="fedcba9876543210",
    keep=False,
    pid=4242,
    run_id="1a2b3c",
    host="lab-1",
    created=1764300000.25,
    complete=True,
)


def test_a_state_goes_to_json_and_back_unchanged(tmp_path: Path) -> None:
    assert ClusterState.from_json(json.loads(json.dumps(STATE.to_json()))) == STATE
    write_state(STATE, tmp_path)
    assert read_states(tmp_path) == {STATE.name: STATE}
    assert "problem" not in json.loads((tmp_path / f"{STATE.name}.json").read_text())


def test_names_derived_from_the_state() -> None:
    assert STATE.control_plane == "kindlab-nftables-1a2b3c-control-plane"
    assert kubeconfig_path(STATE.name, Path("/c")) == Path("/c/kindlab-nftables-1a2b3c.kubeconfig")


def test_missing_fields_take_defaults_and_unknown_keys_are_ignored() -> None:
    state = ClusterState.from_json({"name": "kindlab-ipvs", "keep": True, "later": [1, 2]})
    assert state == ClusterState("kindlab-ipvs", keep=True)
    assert (state.pid, state.host, state.complete) == (0, "", False)  # a dead run's


def test_an_integer_time_is_a_time() -> None:
    assert ClusterState.from_json({"name": "x", "created": 17}).created == 17


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "expected a JSON object, got list", id="not-an-object"),
        pytest.param({"mode": "ipvs"}, "field 'name' is missing", id="no-name"),
        pytest.param({"name": 3}, "field 'name': expected str, got 3", id="name-int"),
        pytest.param({"name": "x", "pid": "12"}, "field 'pid': expected int, got '12'", id="pid"),
        pytest.param({"name": "x", "pid": True}, "field 'pid': expected int, got True", id="bool"),
        pytest.param({"name": "x", "keep": 1}, "field 'keep': expected bool, got 1", id="keep-1"),
        pytest.param(
            {"name": "x", "created": "now"}, "field 'created': expected float", id="created"
        ),
        pytest.param({"name": "x", "complete": None}, "field 'complete'", id="complete-null"),
    ],
)
def test_what_is_not_a_state_is_refused_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(StateError, match="^" + message.replace("(", r"\(")):
        ClusterState.from_json(data)


def test_files_that_cannot_be_read_still_name_their_cluster(tmp_path: Path) -> None:
    write_state(STATE, tmp_path)
    (tmp_path / "kindlab-iptables-cut.json").write_text('{"name": "kindlab-iptables-cut", "p')
    (tmp_path / "kindlab-ipvs-typed.json").write_text('{"name": "kindlab-ipvs-typed", "pid": "1"}')
    (tmp_path / "kindlab-ipvs-moved.json").write_text('{"name": "kindlab-ipvs-other"}')
    (tmp_path / "kindlab-binary.json").write_bytes(b"\xff\xfe")
    (tmp_path / "kindlab-half.tmp").write_text("{")  # a write in progress is no state
    states = read_states(tmp_path)
    assert sorted(states) == [
        "kindlab-binary",
        "kindlab-iptables-cut",
        "kindlab-ipvs-moved",
        "kindlab-ipvs-typed",
        STATE.name,
    ]
    assert states[STATE.name] == STATE
    for name in (
        "kindlab-binary",
        "kindlab-iptables-cut",
        "kindlab-ipvs-moved",
        "kindlab-ipvs-typed",
    ):
        unreadable = states[name]
        assert unreadable == ClusterState(name, problem=unreadable.problem)
        assert unreadable.problem.startswith(f"{tmp_path / name}.json: ")
    assert states["kindlab-ipvs-moved"].problem.endswith(
        "it names cluster 'kindlab-ipvs-other', not 'kindlab-ipvs-moved'"
    )
    assert states["kindlab-ipvs-typed"].problem.endswith("field 'pid': expected int, got '1'")


def test_no_directory_is_no_state(tmp_path: Path) -> None:
    assert read_states(tmp_path / "none") == {}


def test_forget_removes_the_state_and_the_kubeconfig(tmp_path: Path) -> None:
    write_state(STATE, tmp_path)
    kubeconfig_path(STATE.name, tmp_path).write_text("apiVersion: v1\n")
    forget(STATE.name, tmp_path)
    forget(STATE.name, tmp_path)  # twice is fine: the files are gone
    assert list(tmp_path.iterdir()) == []
