"""qemu: the command line of a guest run, and which accelerator to use.

:func:`qemu_argv` is pure. :func:`choose_accel` boots the guest's kernel once
under KVM and watches its serial console: a kernel prints its banner within a
second or two of starting, so silence for a few seconds means KVM cannot run
this guest and the run uses TCG (software emulation) instead. That happens on
hosts whose KVM is paravirtual (PVM, whose guests need a kernel built for it):
``/dev/kvm`` opens and ``KVM_CREATE_VM`` succeeds there, and only a boot tells.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kindlab.drivers.proc import started

from .guest import ARTIFACTS_PORT, CONTROL_PORT, EVENTS_PORT

QEMU = "qemu-system-x86_64"
#: What a Linux kernel prints first on the serial console.
BANNER = b"Linux version"
PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Accel:
    """The accelerator a guest runs with, and why it was chosen."""

    name: str  # "kvm" or "tcg"
    reason: str

    def qemu_args(self) -> list[str]:
        if self.name == "kvm":
            return ["-accel", "kvm", "-cpu", "host"]
        # multi-threaded TCG: one host thread per vCPU
        return ["-accel", "tcg,thread=multi", "-cpu", "max"]


@dataclass(frozen=True)
class GuestSpec:
    """Everything a guest run's command line is made of."""

    kernel: Path
    initrd: Path
    root_disk: Path  # qcow2 overlay of the cached raw disk
    payload_disk: Path  # raw ext4
    events: Path  # host file the events port writes to
    artifacts: Path  # host file the artifacts port writes to
    console: Path  # host file of the serial console
    pidfile: Path
    accel: Accel
    cpus: int = 2
    memory: str = "8G"
    name: str = "kindlab-guest"
    control: Path | None = None  # unix socket of the command agent (a kept guest)


def qemu_argv(spec: GuestSpec, qemu: str = QEMU) -> list[str]:
    """The qemu command line of a guest run (pure).

    No network card (``-nic none``): the guest reaches nothing. The host talks to
    it through two virtio-serial ports written to files, and reads its console.
    """
    append = " ".join(
        [
            "root=/dev/vda",
            "rw",
            "console=ttyS0",
            "panic=10",
            "quiet",
            "systemd.show_status=1",
            "net.ifnames=0",
            # IPv4 only: kube-proxy then runs one proxier, not two. In ipvs mode each
            # sync runs `ipset` and `iptables` dozens of times, about 0.6 s apiece under
            # TCG: with both families its first sync took minutes (seen 2026-11-28).
            "ipv6.disable=1",
        ]
    )
    control = (
        [
            "-chardev",
            f"socket,id=control,path={spec.control},server=on,wait=off",
            "-device",
            f"virtserialport,chardev=control,name={CONTROL_PORT}",
        ]
        if spec.control
        else []
    )
    return [
        qemu,
        "-name",
        spec.name,
        *spec.accel.qemu_args(),
        "-smp",
        str(spec.cpus),
        "-m",
        spec.memory,
        "-kernel",
        str(spec.kernel),
        "-initrd",
        str(spec.initrd),
        "-append",
        append,
        "-drive",
        f"file={spec.root_disk},format=qcow2,if=virtio,cache=unsafe,discard=unmap",
        "-drive",
        f"file={spec.payload_disk},format=raw,if=virtio,readonly=on",
        "-device",
        "virtio-serial-pci",
        "-chardev",
        f"file,id=events,path={spec.events}",
        "-device",
        f"virtserialport,chardev=events,name={EVENTS_PORT}",
        "-chardev",
        f"file,id=artifacts,path={spec.artifacts}",
        "-device",
        f"virtserialport,chardev=artifacts,name={ARTIFACTS_PORT}",
        *control,
        "-device",
        "virtio-rng-pci",
        *_isolated(spec.console),
        "-pidfile",
        str(spec.pidfile),
    ]


def _isolated(console: Path) -> list[str]:
    """No network card, no display or monitor; the serial console to a file; no reboot."""
    return [
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console}",
        "-no-reboot",
    ]


def probe_argv(kernel: Path, console: Path, accel: Accel, qemu: str = QEMU) -> list[str]:
    """A boot of the bare kernel (no disk): enough to see whether it prints at all."""
    return [
        qemu,
        *accel.qemu_args(),
        "-smp",
        "1",
        "-m",
        "256M",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
        *_isolated(console),
    ]


def kvm_precheck(dev: Path = Path("/dev/kvm")) -> str | None:
    """Why KVM cannot be used at all, or None when a probe boot is worth it."""
    if not dev.exists():
        return f"{dev} does not exist"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"{dev} is not readable and writable by this user"
    return None


def pvm_hint(sys_module: Path = Path("/sys/module")) -> str:
    if (sys_module / "kvm_pvm").exists():
        return " (this host's KVM is PVM, whose guests need a kernel built with CONFIG_PVM_GUEST)"
    return ""


def choose_accel(kernel: Path, *, mode: str = "auto", qemu: str = QEMU) -> Accel:
    """KVM if a probe boot of ``kernel`` prints its banner in time, else TCG.

    ``mode``: ``auto`` probes, ``kvm`` and ``tcg`` force (no probe).
    """
    if mode == "tcg":
        return Accel("tcg", "software emulation, as asked")
    if mode == "kvm":
        return Accel("kvm", "KVM, as asked")
    why = kvm_precheck()
    if why:
        return Accel("tcg", f"KVM unusable ({why}); software emulation")
    kvm = Accel("kvm", "")
    with tempfile.TemporaryDirectory(prefix="kindlab-kvm-probe-") as tmp:
        console = Path(tmp) / "console"
        console.touch()
        log = Path(tmp) / "qemu.out"
        began = time.monotonic()
        with started(probe_argv(kernel, console, kvm, qemu), log_path=log, grace=0) as proc:
            while time.monotonic() - began < PROBE_SECONDS:
                if BANNER in console.read_bytes():
                    took = time.monotonic() - began
                    return Accel("kvm", f"KVM: a probe boot printed its banner in {took:.1f}s")
                if proc.poll() is not None:
                    err = log.read_text(errors="replace").strip()
                    return Accel("tcg", f"KVM probe: qemu exited {proc.returncode}: {err[-300:]}")
                time.sleep(0.2)
    return Accel(
        "tcg",
        f"KVM probe: the kernel printed nothing in {PROBE_SECONDS:g}s under KVM"
        f"{pvm_hint()}; software emulation (TCG) instead",
    )
