"""kindlab's folders are its layers, and imports point down (see kindlab/README.md).

Every ``import`` in kindlab is read with :mod:`ast` (lazy ones in functions and
``TYPE_CHECKING`` ones too): no module may import a module of a higher layer, the
two entry points (the pytest plugin and the CLI) do not import each other, only
the plugin imports pytest, and importing any module runs into no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import kindlab
from kindlab.drivers.vm import guest
from kindlab.pytest_plugin.vm import payload_sources

PACKAGE = Path(kindlab.__file__).resolve().parent

#: Bottom first. A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "kindlab",  # the package itself: its docstring and __version__
            "kindlab.constants",
            "kindlab.errors",
            "kindlab.labels",
            "kindlab.paths",
            "kindlab.timing",
        ),
    ),
    # versions: the Kubernetes versions kindlab can build, as data (above constants, errors)
    ("parsers", ("kindlab.parsers", "kindlab.versions")),
    ("drivers", ("kindlab.drivers", "kindlab.nodeimage")),
    ("netfilter", ("kindlab.netfilter",)),
    ("lab", ("kindlab.lab",)),
    ("entry points", ("kindlab.pytest_plugin", "kindlab.plugin", "kindlab.cli")),
)
ENTRY_POINTS = ("kindlab.pytest_plugin", "kindlab.cli")
#: The only modules that may import pytest: the plugin (STYLE.md: drivers never do).
PYTEST_IMPORTERS = ("kindlab.pytest_plugin", "kindlab.plugin")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports: a kindlab module, or a top-level third-party name
    line: int
    at_import: bool  # runs when the module is imported (not in a function or TYPE_CHECKING)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or (prefix != "kindlab" and name.startswith(prefix + "."))


def layer_of(module: str) -> int | None:
    matches = [
        (len(prefix), rank)
        for rank, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if _within(module, prefix)
    ]
    return max(matches)[1] if matches else None


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("kindlab", *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(node: ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    if not source.startswith("kindlab"):
        return [source.split(".")[0]]
    # `from kindlab.drivers import kernel` imports the module kindlab.drivers.kernel
    subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]
    return subs if len(subs) == len(node.names) else [source, *subs]


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, at_import: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), at_import)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    name = alias.name
                    target = name if name.startswith("kindlab") else name.split(".")[0]
                    yield Import(module, target, child.lineno, at_import)
            elif isinstance(child, ast.ImportFrom):
                for target in _resolve(child, module, is_package, known):
                    yield Import(module, target, child.lineno, at_import)
            else:
                yield from visit(child, at_import)

    yield from visit(tree, True)


def kindlab_imports() -> list[Import]:
    modules = _modules()
    known = set(modules)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, known)]


def upward(imports: Iterable[Import]) -> list[str]:
    """Every import of a module of a higher layer (or of one in no layer), as a line."""
    found = []
    for imp in imports:
        if not imp.target.startswith("kindlab"):
            continue
        low, high = layer_of(imp.module), layer_of(imp.target)
        if low is None or high is None or high > low:
            names = [LAYERS[r][0] if r is not None else "no layer" for r in (low, high)]
            found.append(f"{imp.module}:{imp.line} imports {imp.target} ({names[0]} -> {names[1]})")
    return found


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Import cycles among the imports that run when a module is imported.

    Importing ``a.b.c`` imports the packages ``a.b`` and ``a`` first, unless the
    importer is inside them (then they are already being imported).
    """
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.at_import or not imp.target.startswith("kindlab"):
            continue
        parts = imp.target.split(".")
        for i in range(2, len(parts) + 1):
            target = ".".join(parts[:i])
            if target != imp.module and not _within(imp.module, target):
                edges.setdefault(imp.module, set()).add(target)
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(edges):
        if state.get(start):
            continue
        path: list[str] = [start]
        stack: list[Iterator[str]] = [iter(sorted(edges.get(start, ())))]
        state[start] = 1
        while stack:  # a worklist, not recursion
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return found


# -- kindlab itself --------------------------------------------------------------


def test_every_module_has_a_layer() -> None:
    homeless = [m for m in _modules() if layer_of(m) is None]
    assert not homeless, f"modules in no layer (add them to a layer's folder): {homeless}"


def test_imports_point_down() -> None:
    assert upward(kindlab_imports()) == []


def test_the_bottom_imports_nothing_of_kindlab() -> None:
    base = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in kindlab_imports()
        if layer_of(i.module) == 0 and i.target.startswith("kindlab")
    ]
    assert base == []


