"""Names and labels of everything kindlab creates, so that leftovers can be found.

Docker objects carry ``io.kindlab.managed=true``; kind clusters cannot carry
Docker labels of ours, so each has a state file (see :mod:`kindlab.drivers.state`)
written *before* ``kind create cluster`` runs, and a name with kindlab's prefix
(:data:`kindlab.constants.CLUSTER_PREFIX`).
"""

MANAGED = "io.kindlab.managed"
#: kind's own label on node containers; its value is the cluster name.
KIND_CLUSTER = "io.x-k8s.kind.cluster"
