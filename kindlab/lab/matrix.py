"""The report's matrix: claims by (mode, version), the post's verdicts, and what changed.

Pure functions over the report's entries (:class:`kindlab.lab.report.Entry`): nothing
here is a fixed string about what kube-proxy does; every verdict comes from a check
that ran, in the mode the claim is about, at the version it ran on.

- :func:`cells`: one outcome per claim, mode and version ("passed", "failed",
  "not run"; a claim's cell is absent where the claim is not about the mode).
- :func:`post_verdicts`: per claim and mode, how the blog post fares on each
  version that ran, grouped by the ranges of :attr:`Claim.post_verdicts`, e.g.
  "ipvs: holds up to 1.25, observed on 1.25; out of date from 1.26, observed on
  1.30 and 1.37".
- :func:`changes`: where one claim's behaviour changed between two adjacent
  versions that ran in one mode (the expectation differs, or the outcome), with
  both cells.
- :func:`mode_notes`: what :mod:`kindlab.versions` says of each (mode, version) that
  ran: a feature gate the mode needed, kube-proxy's deprecation of ipvs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kindlab.constants import PROXY_MODES
from kindlab.lab.expectations import CLAIMS, Claim, PostVerdict
from kindlab.versions import Minor, mode_support

if TYPE_CHECKING:
    from kindlab.lab.report import Entry

NOT_RUN = "not run"


@dataclass(frozen=True, slots=True, order=True)
class Column:
    """One (mode, version) a run had, e.g. ``("ipvs", "v1.25.16")``."""

    mode: str
    version: str  # as the entries say: the server's version, or the requested one

    @property
    def minor(self) -> Minor | None:
        try:
            return Minor.parse(self.version)
        except ValueError:
            return None

    def sort_key(self) -> tuple[str, int, int, str]:
        minor = self.minor
        major, number = (minor.major, minor.minor) if minor else (999, 0)
        return (self.mode, major, number, self.version)

    def __str__(self) -> str:
        return f"{self.mode} {self.version}"


@dataclass(frozen=True, slots=True)
class Cell:
    """The outcome of one claim in one column, with the entries it was made of."""

    claim_id: str
    column: Column
    outcome: str  # "passed", "failed", "not run"
    entries: tuple[Entry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim_id,
            "mode": self.column.mode,
            "version": self.column.version,
            "outcome": self.outcome,
            "tests": [e.nodeid for e in self.entries],
        }


def _merge(outcomes: Iterable[str]) -> str:
    """One cell's outcome from its entries': a failure wins, then a pass."""
    seen = set(outcomes)
    for outcome in ("failed", "passed"):
        if outcome in seen:
            return outcome
    return NOT_RUN


def columns(entries: Iterable[Entry]) -> list[Column]:
    """Every (mode, version) of the run, by mode, then version order."""
    found = {Column(e.mode, e.kubernetes_version) for e in entries}
    return sorted(found, key=Column.sort_key)


def cells(entries: Sequence[Entry]) -> list[Cell]:
    """One cell per claim and column where the claim is about the column's mode."""
    grouped: dict[tuple[str, Column], list[Entry]] = {}
    for e in entries:
        claim = CLAIMS.get(e.claim_id)
        if claim is None or e.mode not in claim.modes:
            continue  # a claim's verdict never comes from a mode it is not about
        grouped.setdefault((e.claim_id, Column(e.mode, e.kubernetes_version)), []).append(e)
    out = [
        Cell(claim_id, column, _merge(e.outcome for e in group), tuple(group))
        for (claim_id, column), group in grouped.items()
    ]
    return sorted(out, key=lambda c: (CLAIMS[c.claim_id].number, c.column.sort_key()))


def matrix(entries: Sequence[Entry]) -> tuple[list[Column], dict[str, dict[Column, Cell]]]:
    """Columns (those with a cell), and per claim id the cells by column (absent: the
    claim is not about that mode)."""
    found = cells(entries)
    cols = sorted({c.column for c in found}, key=Column.sort_key)
    rows: dict[str, dict[Column, Cell]] = {}
    for cell in found:
        rows.setdefault(cell.claim_id, {})[cell.column] = cell
    return cols, rows


# -- the post's verdict per version ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerdictGroup:
    """One range of :attr:`Claim.post_verdicts` and the columns that passed in it."""

    verdict: PostVerdict
    observed_on: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class PostReading:
    """How the post fares for one claim in one mode, on the versions that ran."""

    claim: Claim
    mode: str
    groups: tuple[VerdictGroup, ...]
    failed: tuple[Column, ...]  # the check failed: no verdict from there
    not_run: tuple[tuple[Column, str], ...]  # with the reason

    def text(self) -> str:
        """E.g. "ipvs: holds up to 1.25, observed on 1.25; out of date from 1.26, …"."""
        parts = [
            f"{g.verdict.verdict} {g.verdict.versions}, observed on "
            f"{_join([_short(c.version) for c in g.observed_on])}"
            for g in self.groups
        ]
        if self.failed:
            versions = _join([_short(c.version) for c in self.failed])
            parts.append(f"undetermined on {versions}: the check failed")
        if not parts and self.not_run:
            parts.append(f"not checked here: {self.not_run[0][1]}")
        return f"{self.mode}: " + ("; ".join(parts) or "not checked in this run")

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim.id,
            "mode": self.mode,
            "text": self.text(),
            "verdicts": [
                {
                    "verdict": g.verdict.verdict,
                    "versions": g.verdict.versions,
                    "observed_on": [c.version for c in g.observed_on],
                }
                for g in self.groups
            ],
            "failed_on": [c.version for c in self.failed],
            "not_run": [{"version": c.version, "reason": r} for c, r in self.not_run],
        }


