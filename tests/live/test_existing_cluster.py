"""kindlab against a cluster it did not create, given to the lab by its kubeconfig only.

The module makes a two-node kind cluster by hand (one control plane, one worker,
kube-proxy in iptables mode) with the kind binary and kindlab's node image, loads
kindlab's root file system image into its nodes for the debug pods (no registry:
``kind load docker-image``, as a user of an offline cluster would), and deletes the
cluster at the end. Then ``pytest labs -m iptables --kubeconfig K``:

- the iptables claims pass;
- every command in the evidence is a ``kubectl exec`` line, none a ``docker exec``;
- no kind cluster is created, and no namespace of kindlab's is left in the cluster;

and the same run interrupted with Ctrl-C inside a check leaves no namespace either.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kindlab.drivers.kind import find_kind
from kindlab.drivers.kube import Kube
from kindlab.drivers.proc import run, started
from kindlab.errors import CommandError
from kindlab.paths import project_root

pytestmark = pytest.mark.live

#: The cluster, as a user would write it for kind: nothing of kindlab's in it.
KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  kubeProxyMode: iptables
nodes:
  - role: control-plane
  - role: worker
"""
#: The claims ``-m iptables`` checks; each must pass on the existing cluster.
IPTABLES_CLAIMS = {
    "proxy-mode",
    "service-range",
    "ping-clusterip",
    "iptables-rules",
    "iptables-probabilities",
    "iptables-why",
    "no-endpoints",
}
#: Seconds from Ctrl-C to the end of the run: the namespaces' deletion is waited for.
EXIT_BUDGET = 60.0
#: Seconds the interrupted run may take to reach a check's body.
REACH_BUDGET = 600.0


@dataclass(frozen=True)
class Existing:
    name: str
    kubeconfig: Path
    kind: Path


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory, node_image: str) -> Iterator[Existing]:
    """A two-node kind cluster made by hand, and its kubeconfig; deleted at the end."""
    from kindlab import nodeimage

    kind = find_kind()
    name = f"kindlab-existing-{secrets.token_hex(3)}"
    work = tmp_path_factory.mktemp("existing")
    (work / "kind.yaml").write_text(KIND_CONFIG)
    kubeconfig = work / "kubeconfig"
    try:
        run(
            [
                kind, "create", "cluster", "--name", name, "--image", node_image,
                "--config", work / "kind.yaml", "--kubeconfig", kubeconfig, "--wait", "300s",
            ],
            timeout=900,
        )  # fmt: skip
        debug_image = nodeimage.rootfs_image()
        run([kind, "load", "docker-image", debug_image, "--name", name], timeout=900)
        wait_listed(Kube(kubeconfig), debug_image)
        yield Existing(name, kubeconfig, kind)
    finally:
        run([kind, "delete", "cluster", "--name", name], timeout=300)


def wait_listed(kube: Kube, image: str, timeout: float = 180) -> None:
    """Until every node's kubelet lists ``image`` (it rescans its images every 30 s or so)."""
    deadline = time.monotonic() + timeout
    while True:
        images = kube.node_images()
        if images and all(any(n.endswith(image) for n in names) for names in images.values()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:g}s the nodes still do not list {image}: {images}")
        time.sleep(3)


def kindlab_namespaces(kubeconfig: Path) -> list[str]:
    """Namespaces of kindlab's in the cluster: by label, and by name."""
    items = Kube(kubeconfig).core.list_namespace().items
    return sorted(
        ns.metadata.name
        for ns in items
        if ns.metadata.name.startswith("kindlab-")
        or any(k.startswith("io.kindlab.") for k in (ns.metadata.labels or {}))
    )


def lab_argv(existing: Existing, report: Path) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "labs", "-m", "iptables", "-v", "-p", "no:cacheprovider",
        "--kubeconfig", str(existing.kubeconfig), "--kindlab-report", str(report),
    ]  # fmt: skip


def test_the_iptables_claims_pass_on_an_existing_cluster_reached_without_docker(
    existing: Existing, tmp_path: Path
) -> None:
    clusters_before = run([existing.kind, "get", "clusters"]).split()
    report = tmp_path / "report" / "lab"
    env = {"KINDLAB_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    started_at = time.monotonic()
    try:
        output = run(lab_argv(existing, report), cwd=project_root(), env=env, timeout=1800)
    except CommandError as exc:
        tail = "\n".join((exc.stdout + exc.stderr).splitlines()[-60:])
        pytest.fail(f"the lab failed on the existing cluster (exit {exc.exit_code}):\n{tail}")
    took = time.monotonic() - started_at
    print(f"\nlab on {existing.name}: {took:.0f}s\n" + "\n".join(output.splitlines()[-15:]))

    entries = json.loads(report.with_suffix(".json").read_text())["entries"]
    outcomes = {e["claim_id"]: e["outcome"] for e in entries}
    assert outcomes == dict.fromkeys(IPTABLES_CLAIMS, "passed"), outcomes
    commands = [item["command"] for e in entries for item in e["evidence"] if "command" in item]
    assert commands, "the checks recorded no node command"
    docker = [c for c in commands if c.startswith("docker ")]
    assert not docker, f"evidence lines through Docker: {docker[:3]}"
    prefix = f"kubectl --kubeconfig {existing.kubeconfig} "
    assert all(c.startswith(prefix) for c in commands), commands[:3]
    assert all(" exec debug-" in c for c in commands), commands[:3]

    assert run([existing.kind, "get", "clusters"]).split() == clusters_before
    assert not list((tmp_path / "cache").glob("clusters/*")), "kindlab recorded a cluster"
    assert kindlab_namespaces(existing.kubeconfig) == []


def test_ctrl_c_inside_a_check_leaves_no_namespace(existing: Existing, tmp_path: Path) -> None:
    env = {"KINDLAB_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "run.log"
    reached = re.compile(r"kindlab: kube-proxy synced: ")
    with started(
        lab_argv(existing, tmp_path / "lab"), cwd=project_root(), env=env, log_path=log
    ) as child:
        try:
            deadline = time.monotonic() + REACH_BUDGET
            while not reached.search(log.read_text(errors="replace")):
                if child.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    pytest.fail(f"the run never reached a check's body; its output ends:\n{tail}")
                time.sleep(0.1)
            during = kindlab_namespaces(existing.kubeconfig)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT)
            sent = time.monotonic()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=EXIT_BUDGET + 30)
            took = time.monotonic() - sent
    output = log.read_text(errors="replace")
    tail = "\n".join(output.splitlines()[-25:])
    print(f"\nCtrl-C inside a check: the run ended {took:.1f}s later; namespaces then: {during}")
    assert any(n.startswith("kindlab-debug-") for n in during), during
    assert took <= EXIT_BUDGET, f"the run took {took:.1f}s to end after Ctrl-C:\n{tail}"
    assert kindlab_namespaces(existing.kubeconfig) == [], tail
