"""The package layout: no module imports another that (directly or not) imports it back,
and the light install's modules never import torch at module level."""
from __future__ import annotations

import ast
from pathlib import Path

import genrescope

PKG = Path(genrescope.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module -> genrescope modules it imports anywhere in its body (lazy imports count)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name if is_pkg else name.rsplit(".", 1)[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rsplit(".", 1)[0]
                    base = f"{pkg}.{base}" if base else pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != name:
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if state.get(n) is None and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if state.get(m) is None and (c := visit(m)):
            return c
    return None


def test_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_planted_circle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(g) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_package_says_what_it_is_for():
    for init in PKG.rglob("__init__.py"):
        if "static" in init.parts:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 20, f"{init.relative_to(PKG)} has no docstring saying what the package is for"


#: The layers from the bottom up; a module may import its own layer and the ones below, never
#: one above. The package root (version, errors, config) and the engines (a per-file task mapped
#: over processes or a Ray cluster, nothing of genrescope's in them) are below everything; ``api``
#: and ``commands`` are the top.
LAYERS = (
    ("genrescope.version", "genrescope.errors", "genrescope.config", "genrescope.lifeline", "genrescope.progress", "genrescope.engines",
     "genrescope.testing"),
    ("genrescope.audio",),
    ("genrescope.features",),
    ("genrescope.models",),
    ("genrescope.inference",),
    ("genrescope.training", "genrescope.insight", "genrescope.library", "genrescope.datasets",
     "genrescope.learn"),
    ("genrescope.serve",),
    ("genrescope.commands", "genrescope.api", "genrescope.__main__"),
)


def layer_of(module: str) -> int | None:
    if module == "genrescope":
        return len(LAYERS) - 1  # the package root offers the API: the top
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def test_every_module_has_a_layer():
    missing = [m for m in import_graph() if layer_of(m) is None]
    assert not missing, f"modules outside the layer order (add them to LAYERS): {missing}"


def test_no_layer_imports_one_above():
    graph = import_graph()
    wrong = [f"{m} -> {d}" for m, deps in graph.items() for d in deps
             if layer_of(m) is not None and layer_of(d) is not None and layer_of(d) > layer_of(m)]
    assert not wrong, "imports that reach up a layer:\n" + "\n".join(sorted(wrong))


def test_the_layer_check_catches_a_planted_upward_import():
    assert layer_of("genrescope.models.musicnn") < layer_of("genrescope.serve.app")
    assert layer_of("genrescope.audio.decode") < layer_of("genrescope.features.cache") < layer_of("genrescope.api")


def test_argparse_only_in_the_commands_layer():
    users = []
    for path in PKG.rglob("*.py"):
        name = _module_name(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if "argparse" in mods and not name.startswith("genrescope.commands"):
                users.append(name)
    assert not users, f"argparse outside genrescope.commands: {sorted(set(users))}"


def test_no_two_modules_share_a_file_name():
    seen: dict[str, list[str]] = {}
    for path in PKG.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            seen.setdefault(path.name, []).append(str(path.relative_to(PKG)))
    dirs = {p.name + ".py": str(p.relative_to(PKG)) for p in PKG.rglob("*") if p.is_dir() and (p / "__init__.py").exists()}
    clashes = {n: ps for n, ps in seen.items() if len(ps) > 1}
    clashes.update({n: ps + [dirs[n] + "/"] for n, ps in seen.items() if n in dirs})
    assert not clashes, f"module names used twice: {clashes}"
