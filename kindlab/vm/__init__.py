"""A qemu guest for what the host's kernel cannot run: kube-proxy's ipvs mode.

kind nodes share the Docker host's kernel; where it lacks IP_VS or the dummy
device, kindlab runs the ipvs lab in a guest booted from Debian's kernel, which
has both. The guest has no network card. See :mod:`kindlab.vm.disk` (its cached
disks), :mod:`kindlab.vm.qemu` (command line, KVM probe), :mod:`kindlab.vm.run`
(one run) and :mod:`kindlab.vm.guest` (what runs inside).
"""

from .disk import GuestDisk, build_disk, payload_disk
from .events import Event, EventReader
from .qemu import Accel, choose_accel
from .run import GuestError, GuestResult, GuestRun, remove_leftovers

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
    "payload_disk",
    "remove_leftovers",
]
