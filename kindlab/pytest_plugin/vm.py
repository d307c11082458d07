"""The plugin's VM path: ipvs checks run in a qemu guest, outcomes come back as reports.

Host side (:class:`IpvsVm`): where the Docker host's kernel lacks IP_VS or dummy
and ``--ipvs-vm`` allows it, the ipvs-marked items are moved to the end of the
run. When the first of them is due, the guest boots with the node image already
in its Docker and runs exactly those items with kindlab inside; each report it
sends (serialized as pytest-xdist does) is logged on the host as the item's own
report, so pass/fail, the evidence sections and the lab report's rows are the
guest's real outcomes. A guest that fails makes its items fail, with the tail
of its console.

Guest side (:class:`EventSink`): ``--kindlab-events PATH`` writes progress lines
and every test report as JSON lines to PATH (the guest's events port).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

import pytest

from kindlab.drivers import kernel
from kindlab.drivers.vm.choice import VM_CHOICES, Decision, decide
from kindlab.errors import KindlabError
from kindlab.pytest_plugin.image import choose_node_image
from kindlab.pytest_plugin.options import GROUP, existing_kubeconfig
from kindlab.pytest_plugin.output import say, sink_key
from kindlab.pytest_plugin.report import ENTRY_PROPERTY, entry_for

Say = Callable[[str], None]
EntryFn = Callable[[pytest.Item, pytest.TestReport], Any]
#: The name the host-side plugin is registered under (the ``cluster`` fixture asks it).
PLUGIN_NAME = "kindlab-ipvs-vm"


class HostClusters(Protocol):
    """The session's native clusters, as the cluster fixtures hold them (:mod:`.clusters`)."""

    keep: bool

    @property
    def clusters(self) -> Mapping[str, object]: ...

    def release_all(self) -> None: ...


#: The session's clusters, once the cluster fixtures made their holder (:mod:`.clusters`).
cluster_manager_key: pytest.StashKey[HostClusters] = pytest.StashKey()


def guest_args(nodeids: list[str], node_image: str) -> list[str]:
    """The guest's command: pytest on exactly ``nodeids`` (pure)."""
    from kindlab.drivers.vm import guest

    return [
        "python3",
        "-m",
        "pytest",
        *nodeids,
        "-p",
        "kindlab.plugin",
        "-p",
        "no:cacheprovider",
        "--node-image",
        node_image,
        "--kind-bin",
        guest.KIND_PATH,
        "--ipvs-vm",
        "never",
        # the guest powers off with its disk thrown away: no need to delete
        "--keep-clusters",
        "--kindlab-report",
        f"{guest.RESULTS_DIR}/lab",
        "--basetemp",
        "/tmp/kindlab-pytest",
        "-v",
    ]


def payload_sources(
    rootdir: Path, items: list[pytest.Item], inifile: Path | None
) -> dict[str, Path]:
    """What the guest's rootdir needs: kindlab, its data, the items' test directories."""
    from kindlab.drivers.vm.disk import kindlab_sources

    sources = kindlab_sources()
    if inifile is not None and inifile.is_relative_to(rootdir):
        sources[str(inifile.relative_to(rootdir))] = inifile
    conftest = rootdir / "conftest.py"
    if conftest.exists():
        sources["conftest.py"] = conftest
    for item in items:
        test_dir = Path(str(item.path)).resolve().parent
        if test_dir.is_relative_to(rootdir):
            sources[str(test_dir.relative_to(rootdir))] = test_dir
    return sources


