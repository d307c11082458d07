"""Assemble a kind node image without any registry. See README.md in this package.

Stages (each content-addressed; a stage whose key exists is skipped):

1. ``rootfs``: debootstrap of Debian trixie with the node's packages, imported as
   ``kindlab/rootfs:<key>``.
2. ``node-base``: kind's node conventions from the kind module on top
   (``kindlab/node-base:<key>``).
3. Go builds (one directory per build under ``<cache>/go/``) and ``pause`` (gcc).
4. Component images (``kindlab/component-<name>:<key>``).
5. The node: a container of node-base gets the binaries, its containerd imports
   the component images under the names kubeadm and kind ask for, then
   ``docker commit`` makes ``kindlab/node:<version>-<key>``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kindlab.drivers.proc import run
from kindlab.errors import CommandError, KindlabError, PreconditionError
from kindlab.paths import cache_dir

from . import gobuild, goproxy, images, kindsrc
from .cache import cache_key, hash_files, hash_tree, short
from .versions import (
    DEBIAN_MIRROR,
    DEBIAN_SUITE,
    DEFAULT_KUBERNETES_VERSION,
    KIND_VERSION,
    KINDNET_IMAGE_REPO,
    LOCAL_PATH_PROVISIONER_VERSION,
    NODE_PACKAGES,
    KubeVersion,
    agnhost_image,
    check_kubeadm_list,
    kubeadm_images,
    pins_for,
)

Progress = Callable[[str], None]
MANAGED = "io.kindlab.managed=true"
#: The build container's volume where containerd unpacks the images. Committed
#: into the image under /var/lib/containerd, the unpacked layers let a node's
#: first pods start without unpacking (minutes per image under emulation). A kind
#: node copies the image's /var into its /var volume when it is created; that copy
#: keeps files and xattrs but not overlay whiteouts, which the build refuses.
UNPACK_ROOT = "/tmp/kindlab-unpack"  # under the tmpfs a kind node mounts on /tmp
NODE_REPO = "kindlab/node"
GO_CANDIDATES = ("/usr/local/go/bin/go", "go")


def _quiet(_: str) -> None:
    pass


@dataclass
class _Ctx:
    version: KubeVersion
    cache: Path
    progress: Progress
    go: str
    no_cache: bool
    #: Only work out the node's tag: a stage that is not cached raises
    #: :class:`RecipeUnknown` instead of being built, and nothing is downloaded.
    probe: bool = False

    def missing(self, stage: str) -> None:
        """Called where ``stage`` is not cached and would be built."""
        if self.probe:
            raise RecipeUnknown(f"its {stage} stage is not cached")


class RecipeUnknown(KindlabError):
    """The node image's tag cannot be told without building; says which stage is missing."""


def find_go() -> str:
    for cand in GO_CANDIDATES:
        path = shutil.which(cand)
        if path:
            return path
    raise PreconditionError("Go (>= 1.24) is needed to build the node image: install it")


def go_env(ctx: _Ctx) -> dict[str, str]:
    return {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}


def module_dir(go: str, module: str, version: str, *, offline: bool = False) -> Path:
    """Download ``module@version`` through the module proxy; return its directory.

    ``offline``: only from the module cache (``GOPROXY=off``).
    """
    env = {"GO111MODULE": "on", **({"GOPROXY": "off"} if offline else {})}
    out = run([go, "mod", "download", "-json", f"{module}@{version}"], env=env)
    info = json.loads(out)
    if info.get("Error"):
        raise CommandError([go, "mod", "download", f"{module}@{version}"], 1, out, "")
    return Path(info["Dir"])


def image_exists(ref: str) -> bool:
    try:
        run(["docker", "image", "inspect", "--format", "{{.Id}}", ref])
    except CommandError:
        return False
    return True


def _docker_build(ctx: _Ctx, context: Path, tag: str, what: str) -> None:
    def line(text: str) -> None:
        if text.startswith("Step "):
            ctx.progress(f"[{what}] {text}")

    run(
        ["docker", "build", "--network", "none", "-t", tag, str(context)],
        env={"DOCKER_BUILDKIT": "0"},
        on_line=line,
    )


