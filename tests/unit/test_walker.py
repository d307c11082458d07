"""The netfilter walker, on the real captured nat table and on small tables."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from kindlab.netfilter.walker import Packet, WalkBudgetError, WalkError, WalkResult, walk
from kindlab.parsers.iptables import Rule, Table, parse_iptables_save

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "iptables"
DUMPS = sorted(p.name for p in FIXTURES.glob("*.out"))
CLUSTER_IP = "10.96.45.17"
ENDPOINTS = ["10.244.0.5:8080", "10.244.1.3:8080", "10.244.2.4:8080"]
NODE_IP = "172.18.0.2"
SVC = "KUBE-SVC-CDGGSHYLG3RE2FKL"


def real_nat(name: str = "nft_save_nat.out") -> Table:
    return parse_iptables_save((FIXTURES / name).read_text()).table("nat")


def nat(*lines: str, chains: str = "", policy: str = "ACCEPT") -> Table:
    """A nat table with OUTPUT/PREROUTING and the given user chains and rules."""
    decl = [f":OUTPUT {policy} [0:0]", f":PREROUTING {policy} [0:0]"]
    decl += [f":{c} - [0:0]" for c in chains.split()]
    return parse_iptables_save("\n".join(["*nat", *decl, *lines, "COMMIT", ""])).table("nat")


def chains_of(result: WalkResult) -> list[str]:
    return [s.chain for s in result.path]


def shares(result: WalkResult) -> dict[str | None, Fraction]:
    return {o.to: o.share for o in result.outcomes}


# --- the claims of the lab, on real iptables-save output ----------------------


@pytest.mark.parametrize("name", DUMPS)
def test_tcp_to_cluster_ip_is_dnated_to_each_endpoint_one_third(name: str) -> None:
    result = walk(real_nat(name), "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80))
    assert result.translated
    assert result.determined
    assert shares(result) == {ep: Fraction(1, 3) for ep in ENDPOINTS}
    assert [o.probability for o in result.outcomes] == pytest.approx([1 / 3] * 3)
    assert sum(o.share for o in result.outcomes) == 1
    assert chains_of(result)[:3] == ["OUTPUT", "KUBE-SERVICES", SVC]
    for outcome, ep in zip(result.outcomes, ENDPOINTS, strict=True):
        last = outcome.path[-1]
        assert isinstance(last.rule, Rule) and last.rule.to_destination == ep
        assert last.action == f"DNAT to {ep}"


@pytest.mark.parametrize("name", DUMPS)
def test_icmp_to_cluster_ip_is_not_translated(name: str) -> None:
    result = walk(real_nat(name), "OUTPUT", Packet(dst=CLUSTER_IP, proto="icmp"))
    assert not result.translated
    assert result.translations == ()
    assert [o.verdict for o in result.outcomes] == ["ACCEPT"]
    assert chains_of(result) == ["OUTPUT", "KUBE-SERVICES", "KUBE-SERVICES", "OUTPUT"]
    assert [s.matched for s in result.path] == ["match", "undetermined", "end of chain", "policy"]
    # Whether 10.96.45.17 is local was not known, but it could not change the verdict.
    assert result.determined
    assert any("the verdict is the same either way" in n for n in result.notes)


def test_icmp_with_known_local_addresses_is_fully_determined() -> None:
    result = walk(
        real_nat(),
        "OUTPUT",
        Packet(dst=CLUSTER_IP, proto="icmp"),
        local_addresses=[NODE_IP, "127.0.0.1"],
    )
    assert [s.matched for s in result.path] == ["match", "end of chain", "policy"]
    assert result.notes == ()
    trace = result.outcomes[0].trace
    why_not = [s.why for s in trace if s.matched == "no match"]
    # Each miss says why: the web Service's rule matches the address, not the protocol.
    assert why_not == [
        "destination 10.96.45.17 not in 10.96.0.1/32",
        "destination 10.96.45.17 not in 10.96.0.10/32",
        "protocol icmp is not tcp",
        "destination 10.96.45.17 is not LOCAL",
    ]


def test_udp_to_kube_dns_has_one_endpoint() -> None:
    result = walk(real_nat(), "OUTPUT", Packet(dst="10.96.0.10", proto="udp", dport=53))
    assert shares(result) == {"10.244.0.2:53": Fraction(1)}


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(Packet(dst=CLUSTER_IP, proto="tcp", dport=8080), id="wrong-port"),
        pytest.param(Packet(dst=CLUSTER_IP, proto="udp", dport=80), id="wrong-protocol"),
        pytest.param(Packet(dst="10.96.200.10", proto="tcp", dport=80), id="no-endpoints"),
    ],
)
def test_packets_no_service_rule_matches_are_not_translated(packet: Packet) -> None:
    result = walk(real_nat(), "OUTPUT", packet, local_addresses=[NODE_IP])
    assert not result.translated
    assert result.determined
    # OUTPUT's jump, the end of KUBE-SERVICES, OUTPUT's policy: no rule there matched.
    assert chains_of(result) == ["OUTPUT", "KUBE-SERVICES", "OUTPUT"]
    assert [s.matched for s in result.path] == ["match", "end of chain", "policy"]


@pytest.mark.parametrize(
    ("src", "masqueraded"),
    [("10.244.1.9", False), ("172.18.0.5", True)],
    ids=["from-a-pod", "from-outside-the-pod-cidr"],
)
def test_hairpin_rule_marks_only_traffic_from_outside_the_pod_cidr(
    src: str, masqueraded: bool
) -> None:
    packet = Packet(dst=CLUSTER_IP, proto="tcp", dport=80, src=src)
    result = walk(real_nat(), "PREROUTING", packet)
    assert result.determined and result.notes == ()
    chains = chains_of(result)
    assert ("KUBE-MARK-MASQ" in chains) is masqueraded
    assert shares(result) == {ep: Fraction(1, 3) for ep in ENDPOINTS}


def test_unknown_source_leaves_masquerade_undetermined_but_not_the_verdict() -> None:
    result = walk(real_nat(), "OUTPUT", Packet(dst=CLUSTER_IP, proto="tcp", dport=80))
    hairpin = result.path[2]
    assert hairpin.matched == "undetermined" and hairpin.action == "jump KUBE-MARK-MASQ?"
    assert any("KUBE-MARK-MASQ cannot change the verdict" in n for n in result.notes)


def test_nodeport_with_local_addresses_goes_through_kube_ext() -> None:
    packet = Packet(dst=NODE_IP, proto="tcp", dport=30080)
    result = walk(real_nat(), "PREROUTING", packet, local_addresses=[NODE_IP])
    assert result.determined
    assert shares(result) == {ep: Fraction(1, 3) for ep in ENDPOINTS}
    assert chains_of(result)[:4] == [
        "PREROUTING",
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-EXT-CDGGSHYLG3RE2FKL",
    ]
    assert "KUBE-MARK-MASQ" in chains_of(result)  # external traffic is always masqueraded


def test_nodeport_without_local_addresses_depends_on_addrtype() -> None:
    result = walk(real_nat(), "OUTPUT", Packet(dst=NODE_IP, proto="tcp", dport=30080))
    assert not result.determined
    assert result.translated
    translated = result.translations
    assert {o.to for o in translated} == set(ENDPOINTS)
    assert all("matched" in o.assumptions[0] for o in translated)
    (untranslated,) = [o for o in result.outcomes if not o.translated]
    assert untranslated.verdict == "ACCEPT"
    assert "did not match" in untranslated.assumptions[0]
    assert "LOCAL" in untranslated.assumptions[0]


def test_loopback_is_local_without_being_told() -> None:
    result = walk(real_nat(), "OUTPUT", Packet(dst="127.0.0.1", proto="tcp", dport=30080))
    assert result.determined
    assert shares(result) == {ep: Fraction(1, 3) for ep in ENDPOINTS}


# --- small tables: each feature on its own ------------------------------------


@pytest.mark.parametrize(
    ("rule", "packet", "matches"),
    [
        (
            "-A OUTPUT ! -d 10.96.0.0/12 -j DNAT --to-destination 1.1.1.1:1",
            Packet("10.97.0.1"),
            False,
        ),
        (
            "-A OUTPUT ! -d 10.96.0.0/12 -j DNAT --to-destination 1.1.1.1:1",
            Packet("10.112.0.1"),
            True,
        ),
        ("-A OUTPUT ! -p tcp -j DNAT --to-destination 1.1.1.1:1", Packet("1.2.3.4", "tcp"), False),
        ("-A OUTPUT ! -p tcp -j DNAT --to-destination 1.1.1.1:1", Packet("1.2.3.4", "udp"), True),
        ("-A OUTPUT -p all -j DNAT --to-destination 1.1.1.1:1", Packet("1.2.3.4", "icmp"), True),
        ("-A OUTPUT -p 6 -j DNAT --to-destination 1.1.1.1:1", Packet("1.2.3.4", "tcp"), True),
        (
            "-A OUTPUT -p tcp -m tcp ! --dport 22 -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4", "tcp", 22),
            False,
        ),
        (
            "-A OUTPUT -p tcp -m tcp ! --dport 22 -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4", "tcp", 80),
            True,
        ),
        (
            "-A OUTPUT -p tcp -m tcp --dport 30000:32767 -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4", "tcp", 30080),
            True,
        ),
        (
            "-A OUTPUT -p tcp -m tcp --dport 30000:32767 -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4", "tcp", 8080),
            False,
        ),
        (
            "-A OUTPUT -p udp -m multiport --dports 53,5353,8000:8080 -j DNAT "
            "--to-destination 1.1.1.1:1",
            Packet("1.2.3.4", "udp", 8053),
            True,
        ),
        (
            "-A OUTPUT -p udp -m multiport --dports 53,5353,8000:8080 -j DNAT "
            "--to-destination 1.1.1.1:1",
            Packet("1.2.3.4", "udp", 54),
            False,
        ),
        (
            "-A OUTPUT -m conntrack --ctstate NEW -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4"),
            True,
        ),
        (
            "-A OUTPUT -m state --state RELATED,ESTABLISHED -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4"),
            False,
        ),
        (
            "-A OUTPUT ! -o lo -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4", out_interface="eth0"),
            True,
        ),
        (
            "-A OUTPUT -o veth+ -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4", out_interface="veth1234"),
            True,
        ),
        ("-A OUTPUT -f -j DNAT --to-destination 1.1.1.1:1", Packet("1.2.3.4"), False),
        (
            "-A OUTPUT -m addrtype ! --dst-type LOCAL -j DNAT --to-destination 1.1.1.1:1",
            Packet("127.0.0.1"),
            False,
        ),
        (
            "-A OUTPUT -m addrtype --src-type LOCAL -j DNAT --to-destination 1.1.1.1:1",
            Packet("1.2.3.4"),
            True,
        ),
    ],
)
def test_conditions_and_negations(rule: str, packet: Packet, matches: bool) -> None:
    result = walk(nat(rule), "OUTPUT", packet)
    assert result.determined
    assert result.translated is matches, result.outcomes[0].trace


def test_dnat_without_port_keeps_the_destination_port() -> None:
    table = nat("-A OUTPUT -p tcp -j DNAT --to-destination 10.244.0.5")
    result = walk(table, "OUTPUT", Packet("10.96.0.1", "tcp", 443))
    assert [o.to for o in result.outcomes] == ["10.244.0.5:443"]


def test_return_goes_back_to_the_caller() -> None:
    table = nat(
        "-A OUTPUT -j KUBE-A",
        "-A OUTPUT -j DNAT --to-destination 10.0.0.2:80",
        "-A KUBE-A -p tcp -j RETURN",
        "-A KUBE-A -j DNAT --to-destination 10.0.0.1:80",
        chains="KUBE-A",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert [o.to for o in result.outcomes] == ["10.0.0.2:80"]
    assert chains_of(result) == ["OUTPUT", "KUBE-A", "OUTPUT"]
    udp = walk(table, "OUTPUT", Packet("1.2.3.4", "udp", 80))
    assert [o.to for o in udp.outcomes] == ["10.0.0.1:80"]


def test_return_from_the_hook_chain_applies_its_policy() -> None:
    table = nat(
        "-A OUTPUT -j RETURN", "-A OUTPUT -j DNAT --to-destination 10.0.0.1:80", policy="DROP"
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert [o.verdict for o in result.outcomes] == ["DROP"]
    assert result.path[-1].action == "policy DROP"


def test_goto_does_not_come_back_to_the_chain_that_went() -> None:
    table = nat(
        "-A OUTPUT -j KUBE-A",
        "-A OUTPUT -j DNAT --to-destination 10.0.0.3:80",
        "-A KUBE-A -g KUBE-B",
        "-A KUBE-A -j DNAT --to-destination 10.0.0.1:80",
        "-A KUBE-B -p udp -j DNAT --to-destination 10.0.0.2:80",
        chains="KUBE-A KUBE-B",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    # KUBE-B ends without a verdict: back to OUTPUT, KUBE-A's second rule is skipped.
    assert [o.to for o in result.outcomes] == ["10.0.0.3:80"]
    assert chains_of(result) == ["OUTPUT", "KUBE-A", "KUBE-B", "OUTPUT"]
    assert result.path[1].action == "goto KUBE-B"


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(
            ("-A OUTPUT -j KUBE-A", "-A KUBE-A -j KUBE-B", "-A KUBE-B -j KUBE-A"), id="jump"
        ),
        pytest.param(
            ("-A OUTPUT -j KUBE-A", "-A KUBE-A -g KUBE-B", "-A KUBE-B -g KUBE-A"), id="goto"
        ),
        pytest.param(("-A OUTPUT -j KUBE-A", "-A KUBE-A -j KUBE-A"), id="self"),
    ],
)
def test_loops_are_caught(lines: tuple[str, ...]) -> None:
    result = walk(nat(*lines, chains="KUBE-A KUBE-B"), "OUTPUT", Packet("1.2.3.4"))
    assert [o.verdict for o in result.outcomes] == ["LOOP"]
    assert any("loop" in n for n in result.notes)


def test_same_chain_twice_in_sequence_is_not_a_loop() -> None:
    table = nat(
        "-A OUTPUT -j KUBE-MARK-MASQ",
        "-A OUTPUT -j KUBE-MARK-MASQ",
        "-A OUTPUT -j DNAT --to-destination 10.0.0.1:80",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        chains="KUBE-MARK-MASQ",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert [o.to for o in result.outcomes] == ["10.0.0.1:80"]
    assert chains_of(result).count("KUBE-MARK-MASQ") == 4  # MARK and end, twice


def test_mark_that_decides_is_reported_as_undetermined_not_guessed() -> None:
    table = nat(
        "-A OUTPUT -m mark --mark 0x4000/0x4000 -j RETURN",
        "-A OUTPUT -j DNAT --to-destination 10.0.0.1:80",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert not result.determined
    assert sorted((o.verdict, o.share) for o in result.outcomes) == [
        ("ACCEPT", Fraction(1)),
        ("DNAT", Fraction(1)),
    ]
    by_verdict = {o.verdict: o.assumptions for o in result.outcomes}
    assert "matched" in by_verdict["ACCEPT"][0] and "-m mark" in by_verdict["ACCEPT"][0]
    assert "did not match" in by_verdict["DNAT"][0]
    assert any("marks are set at run time" in n for n in result.notes)
    # The two branches differ from the first rule on, so no step is shared.
    assert result.path == ()
    assert all(o.path[0].matched == "undetermined" for o in result.outcomes)


def test_mark_before_a_non_terminating_target_does_not_branch() -> None:
    table = nat(
        "-A OUTPUT -m mark --mark 0x1/0x1 -j MARK --set-xmark 0x4000/0x4000",
        "-A OUTPUT -j DNAT --to-destination 10.0.0.1:80",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert result.determined
    assert [o.to for o in result.outcomes] == ["10.0.0.1:80"]


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [
        (["0.50000000000"], [Fraction(1, 2), Fraction(1, 2)]),
        (["0.33333333349", "0.50000000000"], [Fraction(1, 3)] * 3),
        (["0.25000000000", "0.33333333349", "0.50000000000"], [Fraction(1, 4)] * 4),
        (
            ["0.20000000019", "0.25000000000", "0.33333333349", "0.50000000000"],
            [Fraction(1, 5)] * 5,
        ),
        # Not kube-proxy's 1/k: taken exactly as printed.
        (["0.30000000000"], [Fraction(3, 10), Fraction(7, 10)]),
    ],
)
def test_random_shares_multiply_along_the_path(
    probabilities: list[str], expected: list[Fraction]
) -> None:
    n = len(probabilities) + 1
    lines = [
        f"-A KUBE-SVC-X -m statistic --mode random --probability {p} -j KUBE-SEP-{i}"
        for i, p in enumerate(probabilities)
    ]
    lines.append(f"-A KUBE-SVC-X -j KUBE-SEP-{n - 1}")
    lines += [f"-A KUBE-SEP-{i} -j DNAT --to-destination 10.244.0.{i}:80" for i in range(n)]
    lines.insert(0, "-A OUTPUT -j KUBE-SVC-X")
    chains = "KUBE-SVC-X " + " ".join(f"KUBE-SEP-{i}" for i in range(n))
    result = walk(nat(*lines, chains=chains), "OUTPUT", Packet("10.96.0.1", "tcp", 80))
    assert [o.share for o in result.outcomes] == expected
    assert [o.to for o in result.outcomes] == [f"10.244.0.{i}:80" for i in range(n)]
    assert sum(o.share for o in result.outcomes) == 1


def test_unknown_module_and_nth_statistic_are_undetermined() -> None:
    table = nat(
        "-A OUTPUT -m recent --rcheck --name X -j DNAT --to-destination 10.0.0.1:80",
        "-A OUTPUT -m statistic --mode nth --every 2 --packet 0"
        " -j DNAT --to-destination 10.0.0.2:80",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert not result.determined
    assert sorted(o.to or "-" for o in result.outcomes) == ["-", "10.0.0.1:80", "10.0.0.2:80"]
    assert any("-m recent is not evaluated" in n for n in result.notes)
    assert any("only --mode random" in n for n in result.notes)


def test_unknown_port_is_undetermined() -> None:
    table = nat("-A OUTPUT -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:80")
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp"))
    assert not result.determined
    assert any("dport is not given" in n for n in result.notes)


def test_rules_without_target_and_continuing_targets_go_on() -> None:
    table = nat(
        "-A OUTPUT -d 1.2.3.4/32",
        '-A OUTPUT -j LOG --log-prefix "kindlab: "',
        "-A OUTPUT -j DNAT --to-destination 10.0.0.1:80",
    )
    result = walk(table, "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert [s.action for s in result.path][:2] == [
        "no target: counts and continues",
        "LOG --log-prefix kindlab:",
    ]
    assert [o.to for o in result.outcomes] == ["10.0.0.1:80"]


@pytest.mark.parametrize(
    ("target", "verdict"), [("ACCEPT", "ACCEPT"), ("REDIRECT --to-ports 15001", "REDIRECT")]
)
def test_terminal_targets(target: str, verdict: str) -> None:
    result = walk(nat(f"-A OUTPUT -j {target}"), "OUTPUT", Packet("1.2.3.4", "tcp", 80))
    assert [o.verdict for o in result.outcomes] == [verdict]
    assert result.translated is (verdict == "REDIRECT")


# --- errors -------------------------------------------------------------------


def test_walk_errors() -> None:
    with pytest.raises(WalkError, match="hook must be one of"):
        walk(nat(), "INPUT", Packet("1.2.3.4"))
    filt = parse_iptables_save("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n").table("filter")
    with pytest.raises(WalkError, match="no chain OUTPUT"):
        walk(filt, "OUTPUT", Packet("1.2.3.4"))
    with pytest.raises(WalkError, match="must be IP addresses"):
        walk(nat(), "OUTPUT", Packet("1.2.3.4"), local_addresses=["node"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dst": "10.96.0"}, "dst must be an IP address"),
        ({"dst": "1.2.3.4", "src": "x"}, "src must be an IP address"),
        ({"dst": "1.2.3.4", "dport": 70000}, "dport must be 0..65535"),
        ({"dst": "1.2.3.4", "proto": "TCP"}, "lower-case"),
    ],
)
def test_bad_packets(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(WalkError, match=message):
        Packet(**kwargs)  # type: ignore[arg-type]


# --- the budget ---------------------------------------------------------------

SPLIT = (
    "-A OUTPUT -j KUBE-SVC-X",
    "-A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j DNAT "
    "--to-destination 10.244.0.5:8080",
    "-A KUBE-SVC-X -j DNAT --to-destination 10.244.1.3:8080",
)


def test_the_budget_counts_every_rule_evaluated_on_every_branch() -> None:
    table = nat(*SPLIT, chains="KUBE-SVC-X")
    packet = Packet("10.96.0.10", "tcp", 80)
    # OUTPUT's jump, the random rule, then the passed branch's last rule: 3 steps.
    assert len(walk(table, "OUTPUT", packet, max_steps=3).outcomes) == 2
    with pytest.raises(WalkBudgetError) as caught:
        walk(table, "OUTPUT", packet, max_steps=2)
    err = caught.value
    assert isinstance(err, WalkError)
    assert (err.chain, err.line_no, err.steps) == ("KUBE-SVC-X", 7, 2)
    assert str(err).startswith("walk stopped in chain KUBE-SVC-X (line 7) after 2 steps")


def test_a_walk_that_splits_without_end_stops_at_its_budget_not_the_stack() -> None:
    # MAYBE could DNAT, so each mark test is walked both ways, and both go on: 2**12 paths.
    marks = [f"-A OUTPUT -m mark --mark 0x{i:x} -j MAYBE" for i in range(1, 13)]
    maybe = "-A MAYBE -d 10.0.0.1/32 -j DNAT --to-destination 10.244.0.5:80"
    table = nat(maybe, *marks, chains="MAYBE")
    with pytest.raises(
        WalkBudgetError, match=r"in chain (OUTPUT|MAYBE)( \(line \d+\))? after 5000 steps"
    ):
        walk(table, "OUTPUT", Packet("10.96.0.10", "tcp", 80), max_steps=5000)


def test_the_budget_must_allow_a_step() -> None:
    with pytest.raises(WalkError, match="max_steps must be at least 1, got 0"):
        walk(nat(*SPLIT, chains="KUBE-SVC-X"), "OUTPUT", Packet("10.96.0.10"), max_steps=0)
