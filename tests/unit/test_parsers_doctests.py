"""The examples in each parser's module docstring run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["ipaddr", "ping", "route", "ipvsadm", "nft", "netns"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_example(name: str) -> None:
    module = importlib.import_module(f"kindlab.parsers.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: no example in the docstring"
    assert result.failed == 0
