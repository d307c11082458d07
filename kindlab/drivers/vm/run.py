"""One guest run: boot the cached disk under qemu, stream its events, collect results.

:class:`GuestRun` is a context manager that owns everything of one run: the
run directory (``<cache>/vm/runs/<id>/``: copy-on-write overlay, payload disk,
console, event and artifact files), and the qemu process (in a session of its
own). Leaving the ``with`` block, normally, on an error or on Ctrl-C, kills qemu
and removes the run directory; the console, the events and the guest's results
are first copied to ``keep_dir`` when one is given. A run whose owner died is
found by its state file and removed at the next start (:func:`remove_leftovers`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kindlab.drivers.proc import pid_alive, run, started
from kindlab.errors import KindlabError, PreconditionError

from .disk import GuestDisk, vm_dir
from .events import Event, EventReader
from .qemu import QEMU, Accel, GuestSpec, qemu_argv

Progress = Callable[[str], None]


class GuestError(KindlabError):
    """The guest failed or went silent; the message ends with its console's tail."""


def _quiet(_: str) -> None:
    pass


def runs_dir() -> Path:
    path = vm_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_leftovers(progress: Progress = _quiet) -> list[Path]:
    """Kill the qemu of runs whose owner is gone and remove their directories."""
    removed = []
    for state_file in sorted(runs_dir().glob("*/state.json")):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        if pid_alive(int(state.get("owner", 0) or 0)):
            continue
        qemu_pid = int(state.get("qemu", 0) or 0)
        if qemu_pid and pid_alive(qemu_pid) and _is_qemu(qemu_pid):
            progress(f"stopping leftover qemu {qemu_pid} of a dead run")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(qemu_pid, signal.SIGKILL)
        shutil.rmtree(state_file.parent, ignore_errors=True)
        removed.append(state_file.parent)
    return removed


def _is_qemu(pid: int) -> bool:
    try:
        return "qemu" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def lay_out(
    directory: Path,
    disk: GuestDisk,
    payload: Callable[[Path], Path],
    accel: Accel,
    *,
    cpus: int,
    memory: str,
    name: str,
) -> GuestSpec:
    """A guest's files in ``directory``: a copy-on-write overlay of ``disk``, the payload,
    the (empty) console, event and artifact files, and the control socket's path."""
    overlay = directory / "root.qcow2"
    run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(disk.path), str(overlay)]
    )
    spec = GuestSpec(
        kernel=disk.kernel,
        initrd=disk.initrd,
        root_disk=overlay,
        payload_disk=payload(directory / "payload.raw"),
        events=directory / "events.jsonl",
        artifacts=directory / "artifacts.tar",
        console=directory / "console.log",
        pidfile=directory / "qemu.pid",
        accel=accel,
        cpus=cpus,
        memory=memory,
        name=name,
        control=directory / "control.sock",
    )
    for path in (spec.events, spec.artifacts, spec.console):
        path.touch()
    return spec


@dataclass(frozen=True)
class GuestResult:
    """What a finished run left: its exit status and where its files were kept."""

    exit_status: int | None
    kept: Path | None
    kernel: str
    accel: Accel

    @property
    def where(self) -> str:
        return f"qemu guest, kernel {self.kernel}, {self.accel.name}"


