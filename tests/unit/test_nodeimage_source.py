"""The node image choice: the pure plan, docker's output read, and the driver on a fake docker.

No test here talks to a Docker engine or a registry: the driver's tests put a small
``docker`` script first on PATH that answers as the real one does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kindlab.errors import PreconditionError
from kindlab.nodeimage import source, versions
from kindlab.nodeimage.source import (
    Choice,
    DockerImages,
    Found,
    PullFailed,
    PullProgress,
    Step,
    Wanted,
    kind_image,
    newest_first,
    plan,
    pull_failure,
    resolve,
)
from kindlab.versions import KIND_RELEASES

KIND_134 = (
    "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
)
KIND_133 = (
    "kindest/node:v1.33.4@sha256:25a6018e48dfcaee478f4a59af81157a437f15e6e140bf103f85a2e7cd0cbbf2"
)
OURS = ("kindlab/node:v1.34.4-d09599e509aa", "kindlab/node:v1.34.4-8d25b2243a0f")
LOCAL_REG = "127.0.0.1:5000/kindest/node:v1.34.0"
BUILD_DEFAULT = Step("build", "v1.34.4", "kindlab's offline build of v1.34.4")
KIND_WHAT = "kind v0.30.0's image for v1.34.0"


# -- kind's published images -----------------------------------------------------------


def test_the_digests_are_the_four_kind_v0_30_0_publishes() -> None:
    assert versions.KIND_VERSION == "v0.30.0"
    assert sorted(versions.KIND_NODE_IMAGES) == ["v1.31.12", "v1.32.8", "v1.33.4", "v1.34.0"]
    assert all(len(d) == len("sha256:") + 64 for d in versions.KIND_NODE_IMAGES.values())


def test_kinds_default_image_in_the_versions_table_is_one_of_them() -> None:
    default = KIND_RELEASES[versions.KIND_VERSION].default_node  # "kindest/node:v1.34.0"
    assert default.removeprefix("kindest/node:") in versions.KIND_NODE_IMAGES


def _kind_module() -> Path:
    cache = os.environ.get("GOMODCACHE") or str(Path.home() / "go" / "pkg" / "mod")
    return Path(cache) / f"sigs.k8s.io/kind@{versions.KIND_VERSION}"


@pytest.mark.skipif(not _kind_module().is_dir(), reason="kind's module is not in the Go cache")
def test_kinds_default_image_in_its_module_is_the_v1_34_0_entry() -> None:
    text = (_kind_module() / "pkg/apis/config/defaults/image.go").read_text()
    assert f'const Image = "{KIND_134}"' in text


@pytest.mark.parametrize(
    ("wanted", "ref", "pinned"),
    [
        (Wanted(), KIND_134, True),  # no version asked: kind's for kindlab's default minor
        (Wanted(kubernetes_version="1.34"), KIND_134, True),  # a minor: any of its patches
        (Wanted(kubernetes_version="v1.33.4"), KIND_133, True),
        (Wanted(kubernetes_version="1.33"), KIND_133, True),
        (Wanted(registry="docker.io/"), KIND_134, True),
        (Wanted(registry="127.0.0.1:5000"), LOCAL_REG, False),
        (
            Wanted(registry="registry.corp/mirror/"),
            "registry.corp/mirror/kindest/node:v1.34.0",
            False,
        ),
    ],
)
def test_kind_image_by_digest_on_docker_io_else_by_tag(
    wanted: Wanted, ref: str, pinned: bool
) -> None:
    image = kind_image(wanted)
    assert image is not None
    assert (image.ref, image.pinned) == (ref, pinned)


@pytest.mark.parametrize("version", ["v1.34.4", "v1.33.0", "v1.35.0"])
def test_kind_image_is_none_for_a_release_kind_did_not_publish(version: str) -> None:
    assert kind_image(Wanted(kubernetes_version=version)) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"source": "registry"},
            "--node-image-source 'registry': expected one of auto, pull, build",
        ),
        ({"kubernetes_version": "latest"}, "--kubernetes-version: not a Kubernetes version"),
        ({"kubernetes_version": "1.20"}, "--kubernetes-version: Kubernetes 1.20: kindlab has no"),
        ({"kubernetes_version": "1.37"}, "Kubernetes v1.37.2 needs kind v0.33.0, not kindlab's"),
        ({"registry": "/"}, "--node-image-registry: empty"),
    ],
)
def test_wanted_refuses_bad_input_in_one_line(fields: dict[str, str], message: str) -> None:
    with pytest.raises(PreconditionError, match="^" + message.replace("(", r"\(")):
        Wanted(**fields)  # type: ignore[arg-type]


def test_a_given_image_is_not_held_to_the_version_table() -> None:
    assert Wanted(image="mine:1", kubernetes_version="1.37").image == "mine:1"


# -- the plan ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "found", "steps"),
    [
        pytest.param(
            Wanted(image="mine:1"),
            Found(kindlab=OURS, kind=True),
            [Step("given", "mine:1", "--node-image")],
            id="node-image-first-whatever-the-source",
        ),
        pytest.param(
            Wanted(image="mine:1", source="build"),
            Found(),
            [Step("given", "mine:1", "--node-image")],
            id="node-image-over-build",
        ),
        pytest.param(
            Wanted(),
            Found(kindlab=OURS, kind=True, recipe=OURS[1]),
            [Step("local", OURS[1], "kindlab's image for v1.34.4, in Docker")],
            id="auto-kindlab-in-docker-this-recipe-not-the-newest",
        ),
        pytest.param(
            Wanted(),
            Found(kindlab=OURS, kind=True, recipe="kindlab/node:v1.34.4-000000000000"),
            [Step("local", KIND_134, f"{KIND_WHAT}, in Docker")],
            id="auto-kindlab-images-of-other-recipes-are-not-taken",
        ),
        pytest.param(
            Wanted(),
            Found(kindlab=OURS, recipe="kindlab/node:v1.34.4-000000000000"),
            [Step("pull", KIND_134, KIND_WHAT), BUILD_DEFAULT],
            id="auto-other-recipes-then-pull-then-build",
        ),
        pytest.param(
            Wanted(),
            Found(kindlab=OURS, kind=True, unknown="its go kubernetes stage is not cached"),
            [
                Step(
                    "local",
                    OURS[0],
                    "kindlab's newest image for v1.34.4, in Docker; whether this kindlab's "
                    "recipe makes it is not known without a build (its go kubernetes stage "
                    "is not cached)",
                )
            ],
            id="auto-recipe-unknown-the-newest-saying-so",
        ),
        pytest.param(
            Wanted(),
            Found(kind=True),
            [Step("local", KIND_134, f"{KIND_WHAT}, in Docker")],
            id="auto-kind-in-docker",
        ),
        pytest.param(
            Wanted(),
            Found(),
            [Step("pull", KIND_134, KIND_WHAT), BUILD_DEFAULT],
            id="auto-pull-then-build",
        ),
        pytest.param(
            Wanted(kubernetes_version="v1.34.4"),
            Found(),
            [BUILD_DEFAULT],
            id="auto-version-kind-does-not-publish",
        ),
        pytest.param(
            Wanted(kind_images=False),
            Found(kind=True),
            [BUILD_DEFAULT],
            id="auto-for-the-ipvs-guest-never-kinds",
        ),
        pytest.param(
            Wanted(source="pull"),
            Found(kindlab=OURS),
            [Step("pull", KIND_134, KIND_WHAT)],
            id="pull-ignores-kindlabs-and-has-no-fallback",
        ),
        pytest.param(
            Wanted(source="pull", registry="127.0.0.1:5000"),
            Found(kind=True),
            [Step("local", LOCAL_REG, f"{KIND_WHAT}, in Docker")],
            id="pull-finds-it-in-docker",
        ),
        pytest.param(
            Wanted(source="build"),
            Found(kindlab=OURS, kind=True),
            [BUILD_DEFAULT],
            id="build-only",
        ),
    ],
)
def test_plan(wanted: Wanted, found: Found, steps: list[Step]) -> None:
    assert list(plan(wanted, found)) == steps


def test_plan_pull_for_a_release_kind_did_not_publish_names_those_it_did() -> None:
    with pytest.raises(PreconditionError) as info:
        plan(Wanted(source="pull", kubernetes_version="v1.34.4"), Found())
    assert str(info.value) == (
        "--node-image-source pull: kind v0.30.0 publishes no node image for Kubernetes "
        "v1.34.4 (it does for v1.34.0, v1.33.4, v1.32.8, v1.31.12); ask for one of those "
        "with --kubernetes-version, or use --node-image-source auto or build"
    )


def test_plan_pull_for_the_ipvs_guest_is_refused() -> None:
    with pytest.raises(PreconditionError, match="kind's has no ipvsadm"):
        plan(Wanted(source="pull", kind_images=False), Found())


# -- docker's output ---------------------------------------------------------------------

# `docker images --filter reference='kindlab/node:v1.34.4-*' --filter label=...
#  --format '{{.Repository}}:{{.Tag}}\t{{.CreatedAt}}'` on the project's machine
# (Docker 20.10.24), listed in another order here to show the sort.
LISTING = (
    "kindlab/node:v1.34.4-8d25b2243a0f\t2026-11-28 14:13:44 +0000 UTC\n"
    "kindlab/node:v1.34.4-d09599e509aa\t2026-11-28 14:42:42 +0000 UTC\n"
    "kindlab/node:v1.34.4-c4e155a4f89d\t2026-11-28 14:10:16 +0000 UTC\n"
)


def test_newest_first() -> None:
    assert newest_first(LISTING) == (*OURS, "kindlab/node:v1.34.4-c4e155a4f89d")
    assert newest_first("") == ()


PULL = """\
v1.34.0: Pulling from kindest/node
1a2b3c4d5e6f: Pulling fs layer
2b3c4d5e6f70: Pulling fs layer
3c4d5e6f7081: Already exists
1a2b3c4d5e6f: Waiting
2b3c4d5e6f70: Verifying Checksum
2b3c4d5e6f70: Download complete
1a2b3c4d5e6f: Download complete
1a2b3c4d5e6f: Pull complete
2b3c4d5e6f70: Pull complete
Digest: sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a
Status: Downloaded newer image for kindest/node@sha256:{digest}
docker.io/kindest/node@sha256:{digest}
""".format(digest="7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a")


def test_pull_progress_one_line_per_layer_downloaded_or_in_place() -> None:
    progress = PullProgress()
    said = [m for m in (progress.feed(line) for line in PULL.splitlines()) if m]
    assert said == [
        "v1.34.0: Pulling from kindest/node",
        "layers: 1/3 downloaded, 1/3 in place",
        "layers: 2/3 downloaded, 1/3 in place",
        "layers: 3/3 downloaded, 1/3 in place",
        "layers: 3/3 downloaded, 2/3 in place",
        "layers: 3/3 downloaded, 3/3 in place",
        "Digest: sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
        "Status: Downloaded newer image for kindest/node@sha256:"
        "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
    ]


RESOLVE = (
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
    "registry-1.docker.io on 10.0.0.2:53: no such host"
)
REFUSED = (
    'Error response from daemon: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: '
    "connect: connection refused"
)
MISSING = "Error response from daemon: manifest for 127.0.0.1:5000/kindest/node:v9 not found"


@pytest.mark.parametrize(
    ("output", "timed_out", "reason"),
    [
        (RESOLVE, False, f"the registry's name does not resolve ({RESOLVE})"),
        (REFUSED, False, f"the registry refused the connection ({REFUSED})"),
        (MISSING, False, f"the registry does not have it ({MISSING})"),
        ("", True, "no answer from the registry within 15 s"),
        ("Error: something new", False, "docker pull failed (Error: something new)"),
    ],
)
def test_pull_failure_names_the_cause_then_dockers_words(
    output: str, timed_out: bool, reason: str
) -> None:
    assert pull_failure(output, timed_out=timed_out) == reason


# -- the driver, on a fake docker ----------------------------------------------------------

FAKE_DOCKER = """\
#!/bin/sh
# Answers as docker does, from files in $FAKE: images.txt, have.txt, pull.sh.
echo "$*" >> "$FAKE/calls"
case "$1 $2" in
  "version "*) echo 20.10.24 ;;
  "images "*) cat "$FAKE/images.txt" 2>/dev/null || true ;;
  "image inspect")
    ref=$(eval echo \\${$#})
    grep -qxF "$ref" "$FAKE/have.txt" 2>/dev/null && exit 0
    echo "Error: No such image: $ref" >&2; exit 1 ;;
  "pull "*) . "$FAKE/pull.sh" ;;
  *) echo "unexpected: $*" >&2; exit 99 ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    docker = bindir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE", str(tmp_path))
    return tmp_path


