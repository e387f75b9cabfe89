"""The page's JavaScript stays in small native ES modules (no build step): index.html loads one
module entry, every module it imports (transitively) exists, exports what is imported from it,
and is in the service worker's offline list and in `genrescope export --web`'s copy. No browser."""
from __future__ import annotations

import json
import re
from pathlib import Path

from genrescope.serve.settings import STATIC_DIR

MAX_LINES = 300
ENTRY = "app.js"
#: Scripts that are not the page's modules: the worker and what it loads, the microphone's
#: worklet, the service worker, the API page's script.
CLASSIC = {"features.js", "worker.js", "pcm-worklet.js", "sw.js", "docs.js"}
IMPORT = re.compile(r"^import\s*\{([^}]*)\}\s*from\s*'\./([\w.-]+\.js)';", re.M)
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|class|const|let)\s+([\w$]+)", re.M)


def _own_scripts() -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*.js") if "vendor" not in p.relative_to(STATIC_DIR).parts)


def _module_graph() -> dict[str, dict[str, set[str]]]:
    """module -> {imported module -> names}, from the entry through every static import."""
    graph: dict[str, dict[str, set[str]]] = {}
    todo = [ENTRY]
    while todo:
        name = todo.pop()
        if name in graph:
            continue
        text = (STATIC_DIR / name).read_text()
        graph[name] = {}
        for names, target in IMPORT.findall(text):
            graph[name].setdefault(target, set()).update(n.strip() for n in names.split(",") if n.strip())
            todo.append(target)
    return graph


def _shell(sw: Path) -> list[str]:
    return json.loads(sw.read_text().split("const SHELL = ")[1].split(";")[0].replace("'", '"'))


def test_every_script_is_small():
    for path in _own_scripts():
        n = len(path.read_text().splitlines())
        assert n <= MAX_LINES, f"{path.name} has {n} lines; split it into modules of under {MAX_LINES}"


def test_index_loads_one_module_entry_and_no_page_code_as_classic_scripts():
    html = (STATIC_DIR / "index.html").read_text()
    assert f'<script type="module" src="static/{ENTRY}"></script>' in html
    classic = re.findall(r'<script src="([^"]+)"', html)
    assert all(src.startswith("static/vendor/") or src == "static/features.js" for src in classic), classic
    assert len(re.findall(r"<script\b", html)) == len(classic) + 1


def test_imports_resolve_to_exports_and_every_module_is_used():
    graph = _module_graph()
    for module, imports in graph.items():
        for target, names in imports.items():
            assert (STATIC_DIR / target).is_file(), f"{module} imports {target}, which does not exist"
            exported = set(EXPORT.findall((STATIC_DIR / target).read_text()))
            assert names <= exported, f"{module} imports {sorted(names - exported)} that {target} does not export"
    orphans = {p.name for p in _own_scripts()} - set(graph) - CLASSIC
    assert not orphans, f"scripts nothing loads: {sorted(orphans)}"
    assert len(graph) >= 8  # the page is split by concern, not one file


def test_service_worker_caches_every_module():
    shell = set(_shell(STATIC_DIR / "sw.js"))
    missing = {m for m in _module_graph() if f"static/{m}" not in shell}
    assert not missing, f"sw.js's SHELL lacks {sorted(missing)}: the page would not load offline"


def test_web_export_holds_every_module(tmp_path):
    from genrescope.serve.webexport import export_web

    out = export_web(tmp_path / "site", ["musicnn-msd"])
    for module in _module_graph():
        assert (out / "static" / module).read_bytes() == (STATIC_DIR / module).read_bytes(), module
    assert '<script type="module" src="static/app.js">' in (out / "index.html").read_text()
    for rel in _shell(out / "sw.js"):
        assert rel == "./" or (out / rel).is_file(), rel


def test_manifest_carries_the_constants_the_page_reads():
    """local.js and insight.js read these from the manifest instead of copying them."""
    from genrescope.inference.pipeline import MIN_DURATION_S
    from genrescope.insight.segments import MAX_GENRES, SWITCH_COST
    from genrescope.serve.webexport import build_web_models

    manifest = build_web_models([], strict=False).manifest
    assert manifest["limits"] == {"min_duration_s": MIN_DURATION_S}
    assert manifest["segments"] == {"switch_cost": SWITCH_COST, "max_genres": MAX_GENRES}
    for name, consts in (("local.js", ["MIN_DURATION_S"]), ("insight.js", ["SWITCH_COST", "MAX_GENRES"])):
        text = (STATIC_DIR / name).read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
        for c in consts:
            assert c not in code, f"{name} copies {c}; read it from the manifest"
    assert "manifestConstant(this.manifest, 'limits', 'min_duration_s')" in (STATIC_DIR / "local.js").read_text()


def test_comments_cite_tests_that_exist():
    root = STATIC_DIR.parents[3]
    for path in _own_scripts():
        for cited in re.findall(r"tests/(test_\w+\.py)", path.read_text()):
            assert (root / "tests" / cited).is_file(), f"{path.name} cites tests/{cited}, which does not exist"


def test_the_two_analysers_are_twins():
    """server.js's ServerAnalyser and local.js's LocalAnalyser: the page calls both the same way."""
    def methods(name: str, cls: str) -> dict[str, str]:
        text = (STATIC_DIR / name).read_text()
        body = text[text.index(f"export class {cls} {{"):]
        return dict(re.findall(r"^  (?:async )?(\w+)\(([^)]*)\) \{", body, re.M))

    server, local = methods("server.js", "ServerAnalyser"), methods("local.js", "LocalAnalyser")
    for name in ("models", "load", "analyse"):
        assert name in server and name in local, name
        assert server[name] == local[name], (name, server[name], local[name])
    assert "analyser().analyse(" in (STATIC_DIR / "analysis.js").read_text()
