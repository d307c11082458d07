"""Evidence on failure: each test's log of node commands, attached to a failed report.

Every test gets a fresh :class:`~kindlab.lab.evidence.Evidence` at setup; the
``node`` fixture records into it. A failed report gets it as its "kindlab
evidence" section: each command as a line to paste, and its output.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from kindlab.lab.evidence import Evidence

evidence_key = pytest.StashKey[Evidence]()


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
    return report


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    """The evidence log of the current test: node commands land here, add notes freely."""
    log: Evidence = request.node.stash.setdefault(evidence_key, Evidence())
    return log