def _calls(fake: Path) -> list[str]:
    path = fake / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_kindlab_images_asks_for_the_version_and_kind_release(fake: Path) -> None:
    (fake / "images.txt").write_text(LISTING)
    assert DockerImages().kindlab_images("v1.34.4")[:2] == OURS
    assert _calls(fake) == [
        "images --filter reference=kindlab/node:v1.34.4-* --filter "
        "label=io.kindlab.kubernetes-version=v1.34.4 --filter label=io.kindlab.kind-version=v0.30.0"
        " --format {{.Repository}}:{{.Tag}}\t{{.CreatedAt}}"
    ]


def test_a_pull_that_fails_to_resolve_falls_through_to_the_build_and_says_why(
    fake: Path,
) -> None:
    (fake / "pull.sh").write_text(f"echo '{RESOLVE}' >&2; exit 1\n")
    built: list[str] = []
    said: list[str] = []

    def build(version: str, progress: source.Progress) -> str:
        built.append(version)
        return "kindlab/node:v1.34.4-new"

    choice = resolve(Wanted(), progress=said.append, build=build)
    assert choice == Choice("kindlab/node:v1.34.4-new", "kindlab's offline build of v1.34.4")
    assert built == ["v1.34.4"]
    assert said[:3] == [
        f"node image: pulling {KIND_WHAT}: {KIND_134}",
        f"node image: could not pull {KIND_134}: the registry's name does not resolve "
        f"({RESOLVE}); going on with kindlab's offline build of v1.34.4",
        "node image: kindlab's offline build of v1.34.4",
    ]
    assert f"pull {KIND_134}" in _calls(fake)


