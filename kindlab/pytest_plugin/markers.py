"""The lab's markers: one per proxy mode, ``live``, ``multinode`` and ``claim(id)``.

A check of a proxy mode needs a cluster, so it is also ``live``: ``-m "not live"``
leaves it out. :func:`each_mode` parametrizes a check over modes, each case marked.
"""

from __future__ import annotations

import pytest

from kindlab.constants import PROXY_MODES

MARKERS = {
    "iptables": "a lab check of kube-proxy in iptables mode (needs a kind cluster)",
    "ipvs": "a lab check of kube-proxy in ipvs mode (needs IP_VS and dummy in the host kernel)",
    "nftables": "a lab check of kube-proxy in nftables mode (needs a kind cluster)",
    "live": "needs a Docker engine; may create kind clusters",
    "multinode": "a lab check that needs the multi-node layout (--cluster-layout multinode); "
    "deselected in the single-node one, before any cluster is made",
    "claim(id)": "the lab claim (kindlab.lab.expectations.CLAIMS) a test checks; it goes in "
    "the report",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if modes_of(item):
            item.add_marker(pytest.mark.live)
    # Checks of a layout the run did not ask for are not selected, as -m leaves out a
    # mode: a skip would read as a check that could not run.
    layout = config.getoption("cluster_layout", "single")
    if layout == "multinode":
        return
    other = [item for item in items if item.get_closest_marker("multinode")]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if not item.get_closest_marker("multinode")]


def each_mode(*modes: str) -> pytest.MarkDecorator:
    """Parametrize a check over proxy modes, each case marked with its mode."""
    chosen = modes or PROXY_MODES
    return pytest.mark.parametrize(
        "mode", [pytest.param(m, marks=getattr(pytest.mark, m), id=m) for m in chosen]
    )


def modes_of(item: pytest.Item) -> list[str]:
    """The proxy modes ``item`` is marked with, in :data:`PROXY_MODES` order."""
    return [m for m in PROXY_MODES if item.get_closest_marker(m)]


def mode_of(item: pytest.Item) -> str:
    """The proxy mode a test is marked with (exactly one of the mode markers)."""
    modes = modes_of(item)
    if len(modes) != 1:
        raise pytest.UsageError(
            f"{item.nodeid}: the `cluster` fixture needs exactly one of the markers "
            f"{', '.join(PROXY_MODES)}; found {modes or 'none'}"
        )
    return modes[0]
