"""Dockerfiles and small files of the component images. Pure text, unit-tested.

Static Go binaries (kube-apiserver, kube-controller-manager, kube-scheduler, etcd,
CoreDNS, local-path-provisioner) go on a tiny "static" base: passwd, group,
nsswitch.conf, CA bundle and /tmp, like the distroless images upstream uses.
kube-proxy, agnhost, kindlab's kindnet and local-path's helper go on a "net" base:
the iptables (legacy and nft), nft, ipset, conntrack and ip binaries of the node's
Debian root with only the shared libraries they load and a small shell, in the
spirit of upstream's distroless-iptables. It is a few MB where the whole Debian root
was 370 MB, and every node unpacks it at build time, so its size is paid once there,
not by every first pod (under emulation the full root took minutes to unpack).
"""

from __future__ import annotations

from dataclasses import dataclass

# kube-proxy runs the iptables commands of its image against the node's network
# namespace, so it must use the back end the node uses. kind's entrypoint picks
# the node's mode by counting rules (legacy wins a tie); kubelet then marks the
# chosen back end with KUBE-IPTABLES-HINT in the mangle table. This wrapper, in
# the spirit of kubernetes-sigs/iptables-wrappers, follows the hint, else counts
# like kind's entrypoint, then points the iptables names at that back end and
# re-runs the command.
IPTABLES_WRAPPER = """#!/bin/sh
set -e
mode=
for save in iptables-nft-save ip6tables-nft-save; do
  if "$save" -t mangle 2>/dev/null | grep -q KUBE-IPTABLES-HINT; then mode=nft; break; fi
done
if [ -z "$mode" ]; then
  for save in iptables-legacy-save ip6tables-legacy-save; do
    if "$save" -t mangle 2>/dev/null | grep -q KUBE-IPTABLES-HINT; then mode=legacy; break; fi
  done
fi
if [ -z "$mode" ]; then
  legacy=$( (iptables-legacy-save || true; ip6tables-legacy-save || true) 2>/dev/null \\
    | grep -c '^-' || true)
  nft=$( (timeout 5 sh -c 'iptables-nft-save; ip6tables-nft-save' || true) 2>/dev/null \\
    | grep -c '^-' || true)
  if [ "$legacy" -ge "$nft" ]; then mode=legacy; else mode=nft; fi
fi
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf "xtables-$mode-multi" "/usr/sbin/$name"
done
exec "$0" "$@"
"""

IPTABLES_NAMES = (
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
)

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
NSSWITCH = "hosts: files dns\nnetworks: files\npasswd: files\ngroup: files\n"


@dataclass(frozen=True)
class ComponentImage:
    """One image to build: its Dockerfile and the binaries its context needs."""

    name: str  # kindlab's short name, e.g. "kube-apiserver"
    dockerfile: str
    binaries: tuple[str, ...] = ()  # files copied into the build context
    extra_files: tuple[tuple[str, str, int], ...] = ()  # (name, text, mode)


def _labels(key: str) -> str:
    return f'LABEL io.kindlab.managed="true" io.kindlab.cache-key="{key}"\n'


def static_base_dockerfile() -> str:
    return "FROM scratch\nCOPY rootfs/ /\n"


#: What the net base carries from the node's root, by path. kube-proxy runs the
#: iptables, ipset, nft and conntrack commands; the iptables wrapper needs sh, grep,
#: ln and timeout; kindnet runs ip and nft; local-path's helper runs sh, mkdir, rm.
NET_BASE_PATHS: tuple[str, ...] = (
    "/usr/bin/sh",
    "/usr/bin/dash",
    "/usr/bin/grep",
    "/usr/bin/ln",
    "/usr/bin/timeout",
    "/usr/bin/cat",
    "/usr/bin/ls",
    "/usr/bin/mkdir",
    "/usr/bin/rm",
    "/usr/bin/chmod",
    "/usr/bin/sleep",
    "/usr/sbin/ip",
    "/usr/sbin/ipset",
    "/usr/sbin/nft",
    "/usr/sbin/conntrack",
    "/usr/sbin/xtables-legacy-multi",
    "/usr/sbin/xtables-nft-multi",
)

#: Name databases copied when the node's root has them (iptables and nft read
#: protocol and service names there, and know the common ones without).
NET_BASE_OPTIONAL = ("/etc/protocols", "/etc/services", "/etc/ethertypes", "/etc/nsswitch.conf")

#: iptables loads its match and target extensions with dlopen: ldd does not see them.
XTABLES_DIR = "/usr/lib/x86_64-linux-gnu/xtables"

#: Commands that must work in the net base; the build runs each (no network).
NET_BASE_CHECKS: tuple[tuple[str, ...], ...] = (
    ("xtables-legacy-multi", "iptables", "--version"),
    ("xtables-nft-multi", "iptables", "--version"),
    ("iptables-legacy-save", "--version"),
    ("nft", "--version"),
    ("ipset", "-h"),
    ("conntrack", "--version"),
    ("ip", "-V"),
    ("sh", "-c", "echo x | grep -q x && timeout 5 sh -c : && ln --version >/dev/null"),
)


