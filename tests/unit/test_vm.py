"""The VM backend's own logic, with no qemu: command lines, cache keys, the KVM
probe's fallback, events, and where the ipvs checks run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kindlab.drivers.vm import disk, guest, qemu, run
from kindlab.drivers.vm.choice import decide
from kindlab.drivers.vm.events import Event, EventReader
from kindlab.pytest_plugin import vm as plugin_vm

CAPTURED = Path(__file__).resolve().parents[1] / "fixtures" / "captured"


def _spec(tmp_path: Path, accel: qemu.Accel) -> qemu.GuestSpec:
    return qemu.GuestSpec(
        kernel=tmp_path / "vmlinuz",
        initrd=tmp_path / "initrd",
        root_disk=tmp_path / "root.qcow2",
        payload_disk=tmp_path / "payload.raw",
        events=tmp_path / "events.jsonl",
        artifacts=tmp_path / "artifacts.tar",
        console=tmp_path / "console.log",
        pidfile=tmp_path / "qemu.pid",
        accel=accel,
    )


def _option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_the_guest_has_no_network_card_and_two_host_only_ports(tmp_path: Path) -> None:
    argv = qemu.qemu_argv(_spec(tmp_path, qemu.Accel("tcg", "")))
    assert _option(argv, "-nic") == ["none"]
    assert not any(a.startswith(("-netdev", "user,", "tap,")) for a in argv)
    ports = [a for a in _option(argv, "-device") if a.startswith("virtserialport")]
    assert ports == [
        f"virtserialport,chardev=events,name={guest.EVENTS_PORT}",
        f"virtserialport,chardev=artifacts,name={guest.ARTIFACTS_PORT}",
    ]
    chardevs = _option(argv, "-chardev")
    assert f"file,id=events,path={tmp_path / 'events.jsonl'}" in chardevs
    assert _option(argv, "-serial") == [f"file:{tmp_path / 'console.log'}"]


def test_the_root_disk_is_an_overlay_and_the_payload_is_read_only(tmp_path: Path) -> None:
    drives = _option(qemu.qemu_argv(_spec(tmp_path, qemu.Accel("tcg", ""))), "-drive")
    assert drives[0].startswith(f"file={tmp_path / 'root.qcow2'},format=qcow2,")
    assert drives[1] == f"file={tmp_path / 'payload.raw'},format=raw,if=virtio,readonly=on"


@pytest.mark.parametrize(
    ("accel", "expected"),
    [
        (qemu.Accel("tcg", ""), ["-accel", "tcg,thread=multi", "-cpu", "max"]),
        (qemu.Accel("kvm", ""), ["-accel", "kvm", "-cpu", "host"]),
    ],
)
def test_accelerator_arguments(tmp_path: Path, accel: qemu.Accel, expected: list[str]) -> None:
    argv = qemu.qemu_argv(_spec(tmp_path, accel))
    start = argv.index("-accel")
    assert argv[start : start + 4] == expected


def test_forced_accelerators_do_not_probe(tmp_path: Path) -> None:
    missing_qemu = str(tmp_path / "no-such-qemu")
    assert qemu.choose_accel(tmp_path, mode="tcg", qemu=missing_qemu).name == "tcg"
    assert qemu.choose_accel(tmp_path, mode="kvm", qemu=missing_qemu).name == "kvm"


def test_kvm_precheck_names_what_is_missing(tmp_path: Path) -> None:
    assert qemu.kvm_precheck(tmp_path / "kvm") == f"{tmp_path / 'kvm'} does not exist"


def _fake_qemu(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-qemu"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_probe_falls_back_to_tcg_when_kvm_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qemu, "kvm_precheck", lambda: None)
    monkeypatch.setattr(qemu, "PROBE_SECONDS", 1.0)
    silent = _fake_qemu(tmp_path, "sleep 30\n")  # a guest that hangs before its banner
    accel = qemu.choose_accel(tmp_path / "vmlinuz", qemu=silent)
    assert accel.name == "tcg"
    assert "printed nothing in 1s under KVM" in accel.reason


def test_probe_keeps_kvm_when_the_kernel_prints_its_banner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qemu, "kvm_precheck", lambda: None)
    # the fake writes the banner to the file named by "-serial file:PATH"
    body = (
        'while [ $# -gt 0 ]; do [ "$1" = -serial ] && out=${2#file:}; shift; done\n'
        'echo "Linux version 6.12.0 (fake)" > "$out"; sleep 30\n'
    )
    accel = qemu.choose_accel(tmp_path / "vmlinuz", qemu=_fake_qemu(tmp_path, body))
    assert accel.name == "kvm", accel.reason


def test_probe_reports_a_qemu_that_exits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qemu, "kvm_precheck", lambda: None)
    failing = _fake_qemu(tmp_path, "echo 'Could not access KVM kernel module' >&2; exit 1\n")
    accel = qemu.choose_accel(tmp_path / "vmlinuz", qemu=failing)
    assert accel.name == "tcg"
    assert "qemu exited 1" in accel.reason and "KVM kernel module" in accel.reason


def test_pvm_hint(tmp_path: Path) -> None:
    assert qemu.pvm_hint(tmp_path) == ""
    (tmp_path / "kvm_pvm").mkdir()
    assert "PVM" in qemu.pvm_hint(tmp_path)


# -- cache keys -------------------------------------------------------------------


def test_disk_key_follows_every_input() -> None:
    files = guest.root_files()
    base = disk.disk_key("r", "d", "k", files)
    assert base == disk.disk_key("r", "d", "k", dict(files))
    assert base != disk.disk_key("r2", "d", "k", files)
    assert base != disk.disk_key("r", "d2", "k", files)
    assert base != disk.disk_key("r", "d", "k2", files)
    changed = {**files, guest.RUN_SCRIPT: (files[guest.RUN_SCRIPT][0] + "# x\n", 0o755)}
    assert base != disk.disk_key("r", "d", "k", changed)


def test_docker_data_key_follows_the_node_image() -> None:
    assert disk.docker_key("r", "sha256:a") != disk.docker_key("r", "sha256:b")
    assert disk.docker_key("r", "sha256:a") != disk.docker_key("r2", "sha256:a")


def test_rootfs_key_ignores_package_order() -> None:
    pkgs = list(guest.GUEST_PACKAGES)
    assert disk.rootfs_key(packages=pkgs) == disk.rootfs_key(packages=reversed(pkgs))
    assert disk.rootfs_key(packages=pkgs) != disk.rootfs_key(packages=[*pkgs, "vim"])


def test_kernel_files_picks_the_newest_kernel(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    for release in ("6.1.0-9-amd64", "6.12.57+deb13-amd64"):
        (boot / f"vmlinuz-{release}").touch()
        (boot / f"initrd.img-{release}").touch()
    kernel, initrd, release = disk.kernel_files(tmp_path)
    assert kernel == boot / "vmlinuz-6.12.57+deb13-amd64"
    assert release == "6.12.57+deb13-amd64"
    assert initrd == boot / "initrd.img-6.12.57+deb13-amd64"


# -- the guest's script and events ----------------------------------------------------


def test_guest_script_loads_ipvs_and_dummy_before_docker() -> None:
    script = guest.run_script()
    assert script.index('modprobe "$m"') < script.index("systemctl start docker.service")
    assert "ip_vs" in script and "dummy" in script
    assert 'export KINDLAB_EVENTS="$EV"' in script
    assert "poweroff" in script


def test_guest_script_holds_the_netstamp_key_on_before_docker_starts() -> None:
    script = guest.run_script()
    holder = script.index(guest.NETSTAMP_HOLDER)
    assert holder < script.index("systemctl start docker.service")
    assert script[holder + len(guest.NETSTAMP_HOLDER) :].startswith("' || emit warning")
    assert "setsockopt(socket.SOL_SOCKET, 29, 1)" in guest.NETSTAMP_HOLDER  # SO_TIMESTAMP


def test_the_netstamp_holder_sets_so_timestamp_and_stays() -> None:
    code = guest.NETSTAMP_HOLDER.replace("signal.pause()", "print(s.getsockopt(1, 29))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "1\n"
    assert guest.NETSTAMP_HOLDER.endswith("signal.pause()")


def test_a_guest_kernel_crash_is_named_from_its_console() -> None:
    console = (CAPTURED / "v1.34.4-ipvs-tcg-int3" / "console.log").read_text()
    assert run.kernel_crash(console) == (
        "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI; RIP: 0010:netif_rx_internal+0x1c/0x110; "
        "Kernel panic - not syncing: Fatal exception in interrupt"
    )
    assert run.kernel_crash("[   34.6] kindlab-guest: booted 6.12 (uptime 34.6 s)") is None


def test_guest_script_is_valid_bash(tmp_path: Path) -> None:
    path = tmp_path / "guest-run"
    path.write_text(guest.run_script())
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_agent_runs_commands_and_reports_failures() -> None:
    from kindlab.drivers.vm import agent

    ok = agent.handle({"id": 7, "argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
    assert ok == {"id": 7, "exit": 3, "stdout": "out\n", "stderr": "err\n"}
    assert agent.handle({"id": 8, "argv": ["no-such-command-x"]})["exit"] == 127
    assert agent.handle({"id": 9, "argv": "ls"})["exit"] == 2
    slow = agent.handle({"id": 10, "argv": ["sleep", "5"], "timeout": 0.2})
    assert slow["exit"] == 124


def test_event_reader_returns_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert reader.poll() == []  # not there yet
    path.write_text('{"event": "stage", "stage": "booted", "detail": "6.12", "uptime": 3.5}\n{"ev')
    first = reader.poll()
    assert [e.kind for e in first] == ["stage"]
    assert first[0].describe() == "guest booted: 6.12 (uptime 4s)"
    with path.open("a") as f:
        f.write('ent": "progress", "message": "cluster ready"}\nnot json\n')
    second = reader.poll()
    assert [e.kind for e in second] == ["progress", "noise"]
    assert second[0].describe() == "guest: cluster ready"
    assert len(reader.seen) == 3


def test_event_parse_rejects_objects_without_an_event_name() -> None:
    assert Event.parse(json.dumps({"stage": "x"})).kind == "noise"
    assert Event.parse("[1, 2]").kind == "noise"


# -- where the ipvs checks run ------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "kernel_ok", "qemu_path", "use_vm", "skips", "fails"),
    [
        ("auto", True, "/usr/bin/qemu", False, False, False),
        ("auto", False, "/usr/bin/qemu", True, False, False),
        ("auto", False, None, False, True, False),
        ("never", False, "/usr/bin/qemu", False, False, False),
        ("always", True, "/usr/bin/qemu", True, False, False),
        ("always", True, None, False, False, True),
    ],
)
def test_decide(
    option: str, kernel_ok: bool, qemu_path: str | None, use_vm: bool, skips: bool, fails: bool
) -> None:
    d = decide(option, kernel_ok, "kernel 6.18 lacks CONFIG_IP_VS", qemu_path)
    assert (d.use_vm, d.skip_reason is not None, d.error is not None) == (use_vm, skips, fails)
    if skips:
        assert "kernel 6.18 lacks CONFIG_IP_VS" in (d.skip_reason or "")
        assert "qemu-system-x86" in (d.skip_reason or "")


def test_decide_under_xdist_skips_with_how_to_run_it() -> None:
    d = decide("auto", False, "no ip_vs", "/usr/bin/qemu", xdist=True)
    assert not d.use_vm and "without -n" in (d.skip_reason or "")


def test_decide_rejects_unknown_options() -> None:
    with pytest.raises(ValueError, match="--ipvs-vm"):
        decide("sometimes", False, "", None)


def test_guest_args_run_exactly_the_items_with_the_host_image() -> None:
    args = plugin_vm.guest_args(["labs/test_ipvs.py::test_a", "labs/x.py::t[ipvs]"], "img:1")
    assert args[:5] == [
        "python3",
        "-m",
        "pytest",
        "labs/test_ipvs.py::test_a",
        "labs/x.py::t[ipvs]",
    ]
    assert args[args.index("--node-image") + 1] == "img:1"
    assert args[args.index("--ipvs-vm") + 1] == "never"  # no VM inside the VM
    assert args[args.index("--kind-bin") + 1] == guest.KIND_PATH


def test_prune_keeps_only_what_is_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path))
    vm = disk.vm_dir()
    for name in ("rootfs-aaa", "docker-old", "docker-new", "rootfs-partial-x", "runs"):
        (vm / name).mkdir()
    for name in ("disk-old.raw", "disk-old.json", "disk-new.raw", "disk-new.json"):
        (vm / name).touch()
    keep = (vm / "disk-new.raw", vm / "disk-new.json", vm / "docker-new", vm / "rootfs-aaa")
    (vm / "rootfs-old").mkdir()
    removed = {p.name for p in disk.prune(keep=keep)}
    assert removed == {
        "docker-old",
        "disk-old.raw",
        "disk-old.json",
        "rootfs-partial-x",
        "rootfs-old",
    }
    assert sorted(p.name for p in vm.iterdir()) == [
        "disk-new.json",
        "disk-new.raw",
        "docker-new",
        "rootfs-aaa",
        "runs",
    ]


def test_the_guest_config_trims_the_control_plane_and_keeps_the_rest() -> None:
    from kindlab.drivers.kind import parse_cluster_config
    from kindlab.drivers.vm import tuning
    from kindlab.paths import clusters_dir

    original = (clusters_dir() / "ipvs.yaml").read_text()
    trimmed = tuning.trimmed_config(original)
    cfg = parse_cluster_config(trimmed)
    assert (cfg.proxy_mode, cfg.service_subnet) == ("ipvs", "10.96.0.0/12")
    patches = yaml.safe_load(trimmed)["kubeadmConfigPatches"]
    assert patches[:-2] == yaml.safe_load(original)["kubeadmConfigPatches"]
    args = yaml.safe_load(patches[-2])["controllerManager"]["extraArgs"]
    wanted = args["controllers"].split(",")
    assert wanted[0] == "*" and "-garbage-collector-controller" in wanted
    # what the lab's objects need stays on
    for needed in ("endpointslice", "daemonset", "deployment", "replicaset", "node-ipam"):
        assert not [c for c in wanted if c.startswith(f"-{needed}")], needed
    # etcd's request limit is 5 s plus two election timeouts: 25 s in the guest
    etcd = yaml.safe_load(patches[-2])["etcd"]["local"]["extraArgs"]
    assert 5 + 2 * int(etcd["election-timeout"]) / 1000 >= 25


def test_under_tcg_the_payload_replaces_the_kind_configs() -> None:
    from kindlab.drivers import vm

    tcg = vm.payload_files(qemu.Accel("tcg", ""))
    assert tcg["timeout-scale"] == str(vm.TCG_TIMEOUT_SCALE)
    assert "controllers:" in tcg["src/clusters/ipvs.yaml"]
    assert vm.payload_files(qemu.Accel("kvm", "")) == {"timeout-scale": "1"}


def test_the_guest_config_mounts_its_probe_patches_and_storage_into_the_node() -> None:
    from kindlab.drivers import vm
    from kindlab.drivers.vm import tuning
    from kindlab.paths import clusters_dir

    trimmed = yaml.safe_load(tuning.trimmed_config((clusters_dir() / "ipvs.yaml").read_text()))
    init = yaml.safe_load(trimmed["kubeadmConfigPatches"][-1])
    assert init == {"kind": "InitConfiguration", "patches": {"directory": tuning.NODE_PATCHES}}
    mounts = {m["containerPath"]: m["hostPath"] for m in trimmed["nodes"][0]["extraMounts"]}
    files = tuning.guest_files()
    payload = vm.payload_files(qemu.Accel("tcg", ""))
    # every mount points at a file or directory that the payload carries
    for container_path, host_path in mounts.items():
        rel = tuning.GUEST_FILES_DIR + host_path.removeprefix(tuning.GUEST_FILES)
        assert any(f == rel or f.startswith(f"{rel}/") for f in files), container_path
        assert any(f"src/{f}" in payload for f in files if f.startswith(rel))
    assert mounts[tuning.NODE_PATCHES].endswith("/patches")


def test_the_probe_patches_relax_only_probes_kubeadm_sets() -> None:
    from kindlab.drivers.vm import tuning

    patches = {
        path.rsplit("/", 1)[1]: yaml.safe_load(text)
        for path, text in tuning.guest_files().items()
        if "/patches/" in path
    }
    assert sorted(patches) == [
        "etcd+strategic.yaml",
        "kube-apiserver+strategic.yaml",
        "kube-controller-manager+strategic.yaml",
        "kube-scheduler+strategic.yaml",
    ]
    for name, patch in patches.items():
        (container,) = patch["spec"]["containers"]
        assert container["name"] == name.split("+")[0]
        # a probe without a handler is invalid: only the apiserver has a readiness probe
        has_readiness = "readinessProbe" in container
        assert has_readiness == (container["name"] == "kube-apiserver")
        assert container["livenessProbe"]["timeoutSeconds"] > 15  # kubeadm's


def test_settle_gives_kube_proxy_a_cpu_request_and_coredns_one_patient_replica() -> None:
    from kindlab.drivers.vm import tuning

    applied: list[dict[str, object]] = []
    waited: list[tuple[str, str]] = []

    class _Kube:
        def apply(self, docs: list[dict[str, object]]) -> None:
            applied.extend(docs)

        def wait_daemonset_rolled_out(self, ns: str, name: str, timeout: float) -> None:
            assert applied, "waited before applying"
            waited.append((ns, name))

    tuning.settle(_Kube())  # type: ignore[arg-type]
    proxy, dns = applied
    assert dns["metadata"] == {"name": "coredns", "namespace": "kube-system"}
    assert proxy["metadata"] == {"name": "kube-proxy", "namespace": "kube-system"}
    assert waited == [("kube-system", "kube-proxy")]
    (kp,) = tuning.KUBE_PROXY_SETTLED["spec"]["template"]["spec"]["containers"]
    assert kp["resources"]["requests"]["cpu"] == tuning.KUBE_PROXY_CPU_REQUEST
    spec = tuning.COREDNS_SETTLED["spec"]
    assert spec["replicas"] == 1
    (container,) = spec["template"]["spec"]["containers"]
    assert container["readinessProbe"]["timeoutSeconds"] > 1  # kind's CoreDNS: 1 s
