"""Benchmark the ipvs lab in a qemu guest: cold disk build, warm runs, where time goes.

    python bench/vm.py [--runs N] [--cold] [--node-image TAG] [--keep DIR]

--cold first removes the cached guest root, Docker data roots and disks
(``<cache>/vm``) and times building them again (debootstrap, the guest's dockerd
loading the node image, mkfs). Each run is ``pytest labs -m ipvs --ipvs-vm always``
in a child process, timed from outside; the guest's own stage stamps (boot, Docker,
cluster, each test) come from the events it sent. Each run's lab report, events,
console and guest logs are kept under DIR/runN (default reports/bench-vm/<time>).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kindlab import nodeimage  # noqa: E402
from kindlab.drivers.kind import find_kind  # noqa: E402
from kindlab.drivers.vm import disk  # noqa: E402


def cold_disk(node_image: str) -> None:
    vm = disk.vm_dir()
    for path in vm.iterdir():
        if path.name.startswith(("rootfs-", "docker-", "disk-")):
            subprocess.run(["rm", "-rf", str(path)], check=True)
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"  [{time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    kind = find_kind(None)
    built = disk.build_disk(node_image, kind, progress)
    took = time.monotonic() - started
    size = built.path.stat().st_blocks * 512 / 1e9
    print(
        f"cold guest disk (debootstrap, Docker data root, mkfs): {took:.0f} s ({took / 60:.1f} min)"
    )
    print(f"guest disk: {built.path.name}, {size:.1f} GB allocated, kernel {built.kernel_release}")


def stages(events: Path) -> list[tuple[str, float]]:
    """(label, guest uptime) of each stage and test report the guest sent."""
    out = []
    for line in events.read_text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "stage":
            out.append((f"{ev['stage']} {ev.get('detail', '')}".strip(), float(ev["uptime"])))
        elif ev.get("event") == "progress":
            msg = str(ev.get("message", ""))
            if msg.startswith(("cluster ", "creating", "waiting", "kube-proxy synced")):
                out.append((msg[:90], float("nan")))
    return out


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def one_run(i: int, node_image: str, report: Path) -> float:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "labs",
        "-m",
        "ipvs",
        "--ipvs-vm",
        "always",
        "--node-image",
        node_image,
        "--kindlab-report",
        str(report),
        "-p",
        "no:cacheprovider",
    ]
    started = time.monotonic()
    # The child owns the guest: on Ctrl-C or SIGTERM it must stop qemu itself, and it
    # needs its output pipe for that (killed first, this script left a guest behind).
    child = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        stdout, _ = child.communicate()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)  # SIGINT may be ignored (a background job)
        child.communicate()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    took = time.monotonic() - started
    summary = [ln for ln in stdout.splitlines() if " in " in ln and "=" in ln][-1:]
    print(f"run {i}: {took:.0f} s ({took / 60:.1f} min), exit {child.returncode}: {summary}")
    events = report.parent / "ipvs-vm" / "events.jsonl"
    if events.exists():
        for label, uptime in stages(events):
            where = f"{uptime:7.0f}s" if uptime == uptime else "        "
            print(f"    {where}  {label}")
    if child.returncode != 0:
        print(stdout[-3000:])
    return took


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--cold", action="store_true", help="rebuild the guest disk first, timed")
    p.add_argument("--node-image", default=None)
    p.add_argument("--keep", type=Path, default=None, help="where each run's reports go")
    args = p.parse_args()
    node_image = args.node_image or nodeimage.build()
    print(f"node image: {node_image}")
    if args.cold:
        cold_disk(node_image)
    keep = args.keep or ROOT / "reports" / "bench-vm" / time.strftime("%Y%m%dT%H%M%S")
    times = [one_run(i + 1, node_image, keep / f"run{i + 1}" / "lab") for i in range(args.runs)]
    print(f"warm runs: {', '.join(f'{t:.0f}' for t in times)} s; reports in {keep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
