"""iptables-save parser: real captured dumps, tables of rule shapes, error cases."""

from __future__ import annotations

import dataclasses
import doctest
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers import iptables
from kindlab.parsers.iptables import Counters, Option, Rule, parse_iptables_save

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "iptables"
# The tables each capture holds, in the order its iptables-save printed them (README.md):
# `-t nat` prints only nat, and the two back ends order the tables differently.
TABLES = {
    "nft_save.out": ("mangle", "filter", "nat"),
    "nft_save_counters.out": ("mangle", "filter", "nat"),
    "nft_save_nat.out": ("nat",),
    "legacy_save.out": ("filter", "nat", "mangle"),
    "legacy_save_counters.out": ("filter", "nat", "mangle"),
    "legacy_save_nat.out": ("nat",),
}
DUMPS = sorted(TABLES)
SVC = "KUBE-SVC-CDGGSHYLG3RE2FKL"


def load(name: str) -> str:
    return (FIXTURES / name).read_text()


def one_rule(line: str, chains: str = "KUBE-SVC-CDGGSHYLG3RE2FKL") -> Rule:
    """Parse a single -A line inside a minimal nat table."""
    decl = "\n".join(f":{c} - [0:0]" for c in chains.split())
    dump = parse_iptables_save(f"*nat\n{decl}\n{line}\nCOMMIT\n")
    (rule,) = list(dump.table("nat").rules())
    return rule


# --- real captured output -----------------------------------------------------


def test_every_capture_is_listed() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.out")) == DUMPS


@pytest.mark.parametrize(("name", "tables"), TABLES.items())
def test_real_dump_holds_the_tables_its_command_printed(name: str, tables: tuple[str, ...]) -> None:
    assert tuple(parse_iptables_save(load(name)).tables) == tables


@pytest.mark.parametrize("name", DUMPS)
def test_real_dump_has_kube_proxy_nat_chains(name: str) -> None:
    dump = parse_iptables_save(load(name))
    nat = dump.table("nat")
    assert nat.chain("OUTPUT").policy == "ACCEPT"
    assert nat.chain("KUBE-SERVICES").policy is None
    svc = nat.chain(SVC)
    assert [r.probability for r in svc.rules] == [None, 0.33333333349, 0.5, None]
    assert svc.rules[0].source == "10.244.0.0/16" and svc.rules[0].source_negated
    assert [r.target for r in svc.rules] == [
        "KUBE-MARK-MASQ",
        "KUBE-SEP-7U6MWNJWR3SADOJA",
        "KUBE-SEP-2AZ33KU3V5PGPQZH",
        "KUBE-SEP-SS2T4ADR43IYLGAO",
    ]
    dnat = [r.to_destination or "" for r in nat.rules() if r.target == "DNAT"]
    assert sorted(dnat) == [
        "10.244.0.2:53",
        "10.244.0.5:8080",
        "10.244.1.3:8080",
        "10.244.2.4:8080",
        "172.18.0.2:6443",
    ]
    assert sum(len(c.rules) for c in nat.chains.values()) == 32


@pytest.mark.parametrize("name", DUMPS)
def test_real_dump_rules_keep_their_raw_line(name: str) -> None:
    text = load(name)
    lines = text.splitlines()
    for table in parse_iptables_save(text).tables.values():
        for rule in table.rules():
            assert lines[rule.line_no - 1] == rule.raw
            assert rule.text.startswith(f"-A {rule.chain} ")


@pytest.mark.parametrize("name", [n for n in DUMPS if "counters" in n])
def test_counters_from_iptables_save_c(name: str) -> None:
    nat = parse_iptables_save(load(name)).table("nat")
    assert all(r.counters is not None for r in nat.rules())
    # Six TCP connects went to the web Service during the capture.
    web = next(r for r in nat.chain("KUBE-SERVICES").rules if r.destination == "10.96.45.17/32")
    assert web.counters == Counters(6, 360)
    assert nat.chain("KUBE-SERVICES").counters == Counters(0, 0)


@pytest.mark.parametrize("name", [n for n in DUMPS if "counters" not in n])
def test_no_rule_counters_without_c(name: str) -> None:
    for table in parse_iptables_save(load(name)).tables.values():
        assert all(r.counters is None for r in table.rules())