def test_a_registry_that_never_answers_falls_through_within_the_answer_timeout(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "PULL_ANSWER_TIMEOUT", 0.5)
    (fake / "pull.sh").write_text("sleep 30\n")
    said: list[str] = []
    started = time.monotonic()
    choice = resolve(Wanted(), progress=said.append, build=lambda v, p: "built")
    assert time.monotonic() - started < 5
    assert choice.ref == "built"
    assert "no answer from the registry within 0.5 s" in said[1]


def test_with_source_pull_a_failed_pull_is_one_line(fake: Path) -> None:
    (fake / "pull.sh").write_text(f"echo '{REFUSED}' >&2; exit 1\n")
    wanted = Wanted(source="pull", registry="127.0.0.1:1")
    with pytest.raises(PreconditionError) as info:
        resolve(wanted, build=lambda v, p: pytest.fail("pull never builds"))
    assert str(info.value) == (
        "could not pull 127.0.0.1:1/kindest/node:v1.34.0: the registry refused the connection "
        f"({REFUSED}) (--node-image-source pull)"
    )


def test_a_pull_shows_its_progress_and_returns_the_pulled_ref(fake: Path) -> None:
    (fake / "pull.sh").write_text(f"cat <<'EOF'\n{PULL}EOF\n")
    said: list[str] = []
    choice = resolve(Wanted(source="pull"), progress=said.append)
    assert choice == Choice(KIND_134, f"{KIND_WHAT}, pulled")
    assert "pull: layers: 3/3 downloaded, 3/3 in place" in said
    assert said[-1].startswith("pull: Status: Downloaded newer image")


