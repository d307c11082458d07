"""How a walk is shown: as text for a learner, and as a Mermaid flowchart for the report.

One rendering for every caller: ``kindlab walk``, ``kindlab explain``, the
evidence a lab check records and the report's charts, and for both walkers: an
iptables nat table (:mod:`kindlab.netfilter.walker`) and kube-proxy's nftables
table (:mod:`kindlab.netfilter.nft_walker`), whose steps name an nft rule by its
handle instead of a line. (JSON is
:meth:`kindlab.netfilter.walker.WalkResult.to_json`.)

Both draw the walk's tree (:meth:`~kindlab.netfilter.walker.WalkResult.tree`), in which a
step that many outcomes share appears once, so the output grows with the table,
not with the number of endpoints times the length of their paths. In the text, a
walk that splits shows each way but the last as a side branch, marked ``|`` at
the left, which ends before the walk goes on with the last way::

     4. KUBE-SVC-X [line 7]
        -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A
        random: taken (p=1/2): random, probability 0.50000000000 -> jump KUBE-SEP-A
     |   5. KUBE-SEP-A [line 5]
     |      ...
     |   => (1) DNAT to 10.244.0.5:8080, share 1/2 (50%)
     4. KUBE-SVC-X [line 7]
        ...
        random: not taken (p=1/2): random, probability 0.50000000000 -> continue

Example::

    >>> from kindlab.parsers.iptables import parse_iptables_save
    >>> from kindlab.netfilter.walker import Packet, walk
    >>> nat = parse_iptables_save('''*nat
    ... :OUTPUT ACCEPT [0:0]
    ... -A OUTPUT -d 10.96.0.10/32 -p tcp -m statistic --mode random --probability 0.5 \
-j DNAT --to-destination 10.244.0.5:8080
    ... -A OUTPUT -d 10.96.0.10/32 -p tcp -j DNAT --to-destination 10.244.1.3:8080
    ... COMMIT
    ... ''').table("nat")
    >>> result = walk(nat, "OUTPUT", Packet(dst="10.96.0.10", proto="tcp", dport=80))
    >>> print(text(result).split("Result: ")[1].splitlines()[0])
    translated: DNAT to 10.244.0.5:8080 1/2 (50%), 10.244.1.3:8080 1/2 (50%)
    >>> print(mermaid(result))  # doctest: +NORMALIZE_WHITESPACE
    flowchart LR
      n0["tcp ? -#gt; 10.96.0.10:80"]
      n1["nat OUTPUT"]
      n2["DNAT to 10.244.0.5:8080, share 1/2 (50%)"]
      n3["DNAT to 10.244.1.3:8080, share 1/2 (50%)"]
      n0 --> n1
      n1 --> n2
      n1 --> n3
"""

from __future__ import annotations

from fractions import Fraction

from kindlab.netfilter.walker import Outcome, Step, WalkResult
from kindlab.parsers.iptables import Rule

__all__ = ["describe_outcome", "format_share", "mermaid", "text"]


def format_share(share: Fraction) -> str:
    """``1/3 (33.33%)``; ``1 (100%)``.

    >>> format_share(Fraction(1, 3)), format_share(Fraction(1))
    ('1/3 (33.33%)', '1 (100%)')
    """
    pct = f"{float(share) * 100:.2f}".rstrip("0").rstrip(".")
    return f"{share} ({pct}%)"


def describe_outcome(outcome: Outcome) -> str:
    """``DNAT to 10.244.0.5:8080, share 1/3 (33.33%)``; ``no translation (policy ACCEPT), …``;
    ``REJECT with icmp port-unreachable, no translation, …``."""
    last = outcome.last.step if outcome.last else None
    if outcome.verdict == "DNAT":
        head = f"DNAT to {outcome.to}"
    elif outcome.verdict == "REDIRECT":
        head = "REDIRECT to this host"
    elif last is not None and last.matched == "policy":
        head = f"no translation (policy {outcome.verdict})"
    elif outcome.reject_with:
        head = f"{outcome.verdict} with {outcome.reject_with}, no translation"
    else:
        head = f"{outcome.verdict}, no translation"
    return f"{head}, share {format_share(outcome.share)}"


