"""Pure parts of kindlab.nodeimage: versions, cache keys, Go wrappers, kind sources."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

from kindlab.nodeimage import cache, gobuild, images, kindsrc, versions
from kindlab.nodeimage.build import _docker_hub_name
from kindlab.nodeimage.versions import KubeVersion
from kindlab.paths import cache_dir
from kindlab.versions import RELEASES, Minor

V134 = KubeVersion.parse("v1.34.4")

# what `kubeadm config images list --kubernetes-version v1.34.4` printed (kubeadm v1.34.4)
KUBEADM_LIST_134 = """\
registry.k8s.io/kube-apiserver:v1.34.4
registry.k8s.io/kube-controller-manager:v1.34.4
registry.k8s.io/kube-scheduler:v1.34.4
registry.k8s.io/kube-proxy:v1.34.4
registry.k8s.io/coredns/coredns:v1.12.1
registry.k8s.io/pause:3.10.1
registry.k8s.io/etcd:3.6.5-0
"""


# --- versions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "major", "minor", "patch", "staging"),
    [
        ("v1.34.4", 1, 34, 4, "v0.34.4"),
        ("v1.34.0", 1, 34, 0, "v0.34.0"),
        (" v1.35.1 ", 1, 35, 1, "v0.35.1"),
    ],
)
def test_kube_version_parses_and_names_its_staging_release(
    text: str, major: int, minor: int, patch: int, staging: str
) -> None:
    v = KubeVersion.parse(text)
    assert (v.major, v.minor, v.patch) == (major, minor, patch)
    assert v.staging == staging
    assert str(v) == text.strip()


@pytest.mark.parametrize("bad", ["1.34.4", "v1.34", "v1.34.4-rc.0", "latest", ""])
def test_kube_version_rejects_what_is_not_a_release(bad: str) -> None:
    with pytest.raises(ValueError, match="Kubernetes release"):
        KubeVersion.parse(bad)


def test_image_table_agrees_with_what_kubeadm_134_lists() -> None:
    problems = versions.check_kubeadm_list(
        versions.kubeadm_images(V134), KUBEADM_LIST_134.splitlines()
    )
    assert problems == [], problems


def test_table_disagreement_is_reported_both_ways() -> None:
    listed = KUBEADM_LIST_134.replace("pause:3.10.1", "pause:3.11").splitlines()
    problems = versions.check_kubeadm_list(versions.kubeadm_images(V134), listed)
    assert problems == [
        "kubeadm asks for registry.k8s.io/pause:3.11, which the table lacks",
        "table has registry.k8s.io/pause:3.10.1, which kubeadm does not ask for",
    ]


def test_agnhost_tag_is_the_one_upstream_e2e_uses_for_134() -> None:
    assert versions.agnhost_image(V134) == "registry.k8s.io/e2e-test-images/agnhost:2.56"


def test_a_patch_release_keys_the_versions_table_by_its_minor() -> None:
    assert V134.release == Minor(1, 34) == Minor.parse(str(V134))
    assert versions.pins_for(V134) is RELEASES[V134.release].pins


def test_unknown_minor_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"known minors: 1\.25, .*1\.34"):
        versions.pins_for(KubeVersion.parse("v1.20.0"))


@pytest.mark.parametrize(
    ("tag", "module"), [("3.6.5-0", "v3.6.5"), ("3.5.24-0", "v3.5.24"), ("3.6.5", "v3.6.5")]
)
def test_etcd_image_tag_maps_to_module_version(tag: str, module: str) -> None:
    assert versions.etcd_module_version(tag) == module


@pytest.mark.parametrize(
    ("ref", "containerd_name"),
    [
        ("kindlab/component-etcd:abc", "docker.io/kindlab/component-etcd:abc"),
        ("busybox:1", "docker.io/library/busybox:1"),
        ("registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"),
        ("localhost/kindlab/kindnet:x", "localhost/kindlab/kindnet:x"),
    ],
)
def test_docker_saved_names_as_containerd_sees_them(ref: str, containerd_name: str) -> None:
    assert _docker_hub_name(ref) == containerd_name


# --- cache keys -------------------------------------------------------------------


def test_cache_key_is_stable_and_order_independent() -> None:
    a = cache.cache_key("go", {"x": 1, "y": ["a", "b"]})
    b = cache.cache_key("go", {"y": ["a", "b"], "x": 1})
    assert a == b
    assert len(a) == 64


@pytest.mark.parametrize(
    "other",
    [
        ("go", {"x": 2, "y": ["a", "b"]}),
        ("go", {"x": 1, "y": ["b", "a"]}),
        ("rootfs", {"x": 1, "y": ["a", "b"]}),
    ],
)
def test_cache_key_changes_with_any_input(other: tuple[str, dict[str, object]]) -> None:
    assert cache.cache_key("go", {"x": 1, "y": ["a", "b"]}) != cache.cache_key(*other)


def test_cache_key_changes_with_recipe_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache.cache_key("node", {})
    monkeypatch.setattr(cache, "RECIPE_VERSION", "999")
    assert cache.cache_key("node", {}) != before


def test_hash_files_sees_content_and_mode(tmp_path: Path) -> None:
    f = tmp_path / "entrypoint"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    first = cache.hash_files(tmp_path, ["entrypoint"])
    f.chmod(0o755)
    second = cache.hash_files(tmp_path, ["entrypoint"])
    f.write_text("#!/bin/bash\n")
    third = cache.hash_files(tmp_path, ["entrypoint"])
    assert len({first, second, third}) == 3


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("KINDLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kindlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "kindlab"


# --- Go builds --------------------------------------------------------------------

K8S_GO_MOD = """module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
\tgithub.com/x/y v1.2.3
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/thing => github.com/fork/thing v1.0.0
)
"""


def test_staging_modules_are_the_local_replaces_only() -> None:
    assert gobuild.staging_modules(K8S_GO_MOD) == ["k8s.io/api", "k8s.io/client-go"]


def test_staging_modules_refuses_a_go_mod_without_them() -> None:
    with pytest.raises(ValueError, match="staging"):
        gobuild.staging_modules("module x\n")


def test_kubernetes_wrapper_replaces_staging_with_releases() -> None:
    build = gobuild.kubernetes_build(V134, K8S_GO_MOD)
    assert build.go_mod == (
        "module kindlab.invalid/build/kubernetes\n\ngo 1.24.0\n\n"
        "require (\n\tk8s.io/kubernetes v1.34.4\n)\n\n"
        "replace (\n\tk8s.io/api => k8s.io/api v0.34.4\n"
        "\tk8s.io/client-go => k8s.io/client-go v0.34.4\n)\n"
    )
    assert build.outputs() == (
        "kubeadm",
        "kubelet",
        "kubectl",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "agnhost",
    )


def test_kubernetes_ldflags_set_the_real_version() -> None:
    flags = gobuild.kubernetes_ldflags(V134)
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.34.4" in flags


@pytest.mark.parametrize(
    ("package", "binary"),
    [
        ("go.etcd.io/etcd/server/v3", "server"),
        ("github.com/coredns/coredns", "coredns"),
        ("sigs.k8s.io/cri-tools/cmd/crictl", "crictl"),
        ("k8s.io/kubernetes/test/images/agnhost", "agnhost"),
    ],
)
def test_binary_name_follows_go_build_rules(package: str, binary: str) -> None:
    assert gobuild.binary_name(package) == binary


def test_component_builds_pin_kubeadms_versions() -> None:
    builds = {b.name: b for b in gobuild.component_builds(versions.pins_for(V134), "v0.0.30")}
    assert builds["etcd"].outputs() == ("etcd",)
    assert "go.etcd.io/etcd/server/v3 v3.6.5" in (builds["etcd"].go_mod or "")
    assert "github.com/coredns/coredns v1.12.1" in (builds["coredns"].go_mod or "")
    assert "sigs.k8s.io/cri-tools v1.34.0" in (builds["crictl"].go_mod or "")


def test_only_coredns_pins_whose_x_net_linknames_recvmsg_turn_off_the_linkname_check() -> None:
    with_flag = []
    for minor, release in sorted(RELEASES.items()):
        if release.pins is None:
            continue
        builds = {b.name: b for b in gobuild.component_builds(release.pins, "v0.0.30")}
        if "-checklinkname=0" in builds["coredns"].ldflags.split():
            with_flag.append(str(minor))
        # the default image's CoreDNS (and its cache key) is untouched
        assert "-checklinkname=0" not in builds["etcd"].ldflags
    assert with_flag == ["1.25", "1.26"]  # CoreDNS v1.9.3; 1.27's v1.10.1 needs none
    with pytest.raises(ValueError, match="CoreDNS version"):
        gobuild.coredns_ldflags("latest")


def test_tools_go_imports_each_package_behind_a_build_tag() -> None:
    text = gobuild.tools_go(("a/b", "c/d"))
    assert text.startswith("//go:build tools\n")
    assert '\t_ "a/b"\n\t_ "c/d"\n' in text


# --- kind sources -----------------------------------------------------------------

CONST_GO = """package nodeimage

