"""The report's matrix and the post's verdicts, on synthetic entries (harness logic only)."""

from __future__ import annotations

import json

from kindlab.lab import matrix
from kindlab.lab.expectations import CLAIMS, Version
from kindlab.lab.report import Entry, render_json, render_markdown

REJECTED = "no echo reply: Destination Port Unreachable from the ClusterIP (KUBE-IPVS-FILTER)"


def entry(
    claim_id: str,
    mode: str,
    version: str,
    outcome: str = "passed",
    *,
    expected: str = "e",
    observed: str = "o",
    reason: str = "",
) -> Entry:
    evidence = ({"command": f"ping on {version}", "exit_code": 0, "output": "ok"},)
    return Entry(
        claim_id,
        mode,
        version,
        outcome,
        expected,
        observed,
        f"labs/test_{mode}.py::{claim_id}[{version}]",
        reason,
        evidence,
    )


def ipvs_ping(version: str, outcome: str = "passed") -> Entry:
    answered = Version.parse(version) <= Version(1, 25)
    return entry(
        "ipvs-ping",
        "ipvs",
        version,
        outcome,
        expected="echo reply from the ClusterIP" if answered else REJECTED,
        observed="2 echo replies" if answered else "Destination Port Unreachable from 10.96.0.9",
    )


def test_claim_8_holds_up_to_1_25_and_is_out_of_date_from_1_26_as_observed() -> None:
    entries = [ipvs_ping(v) for v in ("v1.37.2", "v1.25.16", "v1.30.14")]
    (reading,) = [r for r in matrix.post_verdicts(entries) if r.claim.id == "ipvs-ping"]
    assert reading.text() == (
        "ipvs: holds up to 1.25, observed on 1.25; out of date from 1.26, observed on 1.30 and 1.37"
    )


def test_a_pass_on_1_26_alone_never_says_the_post_holds() -> None:
    (reading,) = [
        r for r in matrix.post_verdicts([ipvs_ping("v1.26.15")]) if r.claim.id == "ipvs-ping"
    ]
    assert reading.text() == "ipvs: out of date from 1.26, observed on 1.26"
    (holds,) = [
        r for r in matrix.post_verdicts([ipvs_ping("v1.25.16")]) if r.claim.id == "ipvs-ping"
    ]
    assert holds.text() == "ipvs: holds up to 1.25, observed on 1.25"


def test_entries_of_a_mode_the_claim_is_not_about_give_no_verdict_and_no_cell() -> None:
    stray = entry("ipvs-ping", "iptables", "v1.34.4")  # claim 8 is about ipvs only
    assert matrix.cells([stray]) == []
    assert [r for r in matrix.post_verdicts([stray]) if r.claim.id == "ipvs-ping"] == []
    md = render_markdown([stray], {})
    assert "## Claims by (mode, version)" not in md  # no cell, no matrix
    row = next(ln for ln in md.splitlines() if ln.startswith("| 8 | The ClusterIP"))
    assert row.endswith("| not checked in this run |")


def test_failed_and_not_run_cells_give_no_verdict_and_say_why() -> None:
    entries = [
        ipvs_ping("v1.30.14", "failed"),
        entry("ipvs-ping", "ipvs", "v1.34.4", "not run", reason="kernel lacks IP_VS"),
    ]
    (reading,) = [r for r in matrix.post_verdicts(entries) if r.claim.id == "ipvs-ping"]
    assert reading.groups == ()
    assert reading.text() == "ipvs: undetermined on 1.30: the check failed"
    only_skipped = [entry("ipvs-ping", "ipvs", "v1.34.4", "not run", reason="no IP_VS")]
    (skipped,) = [r for r in matrix.post_verdicts(only_skipped) if r.claim.id == "ipvs-ping"]
    assert skipped.text() == "ipvs: not checked here: no IP_VS"


def test_the_matrix_has_one_cell_per_claim_and_column_and_a_failure_wins() -> None:
    entries = [
        entry("proxy-mode", "iptables", "v1.34.4"),
        entry("proxy-mode", "iptables", "v1.34.4", "failed"),
        entry("proxy-mode", "nftables", "v1.30.14", "not run", reason="gate"),
        entry("iptables-why", "iptables", "v1.25.16"),
    ]
    cols, rows = matrix.matrix(entries)
    assert [str(c) for c in cols] == ["iptables v1.25.16", "iptables v1.34.4", "nftables v1.30.14"]
    assert {str(c): cell.outcome for c, cell in rows["proxy-mode"].items()} == {
        "iptables v1.34.4": "failed",
        "nftables v1.30.14": "not run",
    }
    assert list(rows["iptables-why"]) == [cols[0]]


def test_versions_order_numerically_not_as_text() -> None:
    entries = [ipvs_ping(v) for v in ("v1.9.0", "v1.30.0", "v1.4.0")]
    assert [c.version for c in matrix.columns(entries)] == ["v1.4.0", "v1.9.0", "v1.30.0"]


def test_a_change_between_adjacent_versions_is_reported_with_both_cells() -> None:
    entries = [ipvs_ping(v) for v in ("v1.25.16", "v1.26.15", "v1.30.14")]
    (change,) = matrix.changes(entries)
    assert (change.before.column.version, change.after.column.version) == ("v1.25.16", "v1.26.15")
    assert change.what == "expected behaviour"
    assert change.text().startswith("changed between 1.25 and 1.26 (expected behaviour)")
    assert "'2 echo replies'" in change.text() and "Port Unreachable" in change.text()
    doc = change.to_json()
    assert doc["before"]["evidence"][0]["command"] == "ping on v1.25.16"
    assert doc["after"]["evidence"][0]["command"] == "ping on v1.26.15"


