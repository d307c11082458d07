"""The guest's disks, built on the host and cached by content.

Three stages, each under ``<cache>/vm/`` and skipped when its key exists:

1. ``rootfs-<key>/``: debootstrap of the guest's Debian root (kernel, systemd,
   Docker, Python and kindlab's libraries). About two minutes, once.
2. ``docker-<key>/``: a Docker data root holding the node image, written by the
   guest's own dockerd (run from that root, chrooted in a short-lived privileged
   container on the host). The guest then starts with the image in place: no
   ``docker load`` under emulation, where it took two to three minutes.
3. ``disk-<key>.raw``: one ext4 image of (1) + (2) + kindlab's guest files and the
   kind binary (``mkfs.ext4 -d``). Each run boots a copy-on-write qcow2 overlay of
   it, so the cached disk is never written.

The payload disk of a run (kindlab's sources, the test files, the pytest
arguments) is small and made anew each time (:func:`payload_disk`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kindlab.drivers.proc import run
from kindlab.errors import CommandError, PreconditionError
from kindlab.nodeimage.cache import cache_key, hash_files, short
from kindlab.nodeimage.versions import DEBIAN_MIRROR
from kindlab.paths import cache_dir

from . import guest

Progress = Callable[[str], None]
MANAGED = "io.kindlab.managed=true"
#: Size of the guest's root disk (sparse): the node container's /var and the
#: containerd snapshots of a cluster grow into it.
DISK_SIZE = "24G"
PAYLOAD_SIZE = "256M"


def _quiet(_: str) -> None:
    pass


def vm_dir() -> Path:
    path = cache_dir() / "vm"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class GuestDisk:
    """A cached guest disk and what is on it."""

    path: Path
    kernel: Path
    initrd: Path
    kernel_release: str
    node_image: str
    key: str


# --------------------------------------------------------------------------- keys


def rootfs_key(suite: str = guest.GUEST_SUITE, packages: Iterable[str] = ()) -> str:
    return cache_key(
        "vm-rootfs",
        {
            "suite": suite,
            "mirror": DEBIAN_MIRROR,
            "packages": sorted(packages or guest.GUEST_PACKAGES),
        },
    )


def docker_key(rootfs: str, image_id: str) -> str:
    return cache_key("vm-docker", {"rootfs": rootfs, "image": image_id})


def disk_key(rootfs: str, docker: str, kind_hash: str, files: dict[str, tuple[str, int]]) -> str:
    return cache_key(
        "vm-disk",
        {
            "rootfs": rootfs,
            "docker": docker,
            "kind": kind_hash,
            "files": {k: [v[0], v[1]] for k, v in sorted(files.items())},
            "links": guest.root_links(),
            "disabled": list(guest.DISABLED_LINKS),
            "size": DISK_SIZE,
        },
    )


# --------------------------------------------------------------------------- stages


def _done(path: Path) -> bool:
    return (path / ".kindlab-complete").exists()


def _mark_done(path: Path, key: str) -> None:
    (path / ".kindlab-complete").write_text(key + "\n")


def _fresh_tmp(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=vm_dir()))


def build_rootfs(progress: Progress = _quiet) -> tuple[Path, str]:
    """The guest's Debian root as a directory (cached); returns (path, key)."""
    key = rootfs_key()
    out = vm_dir() / f"rootfs-{short(key)}"
    if _done(out):
        progress(f"guest root: cached {out.name}")
        return out, key
    if not shutil.which("debootstrap"):
        raise PreconditionError(
            "debootstrap is needed to build the guest's root (scripts/setup.sh)"
        )
    work = _fresh_tmp("rootfs-partial-")
    progress(f"guest root: debootstrap {guest.GUEST_SUITE} with the kernel, Docker and Python")
    try:
        count = 0

        def line(text: str) -> None:
            nonlocal count
            count += 1
            if text.startswith("I: ") and count % 40 == 0:
                progress(f"guest root: {text[3:]}")

        root = work / "root"
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(guest.GUEST_PACKAGES),
                    guest.GUEST_SUITE,
                    str(root),
                    DEBIAN_MIRROR,
                ],
                on_line=line,
            )
        except CommandError as exc:
            log = root / "debootstrap" / "debootstrap.log"
            kept = vm_dir() / "debootstrap-failed.log"
            if log.exists():
                shutil.copyfile(log, kept)
            raise PreconditionError(
                f"debootstrap of the guest's root failed (log: {kept}): {exc}"
            ) from exc
        for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc"):
            target = root / rel
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        shutil.rmtree(out, ignore_errors=True)
        root.rename(out)
        _mark_done(out, key)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out, key


