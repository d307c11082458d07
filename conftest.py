"""This checkout's pytest defaults. kindlab's plugin itself loads via its entry point.

A run from the repository writes the lab report to reports/lab.{md,json}
unless --kindlab-report says otherwise, so that CI always leaves one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("kindlab_report", None):
        config.option.kindlab_report = str(ROOT / "reports" / "lab")
