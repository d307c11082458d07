"""What runs inside the guest: its Debian packages, its one systemd unit and script.

Pure text and data; the disk builder puts them into the guest's root. The guest
boots, mounts the run's payload disk (``/dev/vdb``: kindlab's sources, the test
files and the pytest arguments), loads IP_VS and dummy, starts Docker (whose data
root already holds the node image), runs pytest, sends a tar of its results and
logs down a second virtio-serial port, and powers off.

Two host-only channels, no network card: ``kindlab.events`` carries JSON lines
(stages, progress, each test report) while the guest runs, ``kindlab.artifacts``
carries the final tar.
"""

from __future__ import annotations

#: Debian suite of the guest: its kernel (6.12) has IP_VS and dummy as modules.
GUEST_SUITE = "trixie"

#: The guest's packages. Python libraries come from Debian (kindlab needs pytest,
#: kubernetes, docker, sh, PyYAML and filelock; trixie's are recent enough).
GUEST_PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "dbus",
    "docker-cli",
    "docker.io",
    "initramfs-tools",
    "iproute2",
    "iptables",
    "ipvsadm",
    "kmod",
    "linux-image-amd64",
    "procps",
    "python3",
    # python3-cryptography (under python3-kubernetes) needs it through a virtual
    # package, which debootstrap does not resolve
    "python3-cffi-backend",
    "python3-docker",
    "python3-filelock",
    "python3-kubernetes",
    "python3-pytest",
    "python3-yaml",
    "systemd",
    "systemd-sysv",
    "udev",
)

# Why the guest holds a timestamping socket (NETSTAMP_HOLDER), from before Docker starts
# to power-off: `ping` asks for receive timestamps (SO_TIMESTAMP), and the first such
# socket turns on the kernel's netstamp static key, the last one closed turns it off.
# Each turn rewrites the kernel's text at every site of the key (netif_rx_internal
# among them), through an int3 breakpoint that the other CPUs must never meet once the
# rewrite is done. Under qemu's multi-threaded TCG one did: "Oops: int3" at
# netif_rx_internal+0x1c, the loopback's softirq on the other vCPU, and a kernel panic,
# during claim 8's ping (the bench run begun 2026-11-28 22:50 UTC, after five green runs).
# With one socket holding the key on from a quiet moment at boot, a ping only counts
# up and down and no text changes while the lab runs. Native kernels are not affected.

#: Kernel modules kube-proxy's ipvs mode and kind need, loaded before Docker starts.
GUEST_MODULES = (
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_sh",
    "dummy",
    "br_netfilter",
    "overlay",
    "nf_conntrack",
    "xt_statistic",
)

EVENTS_PORT = "kindlab.events"
ARTIFACTS_PORT = "kindlab.artifacts"
CONTROL_PORT = "kindlab.control"  # a kept guest's command agent (AGENT)

#: Where the payload disk is mounted in the guest, and what it holds.
PAYLOAD_MOUNT = "/kindlab"
PAYLOAD_SRC = f"{PAYLOAD_MOUNT}/src"  # rootdir of the test run; kindlab/ inside it
PAYLOAD_COMMAND = f"{PAYLOAD_MOUNT}/command"  # what to run, one argument per line
PAYLOAD_HOLD = f"{PAYLOAD_MOUNT}/hold"  # present: stay up for the agent afterwards
#: The command agent of a kept guest (:mod:`kindlab.drivers.vm.agent`), from the payload.
AGENT = f"{PAYLOAD_SRC}/kindlab/drivers/vm/agent.py"
#: Set in the guest to the payload's ``tuning`` ("tcg" under emulation): the cluster
#: fixture then settles the new cluster (:func:`kindlab.drivers.vm.tuning.settle`).
TUNING_ENV = "KINDLAB_GUEST_TUNING"
RESULTS_DIR = "/results"
KIND_PATH = "/usr/local/bin/kind"
RUN_SCRIPT = "/usr/local/lib/kindlab/guest-run"
UNIT_NAME = "kindlab-guest.service"


#: Holds one socket with SO_TIMESTAMP open for the guest's life (no output, no exit).
NETSTAMP_HOLDER = (  # 29: SO_TIMESTAMP on Linux; Python's socket module does not name it
    "import signal, socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "s.setsockopt(socket.SOL_SOCKET, 29, 1); signal.pause()"
)
#: Why (one comment line in the script; the long form is in docs/ipvs-lab-report.md).
NETSTAMP_WHY = (
    "the netstamp static key on for good: ping (SO_TIMESTAMP) must not patch kernel text under TCG"
)


