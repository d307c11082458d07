"""Parsers against captures from real kind clusters, when tests/fixtures/captured/ holds some.

``tests/fixtures/captured/capture.py`` writes ``<probe>.out`` (and for some probes
``.err`` / ``.rc``) per node; every such file found here must parse. Parameter sets
are empty, and the tests skipped, until captures are added.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kindlab.parsers.ipaddr import parse_ip_addr, parse_ip_addr_json
from kindlab.parsers.ipvsadm import kernel_lacks_ipvs, parse_ipvsadm
from kindlab.parsers.nft import parse_nft_json
from kindlab.parsers.ping import parse_ping
from kindlab.parsers.route import parse_route_get

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"


def captured(probe: str) -> list[Path]:
    return sorted(CAPTURED.rglob(f"{probe}.out"))


def output(out: Path) -> str:
    """stdout, then stderr if capture.py kept it: what the terminal would have shown."""
    err = out.with_suffix(".err")
    return out.read_text() + (err.read_text() if err.exists() else "")


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(CAPTURED)) for p in paths]


PARSERS: dict[str, Callable[[str], object]] = {
    "ip-a": parse_ip_addr,
    "ip-j-addr": parse_ip_addr_json,
    "ip-route-get-clusterip": parse_route_get,
    "ping-c2-clusterip": parse_ping,
}
CASES = [(probe, p) for probe in PARSERS for p in captured(probe)]


@pytest.mark.parametrize(("probe", "path"), CASES, ids=[f"{c[0]}:{ids([c[1]])[0]}" for c in CASES])
def test_captured_output_parses(probe: str, path: Path) -> None:
    assert PARSERS[probe](output(path)) is not None


NFT = captured("nft-j-list-ruleset")


@pytest.mark.parametrize("path", NFT, ids=ids(NFT))
def test_captured_nft_ruleset_parses(path: Path) -> None:
    text = output(path)
    ruleset = parse_nft_json(path.read_text())
    table = ruleset.kube_proxy_table()
    if "nftables" in str(path) and table is not None:
        # A cluster in nftables mode: its ClusterIPs are in the set, and each is in service-ips
        # or no-endpoint-services.
        cluster_ips = table.set("cluster-ips")
        assert cluster_ips is not None and cluster_ips.elements, text[:500]


IPVS = captured("ipvsadm-Ln")


@pytest.mark.parametrize("path", IPVS, ids=ids(IPVS))
def test_captured_ipvsadm_parses_or_says_no_ipvs(path: Path) -> None:
    text = output(path)
    if kernel_lacks_ipvs(text):
        return
    if not path.read_text().strip():
        pytest.skip(f"{path.name}: ipvsadm printed nothing (not installed on the node?)")
    assert parse_ipvsadm(path.read_text()).columns == "list"
