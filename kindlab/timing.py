"""How long to wait for a cluster: the defaults, scaled for slow machines.

``KINDLAB_TIMEOUT_SCALE`` (a number, default 1) multiplies every wait for a
cluster to come up and settle: ``kind create --wait``, nodes Ready, sample
endpoints, kube-proxy's sync. The VM backend sets it inside a guest that runs
under software emulation, where everything takes several times longer. Probe
timeouts (a ping's deadline, a TCP connect) are part of what the lab observes and
are never scaled.
"""

from __future__ import annotations

import os

ENV = "KINDLAB_TIMEOUT_SCALE"


def scaled(seconds: float) -> float:
    """``seconds`` times ``$KINDLAB_TIMEOUT_SCALE`` (ignored unless a number >= 1)."""
    try:
        factor = float(os.environ.get(ENV, "1"))
    except ValueError:
        factor = 1.0
    return seconds * max(factor, 1.0)
