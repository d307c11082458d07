"""The kind binary, built with ``go install sigs.k8s.io/kind@<KIND_VERSION>``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ._proc import run
from .cache import cache_dir
from .versions import KIND_VERSION


def kind_binary(progress: Callable[[str], None] | None = None) -> Path:
    """``<cache>/bin/kind-<version>``, built on first use (about a minute)."""
    from .build import find_go

    target = cache_dir() / "bin" / f"kind-{KIND_VERSION}"
    if target.exists():
        return target
    go = find_go()
    gobin = cache_dir() / "bin" / f".gobin-{KIND_VERSION}"
    gobin.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"kind: go install sigs.k8s.io/kind@{KIND_VERSION}")
    run(
        [go, "install", "-trimpath", f"sigs.k8s.io/kind@{KIND_VERSION}"],
        env={"GOBIN": str(gobin), "CGO_ENABLED": "0"},
    )
    shutil.move(str(gobin / "kind"), target)
    shutil.rmtree(gobin, ignore_errors=True)
    return target
