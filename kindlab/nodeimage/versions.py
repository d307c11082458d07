"""What a node image for one Kubernetes version is made of: pinned versions and image names.

Pure data and pure functions. The table per minor release mirrors what kubeadm of
that release asks for (``cmd/kubeadm/app/constants``: etcd, CoreDNS, pause) and what
upstream e2e tests use (``test/utils/image/manifest.go``: agnhost). The builder
checks the table against ``kubeadm config images list`` at build time, so a wrong
entry fails the build instead of producing a node that tries to pull.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The kind release the node image is made for: the one kindlab's kind driver pins.
from kindlab.constants import KIND_VERSION as KIND_VERSION
from kindlab.versions import RELEASES, Minor, Pins

DEFAULT_KUBERNETES_VERSION = "v1.34.4"
# Debian suite for the node's root file system: trixie's containerd 1.7.24 (seen in a
# node, tests/fixtures/captured/README.md) runs Kubernetes 1.34 here; bookworm's 1.6.20
# does not. What containerd itself recommends per minor: kindlab.versions.CONTAINERD.
DEBIAN_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

REGISTRY = "registry.k8s.io"
E2E_REGISTRY = "registry.k8s.io/e2e-test-images"
# Our own stand-in for kindnetd (see kindnet/main.go); kindlab's name, not kind's.
KINDNET_IMAGE_REPO = "localhost/kindlab/kindnet"

# The node's root file system. Kept sorted; part of the base stage's cache key.
NODE_PACKAGES: tuple[str, ...] = (
    "arptables",
    "bash",
    "ca-certificates",
    "conntrack",
    "containerd",
    "containernetworking-plugins",
    "curl",
    "dbus",
    "ebtables",
    "ethtool",
    "ipset",
    "iproute2",
    "iptables",
    "iputils-ping",
    "ipvsadm",
    "jq",
    "kmod",
    "less",
    "libseccomp2",
    "mount",
    "nftables",
    "pigz",
    "procps",
    "runc",
    "socat",
    "systemd",
    "systemd-sysv",
    "tcpdump",
    "util-linux",
)


# The pins per minor are data in kindlab.versions (with how each was established).
MinorPins = Pins


LOCAL_PATH_PROVISIONER_VERSION = "v0.0.30"  # what kind v0.30.0's image is built from

#: kind's own node images: the ones the pinned kind release publishes, from its release
#: notes ("Images pre-built for this release",
#: https://github.com/kubernetes-sigs/kind/releases/tag/v0.30.0). The v1.34.0 entry is
#: also kind v0.30.0's default image, ``pkg/apis/config/defaults/image.go`` in the
#: sigs.k8s.io/kind@v0.30.0 module (a unit test compares the two where the module is in
#: the Go module cache). Each digest is of the multi-arch index on docker.io; kind's
#: notes say to pull by it ("You _must_ use the @sha256 digest to guarantee an image
#: built for this release").
KIND_NODE_REPO = "kindest/node"
KIND_NODE_IMAGES: dict[str, str] = {
    "v1.34.0": "sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
    "v1.33.4": "sha256:25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2",
    "v1.32.8": "sha256:abd489f042d2b644e2d033f5c2d900bc707798d075e8186cb65e3f1367a9d5a1",
    "v1.31.12": "sha256:0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2",
}

_VERSION_RE = re.compile(r"^v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)$")


@dataclass(frozen=True)
class KubeVersion:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> KubeVersion:
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise ValueError(f"expected a Kubernetes release like v1.34.4, got {text!r}")
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"]))

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def release(self) -> Minor:
        """The minor release this patch belongs to (kindlab.versions' key)."""
        return Minor(self.major, self.minor)

    @property
    def staging(self) -> str:
        """Version of the k8s.io/* staging modules released with this version."""
        return f"v0.{self.minor}.{self.patch}"


def pins_for(version: KubeVersion) -> MinorPins:
    """What the chosen patch of ``version``'s minor pins (kindlab.versions.RELEASES).

    Another patch of the minor may pin other tags; the build's check against its
    own ``kubeadm config images list`` says so.
    """
    release = RELEASES.get(version.release)
    if release is None or release.pins is None:
        known = ", ".join(str(m) for m, r in sorted(RELEASES.items()) if r.pins is not None)
        raise ValueError(
            f"no pinned component versions for Kubernetes {version} (known minors: {known})"
        )
    return release.pins


def etcd_module_version(etcd_tag: str) -> str:
    """``3.6.5-0`` (image tag) -> ``v3.6.5`` (Go module version)."""
    m = re.match(r"^(\d+\.\d+\.\d+)(-\d+)?$", etcd_tag)
    if not m:
        raise ValueError(f"unexpected etcd image tag {etcd_tag!r}")
    return "v" + m[1]


CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


def kubeadm_images(version: KubeVersion) -> dict[str, str]:
    """Component name -> image reference, as ``kubeadm config images list`` prints them."""
    pins = pins_for(version)
    images = {name: f"{REGISTRY}/{name}:{version}" for name in CONTROL_PLANE}
    images["coredns"] = f"{REGISTRY}/coredns/coredns:{pins.coredns}"
    images["pause"] = f"{REGISTRY}/pause:{pins.pause}"
    images["etcd"] = f"{REGISTRY}/etcd:{pins.etcd}"
    return images


def agnhost_image(version: KubeVersion) -> str:
    return f"{E2E_REGISTRY}/agnhost:{pins_for(version).agnhost}"


def check_kubeadm_list(expected: dict[str, str], listed: list[str]) -> list[str]:
    """Problems between our table and kubeadm's own list (empty when they agree)."""
    want = sorted(expected.values())
    got = sorted(line.strip() for line in listed if line.strip())
    problems = [f"kubeadm asks for {img}, which the table lacks" for img in got if img not in want]
    problems += [
        f"table has {img}, which kubeadm does not ask for" for img in want if img not in got
    ]
    return problems
