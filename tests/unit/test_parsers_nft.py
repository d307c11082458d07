"""nft -j parser: real captures of a hand-built kube-proxy table, helpers, edges, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.nft import (
    NftCounter,
    NftElement,
    cluster_ip_entries,
    kube_proxy_table,
    no_endpoint_reject,
    parse_nft_json,
    render_expr,
    render_statement,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nft"


def load(name: str) -> str:
    return (FIXTURES / f"{name}.out").read_text()


RULESET = "kube-proxy-handbuilt-ruleset"


# --- real captured output -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tables"),
    [
        (RULESET, [("ip", "kube-proxy", 29, 7, 49), ("ip", "filter", 3, 0, 3)]),
        ("kube-proxy-handbuilt-table", [("ip", "kube-proxy", 29, 7, 49)]),
        ("docker-dns-ruleset", [("ip", "nat", 4, 0, 6)]),
        ("empty-ruleset", []),
    ],
)
def test_real_ruleset(name: str, tables: list[tuple[str, str, int, int, int]]) -> None:
    rs = parse_nft_json(load(name))
    assert rs.version == "1.1.3" and rs.json_schema_version == 1
    got = [(t.family, t.name, len(t.chains), len(t.sets), len(t.rules())) for t in rs.tables]
    assert got == tables


def test_table_and_chain_attributes() -> None:
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    assert (table.comment, table.handle) == ("rules for kube-proxy", 2)
    nat_output = table.chain("nat-output")
    assert nat_output is not None
    assert (nat_output.type, nat_output.hook, nat_output.prio, nat_output.policy) == (
        "nat",
        "output",
        -100,
        "accept",
    )
    pre = table.chain("filter-prerouting-pre-dnat")
    assert pre is not None and (pre.hook, pre.prio) == ("prerouting", -110)
    reject_chain = table.chain("reject-chain")
    assert reject_chain is not None and reject_chain.hook is None  # not a base chain
    assert reject_chain.comment == "helper for @no-endpoint-services / @no-endpoint-nodeports"
    assert json.loads(reject_chain.raw)["chain"]["name"] == "reject-chain"
    assert table.chain("nope") is None and table.set("nope") is None


def test_rendered_rules_match_nft_list_text() -> None:
    """Every rule of the kube-proxy table renders as the ``nft list ruleset`` capture shows it."""
    text_lines = {line.strip() for line in load(f"{RULESET}-text").splitlines()}
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    missing = [r.text for r in table.rules() if r.text not in text_lines]
    assert missing == []


def test_sets_and_maps() -> None:
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    cluster_ips = table.set("cluster-ips")
    assert cluster_ips is not None
    assert (cluster_ips.kind, cluster_ips.type, cluster_ips.comment) == (
        "set",
        ("ipv4_addr",),
        "Active ClusterIPs",
    )
    assert [e.key for e in cluster_ips.elements] == [
        ("10.96.0.1",),
        ("10.96.0.10",),
        ("10.96.0.20",),
        ("10.96.0.53",),
        ("10.96.100.5",),
    ]
    service_ips = table.set("service-ips")
    assert service_ips is not None and service_ips.kind == "map"
    assert service_ips.type == ("ipv4_addr", "inet_proto", "inet_service")
    assert service_ips.map_type == "verdict"
    assert len(service_ips.elements) == 5
    assert [s.name for s in table.sets if s.kind == "map"] == [
        "firewall-ips",
        "no-endpoint-nodeports",
        "no-endpoint-services",
        "service-ips",
        "service-nodeports",
    ]
    nodeports = table.set("service-nodeports")
    assert nodeports is not None
    assert nodeports.elements[0].text == (
        "tcp . 30080 : goto external-NP3Q7XZA-kindlab/nodeport/tcp/http"
    )


def test_rule_accessors() -> None:
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    chain = table.chain("service-XKJ5QF2M-kindlab/web/tcp/http")
    assert chain is not None
    masq, dispatch = chain.rules
    assert masq.verdict == "jump" and masq.targets == ("mark-for-masquerade",)
    assert dispatch.verdict == "vmap"
    assert dispatch.targets == (
        "endpoint-AAAAAAA1-kindlab/web/tcp/http__10.244.0.5/8080",
        "endpoint-BBBBBBB2-kindlab/web/tcp/http__10.244.1.6/8080",
        "endpoint-CCCCCCC3-kindlab/web/tcp/http__10.244.2.7/8080",
    )
    endpoint = table.chain(dispatch.targets[0])
    assert endpoint is not None
    dnat = endpoint.rules[-1]
    assert dnat.verdict == "dnat" and dnat.counter == NftCounter(2, 120)
    assert dnat.text == "meta l4proto tcp counter packets 2 bytes 120 dnat to 10.244.0.5:8080"
    assert dnat.expr[-1] == {"dnat": {"addr": "10.244.0.5", "port": 8080}}
    dnat.expr.clear()  # a fresh copy: the rule itself cannot change
    assert len(dnat.expr) == 3
    assert json.loads(dnat.raw)["rule"]["handle"] == dnat.handle
    services = table.chain("services")
    assert services is not None
    assert services.rules[0].references == ("@service-ips",)
    check = table.chain("cluster-ips-check")
    assert check is not None
    assert check.rules[0].rejects and check.rules[0].comment == (
        "Reject traffic to invalid ports of ClusterIPs"
    )
    assert check.rules[0].counter == NftCounter(3, 228)
    assert check.rules[1].verdict == "drop" and not check.rules[1].rejects


def test_xt_rules_from_iptables_nft_are_kept() -> None:
    rs = parse_nft_json(load(RULESET))
    table = rs.table("ip", "filter")
    assert table is not None
    chain = table.chain("KUBE-FIREWALL")
    assert chain is not None
    (rule,) = chain.rules
    assert "xt match comment" in rule.text and rule.verdict == "drop"


# --- kube-proxy helpers -------------------------------------------------------------


def test_cluster_ip_with_endpoints() -> None:
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    entries = cluster_ip_entries(table, "10.96.0.10")
    assert [e.text for e in entries.cluster_ips] == ["10.96.0.10"]
    assert entries.service_ips == (
        NftElement(
            key=("10.96.0.10", "tcp", "80"),
            value="goto service-XKJ5QF2M-kindlab/web/tcp/http",
            verdict="goto",
            target="service-XKJ5QF2M-kindlab/web/tcp/http",
        ),
    )
    assert entries.no_endpoint_services == ()
    assert no_endpoint_reject(table, "10.96.0.10") is None


def test_cluster_ip_with_two_ports() -> None:
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    entries = cluster_ip_entries(table, "10.96.0.53")
    assert sorted(e.key[1] for e in entries.service_ips) == ["tcp", "udp"]


def test_no_endpoint_service_is_rejected() -> None:
    table = kube_proxy_table(parse_nft_json(load(RULESET)))
    assert table is not None
    entries = cluster_ip_entries(table, "10.96.100.5")
    assert entries.no_endpoint_services != () and entries.service_ips == ()
    found = no_endpoint_reject(table, "10.96.100.5", "TCP", 80)
    assert found is not None
    assert found.element.comment == "kindlab/empty:http"
    assert (found.element.verdict, found.element.target) == ("goto", "reject-chain")
    assert [r.text for r in found.rules] == ["counter packets 1 bytes 60 reject"]
    assert found.text == (
        '@no-endpoint-services: 10.96.100.5 . tcp . 80 comment "kindlab/empty:http"'
        " : goto reject-chain\n"
        "reject-chain: counter packets 1 bytes 60 reject"
    )
    assert no_endpoint_reject(table, "10.96.100.5", "udp") is None
    assert no_endpoint_reject(table, "10.96.100.5", port=443) is None


def test_unknown_ip_and_missing_table() -> None:
    rs = parse_nft_json(load(RULESET))
    table = kube_proxy_table(rs)
    assert table is not None
    entries = cluster_ip_entries(table, "10.96.9.9")
    assert (entries.cluster_ips, entries.service_ips, entries.no_endpoint_services) == ((), (), ())
    assert kube_proxy_table(rs, "ip6") is None
    assert kube_proxy_table(parse_nft_json(load("docker-dns-ruleset"))) is None


# --- edge cases ------------------------------------------------------------------------


def wrap(*items: object) -> str:
    return json.dumps({"nftables": [{"metainfo": {"version": "1.1.3"}}, *items]})


def test_element_forms() -> None:
    text = wrap(
        {"table": {"family": "ip", "name": "t"}},
        {
            "set": {
                "family": "ip",
                "table": "t",
                "name": "s",
                "type": "ipv4_addr",
                "flags": ["interval"],
                "elem": [
                    {"prefix": {"addr": "10.96.0.0", "len": 16}},
                    {"range": ["10.97.0.1", "10.97.0.9"]},
                    {"elem": {"val": "10.98.0.1", "counter": {"packets": 4, "bytes": 240}}},
                ],
            }
        },
        {
            "map": {
                "family": "ip",
                "table": "t",
                "name": "m",
                "type": ["inet_proto", "inet_service"],
                "map": "verdict",
                "elem": [[{"concat": ["tcp", 3001]}, {"drop": None}]],
            }
        },
    )
    table = parse_nft_json(text).table("ip", "t")
    assert table is not None
    s = table.set("s")
    assert s is not None and s.flags == ("interval",)
    assert [e.text for e in s.elements] == ["10.96.0.0/16", "10.97.0.1-10.97.0.9", "10.98.0.1"]
    assert s.elements[2].counter == NftCounter(4, 240)
    assert [e.text for e in s.elements_mentioning("10.96.3.4")] == ["10.96.0.0/16"]
    assert [e.text for e in s.elements_mentioning("10.97.0.5")] == ["10.97.0.1-10.97.0.9"]
    m = table.set("m")
    assert m is not None
    (drop,) = m.elements
    assert (drop.text, drop.verdict, drop.target) == ("tcp . 3001 : drop", "drop", None)
    assert not drop.mentions("10.0.0.1")


@pytest.mark.parametrize(
    ("stmt", "text"),
    [
        ({"accept": None}, "accept"),
        (
            {"reject": {"type": "icmpx", "expr": "admin-prohibited"}},
            "reject with icmpx admin-prohibited",
        ),
        ({"reject": None}, "reject"),
        ({"snat": {"addr": "fd00::1", "port": 80}}, "snat to [fd00::1]:80"),
        ({"masquerade": None}, "masquerade"),
        ({"counter": "named"}, "counter name named"),
        ({"log": {"prefix": "kube"}}, 'log prefix "kube"'),
        (
            {
                "set": {
                    "op": "update",
                    "elem": {"payload": {"protocol": "ip", "field": "saddr"}},
                    "set": "@aff",
                }
            },
            "update @aff { ip saddr }",
        ),
        (
            {"match": {"op": "!=", "left": {"meta": {"key": "mark"}}, "right": 16384}},
            "meta mark != 0x00004000",
        ),
        (
            {"match": {"op": "==", "left": {"ct": {"key": "state"}}, "right": ["new", "related"]}},
            "ct state new,related",
        ),
        (
            {
                "match": {
                    "op": "==",
                    "left": {"fib": {"result": "type", "flags": ["saddr"]}},
                    "right": "local",
                }
            },
            "fib saddr type local",
        ),
        (
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"base": "th", "offset": 16, "len": 16}},
                    "right": 1,
                }
            },
            "@th,16,16 1",
        ),
        ({"future": {"x": 1}}, '{"future":{"x":1}}'),
        ("weird", '"weird"'),
    ],
)
def test_render_statement(stmt: object, text: str) -> None:
    assert render_statement(stmt) == text


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (True, "true"),
        (None, ""),
        ({"map": {"key": {"meta": {"key": "l4proto"}}, "data": "@m"}}, "meta l4proto map @m"),
        ({"ct": {"key": "original", "dir": "reply"}}, "ct reply original"),
        ({"numgen": {"mode": "inc", "mod": 2, "offset": 5}}, "numgen inc mod 2 offset 5"),
        ({"set": ["a", "b"]}, "{ a, b }"),
        ({"elem": {"val": "10.0.0.1", "comment": "x"}}, '10.0.0.1 comment "x"'),
        ({"jump": {"target": "c"}}, "jump c"),
        ({"a": 1, "b": 2}, '{"a":1,"b":2}'),
    ],
)
def test_render_expr(expr: object, text: str) -> None:
    assert render_expr(expr) == text


def test_other_object_kinds_are_skipped() -> None:
    text = wrap(
        {"table": {"family": "inet", "name": "t"}},
        {"counter": {"family": "inet", "table": "t", "name": "c", "packets": 0, "bytes": 0}},
        {"flowtable": {"family": "inet", "table": "t", "name": "f"}},
    )
    (table,) = parse_nft_json(text).tables
    assert (table.family, table.chains, table.sets) == ("inet", (), ())


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line_no", "expected"),
    [
        pytest.param(load("not-permitted"), 1, "nft JSON output", id="not-permitted"),
        pytest.param(load("missing-table"), 1, "nft JSON output", id="missing-table"),
        pytest.param("", 1, "nft JSON output", id="empty"),
        pytest.param('{"rules": []}', 1, '"nftables" list', id="no-nftables-key"),
        pytest.param(wrap({"a": 1, "b": 2}), 2, "one key", id="two-keys"),
        pytest.param(wrap({"chain": "x"}), 2, "a chain object", id="chain-not-object"),
        pytest.param(
            wrap({"chain": {"family": "ip", "table": "t", "name": "c"}}),
            2,
            "table ip t listed before its chain",
            id="chain-without-table",
        ),
        pytest.param(
            wrap(
                {"table": {"family": "ip", "name": "t"}},
                {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": []}},
            ),
            3,
            "chain 'c' listed before its rules",
            id="rule-without-chain",
        ),
        pytest.param(
            wrap({"table": {"family": "ip"}}), 2, "a table with a 'name' string", id="no-name"
        ),
        pytest.param(
            wrap(
                {"table": {"family": "ip", "name": "t"}},
                {"chain": {"family": "ip", "table": "t", "name": "c"}},
                {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": {}}},
            ),
            4,
            '"expr" list',
            id="expr-not-list",
        ),
        pytest.param(
            wrap(
                {"table": {"family": "ip", "name": "t"}},
                {"map": {"family": "ip", "table": "t", "name": "m", "elem": ["10.0.0.1"]}},
            ),
            3,
            "[key, value] pairs",
            id="map-element-not-pair",
        ),
    ],
)
def test_errors_name_the_object(text: str, line_no: int, expected: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_nft_json(text)
    assert exc.value.tool == "nft -j"
    assert exc.value.line_no == line_no
    assert expected in exc.value.expected
