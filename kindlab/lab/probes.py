"""Look inside a node: run a tool through the node driver, parse its output.

Each probe is ``node helper`` + ``pure parser``; the raw command and output
stay in the node's evidence log. Labs call these; they never parse by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from kindlab.drivers.node import ExecResult, NodeBase
from kindlab.parsers.ipaddr import AddrList, parse_ip_addr_json
from kindlab.parsers.iptables import IptablesDump, parse_iptables_save
from kindlab.parsers.ipvsadm import IpvsTable, parse_ipvsadm
from kindlab.parsers.nft import NftRuleset, parse_nft_json
from kindlab.parsers.ping import PingResult, parse_ping
from kindlab.parsers.route import RouteGet, parse_route_get


def ping(node: NodeBase, ip: str, *, count: int = 3, wait: float = 1.0) -> PingResult:
    return parse_ping(node.ping(ip, count=count, wait=wait).output)


def summarize_ping(result: PingResult) -> str:
    """One line a learner can read: replies, ICMP errors and who sent them."""
    if result.failure:
        return f"ping failed before sending: {result.failure}"
    text = f"{result.transmitted} sent, {result.received} echo replies"
    if result.icmp_errors:
        kinds = sorted({f"{e.message} from {e.from_addr}" for e in result.icmp_errors})
        text += f", {len(result.icmp_errors)} ICMP errors ({'; '.join(kinds)})"
    elif not result.answered:
        text += ", no ICMP error either (silence)"
    return text


def iptables(node: NodeBase, table: str | None = None, *, counters: bool = False) -> IptablesDump:
    return parse_iptables_save(node.iptables_save(table, counters=counters).stdout)


def nft(node: NodeBase) -> NftRuleset:
    return parse_nft_json(node.nft_ruleset(json=True).stdout)


def ipvs(node: NodeBase) -> IpvsTable:
    return parse_ipvsadm(node.ipvsadm().check().stdout)


def addresses(node: NodeBase) -> AddrList:
    return parse_ip_addr_json(node.ip_addr().check().stdout)


@dataclass(frozen=True, slots=True)
class LocalView:
    """What the walker needs to know of a node: its address and all of its local ones."""

    address: str
    """The node's eth0 IPv4 address: the source of what it sends."""
    local: tuple[str, ...]
    """Every address of the node (for ``-m addrtype --dst-type LOCAL``)."""


def local_view(node: NodeBase) -> LocalView:
    addrs = addresses(node)
    local = tuple(a.local for _, a in addrs.addresses())
    return LocalView(addrs.link("eth0").inet()[0].local, local)


def route(node: NodeBase, ip: str) -> RouteGet:
    return parse_route_get(node.ip_route_get(ip).output)


def summarize_route(route: RouteGet) -> str:
    """One line a learner can read: where the kernel sends the packet, or why it will not."""
    if route.error:
        behind = f" (route type {route.error_route_type})" if route.error_route_type else ""
        return f"no route: {route.error}{behind}"
    via = f" via {route.via}" if route.via else ""
    line = f"{route.type}{via} dev {route.dev}"
    return line if route.reachable else f"no route: {line}"


def proxy_mode(node: NodeBase) -> str:
    """What kube-proxy says at 127.0.0.1:10249/proxyMode."""
    return node.proxy_mode().check().stdout.strip()


@dataclass(frozen=True, slots=True)
class TcpAnswer:
    """The outcome of an HTTP request over TCP from a node."""

    ok: bool
    body: str
    error: str
    result: ExecResult

    @property
    def refused(self) -> bool:
        return "refused" in self.error.lower()


def http(node: NodeBase, ip: str, port: int, path: str = "/hostname") -> TcpAnswer:
    """``curl http://IP:PORT/PATH`` from the node; agnhost's /hostname names the pod."""
    result = node.http_get(ip, port, path)
    return TcpAnswer(result.ok, result.stdout.strip(), result.stderr.strip(), result)


def tcp_connect(node: NodeBase, ip: str, port: int) -> TcpAnswer:
    """A bare TCP connect from the node: refused, connected, or timed out."""
    result = node.tcp_connect(ip, port)
    return TcpAnswer(result.ok, "", result.stderr.strip(), result)
