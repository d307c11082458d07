"""Moved to :mod:`kindlab.proc`; kept only while kindlab/vm still imports it from here.

Delete this file once ``kindlab/vm`` imports ``run`` from ``kindlab.proc``.
"""

from kindlab.proc import run

__all__ = ["run"]