def test_filter_table_rejects_service_without_endpoints() -> None:
    filt = parse_iptables_save(load("nft_save.out")).table("filter")
    (reject,) = filt.chain("KUBE-SERVICES").rules
    assert reject.comment == "default/empty:http has no endpoints"
    assert (reject.destination, reject.protocol, reject.dport) == ("10.96.200.10/32", "tcp", "80")
    assert reject.target == "REJECT"
    assert reject.target_option("--reject-with") == Option(
        "--reject-with", ("icmp-port-unreachable",)
    )


# --- rule shapes --------------------------------------------------------------

RULES = [
    pytest.param(
        f"-A {SVC} ! -s 10.244.0.0/16 -d 10.96.45.17/32 -p tcp -m comment"
        ' --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
        {
            "source": "10.244.0.0/16",
            "source_negated": True,
            "destination": "10.96.45.17/32",
            "destination_negated": False,
            "protocol": "tcp",
            "dport": "80",
            "comment": "default/web:http cluster IP",
            "target": "KUBE-MARK-MASQ",
            "goto": False,
        },
        id="hairpin-masq",
    ),
    pytest.param(
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.0.5:8080" -m statistic --mode '
        "random --probability 0.33333333349 -j KUBE-SEP-7U6MWNJWR3SADOJA",
        {"probability": 0.33333333349, "probability_text": "0.33333333349", "dport": None},
        id="statistic",
    ),
    pytest.param(
        f'-A {SVC} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination '
        "10.244.0.5:8080",
        {"to_destination": "10.244.0.5:8080", "target": "DNAT", "comment": "default/web:http"},
        id="dnat",
    ),
    pytest.param(
        f"-A {SVC} -j MARK --set-xmark 0x4000/0x4000",
        {"target_options": (Option("--set-xmark", ("0x4000/0x4000",)),)},
        id="mark-target",
    ),
    pytest.param(
        f"-A {SVC} -m mark ! --mark 0x4000/0x4000 -j RETURN",
        {"target": "RETURN", "matches_repr": [("mark", "--mark", ("0x4000/0x4000",), True)]},
        id="mark-negated",
    ),
    pytest.param(
        f'-A {SVC} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        "--random-fully",
        {"target_options": (Option("--random-fully"),)},
        id="masquerade-flag",
    ),
    pytest.param(
        f'-A {SVC} -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
        'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        {
            "matches_repr": [
                ("comment", "--comment", None, False),
                ("addrtype", "--dst-type", ("LOCAL",), False),
            ]
        },
        id="addrtype",
    ),
    pytest.param(
        f"-A {SVC} ! -s 127.0.0.0/8 -d 127.0.0.0/8"
        " -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        {"matches_repr": [("conntrack", "--ctstate", ("RELATED,ESTABLISHED,DNAT",), True)]},
        id="conntrack-negated",
    ),
    pytest.param(
        f"-A {SVC} -m physdev --physdev-is-in --physdev-out veth0 -j ACCEPT",
        {
            "matches": (
                ("physdev", (Option("--physdev-is-in"), Option("--physdev-out", ("veth0",)))),
            )
        },
        id="physdev",
    ),
    pytest.param(
        f"-A {SVC} -p tcp -m tcp ! --dport 22 -j ACCEPT",
        {"dport": "22", "matches_repr": [("tcp", "--dport", ("22",), True)]},
        id="dport-negated",
    ),
    pytest.param(
        f"-A {SVC} -p udp -m multiport --dports 53,5353,8000:8080 -j ACCEPT",
        {"dport": None, "matches_repr": [("multiport", "--dports", ("53,5353,8000:8080",), False)]},
        id="multiport",
    ),
    pytest.param(
        f"-A {SVC} -g KUBE-SEP-7U6MWNJWR3SADOJA",
        {"target": "KUBE-SEP-7U6MWNJWR3SADOJA", "goto": True},
        id="goto",
    ),
    pytest.param(
        f"-A {SVC} -i eth0 ! -o lo ! -p icmp -j ACCEPT",
        {
            "in_interface": "eth0",
            "out_interface": "lo",
            "out_interface_negated": True,
            "protocol": "icmp",
            "protocol_negated": True,
        },
        id="interfaces",
    ),
    pytest.param(
        f'-A {SVC} -m comment --comment "say \\"hi\\" \\\\ bye" -j ACCEPT',
        {"comment": 'say "hi" \\ bye'},
        id="comment-escapes",
    ),
    pytest.param(
        f'-A {SVC} -m comment --comment "someone else\'s rule" -j ACCEPT',
        {"comment": "someone else's rule"},
        id="comment-apostrophe",
    ),
    pytest.param(
        f'-A {SVC} -m comment --comment "-starts with a dash" -j ACCEPT',
        {"comment": "-starts with a dash"},
        id="comment-dash",
    ),
    pytest.param(
        f"-A {SVC} -m comment --comment default/web:http -j ACCEPT",
        {"comment": "default/web:http"},
        id="comment-unquoted",
    ),
    pytest.param(
        f"-A {SVC} -p tcp --dport 80 -j ACCEPT",
        {"dport": "80", "matches_repr": [("tcp", "--dport", ("80",), False)]},
        id="implicit-protocol-match",
    ),
    pytest.param(f"-A {SVC} -c 5 300 -j ACCEPT", {"counters": Counters(5, 300)}, id="inline-c"),
    pytest.param(f"-A {SVC} -f -j DROP", {"fragment": True}, id="fragment"),
    pytest.param(f"-A {SVC} ! -f -j DROP", {"fragment": False}, id="not-fragment"),
    pytest.param(
        f"-A {SVC} -d 10.0.0.1/32", {"target": None, "target_options": ()}, id="no-target"
    ),
    pytest.param(
        f"-A {SVC} -p tcp -m tcp -j DNAT --to-destination 10.244.0.5:8080 --random --persistent",
        {
            "target_options": (
                Option("--to-destination", ("10.244.0.5:8080",)),
                Option("--random"),
                Option("--persistent"),
            )
        },
        id="dnat-flags",
    ),
]


