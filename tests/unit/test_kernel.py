"""Kernel support per proxy mode, from config and module lists (this host's real facts too)."""

import doctest
import itertools
from pathlib import Path

import pytest

from kindlab.drivers import kernel
from kindlab.drivers.kernel import (
    KernelFacts,
    check,
    facts_without_probe,
    missing_mount_source,
    module_names,
    parse_kconfig,
    parse_probe,
)
from kindlab.errors import CommandError, ParseError

# Lines from this project's machines' /proc/config.gz (kernel 6.18, no modules).
HOST_CONFIG = """\
# CONFIG_MODULES is not set
CONFIG_NF_TABLES=y
CONFIG_NETFILTER_XT_MATCH_STATISTIC=y
# CONFIG_IP_VS is not set
# CONFIG_DUMMY is not set
"""


def facts(config: str = "", loaded: str = "", loadable: str = "") -> KernelFacts:
    cfg = parse_kconfig(config)
    return KernelFacts(
        release="6.18.44",
        config=cfg,
        loaded=module_names(loaded),
        loadable=module_names(loadable),
        modules_enabled=cfg.get("CONFIG_MODULES", "y") == "y",
    )


def test_this_hosts_kernel_runs_iptables_and_nftables_but_not_ipvs() -> None:
    host = facts(HOST_CONFIG)
    assert check("iptables", host).ok
    assert check("nftables", host).ok
    ipvs = check("ipvs", host)
    assert not ipvs.ok
    assert ipvs.missing == ("CONFIG_IP_VS (ip_vs)", "CONFIG_DUMMY (dummy)")
    assert "lacks CONFIG_IP_VS (ip_vs) and CONFIG_DUMMY (dummy)" in ipvs.reason


@pytest.mark.parametrize(
    ("config", "loaded", "loadable", "ok"),
    [
        ("CONFIG_MODULES=y\nCONFIG_IP_VS=m\nCONFIG_DUMMY=m\n", "", "", True),
        ("CONFIG_MODULES=y\nCONFIG_IP_VS=m\nCONFIG_DUMMY=y\n", "", "kernel/net/x.ko:\n", False),
        (
            "CONFIG_MODULES=y\nCONFIG_IP_VS=m\nCONFIG_DUMMY=m\n",
            "",
            "kernel/net/netfilter/ipvs/ip_vs.ko.xz: a\nkernel/drivers/net/dummy.ko.xz:\n",
            True,
        ),
        ("# CONFIG_MODULES is not set\nCONFIG_IP_VS=m\nCONFIG_DUMMY=y\n", "", "", False),
        ("", "ip_vs 180224 0 - Live 0x0\ndummy 16384 0 - Live 0x0\n", "", True),
        ("CONFIG_IP_VS=y\nCONFIG_DUMMY=y\n", "", "", True),
    ],
)
def test_ipvs_support_table(config: str, loaded: str, loadable: str, ok: bool) -> None:
    assert check("ipvs", facts(config, loaded, loadable)).ok is ok


def test_nothing_known_is_not_a_failure_but_says_so() -> None:
    support = check("ipvs", facts())
    assert support.ok
    assert "could not tell" in support.reason


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown proxy mode"):
        check("userspace", facts())


# -- the Docker host's kernel, through the probe container ------------------------

FIXTURES = Path(__file__).parent.parent / "fixtures" / "kernel"

# What the probe prints for a guest booted from Debian's linux-image-amd64 6.12
# (modules, none loaded yet): the lines below are that package's own, cut to the
# ones that matter.
DEBIAN_PROBE = """\
@@ release
6.12.117+deb13-amd64
@@ /proc/modules
@@ /sys/module
@@ /boot/config-6.12.117+deb13-amd64
CONFIG_MODULES=y
CONFIG_NF_TABLES=m
CONFIG_NETFILTER_XT_MATCH_STATISTIC=m
CONFIG_IP_VS=m
CONFIG_DUMMY=m
@@ /lib/modules/6.12.117+deb13-amd64/modules.dep
kernel/drivers/net/dummy.ko.xz:
kernel/net/netfilter/xt_statistic.ko.xz: kernel/net/netfilter/x_tables.ko.xz
kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz
@@ /lib/modules/6.12.117+deb13-amd64/modules.builtin
kernel/arch/x86/events/amd/amd-uncore.ko
"""


def test_probe_of_this_docker_host_finds_no_ip_vs_and_says_which_kernel() -> None:
    text = (FIXTURES / "6.18.44-fc-v657-docker-probe.out").read_text()
    facts = parse_probe(text, where="Docker host kernel 6.18.44-fc-v657 (checked via container)")
    assert facts.release == "6.18.44-fc-v657"
    assert not facts.modules_enabled and facts.loadable == frozenset()
    assert {"bridge", "nf_conntrack", "vxlan"} <= facts.loaded  # built in, in /sys/module
    assert facts.config["CONFIG_NF_TABLES"] == "y" and facts.config["CONFIG_IP_VS"] == "n"
    assert check("iptables", facts).ok and check("nftables", facts).ok
    ipvs = check("ipvs", facts)
    assert ipvs.missing == ("CONFIG_IP_VS (ip_vs)", "CONFIG_DUMMY (dummy)")
    assert ipvs.reason.startswith(
        "Docker host kernel 6.18.44-fc-v657 (checked via container) lacks CONFIG_IP_VS"
    )


