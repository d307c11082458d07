"""kind's node conventions, read from the kind Go module at build time.

kindlab does not vendor kind's files: the base-image files (entrypoint, containerd
config, kubelet units, ``/kind`` scripts) and the default CNI/storage manifests are
read from ``sigs.k8s.io/kind@<version>`` as ``go mod download`` unpacks it. The
manifests are Go string constants in ``pkg/build/nodeimage/const_*.go``; this module
evaluates those constants (string literals joined with ``+``), which is pure and
unit-tested.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# Files of kind's images/base/files that the node gets, with their modes. Left out:
# containerd-fuse-overlayfs.service (rootless only) and clean-install's apt use.
BASE_FILES: dict[str, int] = {
    "usr/local/bin/entrypoint": 0o755,
    "usr/local/bin/clean-install": 0o755,
    "kind/README.txt": 0o644,
    "kind/bin/mount-product-files.sh": 0o755,
    "kind/bin/undo-mount-hacks.sh": 0o755,
    "kind/bin/create-kubelet-cgroup-v2.sh": 0o755,
    "etc/containerd/config.toml": 0o644,
    "etc/crictl.yaml": 0o644,
    "etc/default/kubelet": 0o644,
    "etc/sysctl.d/10-network-security.conf": 0o644,
    "etc/sysctl.d/10-network-magic.conf": 0o644,
    "etc/systemd/system/containerd.service": 0o644,
    "etc/systemd/system/kubelet.service": 0o644,
    "etc/systemd/system/kubelet.slice": 0o644,
    "etc/systemd/system/undo-mount-hacks.service": 0o644,
    "etc/systemd/system/kubelet.service.d/10-kubeadm.conf": 0o644,
    "etc/systemd/system/kubelet.service.d/11-kind.conf": 0o644,
}

NODEIMAGE_DIR = "pkg/build/nodeimage"

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<raw>`[^`]*`)
      | (?P<str>"(?:[^"\\\n]|\\.)*")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<plus>\+)
    )""",
    re.VERBOSE,
)
_CONST = re.compile(r"^(?:const\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*", re.MULTILINE)


class KindSourceError(ValueError):
    """kind's sources do not look as this module expects (a new kind release?)."""


def go_string_consts(source: str) -> dict[str, str]:
    """Evaluate the string constants of a Go file: ``name -> value``.

    Handles raw and interpreted literals and ``+`` between literals and names of
    constants defined in the same file. Declarations that are not string
    expressions are skipped.
    """
    exprs: dict[str, list[tuple[str, str]]] = {}
    for m in _CONST.finditer(source):
        parts = _read_expr(source, m.end())
        if parts:
            exprs[m["name"]] = parts
    values: dict[str, str] = {}

    def resolve(name: str, seen: tuple[str, ...]) -> str:
        if name in values:
            return values[name]
        if name in seen or name not in exprs:
            raise KindSourceError(f"cannot resolve Go constant {name!r}")
        out = []
        for kind, text in exprs[name]:
            out.append(resolve(text, (*seen, name)) if kind == "ident" else text)
        values[name] = "".join(out)
        return values[name]

    for name in list(exprs):
        try:
            resolve(name, ())
        except KindSourceError:
            continue
    return values


def _read_expr(source: str, pos: int) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    expect_operand = True
    while True:
        m = _TOKEN.match(source, pos)
        if not m:
            break
        if expect_operand:
            if m["raw"] is not None:
                parts.append(("lit", m["raw"][1:-1]))
            elif m["str"] is not None:
                parts.append(("lit", json.loads(m["str"])))
            elif m["ident"] is not None:
                parts.append(("ident", m["ident"]))
            else:
                return []
            expect_operand = False
        else:
            if m["plus"] is None:
                break
            expect_operand = True
        pos = m.end()
    if expect_operand or not any(kind == "lit" for kind, _ in parts):
        return []
    return parts


@dataclass(frozen=True)
class KindManifests:
    """kind's default CNI and storage manifests and the images they name."""

    cni_manifest: str
    cni_images: tuple[str, ...]
    storage_manifest: str
    storage_provisioner_image: str
    storage_helper_image: str


def read_manifests(kind_dir: Path) -> KindManifests:
    cni = go_string_consts((kind_dir / NODEIMAGE_DIR / "const_cni.go").read_text())
    storage = go_string_consts((kind_dir / NODEIMAGE_DIR / "const_storage.go").read_text())
    try:
        return KindManifests(
            cni_manifest=cni["defaultCNIManifest"],
            cni_images=(cni["kindnetdImage"],),
            storage_manifest=storage["defaultStorageManifest"],
            storage_provisioner_image=storage["storageProvisionerImage"],
            storage_helper_image=storage["storageHelperImage"],
        )
    except KeyError as exc:
        raise KindSourceError(f"kind's {NODEIMAGE_DIR} lacks constant {exc}") from None


def render_cni_manifest(manifest: str, kind_image: str, our_image: str) -> str:
    """kind's CNI manifest with kindnetd's image swapped for kindlab's stand-in.

    The template markers (``{{ .PodSubnet }}``) stay: kind fills them in at
    ``kind create cluster`` time.
    """
    if manifest.count(kind_image) != 1:
        raise KindSourceError(f"expected kindnetd image {kind_image} once in the CNI manifest")
    return manifest.replace(kind_image, our_image)


def sandbox_image(containerd_config: str) -> str:
    """The ``sandbox_image`` that kind's containerd config pins (kind re-pins pause)."""
    m = re.search(r'^\s*sandbox_image\s*=\s*"([^"]+)"', containerd_config, re.MULTILINE)
    if not m:
        raise KindSourceError("kind's containerd config.toml has no sandbox_image")
    return m[1]
