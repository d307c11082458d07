"""Where kube-proxy's ipvs mode runs: on the Docker host, in a qemu guest, or nowhere.

Pure. The pytest plugin decides with it (``--ipvs-vm``); ``kindlab up --mode ipvs``
gives the same advice (:data:`HOW_TO_ENABLE`) when qemu is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

VM_CHOICES = ("auto", "always", "never")

HOW_TO_ENABLE = (
    "install qemu-system-x86 and qemu-utils (bash scripts/setup.sh does) to run the ipvs "
    "checks in a qemu guest whose kernel has IP_VS"
)


@dataclass(frozen=True)
class Decision:
    """Whether ipvs checks run in a VM here; if they cannot run at all, why.

    ``skip_reason``: the checks skip with it (auto, and nothing to run them on);
    ``error``: they fail with it (the user asked for a VM that cannot be had).
    """

    use_vm: bool
    why: str = ""
    skip_reason: str | None = None
    error: str | None = None


def decide(
    option: str, kernel_ok: bool, kernel_reason: str, qemu: str | None, *, xdist: bool = False
) -> Decision:
    """Where the ipvs checks run (pure): on the host, in a VM, or nowhere."""
    if option not in VM_CHOICES:
        raise ValueError(f"--ipvs-vm: expected one of {', '.join(VM_CHOICES)}, got {option!r}")
    if option == "never" or (option == "auto" and kernel_ok):
        return Decision(False, why=kernel_reason)
    if qemu is None:
        if option == "always":
            return Decision(
                False, error=f"--ipvs-vm always: qemu-system-x86_64 not found; {HOW_TO_ENABLE}"
            )
        return Decision(
            False, skip_reason=f"ipvs mode cannot run here: {kernel_reason}; {HOW_TO_ENABLE}"
        )
    if xdist:
        return Decision(
            False,
            skip_reason="the ipvs checks would run in a qemu guest, which kindlab does not share "
            "between pytest-xdist workers: run `pytest -m ipvs` without -n",
        )
    why = "as asked (--ipvs-vm always)" if option == "always" else kernel_reason
    return Decision(True, why=why)
