"""Go builds of the node's binaries from Go module sources.

Modules whose go.mod has local ``replace`` directives (k8s.io/kubernetes points its
staging modules at ``./staging/src/...``; etcd points at ``../api`` …) cannot be
built with ``go install mod@version``. Each is built through a small wrapper module
that requires the module and, for Kubernetes, replaces every ``k8s.io/*`` staging
module with its own release (``v0.<minor>.<patch>``). The wrapper lists the main
packages in a ``tools.go`` behind a build tag so ``go mod tidy`` records their
dependencies; then one ``go build -o DIR/ pkg...`` builds them all, sharing
compilation. The Go build cache (``go env GOCACHE``) carries over between runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .versions import KubeVersion, MinorPins, etcd_module_version

WRAPPER_GO = "1.24.0"


@dataclass(frozen=True)
class GoBuild:
    """One ``go build`` invocation: a module (or local source) and the binaries it makes."""

    name: str
    packages: tuple[str, ...]
    ldflags: str = "-s -w"
    go_mod: str | None = None  # wrapper module text; None: build ``source`` as is
    source: Path | None = None
    rename: tuple[tuple[str, str], ...] = field(default=())  # (built name, wanted name)

    def outputs(self) -> tuple[str, ...]:
        names = {built: wanted for built, wanted in self.rename}
        return tuple(names.get(n, n) for n in (binary_name(p) for p in self.packages))


def binary_name(package: str) -> str:
    """The file ``go build -o DIR/`` writes for a main package (major-version aware)."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The k8s.io/* modules that k8s.io/kubernetes's go.mod replaces with local paths."""
    mods = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_go_mod, re.MULTILINE)
    if not mods:
        raise ValueError("k8s.io/kubernetes go.mod has no ./staging replace directives")
    return sorted(set(mods))


def wrapper_go_mod(
    requires: dict[str, str], replaces: dict[str, str] | None = None, module: str = "x"
) -> str:
    lines = [f"module kindlab.invalid/build/{module}", "", f"go {WRAPPER_GO}", "", "require ("]
    lines += [f"\t{mod} {ver}" for mod, ver in sorted(requires.items())]
    lines.append(")")
    if replaces:
        lines += ["", "replace ("]
        lines += [f"\t{mod} => {mod} {ver}" for mod, ver in sorted(replaces.items())]
        lines.append(")")
    return "\n".join(lines) + "\n"


def tools_go(packages: tuple[str, ...]) -> str:
    imports = "\n".join(f'\t_ "{p}"' for p in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


KUBERNETES_COMMANDS = (
    "k8s.io/kubernetes/cmd/kubeadm",
    "k8s.io/kubernetes/cmd/kubelet",
    "k8s.io/kubernetes/cmd/kubectl",
    "k8s.io/kubernetes/cmd/kube-apiserver",
    "k8s.io/kubernetes/cmd/kube-controller-manager",
    "k8s.io/kubernetes/cmd/kube-scheduler",
    "k8s.io/kubernetes/cmd/kube-proxy",
    "k8s.io/kubernetes/test/images/agnhost",
)


def kubernetes_ldflags(version: KubeVersion) -> str:
    """What hack/lib/version.sh sets, so ``kubelet --version`` prints the real version."""
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for var, val in (
            ("gitVersion", str(version)),
            ("gitMajor", str(version.major)),
            ("gitMinor", str(version.minor)),
            ("gitCommit", "0" * 40),
            ("gitTreeState", "clean"),
            ("buildDate", "1970-01-01T00:00:00Z"),
        ):
            flags.append(f"-X {pkg}.{var}={val}")
    return " ".join(flags)


def kubernetes_build(version: KubeVersion, kubernetes_go_mod: str) -> GoBuild:
    staging = {mod: version.staging for mod in staging_modules(kubernetes_go_mod)}
    return GoBuild(
        name="kubernetes",
        packages=KUBERNETES_COMMANDS,
        ldflags=kubernetes_ldflags(version),
        go_mod=wrapper_go_mod({"k8s.io/kubernetes": str(version)}, staging, "kubernetes"),
    )


#: CoreDNS releases whose x/net reaches into the standard library with
#: ``//go:linkname syscall_recvmsg syscall.recvmsg`` (golang.org/x/net/internal/socket/
#: sys_unix.go). Go 1.23's linker refuses such a reference to a symbol that is not
#: marked for it ("invalid reference to syscall.recvmsg"; seen building CoreDNS v1.9.3,
#: Kubernetes 1.25's pin, with Go 1.26, 2026-11-28). CoreDNS v1.9.3 requires x/net
#: v0.0.0-20220520000938, which has the line; v1.10.1 (1.27's pin) requires x/net v0.4.0,
#: and x/net v0.1.0 to v0.4.0 do not have it (read in the proxy's zips). v1.9.4 and
#: v1.10.0 require x/net of 2022-07-22, before v0.1.0: not checked, so counted in.
COREDNS_LINKNAME_FIXED = (1, 10, 1)


def coredns_ldflags(tag: str) -> str:
    """CoreDNS's link flags; ``-checklinkname=0`` where its x/net needs the old linkname.

    ``-checklinkname=0`` turns off only the linker's new check; the symbol is still
    there in Go 1.26 (the link succeeds with it), the way Go 1.22 linked it.

    >>> coredns_ldflags("v1.9.3").split()[-1]
    '-checklinkname=0'
    >>> "-checklinkname=0" in coredns_ldflags("v1.11.1")
    False
    """
    flags = "-s -w -X github.com/coredns/coredns/coremain.GitCommit=kindlab"
    found = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", tag)
    if found is None:
        raise ValueError(f"unexpected CoreDNS version {tag!r}")
    if tuple(int(g) for g in found.groups()) < COREDNS_LINKNAME_FIXED:
        flags += " -checklinkname=0"
    return flags


def component_builds(pins: MinorPins, local_path_version: str) -> list[GoBuild]:
    etcd = etcd_module_version(pins.etcd)
    return [
        GoBuild(
            name="etcd",
            packages=("go.etcd.io/etcd/server/v3",),
            ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=kindlab",
            go_mod=wrapper_go_mod({"go.etcd.io/etcd/server/v3": etcd}, module="etcd"),
            rename=(("server", "etcd"),),
        ),
        GoBuild(
            name="coredns",
            packages=("github.com/coredns/coredns",),
            ldflags=coredns_ldflags(pins.coredns),
            go_mod=wrapper_go_mod({"github.com/coredns/coredns": pins.coredns}, module="coredns"),
        ),
        GoBuild(
            name="crictl",
            packages=("sigs.k8s.io/cri-tools/cmd/crictl",),
            ldflags=f"-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version={pins.crictl}",
            go_mod=wrapper_go_mod({"sigs.k8s.io/cri-tools": pins.crictl}, module="crictl"),
        ),
        GoBuild(
            name="local-path-provisioner",
            packages=("github.com/rancher/local-path-provisioner",),
            ldflags=f"-s -w -X main.VERSION={local_path_version}",
            go_mod=wrapper_go_mod(
                {"github.com/rancher/local-path-provisioner": local_path_version},
                module="local-path-provisioner",
            ),
        ),
    ]


def kindnet_build() -> GoBuild:
    return GoBuild(
        name="kindnet",
        packages=("kindlab.invalid/kindnet",),
        source=Path(__file__).parent / "kindnet",
    )
