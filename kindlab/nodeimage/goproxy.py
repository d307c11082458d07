"""What the Go module proxy serves: a small client, and the per-minor probe over it.

Not every Kubernetes patch release is buildable here: the proxy this machine uses
refuses some module zips ("403 This module version is not available"). The probe
asks, per minor, for each patch newest first: does the proxy serve
``k8s.io/kubernetes@v1.Y.Z`` and the ``.info``, ``.mod`` and ``.zip`` of every
staging module its go.mod replaces (``k8s.io/<staging>@v0.Y.Z``, which the build
wrapper of :mod:`kindlab.nodeimage.gobuild` requires, but for the :data:`NOT_LOADED`
ones, which the build never reads)? The first patch with no refusal is the choice;
the refusals of newer patches are its reason.

The Go command also verifies every module it downloads against the checksum database
(``GOSUMDB``, asked through the same proxy: ``<proxy>/sumdb/<name>/lookup/mod@ver``).
That database may lack a module the proxy serves: on 2026-11-28 it answered 404 for
13 staging modules of v1.25.15 (k8s.io/cloud-provider, controller-manager, cri-api,
kubelet …), and ``go mod tidy`` refused them. :func:`unverified` asks the database
for each module the build loads; the probe records its answer (``PatchProbe.unverified``)
and the build exempts exactly those modules (:func:`gonosumdb`).

The client talks HTTP through one callable (``fetch(method, path) -> Answer``), so
a probe can be recorded (:class:`Recorder`) and replayed offline in unit tests
(:class:`Replay`). What kindlab concluded from a probe is data in
:mod:`kindlab.versions`; ``python -m kindlab.nodeimage.goproxy`` runs the probe again.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .gobuild import staging_modules

KUBERNETES = "k8s.io/kubernetes"
#: Patch numbers probed per minor: the proxy answers 403 both for a refused and for
#: a version that does not exist, so each is asked (upstream's longest minor, 1.27,
#: reached .16).
MAX_PATCH = 20
#: Staging modules the build never loads: none of their packages is imported by the
#: commands kindlab builds, and Go's pruned module graph does not read even their
#: go.mod. Observed: the go.sum of the v1.34.4 build's wrapper module (2026-11-27) has
#: a zip hash for every other staging module and no line at all for these. Taken to
#: hold for the other minors too; the build itself names a module it cannot get.
NOT_LOADED = frozenset(
    {
        "k8s.io/code-generator",
        "k8s.io/sample-apiserver",
        "k8s.io/sample-cli-plugin",
        "k8s.io/sample-controller",
    }
)


@dataclass(frozen=True)
class Answer:
    """The proxy's answer to one request: status and body (or its error message)."""

    method: str
    path: str
    status: int
    text: str

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def message(self) -> str:
        """The proxy's own words when it refused, on one line."""
        return " ".join(self.text.split())[:200]


class Fetch(Protocol):
    def __call__(self, method: str, path: str) -> Answer: ...


def escape(module: str) -> str:
    """The proxy protocol's case encoding: ``github.com/BurntSushi`` -> ``!burnt!sushi``."""
    return re.sub(r"[A-Z]", lambda m: "!" + m[0].lower(), module)


def proxy_url(goproxy: str) -> str:
    """The first real proxy of a ``GOPROXY`` list (``direct`` and ``off`` are not)."""
    for part in re.split(r"[,|]", goproxy):
        part = part.strip().rstrip("/")
        if part and part not in ("direct", "off"):
            return part
    raise ValueError(f"GOPROXY={goproxy!r} names no module proxy")


def configured_proxy(go: str = "/usr/local/go/bin/go") -> str:
    return proxy_url(go_env_value(go, "GOPROXY"))


def configured_sumdb(go: str = "/usr/local/go/bin/go") -> str | None:
    """The checksum database ``go`` verifies against (None: ``GOSUMDB=off``)."""
    return sumdb_name(go_env_value(go, "GOSUMDB"))