def text(result: WalkResult, *, verbose: bool = False) -> str:
    """The walk for a learner: each step once, side branches marked, then the result.

    ``verbose`` also shows the rules that did not match, and why.
    """
    lines = [f"Walking {result.packet.describe()} through {result.table} {result.hook}.", ""]
    levels: dict[int, int] = {}
    for t in result.tree(trace=verbose):
        level = (levels[t.after] if t.after is not None else 0) + (1 if t.side else 0)
        levels[t.id] = level
        pad = "|   " * level
        lines.extend(pad + line for line in _step(t.position, t.step))
        for k in t.endings:
            outcome = result.outcomes[k]
            lines.append(f"{pad}    => ({k + 1}) {describe_outcome(outcome)}")
            lines.extend(f"{pad}       assuming {a}" for a in outcome.assumptions)
    lines += ["", "Result: " + _summary(result)]
    if result.notes:
        lines += ["", "Notes:"]
        lines.extend(f"  - {n}" for n in result.notes)
    return "\n".join(lines) + "\n"


def _step(position: int, s: Step) -> list[str]:
    if s.line_no is not None:
        where = f"line {s.line_no}"
    elif s.handle is not None:
        where = f"handle {s.handle}"
    else:
        where = s.matched
    lines = [f"{position:>3}. {s.chain} [{where}]"]
    if s.raw is not None:
        lines.append(f"     {s.raw}")
    share = f" (p={s.share})" if s.share is not None else ""
    because = f": {s.why}" if s.why else ""
    lines.append(f"     {s.matched}{share}{because} -> {s.action}")
    return lines


def _summary(result: WalkResult) -> str:
    undetermined = "" if result.determined else "; depends on undetermined rules (see assumptions)"
    if not result.translated:
        verdicts = sorted({o.verdict for o in result.outcomes})
        return f"not translated ({', '.join(verdicts)})" + undetermined
    parts = [f"{o.to or 'this host'} {format_share(o.share)}" for o in result.translations]
    return "translated: DNAT to " + ", ".join(parts) + undetermined


def mermaid(result: WalkResult) -> str:
    """A Mermaid flowchart: the chains the walk goes through, and how each way ends.

    An edge is a rule in one chain that jumps (or goes) to another (or, in
    nftables, a base chain that lets the packet on to the next one), labelled
    with its share when it is random; each outcome hangs off the chain it ended in.
    """
    ids: dict[str, str] = {}
    nodes = ["flowchart LR"]
    edges: dict[str, None] = {}  # an ordered set

    def node(key: str, label: str) -> str:
        if key not in ids:
            ids[key] = f"n{len(ids)}"
            nodes.append(f'  {ids[key]}["{_mm(label)}"]')
        return ids[key]

    tree = result.tree()
    first = tree[0].step.chain if tree else result.hook

    def chain(name: str) -> str:
        return node(f"chain:{name}", f"{result.table} {name}" if name == first else name)

    edges[f"  {node('packet', result.packet.describe())} --> {chain(first)}"] = None
    for t in tree:
        s = t.step
        target = _entered(s)
        if target is None:
            continue
        label = format_share(s.share) if s.share is not None else _brief(s)
        if s.matched == "undetermined":
            label = f"assumed: {label}"
        edges[f'  {chain(s.chain)} -->|"{_mm(label)}"| {chain(target)}'] = None
    for k, outcome in enumerate(result.outcomes):
        last = outcome.last.step.chain if outcome.last else result.hook
        end = node(f"end:{k}", describe_outcome(outcome))
        edges[f"  {chain(last)} --> {end}"] = None
    return "\n".join(nodes + list(edges))


def _mm(label: str) -> str:
    return label.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _entered(step: Step) -> str | None:
    """The chain this step goes on in, if it is drawn as an edge."""
    if step.matched not in ("match", "random: taken", "undetermined", "policy"):
        return None
    if step.action.endswith("?"):  # undetermined, and not followed: it cannot matter
        return None
    if step.enters is not None:
        return step.enters
    if isinstance(step.rule, Rule) and step.action.startswith(("jump ", "goto ")):
        return step.rule.target
    return None


def _brief(step: Step) -> str:
    rule = step.rule
    if rule is None:
        # A base chain's end: what let the packet on ("policy accept").
        return step.action.split(",")[0] if step.enters else "all"
    if not isinstance(rule, Rule):
        # nft: what let the packet on to the next base chain ("dnat to …"), or the
        # conditions that held, as the walker put them, kept short.
        if ", then " in step.action:
            return step.action.split(", then ")[0]
        why = step.why.split("; ")[-1]
        if not why or why.startswith("no conditions"):
            return "all"
        return why if len(why) <= 60 else why[:57] + "..."
    parts = []
    if rule.destination:
        parts.append(f"{'! ' if rule.destination_negated else ''}-d {rule.destination}")
    if rule.protocol:
        parts.append(rule.protocol)
    if rule.dport:
        parts.append(f"dpt:{rule.dport}")
    return " ".join(parts) or "all"
