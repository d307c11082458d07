"""The kind binary, built with ``go install sigs.k8s.io/kind@<KIND_VERSION>``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kindlab.drivers.kind import install_kind

from .versions import KIND_VERSION


def kind_binary(progress: Callable[[str], None] | None = None) -> Path:
    """``<cache>/bin/kind-<version>``, built on first use (about a minute)."""
    return install_kind(KIND_VERSION, progress=progress or (lambda _: None))
