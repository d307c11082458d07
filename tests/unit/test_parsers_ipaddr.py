"""ip -j address parser: real captures, edge cases, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kindlab.errors import ParseError
from kindlab.parsers.ipaddr import Address, Link, parse_ip_addr_json

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ip"


def load(name: str) -> str:
    return (FIXTURES / f"{name}.out").read_text()


# --- real captured output -----------------------------------------------------

# fixture -> (link names in order, {link: [cidr, ...]})
EXPECTED = {
    "addr-bridge-veth-json": (
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
    "addr-plain-json": (["lo", "eth0"], {"lo": ["127.0.0.1/8"], "eth0": ["172.18.0.2/16"]}),
    "addr-kube-ipvs0-json": (
        ["lo", "kube-ipvs0"],
        {
            "lo": ["127.0.0.1/8", "::1/128"],
            "kube-ipvs0": ["10.96.0.1/32", "10.96.0.10/32", "10.96.0.20/32", "10.96.100.5/32"],
        },
    ),
}


def test_every_capture_is_read() -> None:
    # addr-missing-dev is ip's error text, read by the error cases below.
    assert {p.stem for p in FIXTURES.glob("*.out")} == set(EXPECTED) | {"addr-missing-dev"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_capture(name: str) -> None:
    names, cidrs = EXPECTED[name]
    addrs = parse_ip_addr_json(load(name))
    assert [link.name for link in addrs] == names
    assert {
        link.name: [f"{a.local}/{a.prefixlen}" for a in link.addresses] for link in addrs
    } == cidrs


def test_bridge_veth_links_in_full() -> None:
    addrs = parse_ip_addr_json(load("addr-bridge-veth-json"))
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
    assert (down.flags, down.state, down.qdisc) == (("BROADCAST", "MULTICAST"), "DOWN", "noop")
    assert addrs.link("lo").link_type == "loopback"


def test_label_with_colon_and_lifetimes() -> None:
    br = parse_ip_addr_json(load("addr-bridge-veth-json")).link("kl-br0")
    labels = [a.label for a in br.inet()]
    assert labels == ["kl-br0", "kl-br0:svc"]
    assert all(a.label is None for a in br.addresses if a.family == "inet6")
    assert all(a.valid_lft is None and a.preferred_lft is None for a in br.addresses)


def test_raw_is_the_json_object() -> None:
    eth0 = parse_ip_addr_json(load("addr-plain-json")).link("eth0")
    assert json.loads(eth0.raw[0])["ifname"] == "eth0"
    assert json.loads(eth0.addresses[0].raw[0])["local"] == "172.18.0.2"


def test_kube_ipvs0_is_a_down_dummy_holding_cluster_ips() -> None:
    addrs = parse_ip_addr_json(load("addr-kube-ipvs0-json"))
    ipvs0 = addrs.link("kube-ipvs0")
    assert ipvs0.flags == ("BROADCAST", "NOARP")
    assert addrs.owner("10.96.0.10") == ipvs0
    assert addrs.owner("10.96.100.5") == ipvs0
    assert addrs.owner("10.96.0.11") is None


def test_lookups() -> None:
    addrs = parse_ip_addr_json(load("addr-bridge-veth-json"))
    assert addrs.owner("10.96.0.10") == addrs.link("lo")
    assert addrs.owner("fd00:10:244:0::1") == addrs.link("kl-br0")  # compared as addresses
    assert addrs.owner("10.250.0.2") is None  # a peer is not a local address
    assert len(addrs) == 6
    assert len(addrs.addresses()) == 12
    with pytest.raises(KeyError, match="kl-br0"):
        addrs.link("nope0")


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
