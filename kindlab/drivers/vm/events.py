"""Events from the guest: JSON lines on a virtio-serial port, read from a host file.

The guest writes one JSON object per line: ``stage`` (booted, modules, docker,
finished…), ``progress`` (kindlab's own progress lines), ``collected``, ``report``
(a pytest report, serialized the way pytest-xdist sends them) and ``exit``.
:class:`EventReader` reads what has arrived so far, whole lines only. Pure apart
from reading the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]
    raw: str

    @classmethod
    def parse(cls, line: str) -> Event:
        """One line; a line that is not a JSON object becomes a ``noise`` event."""
        try:
            data = json.loads(line)
        except ValueError:
            return cls("noise", {"text": line}, line)
        if not isinstance(data, dict) or not isinstance(data.get("event"), str):
            return cls("noise", {"text": line}, line)
        return cls(str(data["event"]), data, line)

    def describe(self) -> str:
        """A line for the host's terminal."""
        if self.kind == "stage":
            detail = f": {self.data['detail']}" if self.data.get("detail") else ""
            return (
                f"guest {self.data.get('stage')}{detail} (uptime {self.data.get('uptime', 0):.0f}s)"
            )
        if self.kind == "progress":
            return f"guest: {self.data.get('message', '')}"
        if self.kind == "report":
            rep = self.data.get("report", {})
            return (
                f"guest: {rep.get('nodeid', '?')} {rep.get('when', '?')} {rep.get('outcome', '?')}"
            )
        return f"guest {self.kind}: {self.raw[:200]}"


@dataclass
class EventReader:
    """Reads new whole lines from a file another process appends to."""

    path: Path
    _offset: int = 0
    _partial: bytes = b""
    seen: list[Event] = field(default_factory=list)

    def poll(self) -> list[Event]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        events = [
            Event.parse(line.decode(errors="replace").strip("\r")) for line in lines if line.strip()
        ]
        self.seen.extend(events)
        return events