# --------------------------------------------------------------------------- stages


def stage_rootfs(ctx: _Ctx) -> str:
    key = cache_key(
        "rootfs",
        {
            "suite": DEBIAN_SUITE,
            "mirror": DEBIAN_MIRROR,
            "packages": list(NODE_PACKAGES),
            "cleanup": list(images.ROOTFS_CLEANUP),
        },
    )
    tag = f"kindlab/rootfs:{short(key)}"
    if not ctx.no_cache and image_exists(tag):
        ctx.progress(f"rootfs: cached {tag}")
        return tag
    ctx.missing("rootfs")
    if not shutil.which("debootstrap"):
        raise PreconditionError("debootstrap is needed to build the root file system")
    ctx.progress(f"rootfs: debootstrap {DEBIAN_SUITE} with {len(NODE_PACKAGES)} packages")
    work = Path(tempfile.mkdtemp(prefix="kindlab-rootfs-", dir=ctx.cache / "tmp"))
    try:
        root = work / "root"
        count = 0

        def line(text: str) -> None:
            nonlocal count
            count += 1
            wanted = text.startswith("I: ") and ("Installing" in text or "Configuring" in text)
            if wanted and (count % 10 == 0 or "core" in text):
                ctx.progress(f"rootfs: {text[3:]}")

        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(NODE_PACKAGES),
                DEBIAN_SUITE,
                str(root),
                DEBIAN_MIRROR,
            ],
            on_line=line,
        )
        for rel in images.ROOTFS_CLEANUP:
            target = root / rel
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        ctx.progress(f"rootfs: docker import as {tag}")
        tar = work / "rootfs.tar"
        run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tar), "."])
        run(
            [
                "docker",
                "import",
                "--change",
                f'LABEL io.kindlab.managed="true" io.kindlab.cache-key="{key}"',
                "--change",
                'CMD ["/bin/bash"]',
                str(tar),
                tag,
            ]
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def stage_node_base(ctx: _Ctx, rootfs: str, kind_dir: Path) -> str:
    files_root = kind_dir / "images" / "base" / "files"
    key = cache_key(
        "node-base",
        {
            "rootfs": rootfs,
            "kind": KIND_VERSION,
            "files": hash_files(files_root, kindsrc.BASE_FILES),
            "script": images.node_base_script(),
            "dockerfile": images.node_base_dockerfile(rootfs),
        },
    )
    tag = f"kindlab/node-base:{short(key)}"
    if not ctx.no_cache and image_exists(tag):
        ctx.progress(f"node-base: cached {tag}")
        return tag
    ctx.missing("node-base")
    ctx.progress(f"node-base: kind {KIND_VERSION} conventions on {rootfs}")
    with tempfile.TemporaryDirectory(dir=ctx.cache / "tmp") as tmp:
        context = Path(tmp)
        for rel, mode in kindsrc.BASE_FILES.items():
            dst = context / "files" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files_root / rel, dst)
            dst.chmod(mode)
        for d in (context / "files").rglob("*"):
            if d.is_dir():
                d.chmod(0o755)
        (context / "setup.sh").write_text(images.node_base_script())
        (context / "Dockerfile").write_text(
            images.with_labels(images.node_base_dockerfile(rootfs), key)
        )
        _docker_build(ctx, context, tag, "node-base")
    return tag


