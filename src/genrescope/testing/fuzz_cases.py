"""Damaged audio files, and the checks that every one ends in a prediction (perhaps with
warnings) or a one-line error naming the file: shared by tests/test_fuzz.py and bench/fuzz.py.

Sources: real files from the shared data folder (byte for byte, when given) and files of
every format written here from music (a real clip when the folder has one, else generated
audio). Each source gets damaged copies: truncation at random offsets, bit flips in the
header and in the frames, zeroed blocks, a wrong extension, absurd sample rates and channel
counts written into the header, zero length, huge declared sizes, the header alone.
Everything is seeded.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import threading
import time
from pathlib import Path

import numpy as np

MODEL = "musicnn-msd"

#: Real files used byte for byte (path under the shared data folder).
REAL = ["gtzan/clips/blues/blues.00000.wav", "gtzan/classical-15s/classical.00010.flac",
        "gtzan/audio/jazz/jazz.00000.opus", "free-music/librosa-examples/classical/"
        "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg"]

#: Formats written here: extension -> soundfile keyword arguments (m4a goes through PyAV).
WRITTEN = {"wav": dict(format="WAV", subtype="PCM_16"), "f32.wav": dict(format="WAV", subtype="FLOAT"),
           "flac": dict(format="FLAC"), "ogg": dict(format="OGG", subtype="VORBIS"),
           "opus": dict(format="OGG", subtype="OPUS"), "mp3": dict(format="MP3"),
           "au": dict(format="AU", subtype="PCM_16"), "aiff": dict(format="AIFF", subtype="PCM_16"), "m4a": None}


# ---------------------------------------------------------------- sources
def _music(seconds: float, sr: int, shared: Path | None = None) -> np.ndarray:
    """Real music when the shared data folder ``shared`` has a GTZAN clip, else a generated chord pattern."""
    import soundfile as sf

    clip = shared / "gtzan/clips/disco/disco.00000.wav" if shared is not None else None
    if clip is not None and clip.is_file():
        y, file_sr = sf.read(str(clip), dtype="float32", frames=int(seconds * 22050))
        if file_sr != sr:
            import soxr
            y = soxr.resample(y, file_sr, sr)
        return y.astype(np.float32)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.2 * sum(np.sin(2 * np.pi * 220 * r * t) for r in (1.0, 1.25, 1.5)) * np.exp(-5 * (t % 0.5))
    return (y + 0.02 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def _write(path: Path, y: np.ndarray, sr: int, ext: str) -> None:
    import soundfile as sf

    if WRITTEN[ext] is not None:
        sf.write(str(path), y, sr, **WRITTEN[ext])
        return
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(y[None, :], format="flt", layout="mono")
        frame.sample_rate = sr
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def sources(folder: Path, seconds: float = 6.0, *, real: bool = True, formats=None,
            shared: Path | None = None) -> list[Path]:
    """The undamaged files: the real ones that exist under ``shared`` (``real``), and one of each
    written format (from a clip under ``shared`` when there is one)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for rel in REAL if real and shared is not None else ():
        if (shared / rel).is_file():
            stem = Path(rel).name.split("_-_")[0].split(".")[0]
            dst = folder / f"real_{stem}{Path(rel).suffix}"
            shutil.copyfile(shared / rel, dst)
            out.append(dst)
    for ext in formats or WRITTEN:
        if ext == "m4a":
            try:
                import av  # noqa: F401
            except ImportError:
                continue
        sr = 48000 if ext == "opus" else 44100
        path = folder / f"made.{ext}"
        _write(path, _music(seconds, sr, shared), sr, ext)
        out.append(path)
    return out


# ---------------------------------------------------------------- damage
def _header_len(data: bytes) -> int:
    return min(len(data), 4096 if data[:4] in (b"OggS", b"fLaC", b"ID3\x03", b"ID3\x04") else 128)


def _set(data: bytearray, offset: int, fmt: str, value: int) -> bytearray:
    if offset + struct.calcsize(fmt) <= len(data):
        data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return data


