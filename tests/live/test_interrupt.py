"""Ctrl-C at five points of a lab run: each run ends within 10 s and leaves nothing behind.

Each case starts ``python3 -m pytest labs -m iptables`` in a process group of its own,
with a cache of its own (``KINDLAB_CACHE``) but the node image and kind binary that are
already here, watches its progress lines, and at the case's point sends SIGINT to the
whole group, as a terminal's Ctrl-C does. Then: the run must end within
:data:`EXIT_BUDGET` seconds, and no node container, no kindlab network, no state file
and no process of that run may remain.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kindlab import labels
from kindlab.constants import CLUSTER_PREFIX
from kindlab.drivers.kind import find_kind
from kindlab.drivers.proc import run, started
from kindlab.errors import CommandError
from kindlab.paths import project_root

pytestmark = pytest.mark.live

#: Seconds from SIGINT to the end of the run.
EXIT_BUDGET = 10.0
#: Seconds a case may take to reach its point (a cluster is created on the way).
REACH_BUDGET = 240.0
#: The last test of ``-k proxy_mode``: its result is the end of the run.
LAST = "test_cluster_ips_come_from_the_service_range"


@dataclass(frozen=True)
class Point:
    name: str
    #: Searched in everything the run printed so far (a -v line is complete only at
    #: its result, so the text, not whole lines).
    reached: re.Pattern[str]
    args: tuple[str, ...] = ()
    #: Then also wait until the cluster's node runs this program (the test body's probe).
    in_node: str | None = None


POINTS = [
    # The first test's setup: kind found, node image and kernel checked, leftovers.
    Point("image check", re.compile(r"labs/test_iptables\.py::test_\w+ ")),
    Point("kind create", re.compile(r"Starting control-plane")),
    Point("sample deploy", re.compile(r"kindlab: waiting for \d+ ready endpoints")),
    # The first test's body, while it pings the ClusterIP from the node.
    Point("inside a test", re.compile(r"kindlab: kube-proxy synced: "), in_node="ping"),
    # The last result: what is left is the cluster's deletion and the report.
    Point("report writing", re.compile(rf"::{LAST}\[iptables\] (PASSED|FAILED|ERROR)"),
          ("-k", "proxy_mode")),
]  # fmt: skip


@pytest.fixture(scope="module")
def kind_bin() -> Path:
    return find_kind()


def kind_containers() -> set[str]:
    """Node containers of kind clusters named by kindlab, as ``cluster/container``."""
    out = run(
        [
            "docker", "ps", "-a", "--filter", f"label={labels.KIND_CLUSTER}",
            "--format", f'{{{{.Label "{labels.KIND_CLUSTER}"}}}}/{{{{.Names}}}}',
        ]
    )  # fmt: skip
    return {c for c in out.split() if c.startswith(CLUSTER_PREFIX)}


def kindlab_networks() -> set[str]:
    by_label = run(
        ["docker", "network", "ls", "--filter", f"label={labels.MANAGED}=true", "-q"]
    ).split()
    names = run(["docker", "network", "ls", "--format", "{{.Name}}"]).split()
    return set(by_label) | {n for n in names if n.startswith(CLUSTER_PREFIX)}


def node_runs(log: str, program: str) -> bool:
    """Whether the control-plane node of the run's cluster runs ``program`` now."""
    named = re.search(r"creating kind cluster (kindlab-\S+)", log)
    if named is None:
        return False
    node = f"{named.group(1)}-control-plane"
    try:
        top = run(["docker", "top", node, "-eo", "pid,args"], timeout=10)
    except CommandError:  # not created yet, or already gone
        return False
    return any(line.split()[1:2] == [program] for line in top.splitlines())


def processes_with(marker: str) -> list[str]:
    """Processes whose environment holds ``marker`` (this case's KINDLAB_CACHE)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def landed(output: str) -> str:
    """The innermost frame of the lab's or kindlab's own code the interrupt came in."""
    # --full-trace: each frame ends with a "path.py:LINE: " line.
    frames = re.findall(r"^(\S*(?:labs|kindlab)/\S+\.py:\d+): ", output, re.MULTILINE)
    return frames[-1] if frames else "pytest itself"


@dataclass
class Outcome:
    exit_seconds: float
    returncode: int | None
    output: str


def interrupt_at(point: Point, argv: list[str], env: dict[str, str], log: Path) -> Outcome:
    """Start the run, send SIGINT to its group at ``point``; how long it took to end."""

    def there() -> bool:
        text = log.read_text(errors="replace")
        if not point.reached.search(text):
            return False
        return point.in_node is None or node_runs(text, point.in_node)

    with started(argv, cwd=project_root(), env=env, log_path=log) as child:
        try:
            deadline = time.monotonic() + REACH_BUDGET
            while not there():
                if child.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    pytest.fail(f"the run never reached {point.name!r}; its output ends:\n{tail}")
                time.sleep(0.05)
        finally:
            # Ctrl-C also when the watching failed, so that the run cleans up after itself.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT)
            sent = time.monotonic()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=60)
            took = time.monotonic() - sent
    return Outcome(took, child.returncode, log.read_text(errors="replace"))


@pytest.fixture(scope="module")
def measured() -> Iterator[dict[str, str]]:
    """How long each point took to exit and where the interrupt landed (``-s`` shows it)."""
    lines: dict[str, str] = {}
    yield lines
    print("\nSIGINT -> end of run:", *(f"  {k}: {v}" for k, v in lines.items()), sep="\n")


@pytest.mark.parametrize("point", POINTS, ids=[p.name.replace(" ", "-") for p in POINTS])
def test_ctrl_c_ends_the_run_quickly_and_leaves_nothing(
    point: Point,
    node_image: str,
    kind_bin: Path,
    tmp_path: Path,
    measured: dict[str, str],
) -> None:
    cache = tmp_path / "cache"
    env = {"KINDLAB_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    containers_before = kind_containers()
    networks_before = kindlab_networks()
    argv = [
        "python3", "-m", "pytest", "labs", "-m", "iptables", "-v", "-p", "no:cacheprovider",
        "--full-trace",
        "--node-image", node_image, "--kind-bin", str(kind_bin),
        "--kindlab-report", str(tmp_path / "report" / "lab"),
        *point.args,
    ]  # fmt: skip
    outcome = interrupt_at(point, argv, env, tmp_path / "run.log")
    measured[point.name] = (
        f"{outcome.exit_seconds:.1f}s, exit {outcome.returncode}, in {landed(outcome.output)}"
    )
    tail = "\n".join(outcome.output.splitlines()[-25:])
    assert outcome.exit_seconds <= EXIT_BUDGET, (
        f"after Ctrl-C at {point.name!r} the run took {outcome.exit_seconds:.1f}s to end "
        f"(budget {EXIT_BUDGET}s); its output ends:\n{tail}"
    )
    left = {
        "node containers": sorted(kind_containers() - containers_before),
        "networks": sorted(kindlab_networks() - networks_before),
        "state files": sorted(p.name for p in (cache / "clusters").glob("*")),
        "processes": processes_with(f"KINDLAB_CACHE={cache}"),
    }
    assert not any(left.values()), (
        f"Ctrl-C at {point.name!r} left {left}; the run's output ends:\n{tail}"
    )