def post_verdicts(entries: Sequence[Entry]) -> list[PostReading]:
    """Per claim the post makes and per mode the claim is about that the run had."""
    cols, rows = matrix(entries)
    out: list[PostReading] = []
    for claim in sorted(CLAIMS.values(), key=lambda c: c.number):
        if claim.post is None:
            continue
        row = rows.get(claim.id, {})
        for mode in claim.modes:
            mine = [row[c] for c in cols if c.mode == mode and c in row]
            if not mine:
                continue
            groups: dict[PostVerdict, list[Column]] = {}
            unranged: list[Column] = []
            for cell in mine:
                if cell.outcome != "passed":
                    continue
                verdict = None
                if cell.column.minor is not None:
                    verdict = claim.post_verdict(mode, cell.column.minor)
                if verdict is None:
                    unranged.append(cell.column)
                else:
                    groups.setdefault(verdict, []).append(cell.column)
            ordered = [
                VerdictGroup(v, tuple(groups[v])) for v in claim.post_verdicts if v in groups
            ]
            if unranged:
                ordered.append(
                    VerdictGroup(PostVerdict("no verdict for this version"), tuple(unranged))
                )
            out.append(
                PostReading(
                    claim,
                    mode,
                    tuple(ordered),
                    tuple(c.column for c in mine if c.outcome == "failed"),
                    tuple((c.column, c.entries[0].reason) for c in mine if c.outcome == NOT_RUN),
                )
            )
    return out


# -- what changed between adjacent versions ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One claim, one mode: the behaviour differs between two adjacent versions that ran."""

    claim_id: str
    mode: str
    before: Cell
    after: Cell
    what: str  # "expected behaviour" and/or "outcome"

    def text(self) -> str:
        b, a = self.before, self.after
        return (
            f"changed between {_short(b.column.version)} and {_short(a.column.version)} "
            f"({self.what}): {_short(b.column.version)} {b.outcome}, observed "
            f"{_observed(b)}; {_short(a.column.version)} {a.outcome}, observed {_observed(a)}"
        )

    def to_json(self) -> dict[str, Any]:
        def side(cell: Cell) -> dict[str, Any]:
            e = cell.entries[0]
            return {
                "version": cell.column.version,
                "outcome": cell.outcome,
                "expected": e.expected,
                "observed": e.observed,
                "test": e.nodeid,
                "evidence": list(e.evidence),
            }

        return {
            "claim": self.claim_id,
            "mode": self.mode,
            "what": self.what,
            "text": self.text(),
            "before": side(self.before),
            "after": side(self.after),
        }


def changes(entries: Sequence[Entry]) -> list[Change]:
    """Adjacent versions that ran, per claim and mode, whose expectation or outcome differ."""
    cols, rows = matrix(entries)
    out: list[Change] = []
    for claim_id, row in rows.items():
        for mode in sorted({c.mode for c in row}):
            ran = [row[c] for c in cols if c.mode == mode and c in row]
            ran = [c for c in ran if c.outcome != NOT_RUN and c.column.minor is not None]
            for before, after in itertools.pairwise(ran):
                what = []
                if _shape(before.entries[0].expected) != _shape(after.entries[0].expected):
                    what.append("expected behaviour")
                if before.outcome != after.outcome:
                    what.append("outcome")
                if what and before.column.minor != after.column.minor:
                    out.append(Change(claim_id, mode, before, after, " and ".join(what)))
    return sorted(out, key=lambda c: (CLAIMS[c.claim_id].number, c.mode))


_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?::\d+)?\b")


def _shape(expected: str) -> str:
    """An expectation's text without the run's addresses: two clusters give their
    Services and pods other IPs, which is not a change of behaviour.

    >>> _shape("DNATs to one of ['10.244.0.5:8080'] for 10.96.0.0/12")
    "DNATs to one of ['ADDR'] for ADDR"
    """
    return _ADDRESS.sub("ADDR", expected)


# -- words ------------------------------------------------------------------------------


def _short(version: str) -> str:
    """``v1.30.14`` -> ``1.30`` for prose; anything else as it is."""
    try:
        return str(Minor.parse(version))
    except ValueError:
        return version


def _join(items: Sequence[str]) -> str:
    unique = list(dict.fromkeys(items))
    if len(unique) <= 1:
        return "".join(unique)
    return ", ".join(unique[:-1]) + " and " + unique[-1]


def _observed(cell: Cell) -> str:
    text = " ".join(cell.entries[0].observed.split())
    return repr(text if len(text) <= 200 else text[:199] + "…")


# -- what each (mode, version) is, upstream -------------------------------------------


@dataclass(frozen=True, slots=True)
class ModeNote:
    """Something upstream says of one (mode, version) of the run."""

    column: Column
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.column.mode, "version": self.column.version, "note": self.text}


def mode_notes(entries: Iterable[Entry]) -> list[ModeNote]:
    """Per column of the run: the feature gate its mode needed, and kube-proxy's own
    deprecation warning (ipvs from 1.35), from :func:`kindlab.versions.mode_support`."""
    out = []
    for column in columns(entries):
        minor = column.minor
        if minor is None or column.mode not in PROXY_MODES:  # "a/b": an entry of two modes
            continue
        support = mode_support(column.mode, minor)
        if not support.available:
            out.append(ModeNote(column, support.reason))
        if support.feature_gate:
            out.append(
                ModeNote(
                    column,
                    f"kube-proxy {minor} has {column.mode} mode only behind the feature gate "
                    f"{support.feature_gate}; kindlab's cluster config turned it on",
                )
            )
        if support.deprecated:
            out.append(
                ModeNote(
                    column,
                    f'deprecated: kube-proxy {minor} warns "{support.deprecated}"',
                )
            )
    return out
