"""The documentation: the MkDocs site builds strictly (a broken link or anchor fails), README.md
stays a short front door whose links resolve, its first screen gives the commands CI runs, and
the Python examples run as written."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FIRST_SCREEN_LINES = 25  # the two commands must be visible without scrolling
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _in_ci() -> bool:
    """CI=true, as tests/conftest.py reads it: there a missing tool fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _code_blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of one language, in order, without their fences."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_docs_build_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        msg = "mkdocs is not installed (it is in the test extra: pip install -e '.[test]')"
        if _in_ci():
            pytest.fail(f"{msg}, and CI=true: the docs must be built in CI", pytrace=False)
        pytest.skip(msg)
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file() and (site / "api" / "index.html").is_file()


def test_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines: move the details into docs/"


def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]
    assert targets, "README.md links nothing: the front door should lead into docs/"
    missing = [t for t in targets if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_first_screen_gives_the_commands_ci_runs():
    text = README.read_text(encoding="utf-8")
    first_screen = "\n".join(text.splitlines()[:FIRST_SCREEN_LINES])
    blocks = [b.strip() for b in _code_blocks(first_screen, "bash")]
    assert len(blocks) == 2, f"the first {FIRST_SCREEN_LINES} lines of README.md should hold two commands"
    try_it, run_tests = blocks
    assert "genrescope predict demo/" in try_it and "torch" not in try_it  # the light install predicts
    assert run_tests.endswith("python -m pytest")
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert run_tests in ci_lines, ".ci/run must run README's test command verbatim"
    install = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    assert try_it in install and run_tests in install  # the docs give the same two lines


@pytest.mark.slow
@pytest.mark.parametrize("page", ["README.md", "docs/api.md"])
def test_python_examples_run_as_written(page):
    import genrescope

    if not hasattr(genrescope, "load_model"):
        pytest.skip("this build of genrescope has no load_model: the documented Python API is not in it")
    blocks = _code_blocks((ROOT / page).read_text(encoding="utf-8"), "python")
    assert blocks, f"{page} has no python example"
    for block in blocks:  # each block on its own, in a fresh interpreter, from the repository root
        done = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{page}: this example failed:\n{block}\n{done.stderr[-3000:]}"
