"""The lab report: per claim, mode and Kubernetes version, what was expected and seen.

A :class:`Finding` is what one lab check records while it runs (expected,
observed, walks, evidence); :class:`Entry` is its outcome, plain data that
crosses pytest-xdist's wire as JSON. :func:`render_markdown` and
:func:`render_json` turn entries into the report; the Markdown reads on its
own, with the walker's paths drawn as Mermaid flowcharts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kindlab import __version__
from kindlab.lab import matrix
from kindlab.lab.evidence import Evidence, trim_lines
from kindlab.lab.expectations import CLAIMS, claim

# mermaid is re-exported: tests/unit/test_rules_and_report.py imports it from here.
from kindlab.netfilter.render import mermaid as mermaid
from kindlab.netfilter.render import text
from kindlab.netfilter.walker import WalkResult

OUTCOMES = ("passed", "failed", "not run")


@dataclass
class Finding:
    """What one lab check expected and observed; filled in by the test as it goes."""

    claim_id: str
    mode: str
    kubernetes_version: str = "n/a"
    expected: str = ""
    observed: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    walks: list[tuple[str, WalkResult]] = field(default_factory=list)

    def explain(self, what: str) -> str:
        """An assertion message: the claim, what was expected, what was seen."""
        return (
            f"{what}\n  expected: {self.expected or 'n/a'}\n  observed: {self.observed or 'n/a'}"
            "\n  (the commands and their output are under 'kindlab evidence' below)"
        )

    def walk(self, label: str, result: WalkResult) -> WalkResult:
        """Record a walker result (drawn in the report) and return it."""
        self.walks.append((label, result))
        self.evidence.note(f"walk: {label}", text(result))
        return result


@dataclass(frozen=True)
class Entry:
    """One row of the report."""

    claim_id: str
    mode: str
    kubernetes_version: str
    outcome: str
    expected: str
    observed: str
    nodeid: str
    reason: str = ""
    evidence: tuple[dict[str, Any], ...] = ()
    walks: tuple[dict[str, Any], ...] = ()
    #: Where the check ran, when not on the host's Docker ("qemu guest, kernel …, tcg").
    ran_in: str = ""

    @classmethod
    def from_finding(cls, finding: Finding, outcome: str, nodeid: str, reason: str = "") -> Entry:
        return cls(
            claim_id=finding.claim_id,
            mode=finding.mode,
            kubernetes_version=finding.kubernetes_version,
            outcome=outcome,
            expected=finding.expected,
            observed=finding.observed,
            nodeid=nodeid,
            reason=reason,
            evidence=tuple(finding.evidence.to_json(trim=200)),
            walks=tuple(
                {"label": label, "mermaid": mermaid(result), "walk": result.to_json()}
                for label, result in finding.walks
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            **{
                **data,
                "evidence": tuple(data.get("evidence", ())),
                "walks": tuple(data.get("walks", ())),
            }
        )


# -- rendering -----------------------------------------------------------------


def _sort_key(entry: Entry) -> tuple[int, str, str]:
    return (
        CLAIMS[entry.claim_id].number if entry.claim_id in CLAIMS else 99,
        entry.mode,
        entry.nodeid,
    )


def render_json(entries: Iterable[Entry], meta: dict[str, Any]) -> str:
    ordered = sorted(entries, key=_sort_key)
    counts = {o: sum(1 for e in ordered if e.outcome == o) for o in OUTCOMES}
    cols, _ = matrix.matrix(ordered)
    doc = {
        "meta": meta,
        "summary": counts,
        "columns": [{"mode": c.mode, "version": c.version} for c in cols],
        "matrix": [c.to_json() for c in matrix.cells(ordered)],
        "post": [r.to_json() for r in matrix.post_verdicts(ordered)],
        "changes": [c.to_json() for c in matrix.changes(ordered)],
        "modes": [n.to_json() for n in matrix.mode_notes(ordered)],
        "entries": [e.to_json() for e in ordered],
    }
    return json.dumps(doc, indent=2, sort_keys=False, default=str)


def render_markdown(entries: Iterable[Entry], meta: dict[str, Any]) -> str:
    ordered = sorted(entries, key=_sort_key)
    counts = {o: sum(1 for e in ordered if e.outcome == o) for o in OUTCOMES}
    out = [
        "# kindlab report: what kube-proxy does to Service traffic",
        "",
        f"Generated {meta.get('generated', '')} by kindlab {meta.get('kindlab', __version__)}."
        f" Node image: `{meta.get('node_image', 'n/a')}`.",
        "",
        f"**{counts['passed']} passed, {counts['failed']} failed, {counts['not run']} not run.**",
        "",
        *_versions_section(meta),
        "| # | claim | mode | Kubernetes | result | observed |",
        "|---|---|---|---|---|---|",
    ]
    for e in ordered:
        c = claim(e.claim_id)
        seen = e.observed if e.outcome != "not run" else f"not run: {e.reason}"
        mode = f"{e.mode} ({e.ran_in})" if e.ran_in else e.mode
        out.append(
            f"| {c.number} | {c.title} | {mode} | {e.kubernetes_version} | "
            f"{_badge(e.outcome)} | {_cell(seen)} |"
        )
    out += ["", *_matrix_section(ordered), *_modes_section(ordered), *_post_section(ordered)]
    out += _changes_section(ordered)
    out += ["## Claims", ""]
    by_claim: dict[str, list[Entry]] = {}
    for e in ordered:
        by_claim.setdefault(e.claim_id, []).append(e)
    for claim_id, group in by_claim.items():
        c = claim(claim_id)
        out += [f"### {c.number}. {c.title}", ""]
        if c.post:
            out.append(f"- **The post says:** {c.post}")
        out += [f"- **Upstream says:** {c.verdict}", ""]
        for e in group:
            out += [
                f"#### {e.mode} mode, Kubernetes {e.kubernetes_version}: {_badge(e.outcome)}",
                "",
            ]
            if e.outcome == "not run":
                out += [f"Not run: {e.reason}", ""]
                continue
            out += [f"- Expected: {e.expected or 'n/a'}", f"- Observed: {e.observed or 'n/a'}"]
            if e.outcome == "failed" and e.reason:
                out.append(f"- Failure: {_cell(e.reason)}")
            out.append(f"- Test: `{e.nodeid}`")
            out.append(f"- Ran in: {e.ran_in or 'kind on the host Docker engine'}")
            out.append("")
            for walk in e.walks:
                out += [f"Walk: {walk['label']}", "", "```mermaid", walk["mermaid"], "```", ""]
            if e.evidence:
                out += ["<details><summary>Evidence</summary>", "", "```"]
                out.append(_evidence_text(e.evidence))
                out += ["```", "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


def _versions_section(meta: dict[str, Any]) -> list[str]:
    """The run's Kubernetes versions: kind, kubeadm API, containerd's recommendation."""
    versions = meta.get("versions") or []
    if not versions:
        return []
    out = [
        "| Kubernetes | kind | kubeadm config | containerd recommends | the node runs |",
        "|---|---|---|---|---|",
    ]
    for v in versions:
        out.append(
            f"| {v['version']} | {v['kind']} | {v['kubeadm_api']} | "
            f"{v['containerd_recommended']} | {_cell(v['runtime'], 200)} |"
        )
    return [*out, ""]


def _matrix_section(entries: Sequence[Entry]) -> list[str]:
    """Claims by (mode, version): passed, failed, not run; blank where a claim is not
    about the mode."""
    cols, rows = matrix.matrix(entries)
    if not cols:
        return []
    out = [
        "## Claims by (mode, version)",
        "",
        "| # | claim | " + " | ".join(str(c) for c in cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for c in sorted(CLAIMS.values(), key=lambda c: c.number):
        row = rows.get(c.id)
        if not row:
            continue
        marks = [_badge(row[col].outcome) if col in row else "" for col in cols]
        out.append(f"| {c.number} | {_cell(c.title, 80)} | " + " | ".join(marks) + " |")
    return [*out, ""]


def _modes_section(entries: Sequence[Entry]) -> list[str]:
    """What upstream says of each (mode, version) that ran: gates, deprecations."""
    notes = matrix.mode_notes(entries)
    if not notes:
        return []
    out = ["## The modes, per version", ""]
    out += [f"- **{n.column}**: {_cell(n.text, 300)}" for n in notes]
    return [*out, ""]


def _post_section(entries: Sequence[Entry]) -> list[str]:
    """How the blog post fares, claim by claim and mode by mode, judged only by checks
    that ran here, in the mode the claim is about, at the version they ran on."""
    out = [
        "## The blog post, claim by claim",
        "",
        "| # | the post says | verdict per version |",
        "|---|---|---|",
    ]
    readings: dict[str, list[matrix.PostReading]] = {}
    for reading in matrix.post_verdicts(entries):
        readings.setdefault(reading.claim.id, []).append(reading)
    for c in sorted(CLAIMS.values(), key=lambda c: c.number):
        if c.post is None:
            continue
        found = readings.get(c.id)
        verdict = "; ".join(r.text() for r in found) if found else "not checked in this run"
        out.append(f"| {c.number} | {_cell(c.post)} | {_cell(verdict, 400)} |")
    return [*out, ""]


def _changes_section(entries: Sequence[Entry]) -> list[str]:
    """Where a claim's behaviour changed between two adjacent versions that ran."""
    found = matrix.changes(entries)
    if not found:
        return []
    out = ["## What changed between versions", ""]
    for change in found:
        c = claim(change.claim_id)
        out += [f"### {c.number}. {c.title}, {change.mode} mode", "", change.text(), ""]
        for side in (change.before, change.after):
            e = side.entries[0]
            out += [
                f"- **{side.column.version}** ({_badge(side.outcome)}): expected "
                f"{_cell(e.expected or 'n/a', 300)}; observed {_cell(e.observed or 'n/a', 300)}; "
                f"test `{e.nodeid}`",
            ]
        out.append("")
        for side in (change.before, change.after):
            e = side.entries[0]
            if e.evidence:
                out += [
                    f"<details><summary>Evidence, {side.column.version}</summary>",
                    "",
                    "```",
                    _evidence_text(e.evidence),
                    "```",
                    "",
                    "</details>",
                    "",
                ]
    return out


def _evidence_text(items: Sequence[dict[str, Any]], limit: int = 30) -> str:
    blocks = []
    for item in items:
        if "note" in item:
            blocks.append(f"# {item['note']}\n{item['text'].rstrip()}")
        else:
            status = "timed out" if item.get("timed_out") else f"exit {item['exit_code']}"
            body = trim_lines(item.get("output", "").rstrip(), limit) or "(no output)"
            blocks.append(f"$ {item['command']}   # {status}\n{body}")
    return "\n\n".join(blocks).replace("```", "'''")


def _badge(outcome: str) -> str:
    return {"passed": "✅ passed", "failed": "❌ failed", "not run": "⏭️ not run"}.get(
        outcome, outcome
    )


def _cell(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_reports(path_prefix: Path, entries: Sequence[Entry], meta: dict[str, Any]) -> list[Path]:
    """Write PREFIX.md and PREFIX.json; return both paths."""
    meta = {"generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "kindlab": __version__, **meta}
    path_prefix.parent.mkdir(parents=True, exist_ok=True)
    md = path_prefix.with_suffix(".md")
    js = path_prefix.with_suffix(".json")
    md.write_text(render_markdown(entries, meta))
    js.write_text(render_json(entries, meta))
    return [md, js]
