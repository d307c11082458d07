"""The node driver against real privileged containers on the local Docker engine.

No kind here: a labelled container from kindlab's own Debian base image stands in
for a node, since a node is just a container one runs commands in.
"""

from __future__ import annotations

import pytest

from kindlab.drivers.node import ExecResult, Node, ToolMissingError
from kindlab.errors import CommandError, PreconditionError
from kindlab.lab.evidence import Evidence

pytestmark = pytest.mark.live


def test_exec_returns_exit_code_and_both_streams(box: Node) -> None:
    result = box.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and not result.timed_out


def test_exec_is_privileged(box: Node) -> None:
    # Creating a link needs CAP_NET_ADMIN: only a privileged exec has it.
    box.run(["ip", "link", "add", "kl-br0", "type", "bridge"], check=True)
    try:
        assert "kl-br0" in box.run(["ip", "-o", "link", "show", "kl-br0"], check=True).stdout
    finally:
        box.run(["ip", "link", "del", "kl-br0"])


def test_timeout_kills_the_command_in_the_node(box: Node) -> None:
    result = box.run(["sleep", "30"], timeout=1)
    assert result.timed_out and result.duration < 10
    assert "sleep 30" not in box.run(["ps", "-eo", "args"], check=True).stdout
    with pytest.raises(CommandError, match="timed out"):
        result.check()


def test_failed_command_raises_with_a_pasteable_line(box: Node) -> None:
    with pytest.raises(CommandError) as info:
        box.run(["ls", "/no/such/dir"], check=True)
    err = info.value
    assert err.exit_code == 2
    assert err.command_line == f"docker exec --privileged {box.name} ls /no/such/dir"
    assert "No such file or directory" in err.stderr


def test_missing_binary_is_its_own_error(box: Node) -> None:
    result = box.run(["kindlab-no-such-tool", "--help"])
    assert result.exit_code == 127 and result.tool_missing
    with pytest.raises(ToolMissingError):
        result.check()


def test_missing_container_is_a_clear_precondition() -> None:
    with pytest.raises(PreconditionError, match="does not exist"):
        Node("kindlab-no-such-node").run(["true"])


def test_helpers_and_recorder(box: Node) -> None:
    log = Evidence()
    node = Node(box.name, recorder=log.record)
    ping = node.ping("127.0.0.1", count=1)
    assert ping.ok and "1 received" in ping.stdout
    assert node.iptables_save("nat").ok
    assert '"ifname":"lo"' in node.ip_addr().stdout.replace(" ", "")
    assert "local 127.0.0.1" in node.ip_route_get("127.0.0.1").stdout
    refused = node.tcp_connect("127.0.0.1", 1)
    assert not refused.ok and "Connection refused" in refused.stderr
    assert [type(i) for i in log.items] == [ExecResult] * 5
    assert log.items[0].argv[0] == "ping"  # type: ignore[union-attr]