def _header_lies(data: bytes, what: str, value: int) -> bytes:
    """Write an absurd sample rate, channel count or size where this format keeps it."""
    d = bytearray(data)
    if d[:4] == b"RIFF":
        fmt = d.find(b"fmt ")
        data_at = d.find(b"data")
        if what == "sr" and fmt > 0:
            _set(d, fmt + 12, "<I", value)
        elif what == "channels" and fmt > 0:
            _set(d, fmt + 10, "<H", value)
        elif what == "size":
            _set(d, 4, "<I", 0xFFFFFFF0)
            if data_at > 0:
                _set(d, data_at + 4, "<I", 0xFFFFFFF0)
    elif d[:4] == b".snd":
        _set(d, {"sr": 16, "channels": 20, "size": 8}[what], ">I", value if what != "size" else 0xFFFFFFF0)
    elif d[:4] == b"FORM":
        comm = d.find(b"COMM")
        if what == "channels" and comm > 0:
            _set(d, comm + 8, ">H", value)
        elif what == "sr" and comm > 0:  # 80-bit extended float: set the exponent absurdly high or low
            _set(d, comm + 16, ">H", 0x401E if value > 1000 else 0x3FFF)
        else:
            _set(d, 4, ">I", 0xFFFFFFF0)
    elif d[:4] == b"fLaC":  # STREAMINFO: 20-bit rate, 3-bit channels-1, 36-bit total samples
        if what == "sr":
            d[18], d[19] = 0xFF, (d[19] & 0x0F) | 0xF0
        elif what == "channels":
            d[20] = d[20] | 0x0E
        else:
            d[21:26] = b"\x0f\xff\xff\xff\xff"
    else:  # containers without one fixed place (ogg, mp3, mp4): scribble over the first header bytes
        rng = random.Random(value)
        for i in range(8, min(len(d), 64)):
            if rng.random() < 0.2:
                d[i] = 0xFF
    return bytes(d)


def variants(src: Path, n: int, seed: int) -> list[tuple[str, bytes, str]]:
    """``(name, bytes, extension)`` damaged copies of ``src``: about ``n`` of them."""
    rng = random.Random(f"{seed}:{src.name}")
    data = src.read_bytes()
    ext = src.suffix
    head = _header_len(data)
    out: list[tuple[str, bytes, str]] = [("zero_length", b"", ext), ("header_only", data[:head], ext),
                                         ("wrong_ext", data, ".mp3" if ext != ".mp3" else ".wav"),
                                         ("wrong_ext_txt", data, ".flac" if ext != ".flac" else ".ogg")]
    for what, value in (("sr", 1), ("sr", 4_000_000_000), ("channels", 0), ("channels", 65535), ("size", 0)):
        out.append((f"header_{what}_{value}", _header_lies(data, what, value), ext))
    while len(out) < n:
        kind = len(out) % 4
        d = bytearray(data)
        if kind == 0:
            cut = rng.randrange(1, max(2, len(d)))
            out.append((f"truncated_{cut}", bytes(d[:cut]), ext))
        elif kind == 1:
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(0, head)
                d[i] ^= 1 << rng.randrange(8)
            out.append((f"headerflip_{len(out)}", bytes(d), ext))
        elif kind == 2:
            for _ in range(rng.randint(10, 400)):
                i = rng.randrange(head, max(head + 1, len(d)))
                if i < len(d):
                    d[i] ^= 1 << rng.randrange(8)
            out.append((f"frameflip_{len(out)}", bytes(d), ext))
        else:
            for _ in range(rng.randint(1, 4)):
                start = rng.randrange(0, max(1, len(d)))
                size = rng.choice([16, 512, 4096, 65536])
                d[start:start + size] = bytes(min(size, len(d) - start))
            out.append((f"zeroed_{len(out)}", bytes(d), ext))
    return out[:max(n, 9)]


def build(folder: Path, per_source: int, seed: int, **source_kw) -> list[Path]:
    """Write the damaged cases into ``folder/cases`` (``source_kw`` go to :func:`sources`)."""
    src_dir, case_dir = folder / "sources", folder / "cases"
    case_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    for src in sources(src_dir, **source_kw):
        stem = src.name.replace(".", "_")
        for name, data, ext in variants(src, per_source, seed):
            path = case_dir / f"{stem}__{name}{ext}"
            path.write_bytes(data)
            cases.append(path)
    return cases


