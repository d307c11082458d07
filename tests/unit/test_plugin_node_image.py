"""A --node-image that Docker lacks: one line, before anything is created, Docker asked once."""

from __future__ import annotations

from types import SimpleNamespace

import docker.errors
import pytest

from kindlab.drivers import clusters

pytest_plugins = ["pytester"]

RAW = "404 Client Error for http+docker://localhost/v1.41/images/kindlab/node:nope/json"


def test_each_test_fails_with_the_same_one_line_and_docker_is_asked_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def get(name: str) -> None:
        asked.append(name)
        raise docker.errors.ImageNotFound(RAW)

    engine = SimpleNamespace(images=SimpleNamespace(get=get))
    monkeypatch.setattr(clusters, "docker_client", lambda: engine)
    monkeypatch.setenv("KINDLAB_CACHE", str(pytester.path / "cache"))
    kind = pytester.path / "kind"
    kind.write_text(f'#!/bin/sh\necho "$@" >> {pytester.path / "kind-ran"}\n')
    kind.chmod(0o755)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.iptables
        def test_a(cluster):
            pass

        @pytest.mark.iptables
        def test_b(node):
            pass

        @pytest.mark.nftables
        def test_c(cluster):
            pass
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--node-image", "kindlab/node:nope", "--kind-bin", str(kind)
    )
    result.assert_outcomes(errors=3)
    assert asked == ["kindlab/node:nope"]
    line = (
        "kindlab: node image 'kindlab/node:nope' is not in Docker, and kindlab does not pull a "
        "--node-image: leave it out (kindlab then finds, pulls or builds one, see "
        "--node-image-source), build one with `kindlab node-image build`, or get this one "
        "with `docker load -i FILE` or `docker pull kindlab/node:nope`"
    )
    out = result.stdout.lines
    for name in ("test_a", "test_b", "test_c"):
        header = next(i for i, text in enumerate(out) if f"ERROR at setup of {name} " in text)
        assert out[header + 1] == line
        assert out[header + 2].startswith(("_", "="))  # the error is that one line alone
    assert "404" not in result.stdout.str()
    assert not (pytester.path / "kind-ran").exists()
    assert not (pytester.path / "cache").exists()


MISSING_PING = """
import pytest

from kindlab.drivers.node import ExecResult


@pytest.mark.iptables
@pytest.mark.claim("ping-clusterip")
def test_pings():
    ExecResult(
        "n1", ("ping", "-c", "1", "10.96.0.1"), 127, "",
        "timeout: failed to run command 'ping': No such file or directory\\n", 0.1,
    ).check()


def test_other_command_errors_still_fail():
    ExecResult("n1", ("ping", "-c", "1", "10.96.0.1"), 2, "", "ping: bad\\n", 0.1).check()
"""


def test_a_tool_missing_in_the_node_skips_the_check_naming_image_tool_and_command(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_lab=MISSING_PING)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--node-image", "kindest/node:x")
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *: the node image kindest/node:x has no `ping`, which "
            "this check runs in the node (`docker exec --privileged n1 ping -c 1 10.96.0.1` "
            "exited 127: timeout: failed to run command 'ping': No such file or directory); "
            "kindlab's own node image has it (--node-image-source build)"
        ]
    )


def test_each_version_has_its_own_image_kind_and_cluster_names_and_a_failure_is_kept(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kindlab.errors import CommandError, PreconditionError
    from kindlab.pytest_plugin import kubeversions

    chosen: list[str | None] = []

    def image(config: pytest.Config, version: str | None = None) -> str:
        chosen.append(version)
        if version == "v1.25.15":
            raise PreconditionError("no image of 1.25 here")
        if version == "v1.26.13":
            raise CommandError(["go", "build"], 1, "", "link: invalid reference")
        return f"kindlab/node:{version}-x"

    monkeypatch.setattr(kubeversions, "choose_node_image", image)
    monkeypatch.setenv("KINDLAB_CACHE", str(pytester.path / "cache"))
    kind = pytester.path / "kind"
    kind.write_text(f'#!/bin/sh\necho "$@" >> {pytester.path / "kind-ran"}\n')
    kind.chmod(0o755)
    pytester.makepyfile(
        """
        import pytest
        from kindlab.errors import CommandError, PreconditionError

        def test_managers(cluster_manager):
            old = cluster_manager.manager("v1.29.15")
            new = cluster_manager.manager("v1.30.14")
            assert cluster_manager.manager("v1.29.15") is old
            assert (old.image, new.image) == ("kindlab/node:v1.29.15-x", "kindlab/node:v1.30.14-x")
            assert old.name_for("iptables").startswith("kindlab-iptables-v1-29-")
            assert new.name_for("iptables").startswith("kindlab-iptables-v1-30-")
            assert old.run_id == new.run_id
            for _ in range(2):
                with pytest.raises(PreconditionError, match="no image of 1.25 here"):
                    cluster_manager.manager("v1.25.15")
            with pytest.raises(CommandError):
                cluster_manager.manager("v1.26.13")
            with pytest.raises(PreconditionError, match=r"v1.26.13: .* failed earlier .*go build"):
                cluster_manager.manager("v1.26.13")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--kind-bin", str(kind))
    result.assert_outcomes(passed=1)
    # a failure is not tried again
    assert chosen == ["v1.29.15", "v1.30.14", "v1.25.15", "v1.26.13"]
    # leftovers are looked for once, after the first image was had
    assert (pytester.path / "kind-ran").read_text().splitlines() == ["get clusters"]