def test_an_image_in_docker_is_used_without_a_pull(fake: Path) -> None:
    (fake / "images.txt").write_text("")
    (fake / "have.txt").write_text(KIND_134 + "\n")
    choice = resolve(Wanted(), build=lambda v, p: pytest.fail("nothing to build"))
    assert choice == Choice(KIND_134, f"{KIND_WHAT}, in Docker")
    assert not [c for c in _calls(fake) if c.startswith("pull")]


def test_kindlabs_own_image_in_docker_wins_over_kinds(fake: Path) -> None:
    (fake / "images.txt").write_text(LISTING)
    (fake / "have.txt").write_text(KIND_134 + "\n")
    said: list[str] = []
    choice = resolve(Wanted(), progress=said.append, recipe=lambda version: OURS[1])
    assert choice == Choice(OURS[1], "kindlab's image for v1.34.4, in Docker")
    assert said == [
        f"node image: not taking kindlab's images of other recipes ({OURS[0]}, "
        f"kindlab/node:v1.34.4-c4e155a4f89d); this kindlab's is {OURS[1]}",
        f"node image {OURS[1]}: kindlab's image for v1.34.4, in Docker",
    ]


def test_when_the_recipe_cannot_be_told_the_newest_kindlab_image_is_taken_saying_why(
    fake: Path,
) -> None:
    from kindlab.nodeimage.build import RecipeUnknown

    def unknown(version: str) -> str:
        raise RecipeUnknown("its go kubernetes stage is not cached")

    (fake / "images.txt").write_text(LISTING)
    choice = resolve(Wanted(), recipe=unknown, build=lambda v, p: pytest.fail("no build"))
    assert choice.ref == OURS[0]
    assert choice.how.endswith("(its go kubernetes stage is not cached)")


