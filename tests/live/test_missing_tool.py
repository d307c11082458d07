"""A node image without a tool a check runs: the check skips and says so, on a real node.

kind's own node images have no ``ping`` and no ``ipvsadm``. A stand-in node here is
kindlab's Debian root file system with ``ping`` removed (kind's image is Debian with
coreutils too), and a lab check run by pytester through kindlab's plugin pings from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from kindlab import labels
from kindlab.drivers.node import Node, ToolMissingError, docker_client

pytestmark = pytest.mark.live
pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def pingless(box_image: str) -> Iterator[Node]:
    """A running privileged container of kindlab's root file system, without ``ping``."""
    client = docker_client()
    container = client.containers.run(
        box_image,
        ["sh", "-c", "rm -f /usr/bin/ping /bin/ping && exec sleep infinity"],
        name=f"kindlab-pingless-{os.getpid()}",
        labels={labels.MANAGED: "true"},
        privileged=True,
        network_mode="none",
        detach=True,
    )
    try:
        node = Node(container.name, client=client)
        node.run(["sh", "-c", "! command -v ping"], check=True)  # the rm has run
        yield node
    finally:
        container.remove(force=True)


def test_ping_in_a_node_without_ping_raises_tool_missing(pingless: Node) -> None:
    with pytest.raises(ToolMissingError) as info:
        pingless.ping("127.0.0.1", count=1)
    assert info.value.tool == "ping" and info.value.exit_code == 127


LAB = """
import os

import pytest

from kindlab.drivers.node import Node
from kindlab.lab import probes


@pytest.mark.iptables
@pytest.mark.claim("ping-clusterip")
def test_clusterip_gets_no_echo_reply():
    result = probes.ping(Node(os.environ["KINDLAB_PINGLESS"]), "127.0.0.1", count=1)
    assert not result.answered
"""


def test_a_check_that_pings_skips_naming_the_missing_tool(
    pingless: Node, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINDLAB_PINGLESS", pingless.name)
    pytester.makepyfile(test_lab=LAB)
    report = pytester.path / "lab"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rs", "--node-image", "kind-like:1", f"--kindlab-report={report}"
    )
    result.assert_outcomes(skipped=1)
    command = f"docker exec --privileged {pingless.name} ping -n -c 1 -W 1 127.0.0.1"
    reason = (
        "the node image kind-like:1 has no `ping`, which this check runs in the node "
        f"(`{command}` exited 127: timeout: failed to run command 'ping': No such file or "
        "directory); kindlab's own node image has it (--node-image-source build)"
    )
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *: {reason}"])
    entries = json.loads(report.with_suffix(".json").read_text())["entries"]
    assert [(e["claim_id"], e["outcome"], e["reason"]) for e in entries] == [
        ("ping-clusterip", "not run", reason)
    ]
