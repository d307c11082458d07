"""Kernel support per proxy mode, from config and module lists (this host's real facts too)."""

import pytest

from kindlab.kernel import KernelFacts, check, module_names, parse_kconfig

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
