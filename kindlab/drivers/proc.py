"""Running commands: the one process runner of the kind driver, the image builder and the VM.

Commands are argv lists, never shell strings. A command that fails or times out raises
:class:`~kindlab.errors.CommandError` (argv, exit code, output; ``str()`` starts with a
line to paste into a shell); a program that is not installed raises
:class:`~kindlab.errors.PreconditionError`.

Each child runs in a session (so a process group) of its own, and its pipes are read
with :mod:`selectors` in the calling thread. So:

- a timeout holds while output streams: at the deadline the child's whole group (the
  command and whatever it started) gets SIGTERM, then SIGKILL after :data:`KILL_GRACE`
  seconds;
- Ctrl-C reaches Python alone, not the child: :func:`run` stops the child's group the
  same way and re-raises :class:`KeyboardInterrupt`, so the caller decides what to clean
  up, knowing that the command no longer runs;
- no thread is ever started, so nothing can keep the interpreter from exiting.

The price of the group of its own: a signal that kills Python outright (SIGTERM from
``timeout`` or CI, SIGHUP when the terminal closes) does not reach the child, which
runs on to its end; a cluster it was creating is then removed as a leftover at the
next start (see :mod:`kindlab.drivers.clusters`).

Why not the ``sh`` package, which the kind driver used: ``sh`` implements ``_timeout``
with a non-daemon :class:`threading.Timer` that is cancelled only when the command ends
on its own. Ctrl-C during ``kind create`` left that timer alive, and interpreter
shutdown then waited on it for up to the full ten minutes (issue 9). Every ``sh``
command also runs three threads and calls output callbacks on one of them, where a
KeyboardInterrupt never arrives. What kindlab needs (argv in; output or a typed error
out; lines streamed; a deadline; a process group to stop) is the small loop below.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

from kindlab.errors import CommandError, PreconditionError

LineSink = Callable[[str], None]
Arg = str | os.PathLike[str]

#: Seconds a stopped command gets between SIGTERM and SIGKILL.
KILL_GRACE = 3.0
#: Seconds output is still read after the command exited, for a background child of
#: it that holds the pipe open (the command's result does not wait for such a child).
DRAIN_AFTER_EXIT = 2.0
#: How often the read loop looks whether the command exited while its pipe stays open.
_POLL = 0.5
_READ_SIZE = 65536
_PIPE_BUF = 512


def run(
    argv: Sequence[Arg],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    stdin_path: Path | None = None,
    on_line: LineSink | None = None,
    timeout: float | None = None,
    first_output_timeout: float | None = None,
) -> str:
    """Run ``argv`` and return its stdout; raise :class:`CommandError` when it fails.

    ``env`` is added to this process's environment. Standard input is ``input_bytes``,
    the file ``stdin_path``, or nothing. With ``on_line`` the merged stdout+stderr is
    passed on line by line as it comes (progress of long steps) and also returned.
    ``timeout`` counts from the start and holds while lines stream.
    ``first_output_timeout`` stops a command that has printed nothing that long (one
    waiting on a peer that never answers) as timed out; once it prints, only
    ``timeout`` holds.
    """
    args = [os.fspath(a) for a in argv]
    if input_bytes is not None and stdin_path is not None:
        raise ValueError("give input_bytes or stdin_path, not both")
    now = time.monotonic()
    deadline = None if timeout is None else now + timeout
    first = None if first_output_timeout is None else now + first_output_timeout
    with contextlib.ExitStack() as stack:
        stdin = subprocess.PIPE if input_bytes is not None else _stdin(stack, stdin_path)
        merged = on_line is not None
        proc = _popen(
            args,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        )
        try:
            out, err, timed_out = _communicate(proc, input_bytes, on_line, deadline, first)
            if timed_out:
                stop(proc)
            else:
                proc.wait()
        except BaseException:
            stop(proc)
            raise
        finally:
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    text = "\n".join(out.lines) if merged else out.text()
    if timed_out:
        raise CommandError(args, None, text, err.text(), timed_out=True)
    if proc.returncode != 0:
        raise CommandError(args, proc.returncode, text, err.text())
    return text


@contextlib.contextmanager
def started(
    argv: Sequence[Arg],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin_path: Path | None = None,
    log_path: Path | None = None,
    grace: float | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running child (a VM, a port-forward) for the duration of a ``with`` block.

    Its stdout and stderr are appended to ``log_path`` (else discarded). However the
    block ends (normally, by an exception, by Ctrl-C) the child's whole process group
    gets SIGTERM, then SIGKILL after ``grace`` seconds (default :data:`KILL_GRACE`), and
    is reaped.
    """
    args = [os.fspath(a) for a in argv]
    with contextlib.ExitStack() as stack:
        out: int | IO[bytes] = subprocess.DEVNULL
        if log_path is not None:
            out = stack.enter_context(open(log_path, "ab"))
        stdin = _stdin(stack, stdin_path)
        proc = _popen(args, cwd=cwd, env=env, stdin=stdin, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            stop(proc, grace=grace)


def stop(proc: subprocess.Popen[bytes], *, grace: float | None = None) -> None:
    """End a child started here and everything in its process group, and reap it.

    SIGTERM first; SIGKILL after ``grace`` seconds (default :data:`KILL_GRACE`), or at
    once on a second Ctrl-C.
    """
    try:
        _signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE if grace is None else grace)
    finally:
        # Also reaches members of the group that outlived or ignored the SIGTERM.
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _stdin(stack: contextlib.ExitStack, path: Path | None) -> int | IO[bytes]:
    """The file at ``path``, open until ``stack`` closes; nothing to read without one."""
    return subprocess.DEVNULL if path is None else stack.enter_context(open(path, "rb"))