const kindnetdImage = "docker.io/kindest/kindnetd:v20250512-df8de77b"

var defaultCNIImages = []string{kindnetdImage}

const defaultCNIManifest = `
# would you kindly template this file
spec:
  containers:
  - image: ` + kindnetdImage + `
    env:
    - name: POD_SUBNET
      value: {{ .PodSubnet }}
`

const withEscapes = "a\\tb" + "\\"q\\""
const notAString = 42
"""


def test_go_string_consts_join_literals_and_names() -> None:
    consts = kindsrc.go_string_consts(CONST_GO)
    assert consts["kindnetdImage"] == "docker.io/kindest/kindnetd:v20250512-df8de77b"
    assert (
        "  - image: docker.io/kindest/kindnetd:v20250512-df8de77b\n" in consts["defaultCNIManifest"]
    )
    assert consts["withEscapes"] == 'a\tb"q"'
    assert "notAString" not in consts
    assert "defaultCNIImages" not in consts


def test_render_cni_manifest_swaps_only_the_image_and_keeps_the_template() -> None:
    consts = kindsrc.go_string_consts(CONST_GO)
    out = kindsrc.render_cni_manifest(
        consts["defaultCNIManifest"], consts["kindnetdImage"], "localhost/kindlab/kindnet:abc"
    )
    assert "image: localhost/kindlab/kindnet:abc" in out
    assert "kindest/kindnetd" not in out
    assert "{{ .PodSubnet }}" in out


def test_render_cni_manifest_refuses_a_manifest_without_the_image() -> None:
    with pytest.raises(kindsrc.KindSourceError, match="once"):
        kindsrc.render_cni_manifest("kind: DaemonSet\n", "docker.io/kindest/kindnetd:x", "y")


def test_sandbox_image_is_read_from_containerd_config() -> None:
    toml = '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.10"\n'
    assert kindsrc.sandbox_image(toml) == "registry.k8s.io/pause:3.10"
    with pytest.raises(kindsrc.KindSourceError):
        kindsrc.sandbox_image("version = 2\n")


# --- images -----------------------------------------------------------------------


def test_every_component_image_is_built_from_local_bases_only() -> None:
    specs = images.component_images("kindlab/static-base:1", "kindlab/rootfs:2")
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    for spec in specs:
        base = spec.dockerfile.splitlines()[0]
        assert base in ("FROM scratch", "FROM kindlab/static-base:1", "FROM kindlab/rootfs:2"), spec


def test_kube_proxy_image_routes_every_iptables_name_through_the_wrapper() -> None:
    proxy = next(s for s in images.component_images("s", "d") if s.name == "kube-proxy")
    for name in images.IPTABLES_NAMES:
        assert f" {name}" in proxy.dockerfile
    assert proxy.extra_files[0][0] == "iptables-wrapper"
    wrapper = proxy.extra_files[0][1]
    assert "KUBE-IPTABLES-HINT" in wrapper
    # kind's entrypoint gives a tie to legacy; the wrapper must agree
    assert '[ "$legacy" -ge "$nft" ]' in wrapper


def test_node_base_lets_runc_work_without_cap_sys_resource() -> None:
    script = images.node_base_script()
    assert "s/restrict_oom_score_adj = false/restrict_oom_score_adj = true/" in script
    # and fails the build if kind's config no longer has the line to flip
    assert "grep -q 'restrict_oom_score_adj = true'" in script


def test_node_base_bridges_debian_paths_to_kinds() -> None:
    script = images.node_base_script()
    assert 'ln -sf "/usr/bin/$b" "/usr/local/bin/$b"' in script
    assert 'ln -sf "$p" "/opt/cni/bin/$(basename "$p")"' in script
    assert "systemctl enable kubelet.service containerd.service" in script


def test_prune_keeps_the_newest_per_repository_and_node_version() -> None:
    from kindlab.nodeimage.build import prune_candidates

    newest_first = [
        "kindlab/node:v1.34.4-bbb",
        "kindlab/component-etcd:222",
        "kindlab/node:v1.35.0-ccc",
        "kindlab/node:v1.34.4-aaa",
        "kindlab/component-etcd:111",
        "kindlab/rootfs:r1",
    ]
    assert prune_candidates(newest_first, everything=False) == [
        "kindlab/node:v1.34.4-aaa",
        "kindlab/component-etcd:111",
    ]
    assert prune_candidates(newest_first, everything=True) == newest_first


# --- the recipe's tag, without building -----------------------------------------------


def _build_module() -> ModuleType:
    # kindlab.nodeimage.build is also the name of the package's build() function
    return importlib.import_module("kindlab.nodeimage.build")


FAKE_DOCKER = """\
#!/bin/sh
# A Docker engine with no images: every inspect fails; every call is logged.
echo "$*" >> "$FAKE/calls"
case "$1 $2" in
  "image inspect") echo "Error: No such image" >&2; exit 1 ;;
  *) echo "unexpected: $*" >&2; exit 99 ;;
