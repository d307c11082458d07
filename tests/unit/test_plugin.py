"""The plugin's own wiring, through pytester: markers, evidence on failure, the report."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def test_markers_are_declared_once_for_strict_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.iptables
        @pytest.mark.nftables
        @pytest.mark.ipvs
        @pytest.mark.live
        @pytest.mark.claim("proxy-mode")
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    lines = pytester.runpytest("--markers").stdout.lines
    for name in ("iptables", "nftables", "ipvs", "live", "claim(id)"):
        assert sum(line.startswith(f"@pytest.mark.{name}:") for line in lines) == 1


def test_mode_markers_imply_live(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.nftables
        def test_needs_a_cluster():
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("-m", "not live", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)


def test_failed_check_carries_its_evidence_and_lands_in_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from kindlab.drivers.node import ExecResult

        @pytest.mark.claim("ping-clusterip")
        @pytest.mark.iptables
        def test_claim(evidence):
            evidence.record(ExecResult("kindlab-iptables-control-plane", ("ping", "-c", "1",
                "10.96.0.10"), 1, "1 packets transmitted, 0 received\\n", "", 1.0))
            assert False, "the ClusterIP answered"

        @pytest.mark.claim("ipvs-ping")
        @pytest.mark.ipvs
        def test_skipped():
            pytest.skip("kernel lacks CONFIG_IP_VS")
        """
    )
    report = pytester.path / "out" / "lab"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--kindlab-report={report}")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*kindlab evidence*",
            "$ docker exec --privileged kindlab-iptables-control-plane ping -c 1 10.96.0.10*",
        ]
    )
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["summary"] == {"passed": 0, "failed": 1, "not run": 1}
    by_claim = {e["claim_id"]: e for e in doc["entries"]}
    assert by_claim["ping-clusterip"]["mode"] == "iptables"
    assert "the ClusterIP answered" in by_claim["ping-clusterip"]["reason"]
    assert by_claim["ipvs-ping"]["reason"] == "kernel lacks CONFIG_IP_VS"
    assert "❌ failed" in report.with_suffix(".md").read_text()