def test_the_entry_points_do_not_import_each_other() -> None:
    crossing = [
        f"{i.module}:{i.line} imports {i.target}"
        for i in kindlab_imports()
        for a in ENTRY_POINTS
        for b in ENTRY_POINTS
        if a != b and _within(i.module, a) and _within(i.target, b)
    ]
    assert crossing == []


def test_only_the_plugin_imports_pytest() -> None:
    importers = {
        i.module
        for i in kindlab_imports()
        if i.target in ("pytest", "_pytest")
        and not any(_within(i.module, p) for p in PYTEST_IMPORTERS)
    }
    assert importers == set()


def test_importing_any_module_runs_into_no_cycle() -> None:
    assert cycles(kindlab_imports()) == []


def test_the_guest_payload_carries_every_module_the_plugin_needs() -> None:
    """The qemu guest runs ``-p kindlab.plugin`` from the payload's copy of kindlab."""
    modules = _modules()
    imports = kindlab_imports()
    needed, todo = set(), ["kindlab.plugin"]
    while todo:
        module = todo.pop()
        if module in needed:
            continue
        needed.add(module)
        tree = ast.parse(modules[module].read_text())
        for node in tree.body:  # the plugin's modules are named in pytest_plugins
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
            ):
                todo += [str(name) for name in ast.literal_eval(node.value)]
        todo += [i.target for i in imports if i.module == module and i.target in modules]
    assert {"kindlab.pytest_plugin.vm", "kindlab.drivers.vm.disk"} <= needed

    shipped = payload_sources(PACKAGE.parent, [], None)["kindlab"]
    missing = [
        m for m in sorted(needed) if not (shipped / modules[m].relative_to(PACKAGE)).exists()
    ]
    assert missing == []
    agent = Path(guest.AGENT).relative_to(Path(guest.PAYLOAD_SRC) / "kindlab")
    assert (shipped / agent).is_file(), f"the guest's run script runs {guest.AGENT}"


# -- the checks themselves fail on a bad tree ------------------------------------------


def test_an_upward_import_is_caught() -> None:
    bad = [
        Import("kindlab.parsers.iptables", "kindlab.drivers.node", 3, True),
        Import("kindlab.lab.probes", "kindlab.drivers.node", 4, True),  # down: fine
        Import("kindlab.newthing", "kindlab.errors", 1, True),  # in no layer
    ]
    assert upward(bad) == [
        "kindlab.parsers.iptables:3 imports kindlab.drivers.node (parsers -> drivers)",
        "kindlab.newthing:1 imports kindlab.errors (no layer -> base)",
    ]


@pytest.mark.parametrize(
    ("imports", "expected"),
    [
        (
            [
                Import("kindlab.lab.a", "kindlab.lab.b", 1, True),
                Import("kindlab.lab.b", "kindlab.lab.a", 1, True),
            ],
            [["kindlab.lab.a", "kindlab.lab.b", "kindlab.lab.a"]],
        ),
        # a lazy import breaks the cycle
        (
            [
                Import("kindlab.lab.a", "kindlab.lab.b", 1, True),
                Import("kindlab.lab.b", "kindlab.lab.a", 9, False),
            ],
            [],
        ),
        # importing kindlab.lab.x imports the package kindlab.lab, which imports back
        (
            [
                Import("kindlab.drivers.y", "kindlab.lab.x", 1, True),
                Import("kindlab.lab", "kindlab.drivers.y", 1, True),
            ],
            [["kindlab.drivers.y", "kindlab.lab", "kindlab.drivers.y"]],
        ),
        # a package importing its own submodule, which imports a sibling: no cycle
        (
            [
                Import("kindlab.drivers.vm", "kindlab.drivers.vm.disk", 1, True),
                Import("kindlab.drivers.vm.disk", "kindlab.drivers.vm.guest", 1, True),
            ],
            [],
        ),
    ],
)
def test_an_import_cycle_is_caught(imports: list[Import], expected: list[list[str]]) -> None:
    assert cycles(imports) == expected


def test_a_lazy_or_type_checking_import_still_counts_for_layers(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from kindlab.lab.report import Finding\n"
        "def f():\n"
        "    from kindlab.cli import main\n"
        "from . import sibling\n"
    )
    found = list(imports_of("kindlab.parsers.mod", source, {"kindlab.parsers.sibling"}))
    assert [(i.target, i.at_import) for i in found] == [
        ("typing", True),
        ("kindlab.lab.report", False),
        ("kindlab.cli", False),
        ("kindlab.parsers.sibling", True),
    ]
    assert len(upward(found)) == 2