def test_probe_of_a_debian_kernel_reads_boot_config_and_module_lists() -> None:
    facts = parse_probe(DEBIAN_PROBE)
    assert facts.release == "6.12.117+deb13-amd64" and facts.loaded == frozenset()
    assert facts.config["CONFIG_IP_VS"] == "m" and facts.modules_enabled
    assert facts.loadable == {"dummy", "xt_statistic", "ip_vs", "amd_uncore"}
    assert check("ipvs", facts).ok
    assert check("ipvs", facts).reason == "kernel 6.12.117+deb13-amd64 has what ipvs mode needs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "an '@@ release' section"),
        ("@@ /proc/modules\nip_vs 1 0 - Live 0x0\n", "an '@@ release' section"),
        ("@@ release\n\n", "an '@@ release' section"),
        ("sh: 1: uname: not found\n@@ release\n6.1\n", "a section line '@@ <what>' first"),
    ],
)
def test_probe_output_that_cannot_be_read(text: str, expected: str) -> None:
    with pytest.raises(ParseError, match=expected):
        parse_probe(text)


def test_the_examples_in_the_docstrings_run() -> None:
    result = doctest.testmod(kernel)
    assert result.attempted > 0 and result.failed == 0


def test_missing_bind_source_from_dockers_real_error() -> None:
    stderr = (FIXTURES / "docker-run-missing-bind-source.err").read_text()
    assert missing_mount_source(stderr) == "/lib/modules"
    assert missing_mount_source("docker: Error response from daemon: No such image: x") is None


def test_probe_drops_the_mounts_the_docker_host_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no /lib/modules: the probe runs again without that mount."""
    calls: list[list[str]] = []
    refused = (FIXTURES / "docker-run-missing-bind-source.err").read_text()

    def fake_run(argv: list[str], **_: object) -> str:
        calls.append(argv)
        if any("src=/lib/modules," in arg for arg in argv):
            raise CommandError(argv, 125, "", refused)
        return "@@ release\n6.18.44\n"

    monkeypatch.setattr(kernel, "run", fake_run)
    assert kernel.probe_docker_host("kindlab/rootfs:abc") == "@@ release\n6.18.44\n"
    assert len(calls) == 2
    last = calls[-1]
    assert last[:9] == [
        "docker", "run", "--rm", "--privileged", "--network", "none", "--pull", "never", "--name",
    ]  # fmt: skip
    mounts = [arg for prev, arg in itertools.pairwise(last) if prev == "--mount"]
    assert mounts == ["type=bind,src=/boot,dst=/host/boot,readonly"]
    assert last[-3:] == ["kindlab/rootfs:abc", "-c", kernel.PROBE_SCRIPT]


def test_other_probe_failures_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(argv: list[str], **_: object) -> str:
        raise CommandError(argv, 125, "", "docker: Error response from daemon: no such image")

    monkeypatch.setattr(kernel, "run", fake_run)
    with pytest.raises(CommandError, match="exited 125"):
        kernel.probe_docker_host("kindlab/rootfs:abc")


def test_host_support_asks_the_docker_host_once_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    probes: list[str] = []

    def probe(image: str) -> str:
        probes.append(image)
        return (FIXTURES / "6.18.44-fc-v657-docker-probe.out").read_text()

    monkeypatch.setattr(kernel, "probe_image", lambda: "kindlab/rootfs:abc")
    monkeypatch.setattr(kernel, "probe_docker_host", probe)
    kernel.docker_host_facts.cache_clear()
    try:
        ipvs = kernel.host_support("ipvs")
        assert kernel.host_support("iptables").ok
    finally:
        kernel.docker_host_facts.cache_clear()
    assert probes == ["kindlab/rootfs:abc"]
    assert not ipvs.ok
    assert "Docker host kernel 6.18.44-fc-v657 (checked via container) lacks" in ipvs.reason


def test_without_an_image_this_machines_kernel_stands_in_only_if_it_is_dockers() -> None:
    local = facts(HOST_CONFIG)
    same = facts_without_probe("6.18.44", "6.18.44", lambda: local)
    assert same.config == local.config
    assert "of this machine, the release Docker reports" in check("ipvs", same).reason

    def never() -> KernelFacts:
        raise AssertionError("this machine's kernel is not Docker's")

    other = facts_without_probe("6.10.14-linuxkit", "6.18.44", never)
    support = check("ipvs", other)
    assert support.ok and support.missing == ()
    assert support.reason == (
        "could not tell whether Docker host kernel 6.10.14-linuxkit (not checked: no image yet "
        "to run a probe container in, and it is not this machine's kernel 6.18.44) has ip_vs, "
        "dummy"
    )
