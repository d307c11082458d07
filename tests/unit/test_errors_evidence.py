"""Command failures print as pasteable lines; evidence renders trimmed, JSON keeps it whole."""

from kindlab.drivers.node import ExecResult
from kindlab.errors import CommandError, ParseError
from kindlab.lab.evidence import Evidence, trim_lines


def result(**kw: object) -> ExecResult:
    base: dict[str, object] = {
        "node": "kindlab-iptables-control-plane",
        "argv": ("ping", "-c", "1", "10.96.0.10"),
        "exit_code": 1,
        "stdout": "1 packets transmitted, 0 received, 100% packet loss, time 0ms\n",
        "stderr": "",
        "duration": 1.0,
    }
    base.update(kw)
    return ExecResult(**base)  # type: ignore[arg-type]


def test_command_error_is_a_shell_line_with_output() -> None:
    err = CommandError(["iptables-save", "-t", "no table"], 1, "", "table does not exist\n")
    assert str(err).splitlines()[0] == "iptables-save -t 'no table': exited 1"
    assert "--- stderr ---\ntable does not exist" in str(err)
    timed = CommandError(["sleep", "9"], None, timed_out=True)
    assert str(timed) == "sleep 9: timed out"


def test_parse_error_names_line_and_expectation() -> None:
    err = ParseError("iptables-save", 7, "-Z bogus", "a rule (-A CHAIN …)")
    assert str(err) == "iptables-save: line 7: expected a rule (-A CHAIN …), got '-Z bogus'"


def test_exec_result_check_and_missing_tool() -> None:
    ok = result(exit_code=0)
    assert ok.check() is ok
    failed = result()
    assert failed.command_line == (
        "docker exec --privileged kindlab-iptables-control-plane ping -c 1 10.96.0.10"
    )
    missing = result(
        argv=("ipvsadm", "-Ln"),
        exit_code=127,
        stdout="",
        stderr="timeout: failed to run command 'ipvsadm': No such file or directory\n",
    )
    assert missing.tool_missing and not failed.tool_missing
    assert type(missing.error()).__name__ == "ToolMissingError"


def test_evidence_renders_commands_notes_and_trims() -> None:
    ev = Evidence()
    assert not ev
    ev.record(result(stdout="\n".join(f"line {i}" for i in range(100))))
    ev.note("walk", "nat OUTPUT -> KUBE-SERVICES")
    text = ev.render(trim=3)
    assert text.startswith("$ docker exec --privileged kindlab-iptables-control-plane ping")
    assert "line 2\n… (97 more lines)" in text
    assert text.endswith("# walk\nnat OUTPUT -> KUBE-SERVICES")
    full = ev.to_json()
    assert full[0]["output"].count("\n") == 99
    assert full[1] == {"note": "walk", "text": "nat OUTPUT -> KUBE-SERVICES"}


def test_trim_lines_keeps_short_text() -> None:
    assert trim_lines("a\nb", 2) == "a\nb"
    assert trim_lines("a\nb\nc", None) == "a\nb\nc"
