"""Which node image a run uses: the user's, kindlab's, kind's (pulled if need be), or a build.

In this order (issue 10, part 1):

1. ``--node-image``: used as given; Docker must have it (kindlab never pulls it).
2. kindlab's own image for the Kubernetes version, already in Docker: the one this
   kindlab's recipe makes (``kindlab/node:<version>-<key>``, :func:`~.build.recipe_tag`).
   Images of other recipes (an older kindlab, other inputs) are taken only when this
   kindlab cannot tell its own tag without building (a stage is not cached: the image
   came by ``docker load``, or the caches were cleared), and then the newest, saying so.
   When it can, its build reuses every stage and only assembles the node, so an image
   of another recipe, made by other code, is never worth the doubt.
3. kind's ``kindest/node`` image for that version as the pinned kind release publishes
   it (:data:`~kindlab.nodeimage.versions.KIND_NODE_IMAGES`), already in Docker or pulled.
4. kindlab's offline build (:func:`kindlab.nodeimage.build`).

``--node-image-source`` narrows it: ``auto`` is all of the above; ``pull`` is kind's image
alone, and a pull that fails is an error; ``build`` is the offline build alone (which
reuses its own cached image when nothing it is made of changed).

Without ``--kubernetes-version``, or with a minor (``1.34``), any patch release of that
minor will do (kindlab builds the patch :func:`kindlab.versions.choose` picks, v1.34.4;
kind publishes v1.34.0); with a patch release (``v1.34.4``), only that one.

A pull that cannot reach its registry ends within :data:`PULL_ANSWER_TIMEOUT` seconds
(a name that does not resolve, a refused connection: at once), and ``auto`` goes on to
the build saying why.

:func:`plan` is pure: what the user asked (:class:`Wanted`) and what Docker has
(:class:`Found`) in, the steps to try out. :class:`DockerImages` is the thin driver
(``docker images``, ``docker image inspect``, ``docker pull``), and :func:`resolve`
walks the plan with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from kindlab.drivers.proc import run
from kindlab.errors import CommandError, KindlabError, PreconditionError
from kindlab.versions import Minor, choose, patch_number

from .versions import (
    DEFAULT_KUBERNETES_VERSION,
    KIND_NODE_IMAGES,
    KIND_NODE_REPO,
    KIND_VERSION,
)

Progress = Callable[[str], None]
Source = Literal["auto", "pull", "build"]
SOURCES: tuple[Source, ...] = ("auto", "pull", "build")
#: Where kind's images come from unless ``--node-image-registry`` says otherwise.
DEFAULT_REGISTRY = "docker.io"
#: Seconds a pull may wait for the registry's first answer before it counts as failed.
#: ``docker pull`` prints its first line once the registry has sent the manifest.
PULL_ANSWER_TIMEOUT = 15.0
#: Seconds a whole pull may take (kind's image is about 400 MB compressed).
PULL_TIMEOUT = 1800.0
#: kindlab's node images (as :mod:`kindlab.nodeimage.build` names and labels them).
NODE_REPO = "kindlab/node"
_LABEL = "io.kindlab"

SOURCE_HELP = (
    "where the node image comes from when --node-image is not given: auto (kindlab's image "
    "in Docker, else kind's kindest/node for the version, in Docker or pulled, else "
    "kindlab's offline build), pull (kind's image only; a failed pull is an error) or "
    "build (kindlab's offline build only)"
)
REGISTRY_HELP = (
    "registry (and path) that kind's kindest/node images are pulled from (default docker.io,"
    " pinned by kind's digests; another registry is pulled by tag)"
)


def default_source() -> str:
    """``$KINDLAB_NODE_IMAGE_SOURCE``, else ``auto``."""
    return os.environ.get("KINDLAB_NODE_IMAGE_SOURCE") or "auto"


def default_registry() -> str:
    """``$KINDLAB_NODE_IMAGE_REGISTRY``, else docker.io."""
    return os.environ.get("KINDLAB_NODE_IMAGE_REGISTRY") or DEFAULT_REGISTRY


# -- what was asked, what Docker has, what to do --------------------------------------


@dataclass(frozen=True)
class Wanted:
    """What the user asked for. Invalid input raises :class:`PreconditionError` (one line)."""

    image: str | None = None  # --node-image
    #: --kubernetes-version, one ("1.34" or "v1.34.4"); None: any of kindlab's default minor
    kubernetes_version: str | None = None
    source: str = "auto"  # --node-image-source
    registry: str = DEFAULT_REGISTRY  # --node-image-registry
    #: False where kind's image cannot serve: the ipvs guest needs ipvsadm, which
    #: kind's image lacks.
    kind_images: bool = True

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise PreconditionError(
                f"--node-image-source {self.source!r}: expected one of {', '.join(SOURCES)}"
            )
        if not self.registry.strip("/"):
            raise PreconditionError("--node-image-registry: empty")
        if self.image is None:
            _ = self.version  # a version kindlab cannot use is said here, at once

    @property
    def version(self) -> str:
        """The patch release of kindlab's image (:func:`kindlab.versions.choose`)."""
        requested = self.kubernetes_version or DEFAULT_KUBERNETES_VERSION
        try:
            choice = choose(requested)
        except PreconditionError as exc:
            raise PreconditionError(f"--kubernetes-version: {exc}") from None
        if choice.kind.version != KIND_VERSION:
            raise PreconditionError(
                f"Kubernetes {choice.patch} needs kind {choice.kind.version}, not kindlab's "
                f"{KIND_VERSION}: {choice.kind.note}; not supported yet (issue 8)"
            )
        return choice.patch