def go_env_value(go: str, name: str) -> str:
    out = subprocess.run([go, "env", name], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def http_fetch(base: str, timeout: float = 60) -> Fetch:
    """A :class:`Fetch` over HTTP(S) to the proxy at ``base``, on one kept-alive connection.

    Bodies of HEAD requests (the zips) are never transferred.
    """
    parts = urllib.parse.urlsplit(base)
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn: list[http.client.HTTPConnection] = []

    def fetch(method: str, path: str) -> Answer:
        for attempt in (1, 2):
            if not conn:
                conn.append(factory(parts.netloc, timeout=timeout))
            try:
                conn[0].request(method, f"{parts.path}/{path}")
                response = conn[0].getresponse()
                body = response.read()
                return Answer(method, path, response.status, body.decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException):
                conn.pop().close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return fetch


class Recorder:
    """Wraps a :class:`Fetch` and keeps every answer, for :meth:`save`."""

    def __init__(self, fetch: Fetch, base: str) -> None:
        self.fetch = fetch
        self.base = base
        self.answers: dict[str, Answer] = {}

    def __call__(self, method: str, path: str) -> Answer:
        answer = self.fetch(method, path)
        self.answers[f"{method} {path}"] = answer
        return answer

    def save(self, path: Path, date: str, members: dict[str, dict[str, str]]) -> None:
        doc = {
            "proxy": self.base,
            "date": date,
            "answers": {
                key: {"status": a.status, "text": _keep(a)}
                for key, a in sorted(self.answers.items())
            },
            "members": members,
        }
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _keep(answer: Answer) -> str:
    """What a recording keeps of a body: the proxy's words when it refused; of a served
    k8s.io/kubernetes go.mod, its staging replaces; of other served files, nothing (the
    probe reads only their status)."""
    if not answer.ok:
        return answer.text
    if answer.path.startswith(f"{KUBERNETES}/@v/") and answer.path.endswith(".mod"):
        lines = [ln for ln in answer.text.splitlines() if "=> ./staging/" in ln]
        return "\n".join(lines) + "\n"
    return ""


class Replay:
    """A :class:`Fetch` that answers from a recording; an unrecorded request is an error."""

    def __init__(self, recording: Path) -> None:
        doc = json.loads(recording.read_text())
        self.proxy: str = doc["proxy"]
        self.date: str = doc["date"]
        self.members: dict[str, dict[str, str]] = doc.get("members", {})
        self.answers: dict[str, Answer] = {}
        for key, value in doc["answers"].items():
            method, path = key.split(" ", 1)
            self.answers[key] = Answer(method, path, int(value["status"]), str(value["text"]))

    def __call__(self, method: str, path: str) -> Answer:
        try:
            return self.answers[f"{method} {path}"]
        except KeyError:
            raise LookupError(f"not in the recording: {method} {path}") from None


# -- the probe ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One file of one module version the proxy did not serve."""

    module: str
    version: str
    file: str  # "info", "mod" or "zip"
    status: int
    message: str

    def __str__(self) -> str:
        return f"{self.module}@{self.version} .{self.file}: {self.status} {self.message}"


@dataclass(frozen=True)
class PatchProbe:
    version: str  # "v1.25.16"
    refusals: tuple[Refusal, ...]
    staging: tuple[str, ...]  # the staging modules asked about (all the build loads)
    #: Of those, the ones the checksum database has no line for (asked only when the
    #: probe was given a database): buildable, but only with GONOSUMDB naming them.
    unverified: tuple[str, ...] = ()

    @property
    def buildable(self) -> bool:
        return not self.refusals


@dataclass(frozen=True)
class MinorProbe:
    minor: str  # "1.25"
    served: tuple[str, ...]  # k8s.io/kubernetes patches the proxy has, newest first
    patches: tuple[PatchProbe, ...]  # probed newest first, up to the first buildable

    @property
    def chosen(self) -> PatchProbe | None:
        return next((p for p in self.patches if p.buildable), None)


def module_files(fetch: Fetch, module: str, version: str, files: Iterable[str]) -> list[Refusal]:
    """Ask for each file of ``module@version``; the refusals (first one per module)."""
    for file in files:
        method = "HEAD" if file == "zip" else "GET"
        answer = fetch(method, f"{escape(module)}/@v/{version}.{file}")
        if not answer.ok:
            return [Refusal(module, version, file, answer.status, answer.message)]
    return []


def sumdb_name(gosumdb: str) -> str | None:
    """The database's name in a ``GOSUMDB`` setting (None: ``off``, nothing is verified).

    >>> sumdb_name("sum.golang.org+033de0ae+Ac4zctda0e https://sum.example")
    'sum.golang.org'
    >>> sumdb_name(""), sumdb_name("off")
    ('sum.golang.org', None)
    """
    name = gosumdb.strip().split(" ")[0].split("+")[0]
    if name == "off":
        return None
    return name or "sum.golang.org"  # Go's default when GOSUMDB is empty


def unverified(fetch: Fetch, sumdb: str, modules: Iterable[str], version: str) -> tuple[str, ...]:
    """The ``modules`` (at ``version``) the checksum database ``sumdb`` has no line for.

    Asked as the Go command asks, through the proxy (``sumdb/<name>/lookup/...``). Only
    "not found" (404, 410) counts: any other failure is raised, not taken for a gap,
    so that a proxy that is down never turns verification off.
    """
    missing = []
    for module in modules:
        answer = fetch("GET", f"sumdb/{sumdb}/lookup/{escape(module)}@{version}")
        if answer.status in (404, 410):
            missing.append(module)
        elif not answer.ok:
            raise LookupError(
                f"checksum database {sumdb}: {module}@{version}: {answer.status} {answer.message}"
            )
    return tuple(missing)


def gonosumdb(current: str, modules: Iterable[str]) -> str:
    """``GONOSUMDB`` with ``modules`` added to what it already holds (exact module paths).

    A pattern matches a module path and its sub-paths by whole elements, so
    ``k8s.io/api`` exempts neither ``k8s.io/apiserver`` nor ``k8s.io/apimachinery``.

    >>> gonosumdb("", ["k8s.io/kubelet", "k8s.io/cri-api"])
    'k8s.io/cri-api,k8s.io/kubelet'
    >>> gonosumdb("example.com/private", ["k8s.io/kubelet"])
    'example.com/private,k8s.io/kubelet'
    """
    have = [p for p in current.split(",") if p.strip()]
    return ",".join(have + sorted(set(modules) - set(have)))


def probe_patch(fetch: Fetch, version: str, sumdb: str | None = None) -> PatchProbe:
    """Is ``k8s.io/kubernetes@version`` buildable from what the proxy serves?

    With ``sumdb`` (a checksum database's name), also which of its staging modules
    that database lacks (:func:`unverified`).
    """
    go_mod = fetch("GET", f"{KUBERNETES}/@v/{version}.mod")
    if not go_mod.ok:
        return PatchProbe(
            version, (Refusal(KUBERNETES, version, "mod", go_mod.status, go_mod.message),), ()
        )
    refusals = module_files(fetch, KUBERNETES, version, ("zip",))
    if refusals:
        return PatchProbe(version, tuple(refusals), ())
    staging = tuple(staging_modules(go_mod.text))
    staging_version = "v0." + version.split(".", 1)[1]
    needed = tuple(m for m in staging if m not in NOT_LOADED)
    for module in needed:
        # zip first: it is what the proxy refuses; .info and .mod only for served zips
        refusals += module_files(fetch, module, staging_version, ("zip", "info", "mod"))
    gaps = unverified(fetch, sumdb, needed, staging_version) if sumdb and not refusals else ()
    return PatchProbe(version, tuple(refusals), needed, gaps)


def probe_minor(
    fetch: Fetch,
    minor: int,
    max_patch: int = MAX_PATCH,
    progress: Callable[[str], None] | None = None,
    sumdb: str | None = None,
) -> MinorProbe:
    """Probe 1.<minor>'s patches newest first, down to the first buildable one."""
    served = tuple(
        v
        for v in (f"v1.{minor}.{p}" for p in range(max_patch, -1, -1))
        if fetch("GET", f"{KUBERNETES}/@v/{v}.info").ok
    )
    patches: list[PatchProbe] = []
    for version in served:
        patches.append(probe_patch(fetch, version, sumdb))
        if progress:
            progress(f"  {version}: {len(patches[-1].refusals)} refused")
        if patches[-1].buildable:
            break
    return MinorProbe(f"1.{minor}", served, tuple(patches))


# -- reading one file of a module zip, by HTTP ranges --------------------------------


class _RangeFile(io.RawIOBase):
    """A seekable read-only view of a remote file, read by HTTP Range requests."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.url = url
        self.timeout = timeout
        self.pos = 0
        head = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(head, timeout=timeout) as response:
            self.size = int(response.headers["Content-Length"])

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.size - self.pos)
        if want <= 0:
            return 0
        request = urllib.request.Request(
            self.url, headers={"Range": f"bytes={self.pos}-{self.pos + want - 1}"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            data = response.read()
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def zip_members(base: str, module: str, version: str, names: Iterable[str]) -> dict[str, str]:
    """Some files of a module's zip (``path -> text``), read without the whole zip.

    Names are paths inside the module; a missing one is left out.
    """
    url = f"{base}/{escape(module)}/@v/{version}.zip"
    raw = io.BufferedReader(_RangeFile(url), buffer_size=1 << 16)
    out: dict[str, str] = {}
    with zipfile.ZipFile(raw) as archive:
        prefix = f"{module}@{version}/"
        present = set(archive.namelist())
        for name in names:
            if prefix + name in present:
                out[name] = archive.read(prefix + name).decode()
    return out


def zip_has_dir(base: str, module: str, version: str, directory: str) -> bool:
    """Does the module's zip hold files under ``directory`` (its central directory only)?"""
    url = f"{base}/{escape(module)}/@v/{version}.zip"
    raw = io.BufferedReader(_RangeFile(url), buffer_size=1 << 16)
    with zipfile.ZipFile(raw) as archive:
        prefix = f"{module}@{version}/{directory.rstrip('/')}/"
        return any(n.startswith(prefix) for n in archive.namelist())


# -- what a release pins, read from its sources ----------------------------------------

#: Files of k8s.io/kubernetes that name what a release pins, and the lines kept of them.
PIN_SOURCES: dict[str, str] = {
    "cmd/kubeadm/app/constants/constants.go": (
        r"^\s*(DefaultEtcdVersion|CoreDNSVersion|PauseVersion)\s*="
    ),
    "test/utils/image/manifest.go": r"configs\[Agnhost\]\s*=",
}


def pin_lines(sources: dict[str, str]) -> dict[str, str]:
    """The lines of each pin source that name a pin (what a recording keeps)."""
    out = {}
    for path, text in sources.items():
        pattern = re.compile(PIN_SOURCES[path])
        out[path] = "\n".join(ln.strip() for ln in text.splitlines() if pattern.search(ln))
    return out


def parse_pins(lines: dict[str, str]) -> dict[str, str]:
    """``etcd``, ``coredns``, ``pause`` (kubeadm's constants) and ``agnhost`` (e2e's manifest).

    >>> parse_pins({
    ...     "cmd/kubeadm/app/constants/constants.go":
    ...         'PauseVersion = "3.8"\\nDefaultEtcdVersion = "3.5.9-0"\\nCoreDNSVersion = "v1.9.3"',
    ...     "test/utils/image/manifest.go":
    ...         'configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.40"}',
    ... })
    {'etcd': '3.5.9-0', 'coredns': 'v1.9.3', 'pause': '3.8', 'agnhost': '2.40'}
    """
    constants = lines["cmd/kubeadm/app/constants/constants.go"]
    manifest = lines["test/utils/image/manifest.go"]
    found = {}
    for key, name in (
        ("etcd", "DefaultEtcdVersion"),
        ("coredns", "CoreDNSVersion"),
        ("pause", "PauseVersion"),
    ):
        m = re.search(rf'\b{name}\s*=\s*"([^"]+)"', constants)
        if not m:
            raise ValueError(f"kubeadm's constants.go names no {name}")
        found[key] = m[1]
    m = re.search(r'"agnhost",\s*"([^"]+)"', manifest)
    if not m:
        raise ValueError("test/utils/image/manifest.go names no agnhost tag")
    found["agnhost"] = m[1]
    return found


# -- command line --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kindlab.nodeimage.goproxy",
        description="Probe which Kubernetes patch releases the Go module proxy serves whole.",
    )
    parser.add_argument("--first", type=int, default=25, help="first minor (default 25)")
    parser.add_argument("--last", type=int, default=38, help="last minor (default 38)")
    parser.add_argument("--record", type=Path, help="write every answer to this JSON file")
    parser.add_argument("--date", default="", help="the date recorded with the answers")
    parser.add_argument(
        "--pins", action="store_true", help="read each chosen release's pins (HTTP ranges)"
    )
    parser.add_argument(
        "--sumdb",
        action="store_true",
        help="also ask the checksum database (GOSUMDB, through the proxy) for the chosen "
        "patch's staging modules",
    )
    args = parser.parse_args(argv)
    members: dict[str, dict[str, str]] = {}
    base = configured_proxy()
    sumdb = configured_sumdb() if args.sumdb else None
    recorder = Recorder(http_fetch(base), base)
    say: Callable[[str], None] = lambda line: print(line, flush=True)  # noqa: E731
    for minor in range(args.first, args.last + 1):
        probe = probe_minor(recorder, minor, progress=say, sumdb=sumdb)
        chosen = probe.chosen
        say(f"1.{minor}: served {list(probe.served)}; chosen {chosen.version if chosen else None}")
        for patch in probe.patches:
            for refusal in patch.refusals:
                say(f"  {patch.version} refused: {refusal}")
        if chosen and chosen.unverified:
            say(f"  not in {sumdb}: {', '.join(chosen.unverified)}")
        if chosen and args.pins:
            lines = pin_lines(zip_members(base, KUBERNETES, chosen.version, PIN_SOURCES))
            members[chosen.version] = lines
            say(f"  pins of {chosen.version}: {parse_pins(lines)}")
    if args.record:
        recorder.save(args.record, args.date, members)
    return 0


if __name__ == "__main__":
    sys.exit(main())
