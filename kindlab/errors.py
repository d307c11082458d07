"""Typed exceptions. Each message states the precondition that failed."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class KindlabError(Exception):
    """Base class of every error kindlab raises on purpose."""


class PreconditionError(KindlabError):
    """Something kindlab needs is missing; raised before anything is created."""


class CommandError(KindlabError):
    """A command exited non-zero (or timed out).

    Carries the argv, exit code and output; ``str()`` is a line that can be
    pasted into a shell, followed by the output.
    """

    def __init__(
        self,
        argv: Sequence[str],
        exit_code: int | None,
        stdout: str = "",
        stderr: str = "",
        *,
        where: str = "",
        timed_out: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.where = where
        self.timed_out = timed_out
        super().__init__(self._message())

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv)

    def _message(self) -> str:
        prefix = f"[{self.where}] " if self.where else ""
        status = "timed out" if self.timed_out else f"exited {self.exit_code}"
        lines = [f"{prefix}{self.command_line}: {status}"]
        for name, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = text.strip()
            if text:
                lines.append(f"--- {name} ---\n{_tail(text)}")
        return "\n".join(lines)


class ParseError(KindlabError, ValueError):
    """A parser met a line it cannot read. Names the line and what was expected."""

    def __init__(self, tool: str, line_no: int, line: str, expected: str) -> None:
        self.tool = tool
        self.line_no = line_no
        self.line = line
        self.expected = expected
        super().__init__(f"{tool}: line {line_no}: expected {expected}, got {line!r}")


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
