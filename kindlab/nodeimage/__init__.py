"""Build kind node images with no registry: Debian packages + Go module sources.

Public API::

    build(kubernetes_version=DEFAULT_KUBERNETES_VERSION, *, tag=None, progress=None,
          no_cache=False) -> str          # builds or reuses; returns the image tag
    rootfs_image(progress=None) -> str    # the Debian root file system stage alone
    kind_binary(progress=None) -> Path     # go install sigs.k8s.io/kind@KIND_VERSION
    list_images() -> list[(ref, size, created)]; prune(*, everything=False) -> list[str]
    register_cli(subparsers)               # `kindlab node-image build|list|prune|kind`

See README.md in this package for how the image is made.
"""

from __future__ import annotations

from .build import build, list_images, prune, rootfs_image
from .cli import register_cli
from .kindbin import kind_binary
from .versions import DEFAULT_KUBERNETES_VERSION, KIND_VERSION

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "KIND_VERSION",
    "build",
    "kind_binary",
    "list_images",
    "prune",
    "register_cli",
    "rootfs_image",
]
