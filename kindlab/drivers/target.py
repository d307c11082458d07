"""What a lab runs against: a cluster and its nodes, however they are reached.

Two kinds of cluster stand behind it: a kind cluster kindlab created
(:class:`kindlab.drivers.clusters.Cluster`, nodes reached with ``docker exec``) and an
existing one named by a kubeconfig (:class:`kindlab.drivers.existing.ExistingCluster`,
nodes reached through debug pods). The labs and the plugin's fixtures see only this.
"""

from __future__ import annotations

from typing import Protocol

from kindlab.drivers.kube import Kube
from kindlab.drivers.node import NodeBase, Recorder


class LabCluster(Protocol):
    """A running cluster, its API and its nodes."""

    node_names: list[str]

    @property
    def name(self) -> str: ...

    @property
    def mode(self) -> str:
        """kube-proxy's mode in this cluster."""
        ...

    @property
    def kube(self) -> Kube: ...

    @property
    def service_subnet(self) -> str:
        """The range ClusterIPs come from, e.g. ``10.96.0.0/12``."""
        ...

    def node(self, name: str | None = None, *, recorder: Recorder | None = None) -> NodeBase:
        """A node to run commands in (default: a control-plane node)."""
        ...

    def kubernetes_version(self) -> str: ...