esac
"""


@pytest.fixture
def empty_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER)
    (bindir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE", str(tmp_path))
    monkeypatch.setenv("KINDLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "calls"


def test_recipe_tag_without_go_is_unknown_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    build = _build_module()

    monkeypatch.setattr(build, "GO_CANDIDATES", ("/no/such/go",))
    with pytest.raises(build.RecipeUnknown, match=r"^Go \(>= 1.24\) is needed"):
        build.recipe_tag("v1.34.4")


def test_recipe_tag_reads_modules_from_the_cache_only(
    empty_docker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kindlab.errors import CommandError

    build = _build_module()

    asked: list[tuple[str, bool]] = []

    def module_dir(go: str, module: str, version: str, *, offline: bool = False) -> Path:
        asked.append((module, offline))
        argv = [go, "mod", "download", "-json", f"{module}@{version}"]
        raise CommandError(argv, 1, '{"Error": "module lookup disabled by GOPROXY=off"}')

    monkeypatch.setattr(build, "module_dir", module_dir)
    monkeypatch.setattr(build, "find_go", lambda: "go")
    with pytest.raises(build.RecipeUnknown) as info:
        build.recipe_tag("v1.34.4")
    assert asked == [("sigs.k8s.io/kind", True)]
    assert str(info.value) == "`go mod download -json sigs.k8s.io/kind@v0.30.0` failed"


def _kind_module() -> Path:
    gocache = os.environ.get("GOMODCACHE") or str(Path.home() / "go" / "pkg" / "mod")
    return Path(gocache) / f"sigs.k8s.io/kind@{versions.KIND_VERSION}"


@pytest.mark.skipif(not _kind_module().is_dir(), reason="kind's module is not in the Go cache")
def test_recipe_tag_stops_at_the_first_stage_not_cached_and_builds_nothing(
    empty_docker: Path,
) -> None:
    build = _build_module()

    with pytest.raises(build.RecipeUnknown, match=r"^its rootfs stage is not cached$"):
        build.recipe_tag("v1.34.4")
    calls = empty_docker.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("image inspect --format {{.Id}} kindlab/rootfs:")
