"""kindlab's pull path through a real registry: Debian's docker-registry on 127.0.0.1.

kind's images live on docker.io, which the project's machines cannot reach, so a
registry on this machine stands in for it: a kindlab-built node image is pushed there
under kind's name (``127.0.0.1:PORT/kindest/node:v1.34.0``) and kindlab pulls it through
``--node-image-registry``. Docker allows plain HTTP to 127.0.0.0/8, so the daemon is not
touched. Setup is ``scripts/local-registry.sh`` (installs the package when missing,
serves on 127.0.0.1 only); at the end the registry stops, its storage is removed and so
is every tag the tests made.

Two tests need no registry: a registry name that cannot resolve (``.invalid``, RFC
6761) is the path the project's CI takes with docker.io, and a listener on 127.0.0.1
that never answers stands for a registry behind a network that drops packets.

One needs none at all: among kindlab's images in Docker, ``auto`` takes the one this
kindlab's recipe makes, not a newer one of another recipe.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kindlab.drivers.proc import run, started
from kindlab.errors import CommandError, PreconditionError
from kindlab.nodeimage import DEFAULT_KUBERNETES_VERSION, source
from kindlab.nodeimage.source import DockerImages, Wanted, resolve
from kindlab.paths import project_root

pytestmark = pytest.mark.live

SCRIPT = project_root() / "scripts" / "local-registry.sh"
#: kind's name for the image, as the local registry serves it.
KIND_TAG = "kindest/node:v1.34.0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} give them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _wait_for(url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the registry did not answer {url} within 30 s:\n{log.read_text()}"
            )
        time.sleep(0.3)


def _image_id(ref: str) -> str:
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", ref]).strip()


def _untag(ref: str) -> None:
    with contextlib.suppress(CommandError):
        run(["docker", "image", "rm", ref])  # a tag of an image with others: only the tag goes


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry serving on 127.0.0.1:<free port>; stopped and emptied after."""
    run(["bash", str(SCRIPT), "install"], timeout=600)
    port = _free_port()
    storage = tmp_path_factory.mktemp("registry")
    log = storage.parent / f"{storage.name}.log"
    argv = ["bash", str(SCRIPT), "serve", str(port), str(storage)]
    with started(argv, log_path=log):
        _wait_for(f"http://127.0.0.1:{port}/v2/", log)
        # 0100007F is 127.0.0.1 in /proc/net/tcp's byte order: no other address listens.
        assert _listeners(port) == {"0100007F"}, log.read_text()
        yield f"127.0.0.1:{port}"
    shutil.rmtree(storage)


@pytest.fixture(scope="module")
def pushed(registry: str) -> Iterator[str]:
    """kindlab's newest node image, pushed as ``<registry>/kindest/node:v1.34.0``.

    The local tag is removed again after the push, so that Docker has to pull it back.
    Yields the pushed image's ID.
    """
    ours = DockerImages().kindlab_images(DEFAULT_KUBERNETES_VERSION)
    if ours:
        image = ours[0]
    else:
        from kindlab import nodeimage

        image = nodeimage.build(DEFAULT_KUBERNETES_VERSION, progress=print)
    ref = f"{registry}/{KIND_TAG}"
    run(["docker", "tag", image, ref])
    try:
        run(["docker", "push", ref], timeout=240)
        _untag(ref)
        yield _image_id(image)
    finally:
        _untag(ref)


def test_kindlab_pulls_kinds_image_through_the_registrys_name(registry: str, pushed: str) -> None:
    ref = f"{registry}/{KIND_TAG}"
    said: list[str] = []
    started_at = time.monotonic()
    try:
        choice = resolve(Wanted(source="pull", registry=registry), progress=said.append)
        assert choice.ref == ref, said
        assert choice.how == "kind v0.30.0's image for v1.34.0, pulled"
        assert _image_id(ref) == pushed  # the very image that was pushed
        assert f"node image: pulling kind v0.30.0's image for v1.34.0: {ref}" in said
        assert "pull: v1.34.0: Pulling from kindest/node" in said
        assert any(line.startswith("pull: Digest: sha256:") for line in said), said
        assert time.monotonic() - started_at < 120
        # Now in Docker: the next choice takes it without a pull.
        again = resolve(Wanted(source="pull", registry=registry))
        assert again.how == "kind v0.30.0's image for v1.34.0, in Docker"
    finally:
        _untag(ref)