def test_the_recipe_is_asked_only_when_docker_has_kindlab_images(fake: Path) -> None:
    (fake / "images.txt").write_text("")
    (fake / "have.txt").write_text(KIND_134 + "\n")
    choice = resolve(Wanted(), recipe=lambda version: pytest.fail("recipe asked"))
    assert choice.ref == KIND_134


def test_the_given_image_is_only_checked(fake: Path) -> None:
    checked: list[str] = []
    choice = resolve(Wanted(image="mine:1", source="pull"), require=checked.append)
    assert choice == Choice("mine:1", "--node-image")
    assert checked == ["mine:1"]
    assert _calls(fake) == []


def test_a_plan_that_cannot_be_done_is_said_before_docker_is_asked(fake: Path) -> None:
    with pytest.raises(PreconditionError, match="publishes no node image"):
        resolve(Wanted(source="pull", kubernetes_version="v1.34.4"))
    assert _calls(fake) == []


def test_pull_failed_carries_ref_and_reason() -> None:
    exc = PullFailed("a:1", "why")
    assert (exc.ref, exc.reason, str(exc)) == ("a:1", "why", "could not pull a:1: why")


# -- wired into the plugin and `kindlab up` ---------------------------------------------------

pytest_plugins = ["pytester"]

NEEDS_IMAGE = """
import pytest
from kindlab.pytest_plugin.output import one_line_errors

@pytest.fixture
def node_image(cluster_manager, kubernetes_version):
    # what the cluster fixture does first: the version's manager, with its image
    with one_line_errors():
        return cluster_manager.manager(kubernetes_version).image

def test_a(node_image):
    print("IMAGE", node_image)

def test_b(node_image):
    pass
"""


