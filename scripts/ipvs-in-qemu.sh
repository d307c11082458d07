#!/usr/bin/env bash
# Run kindlab's ipvs lab inside a qemu guest whose kernel has IP_VS and dummy.
#
# For hosts whose own kernel lacks IP_VS (kind nodes share the host kernel, so
# kube-proxy's ipvs mode cannot run there). Not used by CI: a tool for users.
#
# What it does (as root, on a Debian host with debootstrap, qemu-system-x86_64,
# e2fsprogs and a Docker engine holding the node image):
#   1. debootstrap a Debian trixie root with linux-image-amd64, systemd,
#      docker.io, python3 + kindlab's dependencies, ipvsadm, kmod, iproute2, curl
#      (cached in the work dir with --keep-rootfs; pip wheels are added with
#      `pip install --target` only if Debian's packages are too old);
#   2. puts into it: `docker save` of the node image, the kind binary, a copy of
#      this checkout and a systemd oneshot unit (kindlab-ipvs-lab.service) that
#      loads the modules, starts Docker, loads the image, runs
#      `pytest labs -m ipvs`, captures the node's ipvsadm/ip/iptables/ping
#      output, writes everything to a second disk and powers off;
#   3. boots it with qemu, software emulation only (-accel tcg -cpu max: KVM
#      hangs on the project's machines), NO network card (-nic none: nothing
#      the guest sends can leave this host), serial console to a log file;
#   4. copies the results disk's contents to --out.
#
# Usage: scripts/ipvs-in-qemu.sh [--node-image TAG] [--kind-bin PATH] [--out DIR]
#          [--workdir DIR] [--mem SIZE] [--smp N] [--timeout SECONDS]
#          [--disk-size SIZE] [--keep-rootfs] [--keep-disks]
#          [--kubelet-runtime-timeout DURATION] [-- PYTEST_ARGS...]
#
# --kubelet-runtime-timeout 15m appends a kubeadm patch (KubeletConfiguration
# runtimeRequestTimeout) to the guest's copy of clusters/ipvs.yaml only. Under
# TCG, containerd unpacking the kube-proxy/kindnet image layers takes longer
# than the kubelet's default 2m CreateContainer deadline, so every retry is cut
# off and the node never becomes Ready (seen 2026-11-27; see
# docs/ipvs-lab-report.md). Off by default; it changes no kube-proxy setting.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

node_image=""
kind_bin="${KINDLAB_KIND_BIN:-$HOME/.cache/kindlab/bin/kind-v0.30.0}"
out="$repo/reports/ipvs-qemu"
workdir="${TMPDIR:-/var/tmp}/kindlab-ipvs-qemu"
mem="10G"
smp="2"
timeout_s="5400"
disk_size="16G"
keep_rootfs=0
keep_disks=0
suite="trixie"
mirror="${KINDLAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
pytest_extra=()
kubelet_timeout=""

die() { printf 'ipvs-in-qemu: %s\n' "$*" >&2; exit 1; }
say() { printf '[%s] ipvs-in-qemu: %s\n' "$(date +%T)" "$*" >&2; }

while (($#)); do
    case "$1" in
        --node-image) node_image=${2:?}; shift 2 ;;
        --kind-bin) kind_bin=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --workdir) workdir=${2:?}; shift 2 ;;
        --mem) mem=${2:?}; shift 2 ;;
        --smp) smp=${2:?}; shift 2 ;;
        --timeout) timeout_s=${2:?}; shift 2 ;;
        --disk-size) disk_size=${2:?}; shift 2 ;;
        --keep-rootfs) keep_rootfs=1; shift ;;
        --keep-disks) keep_disks=1; shift ;;
        --kubelet-runtime-timeout) kubelet_timeout=${2:?}; shift 2 ;;
        --) shift; pytest_extra=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

[[ $(id -u) == 0 ]] || die "must run as root (debootstrap, chroot, mkfs.ext4 -d)"
for tool in debootstrap qemu-system-x86_64 mkfs.ext4 debugfs docker chroot; do
    command -v "$tool" >/dev/null || die "missing $tool"
done
[[ -x $kind_bin ]] || die "kind binary not found: $kind_bin (--kind-bin)"
if [[ -z $node_image ]]; then
    node_image=$(docker images kindlab/node --format '{{.Repository}}:{{.Tag}}' | head -n1)
    [[ -n $node_image ]] || die "no kindlab/node image in Docker (build one: kindlab node-image build)"