def test_a_release_the_registry_lacks_is_one_line(registry: str) -> None:
    wanted = Wanted(source="pull", registry=registry, kubernetes_version="v1.33.4")
    with pytest.raises(PreconditionError) as info:
        resolve(wanted)
    message = str(info.value)
    assert message.startswith(
        f"could not pull {registry}/kindest/node:v1.33.4: the registry does not have it ("
    ), message
    assert "\n" not in message and message.endswith("(--node-image-source pull)")


class _NoKindlabImages(DockerImages):
    """Docker as it is, except that kindlab has no image of its own for the version."""

    def kindlab_images(self, version: str) -> tuple[str, ...]:
        return ()


def test_a_registry_name_that_does_not_resolve_goes_on_to_the_build_within_seconds() -> None:
    registry = "kindlab-no-such-registry.invalid"
    said: list[str] = []
    built: list[str] = []

    def build(version: str, progress: source.Progress) -> str:
        built.append(version)
        return "kindlab/node:built-here"

    started_at = time.monotonic()
    choice = resolve(
        Wanted(registry=registry), docker=_NoKindlabImages(), progress=said.append, build=build
    )
    assert time.monotonic() - started_at < source.PULL_ANSWER_TIMEOUT
    assert choice.ref == "kindlab/node:built-here" and built == ["v1.34.4"]
    fell = [line for line in said if line.startswith("node image: could not pull")]
    assert len(fell) == 1, said
    assert (
        f"could not pull {registry}/kindest/node:v1.34.0: the registry's name does not "
        in (fell[0])
    )
    assert fell[0].endswith("; going on with kindlab's offline build of v1.34.4")


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A listener on 127.0.0.1 that accepts connections and never answers."""
    held: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    held.append(server.accept()[0])

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield f"127.0.0.1:{server.getsockname()[1]}"
        finally:
            stop.set()
            thread.join()
            for conn in held:
                conn.close()


def test_a_registry_that_never_answers_fails_within_the_answer_timeout(
    silent_registry: str,
) -> None:
    wanted = Wanted(source="pull", registry=silent_registry)
    started_at = time.monotonic()
    with pytest.raises(PreconditionError) as info:
        resolve(wanted)
    assert time.monotonic() - started_at < source.PULL_ANSWER_TIMEOUT + 5
    assert str(info.value).startswith(f"could not pull {silent_registry}/kindest/node:v1.34.0: "), (
        info.value
    )
    assert "answer" in str(info.value)  # ours (no answer within 15 s), or Docker's own timeout


def test_auto_takes_this_kindlabs_recipe_not_the_newest_kindlab_image(tmp_path: Path) -> None:
    from kindlab import nodeimage

    mine = nodeimage.build(DEFAULT_KUBERNETES_VERSION, progress=print)  # cached: seconds
    # A newer image with kindlab's name and labels that this recipe did not make: the
    # same layers under a new config (a label), so created now, as a rebuild would be.
    other = f"{source.NODE_REPO}:{DEFAULT_KUBERNETES_VERSION}-000000000000"
    (tmp_path / "Dockerfile").write_text(f"FROM {mine}\nLABEL io.kindlab.test=other-recipe\n")
    argv = ["docker", "build", "--network", "none", "-q", "-t", other, str(tmp_path)]
    run(argv, env={"DOCKER_BUILDKIT": "0"}, timeout=120)
    try:
        assert DockerImages().kindlab_images(DEFAULT_KUBERNETES_VERSION)[0] == other
        said: list[str] = []
        choice = resolve(
            Wanted(), progress=said.append, build=lambda v, p: pytest.fail(f"built {v}")
        )
        assert choice.ref == mine, said
        assert choice.how == f"kindlab's image for {DEFAULT_KUBERNETES_VERSION}, in Docker"
        assert any(
            line.startswith("node image: not taking kindlab's images of other recipes (")
            and other in line
            for line in said
        ), said
    finally:
        _untag(other)