def _fake_kind(fake: Path) -> str:
    kind = fake / "kind"
    kind.write_text("#!/bin/sh\nexit 0\n")  # `kind get clusters`: none
    kind.chmod(0o755)
    return str(kind)


def test_plugin_pull_source_fails_each_test_with_one_line_and_pulls_once(
    pytester: pytest.Pytester, fake: Path
) -> None:
    (fake / "pull.sh").write_text(f"echo '{RESOLVE}' >&2; exit 1\n")
    pytester.makepyfile(NEEDS_IMAGE)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--node-image-source", "pull", "--kind-bin", _fake_kind(fake)
    )
    result.assert_outcomes(errors=2)
    line = (
        f"kindlab: could not pull {KIND_134}: the registry's name does not resolve "
        f"({RESOLVE}) (--node-image-source pull)"
    )
    out = result.stdout.lines
    for name in ("test_a", "test_b"):
        header = next(i for i, text in enumerate(out) if f"ERROR at setup of {name} " in text)
        assert out[header + 1] == line
    assert [c for c in _calls(fake) if c.startswith("pull")] == [f"pull {KIND_134}"]


def test_plugin_auto_goes_on_to_the_build_and_says_why(
    pytester: pytest.Pytester, fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fake / "pull.sh").write_text(f"echo '{RESOLVE}' >&2; exit 1\n")
    monkeypatch.setattr(source, "_build", lambda version, progress: f"kindlab/node:{version}-x")
    pytester.makepyfile(NEEDS_IMAGE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--kind-bin", _fake_kind(fake))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "kindlab: node image of v1.34.4 by --node-image-source auto; clusters deleted at the "
            "end",
            f"kindlab: node image: could not pull {KIND_134}: the registry's name does not "
            "resolve (*); going on with kindlab's offline build of v1.34.4",
            "IMAGE kindlab/node:v1.34.4-x",
        ]
    )


def test_up_with_pull_for_a_release_kind_did_not_publish_is_one_line(
    capsys: pytest.CaptureFixture[str], fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kindlab import cli
    from kindlab.drivers import kernel
    from kindlab.drivers.kernel import Support

    monkeypatch.setattr(kernel, "host_support", lambda mode: Support(mode, True, (), "test"))
    monkeypatch.setenv("KINDLAB_CACHE", str(fake / "cache"))
    argv = ["up", "--mode", "iptables", "--node-image-source", "pull"]
    code = cli.main([*argv, "--kubernetes-version", "v1.34.4"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "kindlab: error: --node-image-source pull: kind v0.30.0 publishes no node image for "
        "Kubernetes v1.34.4 (it does for v1.34.0, v1.33.4, v1.32.8, v1.31.12); ask for one of "
        "those with --kubernetes-version, or use --node-image-source auto or build"
    ]
    assert _calls(fake) == []


def test_up_takes_the_registry_from_the_environment(
    capsys: pytest.CaptureFixture[str], fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kindlab import cli
    from kindlab.drivers import kernel
    from kindlab.drivers.kernel import Support

    monkeypatch.setattr(kernel, "host_support", lambda mode: Support(mode, True, (), "test"))
    monkeypatch.setenv("KINDLAB_NODE_IMAGE_REGISTRY", "127.0.0.1:1")
    (fake / "pull.sh").write_text(f"echo '{REFUSED}' >&2; exit 1\n")
    code = cli.main(["up", "--mode", "iptables", "--node-image-source", "pull"])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "kindlab: error: could not pull 127.0.0.1:1/kindest/node:v1.34.0: the registry refused "
        f"the connection ({REFUSED}) (--node-image-source pull)"
    )