def kernel_files(rootfs: Path) -> tuple[Path, Path, str]:
    """(vmlinuz, initrd, release) of the newest kernel in the guest's /boot."""
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise PreconditionError(f"the guest root {rootfs} has no kernel in /boot")
    kernel = kernels[-1]
    release = kernel.name.removeprefix("vmlinuz-")
    initrd = rootfs / "boot" / f"initrd.img-{release}"
    if not initrd.exists():
        raise PreconditionError(f"the guest root has no initrd for kernel {release}")
    return kernel, initrd, release


def image_id(ref: str) -> str:
    try:
        return run(["docker", "image", "inspect", "--format", "{{.Id}}", ref]).strip()
    except CommandError as exc:
        raise PreconditionError(f"node image {ref!r} is not in the local Docker engine") from exc


def build_docker_root(
    rootfs: Path, rootfs_key_: str, node_image: str, progress: Progress = _quiet
) -> tuple[Path, str]:
    """A Docker data root holding ``node_image``, as the guest's dockerd writes it."""
    key = docker_key(rootfs_key_, image_id(node_image))
    out = vm_dir() / f"docker-{short(key)}"
    if _done(out):
        progress(f"guest Docker data: cached {out.name}")
        return out, key
    work = _fresh_tmp("docker-partial-")
    data = work / "data"
    data.mkdir()
    name = f"kindlab-vmprep-{uuid.uuid4().hex[:8]}"
    progress(f"guest Docker data: loading {node_image} with the guest's own dockerd")
    # The guest's dockerd, chrooted into its root inside a throwaway container of
    # the node image (any image with a shell would do): no network, no iptables,
    # nothing of it on the host's engine but this one container.
    setup = (
        "set -e; g=/guest; mount -t proc proc $g/proc; mount -t sysfs sys $g/sys; "
        "mount --rbind /dev $g/dev; mount -t tmpfs tmpfs $g/run; mount -t tmpfs tmpfs $g/tmp; "
        "mount --bind /data $g/var/lib/docker; "
        "mount --rbind /sys/fs/cgroup $g/sys/fs/cgroup; "
        "exec chroot $g dockerd --data-root /var/lib/docker --iptables=false "
        "--ip6tables=false --bridge=none --ip-masq=false --storage-driver=overlay2 "
        "-H unix:///run/docker.sock --pidfile /run/docker.pid"
    )
    archive = work / "node-image.tar"
    # the mount point of the data root (Debian's docker.io makes it on first start)
    (rootfs / "var" / "lib" / "docker").mkdir(exist_ok=True)
    try:
        run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "--label",
                MANAGED,
                "--privileged",
                "--network",
                "none",
                "--entrypoint",
                "sh",
                "-v",
                f"{rootfs}:/guest:ro",
                "-v",
                f"{data}:/data",
                node_image,
                "-c",
                setup,
            ]
        )
        # the guest's docker CLI, talking to the guest's dockerd (-i: for `load`)
        inner = [
            "docker",
            "exec",
            "-i",
            name,
            "chroot",
            "/guest",
            "docker",
            "-H",
            "unix:///run/docker.sock",
        ]
        deadline = time.monotonic() + 120
        while True:
            try:
                run([*inner, "version"], timeout=20)
                break
            except CommandError as exc:
                state = run(["docker", "inspect", "--format", "{{.State.Status}}", name]).strip()
                if state != "running" or time.monotonic() > deadline:
                    logs = _logs(name)
                    raise PreconditionError(
                        f"the guest's dockerd did not start in the prep container: {logs}"
                    ) from exc
                time.sleep(1)
        run(["docker", "save", "-o", str(archive), node_image])
        progress(f"guest Docker data: docker load ({archive.stat().st_size / 1e6:.0f} MB)")
        run(
            [*inner, "load"],
            stdin_path=archive,
        )
        listed = run([*inner, "image", "inspect", "--format", "{{.Id}}", node_image]).strip()
        progress(f"guest Docker data: {node_image} is {listed[:19]}")
        run(["docker", "stop", "-t", "30", name])
        shutil.rmtree(out, ignore_errors=True)
        data.rename(out)
        _mark_done(out, key)
    finally:
        try:
            run(["docker", "rm", "-f", name])
        except CommandError as exc:
            progress(f"could not remove {name}: {exc}")
        shutil.rmtree(work, ignore_errors=True)
    return out, key


def _logs(container: str) -> str:
    try:
        return run(["docker", "logs", "--tail", "30", container], on_line=lambda _: None)
    except CommandError as exc:
        return exc.stdout


