"""The lab report: a row per claim check, gathered from every worker, written at the end.

A test marked ``claim(id)`` records a :class:`~kindlab.lab.report.Finding` through
the ``finding`` fixture. Its outcome (call phase, or a setup that did not pass) and
that finding become an :class:`~kindlab.lab.report.Entry` carried in the test
report's ``user_properties``, which travel from xdist workers (and from the qemu
guest, see :mod:`.vm`) to the process that writes ``--kindlab-report``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from kindlab.drivers.target import LabCluster
from kindlab.lab.evidence import Evidence
from kindlab.lab.report import Entry, Finding, write_reports
from kindlab.pytest_plugin.image import chosen_images
from kindlab.pytest_plugin.markers import modes_of
from kindlab.pytest_plugin.options import (
    existing_kubeconfig,
    item_version,
    run_versions,
    versions_key,
)
from kindlab.pytest_plugin.output import say
from kindlab.pytest_plugin.xdist import is_worker
from kindlab.versions import choose

finding_key = pytest.StashKey[Finding]()
_cluster_versions_key = pytest.StashKey[dict[str, str]]()
#: The name of a report's user property that carries its lab entry (as JSON).
ENTRY_PROPERTY = "kindlab-entry"


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ReportCollector(config), "kindlab-report")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    entry = entry_for(item, report)
    if entry is not None:
        # user_properties travel from xdist workers to the controller.
        report.user_properties.append((ENTRY_PROPERTY, entry.to_json()))
    return report


def entry_for(item: pytest.Item, report: pytest.TestReport) -> Entry | None:
    """The report row of a claim check's phase: its call, or a setup that did not pass."""
    marker = item.get_closest_marker("claim")
    if marker is None:
        return None
    if report.when == "call" or (report.when == "setup" and not report.passed):
        finding = item.stash.get(finding_key, None) or Finding(
            str(marker.args[0]), _mode(item), kubernetes_version=_requested_version(item)
        )
        outcome = "not run" if report.skipped else report.outcome
        reason = _reason(report) if outcome != "passed" else ""
        return Entry.from_finding(finding, outcome, item.nodeid, reason)
    return None


def _requested_version(item: pytest.Item) -> str:
    """The version a check that did not run would have run on ("n/a" when unknown)."""
    config = item.config
    if versions_key not in config.stash or existing_kubeconfig(config):
        return "n/a"
    return item_version(item) or "n/a"


def _mode(item: pytest.Item) -> str:
    modes = modes_of(item)
    return modes[0] if len(modes) == 1 else "/".join(modes) or "n/a"


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    text = str(getattr(report, "longreprtext", "") or longrepr or "")
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    return " ".join(ln[1:].strip() for ln in lines[:6]) or text[-500:]


def version_meta(version: str) -> dict[str, str]:
    """What the report says of one Kubernetes version of the run, from kindlab.versions."""
    choice = choose(version)
    return {
        "version": choice.patch,
        "kind": choice.kind.version,
        "kubeadm_api": choice.kind.kubeadm_api,
        "containerd_recommended": choice.containerd.wants or "no row",
        "runtime": choice.containerd.runtime(),
    }


class ReportCollector:
    """Gathers the claim entries of a run (from xdist workers too) and writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.entries: list[Entry] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Runs in the xdist controller too, so entries from every worker land here.
        for name, value in report.user_properties:
            if name == ENTRY_PROPERTY and isinstance(value, dict):
                self.entries.append(Entry.from_json(value))

    def pytest_sessionfinish(self) -> None:
        target = self.config.getoption("kindlab_report")
        if is_worker(self.config) or not target or not self.entries:
            return
        kubeconfig = existing_kubeconfig(self.config)
        image = (
            chosen_images(self.config)
            or self.config.getoption("node_image")
            or f"chosen by --node-image-source {self.config.getoption('node_image_source')}"
        )
        meta: dict[str, object] = {
            "node_image": f"none (existing cluster, {kubeconfig})" if kubeconfig else image,
            "args": " ".join(self.config.invocation_params.args),
            # an existing cluster's version is its own, not one this run chose
            "versions": [] if kubeconfig else [version_meta(v) for v in run_versions(self.config)],
        }
        paths = write_reports(Path(target), self.entries, meta)
        say(self.config, f"report written to {paths[0]} and {paths[1]}")


@pytest.fixture
def finding(request: pytest.FixtureRequest, cluster: LabCluster, evidence: Evidence) -> Finding:
    """The record of this claim check: set ``expected``/``observed``, add walks.

    Needs ``@pytest.mark.claim("<id>")``; the report is built from it.
    """
    marker = request.node.get_closest_marker("claim")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the finding fixture needs a claim marker")
    versions = request.config.stash.setdefault(_cluster_versions_key, {})
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
