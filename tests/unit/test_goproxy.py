"""The Go module proxy probe, replayed from its recorded answers (no network).

The recording (tests/fixtures/goproxy/, see its README) holds every answer the proxy
gave on that date. kindlab.versions' table must be what the probe concludes from it.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from kindlab.nodeimage import gobuild, goproxy
from kindlab.nodeimage.gobuild import staging_modules
from kindlab.nodeimage.goproxy import (
    NOT_LOADED,
    Answer,
    Replay,
    escape,
    gonosumdb,
    parse_pins,
    probe_minor,
    probe_patch,
    proxy_url,
    unverified,
)
from kindlab.versions import PROBE_RECORDING, RELEASES, SUMDB_RECORDING, Minor

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / PROBE_RECORDING


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay(RECORDING)


@pytest.mark.parametrize("minor", range(25, 39))
def test_the_table_is_what_the_recorded_answers_say(replay: Replay, minor: int) -> None:
    probe = probe_minor(replay, minor)
    release = RELEASES[Minor(1, minor)]
    chosen = probe.chosen
    assert release.patch == (chosen.version if chosen else None)
    if not probe.served:  # no release of this minor yet: the reason is the x.0 .info answer
        (row,) = release.refused
        answer = replay("GET", f"k8s.io/kubernetes/@v/v1.{minor}.0.info")
        assert (row.module, row.answer) == (
            f"k8s.io/kubernetes@v1.{minor}.0",
            f"403 {answer.message}",
        )
        return
    refused = [p for p in probe.patches if not p.buildable]
    assert [r.patch for r in release.refused] == [p.version for p in refused]
    for row, patch in zip(release.refused, refused, strict=True):
        first = patch.refusals[0]
        assert row.module == f"{first.module}@{first.version}"
        assert row.file == f".{first.file}"
        assert row.answer == f"{first.status} {first.message}".strip()
        assert list(row.others) == [f"{r.module}@{r.version}" for r in patch.refusals[1:]]


def test_pins_are_what_the_recorded_source_lines_say(replay: Replay) -> None:
    for release in RELEASES.values():
        if release.patch is None:
            continue
        assert release.pins is not None
        lines = replay.members[release.patch]
        pins = parse_pins(lines)
        got = {k: getattr(release.pins, k) for k in ("etcd", "coredns", "pause", "agnhost")}
        assert got == pins, release.patch


def test_the_recorded_1_34_4_pins_match_the_node_image_builders_observed_ones() -> None:
    # kubeadm v1.34.4 printed these (tests/unit/test_nodeimage.py), on a real build
    pins = RELEASES[Minor(1, 34)].pins
    assert pins is not None
    assert (pins.etcd, pins.coredns, pins.pause, pins.agnhost) == (
        "3.6.5-0",
        "v1.12.1",
        "3.10.1",
        "2.56",
    )


def _fake(answers: dict[str, tuple[int, str]]) -> Replay:
    fake = Replay.__new__(Replay)
    fake.answers = {}
    for key, (status, text) in answers.items():
        method, path = key.split(" ", 1)
        fake.answers[key] = Answer(method, path, status, text)
    fake.members = {}
    return fake


GO_MOD = (
    "module k8s.io/kubernetes\n"
    "replace (\n"
    "\tk8s.io/api => ./staging/src/k8s.io/api\n"
    "\tk8s.io/kube-proxy => ./staging/src/k8s.io/kube-proxy\n"
    "\tk8s.io/sample-controller => ./staging/src/k8s.io/sample-controller\n"
    ")\n"
)


def _served(version: str, module: str) -> dict[str, tuple[int, str]]:
    return {
        f"HEAD {module}/@v/{version}.zip": (200, ""),
        f"GET {module}/@v/{version}.info": (200, "{}"),
        f"GET {module}/@v/{version}.mod": (200, f"module {module}\n"),
    }


def test_a_refused_staging_zip_refuses_the_patch_and_unloaded_modules_are_not_asked() -> None:
    assert "k8s.io/sample-controller" in NOT_LOADED
    answers = {
        "GET k8s.io/kubernetes/@v/v1.30.14.mod": (200, GO_MOD),
        "HEAD k8s.io/kubernetes/@v/v1.30.14.zip": (200, ""),
        **_served("v0.30.14", "k8s.io/api"),
        "HEAD k8s.io/kube-proxy/@v/v0.30.14.zip": (403, ""),
    }
    patch = probe_patch(_fake(answers), "v1.30.14")  # sample-controller: not in answers
    assert not patch.buildable
    (refusal,) = patch.refusals
    assert str(refusal) == "k8s.io/kube-proxy@v0.30.14 .zip: 403 "
    assert patch.staging == ("k8s.io/api", "k8s.io/kube-proxy")


def test_the_probe_walks_down_to_the_first_whole_patch() -> None:
    answers = {
        "GET k8s.io/kubernetes/@v/v1.30.2.info": (200, "{}"),
        "GET k8s.io/kubernetes/@v/v1.30.1.info": (403, "This module version is not available."),
        "GET k8s.io/kubernetes/@v/v1.30.0.info": (200, "{}"),
        "GET k8s.io/kubernetes/@v/v1.30.2.mod": (403, "This module version is not available."),
        "GET k8s.io/kubernetes/@v/v1.30.0.mod": (200, GO_MOD),
        "HEAD k8s.io/kubernetes/@v/v1.30.0.zip": (200, ""),
        **_served("v0.30.0", "k8s.io/api"),
        **_served("v0.30.0", "k8s.io/kube-proxy"),
    }
    probe = probe_minor(_fake(answers), 30, max_patch=2)
    assert probe.served == ("v1.30.2", "v1.30.0")
    assert probe.chosen is not None and probe.chosen.version == "v1.30.0"
    assert str(probe.patches[0].refusals[0]) == (
        "k8s.io/kubernetes@v1.30.2 .mod: 403 This module version is not available."
    )


def test_a_request_the_recording_lacks_is_an_error(replay: Replay) -> None:
    with pytest.raises(LookupError, match=r"not in the recording: GET nowhere/@v/v1\.0\.0\.info"):
        replay("GET", "nowhere/@v/v1.0.0.info")
    assert replay.proxy == "https://proxy.golang.org" and replay.date == "2026-11-28"


def test_goproxy_lists_and_module_paths() -> None:
    assert proxy_url("https://proxy.golang.org,direct") == "https://proxy.golang.org"
    assert proxy_url("direct|https://goproxy.example/") == "https://goproxy.example"
    with pytest.raises(ValueError, match="names no module proxy"):
        proxy_url("direct,off")
    assert escape("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"


# -- the checksum database -------------------------------------------------------------


def test_a_module_the_checksum_database_lacks_is_unverified_and_only_that_one() -> None:
    # as the proxy answered for v1.25.15 on 2026-11-28 (curl of the same paths)
    answers = {
        "GET sumdb/sum.golang.org/lookup/k8s.io/api@v0.25.15": (200, "12345\nk8s.io/api ..."),
        "GET sumdb/sum.golang.org/lookup/k8s.io/kubelet@v0.25.15": (404, "not found"),
        "GET sumdb/sum.golang.org/lookup/k8s.io/cri-api@v0.25.15": (410, "gone"),
    }
    missing = unverified(
        _fake(answers), "sum.golang.org", ["k8s.io/api", "k8s.io/kubelet", "k8s.io/cri-api"],
        "v0.25.15",
    )  # fmt: skip
    assert missing == ("k8s.io/kubelet", "k8s.io/cri-api")


def test_a_failing_checksum_database_is_an_error_not_a_gap() -> None:
    answers = {"GET sumdb/sum.golang.org/lookup/k8s.io/api@v0.25.15": (502, "bad gateway")}
    with pytest.raises(LookupError, match=r"k8s\.io/api@v0\.25\.15: 502 bad gateway"):
        unverified(_fake(answers), "sum.golang.org", ["k8s.io/api"], "v0.25.15")


def test_the_probe_lists_a_served_patchs_unverified_staging_modules() -> None:
    answers = {
        "GET k8s.io/kubernetes/@v/v1.25.15.mod": (200, GO_MOD),
        "HEAD k8s.io/kubernetes/@v/v1.25.15.zip": (200, ""),
        **_served("v0.25.15", "k8s.io/api"),
        **_served("v0.25.15", "k8s.io/kube-proxy"),
        "GET sumdb/sum.golang.org/lookup/k8s.io/api@v0.25.15": (200, ""),
        "GET sumdb/sum.golang.org/lookup/k8s.io/kube-proxy@v0.25.15": (404, "not found"),
    }
    patch = probe_patch(_fake(answers), "v1.25.15", sumdb="sum.golang.org")
    assert patch.buildable
    assert patch.unverified == ("k8s.io/kube-proxy",)
    # without a database nothing is asked (the recording of 2026-11-28 has no lookups)
    assert probe_patch(_fake(answers), "v1.25.15").unverified == ()


def test_gonosumdb_adds_exact_module_paths_to_what_is_there() -> None:
    assert gonosumdb("", ["k8s.io/kubelet"]) == "k8s.io/kubelet"
    assert gonosumdb("corp.example,k8s.io/kubelet", ["k8s.io/kubelet", "k8s.io/cri-api"]) == (
        "corp.example,k8s.io/kubelet,k8s.io/cri-api"
    )


def test_the_probe_and_build_helpers_docstring_examples_run() -> None:
    for module in (goproxy, gobuild):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_the_tables_unverified_modules_are_what_the_checksum_database_answered(
    replay: Replay,
) -> None:
    sumdb = Replay(ROOT / SUMDB_RECORDING)
    for release in RELEASES.values():
        if release.patch is None:
            continue
        go_mod = replay("GET", f"k8s.io/kubernetes/@v/{release.patch}.mod").text
        loaded = [m for m in staging_modules(go_mod) if m not in NOT_LOADED]
        staging = "v0." + release.patch.split(".", 1)[1]
        got = unverified(sumdb, "sum.golang.org", loaded, staging)
        assert got == release.unverified, release.patch
    assert len(RELEASES[Minor(1, 25)].unverified) == 13
