"""The lab's claims, and what each proxy mode and Kubernetes version should show.

Claims and expectations are data, kept here once. A claim is what the report
lists (numbered as in the lab's issue); an expectation is how one behaviour
(say ``"ping-clusterip"``) looks in one mode for a range of versions. A lab
test asks ``expect("ping-clusterip", mode, version)`` instead of branching on
versions itself. Each claim says what the blog post (../shared/seed) said and what
upstream says; where a live observation contradicts an expectation, the
observation wins and the entry here is corrected, with the evidence, rather
than a test being bent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kindlab.constants import PROXY_MODES

# One minor-version type for the package: kindlab.versions' (expectations used to have its own).
from kindlab.versions import Minor as Version

__all__ = [
    "CLAIMS",
    "EXPECTATIONS",
    "Claim",
    "Expectation",
    "PostVerdict",
    "Version",
    "claim",
    "expect",
]


@dataclass(frozen=True, slots=True)
class PostVerdict:
    """How the blog post fares, where the claim's check passes, in a range of versions."""

    verdict: str  # "holds", "wrong", "out of date"
    mode: str | None = None  # None: every mode the claim is about
    since: Version | None = None
    until: Version | None = None

    def applies(self, mode: str, version: Version) -> bool:
        return (
            (self.mode is None or self.mode == mode)
            and (self.since is None or version >= self.since)
            and (self.until is None or version <= self.until)
        )

    @property
    def versions(self) -> str:
        """The range in words: "up to 1.25", "from 1.26", "1.29 to 1.30", "on every version"."""
        if self.since and self.until:
            return (
                f"on {self.since}" if self.since == self.until else f"{self.since} to {self.until}"
            )
        if self.since:
            return f"from {self.since}"
        if self.until:
            return f"up to {self.until}"
        return "on every version"


@dataclass(frozen=True, slots=True)
class Claim:
    """One statement the lab checks."""

    id: str
    number: int
    title: str
    modes: tuple[str, ...]
    post: str | None
    """What the blog post says (None where the post says nothing)."""
    verdict: str
    """What upstream sources say, and where the post is wrong or out of date."""
    post_verdicts: tuple[PostVerdict, ...] = ()
    """How the post fares where the check passes, per mode and version range."""

    def post_verdict(self, mode: str, version: str | Version) -> PostVerdict | None:
        """The verdict on the post for a passed check in ``mode`` at ``version``.

        None where the post says nothing, the claim is not about ``mode``, or no
        range covers ``version``.
        """
        if self.post is None or mode not in self.modes:
            return None
        ver = version if isinstance(version, Version) else Version.parse(version)
        found = [v for v in self.post_verdicts if v.applies(mode, ver)]
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Expectation:
    """How one behaviour looks in one mode, for a range of versions."""

    behaviour: str
    mode: str
    since: Version | None
    until: Version | None
    text: str
    facts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def applies(self, version: Version) -> bool:
        return (self.since is None or version >= self.since) and (
            self.until is None or version <= self.until
        )

    @property
    def versions(self) -> str:
        if self.since and self.until:
            return f"{self.since} to {self.until}"
        if self.since:
            return f"≥ {self.since}"
        if self.until:
            return f"≤ {self.until}"
        return "all"


_ALL = PROXY_MODES

CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in (
        Claim(
            "proxy-mode",
            1,
            "kube-proxy reports the mode the cluster was created with",
            _ALL,
            "curl 127.0.0.1:10249/proxyMode answers `iptables`.",
            "The endpoint answers the mode kube-proxy actually runs; a kube-proxy that "
            "fell back to another mode is a failure, not a pass.",
            (PostVerdict("holds"),),
        ),
        Claim(
            "service-range",
            2,
            "ClusterIPs come from the service range 10.96.0.0/12",
            _ALL,
            "service-cluster-ip-range=10.96.0.0/12, i.e. 10.96.0.1 to 10.111.255.254.",
            "True for clusters configured so (kubeadm's default); kubernetes.default "
            "takes the range's first address, 10.96.0.1.",
            (PostVerdict("holds"),),
        ),
        Claim(
            "ping-clusterip",
            3,
            "iptables: ping to a ClusterIP gets no echo reply, TCP to its port is answered",
            ("iptables",),
            "In iptables mode a ping from the node to a ClusterIP gets no answer.",
            "iptables: no echo reply, while TCP to ClusterIP:port is answered by a pod. "
            "ipvs: echo reply only up to 1.25; since 1.26 KUBE-IPVS-FILTER rejects it. "
            "nftables: rejected.",
            (PostVerdict("holds"),),
        ),
        Claim(
            "iptables-rules",
            4,
            "KUBE-SERVICES matches only the Service's protocol and port",
            ("iptables",),
            "PREROUTING jumps to KUBE-SERVICES; the ClusterIP rule matches tcp dpt:PORT "
            "only, so iptables does not handle ICMP.",
            "Both nat PREROUTING and OUTPUT jump to KUBE-SERVICES; nothing translates ICMP "
            "to a ClusterIP.",
            (PostVerdict("holds"),),
        ),
        Claim(
            "iptables-probabilities",
            5,
            "KUBE-SVC spreads connections evenly with statistic probabilities",
            ("iptables",),
            "probabilities 0.33333333349 and 0.5 for three endpoints, then DNAT in KUBE-SEP.",
            "n rules with probabilities 1/n, 1/(n-1), …, the last unconditional: every "
            "endpoint gets 1/n; each KUBE-SEP marks hairpin traffic and DNATs to pod:port.",
            (PostVerdict("holds"),),
        ),
        Claim(
            "iptables-why",
            6,
            "Why nobody answers: the path of a ping sent from the node",
            ("iptables",),
            "The ping enters nat PREROUTING; a virtual IP has no MAC address, so the "
            "request is dropped.",
            "A ping from the node traverses nat OUTPUT, not PREROUTING; the ClusterIP is on "
            "no interface, routes to the default gateway and no host owns it. An ICMP DNAT "
            "rule added by hand makes a pod answer it.",
            (PostVerdict("wrong"),),
        ),
        Claim(
            "ipvs-interface",
            7,
            "ipvs: every ClusterIP sits on kube-ipvs0",
            ("ipvs",),
            "ip a shows the ClusterIP on the ipvs0 interface.",
            "kube-ipvs0 (a dummy device) carries each ClusterIP as a /32; ipvsadm shows the "
            "virtual service with the pods as real servers.",
            (PostVerdict("holds"),),
        ),
        Claim(
            "ipvs-ping",
            8,
            "ipvs: the ClusterIP answers ping, depending on the version",
            ("ipvs",),
            "The ClusterIP answers ping.",
            "Up to 1.25 it does; from 1.26 the KUBE-IPVS-FILTER chain rejects traffic to "
            "kube-ipvs0 addresses other than Service ports: Destination Port Unreachable.",
            (
                PostVerdict("holds", until=Version(1, 25)),
                PostVerdict("out of date", since=Version(1, 26)),
            ),
        ),
        Claim(
            "nftables-table",
            9,
            "nftables: the ip kube-proxy table holds the ClusterIP",
            ("nftables",),
            None,
            "The `ip kube-proxy` table maps ClusterIP . proto . port to the Service's "
            "chain; TCP works; traffic to the ClusterIP on other ports (ping too) is "
            "rejected.",
        ),
        Claim(
            "no-endpoints",
            10,
            "A Service without endpoints refuses connections",
            _ALL,
            None,
            "kube-proxy rejects TCP to a ClusterIP:port without endpoints instead of letting "
            "it time out; the rule (or set element) doing it is shown.",
        ),
        Claim(
            "across-nodes",
            11,
            "Where the endpoints are does not change the answers",
            _ALL,
            None,
            "kube-proxy programs every node, whether it runs an endpoint or not: from a node "
            "with no endpoint of the Service and from a pod on another node, ping to the "
            "ClusterIP gets the mode's answer (claims 3, 8, 9) and TCP to its port is "
            "answered by a pod on the node that has them (multi-node layout only).",
        ),
    )
}


def _v(text: str) -> Version:
    return Version.parse(text)


#: How each behaviour looks per mode and version; ``facts`` are behaviour-specific.
EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        "ping-clusterip",
        "iptables",
        None,
        None,
        "no echo reply (silence or an ICMP error from elsewhere); TCP to ClusterIP:port "
        "answered by a pod",
        MappingProxyType({"answered": False}),
    ),
    Expectation(
        "ping-clusterip",
        "ipvs",
        None,
        _v("1.25"),
        "echo reply from the ClusterIP",
        MappingProxyType({"answered": True}),
    ),
    Expectation(
        "ping-clusterip",
        "ipvs",
        _v("1.26"),
        None,
        "no echo reply: Destination Port Unreachable from the ClusterIP (KUBE-IPVS-FILTER)",
        MappingProxyType({"answered": False, "icmp_error": "Destination Port Unreachable"}),
    ),
    Expectation(
        "ping-clusterip",
        "nftables",
        _v("1.30"),
        None,
        "no echo reply: rejected with Destination Port Unreachable (kube-proxy rejects "
        "ClusterIP traffic on ports no Service uses)",
        MappingProxyType({"answered": False, "icmp_error": "Destination Port Unreachable"}),
    ),
    Expectation(
        "ping-clusterip",
        "nftables",
        None,
        _v("1.29"),
        "no echo reply",
        MappingProxyType({"answered": False}),
    ),
    # What `ip kube-proxy` holds of a ClusterIP beyond its Service ports. Observed
    # 2026-11-29: v1.29.15 (alpha mode, NFTablesProxyMode on) has no @cluster-ips set
    # and no reject rule, and a ping to a ClusterIP left the node by its default route
    # ("Net Unreachable" from the Docker host); v1.34.4 has both. 1.30 as the first
    # version with them is upstream's word, not yet seen here.
    Expectation(
        "nftables-cluster-ips",
        "nftables",
        _v("1.30"),
        None,
        "@cluster-ips lists the ClusterIP and a rule rejects traffic to it on ports no "
        "Service uses",
        MappingProxyType({"cluster_ips_set": True}),
    ),
    Expectation(
        "nftables-cluster-ips",
        "nftables",
        None,
        _v("1.29"),
        "no @cluster-ips set and no rule rejecting traffic to ClusterIPs (kube-proxy 1.29's "
        "alpha nftables mode maps ClusterIP . protocol . port only)",
        MappingProxyType({"cluster_ips_set": False}),
    ),
)


def claim(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim {claim_id!r}; known: {', '.join(CLAIMS)}") from None


def expect(behaviour: str, mode: str, version: str | Version) -> Expectation:
    """The one expectation for ``behaviour`` in ``mode`` at ``version``."""
    ver = version if isinstance(version, Version) else Version.parse(version)
    found = [
        e for e in EXPECTATIONS if e.behaviour == behaviour and e.mode == mode and e.applies(ver)
    ]
    if len(found) != 1:
        raise LookupError(
            f"{len(found)} expectations for {behaviour!r} in {mode} mode at {ver}; "
            "kindlab.lab.expectations.EXPECTATIONS needs exactly one"
        )
    return found[0]