class GuestRun:
    """Boot ``disk`` with ``payload`` and follow the guest until it powers off."""

    def __init__(
        self,
        disk: GuestDisk,
        payload: Callable[[Path], Path],
        accel: Accel,
        *,
        cpus: int = 2,
        memory: str = "8G",
        timeout: float = 2400,
        keep_dir: Path | None = None,
        progress: Progress = _quiet,
    ) -> None:
        self.disk = disk
        self.accel = accel
        self.cpus = cpus
        self.memory = memory
        self.timeout = timeout
        self.keep_dir = keep_dir
        self.progress = progress
        self.id = uuid.uuid4().hex[:10]
        self.dir = runs_dir() / self.id
        self._payload = payload
        self._proc: subprocess.Popen[bytes] | None = None
        self._stack = contextlib.ExitStack()
        self._reader: EventReader | None = None
        self._started = 0.0
        self.exit_status: int | None = None
        self.kept: Path | None = None

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> GuestRun:
        self.dir.mkdir(parents=True)
        self._write_state()
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _write_state(self, **extra: object) -> None:
        state = {"owner": os.getpid(), "started": time.time(), **extra}
        (self.dir / "state.json").write_text(json.dumps(state))

    def _start(self) -> None:
        if not shutil.which(QEMU):
            raise PreconditionError(f"{QEMU} is needed (Debian: qemu-system-x86, qemu-utils)")
        spec = lay_out(
            self.dir,
            self.disk,
            self._payload,
            self.accel,
            cpus=self.cpus,
            memory=self.memory,
            name="kindlab-guest",
        )
        argv = qemu_argv(spec)
        (self.dir / "qemu.argv").write_text(json.dumps(argv))
        self.progress(
            f"booting the guest (kernel {self.disk.kernel_release}, {self.accel.name}, "
            f"{self.cpus} vCPUs, {self.memory}, no network card)"
        )
        self._started = time.monotonic()
        self._proc = self._stack.enter_context(
            started(argv, log_path=self.dir / "qemu.out", grace=5)
        )
        self._write_state(
            qemu=self._proc.pid,
            control=str(spec.control),
            kernel=self.disk.kernel_release,
            accel=self.accel.name,
            node_image=self.disk.node_image,
        )
        self._reader = EventReader(spec.events)

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.progress("stopping qemu")
        self._stack.close()  # stops qemu's process group, if it still runs
        if self._proc is not None and self.keep_dir is not None:
            with contextlib.suppress(OSError):
                self.kept = self._keep(self.keep_dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _keep(self, dest: Path) -> Path:
        """Copy the console, events and the guest's results to ``dest`` (replaced)."""
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in ("console.log", "events.jsonl", "qemu.argv", "qemu.out"):
            src = self.dir / name
            if src.exists():
                shutil.copy2(src, dest / name)
        artifacts = self.dir / "artifacts.tar"
        if artifacts.exists() and artifacts.stat().st_size:
            results = dest / "guest"
            results.mkdir()
            with contextlib.suppress(tarfile.TarError, OSError), tarfile.open(artifacts) as tar:
                tar.extractall(results, filter="data")
        return dest

    # -- following the guest -------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def events(self, *, poll: float = 0.5) -> Iterator[Event]:
        """Every event, as it arrives, until the guest powers off (or the timeout)."""
        assert self._proc is not None and self._reader is not None
        finished = False
        while True:
            for event in self._reader.poll():
                if event.kind == "stage" and event.data.get("stage") == "finished":
                    finished = True
                yield event
            code = self._proc.poll()
            if code is not None:
                for event in self._reader.poll():
                    yield event
                self.exit_status = code
                if not finished:
                    raise GuestError(
                        f"qemu exited ({code}) before the guest finished its run"
                        + self.console_tail()
                    )
                return
            if self.elapsed > self.timeout:
                raise GuestError(
                    f"the guest did not finish within {self.timeout:.0f}s" + self.console_tail()
                )
            time.sleep(poll)

    def console_tail(self, lines: int = 30) -> str:
        try:
            text = (self.dir / "console.log").read_text(errors="replace")
        except OSError:
            return ""
        tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
        crash = kernel_crash(text)
        said = f"\nthe guest's kernel crashed: {crash}" if crash else ""
        return said + "\n--- guest console (last lines) ---\n" + "\n".join(tail)


_CRASH = re.compile(
    r"\]\s*(?:(?P<head>(?:Oops|BUG): .*)|(?P<rip>RIP: 0010:.*)|(?P<panic>Kernel panic - .*))$"
)


def kernel_crash(console: str) -> str | None:
    """The guest kernel's own words when it crashed (its first Oops/BUG, where, and the
    panic), else None.

    >>> kernel_crash("[ 1.0] Oops: int3: 0000 [#1]\\n[ 1.1] RIP: 0010:netif_rx_internal+0x1c/0x110")
    'Oops: int3: 0000 [#1]; RIP: 0010:netif_rx_internal+0x1c/0x110'
    >>> kernel_crash("[ 1.0] kindlab-guest: finished 0") is None
    True
    """
    first: dict[str, str] = {}
    for line in console.splitlines():
        match = _CRASH.search(line.rstrip())
        if match and match.lastgroup:
            first.setdefault(match.lastgroup, match.group(match.lastgroup))
    return "; ".join(first[k] for k in ("head", "rip", "panic") if k in first) or None