def test_a_skip_or_an_error_in_a_fixture_lands_in_the_report(pytester: pytest.Pytester) -> None:
    # As a check sees it when its cluster cannot be had: the fixture skips (no IP_VS) or
    # fails (a precondition, or kind itself) before the test body runs.
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def no_ipvs():
            pytest.skip("ipvs mode cannot run here: kernel lacks CONFIG_IP_VS")

        @pytest.fixture
        def no_docker():
            pytest.fail("kindlab: no Docker engine answers", pytrace=False)

        @pytest.fixture
        def kind_fails():
            raise RuntimeError("kind create cluster: exit 1")

        @pytest.mark.claim("ipvs-interface")
        @pytest.mark.ipvs
        def test_skipped_in_setup(no_ipvs):
            pass

        @pytest.mark.claim("nftables-table")
        @pytest.mark.nftables
        def test_precondition_in_setup(no_docker):
            pass

        @pytest.mark.claim("iptables-rules")
        @pytest.mark.iptables
        def test_error_in_setup(kind_fails):
            pass
        """
    )
    report = pytester.path / "out" / "lab"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--kindlab-report={report}")
    result.assert_outcomes(skipped=1, errors=2)
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["summary"] == {"passed": 0, "failed": 2, "not run": 1}
    rows = {e["claim_id"]: (e["mode"], e["outcome"], e["reason"]) for e in doc["entries"]}
    assert rows["ipvs-interface"] == (
        "ipvs",
        "not run",
        "ipvs mode cannot run here: kernel lacks CONFIG_IP_VS",
    )
    assert rows["nftables-table"] == ("nftables", "failed", "kindlab: no Docker engine answers")
    mode, outcome, reason = rows["iptables-rules"]
    assert (mode, outcome) == ("iptables", "failed")
    assert "RuntimeError: kind create cluster: exit 1" in reason
    markdown = report.with_suffix(".md").read_text()
    assert "Not run: ipvs mode cannot run here: kernel lacks CONFIG_IP_VS" in markdown


def test_cluster_fixture_needs_one_mode_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_no_mode(cluster):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*needs exactly one of the markers*"])


def test_an_unbuildable_version_is_a_usage_error_naming_the_refused_module(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--kubernetes-version", "1.30,v1.25.16")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--kubernetes-version: Kubernetes v1.25.16 cannot be built: the Go module proxy *"
            "refused k8s.io/cluster-bootstrap@v0.25.16 .zip (403); v1.25.15 is the newest "
            "buildable 1.25 release*"
        ]
    )
    bad = pytester.runpytest("-p", "no:cacheprovider", "--kubernetes-version", "1.30,1.30")
    bad.stderr.fnmatch_lines(["*given twice: 1.30*"])


def test_a_mode_the_version_lacks_skips_before_any_cluster_and_the_entry_has_the_version(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.claim("nftables-table")
        @pytest.mark.nftables
        def test_nft(cluster):
            raise AssertionError("a cluster was made")
        """
    )
    report = pytester.path / "out" / "lab"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-v", f"--kindlab-report={report}",
        "--kubernetes-version", "1.27,v1.28.15",
    )  # fmt: skip
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            "kindlab: node image of v1.27.16, v1.28.15 by --node-image-source auto; *",
            "*test_nft?v1.27.16? SKIPPED*",
            "*test_nft?v1.28.15? SKIPPED*",
        ]
    )
    entries = json.loads(report.with_suffix(".json").read_text())["entries"]
    assert [(e["kubernetes_version"], e["outcome"], e["reason"]) for e in entries] == [
        (column, "not run", f"kube-proxy {minor} has no nftables mode (it came in 1.29, alpha)")
        for column, minor in (("v1.27.16", "1.27"), ("v1.28.15", "1.28"))
    ]
    md = report.with_suffix(".md").read_text()
    assert (
        "| v1.27.16 | v0.30.0 | kubeadm.k8s.io/v1beta3 | 1.7.0+, 1.6.15+ | "
        "containerd 1.7.24 (trixie) |"
    ) in md.splitlines()
    meta = json.loads(report.with_suffix(".json").read_text())["meta"]
    assert [v["version"] for v in meta["versions"]] == ["v1.27.16", "v1.28.15"]


def test_a_check_runs_once_per_version_and_one_version_keeps_its_id(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from kindlab.pytest_plugin.markers import each_mode

        @each_mode("iptables", "nftables")
        def test_on(mode, kubernetes_version):
            print("RAN", mode, kubernetes_version)

        def test_off():
            pass
        """
    )
    many = pytester.runpytest(
        "-p", "no:cacheprovider", "-v", "-s", "--kubernetes-version", "1.30,v1.25.0"
    )
    many.assert_outcomes(passed=5)
    many.stdout.fnmatch_lines_random(
        [
            "*test_on?v1.30.14-iptables? *",
            "*test_on?v1.25.0-iptables? *",
            "*test_on?v1.30.14-nftables? *",
            "*test_on?v1.25.0-nftables? *",
            "*RAN nftables v1.25.0",
            "*RAN iptables v1.30.14",
        ]
    )
    one = pytester.runpytest("-p", "no:cacheprovider", "-v", "-s", "--kubernetes-version", "1.29")
    one.assert_outcomes(passed=3)
    one.stdout.fnmatch_lines(["*::test_on?iptables? RAN iptables v1.29.15"])


def test_a_node_image_is_of_one_version(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--node-image", "x", "--kubernetes-version", "1.29,1.30"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*a node image is of one Kubernetes version*"])


def test_the_ipvs_guest_runs_one_version(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from kindlab.pytest_plugin.options import single_version

        def test_one(pytestconfig):
            single_version(pytestconfig)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--kubernetes-version", "1.29,1.30")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the ipvs guest holds the node image of one Kubernetes version*"])


def test_xdist_workers_collect_the_same_version_axis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.iptables
        def test_on(kubernetes_version):
            assert kubernetes_version in ("v1.29.15", "v1.30.14")
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-n", "2", "--kubernetes-version", "1.29,1.30"
    )  # fmt: skip
    result.assert_outcomes(passed=2)
