"""``kindlab up --mode ipvs`` in a kept guest, and ``kindlab vm`` to reach into it.

kindlab up --mode ipvs          (host kernel without IP_VS) boots a kept guest,
                                creates the ipvs cluster in it, prints how to look
kindlab vm exec -- ARGV...      run a command in the guest (`kindlab` there is kindlab)
kindlab vm shell                a prompt whose lines run in the guest
kindlab vm status               whether a kept guest runs, and where
kindlab down                    also powers the kept guest off
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from kindlab.drivers.vm.choice import HOW_TO_ENABLE
from kindlab.errors import PreconditionError

if TYPE_CHECKING:
    from kindlab.drivers.vm.kept import KeptGuest

Say = Callable[[str], None]
NODE = "kindlab-ipvs-control-plane"


def _say(message: str) -> None:
    print(f"kindlab: {message}", file=sys.stderr, flush=True)


def guest_argv(argv: list[str]) -> list[str]:
    """What runs in the guest for ``argv``: ``kindlab ...`` is kindlab's CLI there (pure)."""
    if argv and argv[0] == "kindlab":
        return ["python3", "-m", "kindlab.cli", *argv[1:]]
    return argv


def up_in_vm(
    node_image: str, kind_bin: str | None, accel_mode: str, memory: str, say: Say = _say
) -> int:
    """Boot a kept guest and run ``kindlab up --mode ipvs`` in it; print how to explore."""
    from kindlab.drivers import vm
    from kindlab.drivers.kind import find_kind
    from kindlab.drivers.vm import guest, kept

    if not shutil.which("qemu-system-x86_64"):
        raise PreconditionError(f"ipvs mode needs IP_VS, which this kernel lacks; {HOW_TO_ENABLE}")
    running = kept.load()
    if running is None:
        vm.remove_leftovers(say)
        disk, accel = vm.prepare(node_image, find_kind(kind_bin, progress=say), accel_mode, say)
        command = [
            "python3",
            "-m",
            "kindlab.cli",
            "up",
            "--mode",
            "ipvs",
            "--node-image",
            node_image,
            "--kind-bin",
            guest.KIND_PATH,
        ]
        files = {**vm.payload_files(accel), "hold": ""}
        sources = vm.kindlab_sources()
        running = kept.start(
            disk,
            lambda dest: vm.payload_disk(dest, sources, command, files),
            accel,
            memory=memory,
            progress=say,
        )
    else:
        say(f"reusing the kept guest ({running.where})")
    code, out, err = kept.exec_in(running, guest_argv(["kindlab", "up", "--mode", "ipvs"]))
    print(out, end="")
    if code != 0:
        print(err, end="", file=sys.stderr)
        return code
    print(f"\nThe cluster runs in a {running.where} (this host's kernel lacks IP_VS).")
    print("Its commands run in the guest: prefix them with `kindlab vm exec --`, e.g.")
    print(f"  kindlab vm exec -- docker exec {NODE} ipvsadm -Ln")
    print(f"  kindlab vm exec -- docker exec {NODE} ip -br addr show kube-ipvs0")
    print("  kindlab vm exec -- kindlab explain <ClusterIP>")
    print("  kindlab vm shell                # a prompt in the guest")
    print("  kindlab down                    # powers the guest off")
    return 0


def _guest() -> KeptGuest:
    from kindlab.drivers.vm import kept

    running = kept.load() or kept.running_test_guest()
    if running is None:
        raise PreconditionError("no kept guest runs: `kindlab up --mode ipvs` starts one")
    return running


def cmd_exec(args: argparse.Namespace) -> int:
    from kindlab.drivers.vm import kept

    argv = [a for a in args.argv if a != "--"]
    if not argv:
        raise PreconditionError("kindlab vm exec: give a command, e.g. -- ipvsadm -Ln")
    code, out, err = kept.exec_in(_guest(), guest_argv(argv), timeout=args.timeout)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def cmd_shell(args: argparse.Namespace) -> int:
    from kindlab.drivers.vm import kept

    running = _guest()
    print(f"kindlab: each line runs in the {running.where}; Ctrl-D leaves.")
    while True:
        try:
            line = input("guest# ")
        except EOFError:
            print()
            return 0
        if not line.strip():
            continue
        code, out, err = kept.exec_in(running, guest_argv(shlex.split(line)), timeout=600)
        sys.stdout.write(out)
        sys.stderr.write(err)
        if code:
            print(f"(exit {code})")


def cmd_status(args: argparse.Namespace) -> int:
    from kindlab.drivers.vm import kept

    running = kept.load()
    print(
        f"kept guest: {running.where}, qemu pid {running.qemu_pid}" if running else "no kept guest"
    )
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vm = sub.add_parser("vm", help="the kept qemu guest of `kindlab up --mode ipvs`")
    vsub = vm.add_subparsers(dest="vm_command", metavar="VM_COMMAND", required=True)
    ex = vsub.add_parser("exec", help="run a command in the guest")
    ex.add_argument("--timeout", type=float, default=600)
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    ex.set_defaults(func=cmd_exec)
    sh = vsub.add_parser("shell", help="a prompt whose lines run in the guest")
    sh.set_defaults(func=cmd_shell)
    st = vsub.add_parser("status", help="whether a kept guest runs")
    st.set_defaults(func=cmd_status)
