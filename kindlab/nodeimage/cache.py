"""Content-addressed cache keys and the cache directory. Pure, apart from reading files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

# Bump to invalidate every stage after a change in how kindlab assembles things.
RECIPE_VERSION = "1"


def cache_key(stage: str, parts: Mapping[str, object]) -> str:
    """sha256 over a canonical JSON of the stage name, recipe version and inputs."""
    doc = {"stage": stage, "recipe": RECIPE_VERSION, "inputs": parts}
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


def short(key: str, n: int = 12) -> str:
    return key[:n]


def hash_files(root: Path, names: Iterable[str]) -> str:
    """sha256 over (name, mode, content) of the given files below ``root``."""
    h = hashlib.sha256()
    for name in sorted(names):
        path = root / name
        h.update(name.encode() + b"\0")
        h.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def hash_tree(root: Path) -> str:
    """sha256 over every regular file below ``root`` (relative names, contents)."""
    files = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    return hash_files(root, files)
