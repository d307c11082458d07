"""A pod's network namespace, reached from its node: commands run as the pod's traffic.

The lab probes "from a pod" with the node's own tools inside the pod's network
namespace (``nsenter --net=/var/run/netns/NAME``): the packets leave through the pod's
interface with the pod's address and enter the node through its veth, exactly as the
pod's own would, and no tool (ping, bash) has to be in the pod's image. The namespace
is found by the pod's address (``ip -n NAME -j addr`` of each ``ip netns list`` entry).
"""

from __future__ import annotations

from collections.abc import Sequence

from kindlab.drivers.node import ExecResult, Node, Recorder
from kindlab.errors import PreconditionError
from kindlab.parsers.ipaddr import parse_ip_addr_json
from kindlab.parsers.netns import parse_netns_list

#: Where containerd's CNI setup mounts pod network namespaces (what ``ip netns`` lists).
NETNS_DIR = "/var/run/netns"


class PodNetns(Node):
    """A pod's network namespace on node ``name``: ``run`` is ``nsenter --net=… argv``."""

    def __init__(
        self,
        name: str,
        netns: str,
        *,
        pod: str = "",
        recorder: Recorder | None = None,
        default_timeout: float = 30.0,
    ) -> None:
        super().__init__(name, recorder=recorder, default_timeout=default_timeout)
        self.netns = netns
        self.pod = pod

    def __repr__(self) -> str:
        return f"PodNetns({self.name!r}, {self.netns!r}, pod={self.pod!r})"

    def run(
        self, argv: Sequence[str], *, timeout: float | None = None, check: bool = False
    ) -> ExecResult:
        enter = ["nsenter", f"--net={NETNS_DIR}/{self.netns}"]
        return super().run([*enter, *argv], timeout=timeout, check=check)


def pod_netns(node: Node, pod_ip: str, *, pod: str = "") -> PodNetns:
    """The network namespace on ``node`` that holds ``pod_ip``; PreconditionError if none."""
    names = parse_netns_list(node.run(["ip", "netns", "list"], check=True).stdout)
    for name in names:
        addrs = parse_ip_addr_json(node.run(["ip", "-n", name, "-j", "addr"], check=True).stdout)
        if addrs.owner(pod_ip) is not None:
            return PodNetns(node.name, name, pod=pod, recorder=node.recorder)
    raise PreconditionError(
        f"no network namespace on {node.name} holds {pod_ip} (pod {pod or '?'}; "
        f"looked in {', '.join(names) or 'none'})"
    )
