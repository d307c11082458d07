"""Does the kernel under the Docker engine support a proxy mode?

kind nodes are containers: they share the Docker host's kernel. kube-proxy's ipvs
mode needs IP_VS and a dummy device (it creates ``kube-ipvs0``); a kernel
without them cannot run that mode in any container, and older kube-proxy
versions then fall back to iptables mode silently. kindlab finds that out
before it creates anything and says so.

The kernel that counts is the Docker host's, which is not this process's where
Docker runs elsewhere (Docker Desktop's VM, a remote ``DOCKER_HOST``). So
:func:`host_support` asks Docker: a short-lived privileged container with no
network prints the host kernel's release, loaded modules and config, and the
module lists of ``/lib/modules`` (bind-mounted read-only, with ``/boot``). It runs
from an image Docker already has (kindlab's root file system or node image; never
pulled), once per process. Without such an image, this machine's own kernel
stands in when Docker reports the same release. The reason always says which
kernel was checked, and how.

Running and parsing are apart: :func:`parse_probe`, :func:`parse_kconfig`,
:func:`module_names` and :func:`check` are pure.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from kindlab import labels
from kindlab.drivers.proc import run
from kindlab.errors import CommandError, KindlabError, ParseError

#: Kernel features each mode needs, by Kconfig symbol and module name.
REQUIREMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "iptables": (("CONFIG_NETFILTER_XT_MATCH_STATISTIC", "xt_statistic"),),
    "nftables": (("CONFIG_NF_TABLES", "nf_tables"),),
    "ipvs": (("CONFIG_IP_VS", "ip_vs"), ("CONFIG_DUMMY", "dummy")),
}


@dataclass(frozen=True, slots=True)
class KernelFacts:
    """What is known of one kernel: its config (if readable) and its modules."""

    release: str
    config: dict[str, str]
    loaded: frozenset[str]
    loadable: frozenset[str]
    modules_enabled: bool
    #: Which kernel this is and how it was read, for reasons shown to the user.
    where: str = ""

    @property
    def label(self) -> str:
        return self.where or f"kernel {self.release}"

    def has(self, symbol: str, module: str) -> bool | None:
        """True/False when known, None when nothing tells."""
        if module in self.loaded:
            return True
        value = self.config.get(symbol)
        if value == "y":
            return True
        if value == "m":
            return self.modules_enabled and (module in self.loadable or not self.loadable)
        if self.config:
            return False
        if module in self.loadable:
            return True
        return None


@dataclass(frozen=True, slots=True)
class Support:
    mode: str
    ok: bool
    missing: tuple[str, ...]
    reason: str


def parse_kconfig(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines into a dict; ``# CONFIG_X is not set`` becomes ``"n"``."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# CONFIG_") and line.endswith(" is not set"):
            config[line[2:].split()[0]] = "n"
        elif line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            config[key] = value.strip('"')
    return config


def module_names(text: str) -> frozenset[str]:
    """Module names from ``/proc/modules``, ``modules.dep`` or ``modules.builtin``."""
    names = set()
    for line in text.splitlines():
        first = line.split(":", 1)[0].split()[0] if line.strip() else ""
        if not first:
            continue
        base = os.path.basename(first)
        for suffix in (".ko.zst", ".ko.xz", ".ko.gz", ".ko"):
            base = base.removesuffix(suffix)
        names.add(base.replace("-", "_"))
    return frozenset(names)


def check(mode: str, facts: KernelFacts) -> Support:
    """Whether ``mode`` can run on a kernel with ``facts`` (pure)."""
    if mode not in REQUIREMENTS:
        raise ValueError(f"unknown proxy mode {mode!r}")
    missing = []
    unknown = []
    for symbol, module in REQUIREMENTS[mode]:
        has = facts.has(symbol, module)
        if has is False:
            missing.append(f"{symbol} ({module})")
        elif has is None:
            unknown.append(module)
    if missing:
        reason = (
            f"{facts.label} lacks {' and '.join(missing)}: kube-proxy's {mode} mode cannot "
            "run in containers on this Docker host (kind nodes share its kernel)"
        )
        return Support(mode, False, tuple(missing), reason)
    if unknown:
        modules = ", ".join(unknown)
        return Support(mode, True, (), f"could not tell whether {facts.label} has {modules}")
    return Support(mode, True, (), f"{facts.label} has what {mode} mode needs")


#: Printed by the probe container: sections, each under a line ``@@ <what>``.
PROBE_SCRIPT = r"""
r=$(uname -r)
echo "@@ release"; echo "$r"
echo "@@ /proc/modules"; cat /proc/modules 2>/dev/null
echo "@@ /sys/module"; ls /sys/module 2>/dev/null
if gzip -dc /proc/config.gz >/dev/null 2>&1; then
  echo "@@ /proc/config.gz"; gzip -dc /proc/config.gz
elif [ -r "/host/boot/config-$r" ]; then
  echo "@@ /boot/config-$r"; cat "/host/boot/config-$r"
fi
for f in modules.dep modules.builtin; do
  if [ -r "/host/lib/modules/$r/$f" ]; then
    echo "@@ /lib/modules/$r/$f"; cat "/host/lib/modules/$r/$f"
  fi