fi
docker image inspect "$node_image" >/dev/null 2>&1 || die "node image not in Docker: $node_image"

mkdir -p "$workdir" "$out"
workdir=$(cd "$workdir" && pwd)
out=$(cd "$out" && pwd)
rootfs="$workdir/rootfs"
root_img="$workdir/kindlab-ipvs-root.img"
results_img="$workdir/kindlab-ipvs-results.img"
console_log="$out/console.log"
pidfile="$workdir/kindlab-ipvs-qemu.pid"

cleanup() {
    local rc=$?
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        say "stopping qemu (pid $(cat "$pidfile"))"
        kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    rm -rf "$workdir/payload" "$workdir/rootfs.partial"
    if ((!keep_disks)); then rm -f "$root_img" "$results_img" "$workdir/node-image.tar"; fi
    if ((!keep_rootfs && !keep_disks)); then rm -rf "$rootfs"; rmdir "$workdir" 2>/dev/null || true; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- 1. the guest's root ---------------------------------------------------------
packages=(
    linux-image-amd64 initramfs-tools systemd systemd-sysv udev dbus
    docker.io docker-cli iptables
    python3 python3-pytest python3-yaml python3-docker python3-kubernetes python3-sh
    python3-filelock python3-cffi-backend
    ipvsadm kmod iproute2 curl iputils-ping ca-certificates e2fsprogs procps
)
wanted="$suite ${packages[*]}"
if [[ ! -f $rootfs/.kindlab-rootfs-done || $(cat "$rootfs/.kindlab-rootfs-done") != "$wanted" ]]; then
    rm -rf "$rootfs" "$workdir/rootfs.partial"
    say "debootstrap $suite (about a minute)"
    debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
        "$suite" "$workdir/rootfs.partial" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
        || { tail -n 20 "$workdir/debootstrap.log" >&2; die "debootstrap failed"; }
    mv "$workdir/rootfs.partial" "$rootfs"
    printf '%s\n' "$wanted" >"$rootfs/.kindlab-rootfs-done"
else
    say "reusing $rootfs"
fi

# kindlab's dependencies: Debian's if recent enough, else wheels into /opt/kindlab-py.
check_deps='
import importlib.metadata as m, sys
need = {"pytest": 8, "kubernetes": 29, "docker": 7, "sh": 2, "PyYAML": 6, "filelock": 3}
bad = []
for name, major in need.items():
    try:
        v = m.version(name)
    except m.PackageNotFoundError:
        bad.append(f"{name} missing"); continue
    if int(v.split(".")[0]) < major:
        bad.append(f"{name} {v} < {major}")
    print(f"{name} {v}")
from kubernetes import dynamic
import docker
if not hasattr(dynamic.DynamicClient, "server_side_apply"):
    bad.append("kubernetes: no DynamicClient.server_side_apply")
if not hasattr(docker.APIClient, "exec_create"):
    bad.append("docker: no APIClient.exec_create")
print(*bad, sep="\n")
sys.exit(1 if bad else 0)
'
if ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$rootfs" python3 -c "$check_deps" >"$workdir/deps.txt" 2>&1; then
    say "Debian's Python packages are too old: $(tr '\n' ' ' <"$workdir/deps.txt")"
    pyver=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$rootfs" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    python3 -m pip install --quiet --target "$rootfs/opt/kindlab-py" --python-version "$pyver" \
        --only-binary=:all: --platform manylinux2014_x86_64 \
        'pytest>=8' 'kubernetes>=29' 'docker>=7' 'sh>=2' 'pyyaml>=6' 'filelock>=3.12'
fi
say "guest Python packages: $(tr '\n' ' ' <"$workdir/deps.txt")"

# -- 2. what the guest runs --------------------------------------------------------
kernel=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n1)
initrd="$rootfs/boot/initrd.img-${kernel##*/vmlinuz-}"
[[ -f $initrd ]] || die "no initrd for $kernel"

rm -rf "$rootfs/kindlab"
mkdir -p "$rootfs/kindlab/src" "$rootfs/results"
say "copying the checkout, the kind binary and the node image into the guest root"
tar -C "$repo" --exclude=.git --exclude=.tox --exclude=reports --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
    -cf - . | tar -C "$rootfs/kindlab/src" -xf -