# ---------------------------------------------------------------- measuring one case
def _rss(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # a worker that has just ended
        return 0


class PeakRSS:
    """Samples the resident memory of this process and of ``workers()`` (the server's job
    processes) every 5 ms while in the ``with`` block."""

    def __init__(self, workers=lambda: ()):
        self.workers = workers

    def _total(self) -> int:
        return _rss() + sum(_rss(pid) for pid in self.workers())

    def __enter__(self):
        self.base = self.peak = self._total()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._total())

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._total())

    @property
    def grew_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def check_error(message: str, path_text: str) -> str | None:
    """None if ``message`` is one line naming the file; else what is wrong with it."""
    if "\n" in message.strip():
        return "more than one line"
    if path_text not in message:
        return "does not name the file"
    if "Traceback" in message:
        return "a traceback"
    return None


def run_predictor(cases: list[Path], predictor) -> list[dict]:
    from genrescope.errors import GenrescopeError

    rows = []
    for path in cases:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            try:
                pred = predictor.predict(path)
                outcome = "prediction+warnings" if pred.warnings else "prediction"
                json.dumps(pred.to_dict(timeline=True), allow_nan=False)
                problem = None
            except GenrescopeError as e:
                outcome, problem = f"error:{type(e).__name__}", check_error(str(e), str(path))
            except Exception as e:  # noqa: BLE001 - this is what the bench looks for
                outcome, problem = "crash", f"{type(e).__name__}: {e}"
            seconds = time.perf_counter() - t0
        rows.append({"case": path.name, "outcome": outcome, "problem": problem, "seconds": seconds,
                     "mb": mem.grew_mb})
    return rows


def run_api(cases: list[Path], client) -> tuple[list[dict], bool]:
    """Post every case to ``client`` (a started ``fastapi.testclient.TestClient`` of the web app),
    /api/predict and /api/predict/stream in turn; (a row per case, whether the server still answers)."""
    rows = []
    # the job worker starts (and loads the model) on the first upload: not a case's cost
    client.post("/api/predict", files={"file": ("warm-up.wav", warm_up_wav(), "audio/wav")})
    for i, path in enumerate(cases):
        endpoint = "/api/predict/stream" if i % 2 else "/api/predict"
        with PeakRSS(client.app.state.runner.pids) as mem:  # the analysis runs in a worker process
            t0 = time.perf_counter()
            r = client.post(endpoint, files={"file": (path.name, path.read_bytes(), "application/octet-stream")})
            seconds = time.perf_counter() - t0
        rows.append({"case": path.name, "seconds": seconds, "mb": mem.grew_mb, **_judge_http(r, path.name, endpoint)})
    alive = client.get("/api/health").json().get("status") == "ok"
    return rows, alive


def warm_up_wav() -> bytes:
    """Two seconds of music as WAV bytes, for a warm-up upload."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, _music(2.0, 22050), 22050, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _judge_http(r, name: str, endpoint: str) -> dict:
    text = r.text
    if re.search(r"\b(NaN|-?Infinity)\b", text.replace("NaN or infinity", "")):
        return {"outcome": f"http {r.status_code}", "problem": "NaN or Infinity in the answer"}
    try:
        if r.status_code == 200 and endpoint.endswith("stream"):
            last = json.loads(text.splitlines()[-1])
            if last["event"] == "error":
                return {"outcome": f"stream error {last['status']}", "problem": check_error(last["error"], name)}
            return {"outcome": "prediction+warnings" if last["result"]["warnings"] else "prediction", "problem": None}
        body = r.json()
    except (ValueError, KeyError, IndexError) as e:
        return {"outcome": f"http {r.status_code}", "problem": f"not JSON: {e}"}
    if r.status_code == 200:
        return {"outcome": "prediction+warnings" if body["warnings"] else "prediction", "problem": None}
    problem = None if 400 <= r.status_code < 500 else f"status {r.status_code}"
    return {"outcome": f"http {r.status_code}", "problem": problem or check_error(body.get("error", ""), name)}