@dataclass(frozen=True)
class KindImage:
    """kind's node image for a release, as pulled from the chosen registry."""

    version: str
    ref: str  # what is inspected, pulled and given to kind
    pinned: bool  # by kind's digest (docker.io), else by tag


def kind_image(wanted: Wanted) -> KindImage | None:
    """kind's image that fits ``wanted``, or None when the kind release publishes none."""
    requested = wanted.kubernetes_version
    if requested is not None and patch_number(requested) is not None:
        version: str | None = wanted.version if wanted.version in KIND_NODE_IMAGES else None
    else:  # a minor, or nothing asked: kind's image of that minor, whatever its patch
        minor = Minor.parse(requested or DEFAULT_KUBERNETES_VERSION)
        same_minor = [v for v in KIND_NODE_IMAGES if Minor.parse(v) == minor]
        version = max(same_minor, key=lambda v: patch_number(v) or 0) if same_minor else None
    if version is None:
        return None
    registry = wanted.registry.strip("/")
    if registry == DEFAULT_REGISTRY:
        return KindImage(version, f"{KIND_NODE_REPO}:{version}@{KIND_NODE_IMAGES[version]}", True)
    return KindImage(version, f"{registry}/{KIND_NODE_REPO}:{version}", False)


@dataclass(frozen=True)
class Found:
    """What Docker already has, of the images :func:`plan` could use."""

    kindlab: tuple[str, ...] = ()  # kindlab's node images for the version, newest first
    kind: bool = False  # kind's image (:func:`kind_image`) is in Docker
    #: The tag this kindlab's recipe gives the version's image; None: not known
    #: without a build, and ``unknown`` says why.
    recipe: str | None = None
    unknown: str = ""

    @property
    def others(self) -> tuple[str, ...]:
        """kindlab's images in Docker that are known to be of other recipes."""
        if self.recipe is None:
            return ()
        return tuple(ref for ref in self.kindlab if ref != self.recipe)


Action = Literal["given", "local", "pull", "build"]


@dataclass(frozen=True)
class Step:
    """One way to get the image: ``ref`` is an image, or the version for ``build``."""

    action: Action
    ref: str
    what: str  # for people: whose image, for which version, from where


def plan(wanted: Wanted, found: Found) -> tuple[Step, ...]:
    """The steps to try, in order: each but the last may fail (only a pull can).

    Raises :class:`PreconditionError` when ``pull`` is asked for and cannot be done.
    """
    if wanted.image:
        return (Step("given", wanted.image, "--node-image"),)
    version = wanted.version
    build = Step("build", version, f"kindlab's offline build of {version}")
    if wanted.source == "build":
        return (build,)
    kind = kind_image(wanted) if wanted.kind_images else None
    if wanted.source == "pull":
        if not wanted.kind_images:
            raise PreconditionError(
                "--node-image-source pull: the ipvs guest needs kindlab's node image (kind's "
                "has no ipvsadm); use --node-image-source auto or build"
            )
        if kind is None:
            raise PreconditionError(_none_published(version))
    else:
        ours = _kindlab_image(version, found)
        if ours is not None:
            return (ours,)
    if kind is None:
        return (build,)
    whose = f"kind {KIND_VERSION}'s image for {kind.version}"
    if found.kind:
        return (Step("local", kind.ref, f"{whose}, in Docker"),)
    pull = Step("pull", kind.ref, whose)
    return (pull,) if wanted.source == "pull" else (pull, build)


def _kindlab_image(version: str, found: Found) -> Step | None:
    """kindlab's image in Docker that ``auto`` takes (module docstring, item 2), if any."""
    if found.recipe is not None:
        if found.recipe not in found.kindlab:
            return None
        return Step("local", found.recipe, f"kindlab's image for {version}, in Docker")
    if not found.kindlab:
        return None
    what = (
        f"kindlab's newest image for {version}, in Docker; whether this kindlab's recipe "
        f"makes it is not known without a build ({found.unknown})"
    )
    return Step("local", found.kindlab[0], what)


