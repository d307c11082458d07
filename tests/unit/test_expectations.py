"""Expectations are data: exactly one per behaviour, mode and version."""

import subprocess
import sys

import pytest

from kindlab.constants import PROXY_MODES
from kindlab.lab.expectations import CLAIMS, EXPECTATIONS, Version, claim, expect


@pytest.mark.parametrize(
    ("mode", "version", "answered", "error"),
    [
        ("iptables", "v1.18.0", False, None),
        ("iptables", "v1.34.4", False, None),
        ("ipvs", "v1.25.16", True, None),
        ("ipvs", "v1.26.0", False, "Destination Port Unreachable"),
        ("ipvs", "v1.34.4", False, "Destination Port Unreachable"),
        ("nftables", "v1.29.0", False, None),
        ("nftables", "v1.34.4", False, "Destination Port Unreachable"),
    ],
)
def test_ping_to_a_clusterip_by_mode_and_version(
    mode: str, version: str, answered: bool, error: str | None
) -> None:
    found = expect("ping-clusterip", mode, version)
    assert found.facts["answered"] is answered
    assert found.facts.get("icmp_error") == error


def test_every_behaviour_mode_and_minor_has_exactly_one_expectation() -> None:
    behaviours = {e.behaviour for e in EXPECTATIONS}
    for behaviour in behaviours:
        # a behaviour of one mode's own (nftables-cluster-ips) is not asked of the others
        modes = {e.mode for e in EXPECTATIONS if e.behaviour == behaviour}
        assert modes <= set(PROXY_MODES)
        for mode in modes:
            for minor in range(18, 40):
                expect(behaviour, mode, Version(1, minor))  # raises unless exactly one
    assert {e.mode for e in EXPECTATIONS if e.behaviour == "ping-clusterip"} == set(PROXY_MODES)


@pytest.mark.parametrize(
    ("version", "has_set"), [("v1.29.15", False), ("v1.30.14", True), ("v1.34.4", True)]
)
def test_nftables_cluster_ips_set_from_1_30_as_observed_on_1_29_and_1_34(
    version: str, has_set: bool
) -> None:
    assert expect("nftables-cluster-ips", "nftables", version).facts["cluster_ips_set"] is has_set


def test_versions_parse_and_order() -> None:
    assert Version.parse("v1.34.4") == Version(1, 34) < Version.parse("1.35")
    assert str(Version.parse("v1.9.0-alpha.1")) == "1.9"
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        Version.parse("latest")


def test_claims_are_numbered_once_and_name_real_modes() -> None:
    numbers = [c.number for c in CLAIMS.values()]
    assert sorted(numbers) == list(range(1, 12))
    assert all(set(c.modes) <= set(PROXY_MODES) for c in CLAIMS.values())
    with pytest.raises(KeyError, match="unknown claim 'nope'"):
        claim("nope")


def test_no_expectation_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="0 expectations"):
        expect("ping-clusterip", "userspace", "v1.34.0")


def test_expectations_import_no_driver() -> None:
    # Pure data: reading the claims must not need YAML, Docker or the kind driver.
    code = (
        "import sys, kindlab.lab.expectations; "
        "print(sorted(m for m in ('kindlab.drivers.kind', 'yaml', 'docker', 'kubernetes') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing kindlab.lab.expectations imported {out.stdout}"