def stage_go(
    ctx: _Ctx,
    build: gobuild.GoBuild,
    extra_env: Callable[[], dict[str, str]] | None = None,
) -> Path:
    """Run one Go build; return the directory holding its binaries.

    ``extra_env`` is called only when the build runs (not when it is cached): what it
    returns goes into the Go command's environment, and not into the cache key, so it
    must not change what is built.
    """
    go_version = run([ctx.go, "env", "GOVERSION"]).strip()
    source_hash = hash_tree(build.source) if build.source else None
    key = cache_key(
        "go",
        {
            "name": build.name,
            "go": go_version,
            "go_mod": build.go_mod,
            "source": source_hash,
            "packages": list(build.packages),
            "ldflags": build.ldflags,
            "rename": [list(r) for r in build.rename],
        },
    )
    out = ctx.cache / "go" / f"{build.name}-{short(key, 16)}"
    done = out / ".complete"
    if not ctx.no_cache and done.exists():
        ctx.progress(f"go {build.name}: cached {out}")
        return out
    ctx.missing(f"go {build.name}")
    shutil.rmtree(out, ignore_errors=True)
    env = go_env(ctx) | (extra_env() if extra_env else {})
    bindir = out / "bin"
    bindir.mkdir(parents=True)
    if build.source is not None:
        workdir = out / "src"
        shutil.copytree(build.source, workdir)
    else:
        assert build.go_mod is not None
        workdir = out / "module"
        workdir.mkdir()
        (workdir / "go.mod").write_text(build.go_mod)
        (workdir / "tools.go").write_text(gobuild.tools_go(build.packages))
        ctx.progress(f"go {build.name}: resolving modules (go mod tidy)")
        # -e: tidy loads the packages of every build tag, and the proxy may refuse a
        # module that only a tag this build never sets imports (CoreDNS v1.11.1, 1.29's
        # pin: DataDog/appsec-internal-go/netip imports inet.af/netaddr only under
        # `!go1.19`, whose zip the proxy refused, 403, 2026-11-28). `go build` below
        # still fails, naming the module, if the build itself needs a missing one.
        run([ctx.go, "mod", "tidy", "-e"], cwd=workdir, env=env)
    ctx.progress(f"go {build.name}: building {', '.join(build.outputs())}")
    started = time.monotonic()
    count = 0

    def line(text: str) -> None:
        nonlocal count
        count += 1
        if count % 200 == 0:
            mins = (time.monotonic() - started) / 60
            ctx.progress(f"go {build.name}: {count} packages compiled ({mins:.1f} min)")

    run(
        [
            ctx.go,
            "build",
            "-v",
            "-trimpath",
            "-ldflags",
            build.ldflags,
            "-o",
            f"{bindir}/",
            *build.packages,
        ],
        cwd=workdir,
        env=env,
        on_line=line,
    )
    for built, wanted in build.rename:
        if built != wanted:
            (bindir / built).rename(bindir / wanted)
    missing = [n for n in build.outputs() if not (bindir / n).exists()]
    if missing:
        raise PreconditionError(f"go build of {build.name} did not produce {missing}")
    mins = (time.monotonic() - started) / 60
    ctx.progress(f"go {build.name}: done in {mins:.1f} min")
    done.write_text(key + "\n")
    return out


def sumdb_exemption(ctx: _Ctx, kubernetes_go_mod: str) -> dict[str, str]:
    """``GONOSUMDB`` naming the staging modules the checksum database lacks, if any.

    The Go command verifies each module it downloads against the checksum database;
    for some releases that database (asked through the proxy) has no line for
    staging modules the proxy serves (13 of v1.25.15's, 2026-11-28), and ``go mod
    tidy`` stops. Nothing else pins them: k8s.io/kubernetes's own go.sum has no line
    for any staging module (its go.mod replaces them with ./staging/ paths; checked in
    v1.25.15's), and its zip leaves out ./staging/ (nested modules). So those modules,
    and only those, are taken as the proxy serves them; every other module is still
    verified, and the wrapper's go.sum keeps the hashes they were built from. Asked of
    the database when the Go build runs (:func:`goproxy.unverified`), not kept as data,
    so that a patch the probe never chose is handled too.
    """
    sumdb = goproxy.sumdb_name(run([ctx.go, "env", "GOSUMDB"]).strip())
    if sumdb is None:
        return {}  # GOSUMDB=off: nothing is verified, nothing to exempt
    staging = [m for m in gobuild.staging_modules(kubernetes_go_mod) if m not in goproxy.NOT_LOADED]
    base = goproxy.proxy_url(run([ctx.go, "env", "GOPROXY"]).strip())
    missing = goproxy.unverified(goproxy.http_fetch(base), sumdb, staging, ctx.version.staging)
    if not missing:
        return {}
    ctx.progress(
        f"go kubernetes: the checksum database {sumdb} has no line for {len(missing)} staging "
        f"modules at {ctx.version.staging} ({', '.join(missing)}): exempted with GONOSUMDB, "
        "taken as the proxy serves them"
    )
    current = run([ctx.go, "env", "GONOSUMDB"]).strip()
    return {"GONOSUMDB": goproxy.gonosumdb(current, missing)}


