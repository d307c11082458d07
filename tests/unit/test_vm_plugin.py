"""Results from the guest become the host's own reports (pytester, no qemu).

A first run plays the guest: kindlab's plugin with ``--kindlab-events`` writes
each report as JSON lines, as it does inside the VM. A second run plays the
host: ``--ipvs-vm always``, with only the guest run itself replaced by those
recorded lines. The host's outcomes, failure texts and report rows must be the
guest's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CHECKS = """
import pytest

@pytest.mark.ipvs
@pytest.mark.claim("ipvs-interface")
def test_holds(finding):
    pass

@pytest.mark.ipvs
@pytest.mark.claim("ipvs-ping")
def test_fails():
    assert 1 == 2, "ping was answered: expected Port Unreachable"

@pytest.fixture
def broken():
    raise RuntimeError("no cluster in the guest")

@pytest.mark.ipvs
@pytest.mark.claim("no-endpoints")
def test_errors_in_setup(broken):
    pass

def test_plain_native():
    pass
"""

# The guest's finding fixture needs a cluster; here it is a plain record.
GUEST_CONFTEST = """
import pytest
from kindlab.lab.report import Finding
from kindlab.pytest_plugin.report import finding_key

@pytest.fixture
def finding(request):
    record = Finding("ipvs-interface", "ipvs", "v1.34.4", expected="/32s", observed="/32s")
    request.node.stash[finding_key] = record
    return record
"""

# pytester runs in this process: the fakes are put in for the inner session only and
# taken out at its end, or the real lab's ipvs items later in the same run would get them.
HOST_CONFTEST = """
import pytest
from kindlab.pytest_plugin import vm as plugin_vm
from kindlab.drivers.vm.choice import Decision
from kindlab.drivers.vm.events import Event

EVENTS = {events!r}
REAL = (plugin_vm.IpvsVm._start, plugin_vm.IpvsVm.decision_for)

def fake_start(self):
    lines = open(EVENTS).read().splitlines()
    self._events = iter([Event.parse(line) for line in lines])
    self._ran_in = "qemu guest, kernel 6.12.0-test, tcg"

def pytest_configure(config):
    plugin_vm.IpvsVm._start = fake_start
    plugin_vm.IpvsVm.decision_for = lambda self: Decision(True, why="test")

def pytest_unconfigure(config):
    plugin_vm.IpvsVm._start, plugin_vm.IpvsVm.decision_for = REAL
"""


def _guest_events(pytester: pytest.Pytester, tmp_path: Path) -> Path:
    events = tmp_path / "events.jsonl"
    pytester.makeconftest(GUEST_CONFTEST)
    pytester.makepyfile(test_checks=CHECKS)
    guest = pytester.runpytest(
        "-p", "no:cacheprovider", "--kindlab-events", str(events), "--kindlab-report", "guest"
    )
    guest.assert_outcomes(passed=2, failed=1, errors=1)
    return events


def test_guest_reports_become_host_outcomes(pytester: pytest.Pytester, tmp_path: Path) -> None:
    events = _guest_events(pytester, tmp_path)
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds.count("report") == 11  # setup, call, teardown; no call after a setup error

    pytester.makeconftest(HOST_CONFTEST.format(events=str(events)))
    host = pytester.runpytest(
        "-p", "no:cacheprovider", "--ipvs-vm", "always", "--kindlab-report", "host", "-v"
    )
    host.assert_outcomes(passed=2, failed=1, errors=1)
    host.stdout.fnmatch_lines(["*ping was answered: expected Port Unreachable*"])
    host.stdout.fnmatch_lines(["*RuntimeError: no cluster in the guest*"])
    # the native test ran first; the guest's items came last, all together
    ran = [ln.split()[0] for ln in host.stdout.lines if ln.startswith("test_checks.py::")]
    assert ran[0] == "test_checks.py::test_plain_native", ran

    report = json.loads((pytester.path / "host.json").read_text())
    rows = {r["nodeid"].split("::")[1]: r for r in report["entries"]}
    assert rows["test_holds"]["outcome"] == "passed"
    assert rows["test_holds"]["observed"] == "/32s"
    assert rows["test_fails"]["outcome"] == "failed"
    assert rows["test_errors_in_setup"]["outcome"] == "failed"
    assert {r["ran_in"] for r in rows.values()} == {"qemu guest, kernel 6.12.0-test, tcg"}


def test_a_guest_that_sends_nothing_fails_its_items(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event": "stage", "stage": "booted", "detail": "", "uptime": 1}\n')
    pytester.makepyfile(test_checks=CHECKS)
    pytester.makeconftest(HOST_CONFTEST.format(events=str(events)))
    host = pytester.runpytest("-p", "no:cacheprovider", "--ipvs-vm", "always")
    host.assert_outcomes(passed=1, errors=3)
    host.stdout.fnmatch_lines(["*the guest finished without running it*"])


def test_the_fakes_do_not_outlive_the_inner_session(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    from kindlab.pytest_plugin import vm as plugin_vm

    real = (plugin_vm.IpvsVm._start, plugin_vm.IpvsVm.decision_for)
    test_a_guest_that_sends_nothing_fails_its_items(pytester, tmp_path)
    assert (plugin_vm.IpvsVm._start, plugin_vm.IpvsVm.decision_for) == real


class _Manager:
    def __init__(self, keep: bool) -> None:
        self.clusters = {"iptables": object()}
        self.keep = keep
        self.released = False

    def release_all(self) -> None:
        self.released = True
        self.clusters = {}


class _Config:
    def __init__(self) -> None:
        self.stash = pytest.Stash()


@pytest.mark.parametrize("keep", [False, True])
def test_the_native_clusters_go_before_the_guest_starts_unless_kept(keep: bool) -> None:
    from kindlab.pytest_plugin import vm as plugin_vm

    config = _Config()
    manager = _Manager(keep)
    said: list[str] = []
    vm = plugin_vm.IpvsVm(config, said.append, lambda i, r: None, lambda: "img")  # type: ignore[arg-type]
    vm._release_host_clusters()  # no manager yet (an ipvs-only run): nothing to do
    config.stash[plugin_vm.cluster_manager_key] = manager
    vm._release_host_clusters()
    assert manager.released is not keep
    assert ("--keep-clusters" in said[-1]) is keep


def test_a_skip_from_the_guest_reads_as_a_skip_in_the_hosts_summary() -> None:
    import json

    from kindlab.pytest_plugin.vm import restore_skip

    sent = pytest.TestReport(
        "labs/test_x.py::test_y",
        ("labs/test_x.py", 3, "test_y"),
        {},
        "skipped",
        ("labs/test_x.py", 4, "Skipped: why"),
        "setup",
    )
    # what the events port carries: JSON, where the tuple becomes a list
    got = pytest.TestReport._from_json(json.loads(json.dumps(sent._to_json())))
    assert isinstance(got.longrepr, list)
    assert restore_skip(got).longrepr == ("labs/test_x.py", 4, "Skipped: why")
