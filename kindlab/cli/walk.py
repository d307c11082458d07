"""``kindlab walk``: follow one packet through an ``iptables-save`` dump or an nft ruleset.

    kindlab walk DUMP --proto tcp|udp|icmp --dst IP [--dport N] [--src IP]
                      [--hook OUTPUT|PREROUTING] [--local IP ...] [--max-steps N]
                      [--verbose] [--json]

Reads the dump (``-`` for stdin) and tells its format from its content
(:func:`detect_format`): ``iptables-save`` output is walked through its nat
table (:mod:`kindlab.netfilter.walker`), ``nft -j list ruleset`` through
kube-proxy's ``ip kube-proxy`` table (:mod:`kindlab.netfilter.nft_walker`; its
steps name rules by handle, and its outcomes include REJECT and DROP). It prints,
for a learner, each rule the packet meets: the chain, the rule line, why it
matched and what it did, and where the walk splits, every way it ends, with its
share (see :mod:`kindlab.netfilter.render`). ``--verbose`` also shows the rules
that did not match, and why. ``--json`` prints one object instead
(:meth:`kindlab.netfilter.walker.WalkResult.to_json`)::

    {
      "hook": "OUTPUT",
      "packet": {"src": null, "dst": "10.96.45.17", "proto": "tcp", "dport": 80,
                 "sport": null, "in_interface": null, "out_interface": null},
      "path": [{"chain": "OUTPUT", "rule": "-A OUTPUT ...", "line": 71,
                "matched": "match", "action": "jump KUBE-SERVICES", "why": "...",
                "share": null}, ...],
      "translated": true,
      "determined": true,
      "outcomes": [{"to": "10.244.0.5:8080", "probability": 0.3333333333333333,
                    "share": "1/3", "verdict": "DNAT", "assumptions": [],
                    "last": 6}, ...],
      "endings": [...],            # every outcome, translated or not
      "steps": [{"id": 0, "after": null, "position": 1, "chain": "OUTPUT", ...}, ...],
      "notes": ["..."]
    }

``path`` is what every outcome shares; ``outcomes`` lists only translations
(empty when nothing is translated). ``steps`` holds every step of every
outcome's path once: an outcome's path is its ``last`` step, the step that one
comes ``after``, and so on back to a first step (``after`` null). Listing each
path whole would grow with the square of the endpoints.

Bad input is one line on stderr, exit 2. A walk that spends its budget of
``--max-steps`` (rules evaluated plus chain ends) stops with one line, exit 1.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal, TextIO

from kindlab.errors import KindlabError
from kindlab.netfilter.nft_walker import DEFAULT_MAX_STEPS as NFT_MAX_STEPS
from kindlab.netfilter.nft_walker import walk_nft
from kindlab.netfilter.render import text
from kindlab.netfilter.walker import (
    DEFAULT_MAX_STEPS,
    HOOKS,
    Packet,
    WalkBudgetError,
    WalkResult,
    walk,
)
from kindlab.parsers.iptables import parse_iptables_save
from kindlab.parsers.nft import parse_nft_json

__all__ = ["detect_format", "register_cli", "run"]

PROTOCOLS = ("tcp", "udp", "icmp", "sctp")
Format = Literal["iptables-save", "nft-json"]


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``walk`` subcommand to ``subparsers`` (from ``add_subparsers()``).

    The parser's default ``func`` is :func:`run`.
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "walk",
        help="follow a packet through an iptables-save dump or an `nft -j list ruleset`",
        description=(
            "Follow one packet through the nat table of an iptables-save dump, or through "
            "kube-proxy's `ip kube-proxy` table in `nft -j list ruleset` output (told "
            "apart by content), and show the chains and rules it meets, whether (and "
            "where) it is DNATed, and how the walk ends."
        ),
    )
    p.add_argument(
        "dump",
        metavar="DUMP",
        help="iptables-save or `nft -j list ruleset` output file, or - for stdin",
    )
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
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help=(
            "give up after N rules evaluated and chain ends (default "
            f"{DEFAULT_MAX_STEPS} for iptables, {NFT_MAX_STEPS} for nftables)"
        ),
    )
    p.add_argument("--verbose", "-v", action="store_true", help="also show rules that missed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


class _UsageError(KindlabError):
    """Input the user can fix."""


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    """Carry out ``kindlab walk``; returns the exit status.

    0, or 1 when the walk spent its budget, 2 on bad input, 141 (as for SIGPIPE)
    when whoever reads the output stops reading.
    """
    out = stdout or sys.stdout
    try:
        packet, hook = _packet(args)
        content = _read(args.dump)
        result = _walk(args, content, detect_format(content, args.dump), packet, hook)
    except WalkBudgetError as exc:
        print(f"kindlab walk: gave up: {exc}; raise --max-steps to go on", file=sys.stderr)
        return 1
    except KindlabError as exc:
        print(f"kindlab walk: error: {exc}", file=sys.stderr)
        return 2
    rendered = json.dumps(result.to_json(), indent=2) + "\n" if args.json else None
    try:
        out.write(rendered or text(result, verbose=args.verbose))
        out.flush()
    except BrokenPipeError:
        # The reader left (``| head``): stop quietly, as a tool killed by SIGPIPE would,
        # and keep the interpreter's last flush of stdout from failing again.
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


def detect_format(content: str, name: str = "the dump") -> Format:
    """Which tool wrote ``content``: ``iptables-save`` or ``nft -j list ruleset``.

    nft's JSON is one object with an ``nftables`` list; iptables-save output is lines
    of ``*table``, ``:chain``, ``-A`` and ``#`` comments. ``nft list ruleset``
    without ``-j`` is told apart, to say what to run instead.
    """
    head = content.lstrip()
    if not head:
        raise _UsageError(f"{name} is empty")
    if head.startswith("{"):
        if '"nftables"' not in head[:200]:
            raise _UsageError(
                f'{name} is JSON but not `nft -j list ruleset` output (no "nftables" list)'
            )
        return "nft-json"
    first = head.splitlines()[0]
    if first.startswith(("table ", "flush ruleset", "#!/usr/sbin/nft")):
        raise _UsageError(
            f"{name} looks like `nft list ruleset` text; kindlab walk reads its JSON form, "
            "`nft -j list ruleset`"
        )
    if first.startswith(("*", ":", "-A ", "#")):
        return "iptables-save"
    raise _UsageError(
        f"{name} is neither iptables-save output nor `nft -j list ruleset`: "
        f"it begins {first[:60]!r}"
    )


def _walk(
    args: argparse.Namespace, content: str, fmt: Format, packet: Packet, hook: str
) -> WalkResult:
    if fmt == "nft-json":
        return walk_nft(
            parse_nft_json(content),
            hook,
            packet,
            local_addresses=args.local,
            max_steps=args.max_steps or NFT_MAX_STEPS,
        )
    dump = parse_iptables_save(content)
    if "nat" not in dump.tables:
        have = ", ".join(dump.tables) or "none"
        raise _UsageError(f"{args.dump}: no nat table in the dump (tables: {have})")
    return walk(
        dump.table("nat"),
        hook,
        packet,
        local_addresses=args.local,
        max_steps=args.max_steps or DEFAULT_MAX_STEPS,
    )


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
