"""An existing cluster: debug pod manifests, kubectl evidence lines, the exec API's exit
status, the proxy mode read from the nodes, leftovers, and the plugin's wiring.

No cluster here: the pure parts are tested on their own, the /proxyMode answers are
the captured ones of real kind clusters, and the plugin through pytester.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kindlab import labels
from kindlab.drivers import debugpod
from kindlab.drivers.debugpod import KindlabNamespace, PodNode
from kindlab.drivers.existing import proxy_mode_of, service_range_from_args
from kindlab.drivers.kube import Kube, exec_status
from kindlab.drivers.node import ExecResult
from kindlab.errors import CommandError, PreconditionError

pytest_plugins = ["pytester"]

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: lab
  user: {token: not-a-secret}
contexts:
- name: kind-lab
  context: {cluster: lab, user: lab}
current-context: kind-lab
"""


# -- the debug pod -------------------------------------------------------------------


def test_debug_pod_shares_the_nodes_namespaces_and_pulls_nothing() -> None:
    pod = debugpod.pod_manifest(
        "lab-worker",
        namespace="kindlab-debug-abc123",
        image="docker.io/kindlab/rootfs:e85659f4c580",
        pull_policy="Never",
        run_id="abc123",
    )
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert pod["metadata"]["name"] == "debug-lab-worker"
    assert pod["metadata"]["namespace"] == "kindlab-debug-abc123"
    assert spec["nodeName"] == "lab-worker"
    assert (spec["hostNetwork"], spec["hostPID"]) == (True, True)
    assert container["securityContext"] == {"privileged": True}
    assert container["imagePullPolicy"] == "Never"
    assert container["command"] == ["sleep", "infinity"]
    # scheduled on tainted control planes too, and gone at once when deleted
    assert {"operator": "Exists"} in spec["tolerations"]
    assert spec["terminationGracePeriodSeconds"] == 0
    assert pod["metadata"]["labels"][labels.MANAGED] == "true"
    assert pod["metadata"]["labels"][labels.RUN] == "abc123"


def test_debug_namespace_is_labelled_with_its_run_and_owner() -> None:
    ns = debugpod.namespace_manifest("kindlab-debug-abc123", "abc123", "host-a 4242")
    assert ns["metadata"]["labels"][labels.RUN] == "abc123"
    assert ns["metadata"]["labels"][labels.MANAGED] == "true"
    assert ns["metadata"]["annotations"] == {labels.OWNER: "host-a 4242"}
    assert debugpod.namespace_name("abc123") == "kindlab-debug-abc123"
    assert debugpod.namespace_name("abc123", "gw1") == "kindlab-debug-abc123-gw1"


def test_pod_names_stay_valid_for_long_node_names() -> None:
    name = debugpod.pod_name("n" * 70 + ".example.com")
    assert len(name) <= 63 and not name.endswith((".", "-"))


# -- the evidence line -----------------------------------------------------------------


def test_a_pod_nodes_evidence_is_a_kubectl_line_to_paste(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    node = PodNode(
        "lab-control-plane",
        kube=Kube(kubeconfig, context="kind-lab"),
        namespace="kindlab-debug-abc123",
        pod="debug-lab-control-plane",
    )
    result = ExecResult(
        "lab-control-plane", ("ip", "-j", "addr"), 1, "", "boom\n", 0.1, via=node.via
    )
    assert result.command_line == (
        f"kubectl --kubeconfig {kubeconfig} --context kind-lab -n kindlab-debug-abc123 exec "
        "debug-lab-control-plane -- nsenter -t 1 -m -u -i -n -p -- ip -j addr"
    )
    with pytest.raises(CommandError) as raised:
        result.check()
    assert str(raised.value).startswith(f"{result.command_line}: exited 1")


def test_a_docker_nodes_evidence_stays_docker_exec() -> None:
    result = ExecResult("kindlab-iptables-control-plane", ("ip", "-j", "addr"), 0, "", "", 0.1)
    assert result.command_line == (
        "docker exec --privileged kindlab-iptables-control-plane ip -j addr"
    )


def test_kubectl_line_leaves_out_what_was_not_given() -> None:
    assert debugpod.kubectl_line(None, None, "ns", "pod") == (
        "kubectl", "-n", "ns", "exec", "pod", "--",
    )  # fmt: skip


# -- the exec API's status channel --------------------------------------------------------

# As the API server sent them on channel 3 (kube-apiserver v1.34.4; see the README there).
STATUS = CAPTURED / "v1.34.4-exec-status"


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        ((STATUS / "success.json").read_text(), 0, ""),
        ((STATUS / "exit-3.json").read_text(), 3, ""),
        (
            (STATUS / "not-found.json").read_text(),
            127,
            'exec: "nosuchtool": executable file not found',
        ),
        ("", 127, "without an exit status"),
        ("not json", 127, "not json"),
    ],
    ids=["success", "exit-3", "not-found", "empty", "garbage"],
)
def test_exit_status_of_an_exec(status: str, code: int, says: str) -> None:
    got, message = exec_status(status)
    assert got == code
    assert says in message if says else message == ""


