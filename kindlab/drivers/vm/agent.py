"""The guest's command agent: runs what the host asks, over a virtio-serial port.

Runs inside a kept guest (``kindlab up --mode ipvs`` where the host lacks IP_VS).
Protocol, one JSON object per line each way::

    host -> guest  {"id": 1, "argv": ["ipvsadm", "-Ln"], "timeout": 60}
    guest -> host  {"id": 1, "exit": 0, "stdout": "...", "stderr": "..."}
    host -> guest  {"id": 2, "poweroff": true}

Standard library only: it runs with the guest's Python, from the payload disk.
:func:`handle` is pure apart from running the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

#: Every command runs with kindlab on the path and the guest's cluster at hand.
ENV = {"PYTHONPATH": "/kindlab/src", "KINDLAB_CACHE": "/root/.cache/kindlab"}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request; never raises (errors come back as exit 127 or 124)."""
    reply: dict[str, Any] = {"id": request.get("id")}
    argv = request.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return {**reply, "exit": 2, "stdout": "", "stderr": "agent: argv must be a list of strings"}
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=float(request.get("timeout") or 600),
            env={**os.environ, **ENV},
            check=False,
            cwd="/kindlab/src" if os.path.isdir("/kindlab/src") else "/",
        )
    except FileNotFoundError:
        return {**reply, "exit": 127, "stdout": "", "stderr": f"agent: {argv[0]}: not found"}
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        return {**reply, "exit": 124, "stdout": out, "stderr": "agent: timed out"}
    return {**reply, "exit": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def serve(path: str) -> None:
    """Answer requests on the port at ``path`` until asked to power off."""
    with open(path, "r+b", buffering=0) as port:
        pending = b""
        while True:
            chunk = port.read(65536)
            if not chunk:  # no host connected: the port reads empty; wait for one
                import time

                time.sleep(0.2)
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    request = json.loads(line)
                except ValueError:
                    continue
                if request.get("poweroff"):
                    port.write(json.dumps({"id": request.get("id"), "exit": 0}).encode() + b"\n")
                    return
                port.write(json.dumps(handle(request)).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1])
