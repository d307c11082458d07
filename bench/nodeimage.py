"""Benchmark the registry-free node image: cold build, warm build, size, kind create.

    python bench/nodeimage.py [--kubernetes-version V] [--skip-cold] [--skip-create]

Cold: every kindlab stage is rebuilt (``no_cache``) with empty, temporary Go build
and module caches and kindlab cache, as on a fresh CI machine (downloads from the
Go module proxy and Debian's mirror included); then kind itself is built.
Warm: the same call again with caches, i.e. what every later run pays.
Create: ``kind create cluster --image <tag>`` with clusters/iptables.yaml, then delete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kindlab import nodeimage  # noqa: E402

T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> tuple[float, T]:
    start = time.monotonic()
    result = fn()
    took = time.monotonic() - start
    print(f"{label}: {took:.1f} s ({took / 60:.1f} min)", flush=True)
    return took, result


def kubectl(name: str, *argv: str) -> list[str]:
    return [
        "docker",
        "exec",
        f"{name}-control-plane",
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        *argv,
    ]


def time_create(tag: str) -> None:
    """kind create, then node Ready, then every kube-system pod Ready; then delete."""
    kind = str(nodeimage.kind_binary())
    name = f"kl-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmpdir:
        kubeconfig = str(Path(tmpdir) / "kubeconfig")
        try:
            timed(
                "kind create cluster (iptables config, --wait 0)",
                lambda: subprocess.run(
                    [
                        kind,
                        "create",
                        "cluster",
                        "--image",
                        tag,
                        "--name",
                        name,
                        "--config",
                        str(ROOT / "clusters" / "iptables.yaml"),
                        "--kubeconfig",
                        kubeconfig,
                    ],
                    check=True,
                    capture_output=True,
                ),
            )
            timed(
                "node Ready after create",
                lambda: subprocess.run(
                    kubectl(
                        name, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s"
                    ),
                    check=True,
                    capture_output=True,
                ),
            )
            timed(
                "then every kube-system pod Ready (kube-proxy, kindnet, CoreDNS...)",
                lambda: subprocess.run(
                    kubectl(
                        name,
                        "wait",
                        "-n",
                        "kube-system",
                        "--for=condition=Ready",
                        "pod",
                        "--all",
                        "--timeout=300s",
                    ),
                    check=True,
                    capture_output=True,
                ),
            )
            log = subprocess.run(
                ["docker", "exec", f"{name}-control-plane", "journalctl", "-u", "containerd"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            unpacked = log.count("is not unpacked")
            print(f"containerd: {unpacked} 'image is not unpacked' lines (first-use unpacks)")
        finally:
            subprocess.run(
                [kind, "delete", "cluster", "--name", name], capture_output=True, check=False
            )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kubernetes-version", default=nodeimage.DEFAULT_KUBERNETES_VERSION)
    p.add_argument("--skip-cold", action="store_true")
    p.add_argument("--skip-create", action="store_true")
    p.add_argument(
        "--image",
        action="append",
        default=[],
        help="time kind create with this image instead of building (repeatable: before/after)",
    )
    args = p.parse_args()
    v = args.kubernetes_version
    if args.image:
        for image in args.image:
            print(f"image: {image}")
            time_create(image)
        return 0

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    env_keys = ("GOCACHE", "GOMODCACHE", "KINDLAB_CACHE")
    saved = {k: os.environ.get(k) for k in env_keys}
    tmp = Path(tempfile.mkdtemp(prefix="kindlab-bench-"))
    try:
        if not args.skip_cold:
            # a fresh machine: empty Go build and module caches, empty kindlab cache
            for k in env_keys:
                os.environ[k] = str(tmp / k.lower())
            timed(
                "cold build (all stages rebuilt, empty Go build/module caches)",
                lambda: nodeimage.build(v, progress=progress, no_cache=True),
            )
            timed("cold kind binary (go install sigs.k8s.io/kind)", nodeimage.kind_binary)
        _, tag = timed("warm build (cached)", lambda: nodeimage.build(v))
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old
        subprocess.run(["chmod", "-R", "u+w", str(tmp)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    size = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}}", str(tag)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"image: {tag}\nimage size: {int(size) / 1e6:.0f} MB (docker image inspect .Size)")
    if not args.skip_create:
        time_create(str(tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
