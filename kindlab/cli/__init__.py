"""The ``kindlab`` command: clusters for learners, the walker, the node image.

    kindlab up --mode iptables        a kept cluster with the sample Services
    kindlab explain 10.96.0.10        evidence and walk for one Service
    kindlab walk DUMP --proto icmp --dst 10.96.0.10
    kindlab node-image build          the offline kind node image
    kindlab status | down             what kindlab created; remove all of it

Errors that a user can fix are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kindlab import __version__
from kindlab.constants import KIND_VERSION, LAYOUTS
from kindlab.drivers.cleanup import remove_labelled_containers
from kindlab.drivers.clusters import (
    ClusterManager,
    ModeUnsupported,
    config_for_version,
    config_path,
    preflight,
)
from kindlab.drivers.kind import Kind, find_kind
from kindlab.drivers.state import read_states
from kindlab.errors import CommandError, KindlabError, PreconditionError
from kindlab.lab.samples import deploy_samples, wait_proxy_synced
from kindlab.versions import Choice, choose

Handler = Callable[[argparse.Namespace], int]


def _say(message: str) -> None:
    print(f"kindlab: {message}", file=sys.stderr, flush=True)


def _manager(
    args: argparse.Namespace, *, keep: bool = True, image: str = "", version: Choice | None = None
) -> ClusterManager:
    """A manager of kept clusters; with ``version``, that version's kind release and its
    minor in the clusters' names (clusters of two versions coexist)."""
    release = version.kind.version if version is not None else KIND_VERSION
    kind = Kind(
        find_kind(getattr(args, "kind_bin", None), progress=_say, version=release), progress=_say
    )
    layout = getattr(args, "cluster_layout", "single")
    return ClusterManager(
        kind,
        image=image,
        keep=keep,
        progress=_say,
        layout=layout,
        version=version.minor if version is not None else None,
    )


def _node_image(args: argparse.Namespace, *, kind_images: bool = True) -> str:
    """``--node-image``, else what ``--node-image-source`` finds (kindlab.nodeimage.source)."""
    from kindlab.nodeimage import source

    wanted = source.Wanted(
        image=args.node_image,
        kubernetes_version=args.kubernetes_version,
        source=args.node_image_source,
        registry=args.node_image_registry,
        kind_images=kind_images,  # the ipvs guest: kind's image has no ipvsadm
    )
    # cmd_up's preflight has already checked that Docker has a --node-image.
    return source.resolve(wanted, progress=_say, require=lambda _: None).ref


def _version(args: argparse.Namespace) -> Choice | None:
    """``--kubernetes-version`` as kindlab builds it (None: ``--node-image`` or neither)."""
    if args.node_image or not args.kubernetes_version:
        return None
    return choose(args.kubernetes_version)


