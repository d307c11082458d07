"""The multi-node layout's pure parts: configs, names, manifests, ``ip netns list``, the
pod-namespace driver on a fake engine, and the lab's skip in the single-node layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kindlab.constants import LAYOUTS, PROXY_MODES
from kindlab.drivers import clusters
from kindlab.drivers.clusters import ClusterManager, cluster_base_name, config_path
from kindlab.drivers.kind import load_cluster_config
from kindlab.drivers.kube import Endpoint, ServiceInfo, ServicePort
from kindlab.drivers.netns import PodNetns, pod_netns
from kindlab.drivers.node import Node
from kindlab.errors import ParseError, PreconditionError
from kindlab.lab.samples import ACROSS_NODES_DIR, PINNED_REPLICAS, AcrossNodes
from kindlab.parsers.netns import parse_netns_list
from kindlab.paths import clusters_dir, manifests_dir, project_root

pytest_plugins = ["pytester"]

SIDE = "lab.kindlab/side"

# --- configs and names ---------------------------------------------------------------


@pytest.mark.parametrize("mode", PROXY_MODES)
def test_config_path_per_layout(mode: str) -> None:
    assert config_path(mode) == clusters_dir() / f"{mode}.yaml"
    assert config_path(mode, "single") == clusters_dir() / f"{mode}.yaml"
    assert config_path(mode, "multinode") == clusters_dir() / f"{mode}-multinode.yaml"


def test_an_unknown_layout_is_refused_in_one_line() -> None:
    with pytest.raises(PreconditionError, match=r"^unknown cluster layout 'ring'; expected one"):
        config_path("iptables", "ring")


@pytest.mark.parametrize("mode", PROXY_MODES)
def test_each_multinode_config_is_its_modes_with_a_control_plane_and_two_labelled_workers(
    mode: str,
) -> None:
    single = load_cluster_config(config_path(mode))
    multi = load_cluster_config(config_path(mode, "multinode"))
    assert single.node_roles == ("control-plane",)
    assert multi.node_roles == ("control-plane", "worker", "worker")
    assert (multi.proxy_mode, multi.service_subnet, multi.pod_subnet) == (
        single.proxy_mode,
        single.service_subnet,
        single.pod_subnet,
    )
    nodes = yaml.safe_load(config_path(mode, "multinode").read_text())["nodes"]
    assert [n.get("labels", {}).get(SIDE) for n in nodes] == [None, "endpoints", "client"]
    # Everything else (kubeadm patches, tuning) is the single-node config's.
    rest = {k: v for k, v in yaml.safe_load(config_path(mode).read_text()).items() if k != "nodes"}
    assert {k: v for k, v in yaml.safe_load(config_path(mode, "multinode").read_text()).items()
            if k != "nodes"} == rest  # fmt: skip


def test_the_packaged_configs_are_the_checkouts() -> None:
    packaged = project_root() / "kindlab" / "_data" / "clusters"
    for layout in LAYOUTS:
        for mode in PROXY_MODES:
            name = config_path(mode, layout).name
            assert (packaged / name).read_bytes() == config_path(mode, layout).read_bytes()


def test_layouts_of_a_mode_never_share_a_name() -> None:
    assert cluster_base_name("iptables") == "kindlab-iptables"
    assert cluster_base_name("iptables", "multinode") == "kindlab-iptables-multinode"


class FakeKind:
    def __init__(self) -> None:
        self.existing: set[str] = set()
        self.created: list[tuple[str, Path]] = []

    def clusters(self) -> list[str]:
        return sorted(self.existing)

    def create(self, name: str, *, config: Path, **_: Any) -> None:
        self.created.append((name, config))
        self.existing.add(name)

    def delete(self, name: str, **_: Any) -> None:
        self.existing.discard(name)


class FakeKube:
    def __init__(self, kubeconfig: Path) -> None:
        pass

    def wait_nodes_ready(self, timeout: float = 0) -> list[str]:
        return ["control-plane", "worker", "worker2"]


def test_both_layouts_of_a_mode_coexist_each_from_its_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(clusters, "Kube", FakeKube)
    monkeypatch.setattr(
        clusters, "preflight", lambda mode, config, image=None: load_cluster_config(config)
    )
    kind = FakeKind()

    def manager(layout: str, **kw: Any) -> ClusterManager:
        fake: Any = kind
        return ClusterManager(fake, image="kindlab/node:t", layout=layout, state_dir=tmp_path, **kw)

    assert manager("multinode", run_id="r1").name_for("nftables") == "kindlab-nftables-multinode-r1"
    assert manager("multinode", keep=True).name_for("nftables") == "kindlab-nftables-multinode"
    single = manager("single", keep=True).ensure("iptables")
    multi = manager("multinode", keep=True).ensure("iptables")
    assert kind.created == [
        ("kindlab-iptables", config_path("iptables")),
        ("kindlab-iptables-multinode", config_path("iptables", "multinode")),
    ]
    assert multi.config.node_roles == ("control-plane", "worker", "worker")
    assert single.state.fingerprint != multi.state.fingerprint
    # Each kept cluster is found again by its own layout, and neither replaces the other.
    again = manager("multinode", keep=True).ensure("iptables")
    assert again.name == multi.name and len(kind.created) == 2
    assert kind.existing == {"kindlab-iptables", "kindlab-iptables-multinode"}


# --- the workloads ---------------------------------------------------------------------


def _deployments() -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((manifests_dir() / ACROSS_NODES_DIR / "across.yaml").read_text())
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def test_the_pinned_service_and_the_client_go_to_different_labelled_workers() -> None:
    deployments = _deployments()
    sides = {
        name: d["spec"]["template"]["spec"]["nodeSelector"][SIDE] for name, d in deployments.items()
    }
    assert sides == {"pinned": "endpoints", "client": "client"}
    assert deployments["pinned"]["spec"]["replicas"] == PINNED_REPLICAS


def test_the_single_node_samples_do_not_pick_up_the_multinode_workloads() -> None:
    from kindlab.drivers.kube import load_manifests

    names = {d["metadata"]["name"] for d in load_manifests(manifests_dir())}
    assert names.isdisjoint({"pinned", "client"})


def _svc(*endpoints: Endpoint) -> ServiceInfo:
    return ServiceInfo(
        "ns", "pinned", "10.96.0.20", (ServicePort("http", "TCP", 80, 8080),), endpoints
    )


def test_endpoint_nodes_are_those_of_ready_endpoints() -> None:
    across = AcrossNodes(
        pinned=_svc(
            Endpoint("10.244.1.2", True, "w1", "pinned-a"),
            Endpoint("10.244.1.3", True, "w1", "pinned-b"),
            Endpoint("10.244.2.9", False, "w2", "pinned-old"),
        ),
        client=Endpoint("10.244.2.4", True, "w2", "client-x"),
    )
    assert across.endpoint_nodes == frozenset({"w1"})


# --- ip netns list -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", ()),
        (
            "cni-6f1d2c0e-93f5-aa6b-4d6e-0c1f2f8b7a11 (id: 0)\n",
            ("cni-6f1d2c0e-93f5-aa6b-4d6e-0c1f2f8b7a11",),
        ),
        ("cni-a (id: 1)\ncni-b\n\ncni-c (id: 12)\n", ("cni-a", "cni-b", "cni-c")),
    ],
)
def test_parse_netns_list(text: str, names: tuple[str, ...]) -> None:
    assert parse_netns_list(text) == names


@pytest.mark.parametrize("line", ["cni-a (id: x)", "two words", "../etc (id: 1)"])
def test_parse_netns_list_refuses_other_lines(line: str) -> None:
    with pytest.raises(ParseError, match=r"^ip netns list: line 2: expected NAME or NAME"):
        parse_netns_list(f"cni-ok\n{line}\n")


# --- a pod's namespace, on a fake engine ------------------------------------------------


def _addr(ip: str) -> str:
    inet = {"family": "inet", "local": ip, "prefixlen": 24, "scope": "global"}
    link = {"ifindex": 2, "ifname": "eth0", "flags": ["UP"], "operstate": "UP", "addr_info": [inet]}
    return json.dumps([link])


class FakeApi:
    """The three calls :class:`Node` makes of the Docker API, answering per argv."""

    def __init__(self, answers: dict[tuple[str, ...], str]) -> None:
        self.answers = answers
        self.ran: list[list[str]] = []

    def exec_create(self, name: str, cmd: list[str], **_: Any) -> str:
        self.ran.append(cmd)
        return str(len(self.ran) - 1)

    def exec_start(self, exec_id: str, demux: bool) -> tuple[bytes, bytes]:
        argv = tuple(self.ran[int(exec_id)][3:])  # after `timeout --kill-after=2 N`
        return self.answers.get(argv, "").encode(), b""

    def exec_inspect(self, exec_id: str) -> dict[str, int]:
        return {"ExitCode": 0}


def test_pod_netns_finds_the_namespace_holding_the_pods_address_and_runs_in_it() -> None:
    api = FakeApi(
        {
            ("ip", "netns", "list"): "cni-a (id: 0)\ncni-b (id: 1)\n",
            ("ip", "-n", "cni-a", "-j", "addr"): _addr("10.244.2.7"),
            ("ip", "-n", "cni-b", "-j", "addr"): _addr("10.244.2.4"),
        }
    )
    node = Node("w2", client=SimpleNamespace(api=api))
    pod = pod_netns(node, "10.244.2.4", pod="client-x")
    assert (pod.name, pod.netns, pod.pod) == ("w2", "cni-b", "client-x")
    pod._client = node.client
    result = pod.ping("10.96.0.20", count=1)
    assert api.ran[-1][3:] == [
        "nsenter", "--net=/var/run/netns/cni-b", "ping", "-n", "-c", "1", "-W", "1", "10.96.0.20"
    ]  # fmt: skip
    assert result.command_line.startswith("docker exec --privileged w2 nsenter --net=")


def test_no_namespace_holding_the_address_is_one_line_naming_those_looked_in() -> None:
    api = FakeApi(
        {("ip", "netns", "list"): "cni-a\n", ("ip", "-n", "cni-a", "-j", "addr"): _addr("10.1.1.1")}
    )
    with pytest.raises(PreconditionError) as info:
        pod_netns(Node("w2", client=SimpleNamespace(api=api)), "10.244.2.4", pod="client-x")
    assert str(info.value) == (
        "no network namespace on w2 holds 10.244.2.4 (pod client-x; looked in cni-a)"
    )
    assert isinstance(PodNetns("w", "n"), Node)


# --- the plugin: the option, and the lab's checks left out without a cluster -----------


def test_the_layout_option_shows_in_the_header_and_refuses_unknown_layouts(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--cluster-layout", "multinode")
    result.stdout.fnmatch_lines(["kindlab: node image *; clusters *; multinode layout"])
    bad = pytester.runpytest("-p", "no:cacheprovider", "--cluster-layout", "ring")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--cluster-layout: invalid choice: 'ring'*"])


def test_the_lab_leaves_its_checks_out_in_the_single_node_layout_before_any_cluster(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a name of its own: a whole run has already imported labs/test_multinode.py
    copy = pytester.path / "test_multinode_copy.py"
    shutil.copy(project_root() / "labs" / "test_multinode.py", copy)
    # Any attempt to find kind or an image would fail here: none is made.
    monkeypatch.setenv("KINDLAB_KIND_BIN", str(pytester.path / "no-such-kind"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", copy.name)
    # deselected, not skipped: `pytest -m ipvs` stays "5 passed", nothing skipped
    result.assert_outcomes(deselected=12)
    result.stdout.no_fnmatch_line("*SKIPPED*")
