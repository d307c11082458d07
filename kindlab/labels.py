"""Names and labels of everything kindlab creates, so that leftovers can be found.

Docker objects carry ``io.kindlab.managed=true``; kind clusters cannot carry
Docker labels of ours, so each has a state file (see :mod:`kindlab.drivers.state`)
written *before* ``kind create cluster`` runs, and a name with kindlab's prefix
(:data:`kindlab.constants.CLUSTER_PREFIX`).

In a cluster kindlab did not create (``--kubeconfig``), what it creates there (its
namespaces and debug pods) carries :data:`MANAGED` and :data:`RUN`; the debug
namespace also names its owner (:data:`OWNER`, an annotation: ``HOST PID``), so that
a crashed run's namespaces are found and removed (:mod:`kindlab.drivers.debugpod`).
"""

MANAGED = "io.kindlab.managed"
#: kind's own label on node containers; its value is the cluster name.
KIND_CLUSTER = "io.x-k8s.kind.cluster"
#: The run (its id) that created a Kubernetes object.
RUN = "io.kindlab.run"
#: What a Kubernetes object is for kindlab: ``debug`` (the pods that reach the nodes).
ROLE = "io.kindlab.role"
#: Annotation: the process that owns a run's debug namespace, ``HOST PID``.
OWNER = "io.kindlab.owner"