def _none_published(version: str) -> str:
    published = ", ".join(KIND_NODE_IMAGES)
    return (
        f"--node-image-source pull: kind {KIND_VERSION} publishes no node image for "
        f"Kubernetes {version} (it does for {published}); ask for one of those with "
        "--kubernetes-version, or use --node-image-source auto or build"
    )


# -- reading docker's output (pure) -----------------------------------------------------


def newest_first(listing: str) -> tuple[str, ...]:
    """``REPO:TAG<TAB>CREATED`` lines of ``docker images`` -> the references, newest first."""
    rows = [line.split("\t") for line in listing.splitlines() if line.count("\t") == 1]
    rows.sort(key=lambda row: row[1], reverse=True)
    return tuple(row[0] for row in rows)


_LAYER = re.compile(r"^(?P<id>[0-9a-f]{12}): (?P<status>.+)$")
_IN_PLACE = ("Pull complete", "Already exists")
_FETCHED = ("Download complete", *_IN_PLACE)


class PullProgress:
    """``docker pull`` lines (no terminal: one line per layer event) -> progress lines.

    Says where the pull comes from, then one line each time a layer is downloaded or in
    place, then docker's digest and status lines. Other lines (waiting, verifying) are
    left out; an error comes back with the failed command.
    """

    def __init__(self) -> None:
        self.layers: dict[str, str] = {}

    def feed(self, line: str) -> str | None:
        line = line.strip()
        match = _LAYER.match(line)
        if match is None:
            if line.startswith(("Digest: ", "Status: ")) or ": Pulling from " in line:
                return line
            return None
        before = self.counts()
        self.layers[match["id"]] = match["status"]
        after = self.counts()
        if after == before or match["status"] not in _FETCHED:
            return None
        fetched, in_place = after
        n = len(self.layers)
        return f"layers: {fetched}/{n} downloaded, {in_place}/{n} in place"

    def counts(self) -> tuple[int, int]:
        statuses = list(self.layers.values())
        return (
            sum(s in _FETCHED for s in statuses),
            sum(s in _IN_PLACE for s in statuses),
        )


# Checked in order: the first that matches names the cause.
_CAUSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("no such host", "server misbehaving", "temporary failure in name resolution"),
        "the registry's name does not resolve",
    ),
    (("connection refused",), "the registry refused the connection"),
    (("network is unreachable", "no route to host"), "no route to the registry"),
    (
        ("i/o timeout", "tls handshake timeout", "context deadline exceeded", "client.timeout"),
        "the registry did not answer in time",
    ),
    (
        ("server gave http response to https client",),
        "the registry speaks plain HTTP and Docker asks for HTTPS (Docker allows HTTP only "
        "for 127.0.0.0/8 and its insecure-registries)",
    ),
    (("x509", "certificate"), "the registry's TLS certificate was refused"),
    (("toomanyrequests",), "the registry's rate limit was hit"),
    (
        ("unauthorized", "denied", "authentication required"),
        "the registry refused access (docker login?)",
    ),
    (("manifest unknown", "not found", "does not exist"), "the registry does not have it"),
)


def pull_failure(output: str, *, timed_out: bool = False) -> str:
    """Why a ``docker pull`` failed, in one line: the cause, then docker's own words."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith(("error", "failed"))]
    detail = (errors or lines or [""])[-1]
    if len(detail) > 240:
        detail = detail[:239] + "…"
    if timed_out and not errors:
        return f"no answer from the registry within {PULL_ANSWER_TIMEOUT:g} s"
    text = detail.lower()
    cause = next((why for needles, why in _CAUSES if any(n in text for n in needles)), None)
    if cause is None:
        return f"docker pull failed ({detail})" if detail else "docker pull failed"
    return f"{cause} ({detail})" if detail else cause


# -- the driver ---------------------------------------------------------------------------


class PullFailed(KindlabError):
    """A pull that did not bring the image; ``reason`` is one line."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"could not pull {ref}: {reason}")


class Images(Protocol):
    """What :func:`resolve` asks of Docker (:class:`DockerImages`, or a fake in tests)."""

    def kindlab_images(self, version: str) -> tuple[str, ...]: ...
    def has(self, ref: str) -> bool: ...
    def pull(self, ref: str, progress: Progress) -> None: ...


