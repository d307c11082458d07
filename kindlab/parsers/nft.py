"""Parser for ``nft -j list ruleset`` (and ``nft -j list table ...``), with kube-proxy helpers.

Pure: JSON text in, frozen dataclasses out. Each object keeps its raw JSON
(re-serialised compactly) and rules keep their expression list; ``NftRule.text``
renders it close to what ``nft list`` prints (best effort, not byte-exact: nft
formats some values by datatype, e.g. marks in hex, which JSON does not carry).

kube-proxy's nftables mode (v1.31+, pkg/proxy/nftables/proxier.go) keeps all
its state in one table, ``ip kube-proxy`` (``ip6 kube-proxy`` for IPv6):
the ``cluster-ips`` set, the ``service-ips`` verdict map
(``10.96.0.10 . tcp . 80 : goto service-…``), the ``no-endpoint-services`` map
(``… : goto reject-chain`` for a Service without endpoints) and chains such as
``services``, ``reject-chain``, ``cluster-ips-check``. The helpers at the end
find those.

Schema::

    NftRuleset
      version: str | None                   # nft's, from metainfo: "1.1.3"
      json_schema_version: int | None
      tables: (NftTable, ...)
      accessors: table(family, name), kube_proxy_table(family="ip")
    NftTable
      family, name: str; handle: int | None; comment: str | None; flags: (str, ...)
      chains: (NftChain, ...); sets: (NftSet, ...)   # sets and maps, in nft's order
      raw: str
      accessors: chain(name), set(name), rules()
    NftChain
      family, table, name: str; handle: int | None
      type, hook: str | None; prio: int | str | None; policy: str | None  # base chains only
      comment: str | None
      rules: (NftRule, ...)
      raw: str
    NftRule
      family, table, chain: str; handle: int | None; comment: str | None
      expr_json: str                        # the "expr" list as compact JSON
      text: str                             # "ip daddr @cluster-ips counter packets 3 ..."
      raw: str
      accessors: expr (decoded list), counter, verdict, targets (chains jumped or gone to,
                 also inside "vmap { 0 : goto X }"), references ("@service-ips", ...),
                 rejects (bool)
    NftSet
      family, table, name: str; handle: int | None
      kind: "set" | "map"
      type: (str, ...)                      # ("ipv4_addr", "inet_proto", "inet_service")
      map_type: str | None                  # "verdict" for a vmap
      flags: (str, ...); comment: str | None
      elements: (NftElement, ...)
      raw: str
      accessors: elements_mentioning(ip)
    NftElement
      key: (str, ...)                       # ("10.96.0.10", "tcp", "80"); one part if no concat
      value: str | None                     # "goto service-…"; None in a set
      verdict: str | None                   # "goto", "jump", "drop", "accept", ...
      target: str | None                    # chain of a jump/goto
      comment: str | None
      counter: NftCounter | None
      raw: str
      accessors: text ("10.96.0.10 . tcp . 80 : goto …"), mentions(ip)
    NftCounter: packets, bytes

    kube_proxy_table(ruleset, family="ip") -> NftTable | None
    cluster_ip_entries(table, ip) -> ClusterIPEntries
      cluster_ips, service_ips, no_endpoint_services: (NftElement, ...)
    no_endpoint_reject(table, ip, protocol=None, port=None) -> NoEndpointReject | None
      element: NftElement                   # "10.96.100.5 . tcp . 80 comment …: goto reject-chain"
      rules: (NftRule, ...)                 # the rules of that chain that reject
      accessors: text

Example::

    >>> rs = parse_nft_json('{"nftables": [{"metainfo": {"version": "1.1.3"}},'
    ...   '{"table": {"family": "ip", "name": "kube-proxy", "handle": 2}},'
    ...   '{"map": {"family": "ip", "name": "service-ips", "table": "kube-proxy",'
    ...   ' "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict",'
    ...   ' "elem": [[{"concat": ["10.96.0.10", "tcp", 80]},'
    ...   ' {"goto": {"target": "service-X-ns/web/tcp/http"}}]]}}]}')
    >>> table = kube_proxy_table(rs)
    >>> [e.text for e in cluster_ip_entries(table, "10.96.0.10").service_ips]
    ['10.96.0.10 . tcp . 80 : goto service-X-ns/web/tcp/http']

Errors raise :class:`kindlab.errors.ParseError`. nft prints JSON on one line,
so for objects the "line" an error names is the object's position in the
``nftables`` list and the quoted line is the object itself: output that is not
JSON (``Operation not permitted``, ``Error: No such file or directory``), no
``nftables`` list, an object without family/table/name, a rule for a chain or
table that was never listed, a map element that is not a [key, value] pair.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from kindlab.errors import ParseError

__all__ = [
    "ClusterIPEntries",
    "NftChain",
    "NftCounter",
    "NftElement",
    "NftRule",
    "NftRuleset",
    "NftSet",
    "NftTable",
    "NoEndpointReject",
    "cluster_ip_entries",
    "kube_proxy_table",
    "no_endpoint_reject",
    "parse_nft_json",
    "render_expr",
    "render_statement",
]

TOOL = "nft -j"

KUBE_PROXY_TABLE = "kube-proxy"
CLUSTER_IPS_SET = "cluster-ips"
SERVICE_IPS_MAP = "service-ips"
NO_ENDPOINT_SERVICES_MAP = "no-endpoint-services"

_VERDICTS = ("accept", "drop", "continue", "return", "jump", "goto", "queue", "reject")
_NAT = ("dnat", "snat", "masquerade", "redirect")


@dataclass(frozen=True, slots=True)
class NftCounter:
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class NftElement:
    """One element of a set, or one key : value pair of a map."""

    key: tuple[str, ...]
    value: str | None = None
    verdict: str | None = None
    target: str | None = None
    comment: str | None = None
    counter: NftCounter | None = None
    raw: str = field(default="", compare=False)

    @property
    def text(self) -> str:
        key = " . ".join(self.key)
        if self.comment is not None:
            key += f' comment "{self.comment}"'
        return key if self.value is None else f"{key} : {self.value}"

    def mentions(self, ip: str) -> bool:
        """True when a part of the key is ``ip``, or a prefix or range that holds it."""
        want = ipaddress.ip_address(ip)
        return any(_part_holds(part, want) for part in self.key)


@dataclass(frozen=True, slots=True)
class NftSet:
    """A named set or map."""

    family: str
    table: str
    name: str
    kind: str
    type: tuple[str, ...] = ()
    map_type: str | None = None
    flags: tuple[str, ...] = ()
    comment: str | None = None
    handle: int | None = None
    elements: tuple[NftElement, ...] = ()
    raw: str = field(default="", compare=False)

    def elements_mentioning(self, ip: str) -> tuple[NftElement, ...]:
        return tuple(e for e in self.elements if e.mentions(ip))


@dataclass(frozen=True, slots=True)
class NftRule:
    """One rule; ``expr_json`` keeps its statements exactly as nft gave them."""

    family: str
    table: str
    chain: str
    expr_json: str
    text: str
    handle: int | None = None
    comment: str | None = None
    raw: str = field(default="", compare=False)

    @property
    def expr(self) -> list[Any]:
        """The statements, decoded afresh so callers cannot change the rule."""
        value: list[Any] = json.loads(self.expr_json)
        return value

    @property
    def counter(self) -> NftCounter | None:
        for stmt in self.expr:
            c = stmt.get("counter") if isinstance(stmt, dict) else None
            if isinstance(c, dict) and "packets" in c:
                return NftCounter(int(c["packets"]), int(c["bytes"]))
        return None

    @property
    def verdict(self) -> str | None:
        """The last verdict or NAT statement: "accept", "jump", "goto", "reject", "dnat", "vmap"."""
        found: str | None = None
        for stmt in self.expr:
            if isinstance(stmt, dict):
                key = next(iter(stmt), None)
                if key in _VERDICTS or key in _NAT or key == "vmap":
                    found = key
        return found

    @property
    def targets(self) -> tuple[str, ...]:
        """Chains this rule jumps or goes to, including those in an inline verdict map."""
        out: list[str] = []
        _collect_targets(self.expr, out)
        return tuple(dict.fromkeys(out))

    @property
    def references(self) -> tuple[str, ...]:
        """Named sets and maps this rule looks up ("@cluster-ips")."""
        out: list[str] = []
        _collect_refs(self.expr, out)
        return tuple(dict.fromkeys(out))

    @property
    def rejects(self) -> bool:
        return any(isinstance(s, dict) and "reject" in s for s in self.expr)


@dataclass(frozen=True, slots=True)
class NftChain:
    family: str
    table: str
    name: str
    handle: int | None = None
    type: str | None = None
    hook: str | None = None
    prio: int | str | None = None
    policy: str | None = None
    comment: str | None = None
    rules: tuple[NftRule, ...] = ()
    raw: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class NftTable:
    family: str
    name: str
    handle: int | None = None
    comment: str | None = None
    flags: tuple[str, ...] = ()
    chains: tuple[NftChain, ...] = ()
    sets: tuple[NftSet, ...] = ()
    raw: str = field(default="", compare=False)

    def chain(self, name: str) -> NftChain | None:
        for c in self.chains:
            if c.name == name:
                return c
        return None

    def set(self, name: str) -> NftSet | None:
        """The set or map called ``name``."""
        for s in self.sets:
            if s.name == name:
                return s
        return None

    def rules(self) -> tuple[NftRule, ...]:
        return tuple(r for c in self.chains for r in c.rules)


@dataclass(frozen=True, slots=True)
class NftRuleset:
    version: str | None
    json_schema_version: int | None
    tables: tuple[NftTable, ...]

    def table(self, family: str, name: str) -> NftTable | None:
        for t in self.tables:
            if t.family == family and t.name == name:
                return t
        return None

    def kube_proxy_table(self, family: str = "ip") -> NftTable | None:
        return self.table(family, KUBE_PROXY_TABLE)


# -- parsing ------------------------------------------------------------------------------


@dataclass(slots=True)
class _TableBuilder:
    obj: dict[str, Any]
    raw: str
    chains: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    rules: dict[str, list[NftRule]] = field(default_factory=dict)
    sets: list[NftSet] = field(default_factory=list)


def parse_nft_json(text: str) -> NftRuleset:
    """Parse ``nft -j list ruleset`` or ``nft -j list table FAMILY NAME``."""
    stripped = text.strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError as e:
        lines = stripped.splitlines() or [""]
        bad = lines[min(e.lineno, len(lines)) - 1]
        raise ParseError(TOOL, e.lineno, bad, 'nft JSON output {"nftables": [...]}') from None
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ParseError(TOOL, 1, stripped[:300], 'a JSON object with an "nftables" list')

    version: str | None = None
    schema: int | None = None
    tables: dict[tuple[str, str], _TableBuilder] = {}
    for pos, item in enumerate(items, start=1):
        if not isinstance(item, dict) or len(item) != 1:
            raise ParseError(TOOL, pos, _compact(item), "an object with one key")
        kind, obj = next(iter(item.items()))
        raw = _compact(item)
        if kind == "metainfo":
            version = obj.get("version")
            schema = obj.get("json_schema_version")
            continue
        if kind not in ("table", "chain", "rule", "set", "map"):
            # Named counters, quotas, flowtables, ...: nothing the lab reads yet.
            continue
        if not isinstance(obj, dict):
            raise ParseError(TOOL, pos, raw, f"a {kind} object")
        family = _str(obj, "family", pos, raw, kind)
        if kind == "table":
            name = _str(obj, "name", pos, raw, kind)
            tables[(family, name)] = _TableBuilder(obj, raw)
            continue
        table_name = _str(obj, "table", pos, raw, kind)
        builder = tables.get((family, table_name))
        if builder is None:
            raise ParseError(
                TOOL, pos, raw, f"table {family} {table_name} listed before its {kind}"
            )
        if kind == "chain":
            builder.chains[_str(obj, "name", pos, raw, kind)] = (obj, raw)
        elif kind == "rule":
            chain = _str(obj, "chain", pos, raw, kind)
            if chain not in builder.chains:
                raise ParseError(TOOL, pos, raw, f"chain {chain!r} listed before its rules")
            builder.rules.setdefault(chain, []).append(_rule(obj, raw, pos))
        else:
            builder.sets.append(_set(kind, obj, raw, pos))

    return NftRuleset(version, schema, tuple(_table(b) for b in tables.values()))


def _table(b: _TableBuilder) -> NftTable:
    chains = tuple(
        NftChain(
            family=obj["family"],
            table=obj["table"],
            name=name,
            handle=obj.get("handle"),
            type=obj.get("type"),
            hook=obj.get("hook"),
            prio=obj.get("prio"),
            policy=obj.get("policy"),
            comment=obj.get("comment"),
            rules=tuple(b.rules.get(name, ())),
            raw=raw,
        )
        for name, (obj, raw) in b.chains.items()
    )
    return NftTable(
        family=b.obj["family"],
        name=b.obj["name"],
        handle=b.obj.get("handle"),
        comment=b.obj.get("comment"),
        flags=_tuple(b.obj.get("flags")),
        chains=chains,
        sets=tuple(b.sets),
        raw=b.raw,
    )


def _rule(obj: dict[str, Any], raw: str, pos: int) -> NftRule:
    expr = obj.get("expr", [])
    if not isinstance(expr, list):
        raise ParseError(TOOL, pos, raw, 'a rule with an "expr" list')
    comment = obj.get("comment")
    text = " ".join(render_statement(s) for s in expr)
    if comment is not None:
        text += f' comment "{comment}"'
    return NftRule(
        family=obj["family"],
        table=obj["table"],
        chain=obj["chain"],
        expr_json=_compact(expr),
        text=text,
        handle=obj.get("handle"),
        comment=comment,
        raw=raw,
    )


def _set(kind: str, obj: dict[str, Any], raw: str, pos: int) -> NftSet:
    name = _str(obj, "name", pos, raw, kind)
    elements = tuple(_element(kind, e, raw, pos) for e in obj.get("elem", ()))
    map_type = obj.get("map")
    return NftSet(
        family=obj["family"],
        table=obj["table"],
        name=name,
        kind=kind,
        type=_tuple(obj.get("type")),
        map_type=" . ".join(map_type) if isinstance(map_type, list) else map_type,
        flags=_tuple(obj.get("flags")),
        comment=obj.get("comment"),
        handle=obj.get("handle"),
        elements=elements,
        raw=raw,
    )


def _element(kind: str, item: Any, raw: str, pos: int) -> NftElement:
    value: Any = None
    if kind == "map":
        if not isinstance(item, list) or len(item) != 2:
            raise ParseError(TOOL, pos, raw, "map elements as [key, value] pairs")
        item, value = item
    comment: str | None = None
    counter: NftCounter | None = None
    if isinstance(item, dict) and "elem" in item:
        # {"elem": {"val": KEY, "comment": ..., "counter": ..., "timeout": ...}}
        wrapper = item["elem"]
        comment = wrapper.get("comment")
        c = wrapper.get("counter")
        if isinstance(c, dict) and "packets" in c:
            counter = NftCounter(int(c["packets"]), int(c["bytes"]))
        item = wrapper.get("val")
    if isinstance(item, dict) and "concat" in item:
        key = tuple(render_expr(p) for p in item["concat"])
    else:
        key = (render_expr(item),)
    verdict: str | None = None
    target: str | None = None
    if isinstance(value, dict) and len(value) == 1:
        vkey, vval = next(iter(value.items()))
        if vkey in _VERDICTS:
            verdict = vkey
            target = vval.get("target") if isinstance(vval, dict) else None
    return NftElement(
        key=key,
        value=None if value is None else render_expr(value),
        verdict=verdict,
        target=target,
        comment=comment,
        counter=counter,
        raw=_compact([item, value] if kind == "map" else item),
    )


def _str(obj: dict[str, Any], key: str, pos: int, raw: str, kind: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ParseError(TOOL, pos, raw, f"a {kind} with a {key!r} string")
    return value


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- rendering ----------------------------------------------------------------------------

_BINOPS = {"&": "&", "|": "|", "^": "^", "<<": "<<", ">>": ">>"}


def render_statement(stmt: Any) -> str:
    """One statement of a rule's ``expr`` list, as ``nft list`` would roughly print it."""
    if not isinstance(stmt, dict) or len(stmt) != 1:
        return _compact(stmt)
    key, val = next(iter(stmt.items()))
    if key == "match" and isinstance(val, dict):
        left, right, op = val.get("left"), val.get("right"), val.get("op", "==")
        lhs = render_expr(left)
        rhs = _mark_hex(right) if _is_mark(left) else render_expr(right)
        if op in ("==", "in") and not (isinstance(left, dict) and set(left) & set(_BINOPS)):
            return f"{lhs} {rhs}"
        return f"{lhs} {op} {rhs}"
    if key == "counter":
        if isinstance(val, dict) and "packets" in val:
            return f"counter packets {val['packets']} bytes {val['bytes']}"
        return f"counter name {render_expr(val)}"
    if key in ("jump", "goto") and isinstance(val, dict):
        return f"{key} {val.get('target')}"
    if key in ("accept", "drop", "continue", "return", "notrack"):
        return str(key)
    if key == "reject":
        if not isinstance(val, dict) or val.get("expr") in (None, "port-unreachable"):
            return "reject"
        reason = val["expr"]
        return f"reject with {val.get('type', 'icmp')} {reason}"
    if key in ("dnat", "snat", "redirect", "masquerade") and isinstance(val, dict | type(None)):
        return _render_nat(key, val or {})
    if key == "mangle" and isinstance(val, dict):
        return f"{render_expr(val.get('key'))} set {render_expr(val.get('value'))}"
    if key == "vmap" and isinstance(val, dict):
        return f"{render_expr(val.get('key'))} vmap {render_expr(val.get('data'))}"
    if key == "set" and isinstance(val, dict) and "op" in val:
        return f"{val['op']} {val.get('set')} {{ {render_expr(val.get('elem'))} }}"
    if key == "xt" and isinstance(val, dict):
        return f"xt {val.get('type')} {val.get('name')}"
    if key == "log":
        prefix = val.get("prefix") if isinstance(val, dict) else None
        return "log" if prefix is None else f'log prefix "{prefix}"'
    return _compact(stmt)