def test_a_program_the_debug_image_lacks_is_a_missing_tool() -> None:
    code, message = exec_status((STATUS / "not-found.json").read_text())
    result = ExecResult("n", ("nsenter",), code, "", message, 0.1, via=("kubectl",))
    assert result.tool_missing


# -- what the cluster runs -------------------------------------------------------------


def _answer(node: str, text: str, code: int = 0) -> ExecResult:
    argv = ("curl", "-sS", "--max-time", "5", "http://127.0.0.1:10249/proxyMode")
    out, err = (text, "") if code == 0 else ("", text)
    return ExecResult(node, argv, code, out, err, 0.1, via=("kubectl", "exec", f"debug-{node}"))


@pytest.mark.parametrize("mode", ["iptables", "nftables", "ipvs"])
def test_the_mode_is_what_every_nodes_kube_proxy_says(mode: str) -> None:
    said = (CAPTURED / f"v1.34.4-{mode}" / "proxymode.out").read_text()
    answers = {"cp": _answer("cp", said), "worker": _answer("worker", said)}
    assert proxy_mode_of(answers) == mode


def test_nodes_that_disagree_are_not_one_mode() -> None:
    iptables = (CAPTURED / "v1.34.4-iptables" / "proxymode.out").read_text()
    nftables = (CAPTURED / "v1.34.4-nftables" / "proxymode.out").read_text()
    with pytest.raises(PreconditionError, match="different modes"):
        proxy_mode_of({"cp": _answer("cp", iptables), "w": _answer("w", nftables)})


def test_a_node_without_kube_proxy_says_which_and_how_it_was_asked() -> None:
    iptables = (CAPTURED / "v1.34.4-iptables" / "proxymode.out").read_text()
    refused = "curl: (7) Failed to connect to 127.0.0.1 port 10249: Connection refused"
    answers = {"cp": _answer("cp", iptables), "w": _answer("w", refused, 7)}
    with pytest.raises(PreconditionError) as raised:
        proxy_mode_of(answers)
    assert "w: `kubectl exec debug-w curl" in str(raised.value)
    assert "exit 7: curl: (7)" in str(raised.value)


def test_a_mode_kindlab_has_no_claims_for_is_refused() -> None:
    with pytest.raises(PreconditionError, match="'kernelspace'"):
        proxy_mode_of({"cp": _answer("cp", "kernelspace")})


def test_service_range_from_the_api_servers_flags() -> None:
    args = [
        "kube-apiserver",
        "--advertise-address=172.18.0.3",
        "--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112",
    ]
    assert service_range_from_args(args) == "10.96.0.0/16"
    assert service_range_from_args(["kube-apiserver"]) is None


# -- the debug image -------------------------------------------------------------------


