"""One preflight, cheapest check first; the manager and the plugin both go through it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from kindlab import nodeimage
from kindlab.drivers import clusters, kernel
from kindlab.drivers.clusters import ClusterManager, ModeUnsupported, preflight
from kindlab.drivers.kernel import Support
from kindlab.errors import PreconditionError
from kindlab.paths import clusters_dir

pytest_plugins = ["pytester"]

NO_IPVS = "Docker host kernel 6.1.0 (checked via container) lacks CONFIG_IP_VS"


class Host:
    """The Docker host as preflight sees it: its images and its kernel, and who asked."""

    def __init__(self, images: tuple[str, ...] = (), ipvs: bool = True) -> None:
        self.images = images
        self.ipvs = ipvs
        self.asked: list[str] = []

    def get(self, name: str) -> None:
        self.asked.append(f"image {name}")
        if name not in self.images:
            raise docker.errors.ImageNotFound(f"404 Client Error: {name}")

    def support(self, mode: str) -> Support:
        self.asked.append(f"kernel {mode}")
        ok = mode != "ipvs" or self.ipvs
        return Support(mode, ok, (), "kernel ok" if ok else NO_IPVS)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Host:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path / "cache"))
    seen = Host(images=("kindlab/node:here",), ipvs=False)
    engine = SimpleNamespace(images=SimpleNamespace(get=seen.get))
    monkeypatch.setattr(clusters, "docker_client", lambda: engine)
    monkeypatch.setattr(kernel, "host_support", seen.support)
    return seen


def test_all_there_gives_the_config(host: Host) -> None:
    cfg = preflight("iptables", image="kindlab/node:here")
    assert (cfg.path, cfg.proxy_mode) == (clusters_dir() / "iptables.yaml", "iptables")
    assert host.asked == ["image kindlab/node:here", "kernel iptables"]


def test_without_an_image_docker_is_not_asked_about_one(host: Host) -> None:
    preflight("nftables")
    assert host.asked == ["kernel nftables"]


def test_an_unknown_mode_is_refused_before_docker_is_asked(host: Host) -> None:
    with pytest.raises(PreconditionError, match=r"^unknown proxy mode 'userspace'; expected one"):
        preflight("userspace", clusters_dir() / "iptables.yaml", image="kindlab/node:here")
    assert host.asked == []


def test_a_config_for_another_mode_is_refused(host: Host) -> None:
    with pytest.raises(PreconditionError, match="sets kubeProxyMode 'iptables', not 'nftables'"):
        preflight("nftables", clusters_dir() / "iptables.yaml")
    assert host.asked == []


def test_a_missing_image_is_refused_before_the_kernel_is_probed(host: Host) -> None:
    with pytest.raises(PreconditionError, match="node image 'kindlab/node:gone' is not in Docker"):
        preflight("ipvs", image="kindlab/node:gone")
    assert host.asked == ["image kindlab/node:gone"]


def test_a_kernel_without_the_mode_is_mode_unsupported(host: Host) -> None:
    with pytest.raises(ModeUnsupported) as info:
        preflight("ipvs", image="kindlab/node:here")
    assert str(info.value) == NO_IPVS


class NoKind:
    """A kind that must not be used: preflight comes first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"kind.{name} was used before the preflight passed")


@pytest.mark.parametrize(
    ("mode", "image", "error"),
    [
        ("iptables", "kindlab/node:gone", PreconditionError),
        ("ipvs", "kindlab/node:here", ModeUnsupported),
    ],
)
def test_the_manager_creates_nothing_unless_the_preflight_passes(
    host: Host, tmp_path: Path, mode: str, image: str, error: type[Exception]
) -> None:
    manager = ClusterManager(NoKind(), image=image)  # type: ignore[arg-type]
    with pytest.raises(error):
        manager.ensure(mode)
    assert host.asked[0] == f"image {image}"
    assert not (tmp_path / "cache").exists()


def test_the_plugin_skips_ipvs_on_a_kernel_without_it_before_building_an_image(
    host: Host, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(*_: object, **__: object) -> str:
        raise AssertionError("the node image was built for a mode that cannot run")

    monkeypatch.setattr(nodeimage, "build", no_build)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ipvs
        def test_a(cluster):
            pass
        """
    )
    kind = pytester.path / "kind"
    kind.write_text("#!/bin/sh\nexit 1\n")
    kind.chmod(0o755)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--ipvs-vm", "never", "--kind-bin", str(kind), "-rs"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"SKIPPED * ipvs mode cannot run here: {NO_IPVS}"])
    assert host.asked == ["kernel ipvs"]