def _popen(
    args: list[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    stdin: int | IO[bytes],
    stdout: int | IO[bytes],
    stderr: int | IO[bytes],
) -> subprocess.Popen[bytes]:
    full_env = None if env is None else {**os.environ, **env}
    try:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            bufsize=0,
            # A group of its own: the terminal's Ctrl-C goes to Python only, and a
            # timeout or an interrupt can stop the command with all its children.
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if cwd is not None and str(exc.filename) == os.fspath(cwd):
            raise PreconditionError(f"{args[0]}: working directory {cwd} does not exist") from exc
        raise PreconditionError(f"{args[0]} is needed but was not found on PATH") from exc
    except PermissionError as exc:
        raise PreconditionError(f"{args[0]} is not executable: {exc.strerror}") from exc


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group id is the child's pid (start_new_session); it stays reserved while any
    # member of the group lives, so this cannot reach an unrelated process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class _Output:
    """Bytes read from one pipe; with a sink, also cut into lines as they arrive."""

    def __init__(self, sink: LineSink | None = None) -> None:
        self.data = bytearray()
        self.sink = sink
        self.lines: list[str] = []
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if self.sink is not None:
            self._split(self._partial + self._decoder.decode(chunk))

    def close(self) -> None:
        if self.sink is not None:
            self._split(self._partial + self._decoder.decode(b"", final=True), final=True)

    def _split(self, text: str, *, final: bool = False) -> None:
        # Universal newlines, as a text-mode pipe gives them. A "\r" at the end may be
        # the first half of a "\r\n" that the next chunk completes.
        cut = len(text) - 1 if text.endswith("\r") and not final else len(text)
        lines = text[:cut].replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._partial = lines.pop() + text[cut:]
        if final and self._partial:
            lines.append(self._partial)
            self._partial = ""
        assert self.sink is not None
        for line in lines:
            self.lines.append(line)
            self.sink(line)

    def text(self) -> str:
        return self.data.decode(errors="replace")


def _communicate(
    proc: subprocess.Popen[bytes],
    input_bytes: bytes | None,
    on_line: LineSink | None,
    deadline: float | None,
    first_output: float | None = None,
) -> tuple[_Output, _Output, bool]:
    """Feed stdin, read stdout/stderr until EOF; True when the deadline came first.

    ``first_output`` is a second deadline that holds only until the first byte of output.
    """
    out, err = _Output(on_line), _Output()
    sinks: dict[int, _Output] = {}
    with selectors.DefaultSelector() as sel:
        if proc.stdout is not None:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sinks[proc.stdout.fileno()] = out
        if proc.stderr is not None:
            sel.register(proc.stderr, selectors.EVENT_READ)
            sinks[proc.stderr.fileno()] = err
        pending = memoryview(input_bytes or b"")
        stdin = proc.stdin
        if stdin is not None:
            sel.register(stdin, selectors.EVENT_WRITE)
        exited_at: float | None = None
        while sel.get_map():
            now = time.monotonic()
            due = deadline
            if first_output is not None and not (out.data or err.data):
                due = first_output if due is None else min(due, first_output)
            if due is not None and now >= due:
                return out, err, True
            if proc.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at >= DRAIN_AFTER_EXIT:
                    break
            wait = _POLL if due is None else min(_POLL, due - now)
            for key, _ in sel.select(wait):
                fd = key.fd
                if stdin is not None and key.fileobj is stdin:
                    pending = _write_some(fd, pending)
                    if not pending:
                        sel.unregister(stdin)
                        stdin.close()
                    continue
                chunk = os.read(fd, _READ_SIZE)
                if chunk:
                    sinks[fd].feed(chunk)
                else:
                    sel.unregister(key.fileobj)
    out.close()
    if deadline is not None:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return out, err, True
    return out, err, False


def _write_some(fd: int, pending: memoryview) -> memoryview:
    """Write what the pipe takes without blocking; a reader that went away takes all."""
    try:
        written = os.write(fd, pending[:_PIPE_BUF])
    except BrokenPipeError:
        return pending[:0]
    return pending[written:]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
