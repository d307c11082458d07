"""kindlab.versions: the per-minor table, the choice, kind, containerd and mode availability."""

from __future__ import annotations

import subprocess
import sys
from types import MappingProxyType

import pytest

from kindlab.constants import KIND_VERSION, PROXY_MODES
from kindlab.nodeimage.versions import DEFAULT_KUBERNETES_VERSION
from kindlab.versions import (
    CONTAINERD,
    KIND_RELEASES,
    RELEASES,
    TRIXIE_CONTAINERD,
    ContainerdSupport,
    Minor,
    Pins,
    Refusal,
    Release,
    VersionUnavailable,
    choose,
    containerd_for,
    kind_for,
    mode_support,
    parse_version_list,
    patch_number,
)

PINS = Pins("3.5.9-0", "v1.9.3", "3.8", "2.40", "v1.25.0", "test")
SYNTHETIC = MappingProxyType(
    {
        Minor(1, 30): Release(
            Minor(1, 30),
            "v1.30.12",
            (
                Refusal("v1.30.14", "k8s.io/kube-proxy@v0.30.14", ".zip", "403", ("k8s.io/x",)),
                Refusal("v1.30.13", "k8s.io/kubelet@v0.30.13", ".zip", "403 refused"),
            ),
            PINS,
            "synthetic",
        ),
        Minor(1, 31): Release(
            Minor(1, 31),
            None,
            (Refusal("v1.31.2", "k8s.io/api@v0.31.2", ".mod", "403 This module version"),),
            None,
            "synthetic",
        ),
    }
)


def test_a_minor_gets_its_chosen_patch_and_a_served_patch_is_itself() -> None:
    assert choose("1.30", SYNTHETIC).patch == "v1.30.12"
    assert choose("v1.30", SYNTHETIC).patch == "v1.30.12"
    exact = choose("v1.30.12", SYNTHETIC)
    assert (exact.patch, exact.probed, exact.pins) == ("v1.30.12", True, PINS)


def test_a_refused_patch_names_the_module_and_the_proxys_answer() -> None:
    with pytest.raises(VersionUnavailable) as info:
        choose("1.30.13", SYNTHETIC)
    message = str(info.value)
    assert "v1.30.13 cannot be built" in message
    assert "k8s.io/kubelet@v0.30.13 .zip (403 refused)" in message
    assert "v1.30.12 is the newest buildable 1.30 release" in message


def test_an_unserved_newer_patch_an_unbuildable_minor_and_an_unknown_minor_are_errors() -> None:
    with pytest.raises(VersionUnavailable, match=r"does not serve k8s.io/kubernetes@v1.30.99"):
        choose("v1.30.99", SYNTHETIC)
    with pytest.raises(VersionUnavailable, match=r"no patch of 1.31 .*k8s.io/api@v0.31.2 .mod"):
        choose("1.31", SYNTHETIC)
    with pytest.raises(VersionUnavailable, match=r"no data for 1.24 \(known: 1.30, 1.31\)"):
        choose("1.24", SYNTHETIC)
    with pytest.raises(VersionUnavailable, match="not a Kubernetes version"):
        choose("latest", SYNTHETIC)


def test_an_older_patch_than_the_choice_is_allowed_but_marked_unprobed() -> None:
    older = choose("v1.30.3", SYNTHETIC)
    assert (older.patch, older.probed) == ("v1.30.3", False)


def test_versions_parse() -> None:
    assert Minor.parse("v1.34.4") == Minor(1, 34) < Minor.parse("1.35")
    assert str(Minor.parse("v1.9.0-alpha.1")) == "1.9"
    assert [patch_number(v) for v in ("v1.30.14", "1.30.2", "1.30", "v1.38.0-beta.0")] == [
        14,
        2,
        None,
        0,
    ]
    for bad in ("latest", "1", "1.30.x", "v1.30.1.2"):
        with pytest.raises(ValueError, match="not a Kubernetes version"):
            Minor.parse(bad)


def test_version_lists_parse_and_refuse_duplicates_and_garbage() -> None:
    assert parse_version_list("v1.25.0, 1.30 ,v1.37.2") == ("v1.25.0", "1.30", "v1.37.2")
    assert parse_version_list("1.34") == ("1.34",)
    with pytest.raises(ValueError, match=r"given twice: 1\.30"):
        parse_version_list("1.30,1.29,1.30")
    with pytest.raises(ValueError, match="no Kubernetes version"):
        parse_version_list(" , ")
    with pytest.raises(ValueError, match="'newest'"):
        parse_version_list("1.30,newest")


@pytest.mark.parametrize(
    ("minor", "available", "gate"),
    [
        ("1.25", False, None),
        ("1.28", False, None),
        ("1.29", True, "NFTablesProxyMode"),
        ("1.30", True, "NFTablesProxyMode"),
        ("1.31", True, None),
        ("1.33", True, None),
        ("1.37", True, None),
    ],
)
def test_nftables_mode_exists_from_1_29_behind_its_gate_until_1_31(
    minor: str, available: bool, gate: str | None
) -> None:
    support = mode_support("nftables", minor)
    assert (support.available, support.feature_gate) == (available, gate)
    if not available:
        assert support.skip_reason == (
            f"kube-proxy {minor} has no nftables mode (it came in 1.29, alpha)"
        )
    else:
        assert support.skip_reason is None