def stage_pause(ctx: _Ctx, kubernetes_dir: Path) -> Path:
    src = kubernetes_dir / "build" / "pause" / "linux" / "pause.c"
    gcc = shutil.which("gcc")
    if not gcc:
        raise PreconditionError("gcc (with static libc, Debian's libc6-dev) is needed for pause")
    gcc_version = run([gcc, "-dumpfullversion"]).strip()
    key = cache_key("pause", {"source": src.read_text(), "gcc": gcc_version})
    out = ctx.cache / "go" / f"pause-{short(key, 16)}"
    if not ctx.no_cache and (out / ".complete").exists():
        return out
    ctx.missing("pause")
    shutil.rmtree(out, ignore_errors=True)
    (out / "bin").mkdir(parents=True)
    ctx.progress("pause: gcc -static")
    run(
        [
            gcc,
            "-Os",
            "-Wall",
            "-Werror",
            "-static",
            "-DVERSION=kindlab",
            "-o",
            str(out / "bin" / "pause"),
            str(src),
        ]
    )
    (out / ".complete").write_text(key + "\n")
    return out


def stage_static_base(ctx: _Ctx, rootfs: str) -> str:
    key = cache_key(
        "static-base",
        {
            "rootfs": rootfs,
            "passwd": images.PASSWD,
            "group": images.GROUP,
            "nsswitch": images.NSSWITCH,
        },
    )
    tag = f"kindlab/static-base:{short(key)}"
    if not ctx.no_cache and image_exists(tag):
        return tag
    ctx.missing("static-base")
    ctx.progress("static-base: passwd, CA bundle, /tmp")
    with tempfile.TemporaryDirectory(dir=ctx.cache / "tmp") as tmp:
        context = Path(tmp)
        root = context / "rootfs"
        (root / "etc" / "ssl" / "certs").mkdir(parents=True)
        (root / "tmp").mkdir()
        (root / "tmp").chmod(0o1777)
        (root / "etc" / "passwd").write_text(images.PASSWD)
        (root / "etc" / "group").write_text(images.GROUP)
        (root / "etc" / "nsswitch.conf").write_text(images.NSSWITCH)
        bundle = run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--label",
                MANAGED,
                rootfs,
                "cat",
                "/etc/ssl/certs/ca-certificates.crt",
            ]
        )
        (root / "etc" / "ssl" / "certs" / "ca-certificates.crt").write_text(bundle)
        (context / "Dockerfile").write_text(
            images.with_labels(images.static_base_dockerfile(), key)
        )
        _docker_build(ctx, context, tag, "static-base")
    return tag


def stage_net_base(ctx: _Ctx, rootfs: str) -> str:
    """The node root's network tools and the libraries they load, on nothing else."""
    key = cache_key(
        "net-base",
        {"rootfs": rootfs, "script": images.net_base_script(), "checks": images.NET_BASE_CHECKS},
    )
    tag = f"kindlab/net-base:{short(key)}"
    if not ctx.no_cache and image_exists(tag):
        return tag
    ctx.missing("net-base")
    ctx.progress("net-base: iptables, nft, ipset, conntrack, ip and their libraries")
    with tempfile.TemporaryDirectory(dir=ctx.cache / "tmp") as tmp:
        context = Path(tmp)
        out = context / "rootfs"
        out.mkdir()
        run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--label",
                MANAGED,
                "-v",
                f"{out}:/out",
                rootfs,
                "sh",
                "-c",
                images.net_base_script(),
            ]
        )
        (context / "Dockerfile").write_text(
            images.with_labels(images.static_base_dockerfile(), key)
        )
        _docker_build(ctx, context, tag, "net-base")
    for argv in images.NET_BASE_CHECKS:
        try:
            run(["docker", "run", "--rm", "--network", "none", "--label", MANAGED, tag, *argv])
        except CommandError as exc:
            run(["docker", "rmi", tag])
            raise PreconditionError(
                f"net-base: `{' '.join(argv)}` does not run in the slim image: {exc}"
            ) from exc
    return tag


