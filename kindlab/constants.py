"""What the whole package agrees on: proxy modes, the kind release, cluster names.

The bottom of kindlab's import graph: it imports nothing, so that pure modules
(:mod:`kindlab.lab.expectations`, the parsers) can use these names without pulling in
a driver.
"""

#: kube-proxy's modes that kindlab runs, in the order they are listed to users.
PROXY_MODES = ("iptables", "ipvs", "nftables")

#: The kind release kindlab pins: built with Go when none is on PATH, and the
#: release whose conventions the offline node image follows.
KIND_VERSION = "v0.30.0"

#: Cluster layouts: one node (control plane only), or one control plane and two workers
#: (``clusters/MODE-multinode.yaml``), for the claims that depend on where endpoints are.
LAYOUTS = ("single", "multinode")

#: Prefix of every kind cluster kindlab names (``kindlab-iptables``, ``kindlab-ipvs-1a2b3c``).
CLUSTER_PREFIX = "kindlab-"
