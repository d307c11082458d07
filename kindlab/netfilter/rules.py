"""Pure checks over kube-proxy's iptables rules: find a Service's rules, read their shape.

Text in (via :mod:`kindlab.parsers`), plain data out; no Docker, no cluster.
The lab asserts on what these return, and reports the raw lines they found.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from fractions import Fraction

from kindlab.parsers.iptables import Rule, Table

SERVICES_CHAIN = "KUBE-SERVICES"
HOOKS = ("PREROUTING", "OUTPUT")


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """One KUBE-SVC-* rule that sends to a KUBE-SEP-* chain, and that chain's rules."""

    rule: Rule
    probability: float | None
    """The rule's ``--probability``; None for the last, unconditional rule."""
    sep_chain: str
    masq: Rule | None
    """``-s POD/32 -j KUBE-MARK-MASQ``: hairpin traffic (pod to its own Service) gets SNAT."""
    dnat: Rule | None
    """``-j DNAT --to-destination POD:PORT``."""

    @property
    def to(self) -> str | None:
        return self.dnat.to_destination if self.dnat else None


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """Everything nat KUBE-SERVICES does for one ClusterIP."""

    cluster_ip: str
    entry: tuple[Rule, ...]
    """KUBE-SERVICES rules whose destination is the ClusterIP."""
    svc_chain: str | None
    masq: tuple[Rule, ...]
    """Rules in the KUBE-SVC chain that only mark (``! -s PODCIDR … -j KUBE-MARK-MASQ``)."""
    endpoints: tuple[EndpointRule, ...]


def hook_jumps(nat: Table, target: str = SERVICES_CHAIN) -> dict[str, tuple[Rule, ...]]:
    """The rules of nat PREROUTING and OUTPUT that jump to ``target``."""
    return {
        hook: tuple(r for r in nat.chain(hook).rules if r.target == target)
        if hook in nat.chains
        else ()
        for hook in HOOKS
    }


def _is_host(rule: Rule, ip: str) -> bool:
    if rule.destination is None or rule.destination_negated:
        return False
    net = ipaddress.ip_network(rule.destination, strict=False)
    return net.prefixlen == net.max_prefixlen and ipaddress.ip_address(ip) in net


def service_rules(nat: Table, cluster_ip: str) -> ServiceRules:
    """Follow KUBE-SERVICES → KUBE-SVC-* → KUBE-SEP-* for one ClusterIP."""
    entry = tuple(r for r in nat.chain(SERVICES_CHAIN).rules if _is_host(r, cluster_ip))
    svc = next((r.target for r in entry if r.target and r.target.startswith("KUBE-SVC-")), None)
    masq: list[Rule] = []
    endpoints: list[EndpointRule] = []
    if svc and svc in nat.chains:
        for rule in nat.chain(svc).rules:
            if rule.target and rule.target.startswith("KUBE-SEP-"):
                sep = nat.chain(rule.target) if rule.target in nat.chains else None
                sep_rules = sep.rules if sep else ()
                endpoints.append(
                    EndpointRule(
                        rule=rule,
                        probability=rule.probability,
                        sep_chain=rule.target,
                        masq=next((r for r in sep_rules if r.target == "KUBE-MARK-MASQ"), None),
                        dnat=next((r for r in sep_rules if r.target == "DNAT"), None),
                    )
                )
            elif rule.target == "KUBE-MARK-MASQ":
                masq.append(rule)
    return ServiceRules(cluster_ip, entry, svc, tuple(masq), tuple(endpoints))


def even_split(n: int) -> list[Fraction | None]:
    """kube-proxy's probabilities for n endpoints: 1/n, 1/(n-1), …, 1/2, then none."""
    return [Fraction(1, n - i) for i in range(n - 1)] + [None] if n > 0 else []


def probability_matches(printed: float | None, wanted: Fraction | None) -> bool:
    """iptables keeps probabilities as 32-bit fractions: 1/3 prints as 0.33333333349."""
    if printed is None or wanted is None:
        return printed is None and wanted is None
    return abs(printed - float(wanted)) < 1e-6


def icmp_translations(nat: Table, cluster_ip: str) -> list[Rule]:
    """nat rules that could DNAT an ICMP packet to ``cluster_ip``, wherever they are.

    A DNAT rule qualifies when it does not restrict the protocol to another one
    and its destination, if any, contains the ClusterIP.
    """
    ip = ipaddress.ip_address(cluster_ip)
    found = []
    for rule in nat.rules():
        if rule.target not in ("DNAT", "REDIRECT"):
            continue
        proto = (rule.protocol or "all").lower()
        if proto not in ("all", "icmp", "1") and not rule.protocol_negated:
            continue
        if rule.destination is not None:
            in_net = ip in ipaddress.ip_network(rule.destination, strict=False)
            if in_net == rule.destination_negated:
                continue
        found.append(rule)
    return found


def reject_rules(filter_table: Table, cluster_ip: str) -> list[Rule]:
    """filter-table rules that REJECT traffic to ``cluster_ip`` (no-endpoint Services)."""
    return [r for r in filter_table.rules() if r.target == "REJECT" and _is_host(r, cluster_ip)]
