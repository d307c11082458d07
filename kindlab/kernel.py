"""Does the kernel under the Docker engine support a proxy mode?

kind nodes are containers: they share the host's kernel. kube-proxy's ipvs
mode needs IP_VS and a dummy device (it creates ``kube-ipvs0``); a kernel
without them cannot run that mode in any container, and older kube-proxy
versions then fall back to iptables mode silently. kindlab finds that out
before it creates anything and says so.

The check reads the host's kernel config and module lists: the Docker engine
kindlab drives is local (the project's machines run it next to the tests).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

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
            f"kernel {facts.release} lacks {' and '.join(missing)}: kube-proxy's {mode} mode "
            "cannot run in containers on this host (kind nodes share the host kernel)"
        )
        return Support(mode, False, tuple(missing), reason)
    if unknown:
        return Support(mode, True, (), f"could not tell whether {', '.join(unknown)} is present")
    return Support(mode, True, (), f"kernel {facts.release} has what {mode} mode needs")


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


def host_support(mode: str) -> Support:
    return check(mode, host_facts())
