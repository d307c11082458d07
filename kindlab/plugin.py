"""kindlab's pytest plugin: options, markers, cluster fixtures, evidence on failure.

Registered through the ``pytest11`` entry point, so installing kindlab is
enough. Fixtures are thin: the drivers in :mod:`kindlab.drivers.clusters`,
:mod:`kindlab.drivers.node` and :mod:`kindlab.drivers.kube` own the resources.

One kind cluster per proxy mode is created on first use and shared by the
whole session; under pytest-xdist the first worker creates it (under a file
lock) and the others reuse it, and the controller deletes it at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from kindlab import plugin_vm
from kindlab.constants import PROXY_MODES
from kindlab.drivers.clusters import (
    Cluster,
    ClusterManager,
    ModeUnsupported,
    preflight,
    require_node_image,
)
from kindlab.drivers.kind import Kind, find_kind
from kindlab.drivers.node import Node
from kindlab.drivers.state import read_states
from kindlab.errors import PreconditionError
from kindlab.lab.evidence import Evidence
from kindlab.lab.report import Entry, Finding, write_reports
from kindlab.lab.samples import Samples, deploy_samples, wait_proxy_synced

MARKERS = {
    "iptables": "a lab check of kube-proxy in iptables mode (needs a kind cluster)",
    "ipvs": "a lab check of kube-proxy in ipvs mode (needs IP_VS and dummy in the host kernel)",
    "nftables": "a lab check of kube-proxy in nftables mode (needs a kind cluster)",
    "live": "needs a Docker engine; may create kind clusters",
    "claim(id)": "the lab claim (kindlab.lab.expectations.CLAIMS) a test checks; it goes in "
    "the report",
}

evidence_key = pytest.StashKey[Evidence]()
finding_key = pytest.StashKey[Finding]()
_REPORT_PROPERTY = "kindlab-entry"


def each_mode(*modes: str) -> pytest.MarkDecorator:
    """Parametrize a check over proxy modes, each case marked with its mode."""
    chosen = modes or PROXY_MODES
    return pytest.mark.parametrize(
        "mode", [pytest.param(m, marks=getattr(pytest.mark, m), id=m) for m in chosen]
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kindlab", "kindlab: kind clusters per kube-proxy mode")
    group.addoption(
        "--kind-bin",
        default=os.environ.get("KINDLAB_KIND_BIN"),
        help="kind binary to use (default: kind on PATH, else built with Go and cached)",
    )
    group.addoption(
        "--node-image",
        default=os.environ.get("KINDLAB_NODE_IMAGE"),
        help="kind node image (default: kindlab's offline image, built or reused from cache)",
    )
    group.addoption(
        "--kubernetes-version",
        default=None,
        help="Kubernetes version of the node image kindlab builds when --node-image is not given",
    )
    group.addoption(
        "--keep-clusters",
        action="store_true",
        default=False,
        help="keep the lab's clusters after the run and reuse them next time (`kindlab down` "
        "removes them)",
    )
    group.addoption(
        "--kindlab-report",
        default=None,
        metavar="PATH",
        help="write the lab report to PATH.md and PATH.json",
    )
    plugin_vm.add_options(group)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.pluginmanager.register(_ReportCollector(config), "kindlab-report")
    plugin_vm.register(
        config, lambda message: _say(config, message), _entry, lambda: choose_node_image(config)
    )
    if not hasattr(config, "workerinput"):
        config.stash[_run_id_key] = secrets.token_hex(3)


_run_id_key = pytest.StashKey[str]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker of this run gets the controller's run id (one cluster name)."""
    node.workerinput["kindlab_run_id"] = node.config.stash[_run_id_key]


# -- evidence ----------------------------------------------------------------


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[evidence_key] = Evidence()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    evidence = item.stash.get(evidence_key, None)
    if evidence and report.failed:
        report.sections.append(("kindlab evidence", evidence.render()))
    entry = _entry(item, report)
    if entry is not None:
        # user_properties travel from xdist workers to the controller.
        report.user_properties.append((_REPORT_PROPERTY, entry.to_json()))
    return report


def _entry(item: pytest.Item, report: pytest.TestReport) -> Entry | None:
    marker = item.get_closest_marker("claim")
    if marker is None:
        return None
    if report.when == "call" or (report.when == "setup" and not report.passed):
        finding = item.stash.get(finding_key, None) or Finding(str(marker.args[0]), _mode(item))
        outcome = "not run" if report.skipped else report.outcome
        reason = _reason(report) if outcome != "passed" else ""
        return Entry.from_finding(finding, outcome, item.nodeid, reason)
    return None


