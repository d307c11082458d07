"""Run commands in a node: ``docker exec --privileged NODE argv…``, or another way in.

A node is something you run a command on. :class:`NodeBase` is what the probes and
the labs use: ``run`` and the helpers built on it. :class:`Node` talks to the Docker
engine through the docker SDK (a kind node container); a node of an existing cluster,
reached through a debug pod and the Kubernetes exec API, is
:class:`kindlab.drivers.debugpod.PodNode`. Every command is an argv list, never a
shell string, and every run is handed to an optional recorder so that the evidence
of a test (commands and outputs) can be attached to its report.

Running and parsing are separate: the helpers below return
:class:`ExecResult`, and the pure parsers in :mod:`kindlab.parsers` read them.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kindlab.errors import CommandError, PreconditionError

#: Exit status of coreutils ``timeout`` when the command ran out of time.
_TIMEOUT_EXIT = 124
#: Exit statuses of a command that ``timeout`` ended (SIGTERM, then SIGKILL).
TIMED_OUT_EXITS = (_TIMEOUT_EXIT, 128 + 9)
#: Exit status for "command not found", from a shell, ``timeout`` or runc.
_NOT_FOUND_EXIT = 127


class ToolMissingError(CommandError):
    """The command's program is not installed in the node."""

    @property
    def tool(self) -> str:
        """The missing program (``argv`` is ``docker exec --privileged NODE TOOL …``)."""
        return self.argv[4]


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What one command did in one node."""

    node: str
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    via: tuple[str, ...] = ()
    """The command line that reaches the node, before ``argv``; empty for ``docker exec``."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def launcher(self) -> list[str]:
        """What runs ``argv`` in the node: ``docker exec --privileged NODE`` unless ``via``."""
        return list(self.via) or ["docker", "exec", "--privileged", self.node]

    @property
    def command_line(self) -> str:
        """The command as a line you could paste into a shell on the host."""
        return shlex.join([*self.launcher, *self.argv])

    @property
    def output(self) -> str:
        """stdout then stderr, as a terminal would show them."""
        if self.stdout and self.stderr:
            sep = "" if self.stdout.endswith("\n") else "\n"
            return self.stdout + sep + self.stderr
        return self.stdout or self.stderr

    def error(self) -> CommandError:
        cls = ToolMissingError if self.tool_missing else CommandError
        return cls(
            [*self.launcher, *self.argv],
            None if self.timed_out else self.exit_code,
            self.stdout,
            self.stderr,
            timed_out=self.timed_out,
        )

    def check(self) -> ExecResult:
        """Return self, or raise :class:`CommandError` if the command failed."""
        if not self.ok:
            raise self.error()
        return self

    @property
    def tool_missing(self) -> bool:
        if self.exit_code not in (_NOT_FOUND_EXIT, 126):
            return False
        text = self.output.lower()
        return any(
            hint in text
            for hint in ("not found", "no such file or directory", "executable file not found")
        )


Recorder = Callable[[ExecResult], None]


