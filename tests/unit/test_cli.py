"""The kindlab command's input errors: one line on stderr, exit 2, nothing created."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest

from kindlab import cli
from kindlab.cli import main
from kindlab.cli import vm as vm_cli
from kindlab.drivers import clusters, kernel
from kindlab.drivers.kernel import Support
from kindlab.drivers.state import ClusterState, write_state


@pytest.fixture(autouse=True)
def own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_mode(capsys: pytest.CaptureFixture[str], own_cache: Path) -> None:
    code, _, err = run(["up", "--mode", "userspace"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "kindlab: error: unknown proxy mode 'userspace'; expected one of iptables, ipvs, nftables"
    ]
    assert not own_cache.exists()


def test_bad_cluster_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, own_cache: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
                      "networking: {kubeProxyMode: userspace}\n")  # fmt: skip
    code, _, err = run(["up", "--mode", "iptables", "--config", str(config)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "unknown kubeProxyMode 'userspace'" in err
    assert not own_cache.exists()


def test_status_with_nothing_created(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status"], capsys)[:2] == (0, "no kindlab clusters\n")


def test_status_lists_each_state_and_says_which_cannot_be_read(
    capsys: pytest.CaptureFixture[str], own_cache: Path
) -> None:
    write_state(ClusterState("kindlab-iptables", mode="iptables", image="img:1", keep=True))
    write_state(
        ClusterState("kindlab-nftables-r1", mode="nftables", image="img:2", run_id="r1", pid=7)
    )
    (own_cache / "clusters" / "kindlab-ipvs.json").write_text("{")
    code, out, _ = run(["status"], capsys)
    assert code == 0
    assert out.splitlines() == [
        "kindlab-iptables  iptables  img:1  kept (incomplete)",
        f"kindlab-ipvs  unreadable state: {own_cache / 'clusters' / 'kindlab-ipvs.json'}: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1) "
        "(`kindlab down` removes it)",
        "kindlab-nftables-r1  nftables  img:2  run r1 pid 7 (incomplete)",
    ]


def test_up_ipvs_on_a_kernel_without_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_ipvs = "Docker host kernel 6.1.0 lacks CONFIG_IP_VS"
    monkeypatch.setattr(kernel, "host_support", lambda mode: Support(mode, False, (), no_ipvs))
    monkeypatch.setattr(clusters, "require_node_image", lambda image: None)
    code, _, err = run(
        ["up", "--mode", "ipvs", "--node-image", "img:1", "--ipvs-vm", "never"], capsys
    )
    assert (code, err) == (2, f"kindlab: error: {no_ipvs}\n")

    guests: list[tuple[object, ...]] = []

    def up_in_vm(*args: object) -> int:
        guests.append(args)
        return 0

    monkeypatch.setattr(vm_cli, "up_in_vm", up_in_vm)
    code, _, err = run(["up", "--mode", "ipvs", "--node-image", "img:1"], capsys)
    assert (code, err) == (0, f"kindlab: {no_ipvs}: the cluster goes into a qemu guest\n")
    assert guests == [("img:1", None, "auto", "8G")]


def test_walk_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    dump = Path(__file__).parent.parent / "fixtures" / "iptables" / "nft_save.out"
    code, out, _ = run(["walk", str(dump), "--proto", "icmp", "--dst", "10.96.45.17"], capsys)
    assert code == 0 and "Result: not translated (ACCEPT)" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["up"])
    assert info.value.code == 2
    assert "--mode" in capsys.readouterr().err


def test_up_with_a_node_image_docker_lacks_is_one_line_before_anything(
    capsys: pytest.CaptureFixture[str], own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def get(name: str) -> None:
        asked.append(name)
        raise docker.errors.ImageNotFound("404 Client Error for http+docker://localhost/…")

    engine = SimpleNamespace(images=SimpleNamespace(get=get))

    def no_kind(*_: object, **__: object) -> None:
        raise AssertionError("kind was looked for: the image check comes first")

    monkeypatch.setattr(kernel, "host_support", lambda mode: Support(mode, True, (), "test"))
    monkeypatch.setattr(clusters, "docker_client", lambda: engine)
    monkeypatch.setattr(cli, "find_kind", no_kind)
    code, _, err = run(["up", "--mode", "iptables", "--node-image", "kindlab/node:nope"], capsys)
    assert code == 2
    assert err.splitlines() == [
        "kindlab: error: node image 'kindlab/node:nope' is not in Docker, and kindlab does "
        "not pull a --node-image: leave it out (kindlab then finds, pulls or builds one, see "
        "--node-image-source), build one with `kindlab node-image build`, or get this one "
        "with `docker load -i FILE` or `docker pull kindlab/node:nope`"
    ]
    assert asked == ["kindlab/node:nope"]
    assert not own_cache.exists()


def test_up_ipvs_multinode_refuses_the_guest_and_up_passes_the_layout_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_ipvs = "Docker host kernel 6.1.0 lacks CONFIG_IP_VS"
    monkeypatch.setattr(kernel, "host_support", lambda mode: Support(mode, False, (), no_ipvs))
    monkeypatch.setattr(clusters, "require_node_image", lambda image: None)
    monkeypatch.setattr(vm_cli, "up_in_vm", lambda *a: pytest.fail("no guest for multinode"))
    argv = ["up", "--mode", "ipvs", "--node-image", "img:1", "--cluster-layout", "multinode"]
    code, _, err = run(argv, capsys)
    assert (code, err) == (
        2,
        f"kindlab: error: {no_ipvs}; and the qemu guest runs the single-node layout only\n",
    )

    managers: list[tuple[str, str]] = []

    class Stop(Exception):
        pass

    def manager(args: object, **kw: object) -> None:
        managers.append((getattr(args, "cluster_layout", "?"), str(getattr(args, "mode", "?"))))
        raise Stop

    monkeypatch.setattr(kernel, "host_support", lambda mode: Support(mode, True, (), "test"))
    monkeypatch.setattr(cli, "_manager", manager)
    with pytest.raises(Stop):
        main(["up", "--mode", "nftables", "--node-image", "img:1", "--cluster-layout", "multinode"])
    assert managers == [("multinode", "nftables")]


def test_up_on_a_version_without_the_mode_is_one_line_before_anything(
    capsys: pytest.CaptureFixture[str], own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nothing(*_: object, **__: object) -> None:
        raise AssertionError("something was looked for before the version was checked")

    monkeypatch.setattr(cli, "find_kind", nothing)
    monkeypatch.setattr(cli, "preflight", nothing)
    code, _, err = run(["up", "--mode", "nftables", "--kubernetes-version", "1.28"], capsys)
    assert (code, err.splitlines()) == (
        2,
        ["kindlab: error: kube-proxy 1.28 has no nftables mode (it came in 1.29, alpha)"],
    )
    code, _, err = run(["up", "--mode", "iptables", "--kubernetes-version", "v1.25.16"], capsys)
    assert code == 2 and "refused k8s.io/cluster-bootstrap@v0.25.16 .zip" in err