install -m 0755 "$kind_bin" "$rootfs/kindlab/kind"
if [[ -n $kubelet_timeout ]]; then
    [[ $kubelet_timeout =~ ^[0-9]+[smh]$ ]] || die "--kubelet-runtime-timeout: expected e.g. 15m"
    printf '%s\n' "# added by scripts/ipvs-in-qemu.sh for the slow (TCG) guest only" \
        "kubeadmConfigPatches:" "  - |" "    kind: KubeletConfiguration" \
        "    runtimeRequestTimeout: $kubelet_timeout" >>"$rootfs/kindlab/src/clusters/ipvs.yaml"
fi
docker save -o "$rootfs/kindlab/node-image.tar" "$node_image"
printf '%s\n' "$node_image" >"$rootfs/kindlab/node-image"
git -C "$repo" rev-parse HEAD >"$rootfs/kindlab/commit" 2>/dev/null || echo unknown >"$rootfs/kindlab/commit"
# pytest arguments, one per line (argv-safe across the disk).
printf '%s\n' "${pytest_extra[@]}" >"$rootfs/kindlab/pytest-extra-args"

cat >"$rootfs/kindlab/run.sh" <<'GUEST'
#!/bin/bash
# In the guest: load IPVS, start Docker, run the ipvs lab, capture the node, power off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
R=/results
mkdir -p "$R"
mount /dev/vdb "$R" || echo "results disk not mounted; writing to the root disk"
exec > >(tee -a "$R/run.log" >/dev/console) 2>&1
stamp() { printf '%s %s %s\n' "$(date +%s)" "$(cut -d' ' -f1 /proc/uptime)" "$1" | tee -a "$R/timings.txt"; }
run() {  # run NAME CMD...: stdout, stderr and exit code of one command
    local name=$1; shift
    "$@" >"$R/$name.out" 2>"$R/$name.err"; echo $? >"$R/$name.rc"
    printf '%s\n' "$*" >"$R/$name.cmd"
}
stamp unit-start
run uname uname -a
run cmdline cat /proc/cmdline
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh dummy br_netfilter overlay nf_conntrack; do
    modprobe "$m" || echo "modprobe $m failed"
done
run lsmod lsmod
run guest-ip-a ip a
stamp modules-loaded
systemctl start docker.service
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 2; done
run docker-version docker version
docker info >/dev/null 2>&1 || echo "Docker did not come up: see journal.txt"
stamp docker-up
IMAGE=$(cat /kindlab/node-image)
run docker-load docker load -i /kindlab/node-image.tar
stamp docker-loaded
mapfile -t EXTRA < /kindlab/pytest-extra-args
cd /kindlab/src
export PYTHONPATH=/opt/kindlab-py:/kindlab/src KINDLAB_CACHE=/root/.cache/kindlab PYTHONUNBUFFERED=1
python3 -m pytest -p kindlab.plugin labs -m ipvs --node-image "$IMAGE" \
    --kind-bin /kindlab/kind --kindlab-report "$R/lab" --keep-clusters -v \
    -p no:cacheprovider "${EXTRA[@]}" 2>&1 | tee "$R/pytest.log"
echo "${PIPESTATUS[0]}" > "$R/pytest.rc"
stamp pytest-done
NODE=$(docker ps --filter label=io.x-k8s.kind.role=control-plane --format '{{.Names}}' | head -n1)
if [[ -n $NODE ]]; then
    KC=(kubectl --kubeconfig /etc/kubernetes/admin.conf)
    IP=$(docker exec "$NODE" "${KC[@]}" -n kindlab-lab get svc web -o 'jsonpath={.spec.clusterIP}')
    EMPTY=$(docker exec "$NODE" "${KC[@]}" -n kindlab-lab get svc empty -o 'jsonpath={.spec.clusterIP}')
    printf 'node %s\nweb %s\nempty %s\n' "$NODE" "$IP" "$EMPTY" > "$R/cluster.txt"
    mkdir -p "$R/captured"
    python3 /kindlab/src/tests/fixtures/captured/capture.py "$NODE" "$IP" "$R/captured"
    x() { local name=$1; shift; docker exec "$NODE" "$@" >"$R/captured/$name.out" 2>"$R/captured/$name.err"; echo $? >"$R/captured/$name.rc"; }
    x ipvsadm-Ln-stats ipvsadm -Ln --stats
    x ipvsadm-Ln-t-web ipvsadm -Ln -t "$IP:80"
    x ipvsadm-Ln-t-empty ipvsadm -Ln -t "$EMPTY:80"
    x ip-d-link-kube-ipvs0 ip -d link show kube-ipvs0
    x metrics curl -s 127.0.0.1:10249/metrics
    x ipset-list ipset list
    x curl-web curl -s -m 5 "http://$IP:80/hostname"
    x curl-empty curl -sS -m 5 "http://$EMPTY:80/"
    x kubectl-get-all "${KC[@]}" get nodes,pods,svc,endpointslices -A -o wide
    x kube-proxy-logs "${KC[@]}" -n kube-system logs -l k8s-app=kube-proxy --tail=-1
    x kube-proxy-config "${KC[@]}" -n kube-system get cm kube-proxy -o yaml
    x crictl-images crictl images
    x node-uname uname -a
    docker exec "$NODE" "${KC[@]}" version -o yaml > "$R/captured/kubectl-version.out" 2>&1
    stamp captured
