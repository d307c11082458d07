"""Parser for ``iptables-save`` output (with or without ``-c`` counters).

Pure: text in, frozen dataclasses out. Every rule keeps its raw line and line
number, so a report can quote exactly what the node said.

Schema::

    IptablesDump
      tables: {name: Table}                 # "filter", "nat", "mangle", ...
    Table
      name, line_no
      chains: {name: Chain}                 # in the order they were declared
    Chain
      name, line_no, raw
      policy: "ACCEPT" | "DROP" | None      # None for user-defined chains
      counters: Counters | None             # [packets:bytes] of the policy line
      rules: (Rule, ...)                    # in order
    Rule
      chain, line_no, raw
      counters: Counters | None             # only with ``iptables-save -c``
      source, destination: str | None       # as printed, e.g. "10.244.0.0/16"
      source_negated, destination_negated: bool
      in_interface, out_interface: str | None  (+ *_negated)
      protocol: str | None  (+ protocol_negated)
      fragment: bool | None                 # -f True, ! -f False, absent None
      matches: (Match(module, options), ...)  # -m MODULE --opt value ...
      target: str | None                    # -j / -g; None for a counting rule
      goto: bool                            # True for -g
      target_options: (Option, ...)         # --to-destination, --set-xmark, ...
      accessors: text (raw minus counters), comment, dport, probability,
                 probability_text, to_destination,
                 match(module), option(name), target_option(name)
    Option
      name: str                             # with its dashes: "--dport"
      values: (str, ...)                    # "--mode random" -> ("random",)
      negated: bool                         # "! --dport 80"

Example::

    >>> dump = parse_iptables_save('''*nat
    ... :OUTPUT ACCEPT [0:0]
    ... :KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
    ... -A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.0.5:8080" \
-m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-7U6MWNJWR3SADOJA
    ... COMMIT
    ... ''')
    >>> rule = dump.table("nat").chain("KUBE-SVC-CDGGSHYLG3RE2FKL").rules[0]
    >>> rule.comment, rule.probability, rule.target, rule.line_no
    ('default/web:http -> 10.244.0.5:8080', 0.33333333349, 'KUBE-SEP-7U6MWNJWR3SADOJA', 4)
    >>> [m.module for m in rule.matches]
    ['comment', 'statistic']

Errors raise :class:`kindlab.errors.ParseError` naming the line and what was
expected: a rule outside a table, an unknown line, a missing ``COMMIT``, an
unterminated quote, an ``-A`` for a chain never declared, an option without
its value, ...
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kindlab.errors import ParseError

__all__ = [
    "Chain",
    "Counters",
    "IptablesDump",
    "Match",
    "Option",
    "Rule",
    "Table",
    "parse_iptables_save",
]

TOOL = "iptables-save"

_COUNTERS_RE = re.compile(r"\[(\d+):(\d+)\]")
_CHAIN_RE = re.compile(r":(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?")
_POLICIES = frozenset({"ACCEPT", "DROP", "-"})


@dataclass(frozen=True, slots=True)
class Counters:
    """Packet and byte counters, ``[packets:bytes]``."""

    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Option:
    """One ``--name value...`` of a match or a target, possibly negated."""

    name: str
    values: tuple[str, ...] = ()
    negated: bool = False

    @property
    def value(self) -> str:
        """The values joined by a space; ``""`` for a flag such as ``--random-fully``."""
        return " ".join(self.values)


@dataclass(frozen=True, slots=True)
class Match:
    """A match extension (``-m MODULE``) and its options, in order."""

    module: str
    options: tuple[Option, ...] = ()

    def option(self, *names: str) -> Option | None:
        """The first option called any of ``names`` (aliases such as
        ``--dport``/``--destination-port``), or None."""
        for opt in self.options:
            if opt.name in names:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``-A CHAIN ...`` line."""

    chain: str
    raw: str
    line_no: int
    counters: Counters | None = None
    source: str | None = None
    source_negated: bool = False
    destination: str | None = None
    destination_negated: bool = False
    in_interface: str | None = None
    in_interface_negated: bool = False
    out_interface: str | None = None
    out_interface_negated: bool = False
    protocol: str | None = None
    protocol_negated: bool = False
    fragment: bool | None = None
    matches: tuple[Match, ...] = ()
    target: str | None = None
    goto: bool = False
    target_options: tuple[Option, ...] = ()

    def match(self, module: str) -> Match | None:
        """The first ``-m module`` of this rule, or None."""
        for m in self.matches:
            if m.module == module:
                return m
        return None

    def option(self, *names: str) -> Option | None:
        """The first match option called any of ``names``, whatever its module."""
        for m in self.matches:
            opt = m.option(*names)
            if opt is not None:
                return opt
        return None

    def target_option(self, *names: str) -> Option | None:
        """The first target option called any of ``names``, or None."""
        for opt in self.target_options:
            if opt.name in names:
                return opt
        return None

    @property
    def text(self) -> str:
        """The rule as ``iptables-save`` (without ``-c``) prints it: ``raw`` minus counters."""
        line = self.raw.strip()
        if line.startswith("["):
            line = line.partition(" ")[2].lstrip()
        return line

    @property
    def comment(self) -> str | None:
        """The text of ``-m comment --comment``, unquoted."""
        m = self.match("comment")
        opt = m.option("--comment") if m else None
        return opt.value if opt else None

    @property
    def dport(self) -> str | None:
        """The ``--dport`` value as printed ("80", "30000:32767")."""
        opt = self.option("--dport", "--destination-port")
        return opt.value if opt else None

    @property
    def probability(self) -> float | None:
        """The ``-m statistic --probability`` value, as iptables printed it."""
        text = self.probability_text
        return float(text) if text is not None else None

    @property
    def probability_text(self) -> str | None:
        """The ``--probability`` value as text, for exact arithmetic (Fraction)."""
        m = self.match("statistic")
        opt = m.option("--probability") if m else None
        return opt.value if opt else None

    @property
    def to_destination(self) -> str | None:
        """The ``DNAT --to-destination`` value ("10.244.0.5:8080")."""
        opt = self.target_option("--to-destination")
        return opt.value if opt else None


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain: ``:NAME POLICY [packets:bytes]`` and its rules."""

    name: str
    policy: str | None
    line_no: int
    raw: str
    counters: Counters | None = None
    rules: tuple[Rule, ...] = ()

    @property
    def builtin(self) -> bool:
        """Built-in chains (PREROUTING, OUTPUT, ...) have a policy; user chains print ``-``."""
        return self.policy is not None


@dataclass(frozen=True, slots=True)
class Table:
    """A ``*name`` ... ``COMMIT`` block."""

    name: str
    line_no: int
    chains: Mapping[str, Chain] = field(default_factory=lambda: MappingProxyType({}))

    def chain(self, name: str) -> Chain:
        """The chain called ``name``; KeyError naming the chains there are otherwise."""
        try:
            return self.chains[name]
        except KeyError:
            raise KeyError(
                f"no chain {name!r} in table {self.name!r}; it has {', '.join(self.chains)}"
            ) from None

    def rules(self) -> Iterator[Rule]:
        """Every rule of the table, chain by chain."""
        for chain in self.chains.values():
            yield from chain.rules


@dataclass(frozen=True, slots=True)
class IptablesDump:
    """The whole ``iptables-save`` output."""

    tables: Mapping[str, Table] = field(default_factory=lambda: MappingProxyType({}))

    def table(self, name: str) -> Table:
        """The table called ``name``; KeyError naming the tables there are otherwise."""
        try:
            return self.tables[name]
        except KeyError:
            have = ", ".join(self.tables) or "none"
            raise KeyError(f"no table {name!r} in the dump; tables: {have}") from None


# --- tokenising ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    # A quoted token is always a value, even when it starts with "-" or is "!".
    quoted: bool


def _tokenise(line: str, line_no: int, raw: str) -> list[_Token]:
    """Split like iptables-restore does: whitespace separates, double quotes group,
    a backslash escapes the next character. iptables-save quotes with exactly
    these rules (xtables_save_string), and has no single-quote syntax, so shlex
    would be wrong on a comment holding an apostrophe."""
    tokens: list[_Token] = []
    buf: list[str] = []
    in_token = quoted = in_quotes = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            if i + 1 >= len(line):
                raise ParseError(TOOL, line_no, raw, "a character after the final backslash")
            buf.append(line[i + 1])
            in_token = True
            i += 2
            continue
        if ch == '"':
            in_quotes = not in_quotes
            in_token = quoted = True
        elif ch.isspace() and not in_quotes:
            if in_token:
                tokens.append(_Token("".join(buf), quoted))
                buf, in_token, quoted = [], False, False
        else:
            buf.append(ch)
            in_token = True
        i += 1
    if in_quotes:
        raise ParseError(TOOL, line_no, raw, 'a closing double quote (")')
    if in_token:
        tokens.append(_Token("".join(buf), quoted))
    return tokens


# --- rules --------------------------------------------------------------------

# Short and long spellings of the options iptables-save prints before -m/-j.
_BASIC = {
    "-s": "source",
    "--source": "source",
    "--src": "source",
    "-d": "destination",
    "--destination": "destination",
    "--dst": "destination",
    "-p": "protocol",
    "--protocol": "protocol",
    "-i": "in_interface",
    "--in-interface": "in_interface",
    "-o": "out_interface",
    "--out-interface": "out_interface",
}


class _RuleBuilder:
    """Mutable state while reading one rule; frozen into a Rule at the end."""

    def __init__(self, raw: str, line_no: int) -> None:
        self.raw = raw
        self.line_no = line_no
        self.basic: dict[str, tuple[str, bool]] = {}
        self.fragment: bool | None = None
        self.matches: list[tuple[str, list[Option]]] = []
        self.target: str | None = None
        self.goto = False
        self.target_options: list[Option] = []
        self.counters: Counters | None = None

    def fail(self, expected: str) -> ParseError:
        return ParseError(TOOL, self.line_no, self.raw, expected)


def _parse_rule(
    raw: str, line_no: int, tokens: list[_Token], counters: Counters | None
) -> tuple[str, _RuleBuilder]:
    b = _RuleBuilder(raw, line_no)
    b.counters = counters
    if len(tokens) < 2 or tokens[0].text not in ("-A", "--append") or tokens[0].quoted:
        raise b.fail("-A CHAIN after the counters")
    chain = tokens[1].text
    i = 2
    negate = False

    def take_values(start: int) -> tuple[tuple[str, ...], int]:
        j = start
        while j < len(tokens) and (
            tokens[j].quoted or (tokens[j].text != "!" and not tokens[j].text.startswith("-"))
        ):
            j += 1
        return tuple(t.text for t in tokens[start:j]), j

    def one_value(opt: str, at: int) -> str:
        if at >= len(tokens) or (not tokens[at].quoted and tokens[at].text.startswith("-")):
            raise b.fail(f"a value after {opt}")
        return tokens[at].text

    while i < len(tokens):
        tok = tokens[i]
        text = tok.text
        if tok.quoted:
            raise b.fail(f"an option, not the value {text!r}")
        if text == "!":
            if negate:
                raise b.fail("one '!' before an option, not two")
            negate = True
            i += 1
            continue
        if text in _BASIC:
            key = _BASIC[text]
            if key in b.basic:
                raise b.fail(f"{text} at most once")
            b.basic[key] = (one_value(text, i + 1), negate)
            i += 2
        elif text in ("-f", "--fragment"):
            b.fragment = not negate
            i += 1
        elif text in ("-m", "--match"):
            if negate:
                raise b.fail("'!' before an option, not before -m")
            b.matches.append((one_value(text, i + 1), []))
            i += 2
        elif text in ("-j", "--jump", "-g", "--goto"):
            if negate:
                raise b.fail(f"'!' before an option, not before {text}")
            if b.target is not None:
                raise b.fail("a single -j or -g target")
            b.target = one_value(text, i + 1)
            b.goto = text in ("-g", "--goto")
            i += 2
        elif text in ("-c", "--set-counters"):
            try:
                b.counters = Counters(int(tokens[i + 1].text), int(tokens[i + 2].text))
            except (ValueError, IndexError):
                raise b.fail("-c PACKETS BYTES") from None
            i += 3
        elif text.startswith("--"):
            values, j = take_values(i + 1)
            opt = Option(text, values, negate)
            if b.target is not None:
                b.target_options.append(opt)
            elif b.matches:
                b.matches[-1][1].append(opt)
            elif "protocol" in b.basic:
                # "-p tcp --dport 80" loads the tcp match implicitly; iptables-save
                # prints "-m tcp", but hand-written dumps often leave it out.
                b.matches.append((b.basic["protocol"][0], [opt]))
            else:
                raise b.fail(f"-m MODULE, -p PROTO or -j TARGET before {text}")
            i = j
        else:
            raise b.fail(
                f"a known option (-s, -d, -p, -i, -o, -f, -m, -j, -g, --...), not {text!r}"
            )
        if text != "!":
            negate = False
    if negate:
        raise b.fail("an option after the final '!'")
    return chain, b


def _freeze_rule(chain: str, b: _RuleBuilder) -> Rule:
    def basic(key: str) -> tuple[str | None, bool]:
        value, neg = b.basic.get(key, (None, False))
        return value, neg

    src, src_neg = basic("source")
    dst, dst_neg = basic("destination")
    iif, iif_neg = basic("in_interface")
    oif, oif_neg = basic("out_interface")
    proto, proto_neg = basic("protocol")
    return Rule(
        chain=chain,
        raw=b.raw,
        line_no=b.line_no,
        counters=b.counters,
        source=src,
        source_negated=src_neg,
        destination=dst,
        destination_negated=dst_neg,
        in_interface=iif,
        in_interface_negated=iif_neg,
        out_interface=oif,
        out_interface_negated=oif_neg,
        protocol=proto,
        protocol_negated=proto_neg,
        fragment=b.fragment,
        matches=tuple(Match(module, tuple(opts)) for module, opts in b.matches),
        target=b.target,
        goto=b.goto,
        target_options=tuple(b.target_options),
    )


# --- the dump -----------------------------------------------------------------


@dataclass
class _OpenTable:
    name: str
    line_no: int
    raw: str
    chains: dict[str, tuple[str | None, int, str, Counters | None]] = field(default_factory=dict)
    rules: dict[str, list[Rule]] = field(default_factory=dict)

    def close(self) -> Table:
        chains = {
            name: Chain(name, policy, line_no, raw, counters, tuple(self.rules[name]))
            for name, (policy, line_no, raw, counters) in self.chains.items()
        }
        return Table(self.name, self.line_no, MappingProxyType(chains))


def parse_iptables_save(text: str) -> IptablesDump:
    """Parse the output of ``iptables-save`` (or ``iptables-save -c``, ``-t TABLE``).

    See the module docstring for the schema and an example. Raises
    :class:`~kindlab.errors.ParseError` naming the line and what was expected.
    """
    tables: dict[str, Table] = {}
    current: _OpenTable | None = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            name = line[1:]
            if current is not None:
                raise ParseError(TOOL, line_no, raw, f"COMMIT to end table {current.name!r} first")
            if not name or any(c.isspace() for c in name):
                raise ParseError(TOOL, line_no, raw, "*TABLE with a one-word table name")
            if name in tables:
                raise ParseError(TOOL, line_no, raw, f"table {name!r} only once")
            current = _OpenTable(name, line_no, raw)
            continue
        if line == "COMMIT":
            if current is None:
                raise ParseError(TOOL, line_no, raw, "*TABLE before COMMIT")
            tables[current.name] = current.close()
            current = None
            continue
        if current is None:
            raise ParseError(TOOL, line_no, raw, "*TABLE before chains and rules")
        if line.startswith(":"):
            m = _CHAIN_RE.fullmatch(line)
            if m is None:
                raise ParseError(TOOL, line_no, raw, ":CHAIN POLICY [PACKETS:BYTES]")
            name, policy = m.group(1), m.group(2)
            if policy not in _POLICIES:
                raise ParseError(TOOL, line_no, raw, "a chain policy of ACCEPT, DROP or -")
            if name in current.chains:
                raise ParseError(TOOL, line_no, raw, f"chain {name!r} declared only once")
            counters = Counters(int(m.group(3)), int(m.group(4))) if m.group(3) else None
            current.chains[name] = (None if policy == "-" else policy, line_no, raw, counters)
            current.rules[name] = []
            continue
        counters = None
        body = line
        if line.startswith("["):
            head, _, body = line.partition(" ")
            cm = _COUNTERS_RE.fullmatch(head)
            if cm is None:
                raise ParseError(TOOL, line_no, raw, "[PACKETS:BYTES] counters before -A")
            counters = Counters(int(cm.group(1)), int(cm.group(2)))
        elif not line.startswith("-"):
            raise ParseError(
                TOOL, line_no, raw, "*TABLE, :CHAIN, -A CHAIN, [P:B] -A CHAIN, COMMIT or # comment"
            )
        chain, builder = _parse_rule(raw, line_no, _tokenise(body, line_no, raw), counters)
        if chain not in current.chains:
            raise ParseError(
                TOOL, line_no, raw, f"a ':{chain}' declaration in table {current.name!r} before -A"
            )
        current.rules[chain].append(_freeze_rule(chain, builder))
    if current is not None:
        raise ParseError(
            TOOL,
            current.line_no,
            current.raw,
            f"COMMIT to end table {current.name!r} before the end of the input",
        )
    return IptablesDump(MappingProxyType(tables))
