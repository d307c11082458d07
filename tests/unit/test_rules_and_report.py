"""Rules checks and the report, on iptables-save output captured from real iptables."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from kindlab.lab.evidence import Evidence
from kindlab.lab.report import Entry, Finding, render_json, render_markdown
from kindlab.netfilter.render import mermaid
from kindlab.netfilter.rules import (
    even_split,
    hook_jumps,
    icmp_translations,
    probability_matches,
    reject_rules,
    service_rules,
)
from kindlab.netfilter.walker import Packet, walk
from kindlab.parsers.iptables import IptablesDump, parse_iptables_save

FIXTURES = Path(__file__).parent.parent / "fixtures" / "iptables"
WEB = "10.96.45.17"
EMPTY = "10.96.200.10"


@pytest.fixture(scope="module", params=["nft_save.out", "legacy_save.out"])
def dump(request: pytest.FixtureRequest) -> IptablesDump:
    return parse_iptables_save((FIXTURES / request.param).read_text())


def test_both_hooks_jump_to_kube_services(dump: IptablesDump) -> None:
    jumps = hook_jumps(dump.table("nat"))
    assert [len(jumps["PREROUTING"]), len(jumps["OUTPUT"])] == [1, 1]


def test_service_rules_follow_svc_and_sep_chains(dump: IptablesDump) -> None:
    svc = service_rules(dump.table("nat"), WEB)
    assert [(r.protocol, r.dport) for r in svc.entry] == [("tcp", "80")]
    assert svc.svc_chain == "KUBE-SVC-CDGGSHYLG3RE2FKL"
    assert len(svc.masq) == 1 and svc.masq[0].source == "10.244.0.0/16"
    assert [e.to for e in svc.endpoints] == [
        "10.244.0.5:8080",
        "10.244.1.3:8080",
        "10.244.2.4:8080",
    ]
    assert all(
        e.masq and e.masq.source == f"{(e.to or '').split(':')[0]}/32" for e in svc.endpoints
    )
    for endpoint, want in zip(svc.endpoints, even_split(3), strict=True):
        assert probability_matches(endpoint.probability, want)


def test_nothing_translates_icmp_and_an_icmp_dnat_is_found(dump: IptablesDump) -> None:
    nat = dump.table("nat")
    assert icmp_translations(nat, WEB) == []
    hand = parse_iptables_save(
        "*nat\n:OUTPUT ACCEPT [0:0]\n"
        f"-A OUTPUT -d {WEB}/32 -p icmp -j DNAT --to-destination 10.244.0.5\n"
        "-A OUTPUT -d 10.0.0.0/8 -p tcp -j DNAT --to-destination 10.244.0.6:80\n"
        "-A OUTPUT -j DNAT --to-destination 10.244.0.7\nCOMMIT\n"
    ).table("nat")
    assert [r.to_destination for r in icmp_translations(hand, WEB)] == ["10.244.0.5", "10.244.0.7"]


def test_the_no_endpoint_service_has_a_reject_rule(dump: IptablesDump) -> None:
    filt = dump.table("filter")
    found = reject_rules(filt, EMPTY)
    assert [(r.chain, r.comment, r.dport) for r in found] == [
        ("KUBE-SERVICES", "default/empty:http has no endpoints", "80")
    ]
    assert reject_rules(filt, WEB) == []


def test_even_split_and_printed_probabilities() -> None:
    assert even_split(3) == [Fraction(1, 3), Fraction(1, 2), None]
    assert even_split(1) == [None]
    assert probability_matches(0.33333333349, Fraction(1, 3))
    assert not probability_matches(0.5, Fraction(1, 3))
    assert not probability_matches(None, Fraction(1, 2))


def test_report_draws_walks_and_round_trips_json(dump: IptablesDump) -> None:
    nat = dump.table("nat")
    finding = Finding("iptables-probabilities", "iptables", "v1.34.4", evidence=Evidence())
    finding.expected, finding.observed = "1/3 each", "1/3 each"
    finding.walk(
        "tcp", walk(nat, "OUTPUT", Packet(dst=WEB, proto="tcp", dport=80, src="172.18.0.2"))
    )
    finding.walk("icmp", walk(nat, "OUTPUT", Packet(dst=WEB, proto="icmp", src="172.18.0.2")))
    entry = Entry.from_finding(finding, "passed", "labs/test_iptables.py::t")
    assert Entry.from_json(json.loads(json.dumps(entry.to_json()))) == entry
    tcp_chart = entry.walks[0]["mermaid"]
    assert tcp_chart.startswith("flowchart LR")
    assert tcp_chart.count("DNAT to 10.244.") == 3 and "1/3" in tcp_chart
    assert "no translation" in entry.walks[1]["mermaid"]
    skipped = Entry("ipvs-ping", "ipvs", "n/a", "not run", "", "", "labs/x", "kernel lacks IP_VS")
    md = render_markdown([entry, skipped], {"node_image": "kindlab/node:test"})
    assert "**1 passed, 0 failed, 1 not run.**" in md
    assert "```mermaid" in md and "Not run: kernel lacks IP_VS" in md
    assert json.loads(render_json([entry, skipped], {}))["summary"] == {
        "passed": 1,
        "failed": 0,
        "not run": 1,
    }


def test_mermaid_escapes_quotes() -> None:
    nat = parse_iptables_save(
        '*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m comment --comment "a \\"b\\"" -j ACCEPT\nCOMMIT\n'
    ).table("nat")
    chart = mermaid(walk(nat, "OUTPUT", Packet(dst="10.96.0.1", proto="icmp")))
    assert '"' not in chart.replace('["', "").replace('"]', "").replace('|"', "").replace('"|', "")


def test_post_verdicts_come_only_from_checks_that_ran() -> None:
    def entry(claim_id: str, outcome: str, reason: str = "", mode: str = "iptables") -> Entry:
        return Entry(claim_id, mode, "v1.34.4", outcome, "e", "o", "labs/x", reason)

    md = render_markdown(
        [
            entry("iptables-why", "passed"),
            entry("iptables-rules", "failed", "boom"),
            entry("ipvs-ping", "not run", "kernel lacks IP_VS", mode="ipvs"),
        ],
        {},
    )
    post = md.split("## The blog post, claim by claim")[1].split("\n## ")[0]
    rows = {line.split("|")[1].strip(): line for line in post.splitlines() if line.startswith("| ")}
    assert "| iptables: wrong on every version, observed on 1.34 |" in rows["6"]
    assert "| iptables: undetermined on 1.34: the check failed |" in rows["4"]
    assert "| ipvs: not checked here: kernel lacks IP_VS |" in rows["8"]
    assert "| not checked in this run |" in rows["1"]