def stage_component(
    ctx: _Ctx, spec: images.ComponentImage, binaries: dict[str, Path], base_ids: list[str]
) -> str:
    bin_hashes = {b: hash_files(binaries[b].parent, [binaries[b].name]) for b in spec.binaries}
    key = cache_key(
        "component",
        {
            "name": spec.name,
            "dockerfile": spec.dockerfile,
            "binaries": bin_hashes,
            "extra": [list(map(str, e)) for e in spec.extra_files],
            "bases": base_ids,
        },
    )
    tag = f"kindlab/component-{spec.name}:{short(key)}"
    if not ctx.no_cache and image_exists(tag):
        return tag
    ctx.missing(f"{spec.name} image")
    with tempfile.TemporaryDirectory(dir=ctx.cache / "tmp") as tmp:
        context = Path(tmp)
        for b in spec.binaries:
            shutil.copy2(binaries[b], context / b)
        for name, text, mode in spec.extra_files:
            (context / name).write_text(text)
            (context / name).chmod(mode)
        (context / "Dockerfile").write_text(images.with_labels(spec.dockerfile, key))
        _docker_build(ctx, context, tag, spec.name)
    return tag


# --------------------------------------------------------------------------- assemble


@dataclass(frozen=True)
class _Plan:
    node_base: str
    binaries: dict[str, Path]
    components: dict[str, str]  # kindlab short name -> local image tag
    targets: dict[str, list[str]]  # kindlab short name -> names in the node's containerd
    files: dict[str, str]  # path in node -> content


def _node_key(plan: _Plan) -> str:
    return cache_key(
        "node",
        {
            "node_base": plan.node_base,
            "binaries": {n: hash_files(p.parent, [p.name]) for n, p in plan.binaries.items()},
            "components": plan.components,
            "targets": plan.targets,
            "files": plan.files,
            "unpacked": "overlayfs, layer blobs discarded",
        },
    )


def _docker_exec(container: str, *argv: str, input_bytes: bytes | None = None) -> str:
    args = ["docker", "exec"] + (["-i"] if input_bytes is not None else [])
    return run([*args, container, *argv], input_bytes=input_bytes)


