"""A SIGKILLed genrescope leaves no worker process behind: its spawned workers (tag, embed,
features, predict -j) and the web server's job workers end within seconds of their parent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.library import write_track

#: How long the workers of a killed parent may outlive it.
GRACE_S = 5.0


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process this user can see."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            out[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents, found, todo = _parents(), set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found.update(kids)
        todo.extend(kids)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status waits to be read


def _kill_and_watch(cmd: list[str], tmp_path: Path, *, want: int, env: dict | None = None, wait_s: float = 60.0):
    """Start ``cmd``; once it has ``want`` child processes, SIGKILL it and return the children
    still alive ``GRACE_S`` seconds later."""
    if sys.platform != "linux":
        pytest.skip("reads /proc")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + wait_s
        kids: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            kids = {k for k in _descendants(proc.pid) if _alive(k)}
            if len(kids) >= want:
                break
            time.sleep(0.1)
        assert proc.poll() is None and len(kids) >= want, f"{cmd[3]} never had {want} workers ({kids})"
        time.sleep(0.5)  # the workers are past start-up
        kids |= _descendants(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return _survivors(kids)


def _survivors(kids: set[int]) -> list[int]:
    """The processes of ``kids`` still alive :data:`GRACE_S` seconds on (killed then, so that
    they do not outlive the test either)."""
    end = time.monotonic() + GRACE_S
    while time.monotonic() < end and any(_alive(k) for k in kids):
        time.sleep(0.1)
    left = [k for k in kids if _alive(k)]
    for k in left:
        os.kill(k, signal.SIGKILL)
    return left


def _genrescope(*args: str) -> list[str]:
    return [sys.executable, "-m", "genrescope", *args]


@pytest.fixture
def library(tmp_path):
    """Long tracks: a shipped model keeps the workers busy when their parent is killed."""
    return [write_track(tmp_path / "music" / f"t{i}.flac", "flac", seconds=30.0, seed=i) for i in range(8)]


def test_killed_tag_leaves_no_worker(library, tmp_path):
    left = _kill_and_watch(_genrescope("tag", "music", "--write", "-j", "2", "--no-progress", "--model",
                                       "musicnn-msd"), tmp_path, want=2)
    assert left == [], f"workers {left} outlived their killed parent by {GRACE_S} s"


def test_killed_features_leaves_no_worker(tmp_path):
    for i in range(6):
        write_track(tmp_path / "music" / f"t{i}.flac", "flac", seconds=30.0, seed=i)
    left = _kill_and_watch(_genrescope("features", "music", "-j", "2", "--cache", "c", "--no-progress"), tmp_path,
                           want=2)
    assert left == []


@pytest.mark.slow
def test_killed_embed_leaves_no_worker(tmp_path):
    for genre in ("a", "b"):
        for i in range(4):
            write_track(tmp_path / "data" / genre / f"{genre}{i}.flac", "flac", seconds=20.0, seed=i)
    left = _kill_and_watch(_genrescope("embed", "data", "-j", "2", "--cache", "c", "--no-progress",
                                       "--split", "stratified"), tmp_path, want=2)
    assert left == []


@pytest.mark.slow
def test_killed_server_leaves_no_job_worker(tmp_path):
    pytest.importorskip("uvicorn")
    left = _kill_and_watch(_genrescope("serve", "--port", "0"), tmp_path, want=1)
    assert left == []


@pytest.mark.slow
def test_killed_server_leaves_no_worker_mid_job(tmp_path):
    """Killed while a job worker analyses a long upload: the worker stops too, not when its song ends."""
    import socket

    import soundfile as sf

    from genrescope.testing import attackers as attack
    from genrescope.testing import synth_music

    pytest.importorskip("uvicorn")
    if sys.platform != "linux":
        pytest.skip("reads /proc")
    sf.write(str(tmp_path / "long.wav"), synth_music(240.0, 16000), 16000, subtype="PCM_16")
    data = (tmp_path / "long.wav").read_bytes()
    proc = subprocess.Popen(_genrescope("serve", "--port", "0"), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        body = attack.multipart(data, "long.wav")
        conn = socket.create_connection(("127.0.0.1", port), timeout=60)
        conn.sendall(attack.request_head(port, "/api/predict", len(body)) + body)
        time.sleep(4.0)  # the upload is in and a worker analyses it (minutes of audio)
        kids = {k for k in _descendants(proc.pid) if _alive(k)}
        assert kids, "no job worker"
    finally:
        proc.kill()
        proc.wait()
    left = _survivors(kids)
    conn.close()
    assert left == [], f"job workers {left} outlived their killed server by {GRACE_S} s"