class NodeBase:
    """A node to run commands in, however it is reached; the probes' one interface.

    Subclasses give :meth:`run`; the helpers below are built on it and return raw
    results (parse them with :mod:`kindlab.parsers`).
    """

    name: str
    recorder: Recorder | None
    default_timeout: float

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = False,
    ) -> ExecResult:
        """Run ``argv`` in the node with root privileges and return what happened."""
        raise NotImplementedError

    def _wrapped(self, argv: Sequence[str], timeout: float | None) -> list[str]:
        """``argv`` under coreutils ``timeout`` in the node: a hung command is killed
        there, not merely abandoned by the client."""
        if not argv or any(not isinstance(a, str) for a in argv):
            raise TypeError(f"argv must be a non-empty list of strings, got {argv!r}")
        limit = self.default_timeout if timeout is None else timeout
        return ["timeout", "--kill-after=2", f"{limit:g}", *argv]

    def _finish(self, result: ExecResult, check: bool) -> ExecResult:
        """Hand a result to the recorder; raise it as an error with ``check``."""
        if self.recorder is not None:
            self.recorder(result)
        return result.check() if check else result

    def ping(self, dst: str, *, count: int = 3, wait: float = 1.0) -> ExecResult:
        """``ping -n -c COUNT -W WAIT DST``. Never raises on a lost reply.

        Raises :class:`ToolMissingError` where the node has no ``ping`` (kind's own
        images), which would otherwise read as a ping that sent nothing.
        """
        argv = ["ping", "-n", "-c", str(count), "-W", f"{wait:g}", dst]
        result = self.run(argv, timeout=count * (wait + 1) + 5)
        if result.tool_missing:
            raise result.error()
        return result

    def iptables_save(self, table: str | None = None, *, counters: bool = False) -> ExecResult:
        argv = ["iptables-save"]
        if counters:
            argv.append("-c")
        if table:
            argv += ["-t", table]
        return self.run(argv, check=True)

    def iptables(self, *args: str) -> ExecResult:
        return self.run(["iptables", "-w", "5", *args], check=True)

    def ip_addr(self) -> ExecResult:
        """``ip -j addr``: every link and address, as JSON (:mod:`kindlab.parsers.ipaddr`)."""
        return self.run(["ip", "-j", "addr"])

    def ip_route_get(self, dst: str) -> ExecResult:
        return self.run(["ip", "route", "get", dst])

    def ipvsadm(self) -> ExecResult:
        return self.run(["ipvsadm", "-Ln"])

    def nft_ruleset(self, *, json: bool = True) -> ExecResult:
        argv = ["nft", "-j", "list", "ruleset"] if json else ["nft", "list", "ruleset"]
        return self.run(argv, check=True)

    def nft(self, *args: str) -> ExecResult:
        return self.run(["nft", *args], check=True)

    def tcp_connect(self, ip: str, port: int, *, timeout: float = 3.0) -> ExecResult:
        """Open a TCP connection to IP:PORT and close it (exit 0 when it connected).

        Uses bash's /dev/tcp so that no client beyond bash is needed and a
        refusal (REJECT, RST) shows up as "Connection refused" on stderr.
        """
        script = 'exec 3<>"/dev/tcp/$1/$2" && exec 3>&-'
        return self.run(["bash", "-c", script, "tcp-connect", ip, str(port)], timeout=timeout)

    def http_get(self, ip: str, port: int, path: str = "/", *, timeout: float = 5.0) -> ExecResult:
        url = f"http://{_host(ip)}:{port}{path}"
        argv = ["curl", "-sS", "--max-time", f"{timeout:g}", url]
        return self.run(argv, timeout=timeout + 2)

    def proxy_mode(self) -> ExecResult:
        """kube-proxy's own answer: ``curl 127.0.0.1:10249/proxyMode``."""
        return self.http_get("127.0.0.1", 10249, "/proxyMode")


class Node(NodeBase):
    """A kind node container (or any running container) to run commands in.

    ``Node("kl-iptables-control-plane").run(["ip", "-j", "addr"])`` is
    ``docker exec --privileged kl-iptables-control-plane ip -j addr``.
    """

    def __init__(
        self,
        name: str,
        *,
        client: Any = None,
        recorder: Recorder | None = None,
        default_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self._client = client
        self.recorder = recorder
        self.default_timeout = default_timeout

    def __repr__(self) -> str:
        return f"Node({self.name!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = False,
    ) -> ExecResult:
        """Run ``argv`` in the node with root privileges and return what happened.

        The command is wrapped in coreutils ``timeout`` inside the node: a
        hung command is killed there, not merely abandoned by the client.
        """
        wrapped = self._wrapped(argv, timeout)
        api = self.client.api
        started = time.monotonic()
        try:
            exec_id = api.exec_create(self.name, wrapped, privileged=True, stdout=True, stderr=True)
            out, err = api.exec_start(exec_id, demux=True)
            code = api.exec_inspect(exec_id)["ExitCode"]
        except Exception as exc:  # docker.errors.* and transport errors alike
            raise _engine_error(self.name, exc) from exc
        result = ExecResult(
            node=self.name,
            argv=tuple(argv),
            exit_code=int(code if code is not None else -1),
            stdout=_text(out),
            stderr=_text(err),
            duration=time.monotonic() - started,
            timed_out=code in TIMED_OUT_EXITS,
        )
        return self._finish(result, check)


def docker_client() -> Any:
    """A docker SDK client for the engine in the environment, or a clear error."""
    import docker  # imported lazily: parsers and the walker need no Docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise PreconditionError(
            "no Docker engine answers (DOCKER_HOST or /var/run/docker.sock); "
            f"start one first (on the project's machines: ../shared/host/docker-up): {exc}"
        ) from exc
    return client


def _engine_error(node: str, exc: Exception) -> Exception:
    status = getattr(exc, "status_code", None)
    if status == 404:
        return PreconditionError(f"node container {node!r} does not exist")
    if status == 409:
        return PreconditionError(f"node container {node!r} is not running")
    return exc


def _text(data: bytes | None) -> str:
    return data.decode("utf-8", "replace") if data else ""


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip
