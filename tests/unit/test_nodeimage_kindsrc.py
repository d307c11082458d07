"""kindsrc on kind's real sources, when the kind module is in the Go module cache.

No network and no Docker: the test looks for ``sigs.k8s.io/kind@<pinned>`` where
``go mod download`` (run by a node-image build or ``go install`` of kind) unpacks it,
and skips when it is not there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kindlab.nodeimage import kindsrc, versions


def _kind_dir() -> Path | None:
    roots = [os.environ.get("GOMODCACHE"), os.environ.get("GOPATH")]
    candidates = [Path(r) for r in roots if r]
    candidates.append(Path.home() / "go" / "pkg" / "mod")
    for root in candidates:
        for base in (root, root / "pkg" / "mod"):
            d = base / "sigs.k8s.io" / f"kind@{versions.KIND_VERSION}"
            if (d / kindsrc.NODEIMAGE_DIR).is_dir():
                return d
    return None


KIND_DIR = _kind_dir()
pytestmark = pytest.mark.skipif(
    KIND_DIR is None, reason=f"sigs.k8s.io/kind@{versions.KIND_VERSION} not in the Go module cache"
)


def test_kind_manifests_evaluate_to_full_yaml_naming_their_images() -> None:
    assert KIND_DIR is not None
    m = kindsrc.read_manifests(KIND_DIR)
    assert m.cni_images == ("docker.io/kindest/kindnetd:v20250512-df8de77b",)
    assert f"image: {m.cni_images[0]}" in m.cni_manifest
    assert "{{ .PodSubnet }}" in m.cni_manifest
    assert "kind: DaemonSet" in m.cni_manifest
    assert m.storage_provisioner_image in m.storage_manifest
    assert m.storage_helper_image in m.storage_manifest
    assert "kind: StorageClass" in m.storage_manifest


def test_every_base_file_kindlab_takes_exists_in_kinds_module() -> None:
    assert KIND_DIR is not None
    root = KIND_DIR / "images" / "base" / "files"
    missing = [rel for rel in kindsrc.BASE_FILES if not (root / rel).is_file()]
    assert missing == [], f"kind {versions.KIND_VERSION} lacks {missing} under {root}"


def test_kinds_containerd_config_pins_a_sandbox_image() -> None:
    assert KIND_DIR is not None
    toml = (KIND_DIR / "images/base/files/etc/containerd/config.toml").read_text()
    assert kindsrc.sandbox_image(toml) == "registry.k8s.io/pause:3.10"
    # the node-base script flips this; kind's file must still say false
    assert "restrict_oom_score_adj = false" in toml