def _assemble(ctx: _Ctx, plan: _Plan, key: str, tag: str) -> None:
    name = f"kindlab-build-{short(key)}-{uuid.uuid4().hex[:6]}"
    ctx.progress(f"node: assembling in container {name}")
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "--label",
            MANAGED,
            "--network",
            "none",
            "--entrypoint",
            "sleep",
            # unpacking mounts overlays, on a volume: overlayfs cannot sit on the
            # container's own overlay root
            "--privileged",
            "-v",
            UNPACK_ROOT,
            plan.node_base,
            "infinity",
        ]
    )
    try:
        for binary, path in sorted(plan.binaries.items()):
            dest = "/usr/local/bin/" if binary == "crictl" else "/usr/bin/"
            run(["docker", "cp", str(path), f"{name}:{dest}{binary}"])
        _docker_exec(
            name,
            "chown",
            "root:root",
            *[("/usr/local/bin/" if b == "crictl" else "/usr/bin/") + b for b in plan.binaries],
        )
        for node_path, content in sorted(plan.files.items()):
            _docker_exec(name, "mkdir", "-p", os.path.dirname(node_path))
            _docker_exec(
                name, "sh", "-c", 'cat > "$1"', "sh", node_path, input_bytes=content.encode()
            )
        # containerd in the build container, as kind's node-image builder does, but
        # with its root on the volume so that it can unpack (see UNPACK_ROOT)
        run(["docker", "exec", "-d", name, "containerd", "--root", f"{UNPACK_ROOT}/root"])
        for _ in range(60):
            try:
                _docker_exec(name, "ctr", "version")
                break
            except CommandError:
                time.sleep(0.5)
        else:
            _docker_exec(name, "ctr", "version")
        with tempfile.TemporaryDirectory(dir=ctx.cache / "tmp") as tmp:
            archive = Path(tmp) / "images.tar"
            refs = sorted(set(plan.components.values()))
            ctx.progress(f"node: docker save of {len(refs)} images")
            run(["docker", "save", "-o", str(archive), *refs])
            size_mb = archive.stat().st_size / 1e6
            ctx.progress(f"node: ctr import ({size_mb:.0f} MB) into namespace k8s.io")
            run(
                [
                    "docker",
                    "exec",
                    "-i",
                    name,
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "import",
                    # ctr 1.7 takes --label only on its transfer-API path, which
                    # cannot unpack into this root: import locally, label below
                    "--local",
                    "--snapshotter=overlayfs",
                    # the unpacked layers are all a node uses; the compressed copies
                    # would only double what a node copies into its /var at creation
                    "--discard-unpacked-layers",
                    "-",
                ],
                stdin_path=archive,
            )
        for short_name, local in sorted(plan.components.items()):
            source = _docker_hub_name(local)
            for target in plan.targets.get(short_name, []):
                _docker_exec(
                    name, "ctr", "--namespace=k8s.io", "images", "tag", "--force", source, target
                )
                # as kind does: the kubelet's image GC never removes these
                _docker_exec(
                    name,
                    "ctr",
                    "--namespace=k8s.io",
                    "images",
                    "label",
                    target,
                    "io.cri-containerd.pinned=pinned",
                )
        for local in sorted(set(plan.components.values())):
            _docker_exec(name, "ctr", "--namespace=k8s.io", "images", "rm", _docker_hub_name(local))
        # ctr import also records each image under its bare digest; the names suffice
        digests = [
            ref
            for ref in _docker_exec(
                name, "ctr", "--namespace=k8s.io", "images", "list", "-q"
            ).split()
            if ref.startswith("sha256:")
        ]
        if digests:
            _docker_exec(name, "ctr", "--namespace=k8s.io", "images", "rm", *digests)
        listed = _docker_exec(name, "ctr", "--namespace=k8s.io", "images", "list", "-q")
        ctx.progress("node: images in containerd: " + ", ".join(listed.split()))
        snapshots = _docker_exec(
            name, "ctr", "--namespace=k8s.io", "snapshots", "--snapshotter=overlayfs", "ls"
        )
        committed = [ln for ln in snapshots.splitlines()[1:] if ln.split()[-1:] == ["Committed"]]
        ctx.progress(f"node: {len(committed)} layer snapshots unpacked (overlayfs)")
        _docker_exec(name, "pkill", "containerd")
        for _ in range(60):
            try:
                _docker_exec(name, "pgrep", "-x", "containerd")
            except CommandError:
                break
            time.sleep(0.5)
        special = _docker_exec(name, "find", f"{UNPACK_ROOT}/root", "-type", "c")
        if special.strip():
            raise PreconditionError(
                "node: an image layer has whiteouts, which the node's /var volume copy "
                f"would lose: {special.split()[:5]}"
            )
        _docker_exec(name, "cp", "-a", f"{UNPACK_ROOT}/root/.", "/var/lib/containerd/")
        ctx.progress(f"node: docker commit {tag}")
        run(
            [
                "docker",
                "commit",
                "--change",
                'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                "--change",
                "CMD []",
                "--change",
                f'LABEL io.kindlab.managed="true" io.kindlab.cache-key="{key}" '
                f'io.kindlab.kubernetes-version="{ctx.version}" '
                f'io.kindlab.kind-version="{KIND_VERSION}"',
                name,
                tag,
            ]
        )
    finally:
        try:
            run(["docker", "rm", "-f", "-v", name])
        except CommandError as exc:  # never hide the build's own failure
            ctx.progress(f"node: could not remove build container {name}: {exc}")


