"""The three layers (core <- integrations <- bench): no upward imports, no import cycles,
and no module over MAX_LINES lines (a longer one holds more than one idea: split it).

Read from the source with ``ast``, so imports hidden inside functions or under
``if TYPE_CHECKING:`` count as much as top-level ones. Implicit imports of parent
packages are not edges: ``adaloss/__init__.py`` is a facade of re-exports.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where each importable tree lives in the checkout (integrations/ installs as adaloss.integrations).
ROOTS = {"adaloss": REPO / "adaloss", "adaloss.integrations": REPO / "integrations"}
LAYERS = ("core", "integrations", "bench")
MAX_LINES = 450
# Third-party packages each layer may import (besides the standard library and adaloss).
ALLOWED_THIRD_PARTY = {
    "core": {"torch", "torchopt", "tqdm"},
    "integrations": {"torch", "torchopt", "tqdm", "timm", "torchvision"},
    "bench": None,  # anything declared in the `bench` extra
}


def discover(roots: dict[str, Path]) -> dict[str, Path]:
    """Module name -> file, for every .py file under the roots."""
    modules = {}
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def layer(module: str) -> str:
    """``adaloss.bench.*`` and ``python -m adaloss`` (the command) are bench; then integrations."""
    if module in ("adaloss.__main__", "adaloss.bench") or module.startswith("adaloss.bench."):
        return "bench"
    if module.startswith("adaloss.integrations"):
        return "integrations"
    return "core"


def imports(module: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(adaloss modules imported, top-level names of other packages imported) by one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    internal: set[str] = set()
    external: set[str] = set()

    def add(name: str) -> None:
        if name == "adaloss" or name.startswith("adaloss."):
            internal.add(name)
        else:
            external.add(name.split(".")[0])

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source == "__future__":
                continue
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                add(candidate if candidate in known else source)
    internal.discard(module)
    return internal, external


def graph(roots: dict[str, Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = discover(roots)
    known = set(modules)
    edges, external = {}, {}
    for name, path in modules.items():
        internal, ext = imports(name, path, known)
        # An import of a module that is not a file here (e.g. a name re-exported by a package)
        # is an edge to the nearest enclosing module that is.
        resolved = set()
        for target in internal:
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                resolved.add(target)
        edges[name], external[name] = resolved, ext
    return edges, external


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} ({layer(a)}) imports {b} ({layer(b)})"
        for a, targets in edges.items()
        for b in targets
        if LAYERS.index(layer(b)) > LAYERS.index(layer(a))
    )


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected component with a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)

    found = []
    for component in components:  # a shortest path back to the start, inside the component
        members, start = set(component), min(component)
        paths, seen = {start: [start]}, {start}
        frontier, loop = [start], None
        while frontier and loop is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v] & members):
                    if w == start:
                        loop = [*paths[v], start]
                        break
                    if w not in seen:
                        seen.add(w)
                        paths[w] = [*paths[v], w]
                        nxt.append(w)
                if loop:
                    break
            frontier = nxt
        found.append(loop)
    return found


def disallowed_third_party(external: dict[str, set[str]]) -> list[str]:
    out = []
    for module, names in external.items():
        allowed = ALLOWED_THIRD_PARTY[layer(module)]
        if allowed is None:
            continue
        for name in sorted(names - allowed - set(sys.stdlib_module_names)):
            out.append(f"{module} ({layer(module)}) imports {name}")
    return sorted(out)


def long_modules(roots: dict[str, Path]) -> list[str]:
    """``module: N lines`` for every module longer than MAX_LINES."""
    lengths = {name: len(path.read_text().splitlines()) for name, path in discover(roots).items()}
    return sorted(f"{name}: {n} lines" for name, n in lengths.items() if n > MAX_LINES)


EDGES, EXTERNAL = graph(ROOTS)


def test_the_source_tree_is_found():
    assert {"adaloss.optimizer", "adaloss.offline", "adaloss.bench.cli"} <= set(EDGES)
    assert any(layer(m) == "integrations" for m in EDGES)
    assert "adaloss.hypergrad.forward" in EDGES["adaloss.optimizer"]  # `from pkg import module`


def test_no_upward_imports():
    assert upward_imports(EDGES) == []


def test_no_import_cycles():
    assert cycles(EDGES) == []


def test_core_and_integrations_import_only_their_declared_dependencies():
    assert disallowed_third_party(EXTERNAL) == []


def test_no_module_over_the_line_limit():
    assert long_modules(ROOTS) == []


@pytest.fixture
def fake_tree(tmp_path: Path) -> dict[str, Path]:
    """A copy-sized stand-in: a core with two modules, an integration, a benchmark module."""
    core, integ = tmp_path / "adaloss", tmp_path / "integrations"
    for d in (core, core / "bench", integ):
        d.mkdir()
        (d / "__init__.py").write_text("")
    (core / "optimizer.py").write_text("from adaloss import offline\nimport torch\n")
    (core / "offline.py").write_text("import torch\n")
    (core / "bench" / "run.py").write_text("from ..optimizer import x\nimport numpy\n")
    (integ / "timm.py").write_text("import timm\nfrom adaloss.offline import y\n")
    return {"adaloss": core, "adaloss.integrations": integ}


def test_checks_pass_on_a_clean_fake_tree(fake_tree):
    edges, external = graph(fake_tree)
    assert edges["adaloss.bench.run"] == {"adaloss.optimizer"}  # relative import resolved
    assert upward_imports(edges) == [] and cycles(edges) == []
    assert disallowed_third_party(external) == []
    assert long_modules(fake_tree) == []


def test_checks_catch_an_injected_cycle_an_upward_import_and_a_heavy_core_import(fake_tree):
    core = fake_tree["adaloss"]
    (core / "offline.py").write_text(
        "import torch\n\ndef run():\n    from adaloss.optimizer import _private\n"
    )
    (core / "offline.py").write_text(
        (core / "offline.py").read_text() + "\ndef more():\n    import adaloss.bench\n"
    )
    (fake_tree["adaloss.integrations"] / "timm.py").write_text("from adaloss.bench import run\n")
    (core / "optimizer.py").write_text("from adaloss import offline\nimport matplotlib.pyplot\n")
    edges, external = graph(fake_tree)
    assert cycles(edges) == [["adaloss.offline", "adaloss.optimizer", "adaloss.offline"]]
    assert upward_imports(edges) == [
        "adaloss.integrations.timm (integrations) imports adaloss.bench.run (bench)",
        "adaloss.offline (core) imports adaloss.bench (bench)",
    ]
    assert disallowed_third_party(external) == ["adaloss.optimizer (core) imports matplotlib"]


def test_line_limit_catches_a_long_module(fake_tree):
    body = "x = 0\n" * MAX_LINES
    (fake_tree["adaloss"] / "offline.py").write_text(body)
    assert long_modules(fake_tree) == []  # exactly at the limit is allowed
    (fake_tree["adaloss"] / "offline.py").write_text(body + "y = 1\n")
    assert long_modules(fake_tree) == [f"adaloss.offline: {MAX_LINES + 1} lines"]
