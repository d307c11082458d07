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


#: In an installed (non-editable) kindlab, the checkout's clusters/ and
#: labs/manifests/ ship as package data under here (symlinks in the checkout).
_PACKAGED = Path(__file__).resolve().parent / "_data"


def _first_existing(*candidates: Path) -> Path:
    return next((c for c in candidates if c.is_dir()), candidates[0])


def clusters_dir() -> Path:
    """kind configs, one per proxy mode: the checkout's, else the packaged copy."""
    return _first_existing(project_root() / "clusters", _PACKAGED / "clusters")


def manifests_dir() -> Path:
    """The lab's sample workloads: the checkout's, else the packaged copy."""
    return _first_existing(project_root() / "labs" / "manifests", _PACKAGED / "manifests")