else
    echo "no kind node container is running: nothing to capture"
fi
mkdir -p "$R/kindlab-cache"
cp -a /root/.cache/kindlab/. "$R/kindlab-cache/" 2>/dev/null || true
journalctl -b --no-pager > "$R/journal.txt" 2>&1
dmesg > "$R/dmesg.txt" 2>&1
for c in $(docker ps -aq --filter label=io.x-k8s.kind.cluster); do
    /kindlab/kind delete clusters --all >/dev/null 2>&1 || true; break
done
stamp done
sync
umount "$R" 2>/dev/null
echo KINDLAB-GUEST-DONE
systemctl poweroff --force
GUEST
chmod 0755 "$rootfs/kindlab/run.sh"

cat >"$rootfs/etc/systemd/system/kindlab-ipvs-lab.service" <<'UNIT'
[Unit]
Description=kindlab ipvs lab (runs once, then powers off)
After=local-fs.target systemd-udev-settle.service
Wants=systemd-udev-settle.service

[Service]
Type=oneshot
ExecStart=/kindlab/run.sh
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/kindlab-ipvs-lab.service \
    "$rootfs/etc/systemd/system/multi-user.target.wants/kindlab-ipvs-lab.service"
# Docker starts from the unit, after the modules are loaded.
rm -f "$rootfs/etc/systemd/system/multi-user.target.wants/docker.service" \
    "$rootfs/etc/systemd/system/sockets.target.wants/docker.socket"
echo kindlab-ipvs-guest >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 kindlab-ipvs-guest\n::1 localhost\n' >"$rootfs/etc/hosts"
printf '/dev/vda / ext4 rw 0 1\n' >"$rootfs/etc/fstab"

# -- 3. disks and boot ----------------------------------------------------------------
rm -f "$root_img" "$results_img"
say "making the root disk ($disk_size, ext4 from the root directory)"
mkfs.ext4 -q -F -L kindlab-root -d "$rootfs" "$root_img" "$disk_size"
rm -f "$rootfs/kindlab/node-image.tar"   # the copy lives in the disk image now
mkfs.ext4 -q -F -L kindlab-results "$results_img" 1G

say "booting $(basename "$kernel") under qemu (tcg, -cpu max, -smp $smp, -m $mem, no NIC); console: $console_log"
started=$(date +%s)
: >"$console_log"
timeout --foreground -k 30 "$timeout_s" qemu-system-x86_64 \
    -name kindlab-ipvs-qemu -accel tcg -cpu max -smp "$smp" -m "$mem" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "root=/dev/vda rw console=ttyS0 panic=10 systemd.show_status=1" \
    -drive "file=$root_img,format=raw,if=virtio" \
    -drive "file=$results_img,format=raw,if=virtio" \
    -nic none -display none -monitor none -serial "file:$console_log" \
    -no-reboot -pidfile "$pidfile" || say "qemu exited with status $? (124: --timeout reached)"
say "guest ran $(($(date +%s) - started)) s"

# -- 4. results ---------------------------------------------------------------------
rm -rf "$out/results"
mkdir -p "$out/results"
debugfs -R "rdump / $out/results" "$results_img" >/dev/null 2>&1 || die "cannot read the results disk"
rm -rf "$out/results/lost+found"
say "results in $out/results (lab report: $out/results/lab.md)"
grep -q KINDLAB-GUEST-DONE "$console_log" || say "the guest did not finish its run: see $console_log"
