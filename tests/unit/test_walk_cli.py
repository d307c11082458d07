"""``kindlab walk``: argument handling, text and JSON output, one-line errors."""

from __future__ import annotations

import argparse
import io
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from kindlab.cli import walk as walk_cli
from kindlab.errors import KindlabError

DUMP = Path(__file__).resolve().parents[1] / "fixtures" / "iptables" / "nft_save_counters.out"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kindlab")
    walk_cli.register_cli(p.add_subparsers(required=True))
    return p


def run(*argv: str) -> tuple[int, str]:
    args = parser().parse_args(["walk", *argv])
    out = io.StringIO()
    assert args.func is walk_cli.run
    return walk_cli.run(args, stdout=out), out.getvalue()


def test_json_tcp_to_cluster_ip() -> None:
    code, out = run(str(DUMP), "--proto", "tcp", "--dst", "10.96.45.17", "--dport", "80", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["translated"] is True
    assert [s["chain"] for s in doc["path"]][:2] == ["OUTPUT", "KUBE-SERVICES"]
    assert all(isinstance(s["rule"], str) and s["rule"].startswith("-A ") for s in doc["path"])
    assert sorted(o["to"] for o in doc["outcomes"]) == [
        "10.244.0.5:8080",
        "10.244.1.3:8080",
        "10.244.2.4:8080",
    ]
    assert [o["probability"] for o in doc["outcomes"]] == pytest.approx([1 / 3] * 3)
    assert {o["share"] for o in doc["outcomes"]} == {"1/3"}


def test_json_icmp_is_not_translated() -> None:
    code, out = run(str(DUMP), "--proto", "icmp", "--dst", "10.96.45.17", "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["translated"] is False
    assert doc["outcomes"] == []
    assert [s["chain"] for s in doc["path"]][:2] == ["OUTPUT", "KUBE-SERVICES"]
    assert doc["endings"][0]["verdict"] == "ACCEPT"


def test_text_output_for_a_learner() -> None:
    code, out = run(str(DUMP), "--proto", "tcp", "--dst", "10.96.45.17", "--dport", "80")
    assert code == 0
    assert "Walking tcp ? -> 10.96.45.17:80 through nat OUTPUT." in out
    assert '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in out
    assert "random: taken (p=1/3)" in out
    assert "random: not taken (p=2/3)" in out
    # The first two endpoints are side branches (marked "|"); the walk goes on after each.
    endings = [line for line in out.splitlines() if "=> (" in line]
    assert endings == [
        "|       => (1) DNAT to 10.244.0.5:8080, share 1/3 (33.33%)",
        "|       => (2) DNAT to 10.244.1.3:8080, share 1/3 (33.33%)",
        "    => (3) DNAT to 10.244.2.4:8080, share 1/3 (33.33%)",
    ]
    # Each step is shown once, however many endings share it.
    assert out.count("-j KUBE-SVC-CDGGSHYLG3RE2FKL\n") == 1
    assert "Result: translated: DNAT to 10.244.0.5:8080 1/3 (33.33%)" in out


def test_text_verbose_says_why_rules_missed() -> None:
    code, out = run(
        str(DUMP),
        "--proto",
        "icmp",
        "--dst",
        "10.96.45.17",
        "--hook",
        "prerouting",
        "--local",
        "172.18.0.2",
        "-v",
    )
    assert code == 0
    assert "through nat PREROUTING" in out
    assert "no match: protocol icmp is not tcp -> skip" in out
    assert "Result: not translated (ACCEPT)" in out


def test_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(DUMP.read_text()))
    code, out = run("-", "--proto", "udp", "--dst", "10.96.0.10", "--dport", "53", "--json")
    assert code == 0
    assert [o["to"] for o in json.loads(out)["outcomes"]] == ["10.244.0.2:53"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--proto", "tcpx", "--dst", "10.96.45.17"], "--proto must be one of"),
        (["--proto", "tcp", "--dst", "10.96.45"], "--dst must be an IP address"),
        (["--proto", "tcp", "--dst", "10.96.45.17", "--src", "pod"], "--src must be an IP"),
        (["--proto", "tcp", "--dst", "10.96.45.17", "--dport", "http"], "--dport must be a number"),
        (["--proto", "tcp", "--dst", "10.96.45.17", "--dport", "0"], "--dport must be 1..65535"),
        (["--proto", "icmp", "--dst", "10.96.45.17", "--dport", "80"], "makes no sense"),
        (["--proto", "tcp", "--dst", "10.96.45.17", "--hook", "INPUT"], "--hook must be"),
        (["--proto", "tcp", "--dst", "10.96.45.17", "--local", "node"], "--local must be"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(str(DUMP), *argv)
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("*nat\n:OUTPUT ACCEPT [0:0]\n", "line 1: expected COMMIT"),
        ('*nat\n:X - [0:0]\n-A X -m comment --comment "oops\nCOMMIT\n', "closing double quote"),
        ("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n", "no nat table in the dump (tables: filter)"),
        ("*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", "no chain OUTPUT"),
    ],
    ids=["missing-file", "no-commit", "bad-quote", "no-nat", "no-hook-chain"],
)
def test_bad_dumps_are_one_line_and_exit_2(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.out"
    if content is not None:
        dump.write_text(content)
    code, out = run(str(dump), "--proto", "tcp", "--dst", "10.96.45.17")
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and message in err, err


def test_a_walk_out_of_budget_is_one_line_naming_the_chain_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = run(
        str(DUMP), "--proto", "tcp", "--dst", "10.96.45.17", "--dport", "80", "--max-steps", "4"
    )
    err = capsys.readouterr().err
    assert (code, out) == (1, "")
    assert err.count("\n") == 1, err
    assert err.startswith("kindlab walk: gave up: walk stopped in chain KUBE-SVC-CDGGSHYLG3RE2FKL")
    assert err.rstrip().endswith("raise --max-steps to go on")


BIG = DUMP.parents[1] / "captured" / "v1.34.4-iptables-1000ep" / "iptables-save.out"
BIG_IP = "10.104.152.136"  # default/big, 1003 endpoints (see that folder's README)


def test_a_service_of_1003_endpoints_splits_evenly_in_json() -> None:
    code, out = run(str(BIG), "--proto", "tcp", "--dst", BIG_IP, "--dport", "80", "--json")
    assert code == 0
    doc = json.loads(out)
    shares = [Fraction(o["share"]) for o in doc["outcomes"]]
    assert len(shares) == len({o["to"] for o in doc["outcomes"]}) == 1003
    assert set(shares) == {Fraction(1, 1003)}
    assert sum(shares) == 1
    assert sum(o["probability"] for o in doc["outcomes"]) == pytest.approx(1)
    # Each step once: a path per outcome would be about 1003 * 1003 / 2 steps.
    assert len(doc["steps"]) < 5 * 1003


def test_a_service_of_1003_endpoints_in_text_grows_with_the_endpoints() -> None:
    code, out = run(str(BIG), "--proto", "tcp", "--dst", BIG_IP, "--dport", "80")
    assert code == 0
    assert out.count("=> (") == 1003
    assert out.count(", share 1/1003 (0.1%)") == 1003
    assert len(out.splitlines()) < 15 * 1003


def test_icmp_to_a_service_of_1003_endpoints_is_not_translated() -> None:
    code, out = run(str(BIG), "--proto", "icmp", "--dst", BIG_IP, "--json")
    doc = json.loads(out)
    assert (code, doc["translated"], doc["outcomes"]) == (0, False, [])
    assert [(e["verdict"], e["share"]) for e in doc["endings"]] == [("ACCEPT", "1")]


class ClosedPipe(io.StringIO):
    """An output whose reader has gone, as behind ``| head`` once head has its lines."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_a_reader_that_stops_reading_ends_the_walk_quietly(
    json_flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = parser().parse_args(
        ["walk", str(DUMP), "--proto", "tcp", "--dst", "10.96.45.17", "--dport", "80", *json_flag]
    )
    assert walk_cli.run(args, stdout=ClosedPipe()) == 141
    assert capsys.readouterr().err == ""


# --- nft -j list ruleset: told apart by content --------------------------------

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"
NFT_DUMP = CAPTURED / "v1.34.4-nftables" / "nft-j-list-ruleset.out"
NFT_TEXT = CAPTURED / "v1.34.4-nftables" / "nft-list-ruleset.out"
NFT_CLUSTER_IP = "10.111.237.187"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        (NFT_DUMP, "nft-json"),
        (CAPTURED / "v1.34.4-iptables" / "iptables-save.out", "iptables-save"),
        (CAPTURED / "v1.34.4-iptables" / "iptables-save-t-nat.out", "iptables-save"),
        (DUMP, "iptables-save"),
    ],
)
def test_the_format_is_detected_from_the_content(path: Path, fmt: str) -> None:
    assert walk_cli.detect_format(path.read_text()) == fmt


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (NFT_TEXT.read_text(), "looks like `nft list ruleset` text; kindlab walk reads its JSON"),
        ('{"kind": "List"}', "is JSON but not `nft -j list ruleset` output"),
        ("  \n", "is empty"),
        ("Operation not permitted\n", "neither iptables-save output nor `nft -j list ruleset`"),
    ],
)
def test_what_is_not_a_dump_is_named_in_one_line(content: str, says: str) -> None:
    with pytest.raises(KindlabError, match=re.escape(says)):
        walk_cli.detect_format(content)


def test_an_nft_ruleset_is_walked_through_kube_proxys_table() -> None:
    code, out = run(
        str(NFT_DUMP), "--proto", "tcp", "--dst", NFT_CLUSTER_IP, "--dport", "80", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["table"] == "ip kube-proxy"
    assert sorted(o["to"] for o in doc["outcomes"]) == [
        "10.244.0.5:8080",
        "10.244.0.6:8080",
        "10.244.0.7:8080",
    ]
    assert sum(Fraction(o["share"]) for o in doc["outcomes"]) == 1


def test_icmp_in_an_nft_ruleset_shows_its_reject() -> None:
    code, out = run(str(NFT_DUMP), "--proto", "icmp", "--dst", NFT_CLUSTER_IP)
    assert code == 0
    assert f"Walking icmp ? -> {NFT_CLUSTER_IP} through ip kube-proxy OUTPUT." in out
    assert "cluster-ips-check [handle 40]" in out
    assert "Result: not translated (REJECT)" in out
    assert "REJECT with icmp port-unreachable, no translation" in out


def test_nft_text_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(str(NFT_TEXT), "--proto", "icmp", "--dst", NFT_CLUSTER_IP)
    assert (code, out) == (2, "")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nft -j list ruleset" in err


def test_an_nft_walk_that_spends_its_budget_stops_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = run(
        str(NFT_DUMP), "--proto", "tcp", "--dst", NFT_CLUSTER_IP, "--dport", "80",
        "--max-steps", "3",
    )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.rstrip().endswith("raise --max-steps to go on")
