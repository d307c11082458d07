"""Where kindlab keeps what outlives one run: built binaries, images' inputs, cluster state."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$KINDLAB_CACHE``, else ``$XDG_CACHE_HOME/kindlab``, else ``~/.cache/kindlab``."""
    explicit = os.environ.get("KINDLAB_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kindlab"


def project_root() -> Path:
    """The checkout kindlab runs from (holds clusters/ and labs/)."""
    return Path(__file__).resolve().parent.parent


def clusters_dir() -> Path:
    return project_root() / "clusters"


def manifests_dir() -> Path:
    return project_root() / "labs" / "manifests"