def _render_nat(key: str, val: dict[str, Any]) -> str:
    parts = [key]
    addr, port = val.get("addr"), val.get("port")
    if addr is not None or port is not None:
        where = render_expr(addr) if addr is not None else ""
        if ":" in where and port is not None:
            where = f"[{where}]"
        if port is not None:
            where += f":{render_expr(port)}"
        parts.append(f"to {where}")
    flags = val.get("flags")
    if flags:
        parts.append(",".join(_tuple(flags)))
    return " ".join(parts)


def render_expr(e: Any) -> str:
    """One expression (a value, a match's side, a map key or value) in nft's notation."""
    if e is None:
        return ""
    if isinstance(e, bool):
        return "true" if e else "false"
    if isinstance(e, int | float | str):
        return str(e)
    if isinstance(e, list):
        return ",".join(render_expr(x) for x in e)
    if not isinstance(e, dict) or len(e) != 1:
        return _compact(e)
    key, val = next(iter(e.items()))
    if key in _VERDICTS:
        target = val.get("target") if isinstance(val, dict) else None
        return key if target is None else f"{key} {target}"
    if not isinstance(val, dict | list):
        return _compact(e)
    if key == "payload" and isinstance(val, dict):
        if "field" in val:
            return f"{val.get('protocol')} {val['field']}"
        return f"@{val.get('base')},{val.get('offset')},{val.get('len')}"
    if key == "meta" and isinstance(val, dict):
        return f"meta {val.get('key')}"
    if key == "ct" and isinstance(val, dict):
        direction = f" {val['dir']}" if "dir" in val else ""
        return f"ct{direction} {val.get('key')}"
    if key == "concat" and isinstance(val, list):
        return " . ".join(render_expr(x) for x in val)
    if key == "prefix" and isinstance(val, dict):
        return f"{render_expr(val.get('addr'))}/{val.get('len')}"
    if key == "range" and isinstance(val, list) and len(val) == 2:
        return f"{render_expr(val[0])}-{render_expr(val[1])}"
    if key == "set":
        items = val if isinstance(val, list) else [val]
        return "{ " + ", ".join(_render_set_item(x) for x in items) + " }"
    if key == "map" and isinstance(val, dict):
        return f"{render_expr(val.get('key'))} map {render_expr(val.get('data'))}"
    if key == "numgen" and isinstance(val, dict):
        offset = val.get("offset") or 0
        text = f"numgen {val.get('mode')} mod {val.get('mod')}"
        return text + (f" offset {offset}" if offset else "")
    if key in _BINOPS and isinstance(val, list) and len(val) == 2:
        rhs = _mark_hex(val[1]) if _is_mark(val[0]) else render_expr(val[1])
        return f"{render_expr(val[0])} {_BINOPS[key]} {rhs}"
    if key == "fib" and isinstance(val, dict):
        return f"fib {' . '.join(_tuple(val.get('flags')))} {val.get('result')}"
    if key == "elem" and isinstance(val, dict):
        text = render_expr(val.get("val"))
        return text + (f' comment "{val["comment"]}"' if "comment" in val else "")
    return _compact(e)


