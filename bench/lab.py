#!/usr/bin/env python3
"""Benchmark: the iptables lab through kindlab, next to the same steps by hand.

Measures, in one run on one machine:

* kindlab cold: ``pytest labs -m iptables`` creating its cluster and deleting it;
* kindlab warm: the same with ``--keep-clusters`` on a cluster kept from a first run;
* bare cold: ``kind create cluster``, ``kubectl apply``/``wait``, the same
  ``docker exec`` probes the lab runs (ping, iptables-save, ip route get, ip -j
  addr, curl), ``kind delete cluster``;
* bare warm: the same without create and delete, on a kept cluster;

and prints the harness's overhead as the ratio kindlab / bare. Run it where the
node image exists (``kindlab node-image build`` prints its tag)::

    python bench/lab.py --node-image kindlab/node:v1.34.4-…
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "kindlab-bench"


def run(argv: Sequence[str], *, check: bool = True, quiet: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=quiet, text=True, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout or ""


def timed(label: str, fn: object) -> float:
    assert callable(fn)
    print(f"bench: {label} …", file=sys.stderr, flush=True)
    started = time.monotonic()
    fn()
    elapsed = time.monotonic() - started
    print(f"bench: {label}: {elapsed:.1f}s", file=sys.stderr, flush=True)
    return elapsed


def bare_probes(kind: str, name: str, kubeconfig: Path) -> None:
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig)]
    run([*kubectl, "create", "namespace", NAMESPACE], check=False)
    run([*kubectl, "apply", "-n", NAMESPACE, "-f", str(ROOT / "labs" / "manifests")])
    run([*kubectl, "wait", "-n", NAMESPACE, "--for=condition=Available", "deployment/web",
         "--timeout=240s"])  # fmt: skip
    ip = run([*kubectl, "get", "svc", "-n", NAMESPACE, "web", "-o",
              "jsonpath={.spec.clusterIP}"])  # fmt: skip
    node = f"{name}-control-plane"
    for argv in (
        ["curl", "-s", "127.0.0.1:10249/proxyMode"],
        ["ping", "-n", "-c", "3", "-W", "1", ip],
        ["curl", "-sS", "--max-time", "5", f"http://{ip}:80/hostname"],
        ["iptables-save", "-t", "nat"],
        ["iptables-save", "-t", "filter"],
        ["iptables-save", "-c", "-t", "nat"],
        ["ip", "-j", "addr"],
        ["ip", "route", "get", ip],
    ):
        run(["docker", "exec", "--privileged", node, *argv], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-image", required=True)
    parser.add_argument("--kind-bin", default=None)
    args = parser.parse_args()

    from kindlab.drivers.kind import find_kind

    kind = str(find_kind(args.kind_bin))
    pytest_base = [
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "labs"),
        *("-m", "iptables", "--node-image", args.node_image, "--kind-bin", kind),
    ]
    env_report = ["--kindlab-report", str(Path(tempfile.mkdtemp()) / "bench")]
    results: dict[str, float] = {}

    def kindlab_cold() -> None:
        run([*pytest_base, *env_report], quiet=True)

    def kindlab_keep() -> None:
        run([*pytest_base, *env_report, "--keep-clusters"], quiet=True)

    results["kindlab cold"] = timed("kindlab cold", kindlab_cold)
    timed("kindlab warm-up (creates the kept cluster)", kindlab_keep)
    results["kindlab warm"] = timed("kindlab warm", kindlab_keep)
    run([sys.executable, "-m", "kindlab.cli", "down", "--kind-bin", kind])

    name = f"kindlab-bench-{os.getpid()}"
    kubeconfig = Path(tempfile.mkdtemp()) / "kubeconfig"
    create = [kind, "create", "cluster", "--name", name, "--image", args.node_image,
              "--config", str(ROOT / "clusters" / "iptables.yaml"), "--kubeconfig",
              str(kubeconfig), "--wait", "300s"]  # fmt: skip
    delete = [kind, "delete", "cluster", "--name", name]
    try:

        def bare_cold() -> None:
            run(create)
            bare_probes(kind, name, kubeconfig)
            run(delete)

        results["bare cold"] = timed("bare cold", bare_cold)
        run(create)
        bare_probes(kind, name, kubeconfig)
        results["bare warm"] = timed("bare warm", lambda: bare_probes(kind, name, kubeconfig))
    finally:
        run(delete, check=False)

    print()
    print(f"{'step':14} {'seconds':>8}")
    for label, seconds in results.items():
        print(f"{label:14} {seconds:8.1f}")
    cold = results["kindlab cold"] / results["bare cold"]
    warm = results["kindlab warm"] / results["bare warm"]
    print(f"\noverhead kindlab/bare: cold {cold:.2f}x, warm {warm:.2f}x")
    print(json.dumps({**results, "ratio_cold": cold, "ratio_warm": warm}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