def _docker_hub_name(ref: str) -> str:
    """How containerd names an image that ``docker save`` wrote as ``ref``."""
    first = ref.split("/")[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


# --------------------------------------------------------------------------- API


def require_docker(what: str = "to build the node image") -> None:
    """Raise :class:`PreconditionError` (one line) unless the Docker engine answers."""
    if not shutil.which("docker"):
        raise PreconditionError(f"docker (the client) is needed {what}")
    try:
        run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=30)
    except CommandError as exc:
        raise PreconditionError(
            "the Docker engine is not reachable (start it with ../shared/host/docker-up): "
            + (exc.stderr.strip() or exc.stdout.strip())
        ) from exc


def build(
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    *,
    tag: str | None = None,
    progress: Progress | None = None,
    no_cache: bool = False,
) -> str:
    """Build (or reuse) a kind node image for ``kubernetes_version``; return its tag.

    The tag is ``kindlab/node:<version>-<hash>`` unless ``tag`` is given (then the
    image gets both). Needs Docker, debootstrap, Go and gcc; reaches only Debian's
    mirror and the Go module proxy.
    """
    version = KubeVersion.parse(kubernetes_version)
    cache = cache_dir()
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    ctx = _Ctx(version, cache, progress or _quiet, find_go(), no_cache)
    require_docker()
    started = time.monotonic()
    plan, key, out_tag = _recipe(ctx)
    if no_cache or not image_exists(out_tag):
        _assemble(ctx, plan, key, out_tag)
    else:
        ctx.progress(f"node: cached {out_tag}")
    if tag and tag != out_tag:
        run(["docker", "tag", out_tag, tag])
    ctx.progress(f"done in {(time.monotonic() - started) / 60:.1f} min: {tag or out_tag}")
    return tag or out_tag


