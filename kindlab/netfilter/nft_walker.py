"""Walk one packet through kube-proxy's nftables table, the way netfilter would.

The nftables counterpart of :mod:`kindlab.netfilter.walker`, with the same result types
(:class:`~kindlab.netfilter.walker.WalkResult`, its outcomes, steps and tree), so that
``kindlab walk``, ``kindlab explain`` and the report show both alike.

Given a parsed ``nft -j list ruleset`` (:mod:`kindlab.parsers.nft`), a hook
(``OUTPUT`` for a packet the node sends itself, ``PREROUTING`` for one arriving
from a pod or from outside) and a :class:`~kindlab.netfilter.walker.Packet`,
:func:`walk_nft` follows kube-proxy's table (``ip kube-proxy``, or ``ip6
kube-proxy`` for an IPv6 packet) as the kernel runs it:

- the table's base chains on the hook, by priority (kube-proxy 1.34 on output:
  ``filter-output-pre-dnat`` at -110, ``nat-output`` at -100, ``filter-output``
  at 0). An ``accept`` (a statement, or the chain's policy at its end) ends only
  that base chain; the packet goes on to the next. After prerouting the routing
  decision picks ``input`` (the destination is an address of the node) or
  ``forward``; unknown local addresses walk both ways.
- jumps, gotos and returns; ``vmap`` lookups in named maps (``@service-ips``,
  ``@no-endpoint-services``, ``@firewall-ips``) and inline ones; set membership
  (``ip daddr @cluster-ips``), prefixes, ranges, anonymous sets, ``ct state``,
  ``meta l4proto``, ``th dport``, ``fib daddr type local``.
- ``numgen random mod N vmap { 0 : goto endpoint-A, … }`` splits the walk:
  each element is taken with the share of the N values it covers, so n
  endpoints come out at exactly 1/n each.
- ``dnat`` rewrites the packet (the chains after it see the endpoint, as the
  kernel's do) and accepts; ``drop``, ``reject`` (with its type, e.g. ``icmp
  port-unreachable``) and a ``drop`` policy end the walk.

What it cannot know it does not guess, as the iptables walker: marks, an
unknown source address or port, members of sets filled at run time (session
affinity). A rule it cannot decide whose effect cannot change the verdict
(``jump mark-for-masquerade``, which only sets the mark that
``nat-postrouting`` masquerades on) is noted and passed; otherwise every way is
walked, and kept with the assumption it depends on unless all end alike.
postrouting is not walked (nor input/forward after an ``OUTPUT``): the walk ends
where the packet's destination and verdict are settled. Other tables on the
same hooks (iptables-nft's ``ip nat``, Docker's rules) are noted, not walked.

Outcomes: ``DNAT`` (translated and let through; ``to`` is where), ``ACCEPT``
(let through untouched), ``REJECT`` (``reject_with`` says what answers),
``DROP``, ``REDIRECT``, ``QUEUE``, ``LOOP``. The walk is a loop over a worklist
with a budget of ``max_steps`` (rules evaluated plus chain ends), ending in
:class:`~kindlab.netfilter.walker.WalkBudgetError`; bad input is a
:class:`~kindlab.netfilter.walker.WalkError`.

Example::

    >>> from kindlab.parsers.nft import parse_nft_json
    >>> rs = parse_nft_json('''{"nftables": [
    ...  {"table": {"family": "ip", "name": "kube-proxy"}},
    ...  {"set": {"family": "ip", "table": "kube-proxy", "name": "cluster-ips",
    ...   "type": "ipv4_addr", "elem": ["10.96.0.10"]}},
    ...  {"chain": {"family": "ip", "table": "kube-proxy", "name": "nat-output",
    ...   "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}},
    ...  {"chain": {"family": "ip", "table": "kube-proxy", "name": "filter-output",
    ...   "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
    ...  {"chain": {"family": "ip", "table": "kube-proxy", "name": "svc"}},
    ...  {"rule": {"family": "ip", "table": "kube-proxy", "chain": "nat-output", "handle": 5,
    ...   "expr": [{"match": {"op": "==", "right": 80,
    ...     "left": {"payload": {"protocol": "tcp", "field": "dport"}}}},
    ...    {"match": {"op": "==", "right": "10.96.0.10",
    ...     "left": {"payload": {"protocol": "ip", "field": "daddr"}}}},
    ...    {"goto": {"target": "svc"}}]}},
    ...  {"rule": {"family": "ip", "table": "kube-proxy", "chain": "svc", "handle": 6,
    ...   "expr": [{"vmap": {"key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}},
    ...    "data": {"set": [[0, {"goto": {"target": "ep-a"}}],
    ...                     [1, {"goto": {"target": "ep-b"}}]]}}}]}},
    ...  {"chain": {"family": "ip", "table": "kube-proxy", "name": "ep-a"}},
    ...  {"chain": {"family": "ip", "table": "kube-proxy", "name": "ep-b"}},
    ...  {"rule": {"family": "ip", "table": "kube-proxy", "chain": "ep-a", "handle": 7,
    ...   "expr": [{"dnat": {"addr": "10.244.0.5", "port": 8080}}]}},
    ...  {"rule": {"family": "ip", "table": "kube-proxy", "chain": "ep-b", "handle": 8,
    ...   "expr": [{"dnat": {"addr": "10.244.1.3", "port": 8080}}]}},
    ...  {"rule": {"family": "ip", "table": "kube-proxy", "chain": "filter-output", "handle": 9,
    ...   "expr": [{"match": {"op": "==", "right": "@cluster-ips",
    ...     "left": {"payload": {"protocol": "ip", "field": "daddr"}}}},
    ...    {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}}]}''')
    >>> result = walk_nft(rs, "OUTPUT", Packet(dst="10.96.0.10", proto="tcp", dport=80))
    >>> [(o.verdict, o.to, str(o.share)) for o in result.outcomes]
    [('DNAT', '10.244.0.5:8080', '1/2'), ('DNAT', '10.244.1.3:8080', '1/2')]
    >>> icmp = walk_nft(rs, "OUTPUT", Packet(dst="10.96.0.10", proto="icmp"))
    >>> [(o.verdict, o.reject_with) for o in icmp.outcomes], icmp.translated
    ([('REJECT', 'icmp port-unreachable')], False)
    >>> [s.chain for s in icmp.path]
    ['nat-output', 'filter-output']
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

from kindlab.netfilter.walker import (
    HOOKS,
    Link,
    Outcome,
    Packet,
    Step,
    StepKind,
    WalkBudgetError,
    WalkError,
    WalkResult,
    _extend,
    _shared_path,
    _signature,
)
from kindlab.parsers.nft import (
    NftChain,
    NftElement,
    NftRule,
    NftRuleset,
    NftSet,
    NftTable,
    kube_proxy_table,
    render_expr,
    render_statement,
)

__all__ = ["DEFAULT_MAX_STEPS", "walk_nft", "walk_table"]

# A Service's endpoint costs about 12 steps here (its way, the endpoint chain, and the
# filter chains after the DNAT): 10000 endpoints take some 120000.
DEFAULT_MAX_STEPS = 400_000

_Ip = ipaddress.IPv4Address | ipaddress.IPv6Address
Tri = Literal["yes", "no", "unknown"]

# Named priorities, for chains listed with one instead of a number.
_PRIORITIES = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}
_PROTO_NAMES = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp"}
_PORTED = frozenset({"tcp", "udp", "sctp", "udplite", "dccp"})
_LOOPBACK4 = ipaddress.ip_network("127.0.0.0/8")
# Statements that act on the packet (or count, or log) and let the rule go on.
_SIDE_EFFECTS = frozenset({"counter", "mangle", "log", "notrack", "set"})
_NAT = frozenset({"dnat", "snat", "masquerade", "redirect"})
_ENDS = frozenset({"accept", "drop", "reject", "queue", "return", "continue", "jump", "goto"})
_MAX_DEPTH = 64  # nft itself refuses more than 16 nested jumps


def walk_nft(
    ruleset: NftRuleset,
    hook: str,
    packet: Packet,
    *,
    local_addresses: Iterable[str] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> WalkResult:
    """Walk ``packet`` through kube-proxy's table in ``ruleset`` from ``hook``.

    The table is ``ip kube-proxy`` for an IPv4 destination, ``ip6 kube-proxy``
    for IPv6. ``local_addresses``: the node's own addresses (for the routing
    decision after prerouting and ``fib … type local``); None means unknown.
    Raises :class:`WalkError` when there is no such table, and
    :class:`WalkBudgetError` when the budget is spent.
    """
    family = "ip6" if ipaddress.ip_address(packet.dst).version == 6 else "ip"
    table = kube_proxy_table(ruleset, family)
    if table is None:
        have = ", ".join(f"{t.family} {t.name}" for t in ruleset.tables) or "none"
        raise WalkError(
            f"the ruleset has no `{family} kube-proxy` table (tables: {have}); "
            "is kube-proxy in nftables mode?"
        )
    others = [
        f"{t.family} {t.name} {c.name} (priority {c.prio})"
        for t in ruleset.tables
        if t is not table and t.family in (family, "inet")
        for c in t.chains
        if c.hook in _hooks_of(hook)
    ]
    result = walk_table(table, hook, packet, local_addresses=local_addresses, max_steps=max_steps)
    if others:
        note = f"not walked, other tables' chains on the same hooks: {', '.join(others)}"
        result = replace(result, notes=(*result.notes, note))
    return result


def walk_table(
    table: NftTable,
    hook: str,
    packet: Packet,
    *,
    local_addresses: Iterable[str] | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> WalkResult:
    """Walk ``packet`` through one nft table's base chains on ``hook``; see :func:`walk_nft`."""
    if hook not in HOOKS:
        raise WalkError(f"hook must be one of {', '.join(HOOKS)}, got {hook!r}")
    if max_steps < 1:
        raise WalkError(f"max_steps must be at least 1, got {max_steps}")
    walker = _Walker(table, hook, packet, local_addresses, max_steps)
    first = walker.bases("prerouting" if hook == "PREROUTING" else "output")
    if not first:
        raise WalkError(
            f"table {table.family} {table.name} has no base chain on the "
            f"{hook.lower()} hook; is this kube-proxy's table?"
        )
    if any(c.hook == "postrouting" for c in table.chains):
        walker.note(
            "postrouting is not walked: there kube-proxy's nat-postrouting masquerades "
            "the packets that mark-for-masquerade marked"
        )
    phases = ("route",) if hook == "PREROUTING" else ()
    start = _State(
        stack=(_Frame(first[0], 0, (first[0],)),),
        bases=first[1:],
        phases=phases,
        packet=packet,
        to=None,
        share=Fraction(1),
    )
    outcomes = tuple(walker.run(start))
    return WalkResult(
        hook=hook,
        packet=packet,
        path=_shared_path(outcomes),
        outcomes=outcomes,
        notes=tuple(walker.notes),
        table=f"{table.family} {table.name}",
    )


