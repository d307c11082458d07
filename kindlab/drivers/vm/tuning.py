"""The cluster config a guest under software emulation gets: the control plane, trimmed.

Under TCG, kube-controller-manager took over seven minutes to start its controllers
(seen 2026-11-28): the garbage collector and the resource quota controller list and
watch every resource type the API serves, the namespace controller runs API discovery,
and each of those requests costs TLS and encoding at emulated speed, on an apiserver
that is just as slow. No node was Ready before the DaemonSet controller came up.

The guest's copy of the kind config therefore turns off the controllers the lab has
no object for. Nothing kube-proxy reads is touched: Services, EndpointSlices (and their
controller), Deployments, ReplicaSets, DaemonSets, nodes and their pod ranges, service
accounts and the root CA config map all work as in any kind cluster. Pure; tested.
"""

from __future__ import annotations

from typing import Any

import yaml

#: kube-controller-manager controllers the lab never needs (Kubernetes 1.28+ names).
TRIMMED_CONTROLLERS = (
    "garbage-collector-controller",
    "resourcequota-controller",
    "namespace-controller",
    "disruption-controller",
    "horizontal-pod-autoscaler-controller",
    "cronjob-controller",
    "job-controller",
    "statefulset-controller",
    "ttl-after-finished-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-attach-detach-controller",
    "persistentvolume-expander-controller",
    "ephemeral-volume-controller",
)


#: kubeadm's wait for a healthy control plane (kubeadm v1beta3; 4m0s by default).
CONTROL_PLANE_TIMEOUT = "20m0s"


def controllers_flag() -> str:
    return ",".join(["*", *(f"-{name}" for name in TRIMMED_CONTROLLERS)])


def trimmed_config(text: str) -> str:
    """A kind cluster config with one more kubeadm patch: the trimmed controller set."""
    doc: dict[str, Any] = yaml.safe_load(text)
    patch = (
        "kind: ClusterConfiguration\n"
        "apiServer:\n"
        # kubeadm's 4 minutes for a healthy control plane ran out under TCG while the
        # apiserver still answered 403 to the anonymous /livez (RBAC not yet set up)
        f"  timeoutForControlPlane: {CONTROL_PLANE_TIMEOUT}\n"
        "controllerManager:\n"
        "  extraArgs:\n"
        f'    controllers: "{controllers_flag()}"\n'
    )
    doc["kubeadmConfigPatches"] = [*(doc.get("kubeadmConfigPatches") or []), patch]
    header = (
        "# kindlab: the guest's copy, control plane trimmed for emulation"
        " (kindlab/drivers/vm/tuning.py)\n"
    )
    return header + yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (kubeadm patches) as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)