def test_the_debug_image_is_one_of_kindlabs_that_every_node_has() -> None:
    rootfs = "docker.io/kindlab/rootfs:e85659f4c580"
    node = "docker.io/kindlab/node:v1.34.4-d09599e509aa"
    images = {
        "cp": [rootfs, node, "registry.k8s.io/pause:3.10"],
        "worker": [node, rootfs],
    }
    assert debugpod.choose_image(None, images) == (rootfs, "Never")
    images["worker"] = [node]
    assert debugpod.choose_image(None, images) == (node, "Never")


def test_without_such_an_image_the_error_says_how_to_get_one() -> None:
    images = {"cp": ["docker.io/kindlab/rootfs:e85659f4c580"], "worker": []}
    with pytest.raises(PreconditionError) as raised:
        debugpod.choose_image(None, images)
    assert "--debug-image" in str(raised.value)
    assert "kind load docker-image" in str(raised.value)
    assert "docker.io/kindlab/rootfs:e85659f4c580" in str(raised.value)


def test_a_named_debug_image_may_be_pulled() -> None:
    assert debugpod.choose_image("busybox:1.37", {"cp": []}) == ("busybox:1.37", "IfNotPresent")


# -- leftovers -------------------------------------------------------------------------


def test_namespaces_of_runs_that_are_over_are_leftovers() -> None:
    namespaces = [
        KindlabNamespace("kindlab-debug-live01", "live01", "here", 100),
        KindlabNamespace("kindlab-lab", "live01"),
        KindlabNamespace("kindlab-debug-dead01", "dead01", "here", 200),
        KindlabNamespace("kindlab-lab-old", "dead01"),
        KindlabNamespace("kindlab-debug-away01", "away01", "there", 200),
        KindlabNamespace("kindlab-lab-orphan", "gone01"),
        KindlabNamespace("kindlab-debug-mine", "mine01", "here", 200),
        KindlabNamespace("kindlab-debug-going", "going1", "here", 200, terminating=True),
    ]
    found = debugpod.leftover_namespaces(
        namespaces, run_id="mine01", host="here", alive=lambda pid: pid == 100
    )
    assert found == ["kindlab-debug-dead01", "kindlab-lab-old", "kindlab-lab-orphan"]


def test_owner_annotation_reads_back() -> None:
    from kubernetes import client

    obj = client.V1Namespace(
        metadata=client.V1ObjectMeta(
            name="kindlab-debug-abc123",
            labels={labels.RUN: "abc123", labels.MANAGED: "true"},
            annotations={labels.OWNER: "host-a 4242"},
        ),
        status=client.V1NamespaceStatus(phase="Active"),
    )
    ns = KindlabNamespace.from_api(obj)
    assert ns == KindlabNamespace("kindlab-debug-abc123", "abc123", "host-a", 4242)


# -- the plugin ------------------------------------------------------------------------


def test_existing_cluster_options_need_a_kubeconfig(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--context", "kind-lab")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--context goes with --kubeconfig*"])


def test_checks_of_another_mode_do_not_run_and_the_report_says_why(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    # The session's cluster as the driver would open it: its mode read from the nodes.
    pytester.makeconftest(
        """
        import pytest

        class Opened:
            mode = "iptables"
            name = "kind-lab"
            def describe(self):
                return "context kind-lab of KUBECONFIG"

        @pytest.fixture(scope="session")
        def existing_cluster():
            return Opened()
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.claim("nftables-table")
        @pytest.mark.nftables
        def test_nftables(cluster):
            pass

        @pytest.mark.iptables
        def test_iptables(cluster):
            assert cluster.mode == "iptables"
        """
    )
    report = pytester.path / "out" / "lab"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--kubeconfig={kubeconfig}", f"--kindlab-report={report}"
    )
    result.assert_outcomes(passed=1, skipped=1)
    (entry,) = json.loads(report.with_suffix(".json").read_text())["entries"]
    assert entry["outcome"] == "not run"
    assert entry["reason"] == (
        "nftables check not run: the existing cluster (context kind-lab of KUBECONFIG) runs "
        "kube-proxy in iptables mode (/proxyMode on each of its nodes)"
    )
    assert entry["kubernetes_version"] == "n/a"
