"""``kindlab node-image ...``: argparse wiring for kindlab/cli.py."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .versions import DEFAULT_KUBERNETES_VERSION


def _progress(line: str) -> None:
    print(f"node-image: {line}", file=sys.stderr, flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    from .build import build

    tag = build(args.kubernetes_version, tag=args.tag, progress=_progress, no_cache=args.no_cache)
    print(tag)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .build import list_images

    for ref, size, created in list_images():
        print(f"{ref}\t{size}\t{created}")
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from .build import prune

    for ref in prune(everything=args.all, progress=_progress):
        print(f"removed {ref}")
    return 0


def _cmd_kind(args: argparse.Namespace) -> int:
    from .kindbin import kind_binary

    print(kind_binary(progress=_progress))
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``node-image {build,list,prune,kind}`` to an argparse subparsers object.

    Each leaf parser sets ``func`` (``args.func(args) -> int``).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "node-image", help="build kind node images without a registry"
    )
    sub = parser.add_subparsers(dest="node_image_command", required=True)
    b = sub.add_parser("build", help="build (or reuse) a node image; prints its tag")
    b.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    b.add_argument("--tag", default=None, help="also tag the image with this name")
    b.add_argument("--no-cache", action="store_true", help="rebuild every stage")
    b.set_defaults(func=_cmd_build)
    ls = sub.add_parser("list", help="images kindlab's builder made")
    ls.set_defaults(func=_cmd_list)
    pr = sub.add_parser("prune", help="remove older images (all of kindlab's with --all)")
    pr.add_argument("--all", action="store_true")
    pr.set_defaults(func=_cmd_prune)
    k = sub.add_parser("kind", help="build the pinned kind binary; prints its path")
    k.set_defaults(func=_cmd_kind)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: ``python -m kindlab.nodeimage build ...``."""
    parser = argparse.ArgumentParser(prog="kindlab")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["node-image", *(argv if argv is not None else sys.argv[1:])])
    result: int = args.func(args)
    return result