def _hooks_of(hook: str) -> tuple[str, ...]:
    return ("prerouting", "input", "forward") if hook == "PREROUTING" else ("output",)


# --- internals ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    chain: str
    index: int
    lineage: tuple[str, ...]  # chains this frame stood for (goto replaces a frame)


@dataclass(frozen=True, slots=True)
class _State:
    stack: tuple[_Frame, ...]  # stack[0] is the base chain being run
    bases: tuple[str, ...]  # base chains still to run on this hook
    phases: tuple[str, ...]  # what comes after this hook: "route" after prerouting
    packet: Packet  # as the chains see it now: after a DNAT, the endpoint
    to: str | None  # where a DNAT sent it
    share: Fraction
    path: Link | None = None
    trace: Link | None = None
    assumptions: tuple[str, ...] = ()

    def add(self, step: Step) -> _State:
        path = self.path if step.matched == "no match" else _extend(self.path, step)
        return _State(
            self.stack,
            self.bases,
            self.phases,
            self.packet,
            self.to,
            self.share,
            path,
            _extend(self.trace, step),
            self.assumptions,
        )

    def at(self, stack: tuple[_Frame, ...]) -> _State:
        return _State(
            stack,
            self.bases,
            self.phases,
            self.packet,
            self.to,
            self.share,
            self.path,
            self.trace,
            self.assumptions,
        )

    def times(self, p: Fraction) -> _State:
        return replace(self, share=self.share * p)

    def assuming(self, text: str) -> _State:
        return replace(self, assumptions=(*self.assumptions, text))


