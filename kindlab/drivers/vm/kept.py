"""A kept guest: ``kindlab up --mode ipvs`` on a host whose kernel lacks IP_VS.

The guest boots detached from this process (qemu in a session of its own),
creates the ipvs cluster with ``kindlab up`` inside, then serves commands on its
control port (:mod:`kindlab.drivers.vm.agent`), which qemu exposes as a unix socket in
``<cache>/vm/kept/``. ``kindlab vm exec``/``shell`` talk to it; ``kindlab down``
powers it off and removes the directory. One kept guest at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from kindlab.drivers.proc import pid_alive
from kindlab.errors import KindlabError, PreconditionError

from .disk import GuestDisk, vm_dir
from .events import EventReader
from .qemu import Accel, qemu_argv
from .run import lay_out

Progress = Callable[[str], None]
_ids = itertools.count(1)


def _quiet(_: str) -> None:
    pass


def kept_dir() -> Path:
    return vm_dir() / "kept"


@dataclass(frozen=True)
class KeptGuest:
    """A running kept guest, as recorded in its state file."""

    qemu_pid: int
    control: str  # unix socket path
    kernel: str
    accel: str
    node_image: str
    started: float

    @classmethod
    def from_json(cls, data: dict[str, object]) -> KeptGuest:
        return cls(
            qemu_pid=int(str(data["qemu_pid"])),
            control=str(data["control"]),
            kernel=str(data["kernel"]),
            accel=str(data["accel"]),
            node_image=str(data["node_image"]),
            started=float(str(data["started"])),
        )

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def where(self) -> str:
        return f"qemu guest, kernel {self.kernel}, {self.accel}"

    def alive(self) -> bool:
        return pid_alive(self.qemu_pid)


def running_test_guest() -> KeptGuest | None:
    """The newest guest of a test run still booted (to look inside it while it runs)."""
    from .run import runs_dir

    states = sorted(runs_dir().glob("*/state.json"), key=lambda p: p.stat().st_mtime)
    for state in reversed(states):
        try:
            data = json.loads(state.read_text())
            guest = KeptGuest.from_json({**data, "qemu_pid": data["qemu"]})
        except (OSError, ValueError, KeyError):
            continue
        if guest.alive():
            return guest
    return None


def load() -> KeptGuest | None:
    """The kept guest, if one runs (a dead one's directory is removed)."""
    state = kept_dir() / "state.json"
    try:
        guest = KeptGuest.from_json(json.loads(state.read_text()))
    except (OSError, ValueError, KeyError):
        return None
    if not guest.alive():
        shutil.rmtree(kept_dir(), ignore_errors=True)
        return None
    return guest


def start(
    disk: GuestDisk,
    payload: Callable[[Path], Path],
    accel: Accel,
    *,
    cpus: int = 2,
    memory: str = "8G",
    timeout: float = 2400,
    progress: Progress = _quiet,
) -> KeptGuest:
    """Boot a kept guest and wait until its command (``kindlab up``) has finished."""
    if load() is not None:
        raise PreconditionError("a kept guest already runs: `kindlab down` stops it")
    d = kept_dir()
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        spec = lay_out(d, disk, payload, accel, cpus=cpus, memory=memory, name="kindlab-kept-guest")
        progress(
            f"booting a kept guest (kernel {disk.kernel_release}, {accel.name}, no network card)"
        )
        # Detached on purpose: the guest outlives this command, until `kindlab down`.
        proc = subprocess.Popen(
            qemu_argv(spec),
            stdin=subprocess.DEVNULL,
            stdout=(d / "qemu.out").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        guest = KeptGuest(
            qemu_pid=proc.pid,
            control=str(spec.control),
            kernel=disk.kernel_release,
            accel=accel.name,
            node_image=disk.node_image,
            started=time.time(),
        )
        (d / "state.json").write_text(json.dumps(guest.to_json()))
        _follow_until_ready(proc, EventReader(spec.events), spec.console, timeout, progress)
        return guest
    except BaseException:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
        raise


def _follow_until_ready(
    proc: subprocess.Popen[bytes],
    reader: EventReader,
    console: Path,
    timeout: float,
    progress: Progress,
) -> None:
    began = time.monotonic()
    while True:
        for event in reader.poll():
            if event.kind == "stage" and event.data.get("stage") == "ready":
                progress(f"the guest is ready after {time.monotonic() - began:.0f}s")
                return
            if event.kind == "stage" and event.data.get("stage") == "finished":
                raise KindlabError(
                    f"the guest's `kindlab up` failed (exit {event.data.get('detail')})"
                    + _tail(console)
                )
            if event.kind in ("stage", "progress"):
                progress(event.describe())
        if proc.poll() is not None:
            raise KindlabError(
                f"qemu exited ({proc.returncode}) before the guest was ready" + _tail(console)
            )
        if time.monotonic() - began > timeout:
            raise KindlabError(f"the guest was not ready within {timeout:.0f}s" + _tail(console))
        time.sleep(0.5)


def _tail(console: Path, lines: int = 25) -> str:
    try:
        text = [ln for ln in console.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return "\n--- guest console (last lines) ---\n" + "\n".join(text[-lines:])


def request(
    guest: KeptGuest, message: dict[str, object], timeout: float = 660
) -> dict[str, object]:
    """Send one request to the guest's agent and return its reply."""
    message = {"id": next(_ids), **message}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(guest.control)
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise KindlabError(f"the kept guest does not answer on {guest.control}: {exc}") from exc
    if not data.strip():
        raise KindlabError("the kept guest closed its control port without an answer")
    reply: dict[str, object] = json.loads(data.split(b"\n", 1)[0])
    return reply


def exec_in(guest: KeptGuest, argv: list[str], timeout: float = 600) -> tuple[int, str, str]:
    """Run ``argv`` in the guest: (exit code, stdout, stderr)."""
    reply = request(guest, {"argv": argv, "timeout": timeout}, timeout + 60)
    return (
        int(str(reply.get("exit", 1))),
        str(reply.get("stdout", "")),
        str(reply.get("stderr", "")),
    )


def stop(progress: Progress = _quiet) -> bool:
    """Power the kept guest off (then kill it if it lingers); remove its directory."""
    guest = load()
    if guest is None:
        shutil.rmtree(kept_dir(), ignore_errors=True)
        return False
    progress(f"powering off the kept guest (qemu {guest.qemu_pid})")
    with contextlib.suppress(KindlabError):
        request(guest, {"poweroff": True}, timeout=10)
    deadline = time.monotonic() + 20  # its disk is thrown away: no need to wait long
    while guest.alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    if guest.alive():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(guest.qemu_pid, signal.SIGKILL)
    shutil.rmtree(kept_dir(), ignore_errors=True)
    return True
