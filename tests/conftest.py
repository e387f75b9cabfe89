"""Shared fixtures: generated audio (the suite never needs downloaded data) and the
optional real music in ../shared/data (tests using it skip when it is absent, and fail
when ``CI=true``: CI has the data, so a skip there would hide that the tests never ran).
The summary says how many shared-data tests ran."""
from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: F401
import pytest

from genrescope.testing import synth_music  # noqa: F401  (tests import it from here too)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _compiled_model_cache(tmp_path_factory):
    """OpenVINO's compiled models go to a folder of this run, not the user's ~/.cache."""
    if "GENRESCOPE_OPENVINO_CACHE" in os.environ:
        yield
        return
    os.environ["GENRESCOPE_OPENVINO_CACHE"] = str(tmp_path_factory.mktemp("openvino-cache"))
    yield
    os.environ.pop("GENRESCOPE_OPENVINO_CACHE", None)


def in_ci() -> bool:
    """True when the CI environment variable says so (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_shared_data() -> None:
    """Skip the calling test, or fail it under CI, because ../shared/data is absent."""
    msg = f"../shared/data is not present ({SHARED_DATA})"
    if in_ci():
        pytest.fail(f"{msg}, and CI=true: the real-music tests must run in CI", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module's tests (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    the suite shares 2 cores with other work, and more threads than free cores is far slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        missing_shared_data()
    return SHARED_DATA


# ---------------------------------------------------------------- shared-data tests: fail in CI, counted
_SHARED: set[str] = set()  # node ids of the tests that need ../shared/data
_RAN: set[str] = set()


def _uses_shared_data(item) -> bool:
    if item.get_closest_marker("shared_data") or "shared_data" in getattr(item, "fixturenames", ()):
        return True
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        funcs += [d.func for d in defs]
    for f in funcs:  # a test (or its fixture) that reads SHARED_DATA itself
        try:
            if f is not None and "SHARED_DATA" in inspect.getsource(f):
                return True
        except (OSError, TypeError):
            pass
    return False


def pytest_collection_modifyitems(config, items):
    _SHARED.update(item.nodeid for item in items if _uses_shared_data(item))


def pytest_runtest_setup(item):
    if item.nodeid in _SHARED and item.get_closest_marker("shared_data") and not SHARED_DATA.is_dir():
        missing_shared_data()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    if rep.skipped and "shared/data" in str(rep.longrepr):  # a test's own skip for the missing data
        _SHARED.add(item.nodeid)
        if in_ci():
            rep.outcome = "failed"
    if rep.when == "call" and item.nodeid in _SHARED:
        _RAN.add(item.nodeid)


def pytest_terminal_summary(terminalreporter):
    if not _SHARED:
        return
    where = "present" if SHARED_DATA.is_dir() else "MISSING"
    terminalreporter.write_line(f"shared-data tests: {len(_RAN)} of {len(_SHARED)} ran ({SHARED_DATA}: {where})")


@pytest.fixture
def write_audio(tmp_path):
    """Write generated audio to tmp_path: write_audio(name, duration=, sr=, channels=, **sf_kwargs)."""
    import soundfile as sf

    def _write(name: str, duration: float = 2.0, sr: int = 22050, channels: int = 1, seed: int = 0,
               y: np.ndarray | None = None, **kwargs) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if y is None:
            y = synth_music(duration, sr, seed=seed, channels=channels)
        ext = path.suffix.lower()
        fmt = {".mp3": dict(format="MP3"), ".ogg": dict(format="OGG", subtype="VORBIS"),
               ".opus": dict(format="OGG", subtype="OPUS"), ".au": dict(format="AU", subtype="PCM_16"),
               ".flac": dict(format="FLAC"), ".wav": dict(format="WAV", subtype="PCM_16")}.get(ext, {})
        fmt.update(kwargs)
        sf.write(str(path), y, sr, **fmt)
        return path

    return _write


# ---------------------------------------------------------------- the page in a real browser
# (module-scoped, shared by tests/test_browser_inference.py and tests/test_browser_insight.py; the
# test modules skip themselves when /usr/bin/chromium or Playwright is missing)
@pytest.fixture(scope="module")
def web_dir(tmp_path_factory) -> Path:
    from helpers.page import MODEL
    from helpers.browser import make_head

    from genrescope.serve.webexport import export_web

    d = tmp_path_factory.mktemp("web")
    heads = [make_head(d / "head.onnx"), make_head(d / "head2.onnx", backbone="musicnn", seed=2)]
    return export_web(d / "site", [MODEL, *map(str, heads), "genre10"])


@pytest.fixture(scope="module")
def site(web_dir):
    """``python -m http.server`` on 127.0.0.1 serving the export: no genrescope process."""
    from helpers.page import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(web_dir), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    yield {"url": url, "proc": proc}
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    from helpers.page import BROWSER_ARGS, CHROMIUM

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, site):
    ctx = browser.new_context(service_workers="block")  # the offline test has its own context
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("request", lambda r: problems.append(f"request off the site: {r.url}")
          if not r.url.startswith((site["url"], "blob:", "data:")) else None)
    pg.goto(site["url"] + "/")
    pg.wait_for_selector("#model option", state="attached")
    pg.problems = problems
    yield pg
    assert not problems, problems
    ctx.close()


@pytest.fixture(scope="module")
def predictor():
    from genrescope.inference.predict import Predictor

    from helpers.page import MODEL

    return Predictor(MODEL, backend="onnxruntime")  # exact float32, as the page's wasm runs