@dataclass(frozen=True, slots=True)
class _Open:
    """Worklist marker: the outcomes that follow go to a fresh list."""


@dataclass(frozen=True, slots=True)
class _Join:
    """Worklist marker: the ``ways`` ways of an undetermined choice have ended; weigh them.

    Every way but the last carries its assumption already; the last, the one kept
    when all end alike, gets ``last_assumption`` only if they do not.
    """

    where: str
    why: str
    ways: int
    at: int
    last_assumption: str


_Work = _State | Outcome | _Open | _Join


@dataclass(frozen=True, slots=True)
class _Check:
    state: Tri
    why: str


@dataclass(frozen=True, slots=True)
class _Numgen:
    mod: int
    offset: int

    def describe(self) -> str:
        return f"numgen random mod {self.mod}" + (f" offset {self.offset}" if self.offset else "")


_Value = _Ip | int | str | _Numgen | None


@dataclass(frozen=True, slots=True)
class _Way:
    """One way a verdict map can send the packet: its element's verdict, or none."""

    verdict: str | None  # "goto", "jump", "accept", "drop", ...; None: no element matched
    target: str | None
    element: str  # the element as nft prints it, or why none matched
    share: Fraction | None = None  # numgen: the share of values it covers
    state: Tri = "yes"
    shown: str | None = None  # a long inline map shown as the element taken


@dataclass(frozen=True, slots=True)
class _Rule:
    """A rule taken apart once: its conditions, what it does on the way, how it ends."""

    rule: NftRule
    matches: tuple[dict[str, Any], ...]  # "match" statements, and any the walker cannot read
    effects: tuple[dict[str, Any], ...]  # counter, mangle (marks), log, ...
    end: dict[str, Any] | None  # the verdict, vmap, reject or NAT statement


def _compile(rule: NftRule) -> _Rule:
    matches: list[dict[str, Any]] = []
    effects: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    for stmt in rule.expr:
        key = next(iter(stmt)) if isinstance(stmt, dict) and len(stmt) == 1 else None
        if end is not None:
            # Nothing after a verdict runs; nft does not even accept such a rule.
            break
        if key == "match":
            matches.append(stmt)
        elif key in _ENDS or key in _NAT or key == "vmap":
            end = stmt
        elif key in _SIDE_EFFECTS:
            effects.append(stmt)
        else:
            matches.append({"unknown": stmt})
    return _Rule(rule, tuple(matches), tuple(effects), end)