def run_script() -> str:
    """The guest's one job, from boot to power-off (bash)."""
    modules = " ".join(GUEST_MODULES)
    return rf"""#!/bin/bash
# kindlab guest: run the payload's pytest, stream events, send results, power off.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
R={RESULTS_DIR}
mkdir -p "$R" {PAYLOAD_MOUNT}
exec > >(tee -a "$R/guest-run.log" >/dev/console) 2>&1
modprobe virtio_console  # the events and artifacts ports, without waiting for udev

port() {{  # the device of a named virtio-serial port, with or without udev's symlink
  [ -e "/dev/virtio-ports/$1" ] && {{ echo "/dev/virtio-ports/$1"; return; }}
  for f in /sys/class/virtio-ports/*/name; do
    [ "$(cat "$f" 2>/dev/null)" = "$1" ] && {{ echo "/dev/$(basename "$(dirname "$f")")"; return; }}
  done
  echo /dev/null
}}
EV=$(port {EVENTS_PORT})
emit() {{  # emit STAGE [DETAIL]: one JSON line on the events port (no Python: seconds under TCG)
  local up detail
  up=$(cut -d' ' -f1 /proc/uptime)
  detail=$(printf '%s' "${{2:-}}" | tr '\n\t' '  ' | tr -d '"\\\000-\037')
  printf '{{"event": "stage", "stage": "%s", "detail": "%s", "uptime": %s}}\n' \
    "$1" "$detail" "$up" >>"$EV"
  echo "kindlab-guest: $1 $detail (uptime $up s)"
}}
finish() {{
  emit finished "$1"
  local node
  node=$(docker ps --filter label=io.x-k8s.kind.role=control-plane \
    --format '{{{{.Names}}}}' | head -n1)
  if [ -n "$node" ]; then  # kube-proxy's own word, for the record
    local kc="kubectl --kubeconfig /etc/kubernetes/admin.conf"
    docker exec "$node" curl -s 127.0.0.1:10249/metrics >"$R/kube-proxy-metrics.txt" 2>&1
    docker exec "$node" ipvsadm -Ln >"$R/ipvsadm-Ln.txt" 2>&1
    docker exec "$node" $kc -n kube-system logs -l k8s-app=kube-proxy --tail=-1 \
      >"$R/kube-proxy.log" 2>&1
    docker exec "$node" $kc get nodes,pods,svc,endpointslices -A -o wide >"$R/kubectl-get.txt" 2>&1
    if [ "$1" != 0 ]; then
      kind export logs "$R/kind-logs" --name "${{node%-control-plane}}" >/dev/null 2>&1
    fi
  fi
  journalctl -b --no-pager >"$R/journal.txt" 2>&1
  dmesg >"$R/dmesg.txt" 2>&1
  tar -C "$R" -cf "$(port {ARTIFACTS_PORT})" . || echo "could not send the results"
  sync
  systemctl poweroff --force --force
}}

emit booted "$(uname -r)"
mount -o ro /dev/vdb {PAYLOAD_MOUNT} || {{ emit error "no payload disk"; finish 3; }}
for m in {modules}; do modprobe "$m" || emit warning "modprobe $m failed"; done
# {NETSTAMP_WHY}
(python3 -c '{NETSTAMP_HOLDER}' || emit warning "the netstamp holder exited") &
emit modules "$(lsmod | awk 'NR>1 {{print $1}}' | grep -E '^(ip_vs|dummy)$' | tr '\n' ' ')"
systemctl start docker.service
for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null 2>&1 || {{ emit error "Docker did not start"; finish 3; }}
emit docker "$(docker version --format '{{{{.Server.Version}}}}')"
if [ ! -e {PAYLOAD_HOLD} ]; then  # a look inside while tests run: `kindlab vm exec`
  python3 {AGENT} "$(port {CONTROL_PORT})" &
fi
mapfile -t CMD < {PAYLOAD_COMMAND}
cd {PAYLOAD_SRC}
export KINDLAB_TIMEOUT_SCALE=$(cat {PAYLOAD_MOUNT}/timeout-scale 2>/dev/null || echo 1)
export {TUNING_ENV}=$(cat {PAYLOAD_MOUNT}/tuning 2>/dev/null)  # tcg: see vm/tuning.py
export PYTHONPATH={PAYLOAD_SRC} PYTHONUNBUFFERED=1 KINDLAB_CACHE=/root/.cache/kindlab
export KINDLAB_EVENTS="$EV"  # kindlab's progress and test reports go to the host
"${{CMD[@]}}" 2>&1 | tee "$R/command.log"
rc=${{PIPESTATUS[0]}}
if [ -e {PAYLOAD_HOLD} ] && [ "$rc" = 0 ]; then
  emit ready
  unset KINDLAB_EVENTS  # the agent's commands answer on the control port
  python3 {AGENT} "$(port {CONTROL_PORT})"
fi
finish "$rc"
"""


def unit() -> str:
    """The systemd unit that runs :func:`run_script` once the guest is up."""
    return f"""[Unit]
Description=kindlab: run the payload's tests, then power off
After=local-fs.target

[Service]
Type=oneshot
ExecStart={RUN_SCRIPT}
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""


#: Small files of the guest's root: path -> (content, mode).
def root_files() -> dict[str, tuple[str, int]]:
    return {
        RUN_SCRIPT: (run_script(), 0o755),
        f"/etc/systemd/system/{UNIT_NAME}": (unit(), 0o644),
        "/etc/hostname": ("kindlab-guest\n", 0o644),
        "/etc/hosts": ("127.0.0.1 localhost\n127.0.1.1 kindlab-guest\n::1 localhost\n", 0o644),
        "/etc/fstab": ("/dev/vda / ext4 rw,noatime 0 1\n", 0o644),
        # Docker starts from the script, after the modules are loaded.
        "/etc/docker/daemon.json": ('{"log-driver": "local"}\n', 0o644),
    }


#: Symlinks of the guest's root: path -> target.
def root_links() -> dict[str, str]:
    return {
        f"/etc/systemd/system/multi-user.target.wants/{UNIT_NAME}": (
            f"/etc/systemd/system/{UNIT_NAME}"
        ),
        # nothing waits for a network that the guest does not have
        "/etc/systemd/system/systemd-networkd-wait-online.service": "/dev/null",
        "/etc/systemd/system/getty@tty1.service": "/dev/null",
        "/etc/systemd/system/serial-getty@ttyS0.service": "/dev/null",
        # waiting for udev to settle took minutes under emulation; nothing here needs
        # it (the script loads its modules and finds its ports itself)
        "/etc/systemd/system/systemd-udev-settle.service": "/dev/null",
    }


#: Enabled units of the guest that must not start on their own.
DISABLED_LINKS = (
    "/etc/systemd/system/multi-user.target.wants/docker.service",
    "/etc/systemd/system/sockets.target.wants/docker.socket",
)
