"""Build kind node images with no registry: Debian packages + Go module sources.

Public API::

    build(kubernetes_version=DEFAULT_KUBERNETES_VERSION, *, tag=None, progress=None,
          no_cache=False) -> str          # builds or reuses; returns the image tag
    ensure(kubernetes_version=...) -> str  # reuse the newest built image, else build
    find_built(kubernetes_version=...) -> str | None
    rootfs_image(progress=None) -> str    # the Debian root file system stage alone
    default_tag(kubernetes_version=...) -> str   # "kindlab/node:v1.34.4" (prefix)
    kind_binary(progress=None) -> Path     # go install sigs.k8s.io/kind@KIND_VERSION
    list_images() -> list[(ref, size, created)]; prune(*, everything=False) -> list[str]
    register_cli(subparsers)               # `kindlab node-image build|list|prune|kind`

See README.md in this package for how the image is made.
"""

from __future__ import annotations

from collections.abc import Callable

from .build import build, default_tag, find_built, list_images, prune, rootfs_image
from .cli import register_cli
from .kindbin import kind_binary
from .versions import DEFAULT_KUBERNETES_VERSION, KIND_VERSION


def ensure(
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    *,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Build-or-reuse for the pytest plugin: the cached build is a no-op in seconds.

    ``build`` itself is content-addressed, so this simply calls it; it exists so the
    plugin has one name to call.
    """
    return build(kubernetes_version, progress=progress)


__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "KIND_VERSION",
    "build",
    "default_tag",
    "ensure",
    "find_built",
    "kind_binary",
    "list_images",
    "prune",
    "register_cli",
    "rootfs_image",
]
