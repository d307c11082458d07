"""Evidence: the commands a check ran in the nodes, and what they printed.

A lab assertion is only as good as what it can show. Each test gets an
:class:`Evidence` log; nodes record every command into it, and checks add
notes (a walker path, an expectation). The pytest plugin attaches it to the
report of a failed test and the lab report prints it for every claim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kindlab.drivers.node import ExecResult

#: Lines of output kept per command in reports; the full text stays in JSON.
TRIM_LINES = 40


@dataclass(frozen=True, slots=True)
class Note:
    title: str
    text: str


@dataclass
class Evidence:
    """What one check saw, in the order it saw it."""

    items: list[ExecResult | Note] = field(default_factory=list)

    def record(self, result: ExecResult) -> None:
        self.items.append(result)

    def note(self, title: str, text: str) -> None:
        self.items.append(Note(title, text))

    def __bool__(self) -> bool:
        return bool(self.items)

    def render(self, *, trim: int | None = TRIM_LINES) -> str:
        """Plain text: each command as a pasteable line, then its (trimmed) output."""
        blocks = []
        for item in self.items:
            if isinstance(item, Note):
                blocks.append(f"# {item.title}\n{item.text.rstrip()}")
            else:
                status = "timed out" if item.timed_out else f"exit {item.exit_code}"
                body = trim_lines(item.output, trim) if item.output else "(no output)"
                blocks.append(f"$ {item.command_line}   # {status}\n{body.rstrip()}")
        return "\n\n".join(blocks)

    def to_json(self, *, trim: int | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for item in self.items:
            if isinstance(item, Note):
                out.append({"note": item.title, "text": item.text})
            else:
                out.append(
                    {
                        "command": item.command_line,
                        "exit_code": item.exit_code,
                        "timed_out": item.timed_out,
                        "output": trim_lines(item.output, trim),
                    }
                )
        return out


def trim_lines(text: str, limit: int | None) -> str:
    """Keep the first ``limit`` lines of ``text`` and say how many were cut."""
    if limit is None:
        return text
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join([*lines[:limit], f"… ({len(lines) - limit} more lines)"])
