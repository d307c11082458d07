"""``kindlab walk``: follow one packet through an ``iptables-save`` dump.

    kindlab walk DUMP --proto tcp|udp|icmp --dst IP [--dport N] [--src IP]
                      [--hook OUTPUT|PREROUTING] [--local IP ...] [--verbose] [--json]

Reads the dump (``-`` for stdin), takes its nat table and prints, for a learner,
each rule the packet meets: the chain, the rule line, why it matched and what
it did; then every way the walk ends, with its share. ``--verbose`` also shows
the rules that did not match, and why. ``--json`` prints one object instead::

    {
      "hook": "OUTPUT",
      "packet": {"src": null, "dst": "10.96.45.17", "proto": "tcp", "dport": 80},
      "path": [{"chain": "OUTPUT", "rule": "-A OUTPUT ...", "line": 71,
                "matched": "match", "action": "jump KUBE-SERVICES", "why": "...",
                "share": null}, ...],
      "translated": true,
      "determined": true,
      "outcomes": [{"to": "10.244.0.5:8080", "probability": 0.3333333333333333,
                    "share": "1/3", "verdict": "DNAT", "assumptions": [],
                    "path": [...]}, ...],
      "endings": [...],            # every outcome, translated or not
      "notes": ["..."]
    }

``path`` is what every outcome shares; ``outcomes`` lists only translations
(empty when nothing is translated). Bad input is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kindlab.errors import KindlabError
from kindlab.parsers.iptables import parse_iptables_save
from kindlab.walker import HOOKS, Outcome, Packet, Step, WalkResult, format_share, walk

__all__ = ["register_cli", "render", "run"]

PROTOCOLS = ("tcp", "udp", "icmp", "sctp")


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``walk`` subcommand to ``subparsers`` (from ``add_subparsers()``).

    The parser's default ``func`` is :func:`run`.
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "walk",
        help="follow a packet through an iptables-save dump's nat table",
        description=(
            "Follow one packet through the nat table of an iptables-save dump and show "
            "the chains and rules it meets, and whether (and where) it is DNATed."
        ),
    )
    p.add_argument("dump", metavar="DUMP", help="iptables-save output file, or - for stdin")
    # Validated in run(), not by argparse, so that bad input is a single line.
    p.add_argument("--proto", required=True, help="tcp, udp, icmp or sctp")
    p.add_argument("--dst", required=True, help="destination IP, e.g. a ClusterIP")
    p.add_argument("--dport", help="destination port (tcp, udp, sctp)")
    p.add_argument("--src", help="source IP (default: unknown)")
    p.add_argument(
        "--hook",
        default="OUTPUT",
        help="OUTPUT (sent by the node itself, the default) or PREROUTING (arriving)",
    )
    p.add_argument(
        "--local",
        action="append",
        default=None,
        metavar="IP",
        help="an address of the node, for -m addrtype LOCAL (repeatable; default unknown)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="also show rules that missed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


class _UsageError(KindlabError):
    """Input the user can fix."""


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    """Carry out ``kindlab walk``; returns the exit status (0, or 2 on bad input)."""
    out = stdout or sys.stdout
    try:
        packet, hook = _packet(args)
        text = _read(args.dump)
        dump = parse_iptables_save(text)
        if "nat" not in dump.tables:
            have = ", ".join(dump.tables) or "none"
            raise _UsageError(f"{args.dump}: no nat table in the dump (tables: {have})")
        result = walk(dump.table("nat"), hook, packet, local_addresses=args.local)
    except KindlabError as exc:
        print(f"kindlab walk: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(render(result, verbose=args.verbose))
    return 0


def _packet(args: argparse.Namespace) -> tuple[Packet, str]:
    proto = str(args.proto).lower()
    if proto not in PROTOCOLS:
        raise _UsageError(f"--proto must be one of {', '.join(PROTOCOLS)}, got {args.proto!r}")
    hook = str(args.hook).upper()
    if hook not in HOOKS:
        raise _UsageError(f"--hook must be OUTPUT or PREROUTING, got {args.hook!r}")
    for flag, value in (("--dst", args.dst), ("--src", args.src)):
        if value is None:
            continue
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise _UsageError(f"{flag} must be an IP address, got {value!r}") from None
    for value in args.local or ():
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise _UsageError(f"--local must be an IP address, got {value!r}") from None
    dport: int | None = None
    if args.dport is not None:
        if proto == "icmp":
            raise _UsageError("--dport makes no sense with --proto icmp")
        try:
            dport = int(args.dport)
        except ValueError:
            raise _UsageError(f"--dport must be a number, got {args.dport!r}") from None
        if not 0 < dport <= 65535:
            raise _UsageError(f"--dport must be 1..65535, got {dport}")
    return Packet(dst=args.dst, proto=proto, dport=dport, src=args.src), hook


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _UsageError(f"cannot read {path}: {reason}") from None


# --- the learner's view -------------------------------------------------------


def render(result: WalkResult, *, verbose: bool = False) -> str:
    """The walk as text: shared steps, then each ending with its own steps."""
    lines = [f"Walking {result.packet.describe()} through nat {result.hook}.", ""]

    def steps_of(o: Outcome) -> tuple[Step, ...]:
        return o.trace if verbose else o.path

    shared = _common_prefix([steps_of(o) for o in result.outcomes])
    if len(result.outcomes) == 1:
        lines.append("Path:")
        lines.extend(_steps(steps_of(result.outcomes[0]), 1, "  "))
    else:
        lines.append("Every packet:")
        lines.extend(_steps(shared, 1, "  "))
        lines.append("")
        lines.append(f"Then the walk splits {len(result.outcomes)} ways:")
        for n, o in enumerate(result.outcomes, start=1):
            lines.append(f"  ({n}) {_ending(o)}")
            for a in o.assumptions:
                lines.append(f"      assuming {a}")
            lines.extend(_steps(steps_of(o)[len(shared) :], len(shared) + 1, "      "))
    lines.append("")
    lines.append("Result: " + _summary(result))
    if result.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {n}" for n in result.notes)
    return "\n".join(lines) + "\n"


def _steps(steps: tuple[Step, ...], first: int, indent: str) -> list[str]:
    lines: list[str] = []
    for n, s in enumerate(steps, start=first):
        where = f"line {s.line_no}" if s.line_no is not None else s.matched
        lines.append(f"{indent}{n:>2}. {s.chain} [{where}]")
        if s.raw is not None:
            lines.append(f"{indent}    {s.raw}")
        share = f" (p={s.share})" if s.share is not None else ""
        because = f": {s.why}" if s.why else ""
        lines.append(f"{indent}    {s.matched}{share}{because} -> {s.action}")
    return lines


def _ending(o: Outcome) -> str:
    if o.verdict == "DNAT":
        head = f"DNAT to {o.to}"
    elif o.verdict in ("ACCEPT", "DROP") and o.path and o.path[-1].rule is None:
        head = f"no translation (policy {o.verdict})"
    else:
        head = o.verdict
    return f"{head}, share {format_share(o.share)}"


def _summary(result: WalkResult) -> str:
    if not result.translated:
        verdicts = sorted({o.verdict for o in result.outcomes})
        return f"not translated ({', '.join(verdicts)})" + _undetermined(result)
    parts = [f"{o.to} {format_share(o.share)}" for o in result.translations]
    return "translated: DNAT to " + ", ".join(parts) + _undetermined(result)


def _undetermined(result: WalkResult) -> str:
    return "" if result.determined else "; depends on undetermined rules (see assumptions)"


def _common_prefix(paths: list[tuple[Step, ...]]) -> tuple[Step, ...]:
    if not paths:
        return ()
    n = 0
    for steps in zip(*paths, strict=False):
        if any(s != steps[0] for s in steps[1:]):
            break
        n += 1
    return paths[0][:n]
