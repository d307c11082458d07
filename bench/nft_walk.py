"""Benchmark the nftables walker on kube-proxy tables with 10, 1000 and 10000 endpoints.

    python bench/nft_walk.py [--endpoints 10 1000 10000] [--repeat 5]

The rulesets are the real ``nft -j list ruleset`` captured from a kind cluster in
nftables mode (tests/fixtures/captured/v1.34.4-nftables: Service default/agnhost,
ClusterIP 10.111.237.187, port 80, three endpoints), with that Service's endpoints
rewritten for N in the shape kube-proxy writes them (:func:`synthesize`): one
``endpoint-…`` chain per endpoint (the hairpin masquerade mark, then ``meta
l4proto tcp dnat to IP:8080``), and the Service chain's ``numgen random mod N vmap
{ 0 : goto …, …, N-1 : goto … }``. The rest of the ruleset is kept as captured.

For each N it prints the least CPU time (of this process) of ``--repeat`` runs of
the walk alone (a TCP packet to the Service's port from an unknown source, from
OUTPUT), of its text and JSON renderings, and of parsing the ruleset; then the
time per endpoint and the growth exponent between sizes (1 is linear).
Every walk is checked: N outcomes, each a DNAT at exactly 1/N.
"""

from __future__ import annotations

import argparse
import copy
import functools
import itertools
import json
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.walk import best_of, host, json_text  # noqa: E402
from kindlab.netfilter.nft_walker import walk_nft  # noqa: E402
from kindlab.netfilter.render import text  # noqa: E402
from kindlab.netfilter.walker import Packet, WalkResult  # noqa: E402
from kindlab.parsers.nft import NftRuleset, parse_nft_json  # noqa: E402

CAPTURED = ROOT / "tests" / "fixtures" / "captured"
CAPTURE = CAPTURED / "v1.34.4-nftables" / "nft-j-list-ruleset.out"
CLUSTER_IP = "10.111.237.187"
PORT = 80


def address(i: int) -> str:
    """The i-th made-up endpoint address: 10.244.1.1, 10.244.1.2, … (254 per /24)."""
    return f"10.{244 + i // 65024}.{1 + i // 254 % 256}.{1 + i % 254}"


def synthesize(
    captured: str, endpoints: int, cluster_ip: str = CLUSTER_IP, port: int = PORT
) -> str:
    """The captured ruleset with the Service at ``cluster_ip``:``port`` given ``endpoints``
    endpoints, written as kube-proxy writes them."""
    doc = json.loads(captured)
    items: list[dict[str, Any]] = doc["nftables"]

    def kp(obj: dict[str, Any]) -> bool:
        return obj.get("family") == "ip" and obj.get("table") == "kube-proxy"

    service = None
    for item in items:
        m = item.get("map")
        if m and kp(m) and m["name"] == "service-ips":
            for key, value in m.get("elem", ()):
                if key.get("concat") == [cluster_ip, "tcp", port]:
                    service = value["goto"]["target"]
    if service is None:
        raise SystemExit(f"no @service-ips element for {cluster_ip} . tcp . {port} in the capture")
    numgen = next(
        item["rule"]
        for item in items
        if "rule" in item
        and kp(item["rule"])
        and item["rule"]["chain"] == service
        and "vmap" in item["rule"]["expr"][-1]
    )
    old = [v["goto"]["target"] for _, v in numgen["expr"][-1]["vmap"]["data"]["set"]]
    first = old[0]
    template = [
        i["rule"] for i in items if "rule" in i and kp(i["rule"]) and i["rule"]["chain"] == first
    ]
    old_ip = first.rsplit("__", 1)[1].split("/")[0]
    name_tail = first.split("-", 2)[2].rsplit("__", 1)[0]  # "default/agnhost/tcp/"

    def chain_name(i: int) -> str:
        return f"endpoint-B{i:07d}-{name_tail}__{address(i)}/{first.rsplit('/', 1)[1]}"

    handle = max(int(o.get("handle", 0)) for i in items for o in i.values() if isinstance(o, dict))
    chains: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for i in range(endpoints):
        name = chain_name(i)
        handle += 1
        chains.append(
            {"chain": {"family": "ip", "table": "kube-proxy", "name": name, "handle": handle}}
        )
        for rule in template:
            handle += 1
            new = json.loads(json.dumps(rule).replace(old_ip, address(i)))
            new.update(chain=name, handle=handle)
            rules.append({"rule": new})
    out: list[dict[str, Any]] = []
    for item in items:
        obj = next(iter(item.values()))
        if kp(obj) and (
            ("chain" in item and obj["name"] in old) or ("rule" in item and obj["chain"] in old)
        ):
            continue
        if "rule" in item and obj is numgen:
            obj = copy.deepcopy(obj)
            vmap = obj["expr"][-1]["vmap"]
            vmap["key"]["numgen"]["mod"] = endpoints
            vmap["data"]["set"] = [
                [i, {"goto": {"target": chain_name(i)}}] for i in range(endpoints)
            ]
            item = {"rule": obj}
        out.append(item)
        if "chain" in item and kp(obj) and obj["name"] == service:
            out.extend(chains)
    out.extend(rules)
    return json.dumps({"nftables": out})


def check(result: WalkResult, endpoints: int) -> None:
    shares = {o.share for o in result.outcomes}
    if len(result.translations) != endpoints or shares != {Fraction(1, endpoints)}:
        raise SystemExit(f"{endpoints} endpoints: the walk found {len(result.outcomes)} outcomes")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    captured = CAPTURE.read_text()
    packet = Packet(dst=CLUSTER_IP, proto="tcp", dport=PORT)
    print(host())
    print(f"ruleset: {CAPTURE.relative_to(ROOT)}, the Service rewritten for N endpoints")
    print("| endpoints | rules | walk (s) | per endpoint (µs) | text (s) | json (s) | parse (s) |")
    print("|---|---|---|---|---|---|---|")
    rulesets: dict[int, tuple[NftRuleset, float]] = {}
    for n in args.endpoints:
        dump = synthesize(captured, n)
        parse_s, parsed = best_of(args.repeat, functools.partial(parse_nft_json, dump))
        rulesets[n] = parsed, parse_s
    walk_s = dict.fromkeys(args.endpoints, math.inf)
    results: dict[int, WalkResult] = {}
    for _ in range(args.repeat):
        for n, (rs, _) in rulesets.items():
            took, results[n] = best_of(1, functools.partial(walk_nft, rs, "OUTPUT", packet))
            walk_s[n] = min(walk_s[n], took)
    for n, (rs, parse_s) in rulesets.items():
        result = results[n]
        check(result, n)
        text_s, _ = best_of(args.repeat, functools.partial(text, result))
        json_s, _ = best_of(args.repeat, functools.partial(json_text, result))
        table = rs.kube_proxy_table()
        rules = len(table.rules()) if table else 0
        print(
            f"| {n} | {rules} | {walk_s[n]:.4f} | {walk_s[n] / n * 1e6:.0f} | {text_s:.4f} "
            f"| {json_s:.4f} | {parse_s:.4f} |",
            flush=True,
        )
    for (n1, t1), (n2, t2) in itertools.pairwise(walk_s.items()):
        exponent = math.log(t2 / t1) / math.log(n2 / n1)
        print(f"walk {n1} -> {n2} endpoints: time x{t2 / t1:.1f}, growth exponent {exponent:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
