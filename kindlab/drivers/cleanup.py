"""Remove the Docker objects kindlab labelled, whichever run created them."""

from __future__ import annotations

import contextlib

from kindlab import labels
from kindlab.drivers.node import docker_client


def remove_labelled_containers() -> list[str]:
    """Force-remove containers and networks labelled ``io.kindlab.managed=true``."""
    client = docker_client()
    selector = {"label": f"{labels.MANAGED}=true"}
    removed = []
    for container in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(Exception):
            container.remove(force=True)
            removed.append(container.name)
    for network in client.networks.list(filters=selector):
        with contextlib.suppress(Exception):
            network.remove()
            removed.append(network.name)
    return removed