@pytest.mark.parametrize(("line", "expected"), RULES)
def test_rule_fields(line: str, expected: dict[str, object]) -> None:
    rule = one_rule(line)
    assert rule.raw == line
    assert rule.chain == SVC
    for key, want in expected.items():
        if key == "matches_repr":
            # (module, option, values or None to skip, negated) for each listed match
            for module, name, values, negated in want:  # type: ignore[attr-defined]
                match = rule.match(module)
                assert match is not None, f"no -m {module} in {rule.raw}"
                opt = match.option(name)
                assert opt is not None and opt.negated == negated, opt
                assert values is None or opt.values == values, opt
        elif key == "matches":
            assert tuple((m.module, m.options) for m in rule.matches) == want
        else:
            assert getattr(rule, key) == want, f"{key}: {getattr(rule, key)!r} != {want!r}"


def test_counters_prefix_and_chain_counters() -> None:
    dump = parse_iptables_save(
        "*nat\n:OUTPUT ACCEPT [12:720]\n:KUBE-SERVICES - [0:0]\n"
        '[8:504] -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
        "COMMIT\n"
    )
    out = dump.table("nat").chain("OUTPUT")
    assert out.counters == Counters(12, 720)
    assert out.builtin and out.policy == "ACCEPT"
    (rule,) = out.rules
    assert rule.counters == Counters(8, 504)
    assert (
        rule.text == '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
    )
    assert rule.line_no == 4


def test_chain_line_without_counters_and_comments_and_blank_lines() -> None:
    dump = parse_iptables_save(
        "# Generated by iptables-save v1.8.11\n\n*filter\n:INPUT DROP\n:KUBE-FIREWALL -\n"
        "-A INPUT -j KUBE-FIREWALL\nCOMMIT\n# Completed\n"
    )
    filt = dump.table("filter")
    assert filt.chain("INPUT").policy == "DROP"
    assert filt.chain("INPUT").counters is None
    assert not filt.chain("KUBE-FIREWALL").builtin


def test_result_is_frozen() -> None:
    rule = one_rule(f"-A {SVC} -j ACCEPT")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.target = "DROP"  # type: ignore[misc]


def test_lookup_errors_name_what_exists() -> None:
    dump = parse_iptables_save(load("nft_save_nat.out"))
    with pytest.raises(KeyError, match="tables: nat"):
        dump.table("filter")
    with pytest.raises(KeyError, match="KUBE-SERVICES"):
        dump.table("nat").chain("NOPE")


def test_empty_input_is_an_empty_dump() -> None:
    assert parse_iptables_save("").tables == {}


