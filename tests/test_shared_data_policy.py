"""The shared-data policy of conftest.py: without ../shared/data its tests skip, except under
CI=true, where they fail; the summary counts them either way."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

PROBE = '''
import pytest
from conftest import SHARED_DATA


@pytest.mark.shared_data
def test_marked(shared_data):
    assert shared_data.is_dir()


@pytest.fixture
def own_skip():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")


def test_own_skip(own_skip):
    pass


def test_plain():
    pass
'''


@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_shared_data_skips_or_fails_in_ci(tmp_path, ci):
    repo = tmp_path / "checkout"  # no ../shared/data beside it
    (repo / "tests").mkdir(parents=True)
    shutil.copy(HERE / "conftest.py", repo / "tests" / "conftest.py")
    (repo / "tests" / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "CI": ci}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=repo,
                       capture_output=True, text=True, env=env, timeout=120)
    out = r.stdout + r.stderr
    if ci:
        assert r.returncode == 1 and "1 passed" in out and "2 errors" in out, out  # failed in setup
        assert "CI=true: the real-music tests must run in CI" in out
    else:
        assert r.returncode == 0 and "1 passed, 2 skipped" in out, out
    assert "shared-data tests: 0 of 2 ran" in out and "MISSING" in out