class DockerImages:
    """Docker's images through its CLI (kindlab's one process runner)."""

    def kindlab_images(self, version: str) -> tuple[str, ...]:
        """kindlab's node images for ``version`` and kindlab's kind release, newest first."""
        out = run(
            [
                "docker",
                "images",
                "--filter",
                f"reference={NODE_REPO}:{version}-*",
                "--filter",
                f"label={_LABEL}.kubernetes-version={version}",
                "--filter",
                f"label={_LABEL}.kind-version={KIND_VERSION}",
                "--format",
                "{{.Repository}}:{{.Tag}}\t{{.CreatedAt}}",
            ],
            timeout=60,
        )
        return newest_first(out)

    def has(self, ref: str) -> bool:
        """Whether Docker has ``ref`` (a ``name:tag@digest`` is looked up by its digest)."""
        try:
            run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], timeout=60)
        except CommandError:
            return False
        return True

    def pull(self, ref: str, progress: Progress) -> None:
        """``docker pull ref`` with progress; :class:`PullFailed` says why it did not work."""
        lines = PullProgress()

        def on_line(line: str) -> None:
            message = lines.feed(line)
            if message:
                progress(f"pull: {message}")

        try:
            run(
                ["docker", "pull", ref],
                on_line=on_line,
                first_output_timeout=PULL_ANSWER_TIMEOUT,
                timeout=PULL_TIMEOUT,
            )
        except CommandError as exc:
            output = "\n".join(t for t in (exc.stdout, exc.stderr) if t)
            raise PullFailed(ref, pull_failure(output, timed_out=exc.timed_out)) from None


@dataclass(frozen=True)
class Choice:
    """The image a run uses, and how it came to be (for progress and the report)."""

    ref: str
    how: str


def _quiet(_: str) -> None:
    pass


def resolve(
    wanted: Wanted,
    *,
    docker: Images | None = None,
    progress: Progress = _quiet,
    build: Callable[[str, Progress], str] | None = None,
    require: Callable[[str], None] | None = None,
    recipe: Callable[[str], str] | None = None,
) -> Choice:
    """Find, pull or build the node image ``wanted`` asks for; say which and why.

    ``require`` checks a ``--node-image`` (default: Docker must have it, one-line
    error otherwise); ``build`` makes kindlab's image (default: the offline build);
    ``recipe`` tells the tag of the image it would make, or raises
    :class:`~.build.RecipeUnknown` (default: :func:`~.build.recipe_tag`).
    Raises :class:`PreconditionError` (one line) when nothing in the plan worked.
    """
    if wanted.image:
        check = require or _require_given
        check(wanted.image)
        return Choice(wanted.image, "--node-image")
    plan(wanted, Found())  # what was asked cannot be done: say so before asking Docker
    from .build import require_docker

    require_docker("to find or pull the node image")
    images = docker or DockerImages()
    kind = kind_image(wanted) if wanted.kind_images else None
    ours = images.kindlab_images(wanted.version) if wanted.source == "auto" else ()
    mine, unknown = _recipe(wanted.version, recipe or _recipe_tag) if ours else (None, "")
    found = Found(
        kindlab=ours,
        kind=kind is not None and wanted.source != "build" and images.has(kind.ref),
        recipe=mine,
        unknown=unknown,
    )
    if found.others:
        others = ", ".join(found.others)
        progress(
            f"node image: not taking kindlab's images of other recipes ({others}); "
            f"this kindlab's is {found.recipe}"
        )
    steps = plan(wanted, found)
    for index, step in enumerate(steps):
        rest = steps[index + 1 :]
        if step.action == "build":
            progress(f"node image: {step.what}")
            builder = build or _build
            return Choice(builder(step.ref, progress), step.what)
        if step.action != "pull":
            progress(f"node image {step.ref}: {step.what}")
            return Choice(step.ref, step.what)
        progress(f"node image: pulling {step.what}: {step.ref}")
        try:
            images.pull(step.ref, progress)
        except PullFailed as exc:
            if not rest:
                raise PreconditionError(
                    f"{exc}{' (--node-image-source pull)' if wanted.source == 'pull' else ''}"
                ) from None
            progress(f"node image: {exc}; going on with {rest[0].what}")
            continue
        return Choice(step.ref, f"{step.what}, pulled")
    raise AssertionError("plan() always ends in a step that cannot fail")  # pragma: no cover


def _require_given(ref: str) -> None:
    from kindlab.drivers.clusters import require_node_image

    require_node_image(ref)


def _recipe(version: str, recipe: Callable[[str], str]) -> tuple[str | None, str]:
    """:class:`Found`'s ``recipe`` and ``unknown``, from ``recipe(version)``."""
    from .build import RecipeUnknown

    try:
        return recipe(version), ""
    except RecipeUnknown as exc:
        return None, str(exc)


def _recipe_tag(version: str) -> str:
    from .build import recipe_tag

    return recipe_tag(version)


def _build(version: str, progress: Progress) -> str:
    from .build import build

    return build(version, progress=progress)