@dataclass
class _Walker:
    table: NftTable
    hook: str
    packet: Packet
    local: Iterable[str] | None
    max_steps: int
    steps: int = 0
    _notes: dict[str, None] = field(default_factory=dict)  # an ordered set
    _local: frozenset[_Ip] | None = None
    _chains: dict[str, NftChain] = field(default_factory=dict)
    _sets: dict[str, NftSet] = field(default_factory=dict)
    _rules: dict[tuple[str, int], _Rule] = field(default_factory=dict)
    _index: dict[str, dict[tuple[str, ...], NftElement] | None] = field(default_factory=dict)
    _decides_cache: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.local is not None:
            try:
                self._local = frozenset(ipaddress.ip_address(a) for a in self.local)
            except ValueError as e:
                raise WalkError(f"local addresses must be IP addresses: {e}") from None
        self._chains = {c.name: c for c in self.table.chains}
        self._sets = {s.name: s for s in self.table.sets}

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    def note(self, text: str) -> None:
        self._notes[text] = None

    def bases(self, hook: str) -> tuple[str, ...]:
        """The table's base chains on ``hook``, in the order the kernel runs them."""
        found = [c for c in self.table.chains if c.hook == hook]
        found.sort(key=lambda c: _priority(c.prio))
        return tuple(c.name for c in found)

    # -- the walk --

    def run(self, start: _State) -> list[Outcome]:
        work: list[_Work] = [start]
        collected: list[list[Outcome]] = [[]]
        while work:
            item = work.pop()
            if isinstance(item, Outcome):
                collected[-1].append(item)
            elif isinstance(item, _Open):
                collected.append([])
            elif isinstance(item, _Join):
                ways = collected[-item.ways :]
                del collected[-item.ways :]
                collected[-1].extend(self._join(item, ways))
            else:
                self._advance(item, work)
        (outcomes,) = collected
        return outcomes

    def _spend(self, chain: str) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise WalkBudgetError(chain, None, self.max_steps)

    def _advance(self, state: _State, work: list[_Work]) -> None:
        """Walk ``state`` on until it ends or splits; push what comes of it on ``work``."""
        while True:
            frame = state.stack[-1]
            chain = self._chains[frame.chain]
            if frame.index >= len(chain.rules):
                self._spend(chain.name)
                if len(state.stack) == 1:
                    self._leave(state, work, None, "end of the chain")
                    return
                caller = state.stack[-2].chain
                state = state.at(state.stack[:-1]).add(
                    Step(
                        chain.name, None, "end of chain", f"return to {caller}", "no rule ended it"
                    )
                )
                continue
            compiled = self._rule(chain, frame.index)
            self._spend(chain.name)
            state = state.at((*state.stack[:-1], replace(frame, index=frame.index + 1)))
            check = self._conditions(compiled, state.packet)
            rule = compiled.rule
            if check.state == "no":
                state = state.add(Step(chain.name, rule, "no match", "skip", check.why))
                continue
            ways = self._ways(compiled, state.packet, check)
            if all(w.state == "no" for w in ways):
                # A verdict map with no element for the packet: the rule does not apply.
                why = "; ".join(w.element for w in ways)
                state = state.add(Step(chain.name, rule, "no match", "skip", why))
                continue
            if any(w.share is not None for w in ways):
                self._random(state, compiled, ways, work)
                return
            if len(ways) > 1 or ways[0].state == "unknown":
                going_on = self._undetermined(state, compiled, ways, work)
                if going_on is None:
                    return
                state = going_on
                continue
            ended = self._take(state, compiled, ways[0], "match", work)
            if ended is not None:
                work.append(ended)
            return

    def _rule(self, chain: NftChain, index: int) -> _Rule:
        key = (chain.name, index)
        compiled = self._rules.get(key)
        if compiled is None:
            compiled = self._rules[key] = _compile(chain.rules[index])
        return compiled

    def _ways(self, compiled: _Rule, pkt: Packet, check: _Check) -> list[_Way]:
        """How the rule can end once its conditions hold (or might)."""
        end = compiled.end
        if end is not None and "vmap" in end:
            ways = self._vmap(end["vmap"], pkt)
            if check.why:
                ways = [replace(w, element=f"{check.why}; {w.element}") for w in ways]
        else:
            ways = [_Way(*_verdict_of(end), element=check.why)]
        if check.state == "unknown":
            ways = [replace(w, state="unknown") for w in ways]
            if all(w.verdict is not None for w in ways):
                ways.append(_Way(None, None, "", state="unknown"))
        return ways

    def _random(self, state: _State, compiled: _Rule, ways: list[_Way], work: list[_Work]) -> None:
        """Split on a numgen verdict map: each way with its share, taken ways first."""
        rule = compiled.rule
        rest = [w for w in ways if w.verdict is None]
        taken = [w for w in ways if w.verdict is not None]
        unknown = ways[0].state == "unknown"
        if unknown:
            self.note(
                f"{_where(rule)}: its conditions are undetermined; "
                "the walk assumes they hold for the random choice"
            )
        pushed: list[_Work] = []
        for w in rest:
            p = w.share or Fraction(0)
            if p > 0:
                pushed.append(
                    state.times(p).add(
                        Step(rule.chain, rule, "random: not taken", "continue", w.element, p)
                    )
                )
        for w in reversed(taken):
            p = w.share or Fraction(0)
            if p == 0:
                continue
            going = state.times(p)
            if unknown:
                going = going.assuming(f"{_where(rule)} matched")
            ended = self._take(going, compiled, w, "random: taken", pushed)
            if ended is not None:
                pushed.append(ended)
        work.extend(pushed)

    def _undetermined(
        self, state: _State, compiled: _Rule, ways: list[_Way], work: list[_Work]
    ) -> _State | None:
        """Walk every way of a rule it cannot decide, or go on if none can matter."""
        rule = compiled.rule
        where = _where(rule)
        why = "; ".join(dict.fromkeys(w.element for w in ways if w.element)) or "undetermined"
        deciding = [w for w in ways if w.verdict is not None and self._decides(w)]
        if not deciding:
            self.note(
                f"{where}: undetermined ({why}); what it does cannot change the verdict, "
                "so the walk goes on"
            )
            taken = next((w for w in ways if w.verdict is not None), None)
            action = _action(compiled, taken) + "?" if taken else "continue"
            return state.add(Step(rule.chain, rule, "undetermined", action, why))
        walked: list[list[_Work]] = []
        assumed: list[str] = []
        for n, w in enumerate(ways):
            if w.verdict is None:
                assumed.append(f"{where} did not match: {why}")
            else:
                assumed.append(f"{where} matched: {w.element or why}")
            # The last way carries its assumption only if the ways end differently.
            going = state if n == len(ways) - 1 else state.assuming(assumed[-1])
            sub: list[_Work] = []
            if w.verdict is None:
                sub.append(going.add(Step(rule.chain, rule, "undetermined", "continue", why)))
            else:
                ended = self._take(going, compiled, w, "undetermined", sub)
                if ended is not None:
                    sub.append(ended)
            walked.append(sub)
        self._split(
            work, _Join(where, why, len(walked), len(state.assumptions), assumed[-1]), walked
        )
        return None

    @staticmethod
    def _split(work: list[_Work], join: _Join, walked: list[list[_Work]]) -> None:
        """Push the ways of a choice so each is walked and collected apart, then weighed."""
        # Popped in reverse: open, the first way, open, the second, ..., join.
        work.append(join)
        for items in reversed(walked):
            work.extend(items)
            work.append(_Open())

    def _join(self, join: _Join, ways: list[list[Outcome]]) -> list[Outcome]:
        """Keep the last way if all end alike; every way, each with its assumption, if not."""
        if all(_signature(w) == _signature(ways[-1]) for w in ways):
            self.note(
                f"{join.where}: undetermined ({join.why}); the verdict is the same either way"
            )
            return ways[-1]
        self.note(f"{join.where}: undetermined ({join.why}); the outcomes depend on it")
        at = join.at
        last = [
            replace(o, assumptions=(*o.assumptions[:at], join.last_assumption, *o.assumptions[at:]))
            for o in ways[-1]
        ]
        return [o for w in ways[:-1] for o in w] + last

    def _decides(self, way: _Way) -> bool:
        """Could taking this way change how the walk ends?"""
        if way.verdict in ("continue", None):
            return False
        if way.verdict == "jump" and way.target is not None:
            return self._chain_decides(way.target)
        return True

    def _chain_decides(self, name: str) -> bool:
        """Can something that ends the walk be reached from chain ``name`` by jumps?"""
        if name in self._decides_cache:
            return self._decides_cache[name]
        seen = {name}
        todo = [name]
        decides = False
        while todo and not decides:
            chain = self._chains.get(todo.pop())
            if chain is None:
                decides = True
                break
            for index in range(len(chain.rules)):
                end = self._rule(chain, index).end
                verdict, target = _verdict_of(end)
                if verdict in (None, "continue", "return"):
                    continue
                if verdict != "jump" or target is None or self._decides_cache.get(target):
                    decides = True
                    break
                if target not in seen and target not in self._decides_cache:
                    seen.add(target)
                    todo.append(target)
        if decides:
            self._decides_cache[name] = True
        else:
            self._decides_cache.update(dict.fromkeys(seen, False))
        return decides

    # -- what a rule does --

    def _take(
        self,
        state: _State,
        compiled: _Rule,
        way: _Way,
        kind: StepKind,
        work: list[_Work],
    ) -> Outcome | None:
        """Carry out ``way``: push the state that goes on onto ``work``, or return the outcome.

        Called from :meth:`_advance` for a plain match, it pushes nothing and the caller
        goes on with the state pushed; so :meth:`_advance` pops it straight back.
        """
        rule = compiled.rule
        why = way.element
        step = Step(
            rule.chain,
            rule,
            kind,
            _action(compiled, way),
            why or "no conditions: every packet matches",
            way.share,
            shown=way.shown,
        )
        verdict, target = way.verdict, way.target
        if verdict in (None, "continue"):
            work.append(state.add(step))
            return None
        if verdict in ("jump", "goto") and target is not None:
            if target not in self._chains:
                self.note(f"{_where(rule)}: chain {target} is not in the table; the walk stops")
                return self._end(state.add(step), "UNKNOWN CHAIN", None)
            lineage = [c for f in state.stack for c in f.lineage]
            if target in lineage or len(state.stack) >= _MAX_DEPTH:
                self.note(f"{_where(rule)}: {target} is already being walked (a loop)")
                return self._end(state.add(step), "LOOP", None)
            step = replace(step, enters=target)
            if verdict == "goto":
                top = state.stack[-1]
                frame = _Frame(target, 0, (*top.lineage, target))
                work.append(state.add(step).at((*state.stack[:-1], frame)))
            else:
                work.append(state.add(step).at((*state.stack, _Frame(target, 0, (target,)))))
            return None
        if verdict == "return":
            if len(state.stack) == 1:
                self._leave(state.add(step), work, None, "return from the base chain")
                return None
            work.append(state.add(step).at(state.stack[:-1]))
            return None
        if verdict == "accept":
            self._leave(state, work, step, "accept")
            return None
        if verdict == "drop":
            return self._end(state.add(step), "DROP", None)
        if verdict == "reject":
            return self._end(state.add(step), "REJECT", None, _reject_with(compiled, self.table))
        if verdict == "queue":
            return self._end(state.add(step), "QUEUE", None)
        if verdict == "dnat":
            end = compiled.end or {}
            moved = _dnat(end.get("dnat") or {}, state.packet)
            if moved is None:
                self.note(f"{_where(rule)}: a dnat the walker cannot read; the walk stops")
                return self._end(state.add(step), "DNAT", None)
            packet, to = moved
            self._leave(replace(state, packet=packet, to=to), work, step, "dnat")
            return None
        if verdict == "redirect":
            self.note(f"{_where(rule)}: redirect sends the packet to this host itself")
            return self._end(state.add(step), "REDIRECT", None)
        if verdict in ("snat", "masquerade"):
            self._leave(state, work, step, verdict)
            return None
        self.note(f"{_where(rule)}: {verdict} is not followed by the walker; it stops there")
        return self._end(state.add(step), verdict.upper(), None)

    def _leave(self, state: _State, work: list[_Work], step: Step | None, how: str) -> None:
        """The packet leaves its base chain accepted: on to the next one, or the end.

        ``step`` (the rule that accepted, or None for the chain's policy) is added
        with the chain it leads to.
        """
        base = self._chains[state.stack[0].chain]
        policy = (base.policy or "accept").lower()
        if step is None and policy != "accept":
            # The chain ran out (or returned) and its policy decides.
            ended = state.add(Step(base.name, None, "policy", f"policy {policy}", how))
            work.append(self._end(ended, policy.upper(), None))
            return
        if state.bases:
            nxt = state.bases[0]
            on = replace(state, bases=state.bases[1:])
            self._enter_base(on, work, step, base.name, policy, how, nxt, "match", "")
            return
        if state.phases and state.phases[0] == "route":
            self._route(replace(state, phases=state.phases[1:]), work, step, base.name, how)
            return
        last = step or Step(base.name, None, "policy", f"policy {policy}", how)
        ended = state.add(last)
        work.append(self._end(ended, "DNAT" if ended.to else "ACCEPT", ended.to))

    def _enter_base(
        self,
        state: _State,
        work: list[_Work],
        step: Step | None,
        base: str,
        policy: str,
        how: str,
        nxt: str,
        kind: StepKind,
        why: str,
    ) -> None:
        chain = self._chains[nxt]
        then = f"then {nxt} ({chain.hook} hook, priority {chain.prio})"
        if step is None:
            because = f"{how}{'; ' + why if why else ''}"
            step = Step(base, None, "policy" if kind == "match" else kind, "", because)
            step = replace(step, action=f"policy {policy}, {then}")
        else:
            step = replace(step, action=f"{step.action}, {then}")
            if why:
                step = replace(step, why=f"{step.why}; {why}")
        work.append(state.add(replace(step, enters=nxt)).at((_Frame(nxt, 0, (nxt,)),)))

    def _route(
        self, state: _State, work: list[_Work], step: Step | None, base: str, how: str
    ) -> None:
        """After prerouting: input if the destination is the node's own, else forward."""
        dst = _ip(state.packet.dst)
        local = self._is_local(dst)
        ways: list[tuple[str, str]] = []
        if local != "no":
            ways.append(("input", f"{dst} is an address of this node"))
        if local != "yes":
            ways.append(("forward", f"{dst} is not an address of this node: it is forwarded"))
        targets = [(h, why, self.bases(h)) for h, why in ways]
        if len(targets) == 1:
            hook, why, bases = targets[0]
            self._into_hook(state, work, step, base, how, hook, why, bases, "match")
            return
        where = f"routing after {base}"
        question = f"is {dst} an address of this node? unknown; pass the node's local addresses"
        walked: list[list[_Work]] = []
        for n, (hook, why, bases) in enumerate(targets):
            going = state if n == len(targets) - 1 else state.assuming(f"{where}: {why}")
            sub: list[_Work] = []
            self._into_hook(going, sub, step, base, how, hook, question, bases, "undetermined")
            walked.append(sub)
        join = _Join(where, question, len(walked), len(state.assumptions), f"{where}: {why}")
        self._split(work, join, walked)

    def _into_hook(
        self,
        state: _State,
        work: list[_Work],
        step: Step | None,
        base: str,
        how: str,
        hook: str,
        why: str,
        bases: tuple[str, ...],
        kind: StepKind,
    ) -> None:
        policy = (self._chains[base].policy or "accept").lower()
        if bases:
            on = replace(state, bases=bases[1:])
            self._enter_base(on, work, step, base, policy, how, bases[0], kind, why)
            return
        last = step or Step(base, None, "policy", f"policy {policy}", how)
        last = replace(last, why=f"{last.why}; {why}; no {hook} chain in this table")
        ended = state.add(last)
        work.append(self._end(ended, "DNAT" if ended.to else "ACCEPT", ended.to))

    def _end(
        self, state: _State, verdict: str, to: str | None, reject_with: str | None = None
    ) -> Outcome:
        return Outcome(
            verdict, to, state.share, state.path, state.trace, state.assumptions, reject_with
        )

    # -- matching --

    def _conditions(self, compiled: _Rule, pkt: Packet) -> _Check:
        checks = [self._match(m, pkt) for m in compiled.matches]
        for c in checks:
            if c.state == "no":
                return c
        unknown = [c.why for c in checks if c.state == "unknown"]
        if unknown:
            return _Check("unknown", "; ".join(unknown))
        return _Check("yes", "; ".join(c.why for c in checks if c.why))

    def _match(self, stmt: dict[str, Any], pkt: Packet) -> _Check:
        if "unknown" in stmt:
            text = render_statement(stmt["unknown"])
            return _Check("unknown", f"{text}: not evaluated by the walker")
        m = stmt["match"]
        left, right, op = m.get("left"), m.get("right"), m.get("op", "==")
        needs = _transport(left)
        if needs is not None and needs != pkt.proto:
            # nft puts "meta l4proto PROTO" in front of a tcp/udp header match itself.
            return _Check("no", f"{render_expr(left)} needs a {needs} packet, this is {pkt.proto}")
        value, lhs = self._value(left, pkt)
        rhs = render_expr(right)
        if value == "new" and lhs == "ct state":
            lhs = "ct state (a connection's first packet)"
        if isinstance(value, _Numgen):
            return _Check("unknown", f"{lhs} {op} {rhs}: a random match outside a vmap")
        if op in ("==", "!=", "in") or (op == "==" and isinstance(right, dict)):
            return self._membership(value, lhs, right, rhs, negated=op == "!=")
        if op in ("<", ">", "<=", ">=") and isinstance(value, int) and isinstance(right, int):
            ok = {
                "<": value < right,
                ">": value > right,
                "<=": value <= right,
                ">=": value >= right,
            }[op]
            return _Check("yes" if ok else "no", f"{lhs} {value} {op if ok else 'not ' + op} {rhs}")
        if value is None:
            return _Check("unknown", f"{lhs} {op} {rhs}: {lhs} is not known")
        return _Check("unknown", f"{lhs} {op} {rhs}: not evaluated by the walker")

    def _membership(
        self, value: _Value, lhs: str, right: Any, rhs: str, *, negated: bool
    ) -> _Check:
        parts, dynamic = self._candidates(right)
        bang = "!= " if negated else ""
        if dynamic:
            return _Check(
                "unknown", f"{lhs} {bang}{rhs}: the set is filled at run time (session affinity)"
            )
        if value is None:
            if not parts and not negated:
                return _Check("no", f"{lhs} {rhs}: the set is empty")
            return _Check("unknown", f"{lhs} {bang}{rhs}: cannot tell")
        if isinstance(value, _Numgen):
            return _Check("unknown", f"{lhs} {bang}{rhs}: not evaluated by the walker")
        hits = [_holds(value, p) for p in parts]
        state: Tri = "yes" if True in hits else "unknown" if None in hits else "no"
        if negated and state != "unknown":
            state = "no" if state == "yes" else "yes"
        shown = _show(value)
        if state == "unknown":
            return _Check("unknown", f"{lhs} {shown} {bang}{rhs}: cannot tell")
        inside = state == "yes" if not negated else state == "no"
        rel = "in" if inside else "not in"
        if len(parts) == 1 and not rhs.startswith(("@", "{")) and "/" not in rhs:
            rel = "is" if inside else "is not"
        return _Check(state, f"{lhs} {shown} {rel} {rhs}")

    def _candidates(self, right: Any) -> tuple[list[str], bool]:
        """The values ``right`` stands for, as nft prints them; and whether it is dynamic."""
        if isinstance(right, str) and right.startswith("@"):
            s = self._sets.get(right[1:])
            if s is None:
                return [], False
            dynamic = bool({"dynamic", "timeout"} & set(s.flags))
            return [e.key[0] for e in s.elements if len(e.key) == 1], dynamic
        if isinstance(right, dict) and "set" in right:
            items = right["set"] if isinstance(right["set"], list) else [right["set"]]
            return [render_expr(i) for i in items], False
        if isinstance(right, list):  # ct state { established, related }
            return [render_expr(i) for i in right], False
        return [render_expr(right)], False

    def _value(self, expr: Any, pkt: Packet) -> tuple[_Value, str]:
        """What the packet holds for ``expr`` (None: not known), and how to name it."""
        name = render_expr(expr)
        if not isinstance(expr, dict) or len(expr) != 1:
            return None, name
        key, val = next(iter(expr.items()))
        if not isinstance(val, dict):
            return None, name
        if key == "payload":
            proto, fld = val.get("protocol"), val.get("field")
            if proto in ("ip", "ip6") and fld in ("daddr", "saddr"):
                addr = pkt.dst if fld == "daddr" else pkt.src
                if addr is None or (_ip(addr).version == 6) != (proto == "ip6"):
                    return None, name
                return _ip(addr), name
            if fld in ("dport", "sport"):
                if proto not in ("th", pkt.proto):
                    return f"not {proto}", name  # never equal to a port: no match
                if pkt.proto not in _PORTED:
                    return None, f"{name} (no ports in {pkt.proto}: nft reads header bytes)"
                return (pkt.dport if fld == "dport" else pkt.sport), name
            return None, name
        if key == "meta":
            meta = val.get("key")
            if meta in ("l4proto", "protocol") or meta == "nfproto":
                if meta == "nfproto":
                    return ("ipv6" if _ip(pkt.dst).version == 6 else "ipv4"), name
                return pkt.proto, name
            if meta in ("iifname", "iif"):
                return pkt.in_interface, name
            if meta in ("oifname", "oif"):
                return pkt.out_interface, name
            if meta == "mark":
                return None, f"{name} (marks are set at run time)"
            return None, name
        if key == "ct" and val.get("key") == "state":
            # nat and kube-proxy's filter rules act on a connection's first packet.
            return "new", name
        if key == "numgen" and val.get("mode") == "random":
            return _Numgen(int(val.get("mod", 1)), int(val.get("offset") or 0)), name
        if key == "fib" and val.get("result") == "type":
            flags = val.get("flags") or []
            flags = [flags] if isinstance(flags, str) else flags
            addr = pkt.dst if "daddr" in flags else pkt.src if "saddr" in flags else None
            if addr is None:
                return None, name
            local = self._is_local(_ip(addr))
            if local == "unknown":
                return None, f"{name} (is {addr} local? pass the node's local addresses)"
            return ("local" if local == "yes" else "unicast"), name
        return None, name

    def _is_local(self, ip: _Ip) -> Tri:
        if ip.is_loopback or (ip.version == 4 and ip in _LOOPBACK4):
            return "yes"
        if self._local is None:
            return "unknown"
        return "yes" if ip in self._local else "no"

    # -- verdict maps --

    def _vmap(self, vmap: dict[str, Any], pkt: Packet) -> list[_Way]:
        key, data = vmap.get("key"), vmap.get("data")
        parts = key["concat"] if isinstance(key, dict) and "concat" in key else [key]
        values = [self._value(p, pkt) for p in parts]
        label = " . ".join(_show(v) for v, _ in values)
        name = render_expr(data) if isinstance(data, str) else "the inline map"
        if len(values) == 1 and isinstance(values[0][0], _Numgen):
            return self._numgen(values[0][0], data)
        elements = self._elements(data)
        if elements is None:
            return [
                _Way(None, None, f"{name}: not a verdict map the walker reads", state="unknown")
            ]
        known = [v for v, _ in values]
        if all(_plain(v) for v in known):
            index = self._element_index(data, elements)
            if index is not None:
                hit = index.get(tuple(_norm(v) for v in known))
                if hit is None:
                    return [_Way(None, None, f"no element {label} in {name}", state="no")]
                return [_Way(hit.verdict, hit.target, f"{_key_text(hit)} in {name}")]
        maybe: list[NftElement] = []
        for e in elements:
            if len(e.key) != len(known):
                continue
            hits = [
                _holds(v, p) if v is not None else None for v, p in zip(known, e.key, strict=True)
            ]
            if False in hits:
                continue
            if all(hits):
                return [_Way(e.verdict, e.target, f"{_key_text(e)} in {name}")]
            maybe.append(e)
        if not maybe:
            return [_Way(None, None, f"no element {label} in {name}", state="no")]
        return [
            _Way(e.verdict, e.target, f"{label} might be {_key_text(e)} in {name}", state="unknown")
            for e in maybe
        ] + [_Way(None, None, f"{label} might be in no element of {name}", state="unknown")]

    def _numgen(self, gen: _Numgen, data: Any) -> list[_Way]:
        elements = self._elements(data)
        if elements is None or gen.mod < 1:
            return [
                _Way(
                    None, None, f"{gen.describe()}: a map the walker does not read", state="unknown"
                )
            ]
        ways: list[_Way] = []
        covered = 0
        values = range(gen.offset, gen.offset + gen.mod)
        # Each way's step shows the one element it took, or every step would repeat them all.
        long = len(elements) > 3
        for e in elements:
            lo_hi = _int_range(e.key[0]) if len(e.key) == 1 else None
            if lo_hi is None:
                continue
            lo, hi = max(lo_hi[0], values.start), min(lo_hi[1], values.stop - 1)
            count = max(0, hi - lo + 1)
            covered += count
            if count:
                share = Fraction(count, gen.mod)
                shown = f"{gen.describe()} vmap {{ {e.text}, … {len(elements)} elements }}"
                ways.append(
                    _Way(
                        e.verdict,
                        e.target,
                        f"{gen.describe()}: {e.key[0]}, {share} of values",
                        share,
                        shown=shown if long else None,
                    )
                )
        if covered < gen.mod:
            share = Fraction(gen.mod - covered, gen.mod)
            ways.append(_Way(None, None, f"{gen.describe()}: a value in no element", share))
        return ways

    def _elements(self, data: Any) -> tuple[NftElement, ...] | None:
        if isinstance(data, str) and data.startswith("@"):
            s = self._sets.get(data[1:])
            return s.elements if s is not None else ()
        if isinstance(data, dict) and "set" in data:
            return _inline_elements(json.dumps(data["set"], separators=(",", ":")))
        return None

    def _element_index(
        self, data: Any, elements: Sequence[NftElement]
    ) -> dict[tuple[str, ...], NftElement] | None:
        """Exact-key index of a named map (None when it has ranges or prefixes)."""
        if not isinstance(data, str):
            return None
        if data not in self._index:
            s = self._sets.get(data[1:])
            types = s.type if s is not None else ()
            index: dict[tuple[str, ...], NftElement] | None = {}
            for e in elements:
                if index is None or any(_interval(p) for p in e.key) or len(types) != len(e.key):
                    index = None
                    break
                index.setdefault(
                    tuple(_norm_typed(p, t) for p, t in zip(e.key, types, strict=True)), e
                )
            self._index[data] = index
        return self._index[data]


