"""Walk one packet through a parsed nat table, the way netfilter would.

Given the nat :class:`~kindlab.parsers.iptables.Table`, a hook (``OUTPUT`` for a
packet sent by the node itself, ``PREROUTING`` for one arriving from outside or
from a pod) and a :class:`Packet`, :func:`walk` follows the jumps, gotos and
RETURNs from the hook's chain and reports every way the walk can end.

It evaluates ``-s``/``-d`` (CIDR, negation), ``-p``, ``-i``/``-o``,
``--dport``/``--sport`` (ranges), ``-m multiport``, ``-m addrtype`` (against the
local addresses, when given), ``-m conntrack``/``-m state`` (nat only sees the
first packet of a connection, so its state is NEW) and ``-m statistic --mode
random``. A random rule splits the walk: it is taken with probability p and
passed with 1 - p, so each outcome's share is the product along its path;
three endpoints come out at exactly 1/3 each.

What it cannot know it does not guess. Marks (``-m mark``, ``-m connmark``), an
unknown source address, an unknown set of local addresses, other match modules:
the rule is *undetermined*. If its target cannot change the verdict (a MARK, or a
chain such as KUBE-MARK-MASQ that only marks), the walk notes it and goes on.
Otherwise both branches are walked; if they end the same way the note says so,
and if not, each outcome lists the assumption it depends on.

The walk is a loop over a worklist, not a recursion: a Service with 10000
endpoints splits it 10000 times and costs time in proportion. Each rule
evaluated and each chain end is one step; ``max_steps`` bounds them, and a walk
that spends its budget ends in :class:`WalkBudgetError`, naming the chain where
it stopped. The outcomes' paths share their common steps (a :class:`Link` to the
step before), so a walk that splits n ways holds n paths in linear memory.

Schema::

    WalkResult
      hook: str                      # "OUTPUT" | "PREROUTING"
      table: str                     # what was walked: "nat", "ip kube-proxy"
      packet: Packet
      path: (Step, ...)              # steps every outcome shares, in order
      outcomes: (Outcome, ...)       # every way the walk ends, in walk order
      notes: (str, ...)              # what could not be evaluated, and why
      translated: bool               # some outcome rewrites the destination
      determined: bool               # no outcome depends on an assumption
      translations: (Outcome, ...)   # the outcomes that DNAT (or REDIRECT)
      tree(trace=False): (TreeStep, ...)  # every step of every outcome, once
      to_json(): dict                # see kindlab.cli.walk for its shape
    Outcome
      verdict: str                   # "DNAT", "ACCEPT" (policy), "REJECT", "LOOP", ...
      to: str | None                 # "IP:PORT" for DNAT, else None
      reject_with: str | None        # for REJECT: what it answers, "icmp port-unreachable"
      share: Fraction                # exact effective probability
      probability: float             # float(share)
      last: Link | None              # the last step of its path
      last_traced: Link | None       # the last step of its trace
      path: (Step, ...)              # the full path of this outcome (built from last)
      trace: (Step, ...)             # path plus the rules that did not match
      assumptions: (str, ...)        # undetermined rules this outcome assumes
    Step
      chain: str
      rule: Rule | NftRule | None    # None for a chain's policy or its end
      matched: "match" | "no match" | "random: taken" | "random: not taken"
               | "undetermined" | "policy" | "end of chain"
      action: str                    # "jump KUBE-SERVICES", "DNAT to 10.244.0.5:8080", ...
      why: str                       # which conditions held, or which did not
      share: Fraction | None         # for random steps: p or 1 - p
      shown: str | None              # the rule as shown, when not its whole text
      enters: str | None             # the chain it goes on in, when not its rule's target
      raw, line_no, handle           # the rule's text; iptables-save line; nft handle
    TreeStep
      id: int                        # its index in tree(); steps come in walk order
      after: int | None              # id of the step before it, None for a first step
      position: int                  # 1-based place in the path of every outcome through it
      step: Step
      side: bool                     # one of several ways on from `after`, not the last one
      endings: (int, ...)            # indices in outcomes of those that end here

Example::

    >>> from kindlab.parsers.iptables import parse_iptables_save
    >>> nat = parse_iptables_save('''*nat
    ... :OUTPUT ACCEPT [0:0]
    ... :KUBE-SERVICES - [0:0]
    ... :KUBE-SVC-X - [0:0]
    ... -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
    ... -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X
    ... -A KUBE-SVC-X -m statistic --mode random --probability 0.50000000000 \
-j DNAT --to-destination 10.244.0.5:8080
    ... -A KUBE-SVC-X -j DNAT --to-destination 10.244.1.3:8080
    ... COMMIT
    ... ''').table("nat")
    >>> result = walk(nat, "OUTPUT", Packet(dst="10.96.0.10", proto="tcp", dport=80))
    >>> [(o.to, str(o.share)) for o in result.outcomes]
    [('10.244.0.5:8080', '1/2'), ('10.244.1.3:8080', '1/2')]
    >>> [s.chain for s in result.path]
    ['OUTPUT', 'KUBE-SERVICES']
    >>> [(t.position, t.step.matched, t.side) for t in result.tree()][2:]
    [(3, 'random: taken', True), (3, 'random: not taken', False), (4, 'match', False)]
    >>> walk(nat, "OUTPUT", Packet(dst="10.96.0.10", proto="icmp")).translated
    False
    >>> try:
    ...     walk(nat, "OUTPUT", Packet(dst="10.96.0.10", proto="tcp", dport=80), max_steps=2)
    ... except WalkBudgetError as e:
    ...     print(e)
    walk stopped in chain KUBE-SVC-X (line 7) after 2 steps, its whole budget: the table \
is very large or splits the walk too many ways
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

from kindlab.errors import KindlabError
from kindlab.parsers.iptables import Match, Option, Rule, Table
from kindlab.parsers.nft import NftRule

__all__ = [
    "DEFAULT_MAX_STEPS",
    "HOOKS",
    "Link",
    "Outcome",
    "Packet",
    "Step",
    "TreeStep",
    "WalkBudgetError",
    "WalkError",
    "WalkResult",
    "walk",
]

HOOKS = ("OUTPUT", "PREROUTING")
# A kube-proxy table costs 3 steps per endpoint (a Service of 10000 endpoints: 30007),
# so this leaves room for 60000; a table that splits without end gives up in seconds.
DEFAULT_MAX_STEPS = 200_000

StepKind = Literal[
    "match",
    "no match",
    "random: taken",
    "random: not taken",
    "undetermined",
    "policy",
    "end of chain",
]

# Targets that end the walk with a verdict.
_TERMINAL = frozenset(
    {"ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "NFQUEUE"}
)
# Targets that do something to the packet (or log it) and let it continue.
_CONTINUE = frozenset(
    {
        "MARK",
        "CONNMARK",
        "LOG",
        "NFLOG",
        "TRACE",
        "NOTRACK",
        "CT",
        "AUDIT",
        "CLASSIFY",
        "DSCP",
        "TOS",
        "TTL",
        "SET",
        "CHECKSUM",
    }
)
_TRANSLATING = frozenset({"DNAT", "REDIRECT"})
_PORT_MODULES = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
_PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp"}
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# The kernel stores a statistic probability as a 32-bit fraction, so kube-proxy's
# 1/3 comes back as 0.33333333349. Values this close to 1/k are read as 1/k.
_SNAP_TOLERANCE = Fraction(1, 10**9)
_MAX_DEPTH = 64


class WalkError(KindlabError, ValueError):
    """The walk cannot start (unknown hook, no such chain, a malformed packet) or go on."""


class WalkBudgetError(WalkError):
    """The walk spent its ``max_steps`` before every branch had ended.

    ``chain`` and ``line_no`` say where it stopped (``line_no`` is None at a
    chain's end), ``steps`` is the budget that was spent.
    """

    def __init__(self, chain: str, line_no: int | None, steps: int) -> None:
        self.chain = chain
        self.line_no = line_no
        self.steps = steps
        where = f"chain {chain}" + (f" (line {line_no})" if line_no is not None else "")
        super().__init__(
            f"walk stopped in {where} after {steps} steps, its whole budget: "
            "the table is very large or splits the walk too many ways"
        )


@dataclass(frozen=True, slots=True)
class Packet:
    """The first packet of a connection, as the nat table sees it.

    ``src``/``dport``/interfaces may be None: unknown. Rules that test an unknown
    field are reported as undetermined rather than guessed.
    """

    dst: str
    proto: str = "tcp"
    dport: int | None = None
    src: str | None = None
    sport: int | None = None
    in_interface: str | None = None
    out_interface: str | None = None

    def __post_init__(self) -> None:
        for name in ("dst", "src"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise WalkError(f"packet {name} must be an IP address, got {value!r}") from None
        for name in ("dport", "sport"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                raise WalkError(f"packet {name} must be 0..65535, got {port}")
        if not self.proto or self.proto != self.proto.lower():
            raise WalkError(
                f"packet proto must be a lower-case name such as tcp, got {self.proto!r}"
            )

    def describe(self) -> str:
        """``tcp 10.0.0.1 -> 10.96.0.10:80`` (unknown source shown as ``?``)."""
        dst = f"{self.dst}:{self.dport}" if self.dport is not None else self.dst
        src = self.src or "?"
        if self.sport is not None:
            src = f"{src}:{self.sport}"
        return f"{self.proto} {src} -> {dst}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Step:
    """One rule (or a chain's end or policy) on a walk's path."""

    chain: str
    rule: Rule | NftRule | None
    matched: StepKind
    action: str
    why: str
    share: Fraction | None = None
    # An nft rule can be long (a vmap of 1000 endpoints): a step that takes one of its
    # ways shows just that way, or every such step would repeat the whole rule.
    shown: str | None = None
    # The chain the walk goes on in, when that is not the rule's target: an nft verdict
    # map's element, or the next base chain once one has accepted the packet.
    enters: str | None = None

    @property
    def raw(self) -> str | None:
        """The rule's line as iptables-save printed it (counters stripped), or nft's text."""
        if self.shown is not None:
            return self.shown
        return self.rule.text if self.rule else None

    @property
    def line_no(self) -> int | None:
        return self.rule.line_no if isinstance(self.rule, Rule) else None

    @property
    def handle(self) -> int | None:
        """An nft rule's handle (None for iptables rules)."""
        return self.rule.handle if isinstance(self.rule, NftRule) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "rule": self.raw,
            "line": self.line_no,
            "handle": self.handle,
            "matched": self.matched,
            "action": self.action,
            "why": self.why,
            "share": str(self.share) if self.share is not None else None,
        }


# eq=False: two links are the same only if they are the same object, so that
# paths can be told apart where they part even when their steps look alike.
@dataclass(frozen=True, slots=True, eq=False)
class Link:
    """A step and the link before it. Outcomes whose paths share steps share links."""

    step: Step
    before: Link | None
    position: int  # 1 for the first step of a path

    def steps(self) -> tuple[Step, ...]:
        """The path that ends here, first step first."""
        out: list[Step] = []
        link: Link | None = self
        while link is not None:
            out.append(link.step)
            link = link.before
        return tuple(reversed(out))


def _extend(link: Link | None, step: Step) -> Link:
    return Link(step, link, link.position + 1 if link else 1)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One way the walk ends, with its exact share of the packets."""

    verdict: str
    to: str | None
    share: Fraction
    last: Link | None
    last_traced: Link | None = None
    assumptions: tuple[str, ...] = ()
    reject_with: str | None = None

    @property
    def path(self) -> tuple[Step, ...]:
        """The rules that matched (or were assumed to), in order."""
        return self.last.steps() if self.last else ()

    @property
    def trace(self) -> tuple[Step, ...]:
        """The path plus the rules that did not match, in order."""
        return self.last_traced.steps() if self.last_traced else ()

    @property
    def probability(self) -> float:
        return float(self.share)

    @property
    def translated(self) -> bool:
        return self.verdict in _TRANSLATING

    def to_json(self, last: int | None) -> dict[str, Any]:
        """JSON-ready; ``last`` is the id of its last step in the walk's tree."""
        return {
            "to": self.to,
            "probability": self.probability,
            "share": str(self.share),
            "verdict": self.verdict,
            "reject_with": self.reject_with,
            "assumptions": list(self.assumptions),
            "last": last,
        }


@dataclass(frozen=True, slots=True)
class TreeStep:
    """A step of the walk, listed once however many outcomes pass through it."""

    id: int
    after: int | None
    position: int
    step: Step
    side: bool
    endings: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WalkResult:
    """Everything :func:`walk` found; see the module docstring."""

    hook: str
    packet: Packet
    path: tuple[Step, ...]
    outcomes: tuple[Outcome, ...]
    notes: tuple[str, ...] = ()
    table: str = "nat"

    @property
    def translations(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.translated)

    @property
    def translated(self) -> bool:
        return any(o.translated for o in self.outcomes)

    @property
    def determined(self) -> bool:
        return not any(o.assumptions for o in self.outcomes)

    def tree(self, *, trace: bool = False) -> tuple[TreeStep, ...]:
        """Every step of every outcome's path (``trace``: its trace) once, in walk order.

        A step comes after the step it follows, and the ways on from a step come
        in the order of the outcomes; all but the last are ``side`` ways.
        """
        return _tree(self.outcomes, trace=trace)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the walk's steps once each, and the outcomes pointing at their last.

        ``outcomes`` lists only the translations (empty when none), ``endings``
        every outcome; see :mod:`kindlab.cli.walk` for the shape.
        """
        tree = self.tree()
        last = {k: t.id for t in tree for k in t.endings}
        return {
            "hook": self.hook,
            "table": self.table,
            "packet": self.packet.to_json(),
            "path": [s.to_json() for s in self.path],
            "translated": self.translated,
            "determined": self.determined,
            "outcomes": [
                o.to_json(last.get(k)) for k, o in enumerate(self.outcomes) if o.translated
            ],
            "endings": [o.to_json(last.get(k)) for k, o in enumerate(self.outcomes)],
            "steps": [
                {"id": t.id, "after": t.after, "position": t.position, **t.step.to_json()}
                for t in tree
            ],
            "notes": list(self.notes),
        }


def _tree_links(outcomes: Sequence[Outcome], *, trace: bool) -> list[Link]:
    """The links of every outcome's path, once each, in walk order.

    Outcomes come in the order of a depth-first walk, so the links an outcome
    adds to those of the outcomes before it always go at the end.
    """
    seen: set[Link] = set()
    order: list[Link] = []
    for o in outcomes:
        new: list[Link] = []
        link = o.last_traced if trace else o.last
        while link is not None and link not in seen:
            new.append(link)
            seen.add(link)
            link = link.before
        order.extend(reversed(new))
    return order


def _tree(outcomes: Sequence[Outcome], *, trace: bool) -> tuple[TreeStep, ...]:
    links = _tree_links(outcomes, trace=trace)
    ids = {link: n for n, link in enumerate(links)}
    last_way: dict[int | None, int] = {}  # step id (None: the start) -> its last way on
    for n, link in enumerate(links):
        last_way[ids[link.before] if link.before else None] = n
    endings: dict[int, list[int]] = {}
    for k, o in enumerate(outcomes):
        end = o.last_traced if trace else o.last
        if end is not None:
            endings.setdefault(ids[end], []).append(k)
    tree = []
    for n, link in enumerate(links):
        after = ids[link.before] if link.before else None
        tree.append(
            TreeStep(
                id=n,
                after=after,
                position=link.position,
                step=link.step,
                side=last_way[after] != n,
                endings=tuple(endings.get(n, ())),
            )
        )
    return tuple(tree)


def walk(
    nat: Table,
    hook: str,
    packet: Packet,
    *,
    local_addresses: Iterable[str] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> WalkResult:
    """Walk ``packet`` through ``nat`` from the built-in chain ``hook``.

    ``local_addresses``: the node's own addresses, for ``-m addrtype --dst-type
    LOCAL``; None means unknown (loopback addresses are always local).
    ``max_steps`` bounds the work: rules evaluated plus chain ends, over all branches.
    Raises :class:`WalkError` for an unknown hook or a hook chain missing from the
    table, and :class:`WalkBudgetError` when the budget is spent.
    """
    if hook not in HOOKS:
        raise WalkError(f"hook must be one of {', '.join(HOOKS)}, got {hook!r}")
    if max_steps < 1:
        raise WalkError(f"max_steps must be at least 1, got {max_steps}")
    chain = nat.chains.get(hook)
    if chain is None:
        raise WalkError(
            f"table {nat.name!r} has no chain {hook}; walk needs the nat table "
            "(iptables-save -t nat)"
        )
    if not chain.builtin:
        raise WalkError(f"chain {hook} in table {nat.name!r} is not a built-in chain")
    walker = _Walker(nat, hook, packet, local_addresses, max_steps)
    if nat.name != "nat":
        walker.note(f"table {nat.name!r} is not the nat table; walked it anyway")
    start = _State(stack=(_Frame(hook, 0, (hook,)),), share=Fraction(1))
    outcomes = tuple(walker.run(start))
    return WalkResult(
        hook=hook,
        packet=packet,
        path=_shared_path(outcomes),
        outcomes=outcomes,
        notes=tuple(walker.notes),
    )


# --- internals ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    chain: str
    index: int
    # Chains this frame has stood for: a goto replaces the frame, and a loop
    # through gotos must still be caught.
    lineage: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _State:
    stack: tuple[_Frame, ...]
    share: Fraction
    path: Link | None = None
    trace: Link | None = None
    assumptions: tuple[str, ...] = ()

    # Built by hand, not with dataclasses.replace: these run for every rule walked.
    def add(self, step: Step) -> _State:
        path = self.path if step.matched == "no match" else _extend(self.path, step)
        return _State(self.stack, self.share, path, _extend(self.trace, step), self.assumptions)

    def at(self, stack: tuple[_Frame, ...]) -> _State:
        return _State(stack, self.share, self.path, self.trace, self.assumptions)

    def times(self, p: Fraction) -> _State:
        return _State(self.stack, self.share * p, self.path, self.trace, self.assumptions)


@dataclass(frozen=True, slots=True)
class _Open:
    """Worklist marker: the outcomes that follow go to a fresh list."""


@dataclass(frozen=True, slots=True)
class _Join:
    """Worklist marker: both ways of an undetermined rule have ended; weigh them."""

    where: str
    why: str
    at: int  # where the "did not match" assumption goes in the outcomes' lists
    assume_no: str


_Work = _State | Outcome | _Open | _Join

Tri = Literal["yes", "no", "unknown"]


@dataclass(frozen=True, slots=True)
class _Check:
    state: Tri
    why: str
    probability: Fraction | None = None  # set when a random match is involved


@dataclass
class _Walker:
    table: Table
    hook: str
    packet: Packet
    local: Iterable[str] | None
    max_steps: int
    steps: int = 0
    _notes: dict[str, None] = field(default_factory=dict)  # an ordered set
    _local: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] | None = None
    _decides_cache: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.local is not None:
            try:
                self._local = frozenset(ipaddress.ip_address(a) for a in self.local)
            except ValueError as e:
                raise WalkError(f"local addresses must be IP addresses: {e}") from None

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    def note(self, text: str) -> None:
        self._notes[text] = None

    # -- the walk --

    def run(self, start: _State) -> list[Outcome]:
        """Walk every branch from ``start``, depth first, taken ways before passed ones.

        The worklist is a stack: a state to walk on, an outcome to collect, or a
        marker that opens (``_Open``) or weighs (``_Join``) the two ways of an
        undetermined rule, whose outcomes are collected apart until both have ended.
        """
        work: list[_Work] = [start]
        collected: list[list[Outcome]] = [[]]
        while work:
            item = work.pop()
            if isinstance(item, Outcome):
                collected[-1].append(item)
            elif isinstance(item, _Open):
                collected.append([])
            elif isinstance(item, _Join):
                no = collected.pop()
                yes = collected.pop()
                collected[-1].extend(self._join(item, yes, no))
            else:
                self._advance(item, work)
        (outcomes,) = collected
        return outcomes

    def _spend(self, chain: str, rule: Rule | None) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise WalkBudgetError(chain, rule.line_no if rule else None, self.max_steps)

    def _advance(self, state: _State, work: list[_Work]) -> None:
        """Walk ``state`` on until it ends or splits; push what comes of it on ``work``."""
        while True:
            frame = state.stack[-1]
            chain = self.table.chains[frame.chain]
            if frame.index >= len(chain.rules):
                self._spend(chain.name, None)
                if len(state.stack) == 1:
                    work.append(self._policy(state, "end of the chain"))
                    return
                caller = state.stack[-2].chain
                state = state.at(state.stack[:-1]).add(
                    Step(
                        chain.name, None, "end of chain", f"return to {caller}", "no rule ended it"
                    )
                )
                continue
            rule = chain.rules[frame.index]
            self._spend(chain.name, rule)
            next_rule = _Frame(frame.chain, frame.index + 1, frame.lineage)
            state = state.at((*state.stack[:-1], next_rule))
            check = self._evaluate(rule)
            if check.state == "no":
                state = state.add(Step(chain.name, rule, "no match", "skip", check.why))
                continue
            if check.state == "yes" and check.probability is None:
                state, ended = self._apply(state, rule, "match", check.why)
                if ended is not None:
                    work.append(ended)
                    return
                continue
            if check.state == "yes":
                going_on = self._random(state, rule, check, work)
            else:
                going_on = self._undetermined(state, rule, check, work)
            if going_on is None:
                return
            state = going_on

    def _random(self, state: _State, rule: Rule, check: _Check, work: list[_Work]) -> _State | None:
        """Split on a random rule (pushing both ways), or go on if its target cannot matter."""
        p = check.probability
        assert p is not None  # guarded by the caller
        if not self._decides(rule):
            self.note(
                f"line {rule.line_no}: random rule whose target {rule.target} cannot change "
                "the verdict; not branched"
            )
            return state.add(
                Step(rule.chain, rule, "random: taken", self._action(rule), check.why, p)
            )
        # Pushed in reverse: the taken way is walked first.
        if p < 1:
            work.append(
                state.times(1 - p).add(
                    Step(rule.chain, rule, "random: not taken", "continue", check.why, 1 - p)
                )
            )
        if p > 0:
            taken = state.times(p)
            taken, ended = self._apply(taken, rule, "random: taken", check.why, p)
            work.append(ended if ended is not None else taken)
        return None

    def _undetermined(
        self, state: _State, rule: Rule, check: _Check, work: list[_Work]
    ) -> _State | None:
        """Walk both ways of a rule it cannot decide, or go on if its target cannot matter."""
        where = f"line {rule.line_no} ({rule.chain})"
        if not self._decides(rule):
            self.note(
                f"{where}: undetermined ({check.why}); its target {rule.target} cannot "
                "change the verdict, so the walk goes on"
            )
            return state.add(
                Step(rule.chain, rule, "undetermined", f"{self._action(rule)}?", check.why)
            )
        assume_yes = f"{where} matched: {check.why}"
        taken = replace(state, assumptions=(*state.assumptions, assume_yes))
        if check.probability is not None:
            taken = taken.times(check.probability)
        taken, ended = self._apply(taken, rule, "undetermined", f"assumed to match: {check.why}")
        passed = state.add(Step(rule.chain, rule, "undetermined", "continue", check.why))
        join = _Join(
            where, check.why, len(state.assumptions), f"{where} did not match: {check.why}"
        )
        # Popped in reverse: open, the matched way, open, the passed way, join.
        work.extend([join, passed, _Open(), ended if ended is not None else taken, _Open()])
        return None

    def _join(self, join: _Join, yes: list[Outcome], no: list[Outcome]) -> list[Outcome]:
        """Keep one way if both end alike; both, each with its assumption, if not."""
        if _signature(yes) == _signature(no):
            self.note(
                f"{join.where}: undetermined ({join.why}); the verdict is the same either way"
            )
            return no
        self.note(f"{join.where}: undetermined ({join.why}); the outcomes depend on it")
        at = join.at
        return yes + [
            replace(o, assumptions=(*o.assumptions[:at], join.assume_no, *o.assumptions[at:]))
            for o in no
        ]

    def _apply(
        self,
        state: _State,
        rule: Rule,
        kind: StepKind,
        why: str,
        share: Fraction | None = None,
    ) -> tuple[_State, Outcome | None]:
        """Carry out the rule's target; an Outcome when the walk ends here."""
        target = rule.target
        action = self._action(rule)
        step = Step(rule.chain, rule, kind, action, why, share)
        if target is None:
            return state.add(step), None
        if target in self.table.chains:
            lineage = [c for f in state.stack for c in f.lineage]
            if target in lineage or len(state.stack) >= _MAX_DEPTH:
                self.note(
                    f"line {rule.line_no}: {target} is already being walked (a loop); "
                    "iptables would refuse this table"
                )
                return state, self._end(state.add(step), "LOOP", None)
            if rule.goto:
                top = state.stack[-1]
                frame = _Frame(target, 0, (*top.lineage, target))
                return state.add(step).at((*state.stack[:-1], frame)), None
            frame = _Frame(target, 0, (target,))
            return state.add(step).at((*state.stack, frame)), None
        if target == "RETURN":
            state = state.add(step)
            if len(state.stack) == 1:
                return state, self._policy(state, "RETURN from the built-in chain")
            return state.at(state.stack[:-1]), None
        if target == "DNAT":
            return state, self._end(state.add(step), "DNAT", self._dnat_to(rule))
        if target == "REDIRECT":
            self.note(f"line {rule.line_no}: REDIRECT sends the packet to this host itself")
            return state, self._end(state.add(step), "REDIRECT", None)
        if target == "REJECT":
            with_ = rule.target_option("--reject-with")
            return state, self._end(
                state.add(step), target, None, with_.value if with_ else "icmp-port-unreachable"
            )
        if target in _TERMINAL:
            return state, self._end(state.add(step), target, None)
        if target in _CONTINUE:
            return state.add(step), None
        self.note(f"line {rule.line_no}: unknown target {target}; the walk stops there")
        return state, self._end(state.add(step), target, None)

    def _policy(self, state: _State, why: str) -> Outcome:
        base = self.table.chains[state.stack[0].chain]
        policy = base.policy or "ACCEPT"
        step = Step(base.name, None, "policy", f"policy {policy}", why)
        return self._end(state.add(step), policy, None)

    def _end(
        self, state: _State, verdict: str, to: str | None, reject_with: str | None = None
    ) -> Outcome:
        return Outcome(
            verdict, to, state.share, state.path, state.trace, state.assumptions, reject_with
        )

    def _action(self, rule: Rule) -> str:
        target = rule.target
        if target is None:
            return "no target: counts and continues"
        if target in self.table.chains:
            return f"{'goto' if rule.goto else 'jump'} {target}"
        if target == "DNAT":
            return f"DNAT to {self._dnat_to(rule) or '?'}"
        opts = " ".join(_option_text(o) for o in rule.target_options)
        return f"{target} {opts}".strip()

    def _dnat_to(self, rule: Rule) -> str | None:
        to = rule.to_destination
        return None if to is None else _dnat_target(to, self.packet.dport)

    def _decides(self, rule: Rule) -> bool:
        """Could taking this rule change how the walk ends?"""
        target = rule.target
        if target is None or target in _CONTINUE:
            return False
        if target in self.table.chains and not rule.goto:
            return self._chain_decides(target)
        # RETURN and goto change which rules run next; the rest end the walk.
        return True

    def _chain_decides(self, name: str) -> bool:
        """Can a rule that ends the walk be reached from chain ``name``?"""
        if name in self._decides_cache:
            return self._decides_cache[name]
        seen = {name}
        todo = [name]
        decides = False
        while todo and not decides:
            for rule in self.table.chains[todo.pop()].rules:
                target = rule.target
                if target is None or target in _CONTINUE or target == "RETURN":
                    continue
                if target not in self.table.chains:
                    decides = True
                    break
                known = self._decides_cache.get(target)
                if known:
                    decides = True
                    break
                if known is None and target not in seen:
                    seen.add(target)
                    todo.append(target)
        if decides:
            self._decides_cache[name] = True
        else:
            # Nothing reachable from here decides, so nothing reachable from them does.
            self._decides_cache.update(dict.fromkeys(seen, False))
        return decides

    # -- matching --

    def _evaluate(self, rule: Rule) -> _Check:
        checks: list[_Check] = []
        pkt = self.packet
        if rule.source is not None:
            checks.append(_address("source", rule.source, rule.source_negated, pkt.src))
        if rule.destination is not None:
            checks.append(
                _address("destination", rule.destination, rule.destination_negated, pkt.dst)
            )
        if rule.protocol is not None:
            checks.append(_protocol(rule.protocol, rule.protocol_negated, pkt.proto))
        if rule.in_interface is not None:
            checks.append(
                _interface("-i", rule.in_interface, rule.in_interface_negated, pkt.in_interface)
            )
        if rule.out_interface is not None:
            checks.append(
                _interface("-o", rule.out_interface, rule.out_interface_negated, pkt.out_interface)
            )
        if rule.fragment is not None:
            # The first packet of a connection is never a non-first fragment.
            ok = not rule.fragment
            checks.append(_Check("yes" if ok else "no", "the packet is not a fragment"))
        for m in rule.matches:
            checks.append(self._match(m))
        check = _combine(checks)
        return check if check.why else replace(check, why="no conditions: every packet matches")

    def _match(self, m: Match) -> _Check:
        module = m.module
        pkt = self.packet
        if module == "comment":
            return _Check("yes", "")
        if module in _PORT_MODULES or module == "multiport":
            if module != "multiport" and pkt.proto != module:
                return _Check("no", f"-m {module} needs a {module} packet, this is {pkt.proto}")
            return _combine([self._port_option(module, o) for o in m.options])
        if module in ("icmp", "icmp6") and pkt.proto not in ("icmp", "ipv6-icmp", "icmpv6"):
            return _Check("no", f"-m {module} needs an ICMP packet, this is {pkt.proto}")
        if module == "statistic":
            return _statistic(m)
        if module == "addrtype":
            return _combine([self._addrtype(o) for o in m.options])
        if module in ("conntrack", "state"):
            return _combine([_ctstate(module, o) for o in m.options])
        if module in ("mark", "connmark"):
            return _Check(
                "unknown",
                f"-m {module} {' '.join(_option_text(o) for o in m.options)}: marks are set at "
                "run time, the walker does not guess them",
            )
        return _Check("unknown", f"-m {module} is not evaluated by the walker")

    def _port_option(self, module: str, opt: Option) -> _Check:
        pkt = self.packet
        names = {
            "--dport": "dport",
            "--destination-port": "dport",
            "--dports": "dport",
            "--destination-ports": "dport",
            "--sport": "sport",
            "--source-port": "sport",
            "--sports": "sport",
            "--source-ports": "sport",
            "--ports": "either",
        }
        if module == "tcp" and opt.name == "--syn":
            ok = not opt.negated
            return _Check("yes" if ok else "no", "the first packet of a connection is a SYN")
        which = names.get(opt.name)
        if which is None:
            return _Check("unknown", f"-m {module} {opt.name} is not evaluated by the walker")
        spec = opt.value
        if which == "either":
            # --ports matches when either port is in the list.
            hits = [_port_in(spec, p) if p is not None else None for p in (pkt.dport, pkt.sport)]
            either: Tri = "yes" if True in hits else "unknown" if None in hits else "no"
            either = _negate(either, opt.negated)
            if either == "unknown":
                return _Check("unknown", f"--ports {spec}: a port is not given")
            return _Check(either, f"ports {'match' if either == 'yes' else 'do not match'} {spec}")
        port = pkt.dport if which == "dport" else pkt.sport
        return _port(which, spec, opt.negated, port)

    def _addrtype(self, opt: Option) -> _Check:
        if opt.name not in ("--dst-type", "--src-type"):
            return _Check("unknown", f"-m addrtype {opt.name} is not evaluated by the walker")
        is_dst = opt.name == "--dst-type"
        value = self.packet.dst if is_dst else self.packet.src
        label = "destination" if is_dst else "source"
        states: list[Tri] = []
        for kind in opt.value.split(","):
            states.append(self._addr_is(kind.upper(), value, is_dst))
        if "yes" in states:
            state: Tri = "yes"
        elif "unknown" in states:
            state = "unknown"
        else:
            state = "no"
        state = _negate(state, opt.negated)
        neg = "not " if opt.negated else ""
        if state == "unknown":
            hint = "" if self._local is not None else "; pass the node's local addresses"
            return _Check("unknown", f"is {label} {value or '?'} {neg}{opt.value}? unknown{hint}")
        verb = "is" if state == "yes" else "is not"
        return _Check(state, f"{label} {value} {verb} {neg}{opt.value}".replace("  ", " "))

    def _addr_is(self, kind: str, value: str | None, is_dst: bool) -> Tri:
        if value is None:
            # A packet in OUTPUT was sent by this host, from one of its addresses.
            if kind == "LOCAL" and not is_dst and self.hook == "OUTPUT":
                return "yes"
            return "unknown"
        ip = ipaddress.ip_address(value)
        local: Tri
        if ip in _LOOPBACK or ip.is_loopback:
            local = "yes"
        elif self._local is None:
            local = "unknown"
        else:
            local = "yes" if ip in self._local else "no"
        if kind == "LOCAL":
            return local
        if kind == "MULTICAST":
            return "yes" if ip.is_multicast else "no"
        if kind == "UNICAST":
            # The kernel calls a local address LOCAL, not UNICAST.
            return "no" if ip.is_multicast else _negate(local, True)
        if kind == "BROADCAST" and str(ip) == "255.255.255.255":
            return "yes"
        return "unknown"


def _combine(checks: Sequence[_Check]) -> _Check:
    """All conditions of a rule must hold: a single "no" decides."""
    for c in checks:
        if c.state == "no":
            return c
    whys = [c.why for c in checks if c.why]
    probability: Fraction | None = None
    for c in checks:
        if c.probability is not None:
            probability = c.probability if probability is None else probability * c.probability
    unknown = [c.why for c in checks if c.state == "unknown"]
    if unknown:
        return _Check("unknown", "; ".join(unknown), probability)
    return _Check("yes", "; ".join(whys), probability)


def _negate(state: Tri, negated: bool) -> Tri:
    if not negated or state == "unknown":
        return state
    return "no" if state == "yes" else "yes"


@functools.lru_cache(maxsize=4096)
def _dnat_target(to: str, dport: int | None) -> str:
    """Where ``--to-destination TO`` sends a packet for ``dport``: "IP" keeps the port."""
    bare = to[1:-1] if to.startswith("[") and to.endswith("]") else to
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return to
    if dport is None:
        return str(ip)
    return f"[{ip}]:{dport}" if ip.version == 6 else f"{ip}:{dport}"


# Cached: a big table repeats the same few networks, and the packet's addresses, on every rule.
_ip_address = functools.lru_cache(maxsize=1024)(ipaddress.ip_address)


@functools.lru_cache(maxsize=4096)
def _ip_network(spec: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(spec, strict=False)


def _address(label: str, spec: str, negated: bool, value: str | None) -> _Check:
    flag = ("! " if negated else "") + ("-s" if label == "source" else "-d")
    try:
        net = _ip_network(spec)
    except ValueError:
        return _Check("unknown", f"{flag} {spec}: not an address the walker understands")
    if value is None:
        return _Check("unknown", f"{flag} {spec}: the packet's {label} address is not given")
    ip = _ip_address(value)
    inside = ip.version == net.version and ip in net
    state = _negate("yes" if inside else "no", negated)
    rel = "in" if inside else "not in"
    return _Check(state, f"{label} {ip} {rel} {spec}")


def _protocol(spec: str, negated: bool, proto: str) -> _Check:
    name = _PROTO_NUMBERS.get(spec, spec.lower())
    if name in ("all", "0"):
        state: Tri = "yes"
    else:
        aliases = {name, "icmpv6" if name == "ipv6-icmp" else name}
        state = "yes" if proto in aliases else "no"
    state = _negate(state, negated)
    bang = "! " if negated else ""
    return _Check(
        state, f"protocol {proto} {'matches' if state == 'yes' else 'is not'} {bang}{spec}"
    )


def _interface(flag: str, spec: str, negated: bool, value: str | None) -> _Check:
    bang = "! " if negated else ""
    if value is None:
        return _Check("unknown", f"{bang}{flag} {spec}: the interface is not given")
    hit = value.startswith(spec[:-1]) if spec.endswith("+") else value == spec
    state = _negate("yes" if hit else "no", negated)
    return _Check(
        state, f"interface {value} {'matches' if state == 'yes' else 'is not'} {bang}{spec}"
    )


def _port_in(spec: str, port: int) -> bool | None:
    """Is ``port`` in "80", "1000:2000", ":2000", "1000:" or "80,443,8000:8080"?"""
    for part in spec.split(","):
        lo, sep, hi = part.partition(":")
        try:
            if not sep:
                if port == int(lo):
                    return True
                continue
            if (int(lo) if lo else 0) <= port <= (int(hi) if hi else 65535):
                return True
        except ValueError:
            return None  # a service name such as "http": not resolved here
    return False


def _port(which: str, spec: str, negated: bool, port: int | None) -> _Check:
    bang = "! " if negated else ""
    if port is None:
        return _Check("unknown", f"{bang}--{which} {spec}: the packet's {which} is not given")
    hit = _port_in(spec, port)
    if hit is None:
        return _Check("unknown", f"--{which} {spec}: port names are not resolved")
    state = _negate("yes" if hit else "no", negated)
    return _Check(state, f"{which} {port} {'matches' if state == 'yes' else 'is not'} {bang}{spec}")


def _probability(text: str) -> tuple[Fraction, str]:
    exact = Fraction(text)
    if exact > 0:
        k = round(1 / exact)
        if k >= 1 and abs(exact - Fraction(1, k)) <= _SNAP_TOLERANCE:
            nominal = Fraction(1, k)
            if nominal != exact:
                return nominal, f"probability {text} (1/{k} after iptables' 32-bit rounding)"
            return nominal, f"probability {text}"
    return exact, f"probability {text}"


def _statistic(m: Match) -> _Check:
    mode = m.option("--mode")
    prob = m.option("--probability")
    if mode is None or mode.value != "random" or prob is None:
        return _Check(
            "unknown",
            f"-m statistic {' '.join(_option_text(o) for o in m.options)}: "
            "only --mode random is evaluated",
        )
    try:
        p, why = _probability(prob.value)
    except (ValueError, ZeroDivisionError):
        return _Check("unknown", f"--probability {prob.value!r} is not a number")
    p = min(max(p, Fraction(0)), Fraction(1))
    if prob.negated:
        p, why = 1 - p, f"! {why}"
    return _Check("yes", f"random, {why}", p)


def _ctstate(module: str, opt: Option) -> _Check:
    if opt.name not in ("--ctstate", "--state"):
        return _Check("unknown", f"-m {module} {opt.name} is not evaluated by the walker")
    states = {s.upper() for s in opt.value.split(",")}
    # nat is only consulted for the first packet of a connection: state NEW.
    state = _negate("yes" if "NEW" in states else "no", opt.negated)
    bang = "! " if opt.negated else ""
    verb = "is" if state == "yes" else "is not"
    return _Check(state, f"conntrack state NEW {verb} {bang}{opt.value}")


def _option_text(opt: Option) -> str:
    bang = "! " if opt.negated else ""
    return f"{bang}{opt.name} {opt.value}".strip()


def _signature(outcomes: Sequence[Outcome]) -> list[tuple[str, str, Fraction]]:
    return sorted((o.verdict, o.to or "", o.share) for o in outcomes)


def _shared_path(outcomes: Sequence[Outcome]) -> tuple[Step, ...]:
    """The steps every outcome's path begins with."""
    if not outcomes:
        return ()
    tree = _tree_links(outcomes, trace=False)
    ways: dict[Link | None, int] = {}
    for link in tree:
        ways[link.before] = ways.get(link.before, 0) + 1
    shared: list[Step] = []
    for link in tree:
        # The links come in walk order: the shared ones first, one way on from each.
        if ways.get(link.before) != 1:
            break
        shared.append(link.step)
        if ways.get(link, 0) != 1:
            break
    return tuple(shared)
