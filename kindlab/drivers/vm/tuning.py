"""The cluster config a guest under software emulation gets: the control plane, trimmed.

Under TCG, kube-controller-manager took over seven minutes to start its controllers
(seen 2026-11-28): the garbage collector and the resource quota controller list and
watch every resource type the API serves, the namespace controller runs API discovery,
and each of those requests costs TLS and encoding at emulated speed, on an apiserver
that is just as slow. No node was Ready before the DaemonSet controller came up.

The guest's copy of the kind config therefore turns off the controllers the lab has
no object for. Nothing kube-proxy reads is touched: Services, EndpointSlices (and their
controller), Deployments, ReplicaSets, DaemonSets, nodes and their pod ranges, service
accounts and the root CA config map all work as in any kind cluster.

It also takes away work that only costs CPU there (:data:`GUEST_FILES`): the static
pods' probes are relaxed through kubeadm patches (the apiserver's readiness probe is a
TLS handshake every second; a liveness probe that times out restarts a component that
then spends minutes starting again), kind's local-path-provisioner is not installed (it
crash-looped in the guest, and the lab has no volume), and once the cluster is up
kube-proxy gets a CPU request, without which it is starved (:data:`KUBE_PROXY_SETTLED`),
and CoreDNS runs one replica whose readiness probe waits for a slow answer
(:func:`settle`): a flapping probe is an EndpointSlice change that kube-proxy must
sync. Pure except :func:`settle`; tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from kindlab.timing import scaled

from .guest import PAYLOAD_SRC

if TYPE_CHECKING:
    from kindlab.drivers.kube import Kube

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


#: etcd's raft timing in the guest (etcd's defaults: 1000 and 100 ms): a request may
#: take 5 s + 2 x 10 s to apply before etcd gives up on it.
ETCD_ELECTION_TIMEOUT_MS = 10000
ETCD_HEARTBEAT_MS = 1000

#: kubeadm's wait for a healthy control plane (kubeadm v1beta3; 4m0s by default).
CONTROL_PLANE_TIMEOUT = "20m0s"


#: The guest's extra files, in the payload under ``src/`` and so inside the guest here.
GUEST_FILES_DIR = "clusters/guest"
GUEST_FILES = f"{PAYLOAD_SRC}/{GUEST_FILES_DIR}"
#: Where the node sees them (kind ``extraMounts``).
NODE_PATCHES = "/kind/kindlab-patches"
NODE_STORAGE_MANIFEST = "/kind/manifests/default-storage.yaml"

#: A slow answer is not a dead component: kubeadm's liveness probes allow 8 x 15 s.
_LIVENESS = {"timeoutSeconds": 60, "failureThreshold": 30}
#: kubeadm's static pods and the probes each has (kubeadm sets no readiness probe on
#: the others, and a patch must not add a probe without a handler).
_STATIC_PODS: dict[str, dict[str, dict[str, int]]] = {
    "etcd": {"livenessProbe": _LIVENESS},
    "kube-apiserver": {
        "livenessProbe": _LIVENESS,
        # kubeadm probes /readyz every second; nothing routes by this pod's readiness
        "readinessProbe": {"periodSeconds": 10, "timeoutSeconds": 60},
    },
    "kube-controller-manager": {"livenessProbe": _LIVENESS},
    "kube-scheduler": {"livenessProbe": _LIVENESS},
}

#: kind's StorageClass without the provisioner behind it (the lab claims no volume).
STORAGE_MANIFEST = """\
# kindlab guest: kind's default StorageClass without local-path-provisioner, which
# crash-looped under emulation and costs CPU; the lab has no volume.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
"""


def guest_files() -> dict[str, str]:
    """The files the trimmed config mounts into the node, by path under ``src/``."""
    files = {f"{GUEST_FILES_DIR}/default-storage.yaml": STORAGE_MANIFEST}
    for pod, probes in _STATIC_PODS.items():
        patch = {"spec": {"containers": [{"name": pod, **probes}]}}
        files[f"{GUEST_FILES_DIR}/patches/{pod}+strategic.yaml"] = yaml.safe_dump(patch)
    return files


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
        "etcd:\n"
        "  local:\n"
        "    extraArgs:\n"
        # etcd fails a request it has not applied within 5 s plus two election
        # timeouts; under TCG that was "etcdserver: request timed out", fatal to
        # kube-controller-manager's token client, which restarted (seen 2026-11-28).
        # One member: the election timeout only sets that limit.
        f'      election-timeout: "{ETCD_ELECTION_TIMEOUT_MS}"\n'
        f'      heartbeat-interval: "{ETCD_HEARTBEAT_MS}"\n'
    )
    init = f"kind: InitConfiguration\npatches:\n  directory: {NODE_PATCHES}\n"
    doc["kubeadmConfigPatches"] = [*(doc.get("kubeadmConfigPatches") or []), patch, init]
    mounts = [
        {"hostPath": f"{GUEST_FILES}/patches", "containerPath": NODE_PATCHES, "readOnly": True},
        {
            "hostPath": f"{GUEST_FILES}/default-storage.yaml",
            "containerPath": NODE_STORAGE_MANIFEST,
            "readOnly": True,
        },
    ]
    for node in doc.get("nodes") or []:
        node["extraMounts"] = [*(node.get("extraMounts") or []), *mounts]
    header = (
        "# kindlab: the guest's copy, control plane trimmed for emulation"
        " (kindlab/drivers/vm/tuning.py)\n"
    )
    return header + yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False)


#: CoreDNS in the guest: one replica, and a readiness probe that waits (kind's: 1 s).
COREDNS_SETTLED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "coredns", "namespace": "kube-system"},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "coredns",
                        "readinessProbe": {"timeoutSeconds": 30, "failureThreshold": 10},
                    }
                ]
            }
        },
    },
}


#: kube-proxy with a CPU request. kubeadm gives it none, so it is a BestEffort pod:
#: its cgroup weighs 1 against the Burstable control plane's 30 and the kubelet's
#: 100 (read in the guest, 2026-11-28). On a guest that emulation keeps saturated,
#: kube-proxy and the iptables and ipset commands it runs got almost no CPU: one
#: `iptables -C` ran 34 s, and a first ipvs sync had not finished 6 minutes after its
#: caches synced. A request changes its cgroup weight, nothing in how it proxies.
KUBE_PROXY_CPU_REQUEST = "500m"
KUBE_PROXY_SETTLED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "kube-proxy",
                        "resources": {"requests": {"cpu": KUBE_PROXY_CPU_REQUEST}},
                    }
                ]
            }
        },
    },
}


def settle(kube: Kube) -> None:
    """Once the guest's cluster is up: kube-proxy and CoreDNS as :data:`KUBE_PROXY_SETTLED`
    and :data:`COREDNS_SETTLED` say, and kube-proxy's new pod running before the lab
    reads it."""
    kube.apply([KUBE_PROXY_SETTLED, COREDNS_SETTLED])
    kube.wait_daemonset_rolled_out("kube-system", "kube-proxy", timeout=scaled(300))


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (kubeadm patches) as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)