# --- helpers ---------------------------------------------------------------------


def _priority(prio: int | str | None) -> int:
    if isinstance(prio, int):
        return prio
    if prio is None:
        return 0
    text = str(prio).replace(" ", "")
    for name, base in _PRIORITIES.items():
        if text.startswith(name):
            rest = text[len(name) :]
            try:
                return base + (int(rest) if rest else 0)
            except ValueError:
                return base
    try:
        return int(text)
    except ValueError:
        return 0


def _transport(expr: Any) -> str | None:
    """The protocol a ``tcp dport``-style payload expression implies, if any."""
    if isinstance(expr, dict) and isinstance(expr.get("payload"), dict):
        proto = expr["payload"].get("protocol")
        if proto in _PORTED:
            return str(proto)
    return None


def _key_text(e: NftElement) -> str:
    """An element's key as nft prints it, with its comment (a Service's name), no value."""
    key = " . ".join(e.key)
    return f'{key} comment "{e.comment}"' if e.comment is not None else key


def _where(rule: NftRule) -> str:
    return f"{rule.chain} (handle {rule.handle})" if rule.handle is not None else rule.chain


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> _Ip:
    return ipaddress.ip_address(text)


def _show(value: _Value) -> str:
    if value is None:
        return "?"
    if isinstance(value, _Numgen):
        return value.describe()
    return str(value)


