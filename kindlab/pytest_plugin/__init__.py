"""kindlab's pytest plugin, one module per concern.

Loaded through :mod:`kindlab.plugin` (the ``pytest11`` entry point, and ``-p
kindlab.plugin`` in the qemu guest), which names this package; each module below
that has hooks or fixtures is registered as a plugin of its own. They import one
another only downwards in this list, so there is no cycle:

- :mod:`.output`: progress lines shown live; preconditions failing as one line
- :mod:`.xdist`: the run id and lock directory the controller and workers share
- :mod:`.markers`: a marker per proxy mode, ``live``, ``claim(id)``; ``each_mode``
- :mod:`.options`: the ``kindlab`` option group, the run's Kubernetes versions, the
  header line
- :mod:`.evidence`: a test's node commands, attached to its report when it fails
- :mod:`.report`: the ``finding`` fixture; a row per claim check; the report file
- :mod:`.image`: the kind binary and the node image of each Kubernetes version
- :mod:`.vm`: ipvs checks in a qemu guest, whose reports become the host's own
- :mod:`.existing`: ``--kubeconfig``, an existing cluster reached through debug pods
- :mod:`.kubeversions`: the run's Kubernetes versions as an axis of the tests; a
  cluster manager per version
- :mod:`.clusters`: a cluster per (mode, version), and the ``cluster``, ``node``,
  ``samples`` fixtures
"""

pytest_plugins = [
    "kindlab.pytest_plugin.xdist",
    "kindlab.pytest_plugin.markers",
    "kindlab.pytest_plugin.options",
    "kindlab.pytest_plugin.evidence",
    "kindlab.pytest_plugin.report",
    "kindlab.pytest_plugin.image",
    "kindlab.pytest_plugin.vm",
    "kindlab.pytest_plugin.existing",
    "kindlab.pytest_plugin.kubeversions",
    "kindlab.pytest_plugin.clusters",
]
