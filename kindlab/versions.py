"""Kubernetes versions kindlab can build and run, as data, and the one function that chooses.

Per minor release from 1.25: the newest patch release whose Go modules the module
proxy serves whole (and why newer ones were refused), what that release pins
(etcd, CoreDNS, pause, agnhost, crictl), the kind release that creates its
clusters and the kubeadm config API kind writes for it, the containerd versions
containerd recommends for it, and which proxy modes it has.

Every row says how it was established: an answer of the Go module proxy on a date
(recorded under ``tests/fixtures/goproxy/``, re-run with
``python -m kindlab.nodeimage.goproxy``) or an upstream source file read at a
version. :func:`choose` turns a requested version (``"1.30"``, ``"v1.30.14"``) into
a :class:`Choice`, or raises :class:`VersionUnavailable` naming the module the
proxy does not serve. :func:`mode_support` says whether a proxy mode exists in a
version; a mode a version lacks is a skip with that reason, not a failure.

Pure data and pure functions; imports only the bottom of kindlab.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kindlab.constants import PROXY_MODES
from kindlab.errors import PreconditionError

#: Where the proxy answers below come from.
PROBE = "proxy.golang.org (this machine's GOPROXY), 2026-11-28"
PROBE_RECORDING = "tests/fixtures/goproxy/2026-11-28.json"
#: The checksum database's answers (sum.golang.org through the proxy) for each chosen
#: patch's staging modules, asked with kindlab.nodeimage.goproxy.unverified.
SUMDB_RECORDING = "tests/fixtures/goproxy/2026-11-28-sumdb.json"


# -- versions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Minor:
    """A Kubernetes minor release; ``Minor.parse("v1.34.4") == Minor(1, 34)``."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Minor:
        found = re.match(r"v?(\d+)\.(\d+)(?:\.\d+(?:[-+][\w.+-]*)?)?$", text.strip())
        if not found:
            raise ValueError(f"not a Kubernetes version: {text!r} (expected 1.30 or v1.30.14)")
        return cls(int(found.group(1)), int(found.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def patch_number(text: str) -> int | None:
    """``"v1.30.14"`` -> 14; ``"1.30"`` -> None (a minor, no patch given)."""
    found = re.match(r"v?\d+\.\d+\.(\d+)(?:[-+][\w.+-]*)?$", text.strip())
    return int(found.group(1)) if found else None


def _m(text: str) -> Minor:
    return Minor.parse(text)


# -- the Go module proxy's answers, per minor -------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a patch release was not chosen: the first module file the proxy refused."""

    patch: str  # "v1.25.16"
    module: str  # "k8s.io/kube-proxy@v0.25.16"
    file: str  # ".zip", ".mod" or ".info"
    answer: str  # the proxy's status and words
    others: tuple[str, ...] = ()  # further modules of that patch it refused

    def __str__(self) -> str:
        more = f" (also {', '.join(self.others)})" if self.others else ""
        return f"{self.patch}: {self.module} {self.file}: {self.answer}{more}"


@dataclass(frozen=True, slots=True)
class Pins:
    """What a release pins besides itself: image tags and the crictl module version."""

    etcd: str  # image tag, e.g. "3.6.5-0"
    coredns: str  # image tag, e.g. "v1.12.1"
    pause: str  # image tag, e.g. "3.10.1"
    agnhost: str  # image tag in e2e's image manifest, e.g. "2.56"
    crictl: str  # sigs.k8s.io/cri-tools module version
    source: str  # how they were established


@dataclass(frozen=True, slots=True)
class Release:
    """One minor release: the patch kindlab builds, and why no newer one."""

    minor: Minor
    patch: str | None  # None: no patch of this minor is buildable from the proxy
    refused: tuple[Refusal, ...]  # newer patches (or all, when patch is None), newest first
    pins: Pins | None
    established: str
    #: Staging modules of ``patch`` the checksum database has no line for: the build
    #: exempts them with GONOSUMDB (it asks the database itself; this is the record,
    #: replayed from :data:`SUMDB_RECORDING`).
    unverified: tuple[str, ...] = ()

    @property
    def newest_refusal(self) -> Refusal | None:
        return self.refused[0] if self.refused else None


# -- kind ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindRelease:
    """A kind release the proxy serves, and the kubeadm config API it writes."""

    version: str
    v1beta4_from: Minor | None  # kind writes kubeadm v1beta4 from this minor (else v1beta3)
    default_node: str  # its default node image (pkg/apis/config/defaults/image.go)
    containerd: str  # what its own base image builds (images/base/Dockerfile)
    established: str

    def kubeadm_api(self, minor: Minor) -> str:
        if self.v1beta4_from is not None and minor >= self.v1beta4_from:
            return "kubeadm.k8s.io/v1beta4"
        return "kubeadm.k8s.io/v1beta3"


_KIND_READ = (
    "read in sigs.k8s.io/kind@{v}'s zip from the proxy, 2026-11-28: "
    "pkg/cluster/internal/kubeadm/config.go, pkg/apis/config/defaults/image.go, "
    "images/base/Dockerfile"
)

KIND_RELEASES: Mapping[str, KindRelease] = MappingProxyType(
    {
        k.version: k
        for k in (
            KindRelease(
                "v0.30.0", None, "kindest/node:v1.34.0", "v2.1.4", _KIND_READ.format(v="v0.30.0")
            ),
            KindRelease(
                "v0.31.0", None, "kindest/node:v1.35.0", "v2.2.0", _KIND_READ.format(v="v0.31.0")
            ),
            KindRelease(
                "v0.32.0",
                _m("1.36"),
                "kindest/node:v1.36.1",
                "v2.3.1",
                _KIND_READ.format(v="v0.32.0"),
            ),
            KindRelease(
                "v0.33.0",
                _m("1.36"),
                "kindest/node:v1.37.0",
                "v2.3.4",
                _KIND_READ.format(v="v0.33.0"),
            ),
        )
    }
)

#: The kind release kindlab pins today (kindlab.constants.KIND_VERSION).
PINNED_KIND = "v0.30.0"
#: The newest kind release the proxy serves.
NEWEST_KIND = "v0.33.0"

#: The last minor whose kubeadm still reads kubeadm.k8s.io/v1beta3. Established from the
#: zips of k8s.io/kubernetes on the proxy, 2026-11-28: cmd/kubeadm/app/apis/kubeadm/
#: has v1beta3 and v1beta4 at v1.35.4 and v1.36.3, only v1beta4 at v1.37.2.
KUBEADM_V1BETA3_LAST = _m("1.36")


@dataclass(frozen=True, slots=True)
class KindChoice:
    """The kind release for one Kubernetes minor, the kubeadm API it writes, and what
    kindlab's cluster configs need for it."""

    release: KindRelease
    kubeadm_api: str
    note: str

    @property
    def version(self) -> str:
        return self.release.version


def kind_for(minor: Minor) -> KindChoice:
    """The kind release to use for ``minor``.

    kindlab's pinned kind writes kubeadm v1beta3 for every minor from 1.23; that works
    as long as kubeadm reads v1beta3 (to 1.36). From 1.37 kubeadm reads only v1beta4,
    which the newest kind writes from 1.36; there kindlab's cluster configs' kubeadm
    patches (``extraArgs`` as a map, v1beta3's form) take v1beta4's form (a list of
    ``{name, value}``), made by ``kindlab.drivers.clusters.config_for_version``.
    Read in the proxy's zips (2026-11-28): kind v0.30.0's
    pkg/cluster/internal/kubeadm/config.go picks v1beta3 from 1.23 and nothing newer;
    v0.33.0's picks v1beta4 from 1.36; k8s.io/kubernetes v1.36.5 has
    cmd/kubeadm/app/apis/kubeadm/v1beta3, v1.37.2 does not.
    """
    if minor <= KUBEADM_V1BETA3_LAST:
        kind = KIND_RELEASES[PINNED_KIND]
        return KindChoice(kind, kind.kubeadm_api(minor), "kindlab's pinned kind")
    kind = KIND_RELEASES[NEWEST_KIND]
    return KindChoice(
        kind,
        kind.kubeadm_api(minor),
        f"kubeadm {minor} reads only v1beta4, which kind {PINNED_KIND} does not write; "
        "kindlab's clusters/*.yaml patches give extraArgs as a map (v1beta3's form); the "
        "config made for this version gives v1beta4's list of {name, value}",
    )


# -- containerd ------------------------------------------------------------------------

#: What the node image runs today: Debian trixie's containerd. Observed in a node of
#: kindlab/node:v1.34.4 (tests/fixtures/captured/README.md, 2026-11-27).
TRIXIE_CONTAINERD = "1.7.24"

CONTAINERD_MODULE = "github.com/containerd/containerd"
CONTAINERD_MODULE_V2 = "github.com/containerd/containerd/v2"
#: containerd releases whose module the proxy serves whole (.info and .zip answered 200,
#: 2026-11-28), oldest first; asked: v1.7.28, v1.7.29, v2.0.6 (403, refused), v2.1.5,
#: v2.2.0, v2.3.1, v2.4.2.
CONTAINERD_SERVED = ("1.7.28", "1.7.29", "2.1.5", "2.2.0", "2.3.1", "2.4.2")


@dataclass(frozen=True, slots=True)
class ContainerdSupport:
    """containerd's own recommendation for one Kubernetes minor (its RELEASES.md)."""

    minor: Minor
    wants: str | None  # the table's cell, e.g. "2.1.3+, 2.0.6+, 1.7.28+, 1.6.39+"
    source: str

    def accepts(self, version: str) -> bool | None:
        """Does containerd ``version`` meet the recommendation? None: no recommendation.

        A cell lists one minimum per containerd minor (``1.7.28+``); a version
        meets it when one entry has its major.minor and it is at least that.
        """
        if self.wants is None:
            return None
        have = tuple(int(p) for p in version.lstrip("v").split("."))
        for entry in self.wants.split(","):
            want = tuple(int(p) for p in entry.strip().rstrip("+").split("."))
            if have[:2] == want[:2] and have >= want:
                return True
        return False

    def build_candidate(self) -> str | None:
        """The containerd release to build from its Go module where trixie's falls short:
        the oldest one the proxy serves (:data:`CONTAINERD_SERVED`) that meets the
        recommendation, a 1.7 first (its config is the one kind's node uses today)."""
        if self.accepts(TRIXIE_CONTAINERD) is not False:
            return None
        return next((v for v in CONTAINERD_SERVED if self.accepts(v)), None)

    def runtime(self) -> str:
        """What the node image should run: trixie's containerd, or a build of a served
        release that meets containerd's recommendation."""
        ok = self.accepts(TRIXIE_CONTAINERD)
        if ok is None:
            return (
                f"containerd {TRIXIE_CONTAINERD} (trixie); containerd has no row for {self.minor}"
            )
        if ok:
            return f"containerd {TRIXIE_CONTAINERD} (trixie)"
        wanted = f"containerd {self.wants} wanted; trixie's {TRIXIE_CONTAINERD} is not among them"
        candidate = self.build_candidate()
        if candidate is None:
            return f"{wanted}, nor any release the proxy serves"
        module = CONTAINERD_MODULE_V2 if candidate.startswith("2.") else CONTAINERD_MODULE
        return f"{wanted}: build {module}@v{candidate} (not done yet: the node runs trixie's)"


def _containerd_rows() -> dict[Minor, ContainerdSupport]:
    v1_7_24 = "containerd v1.7.24 RELEASES.md, Kubernetes support table (proxy zip, 2026-11-28)"
    v1_7_all = (
        "containerd v2.4.2 RELEASES.md, deprecated-versions table: 'v1.6.15+, v1.7.0+ | "
        "1.26+' (no per-minor row for 1.27 and 1.28 in the RELEASES.md of v1.7.13, v1.7.24, "
        "v2.0.0, v2.0.13 or v2.4.2; proxy zips, 2026-11-28)"
    )
    v2_0_13 = (
        "containerd v2.0.13 RELEASES.md, Kubernetes support table (proxy zip, 2026-11-28); "
        "containerd/containerd RELEASES.md at 007244d86cab (the code search's copy, read "
        "2026-11-28) has the same rows for 1.30 and 1.31 with 2.1.0+ added"
    )
    v2_4_2 = (
        "containerd v2.4.2 RELEASES.md, Kubernetes support table (proxy zip, 2026-11-28); "
        "its 1.32 and 1.33 rows are also in RELEASES.md at 007244d86cab"
    )
    rows = [
        ("1.25", "1.7.0+, 1.6.4+", v1_7_24),
        ("1.26", "1.7.0+, 1.6.15+", v1_7_24),
        ("1.27", "1.7.0+, 1.6.15+", v1_7_all),
        ("1.28", "1.7.0+, 1.6.15+", v1_7_all),
        ("1.29", "1.7.11+, 1.6.27+", v2_0_13),
        ("1.30", "2.0.0+, 1.7.13+, 1.6.28+", v2_0_13),
        ("1.31", "2.0.0+, 1.7.20+, 1.6.34+", v2_0_13),
        ("1.32", "2.1.0+, 2.0.1+, 1.7.24+, 1.6.36+", v2_4_2),
        ("1.33", "2.1.0+, 2.0.4+, 1.7.24+, 1.6.36+", v2_4_2),
        ("1.34", "2.1.3+, 2.0.6+, 1.7.28+, 1.6.39+", v2_4_2),
        ("1.35", "2.2.0+, 2.1.5+, 1.7.28+", v2_4_2),
        ("1.36", "2.3.0+, 2.2.0+", v2_4_2),
        ("1.37", "2.4.0+, 2.3.0+", v2_4_2),
    ]
    return {_m(m): ContainerdSupport(_m(m), wants, src) for m, wants, src in rows}


CONTAINERD: Mapping[Minor, ContainerdSupport] = MappingProxyType(_containerd_rows())


def containerd_for(minor: Minor) -> ContainerdSupport:
    return CONTAINERD.get(
        minor,
        ContainerdSupport(minor, None, "no row in containerd v2.4.2's RELEASES.md"),
    )


# -- proxy modes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModeSupport:
    """Whether kube-proxy of one minor has a mode, and on what terms."""

    mode: str
    minor: Minor
    available: bool
    reason: str  # why not, when not available
    feature_gate: str | None = None  # a gate the cluster config must turn on
    deprecated: str | None = None  # kube-proxy's own deprecation warning

    @property
    def skip_reason(self) -> str | None:
        return None if self.available else self.reason


#: kube-proxy's NFTablesProxyMode gate, from pkg/features/kube_features.go (read at
#: v1.35.4, v1.36.3 and v1.37.2 in the proxy's zips, 2026-11-28): alpha and off by
#: default in 1.29, beta and on in 1.31, GA and locked on in 1.33.
NFTABLES_ALPHA = _m("1.29")
NFTABLES_BETA = _m("1.31")
NFTABLES_GA = _m("1.33")

#: kube-proxy's ipvs deprecation warning (event IPVSDeprecation), from
#: cmd/kube-proxy/app/server_linux.go in the proxy's zips, 2026-11-28: absent at
#: v1.34.4; at v1.35.4 and v1.36.3 the first message, at v1.37.2 the second.
IPVS_DEPRECATED: tuple[tuple[Minor, str], ...] = (
    (
        _m("1.35"),
        "The ipvs proxier is now deprecated and may be removed in a future release. "
        "Please use 'nftables' instead.",
    ),
    (
        _m("1.37"),
        "The ipvs proxier has been deprecated and will be disabled by default in "
        "Kubernetes 1.40 and removed in Kubernetes 1.43. Migrate to the 'nftables' "
        "proxier instead.",
    ),
)


def mode_support(mode: str, version: Minor | str) -> ModeSupport:
    """Does kube-proxy of ``version`` have ``mode``, and does it need a gate or warn?"""
    minor = version if isinstance(version, Minor) else Minor.parse(version)
    if mode not in PROXY_MODES:
        raise ValueError(f"unknown proxy mode {mode!r}; expected one of {', '.join(PROXY_MODES)}")
    if mode == "nftables":
        if minor < NFTABLES_ALPHA:
            return ModeSupport(
                mode,
                minor,
                False,
                f"kube-proxy {minor} has no nftables mode (it came in {NFTABLES_ALPHA}, alpha)",
            )
        if minor < NFTABLES_BETA:
            return ModeSupport(
                mode,
                minor,
                True,
                "",
                feature_gate="NFTablesProxyMode",
            )
        return ModeSupport(mode, minor, True, "")
    if mode == "ipvs":
        warning = None
        for since, text in IPVS_DEPRECATED:
            if minor >= since:
                warning = text
        return ModeSupport(mode, minor, True, "", deprecated=warning)
    return ModeSupport(mode, minor, True, "")


# -- the kubelet -----------------------------------------------------------------------

#: From this minor the kubelet refuses to start on cgroup v1 unless its configuration
#: says ``failCgroupV1: false``: pkg/kubelet/apis/config/v1beta1/defaults.go defaults
#: FailCgroupV1 to false at v1.34.12 and to true at v1.35.8 (the proxy's zips,
#: 2026-11-28); kind v0.30.0 does not set it. The project's hosts run cgroup v1
#: (hybrid), and their README says 1.35 and later refuse it without this setting.
#: On cgroup v2 the setting changes nothing.
KUBELET_FAILS_ON_CGROUP_V1 = _m("1.35")


def kubelet_patch(minor: Minor) -> str | None:
    """A kubeadm config patch the kubelet of ``minor`` needs on these hosts (None: none)."""
    if minor >= KUBELET_FAILS_ON_CGROUP_V1:
        return "kind: KubeletConfiguration\nfailCgroupV1: false\n"
    return None


# -- the choice ------------------------------------------------------------------------


class VersionUnavailable(PreconditionError):
    """A requested Kubernetes version cannot be built here; the message names why."""


@dataclass(frozen=True, slots=True)
class Choice:
    """Everything kindlab uses for one requested version."""

    requested: str
    release: Release
    patch: str
    probed: bool  # False: a patch older than the chosen one, not asked of the proxy
    kind: KindChoice
    containerd: ContainerdSupport

    @property
    def minor(self) -> Minor:
        return self.release.minor

    @property
    def pins(self) -> Pins:
        assert self.release.pins is not None  # a release with a patch has pins
        return self.release.pins

    def mode(self, mode: str) -> ModeSupport:
        return mode_support(mode, self.minor)


def choose(requested: str, releases: Mapping[Minor, Release] | None = None) -> Choice:
    """The build for ``requested`` (``"1.30"``: the chosen patch; ``"v1.30.14"``: that one).

    Raises :class:`VersionUnavailable` naming the module the proxy refused, or the
    minors kindlab knows, when the version cannot be built.
    """
    table = RELEASES if releases is None else releases
    try:
        minor = Minor.parse(requested)
    except ValueError as exc:
        raise VersionUnavailable(str(exc)) from None
    release = table.get(minor)
    if release is None:
        known = ", ".join(str(m) for m in sorted(table))
        raise VersionUnavailable(
            f"Kubernetes {requested}: kindlab has no data for {minor} (known: {known})"
        )
    if release.patch is None:
        refusal = release.newest_refusal
        why = f"; newest: {refusal}" if refusal else ""
        raise VersionUnavailable(
            f"Kubernetes {requested}: no patch of {minor} is buildable from the Go module "
            f"proxy ({PROBE}){why}"
        )
    wanted = patch_number(requested)
    chosen = patch_number(release.patch)
    assert chosen is not None
    probed = True
    patch = release.patch
    if wanted is not None and wanted != chosen:
        patch = f"v{minor}.{wanted}"
        refused = next((r for r in release.refused if r.patch == patch), None)
        if refused is not None:
            raise VersionUnavailable(
                f"Kubernetes {patch} cannot be built: the Go module proxy ({PROBE}) refused "
                f"{refused.module} {refused.file} ({refused.answer}); "
                f"{release.patch} is the newest buildable {minor} release"
            )
        if wanted > chosen:
            raise VersionUnavailable(
                f"Kubernetes {patch}: the Go module proxy ({PROBE}) does not serve "
                f"k8s.io/kubernetes@{patch}; {release.patch} is the newest buildable {minor} "
                "release"
            )
        probed = False  # older than the choice: never asked, the build will tell
    return Choice(requested, release, patch, probed, kind_for(minor), containerd_for(minor))


def parse_version_list(text: str) -> tuple[str, ...]:
    """``"v1.25.0, 1.30"`` -> ``("v1.25.0", "1.30")``; each must parse, none twice."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise ValueError(f"no Kubernetes version in {text!r}")
    for item in items:
        Minor.parse(item)
    duplicates = sorted({i for i in items if items.count(i) > 1})
    if duplicates:
        raise ValueError(f"Kubernetes version given twice: {', '.join(duplicates)}")
    return items


# -- the table -------------------------------------------------------------------------

_PROBED = f"{PROBE}, replayed from {PROBE_RECORDING}: "

#: crictl talks CRI v1 to containerd whatever the Kubernetes minor (kind v0.30.0 puts
#: crictl v1.33.0 in every node image: images/base/Dockerfile). The proxy serves
#: sigs.k8s.io/cri-tools at v1.30.0, v1.34.0, v1.36.0 and v1.37.0 and refuses the other
#: v1.25.0 to v1.38.0 (403, 2026-11-28): v1.34.0, what kindlab has built with, up to
#: 1.35; the minor's own release from 1.36.
_CRICTL_SOURCE = "cri-tools: the newest served release at or below the minor, from v1.34.0"


def _pins(patch: str, etcd: str, coredns: str, pause: str, agnhost: str, crictl: str) -> Pins:
    return Pins(
        etcd,
        coredns,
        pause,
        agnhost,
        crictl,
        f"k8s.io/kubernetes@{patch}: cmd/kubeadm/app/constants/constants.go (etcd, CoreDNS, "
        "pause) and test/utils/image/manifest.go (agnhost), read in the proxy's zip on "
        f"2026-11-28 (lines kept in {PROBE_RECORDING}); {_CRICTL_SOURCE}",
    )


RELEASES: Mapping[Minor, Release] = MappingProxyType(
    {
        r.minor: r
        for r in (
            Release(
                _m("1.25"),
                "v1.25.15",
                (
                    Refusal(
                        "v1.25.16",
                        "k8s.io/cluster-bootstrap@v0.25.16",
                        ".zip",
                        "403",
                        (
                            "k8s.io/controller-manager@v0.25.16",
                            "k8s.io/kube-controller-manager@v0.25.16",
                            "k8s.io/kube-proxy@v0.25.16",
                        ),
                    ),
                ),
                _pins("v1.25.15", "3.5.9-0", "v1.9.3", "3.8", "2.40", "v1.34.0"),
                _PROBED
                + "17 patches served; v1.25.15 and every staging module it loads served whole",
                (
                    "k8s.io/cloud-provider",
                    "k8s.io/cluster-bootstrap",
                    "k8s.io/component-helpers",
                    "k8s.io/controller-manager",
                    "k8s.io/cri-api",
                    "k8s.io/csi-translation-lib",
                    "k8s.io/kube-controller-manager",
                    "k8s.io/kube-proxy",
                    "k8s.io/kube-scheduler",
                    "k8s.io/kubelet",
                    "k8s.io/legacy-cloud-providers",
                    "k8s.io/mount-utils",
                    "k8s.io/pod-security-admission",
                ),
            ),
            Release(
                _m("1.26"),
                "v1.26.13",
                (
                    Refusal(
                        "v1.26.15",
                        "k8s.io/controller-manager@v0.26.15",
                        ".zip",
                        "403",
                        ("k8s.io/kube-controller-manager@v0.26.15", "k8s.io/kube-proxy@v0.26.15"),
                    ),
                ),
                _pins("v1.26.13", "3.5.10-0", "v1.9.3", "3.9", "2.43", "v1.34.0"),
                _PROBED
                + "15 patches served; v1.26.13 and every staging module it loads served whole",
            ),
            Release(
                _m("1.27"),
                "v1.27.16",
                (),
                _pins("v1.27.16", "3.5.12-0", "v1.10.1", "3.9", "2.47", "v1.34.0"),
                _PROBED
                + "15 patches served; v1.27.16 and every staging module it loads served whole",
                ("k8s.io/legacy-cloud-providers",),
            ),
            Release(
                _m("1.28"),
                "v1.28.15",
                (),
                _pins("v1.28.15", "3.5.15-0", "v1.10.1", "3.9", "2.47", "v1.34.0"),
                _PROBED
                + "15 patches served; v1.28.15 and every staging module it loads served whole",
            ),
            Release(
                _m("1.29"),
                "v1.29.15",
                (),
                _pins("v1.29.15", "3.5.16-0", "v1.11.1", "3.9", "2.47", "v1.34.0"),
                _PROBED
                + "13 patches served; v1.29.15 and every staging module it loads served whole",
            ),
            Release(
                _m("1.30"),
                "v1.30.14",
                (),
                _pins("v1.30.14", "3.5.15-0", "v1.11.3", "3.9", "2.47", "v1.34.0"),
                _PROBED
                + "13 patches served; v1.30.14 and every staging module it loads served whole",
            ),
            Release(
                _m("1.31"),
                "v1.31.4",
                (
                    Refusal(
                        "v1.31.14",
                        "k8s.io/endpointslice@v0.31.14",
                        ".zip",
                        "403",
                        (
                            "k8s.io/kube-controller-manager@v0.31.14",
                            "k8s.io/kube-proxy@v0.31.14",
                            "k8s.io/kube-scheduler@v0.31.14",
                        ),
                    ),
                    Refusal(
                        "v1.31.13",
                        "k8s.io/cloud-provider@v0.31.13",
                        ".info",
                        "403 This module version is not available.",
                        ("k8s.io/kube-proxy@v0.31.13",),
                    ),
                    Refusal(
                        "v1.31.12",
                        "k8s.io/cluster-bootstrap@v0.31.12",
                        ".zip",
                        "403",
                        (
                            "k8s.io/cri-api@v0.31.12",
                            "k8s.io/cri-client@v0.31.12",
                            "k8s.io/dynamic-resource-allocation@v0.31.12",
                            "k8s.io/endpointslice@v0.31.12",
                            "k8s.io/kube-aggregator@v0.31.12",
                            "k8s.io/kube-controller-manager@v0.31.12",
                            "k8s.io/kube-proxy@v0.31.12",
                            "k8s.io/kube-scheduler@v0.31.12",
                        ),
                    ),
                    Refusal("v1.31.9", "k8s.io/cloud-provider@v0.31.9", ".zip", "403", ()),
                    Refusal("v1.31.8", "k8s.io/cloud-provider@v0.31.8", ".zip", "403", ()),
                    Refusal(
                        "v1.31.7",
                        "k8s.io/cluster-bootstrap@v0.31.7",
                        ".zip",
                        "403",
                        (
                            "k8s.io/cri-client@v0.31.7",
                            "k8s.io/endpointslice@v0.31.7",
                            "k8s.io/kube-controller-manager@v0.31.7",
                            "k8s.io/kube-proxy@v0.31.7",
                            "k8s.io/pod-security-admission@v0.31.7",
                        ),
                    ),
                    Refusal(
                        "v1.31.6",
                        "k8s.io/cluster-bootstrap@v0.31.6",
                        ".zip",
                        "403",
                        (
                            "k8s.io/cri-client@v0.31.6",
                            "k8s.io/csi-translation-lib@v0.31.6",
                            "k8s.io/dynamic-resource-allocation@v0.31.6",
                            "k8s.io/endpointslice@v0.31.6",
                            "k8s.io/kube-controller-manager@v0.31.6",
                            "k8s.io/kube-proxy@v0.31.6",
                            "k8s.io/kube-scheduler@v0.31.6",
                        ),
                    ),
                    Refusal(
                        "v1.31.5",
                        "k8s.io/cri-client@v0.31.5",
                        ".zip",
                        "403",
                        (
                            "k8s.io/csi-translation-lib@v0.31.5",
                            "k8s.io/dynamic-resource-allocation@v0.31.5",
                            "k8s.io/endpointslice@v0.31.5",
                            "k8s.io/kube-scheduler@v0.31.5",
                        ),
                    ),
                ),
                _pins("v1.31.4", "3.5.15-0", "v1.11.3", "3.10", "2.52", "v1.34.0"),
                _PROBED
                + "13 patches served; v1.31.4 and every staging module it loads served whole",
            ),
            Release(
                _m("1.32"),
                "v1.32.9",
                (
                    Refusal("v1.32.13", "k8s.io/endpointslice@v0.32.13", ".zip", "403", ()),
                    Refusal(
                        "v1.32.11",
                        "k8s.io/csi-translation-lib@v0.32.11",
                        ".info",
                        "403 This module version is not available.",
                        ("k8s.io/kms@v0.32.11",),
                    ),
                    Refusal(
                        "v1.32.10",
                        "k8s.io/cluster-bootstrap@v0.32.10",
                        ".zip",
                        "403",
                        (
                            "k8s.io/endpointslice@v0.32.10",
                            "k8s.io/externaljwt@v0.32.10",
                            "k8s.io/kube-aggregator@v0.32.10",
                            "k8s.io/kube-controller-manager@v0.32.10",
                            "k8s.io/metrics@v0.32.10",
                        ),
                    ),
                ),
                _pins("v1.32.9", "3.5.16-0", "v1.11.3", "3.10", "2.53", "v1.34.0"),
                _PROBED
                + "13 patches served; v1.32.9 and every staging module it loads served whole",
            ),
            Release(
                _m("1.33"),
                "v1.33.13",
                (),
                _pins("v1.33.13", "3.5.24-0", "v1.12.0", "3.10", "2.53", "v1.34.0"),
                _PROBED
                + "12 patches served; v1.33.13 and every staging module it loads served whole",
            ),
            Release(
                _m("1.34"),
                "v1.34.12",
                (),
                _pins("v1.34.12", "3.6.5-0", "v1.12.1", "3.10.1", "2.56", "v1.34.0"),
                _PROBED
                + "12 patches served; v1.34.12 and every staging module it loads served whole",
            ),
            Release(
                _m("1.35"),
                "v1.35.8",
                (),
                _pins("v1.35.8", "3.6.6-0", "v1.13.1", "3.10.1", "2.59", "v1.34.0"),
                _PROBED
                + "8 patches served; v1.35.8 and every staging module it loads served whole",
            ),
            Release(
                _m("1.36"),
                "v1.36.5",
                (),
                _pins("v1.36.5", "3.6.8-0", "v1.14.2", "3.10.2", "2.66.1", "v1.36.0"),
                _PROBED
                + "6 patches served; v1.36.5 and every staging module it loads served whole",
            ),
            Release(
                _m("1.37"),
                "v1.37.2",
                (),
                _pins("v1.37.2", "3.7.0-0", "v1.14.6", "3.10.2", "2.66.1", "v1.37.0"),
                _PROBED
                + "3 patches served; v1.37.2 and every staging module it loads served whole",
            ),
            Release(
                _m("1.38"),
                None,
                (
                    Refusal(
                        "v1.38.0",
                        "k8s.io/kubernetes@v1.38.0",
                        ".info",
                        "403 This module version is not available.",
                    ),
                ),
                None,
                _PROBED + "0 patches served; no patch served whole",
            ),
        )
    }
)