def test_ipvs_exists_throughout_and_warns_from_1_35() -> None:
    assert all(mode_support("ipvs", f"1.{m}").available for m in range(25, 39))
    assert mode_support("ipvs", "1.34").deprecated is None
    assert "now deprecated" in (mode_support("ipvs", "v1.35.4").deprecated or "")
    assert "removed in Kubernetes 1.43" in (mode_support("ipvs", "1.37").deprecated or "")
    assert mode_support("iptables", "1.25").available
    with pytest.raises(ValueError, match="unknown proxy mode 'userspace'"):
        mode_support("userspace", "1.25")


def test_kind_keeps_the_pinned_release_while_kubeadm_reads_v1beta3() -> None:
    assert KIND_RELEASES["v0.30.0"].version == KIND_VERSION
    for minor in ("1.25", "1.34", "1.36"):
        choice = kind_for(Minor.parse(minor))
        assert (choice.version, choice.kubeadm_api) == ("v0.30.0", "kubeadm.k8s.io/v1beta3")
    newest = kind_for(Minor(1, 37))
    assert (newest.version, newest.kubeadm_api) == ("v0.33.0", "kubeadm.k8s.io/v1beta4")
    assert "list of {name, value}" in newest.note
    # the newest kind writes v1beta4 from 1.36, v1beta3 before
    assert KIND_RELEASES["v0.33.0"].kubeadm_api(Minor(1, 35)) == "kubeadm.k8s.io/v1beta3"
    assert KIND_RELEASES["v0.33.0"].kubeadm_api(Minor(1, 36)) == "kubeadm.k8s.io/v1beta4"


@pytest.mark.parametrize(
    ("wants", "version", "ok"),
    [
        ("2.1.3+, 2.0.6+, 1.7.28+, 1.6.39+", "1.7.24", False),
        ("2.1.3+, 2.0.6+, 1.7.28+, 1.6.39+", "1.7.28", True),
        ("2.1.3+, 2.0.6+, 1.7.28+, 1.6.39+", "v2.0.6", True),
        ("2.3.0+, 2.2.0+", "1.7.99", False),
        ("1.7.0+, 1.6.4+", "1.7.24", True),
        (None, "1.7.24", None),
    ],
)
def test_containerd_recommendations_compare_within_a_series(
    wants: str | None, version: str, ok: bool | None
) -> None:
    assert ContainerdSupport(Minor(1, 34), wants, "t").accepts(version) is ok


def test_trixies_containerd_meets_containerds_table_up_to_1_33_only() -> None:
    meets = {str(m): CONTAINERD[m].accepts(TRIXIE_CONTAINERD) for m in sorted(CONTAINERD)}
    assert [m for m, ok in meets.items() if ok] == [f"1.{n}" for n in range(25, 34)]
    assert "build github.com/containerd/containerd/v2" in containerd_for(Minor(1, 36)).runtime()
    assert containerd_for(Minor(1, 38)).accepts(TRIXIE_CONTAINERD) is None


def test_where_trixies_containerd_falls_short_the_oldest_served_release_that_meets_it() -> None:
    wants = {str(m): containerd_for(m).build_candidate() for m in sorted(CONTAINERD)}
    assert {m: v for m, v in wants.items() if v} == {
        "1.34": "1.7.28",  # 1.7.28+ recommended; served
        "1.35": "1.7.28",
        "1.36": "2.2.0",  # 2.3.0+, 2.2.0+: v2.0.6 is refused, 2.1 is not recommended
        "1.37": "2.3.1",
    }
    assert (
        containerd_for(Minor(1, 34))
        .runtime()
        .endswith(
            "build github.com/containerd/containerd@v1.7.28 (not done yet: the node runs trixie's)"
        )
    )


def test_the_table_covers_1_25_to_1_38_and_every_row_says_how_it_was_established() -> None:
    assert sorted(RELEASES) == [Minor(1, n) for n in range(25, 39)]
    for minor, release in RELEASES.items():
        assert release.minor == minor
        assert release.established
        if release.patch is None:
            assert release.refused, f"{minor}: no patch, and no refusal saying why"
            continue
        assert Minor.parse(release.patch) == minor
        assert release.pins is not None and release.pins.source
        chosen = patch_number(release.patch)
        assert chosen is not None
        assert all((patch_number(r.patch) or 0) > chosen for r in release.refused)


def test_the_default_version_is_buildable_and_runs_every_mode() -> None:
    choice = choose(DEFAULT_KUBERNETES_VERSION)
    assert choice.patch == DEFAULT_KUBERNETES_VERSION and choice.kind.version == KIND_VERSION
    assert all(choice.mode(m).skip_reason is None for m in PROXY_MODES)


def test_versions_import_nothing_above_the_bottom() -> None:
    code = (
        "import sys, kindlab.versions; "
        "print(sorted(m for m in sys.modules if m.startswith('kindlab.') and m not in "
        "('kindlab.versions', 'kindlab.constants', 'kindlab.errors')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
