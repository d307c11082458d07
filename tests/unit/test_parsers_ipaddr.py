"""ip address parser: real ``ip a`` / ``ip -j addr`` captures, edge cases, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.ipaddr import Address, Link, parse_ip_addr, parse_ip_addr_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ip"


def load(name: str) -> str:
    return (FIXTURES / f"{name}.out").read_text()


# --- real captured output -----------------------------------------------------

# fixture -> (link names in order, {link: [cidr, ...]})
EXPECTED = {
    "addr-bridge-veth": (
        ["lo", "kl-br0", "veth-b", "veth-a", "kl-down", "eth0"],
        {
            "lo": ["127.0.0.1/8", "10.96.0.10/32", "::1/128"],
            "kl-br0": [
                "10.244.0.1/24",
                "10.244.0.7/32",
                "fd00:10:244::1/64",
                "fe80::c33:d2ff:feaf:d743/64",
            ],
            "veth-b": ["10.250.0.1/32", "fe80::e898:44ff:fe8d:9dab/64"],
            "veth-a": ["fe80::c33:d2ff:feaf:d743/64"],
            "kl-down": [],
            "eth0": ["172.17.0.2/16", "fe80::42:acff:fe11:2/64"],
        },
    ),
    "addr-plain": (["lo", "eth0"], {"lo": ["127.0.0.1/8"], "eth0": ["172.18.0.2/16"]}),
    "addr-network-none": (["lo"], {"lo": ["127.0.0.1/8"]}),
    "addr-show-dev-lo": (["lo"], {"lo": ["127.0.0.1/8", "10.96.0.10/32", "::1/128"]}),
    "addr-kube-ipvs0": (
        ["lo", "kube-ipvs0"],
        {
            "lo": ["127.0.0.1/8", "::1/128"],
            "kube-ipvs0": ["10.96.0.1/32", "10.96.0.10/32", "10.96.0.20/32", "10.96.100.5/32"],
        },
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_text_capture(name: str) -> None:
    names, cidrs = EXPECTED[name]
    addrs = parse_ip_addr(load(name))
    assert [link.name for link in addrs] == names
    assert {link.name: [a.cidr for a in link.addresses] for link in addrs} == cidrs


@pytest.mark.parametrize("name", ["addr-bridge-veth", "addr-plain", "addr-kube-ipvs0"])
def test_text_and_json_of_the_same_state_parse_equal(name: str) -> None:
    text = parse_ip_addr(load(name))
    from_json = parse_ip_addr_json(load(f"{name}-json"))
    # raw differs by design (lines vs JSON); equality ignores it.
    assert text == from_json


def test_bridge_veth_links_in_full() -> None:
    addrs = parse_ip_addr(load("addr-bridge-veth"))
    assert addrs.link("veth-b") == Link(
        index=3,
        name="veth-b",
        link="veth-a",
        flags=("BROADCAST", "MULTICAST", "UP", "LOWER_UP"),
        mtu=1500,
        qdisc="noqueue",
        state="UP",
        group="default",
        qlen=1000,
        link_type="ether",
        mac="ea:98:44:8d:9d:ab",
        brd="ff:ff:ff:ff:ff:ff",
        addresses=(
            Address(
                family="inet",
                local="10.250.0.1",
                prefixlen=32,
                peer="10.250.0.2",
                scope="global",
                label="veth-b",
            ),
            Address(
                family="inet6",
                local="fe80::e898:44ff:fe8d:9dab",
                prefixlen=64,
                scope="link",
                protocol="kernel_ll",
            ),
        ),
    )
    veth_a = addrs.link("veth-a")
    assert veth_a.master == "kl-br0"
    eth0 = addrs.link("eth0")
    assert (eth0.link, eth0.link_netnsid, eth0.qlen) == ("if9", 0, None)
    assert eth0.inet()[0].broadcast == "172.17.255.255"
    down = addrs.link("kl-down")
    assert (down.is_up, down.lower_up, down.state, down.qdisc) == (False, False, "DOWN", "noop")
    lo = addrs.link("lo")
    assert (lo.link_type, lo.is_up, lo.lower_up) == ("loopback", True, True)


def test_label_with_colon_and_lifetimes() -> None:
    br = parse_ip_addr(load("addr-bridge-veth")).link("kl-br0")
    labels = [a.label for a in br.inet()]
    assert labels == ["kl-br0", "kl-br0:svc"]
    assert all(a.label is None for a in br.inet6())
    assert all(a.valid_lft is None and a.preferred_lft is None for a in br.addresses)


def test_raw_lines_are_kept() -> None:
    addrs = parse_ip_addr(load("addr-show-dev-lo"))
    lo = addrs.link("lo")
    assert lo.raw[0].startswith("1: lo: <LOOPBACK,UP,LOWER_UP>")
    assert len(lo.raw) == 8
    assert lo.addresses[1].raw == (
        "    inet 10.96.0.10/32 scope global lo",
        "       valid_lft forever preferred_lft forever",
    )
    j = parse_ip_addr_json(load("addr-plain-json"))
    assert json.loads(j.link("eth0").raw[0])["ifname"] == "eth0"


def test_kube_ipvs0_is_a_down_dummy_holding_cluster_ips() -> None:
    addrs = parse_ip_addr(load("addr-kube-ipvs0"))
    ipvs0 = addrs.link("kube-ipvs0")
    assert ipvs0.flags == ("BROADCAST", "NOARP")
    assert not ipvs0.is_up
    assert addrs.owner("10.96.0.10") == ipvs0
    assert addrs.has_address("10.96.100.5")
    assert not addrs.has_address("10.96.0.11")


def test_lookups() -> None:
    addrs = parse_ip_addr(load("addr-bridge-veth"))
    assert addrs.owner("10.96.0.10") is not None
    assert addrs.owner("fd00:10:244:0::1") == addrs.link("kl-br0")  # compared as addresses
    assert addrs.owner("10.250.0.2") is None  # a peer is not a local address
    assert len(addrs) == 6
    assert len(addrs.addresses()) == 12
    with pytest.raises(KeyError, match="kl-br0"):
        addrs.link("nope0")


# --- edge cases (iproute2 formats not in the captures) ------------------------

DYNAMIC = """\
2: wlan0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 3c:22:fb:00:11:22 brd ff:ff:ff:ff:ff:ff
    altname wlp2s0
    altname wlx3c22fb001122
    inet 192.168.1.23/24 brd 192.168.1.255 scope global dynamic noprefixroute wlan0
       valid_lft 86395sec preferred_lft 86395sec
    inet 192.168.1.99/24 scope global secondary wlan0
       valid_lft forever preferred_lft forever
    inet6 2001:db8::5/64 scope global temporary dynamic
       valid_lft 604795sec preferred_lft 86395sec
    inet6 fe80::1/64 scope link tentative
       valid_lft forever preferred_lft forever