def recipe_tag(kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> str:
    """The tag :func:`build` would give the node image now, worked out without building.

    The tag's hash covers what the stages made (binaries, image IDs), so it can be told
    only when every stage is cached; nothing is built or downloaded (Go modules come
    from the module cache alone). Takes seconds. Raises :class:`RecipeUnknown` saying
    what is missing (a stage, Go, a module), or :class:`PreconditionError`.
    """
    version = KubeVersion.parse(kubernetes_version)
    cache = cache_dir()
    try:
        go = find_go()
    except PreconditionError as exc:
        raise RecipeUnknown(str(exc)) from None
    ctx = _Ctx(version, cache, _quiet, go, no_cache=False, probe=True)
    try:
        return _recipe(ctx)[2]
    except CommandError as exc:  # a module not in the module cache, most likely
        raise RecipeUnknown(f"`{exc.command_line}` failed") from None


def _recipe(ctx: _Ctx) -> tuple[_Plan, str, str]:
    """Every stage but the node's own, built or reused: the node's plan, key and tag."""
    version = ctx.version
    pins = pins_for(version)
    kind_dir = module_dir(ctx.go, "sigs.k8s.io/kind", KIND_VERSION, offline=ctx.probe)
    kube_dir = module_dir(ctx.go, "k8s.io/kubernetes", str(version), offline=ctx.probe)
    manifests = kindsrc.read_manifests(kind_dir)
    containerd_config = (kind_dir / "images/base/files/etc/containerd/config.toml").read_text()

    rootfs = stage_rootfs(ctx)
    node_base = stage_node_base(ctx, rootfs, kind_dir)

    bins: dict[str, Path] = {}
    kube_go_mod = (kube_dir / "go.mod").read_text()
    builds = [gobuild.kubernetes_build(version, kube_go_mod)]
    builds += gobuild.component_builds(pins, LOCAL_PATH_PROVISIONER_VERSION)
    builds.append(gobuild.kindnet_build())
    for b in builds:
        exempt = (lambda: sumdb_exemption(ctx, kube_go_mod)) if b.name == "kubernetes" else None
        out = stage_go(ctx, b, exempt)
        for name in b.outputs():
            bins[name] = out / "bin" / name
    bins["pause"] = stage_pause(ctx, kube_dir) / "bin" / "pause"

    # kubeadm's own list is the authority on what the control plane pulls
    listed = run(
        [str(bins["kubeadm"]), "config", "images", "list", "--kubernetes-version", str(version)]
    ).splitlines()
    required = kubeadm_images(version)
    problems = check_kubeadm_list(required, listed)
    if problems:
        raise PreconditionError("version table disagrees with kubeadm: " + "; ".join(problems))

    static_base = stage_static_base(ctx, rootfs)
    net_base = stage_net_base(ctx, rootfs)
    base_ids = [
        run(["docker", "image", "inspect", "--format", "{{.Id}}", ref]).strip()
        for ref in (static_base, net_base)
    ]
    components: dict[str, str] = {}
    for spec in images.component_images(static_base, net_base):
        if not ctx.probe:
            ctx.progress(f"image {spec.name}")
        components[spec.name] = stage_component(ctx, spec, bins, base_ids)

    kindnet_ref = f"{KINDNET_IMAGE_REPO}:{short(components['kindnet'].split(':')[-1], 12)}"
    targets: dict[str, list[str]] = {n: [required[n]] for n in required}
    # kind's containerd config pins its own sandbox image; give pause both names
    targets["pause"].append(kindsrc.sandbox_image(containerd_config))
    targets["agnhost"] = [agnhost_image(version)]
    targets["kindnet"] = [kindnet_ref]
    targets["local-path-provisioner"] = [manifests.storage_provisioner_image]
    targets["local-path-helper"] = [manifests.storage_helper_image]
    files = {
        "/kind/version": str(version),
        "/kind/manifests/default-cni.yaml": kindsrc.render_cni_manifest(
            manifests.cni_manifest, manifests.cni_images[0], kindnet_ref
        ),
        "/kind/manifests/default-storage.yaml": manifests.storage_manifest,
    }
    node_bins = {n: bins[n] for n in ("kubeadm", "kubelet", "kubectl", "crictl")}
    plan = _Plan(node_base, node_bins, components, targets, files)
    key = _node_key(plan)
    return plan, key, f"{NODE_REPO}:{version}-{short(key)}"


def rootfs_image(*, progress: Progress | None = None) -> str:
    """The node's Debian root file system as an image (the first stage), built or reused.

    Also what kindlab's live tests run as a stand-in node: a container with the
    same tools as a kind node, without Kubernetes.
    """
    (cache_dir() / "tmp").mkdir(parents=True, exist_ok=True)
    version = KubeVersion.parse(DEFAULT_KUBERNETES_VERSION)
    return stage_rootfs(_Ctx(version, cache_dir(), progress or _quiet, "go", False))


def list_images() -> list[tuple[str, str, str]]:
    """(reference, size, created) of every image kindlab's builder made, newest first."""
    out = run(
        [
            "docker",
            "images",
            "--filter",
            f"label={MANAGED}",
            "--format",
            "{{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.CreatedSince}}\t{{.CreatedAt}}",
        ]
    )
    rows = [line.split("\t") for line in out.splitlines() if line.count("\t") == 3]
    rows.sort(key=lambda r: r[3], reverse=True)
    return [(r[0], r[1], r[2]) for r in rows if r[0].startswith("kindlab/")]


def prune_candidates(refs_newest_first: list[str], *, everything: bool) -> list[str]:
    """Which of kindlab's images to remove: all, or all but the newest per repository.

    Node images are kept per repository:version (the newest build of each
    Kubernetes version stays). Pure, for tests.
    """
    if everything:
        return list(refs_newest_first)
    seen: set[str] = set()
    remove = []
    for ref in refs_newest_first:
        repo, _, tag = ref.rpartition(":")
        group = repo + ":" + tag.split("-")[0] if repo == NODE_REPO else repo
        if group in seen:
            remove.append(ref)
        seen.add(group)
    return remove


def prune(*, everything: bool = False, progress: Progress | None = None) -> list[str]:
    """Remove older kindlab images (or all with ``everything``); return what went.

    Images still used by a container (a running cluster) are left, with a note.
    """
    say = progress or _quiet
    removed = []
    refs = [ref for ref, _, _ in list_images()]
    for ref in prune_candidates(refs, everything=everything):
        try:
            run(["docker", "rmi", ref])
        except CommandError as exc:
            say(f"kept {ref}: {exc.stderr.strip() or exc.stdout.strip()}")
            continue
        removed.append(ref)
    return removed