def _plain(value: _Value) -> bool:
    return value is not None and not isinstance(value, _Numgen)


def _norm(value: _Value) -> str:
    return str(value).lower()


def _norm_typed(part: str, type_name: str) -> str:
    """An element's key part as :func:`_norm` gives the packet's value of that type."""
    if type_name == "inet_proto":
        return _PROTO_NAMES.get(part, part.lower())
    if type_name == "inet_service":
        return str(int(part)) if part.isdigit() else part.lower()
    if type_name in ("ipv4_addr", "ipv6_addr"):
        try:
            return str(ipaddress.ip_address(part))
        except ValueError:
            return part.lower()
    return part.lower()


def _norm_text(part: str) -> str:
    name = _PROTO_NAMES.get(part)
    if name is not None:
        return name
    try:
        return str(ipaddress.ip_address(part))
    except ValueError:
        return part.lower()


def _interval(part: str) -> bool:
    if "/" in part:
        return True
    lo, sep, hi = part.partition("-")
    if not sep:
        return False
    return (lo.isdigit() and hi.isdigit()) or ("." in lo or ":" in lo)


def _int_range(part: str) -> tuple[int, int] | None:
    lo, sep, hi = part.partition("-")
    try:
        return (int(lo), int(hi)) if sep else (int(lo), int(lo))
    except ValueError:
        return None