def build_disk(node_image: str, kind_binary: Path, progress: Progress = _quiet) -> GuestDisk:
    """The guest's root disk with ``node_image`` in its Docker, built or reused."""
    rootfs, rkey = build_rootfs(progress)
    kernel, initrd, release = kernel_files(rootfs)
    docker_root, dkey = build_docker_root(rootfs, rkey, node_image, progress)
    files = guest.root_files()
    key = disk_key(rkey, dkey, hash_files(kind_binary.parent, [kind_binary.name]), files)
    path = vm_dir() / f"disk-{short(key)}.raw"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        progress(f"guest disk: cached {path.name}")
    else:
        _make_disk(path, rootfs, docker_root, kind_binary, files, progress)
        meta.write_text(json.dumps({"key": key, "node_image": node_image, "kernel": release}))
        # one disk at a time: each holds a node image (GBs)
        prune(keep=(path, meta, docker_root, rootfs), progress=progress)
    # the kernel boots from the host's copy; the disk carries its modules
    return GuestDisk(path, kernel, initrd, release, node_image, key)


def _make_disk(
    path: Path,
    rootfs: Path,
    docker_root: Path,
    kind_binary: Path,
    files: dict[str, tuple[str, int]],
    progress: Progress,
) -> None:
    work = _fresh_tmp("disk-partial-")
    try:
        staging = work / "root"
        progress("guest disk: staging the root (hard links)")
        run(["cp", "-al", str(rootfs), str(staging)])
        (staging / ".kindlab-complete").unlink(missing_ok=True)
        docker_target = staging / "var" / "lib" / "docker"
        shutil.rmtree(docker_target, ignore_errors=True)
        run(["cp", "-al", str(docker_root), str(docker_target)])
        (docker_target / ".kindlab-complete").unlink(missing_ok=True)
        for rel, (text, mode) in files.items():
            target = staging / rel.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)  # never write through a hard link
            target.write_text(text)
            target.chmod(mode)
        for rel, dest in guest.root_links().items():
            link = staging / rel.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(dest)
        for rel in guest.DISABLED_LINKS:
            (staging / rel.lstrip("/")).unlink(missing_ok=True)
        kind_target = staging / guest.KIND_PATH.lstrip("/")
        kind_target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kind_binary, kind_target)
        kind_target.chmod(0o755)
        partial = work / "disk.raw"
        progress(f"guest disk: mkfs.ext4 -d ({DISK_SIZE}, sparse)")
        started = time.monotonic()
        run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "kindlab-guest",
                "-d",
                str(staging),
                str(partial),
                DISK_SIZE,
            ]
        )
        progress(f"guest disk: written in {time.monotonic() - started:.0f}s")
        partial.rename(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def kindlab_sources() -> dict[str, Path]:
    """What every payload carries: kindlab itself, the kind configs, the sample workloads."""
    import kindlab
    from kindlab.paths import clusters_dir, manifests_dir

    return {
        "kindlab": Path(kindlab.__file__).resolve().parent,
        "clusters": clusters_dir(),
        "labs/manifests": manifests_dir(),
    }


def payload_disk(
    dest: Path,
    sources: dict[str, Path],
    command: list[str],
    files: dict[str, str] | None = None,
) -> Path:
    """A small ext4 image: ``src/<rel>`` for each source, the command to run, ``files``.

    ``sources`` maps a path relative to the guest's rootdir to a file or
    directory on the host (``kindlab`` -> the package, ``labs`` -> the tests...);
    ``files`` are texts by path on the disk (``timeout-scale``, ``hold``,
    ``src/clusters/ipvs.yaml``).
    """
    staging = dest.parent / (dest.name + ".d")
    shutil.rmtree(staging, ignore_errors=True)
    src = staging / "src"
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
    for rel, host_path in sources.items():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if host_path.is_dir():
            shutil.copytree(host_path, target, ignore=ignore, symlinks=False, dirs_exist_ok=True)
        else:
            shutil.copy2(host_path, target)
    (staging / "command").write_text("".join(a + "\n" for a in command))
    for rel, text in (files or {}).items():  # after the sources: they may replace one
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    try:
        run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-L",
                "kindlab-payload",
                "-d",
                str(staging),
                str(dest),
                PAYLOAD_SIZE,
            ]
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def prune(keep: Iterable[Path] = (), progress: Progress = _quiet) -> list[Path]:
    """Remove cached guest roots, Docker data roots, disks and leftovers of failed
    builds, except the paths in ``keep``."""
    kept = {p.resolve() for p in keep}
    removed = []
    for path in sorted(vm_dir().iterdir()):
        if path.resolve() in kept or not path.name.startswith(("disk-", "docker-", "rootfs-")):
            continue
        progress(f"removing {path.name}")
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
