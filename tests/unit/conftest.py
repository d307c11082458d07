"""Unit tests never boot a VM: pytester's inner runs see --ipvs-vm never by default."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_ipvs_vm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINDLAB_IPVS_VM", "never")