def test_module_docstring_example_runs() -> None:
    result = doctest.testmod(iptables, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


# --- errors -------------------------------------------------------------------

ERRORS = [
    pytest.param("-A FOO -j ACCEPT\n", 1, "*TABLE", id="rule-outside-table"),
    pytest.param(":FOO - [0:0]\n", 1, "*TABLE", id="chain-outside-table"),
    pytest.param(
        "*nat\n:OUTPUT ACCEPT [0:0]\nhello world\nCOMMIT\n", 3, "-A CHAIN", id="unknown-line"
    ),
    pytest.param(
        "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j ACCEPT\n", 1, "COMMIT", id="missing-commit"
    ),
    pytest.param("*nat\n*filter\nCOMMIT\n", 2, "COMMIT", id="table-inside-table"),
    pytest.param("COMMIT\n", 1, "*TABLE before COMMIT", id="commit-without-table"),
    pytest.param("*nat\nCOMMIT\n*nat\nCOMMIT\n", 3, "only once", id="duplicate-table"),
    pytest.param("*\nCOMMIT\n", 1, "table name", id="empty-table-name"),
    pytest.param(
        '*nat\n:X - [0:0]\n-A X -m comment --comment "open -j ACCEPT\nCOMMIT\n',
        3,
        "closing double quote",
        id="unterminated-quote",
    ),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -j ACCEPT \\\nCOMMIT\n", 3, "backslash", id="trailing-backslash"
    ),
    pytest.param(
        "*nat\n:OUTPUT ACCEPT [0:0]\n-A KUBE-SERVICES -j ACCEPT\nCOMMIT\n",
        3,
        "':KUBE-SERVICES' declaration",
        id="undeclared-chain",
    ),
    pytest.param("*nat\n:X MAYBE [0:0]\nCOMMIT\n", 2, "policy", id="bad-policy"),
    pytest.param("*nat\n:X - [0:0]\n:X - [0:0]\nCOMMIT\n", 3, "only once", id="duplicate-chain"),
    pytest.param("*nat\n:X - [a:b]\nCOMMIT\n", 2, ":CHAIN POLICY", id="bad-chain-counters"),
    pytest.param("*nat\n:\nCOMMIT\n", 2, ":CHAIN POLICY", id="bare-colon"),
    pytest.param(
        "*nat\n:X - [0:0]\n[1:x] -A X -j ACCEPT\nCOMMIT\n", 3, "[PACKETS:BYTES]", id="bad-counters"
    ),
    pytest.param("*nat\n:X - [0:0]\n[1:2] -N X\nCOMMIT\n", 3, "-A CHAIN", id="counters-then-not-A"),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -s -j ACCEPT\nCOMMIT\n", 3, "value after -s", id="missing-value"
    ),
    pytest.param("*nat\n:X - [0:0]\n-A X -j\nCOMMIT\n", 3, "value after -j", id="missing-target"),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X --dport 80 -j ACCEPT\nCOMMIT\n",
        3,
        "-m MODULE",
        id="option-without-module",
    ),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -j ACCEPT -j DROP\nCOMMIT\n", 3, "single -j", id="two-targets"
    ),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -s 1.2.3.4 -s 5.6.7.8\nCOMMIT\n",
        3,
        "at most once",
        id="duplicate-source",
    ),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -j ACCEPT !\nCOMMIT\n", 3, "final '!'", id="dangling-bang"
    ),
    pytest.param("*nat\n:X - [0:0]\n-A X ! ! -s 1.2.3.4\nCOMMIT\n", 3, "not two", id="double-bang"),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X ! -m tcp\nCOMMIT\n", 3, "not before -m", id="bang-before-m"
    ),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -s 1.2.3.4 stray\nCOMMIT\n", 3, "known option", id="stray-word"
    ),
    pytest.param(
        '*nat\n:X - [0:0]\n-A X "quoted"\nCOMMIT\n', 3, "not the value", id="quoted-where-option"
    ),
    pytest.param("*nat\n:X - [0:0]\n-A\nCOMMIT\n", 3, "-A CHAIN", id="A-without-chain"),
    pytest.param(
        "*nat\n:X - [0:0]\n-A X -c 1 -j ACCEPT\nCOMMIT\n", 3, "-c PACKETS BYTES", id="bad-inline-c"
    ),
    pytest.param(
        "*nat\n:X - [0:0]\n-I X 1 -j ACCEPT\nCOMMIT\n", 3, "-A CHAIN", id="insert-not-save-output"
    ),
]


@pytest.mark.parametrize(("text", "line_no", "expected"), ERRORS)
def test_parse_errors_name_the_line_and_what_was_expected(
    text: str, line_no: int, expected: str
) -> None:
    with pytest.raises(ParseError) as info:
        parse_iptables_save(text)
    err = info.value
    assert err.tool == "iptables-save"
    assert err.line_no == line_no, str(err)
    assert err.line == text.splitlines()[line_no - 1]
    assert expected in err.expected, str(err)
    assert isinstance(err, ValueError)
    assert "\n" not in str(err)
