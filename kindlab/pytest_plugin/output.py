"""What the plugin tells the user: progress on long steps, and preconditions as one line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from kindlab.errors import PreconditionError


class Sink(Protocol):
    """Where a guest's progress also goes (the events port; see :mod:`.vm`)."""

    def emit(self, event: str, **data: Any) -> None: ...


sink_key = pytest.StashKey[Sink]()


def say(config: pytest.Config, message: str) -> None:
    """Progress on long steps, shown live even while pytest captures output."""
    sink = config.stash.get(sink_key, None)
    if sink is not None:  # in a guest: the host shows it
        sink.emit("progress", message=message)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or hasattr(config, "workerinput"):
        print(f"kindlab: {message}", file=sys.stderr, flush=True)
        return
    suspend = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    with suspend:
        reporter.ensure_newline()
        reporter.write_line(f"kindlab: {message}")


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """A missing precondition fails the test with its one-line message, no traceback.

    In a session fixture the failure is remembered: pytest raises it again, as it is,
    for every later test that needs the fixture, without running the fixture again.
    """
    try:
        yield
    except PreconditionError as exc:
        # from None: the causes (raw Docker API errors) are not part of the message.
        raise pytest.fail.Exception(f"kindlab: {exc}", pytrace=False) from None