def _is_mark(e: Any) -> bool:
    """A packet or conntrack mark, or an expression on one; nft prints those in hex."""
    if not isinstance(e, dict) or len(e) != 1:
        return False
    key, val = next(iter(e.items()))
    if key in ("meta", "ct") and isinstance(val, dict):
        return val.get("key") == "mark"
    return key in _BINOPS and isinstance(val, list) and bool(val) and _is_mark(val[0])


def _mark_hex(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"0x{value:08x}"
    return render_expr(value)


def _render_set_item(item: Any) -> str:
    if isinstance(item, list) and len(item) == 2:
        return f"{render_expr(item[0])} : {render_expr(item[1])}"
    return render_expr(item)


def _collect_targets(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("jump", "goto") and isinstance(v, dict) and isinstance(v.get("target"), str):
                out.append(v["target"])
            else:
                _collect_targets(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect_targets(v, out)


def _collect_refs(node: Any, out: list[str]) -> None:
    if isinstance(node, str):
        if node.startswith("@"):
            out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            _collect_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect_refs(v, out)


def _part_holds(part: str, want: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        if "/" in part:
            return want in ipaddress.ip_network(part, strict=False)
        if "-" in part:
            lo, _, hi = part.partition("-")
            return ipaddress.ip_address(lo) <= want <= ipaddress.ip_address(hi)  # type: ignore[operator]
        return ipaddress.ip_address(part) == want
    except (ValueError, TypeError):
        # Not an address: a protocol name, a port, an interface name.
        return False


# -- kube-proxy helpers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClusterIPEntries:
    """What kube-proxy's table holds about one ClusterIP."""

    ip: str
    cluster_ips: tuple[NftElement, ...]
    service_ips: tuple[NftElement, ...]
    no_endpoint_services: tuple[NftElement, ...]


@dataclass(frozen=True, slots=True)
class NoEndpointReject:
    """The map element and the rule(s) that turn away traffic to a Service without endpoints."""

    element: NftElement
    rules: tuple[NftRule, ...]

    @property
    def text(self) -> str:
        lines = [f"@{NO_ENDPOINT_SERVICES_MAP}: {self.element.text}"]
        lines += [f"{r.chain}: {r.text}" for r in self.rules]
        return "\n".join(lines)


def kube_proxy_table(ruleset: NftRuleset, family: str = "ip") -> NftTable | None:
    """kube-proxy's table (``ip kube-proxy``, or ``ip6 kube-proxy``), or None."""
    return ruleset.kube_proxy_table(family)


def cluster_ip_entries(table: NftTable, ip: str) -> ClusterIPEntries:
    """The elements of ``cluster-ips``, ``service-ips`` and ``no-endpoint-services``
    that name ``ip``."""

    def mentioning(name: str) -> tuple[NftElement, ...]:
        s = table.set(name)
        return s.elements_mentioning(ip) if s is not None else ()

    return ClusterIPEntries(
        ip=ip,
        cluster_ips=mentioning(CLUSTER_IPS_SET),
        service_ips=mentioning(SERVICE_IPS_MAP),
        no_endpoint_services=mentioning(NO_ENDPOINT_SERVICES_MAP),
    )


def no_endpoint_reject(
    table: NftTable, ip: str, protocol: str | None = None, port: int | None = None
) -> NoEndpointReject | None:
    """The ``no-endpoint-services`` element for ``ip`` (and protocol/port if given) and the
    rules of the chain it goes to that reject; None when the IP is not listed there.

    kube-proxy maps a ClusterIP without endpoints to ``goto reject-chain``; an
    element whose verdict is a plain ``drop`` comes back with no rules.
    """
    for element in cluster_ip_entries(table, ip).no_endpoint_services:
        if protocol is not None and protocol.lower() not in element.key:
            continue
        if port is not None and str(port) not in element.key:
            continue
        chain = table.chain(element.target) if element.target else None
        rules = tuple(r for r in chain.rules if r.rejects) if chain else ()
        return NoEndpointReject(element, rules)
    return None