"""


@pytest.mark.parametrize(
    ("text", "check"),
    [
        pytest.param(
            DYNAMIC,
            lambda a: (
                a.link("wlan0").altnames == ("wlp2s0", "wlx3c22fb001122")
                and a.link("wlan0").addresses[0]
                == Address(
                    family="inet",
                    local="192.168.1.23",
                    prefixlen=24,
                    broadcast="192.168.1.255",
                    scope="global",
                    label="wlan0",
                    flags=("dynamic", "noprefixroute"),
                    valid_lft=86395,
                    preferred_lft=86395,
                )
                and a.link("wlan0").addresses[1].flags == ("secondary",)
                and a.link("wlan0").addresses[2].flags == ("temporary", "dynamic")
                and a.link("wlan0").addresses[2].valid_lft == 604795
                and a.link("wlan0").addresses[3].flags == ("tentative",)
            ),
            id="dynamic-secondary-altname",
        ),
        pytest.param(
            "5: tun0: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1420 qdisc fq_codel "
            "state UNKNOWN group default qlen 500\n"
            "    link/none \n"
            "    inet 10.8.0.2/24 scope global tun0\n",
            lambda a: (
                a.link("tun0").link_type == "none"
                and a.link("tun0").mac is None
                and a.link("tun0").addresses[0].valid_lft is None
            ),
            id="link-none-no-lifetime-line",
        ),
        pytest.param(
            "7: vxlan0: <BROADCAST,MULTICAST> mtu 1450 qdisc noop state DOWN mode DEFAULT "
            "group default qlen 1000\n"
            "    link/ether 1a:2b:3c:4d:5e:6f brd ff:ff:ff:ff:ff:ff promiscuity 0\n",
            lambda a: a.link("vxlan0").state == "DOWN" and a.link("vxlan0").addresses == (),
            id="mode-and-detail-words",
        ),
        pytest.param(
            "3: eth1@NONE: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue "
            "state LOWERLAYERDOWN group default\n",
            lambda a: a.link("eth1").link == "NONE" and not a.link("eth1").lower_up,
            id="link-NONE",
        ),
        pytest.param(
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\r\n"
            "    inet 127.0.0.1/8 scope host lo\r\n",
            lambda a: a.link("lo").addresses[0].cidr == "127.0.0.1/8",
            id="crlf",
        ),
        pytest.param("", lambda a: a.links == (), id="empty-output"),
    ],
)
def test_edge_cases(text: str, check: object) -> None:
    assert callable(check)
    assert check(parse_ip_addr(text))


def test_json_lifetime_and_flags() -> None:
    data = [
        {
            "ifindex": 2,
            "ifname": "wlan0",
            "flags": ["UP"],
            "addr_info": [
                {
                    "family": "inet",
                    "local": "192.168.1.23",
                    "prefixlen": 24,
                    "scope": "global",
                    "dynamic": True,
                    "noprefixroute": True,
                    "label": "wlan0",
                    "valid_life_time": 86395,
                    "preferred_life_time": 4294967295,
                }
            ],
        }
    ]
    (addr,) = parse_ip_addr_json(json.dumps(data)).link("wlan0").addresses
    assert addr.flags == ("dynamic", "noprefixroute")
    assert (addr.valid_lft, addr.preferred_lft) == (86395, None)


# --- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line_no", "expected"),
    [
        pytest.param(load("addr-missing-dev"), 1, "a link line", id="device-does-not-exist"),
        pytest.param("    inet 10.0.0.1/8 scope host lo\n", 1, "a link line first", id="no-link"),
        pytest.param(
            "1: lo: <UP> mtu 65536\n       valid_lft forever preferred_lft forever\n",
            2,
            "an inet/inet6 line before its lifetimes",
            id="lifetime-without-address",
        ),
        pytest.param(
            "1: lo: <UP> mtu 65536\n    inet 10.0.0.1 scope host lo\n",
            2,
            "prefix length",
            id="no-prefix",
        ),
        pytest.param("1: lo: <UP> mtu big\n", 1, "an integer mtu", id="bad-mtu"),
        pytest.param("1: lo: <UP> mtu\n", 1, "a value after 'mtu'", id="mtu-without-value"),
        pytest.param(
            "1: lo: <UP> mtu 1\n    inet 10.0.0.1/8 scope\n", 2, "a value after", id="scope-bare"
        ),
        pytest.param(
            "1: lo: <UP> mtu 1\n    inet 10.0.0.1/8\n       valid_lft soon preferred_lft x\n",
            3,
            "lifetime in seconds",
            id="bad-lifetime",
        ),
    ],
)
def test_text_errors_name_the_line(text: str, line_no: int, expected: str) -> None:
    with pytest.raises(ParseError) as exc:
        parse_ip_addr(text)
    assert exc.value.tool == "ip addr"
    assert exc.value.line_no == line_no
    assert expected in exc.value.expected
    assert exc.value.line == text.splitlines()[line_no - 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(load("addr-missing-dev"), "JSON", id="text-error-not-json"),
        pytest.param('{"ifindex": 1}', "a JSON list", id="not-a-list"),
        pytest.param('[{"ifname": "lo"}]', "'ifindex' and 'ifname'", id="no-ifindex"),
        pytest.param(
            '[{"ifindex": 1, "ifname": "lo", "addr_info": [{"family": "inet"}]}]',
            "'local' and 'prefixlen'",
            id="address-without-local",
        ),
        pytest.param('[{"ifindex": "1", "ifname": "lo"}]', "integer ifindex", id="str-index"),
    ],
)
def test_json_errors(text: str, expected: str) -> None:
    with pytest.raises(ParseError, match="ip -j addr") as exc:
        parse_ip_addr_json(text)
    assert expected in exc.value.expected
