"""One rendering of a walk: text and Mermaid from kindlab.netfilter.render, JSON from WalkResult.

Every caller (``kindlab walk``, ``kindlab explain`` (see test_explain.py), a lab
check's evidence, the report) shows the same thing, and the output holds each step once.
"""

from __future__ import annotations

import argparse
import doctest
import io
import json
import re
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

from kindlab.cli import walk as walk_cli
from kindlab.lab.report import Entry, Finding
from kindlab.netfilter import nft_walker, walker
from kindlab.netfilter import render as walk_render
from kindlab.netfilter.render import describe_outcome, format_share, mermaid, text
from kindlab.netfilter.walker import Packet, WalkResult, walk
from kindlab.parsers.iptables import Table, parse_iptables_save

DUMP = Path(__file__).resolve().parents[1] / "fixtures" / "iptables" / "nft_save_counters.out"
CLUSTER_IP = "10.96.45.17"
ENDPOINTS = ["10.244.0.5:8080", "10.244.1.3:8080", "10.244.2.4:8080"]
SVC = "KUBE-SVC-CDGGSHYLG3RE2FKL"


@pytest.fixture(scope="module")
def nat() -> Table:
    return parse_iptables_save(DUMP.read_text()).table("nat")


@pytest.fixture(scope="module")
def tcp(nat: Table) -> WalkResult:
    return walk(nat, "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80))


@pytest.mark.parametrize("module", [walker, nft_walker, walk_render], ids=lambda m: m.__name__)
def test_module_examples_hold(module: ModuleType) -> None:
    """The examples in the docstrings are run, so they cannot drift from the code."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples to run"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_format_share() -> None:
    assert format_share(Fraction(1, 3)) == "1/3 (33.33%)"
    assert format_share(Fraction(1)) == "1 (100%)"
    assert format_share(Fraction(1, 2)) == "1/2 (50%)"
    assert format_share(Fraction(1, 1003)) == "1/1003 (0.1%)"


def test_describe_outcome_says_how_the_walk_ended(nat: Table, tcp: WalkResult) -> None:
    icmp = walk(nat, "OUTPUT", Packet(dst=CLUSTER_IP, proto="icmp"))
    assert describe_outcome(tcp.outcomes[0]) == "DNAT to 10.244.0.5:8080, share 1/3 (33.33%)"
    assert describe_outcome(icmp.outcomes[0]) == "no translation (policy ACCEPT), share 1 (100%)"
    hand = parse_iptables_save("*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j REJECT\nCOMMIT\n")
    rejected = walk(hand.table("nat"), "OUTPUT", Packet(dst=CLUSTER_IP))
    # iptables' REJECT answers icmp-port-unreachable unless told otherwise.
    assert describe_outcome(rejected.outcomes[0]) == (
        "REJECT with icmp-port-unreachable, no translation, share 1 (100%)"
    )
    hand = parse_iptables_save(
        "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j REJECT --reject-with icmp-host-prohibited\n"
        "COMMIT\n"
    )
    prohibited = walk(hand.table("filter"), "OUTPUT", Packet(dst=CLUSTER_IP)).outcomes[0]
    assert prohibited.reject_with == "icmp-host-prohibited"


def test_text_shows_each_step_once_and_side_branches_before_the_walk_goes_on(
    tcp: WalkResult,
) -> None:
    out = text(tcp)
    lines = out.splitlines()
    # Four rules of the Service chain: the hairpin mark, then each endpoint's.
    headers = [re.match(r"[| ]*\d+\. (\S+) \[", line) for line in lines]
    svc_steps = [h for h in headers if h and h[1] == SVC]
    assert len(svc_steps) == 1 + 2 + 2 + 1  # random rules: taken and not taken, once each
    endings = [line for line in lines if "=> (" in line]
    assert [e.startswith("|") for e in endings] == [True, True, False]
    assert [e.split("=> ")[1] for e in endings] == [
        f"({n}) DNAT to {ep}, share 1/3 (33.33%)" for n, ep in enumerate(ENDPOINTS, start=1)
    ]
    assert lines[-1].startswith("  - line ")  # notes come last


def test_verbose_text_also_shows_the_rules_that_missed(nat: Table) -> None:
    icmp = walk(nat, "OUTPUT", Packet(dst=CLUSTER_IP, proto="icmp"), local_addresses=["10.0.0.1"])
    plain, verbose = text(icmp), text(icmp, verbose=True)
    assert "no match" not in plain
    assert "no match: protocol icmp is not tcp -> skip" in verbose
    assert "Result: not translated (ACCEPT)" in plain and "Result: not translated" in verbose


def test_undetermined_ways_show_their_assumptions(nat: Table) -> None:
    nodeport = walk(nat, "OUTPUT", Packet(dst="172.18.0.2", proto="tcp", dport=30080))
    out = text(nodeport)
    assert out.count("assuming line ") == len(nodeport.outcomes)
    assert "depends on undetermined rules (see assumptions)" in out


def test_mermaid_draws_each_chain_once_and_each_ending(tcp: WalkResult) -> None:
    chart = mermaid(tcp)
    assert chart.startswith("flowchart LR\n")
    labels = [line.split('["', 1)[1] for line in chart.splitlines() if '["' in line]
    assert labels.count(f'{SVC}"]') == 1
    assert labels.count('nat OUTPUT"]') == 1
    assert sum(label.startswith("DNAT to 10.244.") for label in labels) == 3
    assert '-->|"1/3 (33.33%)"|' in chart and '-->|"1/2 (50%)"|' in chart


def test_json_lists_each_step_once_and_outcomes_point_at_their_last(tcp: WalkResult) -> None:
    doc = json.loads(json.dumps(tcp.to_json()))
    steps = {s["id"]: s for s in doc["steps"]}
    assert len(steps) == len(doc["steps"]) == len(tcp.tree())

    def path(last: int) -> list[str]:
        out: list[str] = []
        at: int | None = last
        while at is not None:
            out.append(f"{steps[at]['chain']} {steps[at]['matched']}")
            at = steps[at]["after"]
        return out[::-1]

    for outcome, want in zip(doc["outcomes"], tcp.outcomes, strict=True):
        assert path(outcome["last"]) == [f"{s.chain} {s.matched}" for s in want.path]
    assert path(doc["outcomes"][2]["last"])[3:6] == [
        f"{SVC} random: not taken",
        f"{SVC} random: not taken",
        f"{SVC} match",
    ]
    assert [s["chain"] for s in doc["path"]] == [s.chain for s in tcp.path]


def test_kindlab_walk_prints_the_one_rendering(tcp: WalkResult) -> None:
    parser = argparse.ArgumentParser(prog="kindlab")
    walk_cli.register_cli(parser.add_subparsers(required=True))
    args = parser.parse_args(
        ["walk", str(DUMP), "--proto", "tcp", "--dst", CLUSTER_IP, "--dport", "80"]
    )
    out = io.StringIO()
    assert walk_cli.run(args, stdout=out) == 0
    assert out.getvalue() == text(tcp)
    args.json = True
    out = io.StringIO()
    assert walk_cli.run(args, stdout=out) == 0
    assert json.loads(out.getvalue()) == json.loads(json.dumps(tcp.to_json()))


def test_the_report_records_the_one_rendering(tcp: WalkResult) -> None:
    finding = Finding("iptables-probabilities", "iptables")
    finding.walk("tcp", tcp)
    (note,) = finding.evidence.to_json()
    assert note == {"note": "walk: tcp", "text": text(tcp)}
    entry = Entry.from_finding(finding, "passed", "labs/x")
    assert entry.walks == ({"label": "tcp", "mermaid": mermaid(tcp), "walk": tcp.to_json()},)
