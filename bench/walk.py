"""Benchmark the walker on kube-proxy tables with 10, 1000 and 10000 endpoints.

    python bench/walk.py [--endpoints 10 1000 10000] [--repeat 5]

The tables are the real nat table captured from a kind cluster with a Service of
1003 endpoints (tests/fixtures/captured/v1.34.4-iptables-1000ep), with that
Service's KUBE-SVC and KUBE-SEP rules rewritten for N endpoints in the same shape
kube-proxy writes them: the hairpin mark, then a random jump per endpoint with
probability 1/(N - i) as iptables-save prints it after the kernel's 32-bit
rounding, the last without; each KUBE-SEP a masquerade mark and a DNAT. The rest
of the table (other Services, the hooks, Docker's rules) is kept as captured.

For each N it prints the least CPU time (of this process) of ``--repeat`` runs
of the walk alone (a TCP packet to the Service's port from an unknown source, as
``kindlab walk`` does by default; the sizes take turns), of its text and JSON
renderings, and, for context, of parsing the table; then the time per endpoint
and the growth exponent between successive sizes (log of the time ratio over log
of the size ratio: 1 is linear, 2 quadratic).
Every walk is checked: N outcomes, each a DNAT at exactly 1/N.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kindlab.netfilter.render import text  # noqa: E402
from kindlab.netfilter.walker import Packet, WalkResult, walk  # noqa: E402
from kindlab.parsers.iptables import Table, parse_iptables_save  # noqa: E402

CAPTURE = ROOT / "tests" / "fixtures" / "captured" / "v1.34.4-iptables-1000ep"
CLUSTER_IP = "10.104.152.136"
PORT = 80

T = TypeVar("T")


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The least CPU time of ``repeat`` runs of ``fn`` (seconds), and its last result.

    CPU time of this process, not wall time: the machine is shared, and what others
    run there would otherwise land in the figures.
    """
    best = math.inf
    result: T
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def printed_probability(remaining: int) -> str:
    """1/remaining as iptables-save prints it back.

    kube-proxy writes ``%0.10f`` of 1/remaining; the kernel keeps it as a count of
    2**-31 and iptables-save prints that with eleven decimals (1/3: 0.33333333349).
    """
    written = float(f"{1 / remaining:.10f}")
    return f"{round(written * 2**31) / 2**31:.11f}"


def service_chain(lines: list[str], cluster_ip: str) -> str:
    pattern = re.compile(rf"^-A KUBE-SERVICES -d {re.escape(cluster_ip)}/32 .* -j (KUBE-SVC-\S+)$")
    for line in lines:
        found = pattern.match(line)
        if found:
            return found[1]
    raise SystemExit(f"no KUBE-SERVICES rule for {cluster_ip} in the capture")


def synthesize(captured: str, endpoints: int) -> str:
    """The captured dump with the big Service rewritten for ``endpoints`` endpoints."""
    lines = captured.splitlines()
    svc = service_chain(lines, CLUSTER_IP)
    jumps = [line for line in lines if line.startswith(f"-A {svc} ") and "-j KUBE-SEP-" in line]
    seps = {line.rsplit("-j ", 1)[1] for line in jumps}
    for i, line in enumerate(jumps[:-1]):
        # The model of how probabilities are printed must hold on the real table.
        if f"--probability {printed_probability(len(jumps) - i)} " not in line:
            raise SystemExit(f"not the shape this script knows: {line}")
    first_sep = jumps[0].rsplit("-j ", 1)[1]
    template = [line for line in lines if line.startswith(f"-A {first_sep} ")]
    first_ip = re.search(r"-s (\S+)/32", template[0])
    if first_ip is None:
        raise SystemExit(f"{first_sep} has no -s IP/32 rule: not the shape this script knows")
    old_ip = first_ip[1]

    def sep_name(i: int) -> str:
        return f"KUBE-SEP-BENCH{i:07d}"

    def address(i: int) -> str:
        return f"10.{244 + i // 65024}.{1 + i // 254 % 256}.{1 + i % 254}"

    decls = [f":{sep_name(i)} - [0:0]" for i in range(endpoints)]
    rules: list[str] = []
    svc_rules: list[str] = []
    for i in range(endpoints):
        for line in template:
            rules.append(line.replace(first_sep, sep_name(i)).replace(old_ip, address(i)))
        remaining = endpoints - i
        random = (
            f"-m statistic --mode random --probability {printed_probability(remaining)} "
            if remaining > 1
            else ""
        )
        svc_rules.append(f"-A {svc} {random}-j {sep_name(i)}")

    out: list[str] = []
    for line in lines:
        chain = line[1:].split(" ", 1)[0] if line.startswith(":") else None
        rule_chain = line.split(" ", 2)[1] if line.startswith("-A ") else None
        if chain in seps or rule_chain in seps:
            continue
        if line in jumps:
            if line == jumps[0]:
                out.extend(svc_rules)
            continue
        if line == "COMMIT" and rules:
            out.extend(rules)
            rules = []
        out.append(line)
        if line.startswith(f":{svc} "):
            out.extend(decls)
    return "\n".join(out) + "\n"


def json_text(result: WalkResult) -> str:
    return json.dumps(result.to_json())


def check(result: WalkResult, endpoints: int) -> None:
    shares = {o.share for o in result.outcomes}
    if len(result.translations) != endpoints or shares != {Fraction(1, endpoints)}:
        raise SystemExit(f"{endpoints} endpoints: the walk found {len(result.outcomes)} outcomes")


def host() -> str:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, commit {commit or '?'}, "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"kernel {platform.release()}, {len(os.sched_getaffinity(0))} cores"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    captured = (CAPTURE / "iptables-save-t-nat.out").read_text()
    packet = Packet(dst=CLUSTER_IP, proto="tcp", dport=PORT)
    print(host())
    print(f"table: {CAPTURE.relative_to(ROOT)}/iptables-save-t-nat.out, rewritten for N")
    print(
        "| endpoints | nat rules | walk (s) | per endpoint (µs) | text (s) | json (s) | parse (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    tables: dict[int, tuple[Table, float]] = {}
    for n in args.endpoints:
        dump = synthesize(captured, n)
        parse_s, parsed = best_of(args.repeat, functools.partial(parse_iptables_save, dump))
        tables[n] = parsed.table("nat"), parse_s
    # The sizes take turns, so that a busy spell on the machine touches them all alike.
    walk_s = dict.fromkeys(args.endpoints, math.inf)
    results: dict[int, WalkResult] = {}
    for _ in range(args.repeat):
        for n, (nat, _) in tables.items():
            took, results[n] = best_of(1, functools.partial(walk, nat, "OUTPUT", packet))
            walk_s[n] = min(walk_s[n], took)
    for n, (nat, parse_s) in tables.items():
        result = results[n]
        check(result, n)
        text_s, _ = best_of(args.repeat, functools.partial(text, result))
        json_s, _ = best_of(args.repeat, functools.partial(json_text, result))
        rules = sum(len(c.rules) for c in nat.chains.values())
        print(
            f"| {n} | {rules} | {walk_s[n]:.4f} | {walk_s[n] / n * 1e6:.0f} | {text_s:.4f} "
            f"| {json_s:.4f} | {parse_s:.4f} |",
            flush=True,
        )
    walked = list(walk_s.items())
    for (n1, t1), (n2, t2) in itertools.pairwise(walked):
        exponent = math.log(t2 / t1) / math.log(n2 / n1)
        print(f"walk {n1} -> {n2} endpoints: time x{t2 / t1:.1f}, growth exponent {exponent:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
