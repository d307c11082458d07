"""A qemu guest for what the host's kernel cannot run: kube-proxy's ipvs mode.

kind nodes share the Docker host's kernel; where it lacks IP_VS or the dummy
device, kindlab runs the ipvs lab in a guest booted from Debian's kernel, which
has both. The guest has no network card. See :mod:`kindlab.drivers.vm.disk` (its cached
disks), :mod:`kindlab.drivers.vm.qemu` (command line, KVM probe), :mod:`kindlab.drivers.vm.run`
(one run) and :mod:`kindlab.drivers.vm.guest` (what runs inside).
"""

from collections.abc import Callable
from pathlib import Path

from . import tuning
from .disk import GuestDisk, build_disk, kindlab_sources, payload_disk
from .events import Event, EventReader
from .qemu import Accel, choose_accel
from .run import GuestError, GuestResult, GuestRun, remove_leftovers

#: KINDLAB_TIMEOUT_SCALE in a guest under TCG (see kindlab.timing): everything is
#: several times slower under emulation, so are the waits for it.
TCG_TIMEOUT_SCALE = 6


def prepare(
    node_image: str, kind_binary: Path, accel_mode: str, progress: Callable[[str], None]
) -> tuple[GuestDisk, Accel]:
    """The guest's disk (built or cached) with ``node_image``, and its accelerator."""
    disk = build_disk(node_image, kind_binary, progress)
    accel = choose_accel(disk.kernel, mode=accel_mode)
    progress(f"accelerator: {accel.reason}")
    return disk, accel


def payload_files(accel: Accel) -> dict[str, str]:
    """The files of a run's payload that depend on how the guest runs.

    Under TCG: longer waits, and kind configs with the control plane trimmed
    (:mod:`kindlab.drivers.vm.tuning`), in place of the checkout's.
    """
    if accel.name == "kvm":
        return {"timeout-scale": "1"}
    from kindlab.paths import clusters_dir

    files = {"timeout-scale": str(TCG_TIMEOUT_SCALE), "tuning": "tcg"}
    files.update({f"src/{path}": text for path, text in tuning.guest_files().items()})
    for config in sorted(clusters_dir().glob("*.yaml")):
        files[f"src/clusters/{config.name}"] = tuning.trimmed_config(config.read_text())
    return files


__all__ = [
    "Accel",
    "Event",
    "EventReader",
    "GuestDisk",
    "GuestError",
    "GuestResult",
    "GuestRun",
    "build_disk",
    "choose_accel",
    "kindlab_sources",
    "payload_disk",
    "payload_files",
    "prepare",
    "remove_leftovers",
]