class IpvsVm:
    """Runs the ipvs items of this session in a qemu guest (host side)."""

    def __init__(
        self, config: pytest.Config, say: Say, entry: EntryFn, node_image: Callable[[], str]
    ) -> None:
        self.config = config
        self.say = say
        self.entry = entry
        self.node_image = node_image
        self.items: list[pytest.Item] = []
        self.decision: Decision | None = None
        self._reports: dict[str, list[pytest.TestReport]] = {}
        self._done: set[str] = set()
        self._failure: str | None = None
        self._ran_in = ""
        self._started = False
        self._events: Any = None
        self._run: Any = None
        self._sigterm: Any = None

    # -- deciding --------------------------------------------------------------

    def decision_for(self) -> Decision:
        if self.decision is None:
            option = self.config.getoption("ipvs_vm")
            if option == "never":  # no need to ask the kernel (it may take a container)
                self.decision = Decision(False, why="--ipvs-vm never")
                return self.decision
            if existing_kubeconfig(self.config):  # the checks run against that cluster
                self.decision = Decision(False, why="--kubeconfig")
                return self.decision
            support = kernel.host_support("ipvs")
            self.decision = decide(
                option,
                support.ok,
                support.reason,
                shutil.which("qemu-system-x86_64"),
                xdist=hasattr(self.config, "workerinput"),
            )
        return self.decision

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        ipvs = [i for i in items if i.get_closest_marker("ipvs")]
        if not ipvs:
            return
        if not self.decision_for().use_vm:
            return
        # native checks first: the guest's run comes last, all at once
        rest = [i for i in items if not i.get_closest_marker("ipvs")]
        items[:] = rest + ipvs
        self.items = ipvs

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if item not in self.items:
            return None
        if not self._started:
            self._started = True
            self._start()
        reports = self._reports_for(item)
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for report in reports:
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        if nextitem is None or nextitem not in self.items:
            self._finish()
        return True

    # -- the guest's run -----------------------------------------------------------

    def _start(self) -> None:
        from kindlab.drivers import vm
        from kindlab.drivers.kind import find_kind

        config = self.config
        # A SIGTERM (CI's timeout, a closed session) would end Python at once and leave
        # qemu, which runs in a session of its own, behind: make it a Ctrl-C instead.
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._release_host_clusters()
            vm.remove_leftovers(self.say)
            node_image = self.node_image()
            kind_bin = find_kind(config.getoption("kind_bin"), progress=self.say)
            self.say(f"ipvs checks run in a qemu guest: {self.decision_for().why}")
            disk, accel = vm.prepare(node_image, kind_bin, config.getoption("vm_accel"), self.say)
            self._ran_in = f"qemu guest, kernel {disk.kernel_release}, {accel.name}"
            rootdir = Path(str(config.rootpath))
            inifile = Path(str(config.inipath)) if config.inipath else None
            sources = payload_sources(rootdir, self.items, inifile)
            args = guest_args([i.nodeid for i in self.items], node_image)
            files = vm.payload_files(accel)
            self._run = vm.GuestRun(
                disk,
                lambda dest: vm.payload_disk(dest, sources, args, files),
                accel,
                cpus=config.getoption("vm_cpus"),
                memory=config.getoption("vm_memory"),
                timeout=config.getoption("vm_timeout"),
                keep_dir=_keep_dir(config),
                progress=self.say,
            )
            self._run.__enter__()
            self._events = self._run.events()
        except Exception as exc:  # any failure here fails the items, never the session
            what = "" if isinstance(exc, KindlabError) else f"{type(exc).__name__}: "
            self._fail_all(f"kindlab: the ipvs guest could not start: {what}{exc}")

    def _release_host_clusters(self) -> None:
        """Delete this run's native clusters: every native check has run by now.

        Under emulation the guest needs both cores; an idle kind cluster beside it takes
        enough CPU to push the guest's cluster past kind's and kubeadm's fixed waits.
        """
        manager = self.config.stash.get(cluster_manager_key, None)
        if manager is None or not manager.clusters:
            return
        if manager.keep:
            self.say("keeping this run's clusters (--keep-clusters) while the guest runs")
            return
        self.say("the native checks are done: deleting their clusters before the guest starts")
        manager.release_all()

    def _reports_for(self, item: pytest.Item) -> list[pytest.TestReport]:
        """The guest's reports of ``item``, waiting for them as the guest runs."""
        while item.nodeid not in self._done and self._failure is None:
            self._pump()
        reports = self._reports.pop(item.nodeid, [])
        if item.nodeid not in self._done or not reports:
            reports = [self._failed_report(item, self._failure or "the guest sent no report")]
        for report in reports:
            _tag_entry(report, self._ran_in)
        return reports

    def _pump(self) -> None:
        try:
            event = next(self._events)
        except StopIteration:
            tail = self._run.console_tail() if self._run is not None else ""
            self._fail_all("the guest finished without running it" + tail)
            return
        except KindlabError as exc:
            self._fail_all(str(exc))
            return
        if event.kind == "report":
            report = restore_skip(
                self.config.hook.pytest_report_from_serializable(
                    config=self.config, data=event.data["report"]
                )
            )
            self._reports.setdefault(report.nodeid, []).append(report)
            if report.when == "teardown":
                self._done.add(report.nodeid)
            if report.when == "call" or (report.when == "setup" and not report.passed):
                self.say(f"guest: {report.nodeid} {report.outcome.upper()}")
        elif event.kind in ("stage", "progress"):
            self.say(event.describe())

    def _fail_all(self, message: str) -> None:
        self._failure = message
        self.say(message.splitlines()[0] if message else "the ipvs guest failed")

    def _failed_report(self, item: pytest.Item, message: str) -> pytest.TestReport:
        report = pytest.TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords={k: 1 for k in item.keywords},
            outcome="failed",
            longrepr=message,
            when="setup",
        )
        entry = self.entry(item, report)
        if entry is not None:
            report.user_properties.append((ENTRY_PROPERTY, entry.to_json()))
        self._done.add(item.nodeid)
        return report

    def _finish(self, *, drain: bool = True) -> None:
        run, self._run = self._run, None
        if run is None:
            self._restore_sigterm()
            return
        try:
            # drain what is left: the guest's final stage and its power-off
            if drain and self._failure is None:
                for event in self._events:
                    if event.kind in ("stage", "progress"):
                        self.say(event.describe())
        except KindlabError as exc:
            self.say(f"the guest did not end cleanly: {exc}")
        finally:
            run.__exit__(None, None, None)
        self._restore_sigterm()
        if run.kept:
            self.say(f"guest console, events and results kept in {run.kept}")
        self.say(f"guest run took {run.elapsed:.0f}s")

    def _restore_sigterm(self) -> None:
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    def pytest_sessionfinish(self) -> None:
        # Still running here means Ctrl-C or an early exit (-x): stop qemu now, keep
        # its console and events; its own results never came.
        self._finish(drain=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def restore_skip(report: pytest.TestReport) -> pytest.TestReport:
    """A skip's ``(path, line, reason)`` back as the tuple pytest's summary asserts on.

    The guest's reports come as JSON, which has no tuples: a skipped report arrived with
    a list there and the host's pytest died in its short summary (seen 2026-11-28).
    """
    if report.skipped and isinstance(report.longrepr, list):
        path, lineno, reason = report.longrepr
        report.longrepr = (str(path), int(lineno), str(reason))
    return report


def _tag_entry(report: pytest.TestReport, ran_in: str) -> None:
    """Mark the report's lab entry with where the check ran."""
    props = []
    for name, value in report.user_properties:
        if name == ENTRY_PROPERTY and isinstance(value, dict):
            value = {**value, "ran_in": ran_in}
        props.append((name, value))
    report.user_properties = props


def _keep_dir(config: pytest.Config) -> Path:
    target = config.getoption("kindlab_report")
    base = Path(target).parent if target else Path(str(config.rootpath)) / "reports"
    return base / "ipvs-vm"


class EventSink:
    """Guest side: progress and each test report, as JSON lines on the events port."""

    def __init__(self, config: pytest.Config, path: str) -> None:
        self.config = config
        self._out: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115

    def emit(self, event: str, **data: Any) -> None:
        self._out.write(json.dumps({"event": event, **data}, default=str) + "\n")
        self._out.flush()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.emit("report", report=data)

    def pytest_unconfigure(self) -> None:
        self._out.close()


@pytest.hookimpl(trylast=True)  # after the group's own options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(*GROUP)
    group.addoption(
        "--ipvs-vm",
        choices=VM_CHOICES,
        default=os.environ.get("KINDLAB_IPVS_VM", "auto"),
        help="run the ipvs checks in a qemu guest: auto (when the Docker host's kernel lacks "
        "IP_VS or dummy and qemu is installed), always, never (default: $KINDLAB_IPVS_VM "
        "or auto)",
    )
    group.addoption(
        "--vm-accel",
        choices=("auto", "kvm", "tcg"),
        default="auto",
        help="the guest's accelerator: auto (KVM if a probe boot works, else TCG)",
    )
    group.addoption("--vm-cpus", type=int, default=2, help="the guest's vCPUs (default 2)")
    group.addoption("--vm-memory", default="8G", help="the guest's memory (default 8G)")
    group.addoption(
        "--vm-timeout",
        type=float,
        default=2400,
        help="seconds the whole guest run may take (default 2400)",
    )
    # set by a guest's script: where progress and reports go (the events port)
    group.addoption(
        "--kindlab-events", default=os.environ.get("KINDLAB_EVENTS"), help=argparse.SUPPRESS
    )


def pytest_configure(config: pytest.Config) -> None:
    events = config.getoption("kindlab_events", None)
    if events:
        sink = EventSink(config, events)
        config.stash[sink_key] = sink
        config.pluginmanager.register(sink, "kindlab-events")
    plugin = IpvsVm(
        config,
        lambda m: say(config, m),
        entry_for,
        lambda: choose_node_image(config, kind_images=False),
    )
    config.pluginmanager.register(plugin, PLUGIN_NAME)


def ipvs_vm(config: pytest.Config) -> IpvsVm:
    """This session's host-side plugin of the guest."""
    plugin: IpvsVm = config.pluginmanager.getplugin(PLUGIN_NAME)
    return plugin
