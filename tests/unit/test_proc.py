"""The process runner on real (tiny) commands: output, exit codes, deadlines, interrupts."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from kindlab.drivers import proc
from kindlab.drivers.proc import run, started
from kindlab.errors import CommandError, PreconditionError


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Every test here also checks that the runner left no thread behind."""
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) == before


def gone(pid: int, within: float = 2.0) -> bool:
    """Ended within a moment (a SIGKILL is not instant): no such process, or a zombie."""
    deadline = time.monotonic() + within
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_returns_stdout_and_keeps_stderr_apart() -> None:
    assert run(["sh", "-c", "echo out; echo err >&2"]) == "out\n"


def test_nonzero_exit_raises_with_a_line_to_paste_and_both_streams() -> None:
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", "echo partial; echo 'no such thing' >&2; exit 3"])
    err = info.value
    assert (err.exit_code, err.stdout, err.stderr, err.timed_out) == (
        3,
        "partial\n",
        "no such thing\n",
        False,
    )
    assert str(err).splitlines() == [
        "sh -c 'echo partial; echo '\"'\"'no such thing'\"'\"' >&2; exit 3': exited 3",
        "--- stdout ---",
        "partial",
        "--- stderr ---",
        "no such thing",
    ]


def test_streamed_lines_merge_both_streams_and_are_returned() -> None:
    seen: list[str] = []
    out = run(["sh", "-c", "echo one; echo two >&2; printf 'three\\r\\nfour'"], on_line=seen.append)
    assert seen == ["one", "two", "three", "four"]
    assert out == "one\ntwo\nthree\nfour"


def test_streamed_failure_carries_the_merged_output() -> None:
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", "echo step; echo broke >&2; exit 4"], on_line=lambda _: None)
    assert (info.value.exit_code, info.value.stdout) == (4, "step\nbroke")


@pytest.mark.parametrize("stream", [False, True], ids=["captured", "streamed"])
def test_timeout_holds_and_stops_the_whole_group(stream: bool, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    seen: list[str] = []
    started_at = time.monotonic()
    with pytest.raises(CommandError, match="timed out") as info:
        run(
            ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; echo begun; wait"],
            on_line=seen.append if stream else None,
            timeout=0.5,
        )
    assert time.monotonic() - started_at < 2
    assert info.value.timed_out and info.value.exit_code is None
    assert "begun" in info.value.stdout
    assert seen == (["begun"] if stream else [])
    # The grandchild (sleep 30) went with its parent.
    assert gone(int(pidfile.read_text()))


def test_first_output_timeout_stops_a_command_that_says_nothing() -> None:
    started_at = time.monotonic()
    with pytest.raises(CommandError, match="timed out") as info:
        run(["sleep", "30"], on_line=lambda _: None, first_output_timeout=0.4)
    assert time.monotonic() - started_at < 2
    assert info.value.timed_out


def test_first_output_timeout_no_longer_holds_once_the_command_printed() -> None:
    seen: list[str] = []
    out = run(
        ["sh", "-c", "echo answered; sleep 0.8; echo done"],
        on_line=seen.append,
        first_output_timeout=0.3,
    )
    assert seen == ["answered", "done"] and out == "answered\ndone"


def test_timeout_ends_a_child_that_ignores_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proc, "KILL_GRACE", 0.3)
    started_at = time.monotonic()
    with pytest.raises(CommandError, match="timed out"):
        run(["sh", "-c", "trap '' TERM; echo ready; sleep 30"], on_line=print, timeout=0.3)
    assert time.monotonic() - started_at < 2


def test_background_child_holding_the_pipe_does_not_hold_the_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(proc, "DRAIN_AFTER_EXIT", 0.2)
    pidfile = tmp_path / "background.pid"
    started_at = time.monotonic()
    try:
        assert run(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; echo started"]) == "started\n"
        assert time.monotonic() - started_at < 2
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_interrupt_stops_the_command_and_propagates(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"

    def ctrl_c(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(["sh", "-c", f"echo $$ > {pidfile}; sleep 30"], on_line=lambda _: None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert gone(int(pidfile.read_text()))


def test_input_bytes_and_stdin_path_and_env_and_cwd(tmp_path: Path) -> None:
    assert run(["cat"], input_bytes=b"x" * 200_000) == "x" * 200_000
    source = tmp_path / "in.txt"
    source.write_text("from a file\n")
    assert run(["cat"], stdin_path=source) == "from a file\n"
    assert run(["sh", "-c", 'echo "$KL_X"'], env={"KL_X": "set"}) == "set\n"
    assert run(["pwd"], cwd=tmp_path).strip() == str(tmp_path)
    assert run(["cat"]) == ""  # no stdin given: nothing to read, never the terminal


def test_input_to_a_command_that_does_not_read_it() -> None:
    assert run(["true"], input_bytes=b"y" * 1_000_000) == ""


def test_missing_program_and_directory_are_preconditions(tmp_path: Path) -> None:
    with pytest.raises(PreconditionError, match="kindlab-no-such-tool is needed but was not"):
        run(["kindlab-no-such-tool", "--help"])
    with pytest.raises(PreconditionError, match=r"working directory .*/nowhere does not exist"):
        run(["true"], cwd=tmp_path / "nowhere")


def test_started_child_is_stopped_with_its_group_when_the_block_ends(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    pidfile = tmp_path / "grandchild.pid"
    with (
        pytest.raises(RuntimeError),
        started(
            ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; echo up; wait"], log_path=log
        ) as child,
    ):
        while "up" not in log.read_text():
            time.sleep(0.05)
        raise RuntimeError("the block failed")
    assert child.returncode is not None
    assert gone(int(pidfile.read_text()))