def net_base_script() -> str:
    """Run in a container of the node's root with ``/out`` mounted: fills ``/out``.

    Copies each path of :data:`NET_BASE_PATHS` with the symlinks that lead to it,
    every ``*tables*`` name in /usr/sbin, the xtables extensions, and the shared
    libraries all of them load (per ``ldd``). Keeps the merged-/usr layout.
    """
    paths = " ".join(NET_BASE_PATHS)
    return rf"""set -eu
out=/out
mkdir -p "$out/usr/bin" "$out/usr/sbin" "$out/usr/lib" "$out/usr/lib64"
mkdir -p "$out/etc" "$out/tmp" "$out/run" "$out/var" "$out/proc" "$out/sys" "$out/dev"
chmod 1777 "$out/tmp"
for l in bin sbin lib lib64; do [ -L "/$l" ] && cp -a "/$l" "$out/"; done
ln -sf ../run "$out/var/run"
copy() {{
  p=$1
  while :; do
    [ -e "$out$p" ] || [ -L "$out$p" ] || cp -a --parents "$p" "$out"
    [ -L "$p" ] || break
    t=$(readlink "$p")
    case $t in /*) p=$t ;; *) p=$(dirname "$p")/$t ;; esac
  done
}}
libs() {{
  ldd "$1" 2>/dev/null | awk '/=> \// {{print $3}} /^[[:space:]]*\// {{print $1}}'
}}
files="{paths}"
for f in /usr/sbin/*tables*; do files="$files $f"; done
for f in $files; do
  [ -e "$f" ] || {{ echo "net base: $f is missing from the node root" >&2; exit 1; }}
  copy "$f"
done
cp -a --parents {XTABLES_DIR} "$out"
for f in $files {XTABLES_DIR}/*.so; do
  real=$(readlink -f "$f")
  for lib in $(libs "$real"); do copy "$lib"; done
done
for f in {" ".join(NET_BASE_OPTIONAL)}; do [ -e "$f" ] && cp -a "$f" "$out/etc/"; done
true
"""


def component_images(static_base: str, net_base: str) -> list[ComponentImage]:
    """The images the node's containerd gets, by kindlab short name.

    ``static_base`` and ``net_base`` are local image references.
    """

    def static(name: str, binary: str, path: str, entry: str | None = None) -> ComponentImage:
        df = f"FROM {static_base}\nCOPY {binary} {path}\n"
        df += f'ENTRYPOINT ["{entry or path}"]\n'
        return ComponentImage(name, df, (binary,))

    images = [
        static("kube-apiserver", "kube-apiserver", "/usr/local/bin/kube-apiserver"),
        static(
            "kube-controller-manager",
            "kube-controller-manager",
            "/usr/local/bin/kube-controller-manager",
        ),
        static("kube-scheduler", "kube-scheduler", "/usr/local/bin/kube-scheduler"),
        static("etcd", "etcd", "/usr/local/bin/etcd"),
        static("coredns", "coredns", "/coredns"),
        static(
            "local-path-provisioner",
            "local-path-provisioner",
            "/usr/local/bin/local-path-provisioner",
        ),
        ComponentImage(
            "pause",
            'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n',
            ("pause",),
        ),
        ComponentImage(
            "kube-proxy",
            f"FROM {net_base}\n"
            "COPY kube-proxy /usr/local/bin/kube-proxy\n"
            "COPY iptables-wrapper /usr/sbin/iptables-wrapper\n"
            "RUN for n in " + " ".join(IPTABLES_NAMES) + "; do "
            'ln -sf iptables-wrapper "/usr/sbin/$n"; done\n'
            'ENTRYPOINT ["/usr/local/bin/kube-proxy"]\n',
            ("kube-proxy",),
            (("iptables-wrapper", IPTABLES_WRAPPER, 0o755),),
        ),
        ComponentImage(
            "agnhost",
            f'FROM {net_base}\nCOPY agnhost /agnhost\nENTRYPOINT ["/agnhost"]\nCMD ["pause"]\n',
            ("agnhost",),
        ),
        ComponentImage(
            "kindnet",
            f'FROM {net_base}\nCOPY kindnet /bin/kindnetd\nENTRYPOINT ["/bin/kindnetd"]\n',
            ("kindnet",),
        ),
        ComponentImage("local-path-helper", f"FROM {net_base}\n"),
    ]
    return images


def with_labels(dockerfile: str, key: str) -> str:
    return dockerfile + _labels(key)


def node_base_script() -> str:
    """What kind's base Dockerfile RUNs, adapted to Debian's packages.

    Debian installs containerd, ctr and the shim in /usr/bin (kind's units expect
    /usr/local/bin), runc in /usr/sbin, and the CNI plugins in /usr/lib/cni (kind's
    containerd config and kindnet expect /opt/cni/bin): symlinks bridge both.
    """
    return r"""set -eux
chmod 755 /kind/bin
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
  /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
  /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /lib/systemd/systemd /sbin/init
for b in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/$b" "/usr/local/bin/$b"; done
mkdir -p /usr/local/sbin /opt/cni/bin /etc/kubernetes/manifests /etc/cni/net.d
ln -sf /usr/sbin/runc /usr/local/sbin/runc
for p in /usr/lib/cni/*; do ln -sf "$p" "/opt/cni/bin/$(basename "$p")"; done
hook='{"path": "/kind/bin/mount-product-files.sh"}'
ctr oci spec \
  | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + $hook" \
  | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json
# Nodes here run without CAP_SYS_RESOURCE (see the host README): runc cannot lower
# a container's oom_score_adj below containerd's, and every sandbox fails with
# "can't get final child's PID from pipe". kind sets this only for rootless nodes.
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
  /etc/containerd/config.toml
grep -q 'restrict_oom_score_adj = true' /etc/containerd/config.toml
systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service
rm -f /etc/machine-id && touch /etc/machine-id
"""


def node_base_dockerfile(rootfs_image: str) -> str:
    return (
        f"FROM {rootfs_image}\n"
        "COPY files/ /\n"
        "COPY setup.sh /tmp/kindlab-setup.sh\n"
        "RUN sh /tmp/kindlab-setup.sh && rm /tmp/kindlab-setup.sh\n"
        "ENV container=docker\n"
        "STOPSIGNAL SIGRTMIN+3\n"
        'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n'
    )


# Debootstrap leaves caches and docs the node does not need.
ROOTFS_CLEANUP = (
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)
