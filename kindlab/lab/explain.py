"""``kindlab explain CLUSTER_IP``: the evidence and the walk for one Service.

Finds the kindlab cluster whose API knows the ClusterIP, then looks inside its
control-plane node the way the lab does, and prints it for a learner.
"""

from __future__ import annotations

from collections.abc import Callable

from kindlab.drivers.kube import Kube
from kindlab.drivers.node import Node, ToolMissingError
from kindlab.drivers.state import ClusterState, kubeconfig_path, read_states
from kindlab.errors import PreconditionError
from kindlab.lab import probes
from kindlab.lab.evidence import Evidence
from kindlab.netfilter.nft_walker import walk_nft
from kindlab.netfilter.render import text
from kindlab.netfilter.walker import Packet, walk
from kindlab.parsers.nft import cluster_ip_entries, kube_proxy_table


def find_service(cluster_ip: str) -> tuple[ClusterState, Kube, str]:
    """(cluster, API, namespace/name) of the Service owning ``cluster_ip``."""
    for name, state in read_states().items():
        kubeconfig = kubeconfig_path(name)
        if not state.complete or not kubeconfig.exists():
            continue
        kube = Kube(kubeconfig)
        try:
            ips = kube.cluster_ips()
        except Exception:  # a cluster that is gone or down: try the next one
            continue
        for svc, ip in ips.items():
            if ip == cluster_ip:
                return state, kube, svc
    raise PreconditionError(
        f"no running kindlab cluster has a Service with ClusterIP {cluster_ip}; "
        "start one with `kindlab up --mode iptables`"
    )


def explain(cluster_ip: str, *, say: Callable[[str], None] = print) -> Evidence:
    cluster, kube, svc_name = find_service(cluster_ip)
    mode = cluster.mode
    namespace, name = svc_name.split("/", 1)
    svc = kube.service(namespace, name)
    log = Evidence()
    node = Node(cluster.control_plane, recorder=log.record)
    say(f"Service {svc_name} in cluster {cluster.name} ({mode} mode): ClusterIP {svc.cluster_ip}")
    for port in svc.ports:
        say(f"  port {port.port}/{port.protocol} -> target {port.target_port}")
    say(f"  ready endpoints: {', '.join(svc.ready_ips) or 'none'}")
    say("")
    try:
        pinged = probes.summarize_ping(probes.ping(node, cluster_ip, count=2))
    except ToolMissingError:
        pinged = "not run: the node image has no ping"
    say(f"ping from the node: {pinged}")
    say(f"ip route get: {probes.summarize_route(probes.route(node, cluster_ip))}")
    owner = probes.addresses(node).owner(cluster_ip)
    say(f"interface holding {cluster_ip}: {owner.name if owner else 'none'}")
    for port in svc.ports:
        if port.protocol == "TCP":
            answer = probes.http(node, cluster_ip, port.port)
            seen = f"answered: {answer.body}" if answer.ok else answer.error
            say(f"TCP {cluster_ip}:{port.port}: {seen}")
    say("")
    if mode in ("iptables", "nftables"):
        view = probes.local_view(node)
        packets = [Packet(dst=cluster_ip, proto="icmp", src=view.address)] + [
            Packet(dst=cluster_ip, proto=p.protocol.lower(), dport=p.port, src=view.address)
            for p in svc.ports
        ]
    if mode == "iptables":
        nat = probes.iptables(node, "nat").table("nat")
        for packet in packets:
            say(text(walk(nat, "OUTPUT", packet, local_addresses=view.local)))
    elif mode == "nftables":
        ruleset = probes.nft(node)
        table = kube_proxy_table(ruleset)
        if table is not None:
            entries = cluster_ip_entries(table, cluster_ip)
            for label, elements in (
                ("@cluster-ips", entries.cluster_ips),
                ("@service-ips", entries.service_ips),
                ("@no-endpoint-services", entries.no_endpoint_services),
            ):
                for element in elements:
                    say(f"{label}: {element.text}")
            say("")
            for packet in packets:
                say(text(walk_nft(ruleset, "OUTPUT", packet, local_addresses=view.local)))
    else:
        result = node.ipvsadm()
        say(result.output)
    return log
