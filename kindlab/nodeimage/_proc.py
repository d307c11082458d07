"""Running commands for the node-image builder: argv lists in, CommandError out."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kindlab.errors import CommandError, PreconditionError

LineSink = Callable[[str], None]


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    stdin_path: Path | None = None,
    on_line: LineSink | None = None,
    timeout: float | None = None,
) -> str:
    """Run ``argv`` and return its stdout; raise CommandError when it fails.

    With ``on_line`` the merged stdout+stderr is streamed line by line (for
    progress on long steps) and also returned.
    """
    full_env = None if env is None else {**os.environ, **env}
    argv = [str(a) for a in argv]
    try:
        if on_line is None:
            stdin = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115
            try:
                proc = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=full_env,
                    input=input_bytes,
                    stdin=stdin,
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
            finally:
                if stdin:
                    stdin.close()
            out = proc.stdout.decode(errors="replace")
            err = proc.stderr.decode(errors="replace")
            if proc.returncode != 0:
                raise CommandError(argv, proc.returncode, out, err)
            return out
        return _run_streaming(argv, cwd, full_env, on_line, timeout)
    except FileNotFoundError as exc:
        raise PreconditionError(f"{argv[0]} is needed but was not found on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        out, err = _text(exc.stdout), _text(exc.stderr)
        raise CommandError(argv, None, out, err, timed_out=True) from exc


def _run_streaming(
    argv: list[str],
    cwd: Path | None,
    env: Mapping[str, str] | None,
    on_line: LineSink,
    timeout: float | None,
) -> str:
    lines: list[str] = []
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            on_line(line)
        code = proc.wait(timeout=timeout)
    text = "\n".join(lines)
    if code != 0:
        raise CommandError(argv, code, text, "")
    return text


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")