def cmd_up(args: argparse.Namespace) -> int:
    # An unknown mode, a bad config, a version without the mode, a node image Docker
    # lacks or a kernel without the mode's support fails here, before anything is built
    # or created.
    version = _version(args)
    if args.config:
        config = Path(args.config)
    elif version is not None:  # the mode's gate, if the version needs one
        config = config_for_version(args.mode, version, layout=args.cluster_layout)
    else:
        config = config_path(args.mode, args.cluster_layout)
    try:
        preflight(args.mode, config, image=args.node_image)
    except ModeUnsupported as exc:
        if args.mode != "ipvs" or args.ipvs_vm == "never":
            raise
        if args.cluster_layout != "single":
            raise PreconditionError(
                f"{exc}; and the qemu guest runs the single-node layout only"
            ) from None
        from kindlab.cli import vm as vm_cli

        _say(f"{exc}: the cluster goes into a qemu guest")
        image = _node_image(args, kind_images=False)
        return vm_cli.up_in_vm(image, args.kind_bin, args.vm_accel, args.vm_memory)
    manager = _manager(args, keep=True, image=_node_image(args), version=version)
    cluster = manager.ensure(args.mode, config)
    samples = deploy_samples(cluster.kube, progress=_say)
    wait_proxy_synced([cluster.node(n) for n in cluster.node_names], since=time.time())
    print(f"cluster     {cluster.name} ({args.mode} mode)")
    print(f"node        {cluster.control_plane}")
    print(f"kubeconfig  {cluster.kubeconfig}")
    for svc in (samples.web, samples.empty):
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports)
        eps = ", ".join(svc.ready_ips) or "no endpoints"
        print(f"service     {svc.namespace}/{svc.name}  {svc.cluster_ip}  {ports}  -> {eps}")
    print()
    print("explore:")
    print(f"  docker exec {cluster.control_plane} ping -c 2 -W 1 {samples.web.cluster_ip}")
    rules = {
        "iptables": ["iptables-save", "-t", "nat"],
        "nftables": ["nft", "list", "table", "ip", "kube-proxy"],
        "ipvs": ["ipvsadm", "-Ln"],
    }[args.mode]
    print(f"  docker exec {cluster.control_plane} {' '.join(rules)}")
    print(f"  kindlab explain {samples.web.cluster_ip}")
    print(f"  kubectl --kubeconfig {cluster.kubeconfig} get svc,endpointslices -n kindlab-lab")
    print("  kindlab down            # removes everything kindlab created")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from kindlab.drivers.vm import kept

    kept.stop(progress=_say)
    manager = _manager(args)
    removed = manager.down()
    containers = remove_labelled_containers()
    print(f"removed {len(removed)} cluster(s) {removed} and {len(containers)} container(s)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    states = read_states()
    if not states:
        print("no kindlab clusters")
    for name, state in states.items():
        if state.problem:
            print(f"{name}  unreadable state: {state.problem} (`kindlab down` removes it)")
            continue
        kept = "kept" if state.keep else f"run {state.run_id} pid {state.pid}"
        done = "" if state.complete else " (incomplete)"
        print(f"{name}  {state.mode}  {state.image}  {kept}{done}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from kindlab.lab.explain import explain

    log = explain(args.cluster_ip)
    if args.evidence:
        print("\n# evidence\n" + log.render())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kindlab",
        description="A reproducible lab over kind clusters: what kube-proxy does to Services.",
    )
    parser.add_argument("--version", action="version", version=f"kindlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cluster_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--kind-bin", help="kind binary (default: PATH, else built with Go)")

    up = sub.add_parser("up", help="create (or reuse) a kept cluster with the sample Services")
    up.add_argument("--mode", required=True, help="kube-proxy mode: iptables, nftables or ipvs")
    up.add_argument(
        "--config", help="kind cluster config (default: clusters/MODE.yaml, by --cluster-layout)"
    )
    up.add_argument(
        "--cluster-layout",
        choices=LAYOUTS,
        default="single",
        help="single (one node) or multinode (a control plane and two workers, "
        "clusters/MODE-multinode.yaml)",
    )
    up.add_argument("--node-image", help="kind node image (default: see --node-image-source)")
    up.add_argument(
        "--kubernetes-version",
        help="Kubernetes version of the node image (1.30 or v1.30.14); the cluster's name "
        "carries its minor, and its config the gate the mode needs in it",
    )
    from kindlab.nodeimage import source

    up.add_argument(
        "--node-image-source",
        choices=source.SOURCES,
        default=source.default_source(),
        help=source.SOURCE_HELP,
    )
    up.add_argument(
        "--node-image-registry",
        default=source.default_registry(),
        metavar="REGISTRY",
        help=source.REGISTRY_HELP,
    )
    up.add_argument(
        "--ipvs-vm",
        choices=("auto", "never"),
        default="auto",
        help="ipvs on a kernel without IP_VS: auto (a kept qemu guest) or never (refuse)",
    )
    up.add_argument("--vm-accel", choices=("auto", "kvm", "tcg"), default="auto")
    up.add_argument("--vm-memory", default="8G", help="the guest's memory (default 8G)")
    cluster_opts(up)
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="delete every cluster and container kindlab created")
    cluster_opts(down)
    down.set_defaults(func=cmd_down)

    explain = sub.add_parser("explain", help="evidence and walk for one Service of a cluster")
    explain.add_argument("cluster_ip", help="a ClusterIP of a cluster made by `kindlab up`")
    explain.add_argument("--evidence", action="store_true", help="also print every command run")
    explain.set_defaults(func=cmd_explain)

    status = sub.add_parser("status", help="list the clusters kindlab knows of")
    status.set_defaults(func=cmd_status)

    from kindlab.cli import walk as walk_cli

    walk_cli.register_cli(sub)
    from kindlab import nodeimage
    from kindlab.cli import vm as vm_cli

    nodeimage.register_cli(sub)
    vm_cli.register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except CommandError as exc:
        print(f"kindlab: error: {exc}", file=sys.stderr)
        return 1
    except KindlabError as exc:
        print(f"kindlab: error: {exc}", file=sys.stderr)
        return 2