def _holds(value: _Value, part: str) -> bool | None:
    """Is ``value`` ``part`` (a value, prefix or range as nft prints it)? None: cannot tell."""
    if value is None or isinstance(value, _Numgen):
        return None
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        try:
            if "/" in part:
                return value in ipaddress.ip_network(part, strict=False)
            lo, sep, hi = part.partition("-")
            if sep and ("." in lo or ":" in lo):
                a, b = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
                return a.version == value.version and a <= value <= b  # type: ignore[operator]
            return ipaddress.ip_address(part) == value
        except ValueError:
            return False
    if isinstance(value, int):
        bounds = _int_range(part)
        return bounds is not None and bounds[0] <= value <= bounds[1]
    return _norm_text(part) == value.lower()


def _verdict_of(end: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(verdict, target chain) of a rule's last statement; vmaps are looked up elsewhere."""
    if end is None:
        return None, None
    key, val = next(iter(end.items()))
    if key in ("jump", "goto"):
        return key, val.get("target") if isinstance(val, dict) else None
    if key == "vmap":
        return "vmap", None
    return key, None


@functools.lru_cache(maxsize=256)
def _inline_elements(items_json: str) -> tuple[NftElement, ...]:
    """The elements of an inline verdict map, as the parser gives a named map's."""
    out: list[NftElement] = []
    for item in json.loads(items_json):
        if not isinstance(item, list) or len(item) != 2:
            continue
        key, value = item
        verdict: str | None = None
        target: str | None = None
        if isinstance(value, dict) and len(value) == 1:
            verdict, v = next(iter(value.items()))
            target = v.get("target") if isinstance(v, dict) else None
        out.append(
            NftElement(
                key=(render_expr(key),), value=render_expr(value), verdict=verdict, target=target
            )
        )
    return tuple(out)


def _dnat(spec: dict[str, Any], pkt: Packet) -> tuple[Packet, str] | None:
    addr, port = spec.get("addr"), spec.get("port")
    if not isinstance(addr, str):
        return None
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    dport = int(port) if isinstance(port, int) else pkt.dport
    packet = replace(pkt, dst=str(ip), dport=dport)
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return packet, (f"{host}:{dport}" if dport is not None else str(ip))


def _reject_with(compiled: _Rule, table: NftTable) -> str:
    spec = (compiled.end or {}).get("reject")
    if isinstance(spec, dict) and spec.get("type"):
        kind = str(spec["type"])
        return f"{kind} {spec['expr']}" if spec.get("expr") else kind
    # A bare reject: nft's default for the table's family.
    return {"ip6": "icmpv6 port-unreachable", "inet": "icmpx port-unreachable"}.get(
        table.family, "icmp port-unreachable"
    )


def _action(compiled: _Rule, way: _Way) -> str:
    """What the rule does on this way: "goto service-…", "dnat to 10.244.0.5:8080", …"""
    effects = [render_statement(e) for e in compiled.effects if "counter" not in e]
    verdict = way.verdict
    if verdict is None:
        head = "continue"
    elif verdict in ("jump", "goto"):
        head = f"{verdict} {way.target}"
    elif verdict == "reject":
        end = compiled.end or {}
        head = render_statement(end) if "reject" in end else "reject"
    elif compiled.end is not None and verdict in _NAT:
        head = render_statement(compiled.end)
    else:
        head = verdict
    if effects and verdict is not None:
        return f"{'; '.join(effects)}; {head}"
    if effects:
        return "; ".join(effects)
    return head
