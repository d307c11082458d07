"""What kindlab records of each cluster it creates, so that none is ever lost.

Before ``kind create cluster`` runs, :class:`~kindlab.drivers.clusters.ClusterManager` writes
``<cache>/clusters/NAME.json`` (a :class:`ClusterState`: the owner's pid and host, the
run, the image and config, whether to keep it); kind writes the cluster's kubeconfig
beside it, ``NAME.kubeconfig``. A later run, ``kindlab status``, ``kindlab explain``
and ``kindlab down`` find the clusters through these files.

A state file that cannot be read (damaged, or from a kindlab that wrote other
fields) still names its cluster: :func:`read_states` returns it as a state with no
owner, which every reader treats as the leftover of a dead run, so the cluster is
removed rather than forgotten.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kindlab.errors import KindlabError
from kindlab.paths import cache_dir


class StateError(KindlabError, ValueError):
    """A state file's content is not a cluster state; the message names the field."""


def default_dir() -> Path:
    """``<cache>/clusters``: one ``NAME.json`` and ``NAME.kubeconfig`` per cluster."""
    return cache_dir() / "clusters"


@dataclass(frozen=True, slots=True)
class ClusterState:
    """One cluster as kindlab recorded it (``<cache>/clusters/NAME.json``).

    A field the file lacks (an older kindlab's file, or a damaged one) reads as its
    default: no owner (pid 0, no host), not kept, not complete. That is a dead run's
    leftover, which is what kindlab then takes the cluster to be.
    """

    name: str
    mode: str = ""
    image: str = ""
    #: The kind cluster config it was created from.
    config: str = ""
    #: Hash of the config's content and the image: a kept cluster is reused only if equal.
    fingerprint: str = ""
    keep: bool = False
    pid: int = 0
    run_id: str = ""
    host: str = ""
    #: Seconds since the epoch, when the state was first written.
    created: float = 0.0
    #: False until ``kind create cluster`` succeeded and the nodes were Ready.
    complete: bool = False
    #: Why the file could not be read ("" when it could); never written.
    problem: str = ""

    @property
    def control_plane(self) -> str:
        """The first control-plane node's name (kind names it so; also its container's)."""
        return f"{self.name}-control-plane"

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del data["problem"]
        return data

    @classmethod
    def from_json(cls, data: object) -> ClusterState:
        """The state in ``data`` (a parsed state file); :class:`StateError` if it is not one.

        Fields the data lacks take their defaults; keys this kindlab does not know are
        ignored.
        """
        if not isinstance(data, Mapping):
            raise StateError(f"expected a JSON object, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data or f.name == "problem":
                continue
            value = data[f.name]
            expected = _JSON_TYPES[str(f.type)]
            # bool is an int to Python, not to a state file.
            if (isinstance(value, bool) and bool not in expected) or not isinstance(
                value, expected
            ):
                raise StateError(f"field {f.name!r}: expected {f.type}, got {value!r}")
            values[f.name] = value
        if "name" not in values:
            raise StateError("field 'name' is missing")
        return cls(**values)


#: The JSON values each annotation of ClusterState accepts (JSON has no float/int split).
_JSON_TYPES: Mapping[str, tuple[type, ...]] = types.MappingProxyType(
    {"str": (str,), "bool": (bool,), "int": (int,), "float": (float, int)}
)


def kubeconfig_path(name: str, directory: Path | None = None) -> Path:
    """Where the kubeconfig of cluster ``name`` is (kind writes it there on create)."""
    return (directory or default_dir()) / f"{name}.kubeconfig"


def _state_path(name: str, directory: Path | None) -> Path:
    return (directory or default_dir()) / f"{name}.json"


def read_states(directory: Path | None = None) -> dict[str, ClusterState]:
    """Every cluster kindlab has a state file of, by name; unreadable files included.

    A file that cannot be read becomes a state that bears only the file's name and
    the ``problem``, so that its cluster is still found (and removed as a leftover).
    """
    directory = directory or default_dir()
    out: dict[str, ClusterState] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            state = ClusterState.from_json(json.loads(path.read_text()))
            if state.name != path.stem:
                raise StateError(f"it names cluster {state.name!r}, not {path.stem!r}")
        except (OSError, ValueError) as exc:  # StateError and JSONDecodeError are ValueErrors
            state = ClusterState(path.stem, problem=f"{path}: {exc}")
        out[path.stem] = state
    return out


def write_state(state: ClusterState, directory: Path | None = None) -> None:
    """Write (or replace) the state file of ``state.name``, atomically."""
    path = _state_path(state.name, directory)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True))
    tmp.replace(path)


def forget(name: str, directory: Path | None = None) -> None:
    """Remove the state file and kubeconfig of cluster ``name`` (the cluster is gone)."""
    for path in (_state_path(name, directory), kubeconfig_path(name, directory)):
        path.unlink(missing_ok=True)