def test_other_addresses_in_the_expectation_are_not_a_change_of_behaviour() -> None:
    # seen live 2026-11-29 (claim 5 on v1.29.15 and v1.34.4): the same expectation, naming
    # each cluster's own pod addresses, was reported as "changed"
    def shares(version: str, pods: str) -> Entry:
        text = f"3 KUBE-SEP rules; DNATs to one of [{pods}]"
        return entry("iptables-probabilities", "iptables", version, expected=text)

    same = [shares("v1.29.15", "'10.244.0.5:8080'"), shares("v1.34.4", "'10.244.0.3:8080'")]
    assert matrix.changes(same) == []
    other = [same[0], entry("iptables-probabilities", "iptables", "v1.34.4", expected="x")]
    assert [c.what for c in matrix.changes(other)] == ["expected behaviour"]


def test_an_outcome_that_flips_is_a_change_and_same_behaviour_is_not() -> None:
    same = [entry("service-range", "iptables", v) for v in ("v1.25.16", "v1.34.4")]
    assert matrix.changes(same) == []
    flipped = [*same, entry("service-range", "iptables", "v1.37.2", "failed")]
    (change,) = matrix.changes(flipped)
    assert change.what == "outcome"
    assert change.before.column.version == "v1.34.4"
    # a version that did not run is skipped over: its neighbours are adjacent
    gap = [*same, entry("service-range", "iptables", "v1.30.14", "not run", reason="x")]
    assert matrix.changes(gap) == []


def test_the_report_renders_the_matrix_verdicts_and_changes_in_markdown_and_json() -> None:
    entries = [
        ipvs_ping("v1.25.16"),
        ipvs_ping("v1.30.14"),
        entry("proxy-mode", "ipvs", "v1.25.16"),
        entry("proxy-mode", "ipvs", "v1.30.14"),
    ]
    md = render_markdown(entries, {})
    assert "| # | claim | ipvs v1.25.16 | ipvs v1.30.14 |" in md
    section = md.split("## Claims by (mode, version)")[1].split("\n## ")[0]
    row8 = next(ln for ln in section.splitlines() if ln.startswith("| 8 |"))
    assert row8.endswith("| ✅ passed | ✅ passed |")
    post8 = next(ln for ln in md.splitlines() if ln.startswith("| 8 | The ClusterIP"))
    assert (
        "ipvs: holds up to 1.25, observed on 1.25; out of date from 1.26, observed on 1.30" in post8
    )
    assert "## What changed between versions" in md
    assert "Evidence, v1.25.16" in md and "Evidence, v1.30.14" in md
    doc = json.loads(render_json(entries, {}))
    assert doc["columns"] == [
        {"mode": "ipvs", "version": "v1.25.16"},
        {"mode": "ipvs", "version": "v1.30.14"},
    ]
    assert {(c["claim"], c["version"], c["outcome"]) for c in doc["matrix"]} == {
        ("proxy-mode", "v1.25.16", "passed"),
        ("proxy-mode", "v1.30.14", "passed"),
        ("ipvs-ping", "v1.25.16", "passed"),
        ("ipvs-ping", "v1.30.14", "passed"),
    }
    (post,) = [p for p in doc["post"] if p["claim"] == "ipvs-ping"]
    assert [(v["verdict"], v["observed_on"]) for v in post["verdicts"]] == [
        ("holds", ["v1.25.16"]),
        ("out of date", ["v1.30.14"]),
    ]
    assert [c["claim"] for c in doc["changes"]] == ["ipvs-ping"]


def test_every_claim_with_a_post_has_a_verdict_on_every_version_of_its_modes() -> None:
    for c in CLAIMS.values():
        for mode in c.modes:
            for minor in range(18, 40):
                found = c.post_verdict(mode, Version(1, minor))
                assert (found is None) == (c.post is None), (c.id, mode, minor)
        assert c.post_verdict("nope", Version(1, 30)) is None


def test_the_report_says_where_ipvs_is_deprecated_and_which_gate_nftables_needed() -> None:
    entries = [
        entry("proxy-mode", "ipvs", "v1.34.4"),
        entry("proxy-mode", "ipvs", "v1.37.2"),
        entry("proxy-mode", "nftables", "v1.29.15"),
        entry("proxy-mode", "nftables", "v1.31.4"),
        entry("proxy-mode", "nftables", "v1.28.15", "not run"),
        entry("proxy-mode", "iptables", "n/a", "not run"),
    ]
    notes = {(n.column.mode, n.column.version): n.text for n in matrix.mode_notes(entries)}
    assert set(notes) == {("ipvs", "v1.37.2"), ("nftables", "v1.29.15"), ("nftables", "v1.28.15")}
    assert notes["ipvs", "v1.37.2"].startswith(
        'deprecated: kube-proxy 1.37 warns "The ipvs proxier has been deprecated and will be '
        "disabled by default in Kubernetes 1.40"
    )
    assert "feature gate NFTablesProxyMode" in notes["nftables", "v1.29.15"]
    assert notes["nftables", "v1.28.15"].startswith("kube-proxy 1.28 has no nftables mode")
    md = render_markdown(entries, {})
    assert "## The modes, per version" in md
    assert "- **ipvs v1.37.2**: deprecated: kube-proxy 1.37 warns" in md
    modes = json.loads(render_json(entries, {}))["modes"]
    assert {"mode": "ipvs", "version": "v1.37.2"}.items() <= modes[0].items()