done
"""
#: Images the probe may run in, first found first; all have a POSIX shell and gzip.
PROBE_IMAGES = ("kindlab/rootfs", "kindlab/node-base", "kindlab/node", "kindest/node")
#: Host directories the probe reads, bind-mounted read-only under /host.
PROBE_MOUNTS = ("/lib/modules", "/boot")


def parse_probe(text: str, where: str = "") -> KernelFacts:
    """The facts in the output of :data:`PROBE_SCRIPT` (pure).

    >>> parse_probe("@@ release\\n6.1.0\\n@@ /proc/modules\\nip_vs 1 0 - Live 0x0\\n").loaded
    frozenset({'ip_vs'})
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("@@ "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise ParseError("kernel probe", number, line, "a section line '@@ <what>' first")
    release = next((ln.strip() for ln in sections.get("release", []) if ln.strip()), "")
    if not release:
        first = text.splitlines()[0] if text.strip() else ""
        raise ParseError("kernel probe", 1, first, "an '@@ release' section with uname -r")
    config: dict[str, str] = {}
    loadable: set[str] = set()
    for name, lines in sections.items():
        body = "\n".join(lines)
        if name == "/proc/config.gz" or name.startswith("/boot/config-"):
            config = parse_kconfig(body)
        elif name.startswith("/lib/modules/"):
            loadable |= module_names(body)
    loaded = module_names("\n".join(sections.get("/proc/modules", [])))
    loaded |= {ln.strip() for ln in sections.get("/sys/module", []) if ln.strip()}
    modules_enabled = config.get("CONFIG_MODULES", "y") == "y"
    return KernelFacts(release, config, loaded, frozenset(loadable), modules_enabled, where)


def missing_mount_source(stderr: str) -> str | None:
    """The bind source Docker refused because the host lacks it, if that is the error."""
    found = re.search(r"bind source path does not exist: (\S+)", stderr)
    return found.group(1).rstrip(".") if found else None


def host_facts(root: Path = Path("/")) -> KernelFacts:
    """Read the running kernel's facts from ``/proc``, ``/sys`` and ``/lib/modules``."""
    release = os.uname().release
    config: dict[str, str] = {}
    proc_config = root / "proc/config.gz"
    boot_config = root / f"boot/config-{release}"
    if proc_config.exists():
        config = parse_kconfig(gzip.decompress(proc_config.read_bytes()).decode())
    elif boot_config.exists():
        config = parse_kconfig(boot_config.read_text())
    loaded = set(_read_modules(root / "proc/modules"))
    sys_module = root / "sys/module"
    if sys_module.is_dir():
        loaded.update(p.name for p in sys_module.iterdir())
    mod_dir = root / "lib/modules" / release
    loadable = _read_modules(mod_dir / "modules.dep") | _read_modules(mod_dir / "modules.builtin")
    modules_enabled = config.get("CONFIG_MODULES", "y") == "y"
    return KernelFacts(release, config, frozenset(loaded), loadable, modules_enabled)


def _read_modules(path: Path) -> frozenset[str]:
    try:
        return module_names(path.read_text())
    except OSError:
        return frozenset()


def probe_image() -> str | None:
    """An image Docker already has that the probe can run in, or None."""
    filters = [arg for repo in PROBE_IMAGES for arg in ("--filter", f"reference={repo}")]
    listed = run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", *filters], timeout=30
    ).split()
    for repo in PROBE_IMAGES:
        for ref in listed:
            if ref.startswith(f"{repo}:") and not ref.endswith(":<none>"):
                return ref
    return None


def probe_docker_host(image: str) -> str:
    """Run :data:`PROBE_SCRIPT` in a short-lived container on the Docker host; its output."""
    mounts = list(PROBE_MOUNTS)
    while True:
        argv = [
            "docker", "run", "--rm", "--privileged", "--network", "none", "--pull", "never",
            "--name", f"kindlab-kernel-probe-{os.getpid()}-{secrets.token_hex(3)}",
            "--label", f"{labels.MANAGED}=true",
            "--entrypoint", "/bin/sh",
            *[a for m in mounts for a in ("--mount", f"type=bind,src={m},dst=/host{m},readonly")],
            image, "-c", PROBE_SCRIPT,
        ]  # fmt: skip
        try:
            return run(argv, timeout=60)
        except CommandError as exc:
            # A host without /boot (or /lib/modules) is fine: read what there is.
            absent = missing_mount_source(exc.stderr)
            if absent not in mounts:
                raise
            mounts.remove(absent)


@functools.cache
def docker_host_facts() -> KernelFacts:
    """The facts of the kernel kind's nodes run on: the Docker host's. Once per process."""
    local = os.uname().release
    try:
        image = probe_image()
        if image is not None:
            probed = parse_probe(probe_docker_host(image))
            where = f"Docker host kernel {probed.release} (checked via container)"
            return replace(probed, where=where)
        docker_release = run(["docker", "info", "--format", "{{.KernelVersion}}"], timeout=30)
    except KindlabError as exc:
        why = str(exc).splitlines()[0]
        return replace(host_facts(), where=f"kernel {local} of this machine (Docker: {why})")
    return facts_without_probe(docker_release.strip(), local, host_facts)


def facts_without_probe(
    docker_release: str, local_release: str, local: Callable[[], KernelFacts]
) -> KernelFacts:
    """With no image to probe in: this machine's kernel if it is Docker's, else nothing known."""
    if docker_release == local_release:
        return replace(
            local(),
            where=f"kernel {local_release} of this machine, the release Docker reports "
            "(no image yet to check it in a container)",
        )
    where = (
        f"Docker host kernel {docker_release} (not checked: no image yet to run a probe "
        f"container in, and it is not this machine's kernel {local_release})"
    )
    return KernelFacts(docker_release, {}, frozenset(), frozenset(), True, where)


def host_support(mode: str) -> Support:
    """Whether the Docker host's kernel can run ``mode`` (probed once per process)."""
    return check(mode, docker_host_facts())
