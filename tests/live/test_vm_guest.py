"""The VM backend on real qemu: the guest boots with IP_VS and dummy, and Ctrl-C
stops it leaving nothing behind. Needs qemu, debootstrap and a Docker engine with a
kindlab node image (built on first use); a few minutes under TCG."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kindlab import nodeimage
from kindlab.drivers import vm
from kindlab.drivers.kind import find_kind
from kindlab.drivers.proc import pid_alive
from kindlab.drivers.vm.run import runs_dir

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        shutil.which("qemu-system-x86_64") is None,
        reason="qemu-system-x86_64 is not installed (bash scripts/setup.sh installs it)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def guest_disk() -> vm.GuestDisk:
    image = nodeimage.build(progress=print)
    return vm.build_disk(image, find_kind(None), print)


def test_the_guest_boots_with_ip_vs_and_dummy_and_no_network_card(
    guest_disk: vm.GuestDisk, tmp_path: Path
) -> None:
    accel = vm.choose_accel(guest_disk.kernel)
    command = ["sh", "-c", "uname -r; lsmod; ip -o link"]
    with vm.GuestRun(
        guest_disk,
        lambda dest: vm.payload_disk(dest, vm.kindlab_sources(), command),
        accel,
        memory="2G",
        timeout=900,
        keep_dir=tmp_path / "kept",
        progress=print,
    ) as run:
        stages = [e.data for e in run.events() if e.kind == "stage"]
    names = [s["stage"] for s in stages]
    assert names[0] == "booted" and names[-1] == "finished", names
    assert stages[-1]["detail"] == "0", stages[-1]
    modules = next(s["detail"] for s in stages if s["stage"] == "modules")
    assert "ip_vs" in modules.split() and "dummy" in modules.split(), modules
    log = (tmp_path / "kept" / "guest" / "command.log").read_text()
    assert guest_disk.kernel_release in log
    links = [ln.split(":")[1].strip() for ln in log.splitlines() if ": <" in ln]
    # loopback only (and docker's bridge): no network card reaches anything
    assert not [name for name in links if name.startswith(("eth", "ens", "enp"))], links
    assert not list(runs_dir().glob(f"{run.id}*")), "the run directory was left behind"


def test_ctrl_c_during_the_guest_run_stops_qemu_and_leaves_nothing(
    guest_disk: vm.GuestDisk, tmp_path: Path
) -> None:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "labs/test_proxy_mode.py",
        "-m",
        "ipvs",
        "--ipvs-vm",
        "always",
        "--node-image",
        guest_disk.node_image,
        "--kindlab-report",
        str(tmp_path / "lab"),
        "-p",
        "no:cacheprovider",
    ]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "KINDLAB_IPVS_VM": "always"},
    )
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                line = proc.stdout.readline()
                seen.append(line)
                if "guest booted" in line:
                    break
        else:
            pytest.fail("the guest did not boot within 300 s:\n" + "".join(seen[-20:]))
        qemus = _qemu_pids()
        assert qemus, "no qemu process while the guest runs"
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took < 10, f"the run took {took:.1f}s to end after SIGINT"
    assert not [pid for pid in qemus if pid_alive(pid)], "qemu outlived the interrupted run"
    assert not list(runs_dir().iterdir()), "a guest run directory was left behind"
    kept = tmp_path / "ipvs-vm" / "console.log"
    assert kept.exists() and kept.stat().st_size > 0, "the console was not kept beside the report"


def _qemu_pids() -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", "qemu-system-x86_64 -name kindlab-guest"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(p) for p in out.split()]