def _mode(item: pytest.Item) -> str:
    modes = [m for m in PROXY_MODES if item.get_closest_marker(m)]
    return modes[0] if len(modes) == 1 else "/".join(modes) or "n/a"


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    text = str(getattr(report, "longreprtext", "") or longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    return " ".join(ln[1:].strip() for ln in lines[:6]) or text[-500:]


class _ReportCollector:
    """Gathers the claim entries of a run (from xdist workers too) and writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.entries: list[Entry] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Runs in the xdist controller too, so entries from every worker land here.
        for name, value in report.user_properties:
            if name == _REPORT_PROPERTY and isinstance(value, dict):
                self.entries.append(Entry.from_json(value))

    def pytest_sessionfinish(self) -> None:
        target = self.config.getoption("kindlab_report")
        if hasattr(self.config, "workerinput") or not target or not self.entries:
            return
        meta = {
            "node_image": self.config.getoption("node_image") or "kindlab offline image",
            "args": " ".join(self.config.invocation_params.args),
        }
        paths = write_reports(Path(target), self.entries, meta)
        _say(self.config, f"report written to {paths[0]} and {paths[1]}")


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """The evidence log of the current test: node commands land here, add notes freely."""
    log: Evidence = request.node.stash.setdefault(evidence_key, Evidence())
    return log


# -- clusters ------------------------------------------------------------------


def _say(config: pytest.Config, message: str) -> None:
    """Progress on long steps, shown live even while pytest captures output."""
    sink = config.stash.get(plugin_vm.events_sink_key, None)
    if sink is not None:  # in a guest: the host shows it
        sink.emit("progress", message=message)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or hasattr(config, "workerinput"):
        print(f"kindlab: {message}", file=sys.stderr, flush=True)
        return
    suspend = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    with suspend:
        reporter.ensure_newline()
        reporter.write_line(f"kindlab: {message}")


def _run_id(config: pytest.Config) -> str:
    """The controller's, in every xdist worker too, so that they agree on cluster names."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput["kindlab_run_id"])
    return config.stash[_run_id_key]


def _lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has basetemp/popen-gwN; the parent is shared.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """A missing precondition fails the test with its one-line message, no traceback.

    In a session fixture the failure is remembered: pytest raises it again, as it is,
    for every later test that needs the fixture, without running the fixture again.
    """
    try:
        yield
    except PreconditionError as exc:
        # from None: the causes (raw Docker API errors) are not part of the message.
        raise pytest.fail.Exception(f"kindlab: {exc}", pytrace=False) from None


@pytest.fixture(scope="session")
def kind_binary(pytestconfig: pytest.Config) -> Path:
    """The kind binary: ``--kind-bin``, else PATH, else built with Go and cached."""
    with _one_line_errors():
        return find_kind(
            pytestconfig.getoption("kind_bin"), progress=lambda m: _say(pytestconfig, m)
        )


@pytest.fixture(scope="session")
def node_image(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The node image: ``--node-image``, else kindlab's offline image (built once, cached)."""
    lock = FileLock(str(_lock_dir(tmp_path_factory) / "kindlab-node-image.lock"))
    with lock, _one_line_errors():
        return choose_node_image(pytestconfig)


def choose_node_image(config: pytest.Config) -> str:
    """``--node-image`` if Docker has it, else kindlab's offline image, built or reused.

    Raises :class:`PreconditionError` (one line) when the named image is missing.
    """
    explicit = config.getoption("node_image")
    if explicit:
        require_node_image(str(explicit))
        return str(explicit)
    from kindlab import nodeimage

    version = config.getoption("kubernetes_version") or nodeimage.DEFAULT_KUBERNETES_VERSION
    return nodeimage.build(version, progress=lambda m: _say(config, m))


@pytest.fixture(scope="session")
def cluster_manager(
    pytestconfig: pytest.Config,
    kind_binary: Path,
    node_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterManager]:
    """Owns this session's clusters; deletes them at the end unless ``--keep-clusters``."""
    say = lambda m: _say(pytestconfig, m)  # noqa: E731
    manager = ClusterManager(
        Kind(kind_binary, progress=say),
        image=node_image,
        keep=pytestconfig.getoption("keep_clusters"),
        run_id=_run_id(pytestconfig),
        progress=say,
    )
    # Each process holds its own state files' pids alive, so xdist workers of this
    # run never remove each other's clusters; the lock keeps two removals apart.
    with FileLock(str(_lock_dir(tmp_path_factory) / "kindlab-leftovers.lock")):
        manager.remove_leftovers()
    pytestconfig.stash[plugin_vm.cluster_manager_key] = manager
    try:
        yield manager
    finally:
        # Under xdist the controller deletes the run's clusters once every worker is done.
        if not os.environ.get("PYTEST_XDIST_WORKER"):
            manager.release_all()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under xdist, the controller deletes the clusters the workers shared."""
    config = session.config
    xdist_controller = config.pluginmanager.hasplugin("dsession")
    if not xdist_controller or config.getoption("keep_clusters"):
        return
    run_id = _run_id(config)
    if not any(s.run_id == run_id for s in read_states().values()):
        return
    kind = Kind(find_kind(config.getoption("kind_bin")))
    ClusterManager(kind, image="", run_id=run_id, progress=lambda m: _say(config, m)).release_run()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A check of a proxy mode needs a cluster: `-m "not live"` leaves it out.
    for item in items:
        if any(item.get_closest_marker(mode) for mode in PROXY_MODES):
            item.add_marker(pytest.mark.live)


def _cluster(
    manager: ClusterManager, mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Cluster:
    with FileLock(str(_lock_dir(tmp_path_factory) / f"kindlab-{mode}.lock")):
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


def mode_of(item: pytest.Item) -> str:
    """The proxy mode a test is marked with (exactly one of the mode markers)."""
    modes = [m for m in PROXY_MODES if item.get_closest_marker(m)]
    if len(modes) != 1:
        raise pytest.UsageError(
            f"{item.nodeid}: the `cluster` fixture needs exactly one of the markers "
            f"{', '.join(PROXY_MODES)}; found {modes or 'none'}"
        )
    return modes[0]


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """The cluster of the proxy mode this test is marked with (``@pytest.mark.iptables``…)."""
    mode = mode_of(request.node)
    if mode == "ipvs":
        # Ask before the session fixture so that an unsupported kernel skips without
        # building a node image first. (Where a VM runs them, ipvs items never get here.)
        vm: plugin_vm.IpvsVm = request.config.pluginmanager.getplugin("kindlab-ipvs-vm")
        decision = vm.decision_for()
        if decision.error:
            pytest.fail(f"kindlab: {decision.error}", pytrace=False)
        if decision.skip_reason:
            pytest.skip(decision.skip_reason)
        with _one_line_errors():
            try:
                preflight(mode)  # the node_image fixture checks the image
            except ModeUnsupported as exc:
                pytest.skip(f"ipvs mode cannot run here: {exc}")
    result: Cluster = request.getfixturevalue(f"{mode}_cluster")
    return result


@pytest.fixture
def finding(request: pytest.FixtureRequest, cluster: Cluster, evidence: Evidence) -> Finding:
    """The record of this claim check: set ``expected``/``observed``, add walks.

    Needs ``@pytest.mark.claim("<id>")``; the report is built from it.
    """
    marker = request.node.get_closest_marker("claim")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the finding fixture needs a claim marker")
    versions = request.config.stash.setdefault(_versions_key, {})
    if cluster.name not in versions:
        versions[cluster.name] = cluster.kubernetes_version()
    record = Finding(
        str(marker.args[0]),
        cluster.mode,
        kubernetes_version=versions[cluster.name],
        evidence=evidence,
    )
    request.node.stash[finding_key] = record
    return record


_versions_key = pytest.StashKey[dict[str, str]]()


@pytest.fixture
def node(cluster: Cluster, evidence: Evidence) -> Node:
    """The cluster's control-plane node; every command run in it is recorded as evidence."""
    return cluster.node(recorder=evidence.record)


_samples_key = pytest.StashKey[dict[str, Samples]]()


@pytest.fixture
def samples(cluster: Cluster, pytestconfig: pytest.Config) -> Samples:
    """The sample Services (labs/manifests), deployed once per cluster, endpoints ready."""
    deployed = pytestconfig.stash.setdefault(_samples_key, {})
    if cluster.name not in deployed:
        samples = deploy_samples(cluster.kube, progress=lambda m: _say(pytestconfig, m))
        _say(pytestconfig, "waiting for kube-proxy to program them")
        nodes = [cluster.node(n) for n in cluster.node_names]
        for state in wait_proxy_synced(nodes, since=time.time()):
            _say(pytestconfig, f"kube-proxy synced: {state}")
        deployed[cluster.name] = samples
    return deployed[cluster.name]


def pytest_report_header(config: pytest.Config) -> list[str]:
    image = config.getoption("node_image") or "kindlab offline image (built on first use)"
    keep = "kept for reuse" if config.getoption("keep_clusters") else "deleted at the end"
    return [f"kindlab: node image {image}; clusters {keep}"]
