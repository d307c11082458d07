"""kind cluster configs: the shipped ones are valid, bad ones fail before anything is created."""

from pathlib import Path

import pytest

from kindlab.constants import PROXY_MODES
from kindlab.drivers.kind import load_cluster_config, parse_cluster_config
from kindlab.errors import PreconditionError
from kindlab.paths import clusters_dir


@pytest.mark.parametrize("mode", PROXY_MODES)
def test_shipped_config_sets_its_mode_and_the_posts_service_range(mode: str) -> None:
    cfg = load_cluster_config(clusters_dir() / f"{mode}.yaml")
    assert cfg.proxy_mode == mode
    assert cfg.service_subnet == "10.96.0.0/12"
    assert "control-plane" in cfg.node_roles


GOOD = """
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking: {kubeProxyMode: nftables}
"""


def test_defaults_follow_kind() -> None:
    cfg = parse_cluster_config("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    assert (cfg.proxy_mode, cfg.service_subnet, cfg.node_roles) == (
        "iptables",
        "10.96.0.0/12",
        ("control-plane",),
    )
    assert parse_cluster_config(GOOD).proxy_mode == "nftables"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Cluster\napiVersion: [unclosed", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("kind: Pod\napiVersion: v1\n", "expected kind: Cluster"),
        (GOOD.replace("nftables", "userspace"), "unknown kubeProxyMode 'userspace'"),
        (GOOD + "nodes: [{role: worker}]\n", "needs at least one control-plane"),
        (GOOD + "nodes: worker\n", "nodes must be a list"),
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: 3\n", "must be a mapping"),
    ],
)
def test_bad_config_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(PreconditionError, match=message):
        parse_cluster_config(text, Path("bad.yaml"))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(PreconditionError, match="cannot read it"):
        load_cluster_config(tmp_path / "nope.yaml")


def test_an_installed_kindlab_ships_the_configs_and_manifests() -> None:
    from kindlab import paths

    packaged = paths._PACKAGED
    for sub, names in (("clusters", PROXY_MODES), ("manifests", ("web", "empty"))):
        for name in names:
            assert (packaged / sub / f"{name}.yaml").is_file(), f"{sub}/{name}.yaml not packaged"
