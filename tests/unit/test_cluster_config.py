"""kind cluster configs: the shipped ones are valid, bad ones fail before anything is created."""

from pathlib import Path

import pytest
import yaml

from kindlab.constants import PROXY_MODES
from kindlab.drivers.clusters import config_for_version
from kindlab.drivers.kind import (
    KUBEADM_V1BETA4,
    load_cluster_config,
    parse_cluster_config,
    render_cluster_config,
)
from kindlab.errors import PreconditionError
from kindlab.paths import clusters_dir
from kindlab.versions import choose


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


# -- a config per Kubernetes version ----------------------------------------------------


def _patches(path: Path) -> list[dict[str, object]]:
    doc = yaml.safe_load(path.read_text())
    return [yaml.safe_load(p) for p in doc.get("kubeadmConfigPatches", [])]


def test_nftables_on_1_29_and_1_30_gets_its_gate_in_kinds_config(tmp_path: Path) -> None:
    for version in ("v1.29.15", "1.30"):
        path = config_for_version("nftables", choose(version), tmp_path)
        doc = yaml.safe_load(path.read_text())
        assert doc["featureGates"] == {"NFTablesProxyMode": True}
        cfg = load_cluster_config(path)
        assert (cfg.proxy_mode, cfg.service_subnet) == ("nftables", "10.96.0.0/12")
        assert path.read_text().startswith("# Made by kindlab from nftables.yaml for Kubernetes")
        # kubeadm v1beta3 (kind v0.30.0): the patches keep extraArgs as a map
        assert _patches(path) == _patches(clusters_dir() / "nftables.yaml")


@pytest.mark.parametrize(
    ("mode", "version"), [("nftables", "1.31"), ("iptables", "1.29"), ("ipvs", "1.34")]
)
def test_a_version_that_needs_nothing_else_uses_kindlabs_own_config(
    mode: str, version: str, tmp_path: Path
) -> None:
    assert config_for_version(mode, choose(version), tmp_path) == clusters_dir() / f"{mode}.yaml"
    assert not list(tmp_path.iterdir())


def test_where_kind_writes_kubeadm_v1beta4_extra_args_become_name_value_lists(
    tmp_path: Path,
) -> None:
    path = config_for_version("iptables", choose("1.37"), tmp_path)
    patch, kubelet = _patches(path)
    assert kubelet == {"kind": "KubeletConfiguration", "failCgroupV1": False}
    assert patch["controllerManager"] == {"extraArgs": [{"name": "leader-elect", "value": "false"}]}
    assert patch["scheduler"] == {"extraArgs": [{"name": "leader-elect", "value": "false"}]}
    assert "featureGates" not in yaml.safe_load(path.read_text())


def test_render_converts_kubelet_extra_args_too_and_keeps_other_gates() -> None:
    text = (
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nfeatureGates: {Other: false}\n"
        "kubeadmConfigPatches:\n- |\n  kind: InitConfiguration\n  nodeRegistration:\n"
        "    kubeletExtraArgs:\n      v: 4\n"
    )
    out = yaml.safe_load(
        render_cluster_config(text, feature_gates={"G": True}, kubeadm_api=KUBEADM_V1BETA4)
    )
    assert out["featureGates"] == {"Other": False, "G": True}
    patch = yaml.safe_load(out["kubeadmConfigPatches"][0])
    assert patch["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "v", "value": "4"}]


def test_a_version_without_the_mode_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(PreconditionError, match=r"kube-proxy 1\.28 has no nftables mode"):
        config_for_version("nftables", choose("1.28"), tmp_path)


def test_from_1_35_the_kubelet_is_told_to_run_on_cgroup_v1(tmp_path: Path) -> None:
    path = config_for_version("nftables", choose("1.35"), tmp_path)
    patches = _patches(path)
    assert patches[:-1] == _patches(clusters_dir() / "nftables.yaml")
    assert patches[-1] == {"kind": "KubeletConfiguration", "failCgroupV1": False}
    assert "kubelet 1.35 refuses cgroup v1" in path.read_text().splitlines()[0]


def test_kind_on_path_serves_kindlab_s_pinned_release_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kindlab.constants import KIND_VERSION
    from kindlab.drivers.kind import find_kind

    bindir = tmp_path / "bin"
    bindir.mkdir()
    on_path = bindir / "kind"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    built = tmp_path / "cache" / "bin" / "kind-v0.33.0"  # as install_kind caches it
    built.parent.mkdir(parents=True)
    built.write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path / "cache"))
    assert find_kind(None, version=KIND_VERSION) == on_path
    assert find_kind(None, version="v0.33.0") == built
    assert find_kind(str(on_path), version="v0.33.0") == on_path  # --kind-bin is as given
