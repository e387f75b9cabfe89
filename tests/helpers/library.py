"""Helpers of the library tests: a generated library in every tagged format, the bytes of
each format's audio frames (to prove tag writes never touch them), and tiny fake
predictors that a tagging run builds through its ``predictor_factory`` (also in its worker
processes: module-level classes pickle by name, and spawned workers get this sys.path), so
tests exercise the walk, tags, journal and engines in milliseconds.
"""
from __future__ import annotations

import hashlib
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from genrescope.testing import synth_music

FORMATS = ("mp3", "flac", "ogg", "opus", "m4a")


class FakePredictor:
    """Genres from a hash of the file name (stable across tag writes); decodes the file so that
    broken files fail like they do with a real model (duration_s: the sample count). Labels are made up on purpose:
    nothing may depend on a model's genre names."""

    labels = ["alpha", "beta", "gamma", "delta"]

    def __init__(self, model: str = "fake"):
        self.name = "fake-tiny"

    def predict(self, path, offset=None, duration=None):
        from genrescope.audio.decode import load_audio

        y = load_audio(path, sr=None, warn_silent=False)  # a broken file fails as with a real model
        return self.ranking(path, float(len(y)))

    def ranking(self, path, duration_s: float):
        from genrescope.inference.predict import Prediction

        h = hashlib.sha1(Path(path).name.encode()).digest()
        w = np.array([h[i] + 1.0 for i in range(len(self.labels))])
        w = w ** 2 / (w ** 2).sum()
        order = np.argsort(-w, kind="stable")
        return Prediction(str(path), self.name, duration_s, genres=[(self.labels[i], float(w[i])) for i in order])


class DyingPredictor(FakePredictor):
    """Kills its own worker process at the first sight of a file named t1.* (once: the marker file
    that the environment variable GENRESCOPE_TEST_MARKER names)."""

    def predict(self, path, offset=None, duration=None):
        marker = Path(os.environ["GENRESCOPE_TEST_MARKER"])
        if Path(path).stem == "t1" and not marker.exists():
            marker.write_text("died")
            os.kill(os.getpid(), 9)
        return super().predict(path)


def run_tag(argv: list[str], factory=FakePredictor) -> int:
    """``genrescope tag ARGV`` as the command runs it (its options, report, messages and exit
    code; 2 with the one-line error of a GenrescopeError; warnings on stderr, one line each),
    with the predictor ``factory`` builds."""
    import warnings

    from genrescope.commands import build_parser
    from genrescope.commands.tag_cmd import finish, options_from, run_options_from
    from genrescope.errors import GenrescopeError
    from genrescope.library.tag_run import tag_library

    args = build_parser().parse_args(["tag", *argv])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opts, run_kw = options_from(args), run_options_from(args)
            records = tag_library(args.paths, opts, predictor_factory=factory, **run_kw)
    except GenrescopeError as e:
        print(f"genrescope: error: {e}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"genrescope: warning: {w.message}", file=sys.stderr)
    return finish(records, opts.write, run_kw["report_path"])


def write_m4a(path: Path, y: np.ndarray, sr: int) -> Path:
    """AAC in MP4 through PyAV (libsndfile has no m4a)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=sr)
        s.layout = "mono"
        for i in range(0, len(y), 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[None, i:i + 1024]), format="fltp", layout="mono")
            f.sample_rate = sr
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path


def write_track(path: Path, fmt: str, *, seconds: float = 2.0, seed: int = 0) -> Path:
    """One generated track in ``fmt`` (mp3, flac, ogg, opus, m4a, wav)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sr = 24000 if fmt == "opus" else 22050  # Opus takes 8/12/16/24/48 kHz only
    y = synth_music(seconds, sr, seed=seed)
    if fmt == "m4a":
        return write_m4a(path, y, sr)
    kw = {"mp3": dict(format="MP3"), "ogg": dict(format="OGG", subtype="VORBIS"),
          "opus": dict(format="OGG", subtype="OPUS"), "flac": dict(format="FLAC"),
          "wav": dict(format="WAV", subtype="PCM_16")}[fmt]
    sf.write(str(path), y, sr, **kw)
    return path


def add_user_tags(path: Path, genre: str | None = None) -> None:
    """Give a file an artist and title (and optionally a genre) of the user's own."""
    import mutagen

    f = mutagen.File(str(path), easy=True)
    if f.tags is None:
        f.add_tags()
    f["artist"], f["title"] = ["Somebody"], [path.stem]
    if genre:
        f["genre"] = [genre]
    f.save()


def make_library(root: Path, formats=FORMATS, per_format: int = 1, seconds: float = 2.0) -> list[Path]:
    """Nested folders with ``per_format`` tracks of each format; every other one has user tags."""
    out = []
    for k, fmt in enumerate(formats):
        for i in range(per_format):
            p = write_track(root / f"artist{i % 2}" / f"album{k}" / f"t{i}.{fmt}", fmt, seconds=seconds, seed=k * 7 + i)
            if (k + i) % 2 == 0:
                add_user_tags(p)
            out.append(p)
    return out


def all_tags(path: Path) -> dict:
    """Every tag of a file as plain strings (for 'nothing else changed' checks)."""
    import mutagen

    f = mutagen.File(str(path))
    if f is None or f.tags is None:
        return {}
    return {str(k): repr(v) for k, v in sorted(f.tags.items(), key=lambda kv: str(kv[0]))}


def decoded(path: Path) -> np.ndarray:
    """The decoded samples at the file's own rate."""
    from genrescope.audio.decode import load_audio

    return load_audio(path, sr=None, mono=False, warn_silent=False)


# --- the bytes of the audio frames, per container -------------------------------------

def _mp3_frames(b: bytes) -> bytes:
    start = 0
    while b[start:start + 3] == b"ID3":
        size = b[start + 6:start + 10]
        n = (size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3]
        start += 10 + n + (10 if b[start + 5] & 0x10 else 0)
    end = len(b) - 128 if b[-128:-125] == b"TAG" else len(b)
    return b[start:end]


def _flac_frames(b: bytes) -> bytes:
    assert b[:4] == b"fLaC"
    pos = 4
    while True:
        last, n = b[pos] & 0x80, int.from_bytes(b[pos + 1:pos + 4], "big")
        pos += 4 + n
        if last:
            return b[pos:]


def _ogg_packets(b: bytes) -> tuple[list[bytes], list[int]]:
    """All packets of the first logical stream, and the granule of every page."""
    packets, granules, cur, pos = [], [], b"", 0
    while pos < len(b):
        assert b[pos:pos + 4] == b"OggS", "not an Ogg page"
        granule = struct.unpack("<q", b[pos + 6:pos + 14])[0]
        nseg = b[pos + 26]
        lacing = b[pos + 27:pos + 27 + nseg]
        data_pos = pos + 27 + nseg
        for lace in lacing:
            cur += b[data_pos:data_pos + lace]
            data_pos += lace
            if lace < 255:
                packets.append(cur)
                cur = b""
        granules.append(granule)
        pos = data_pos
    return packets, granules


def _mp4_mdat(b: bytes) -> bytes:
    pos = 0
    while pos < len(b):
        size, kind = struct.unpack(">I4s", b[pos:pos + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", b[pos + 8:pos + 16])[0], 16
        if kind == b"mdat":
            return b[pos + head:pos + size]
        pos += size
    raise AssertionError("no mdat atom")


def audio_bytes(path: Path) -> bytes:
    """The container's audio data with every tag byte removed (frames, packets, mdat)."""
    b = Path(path).read_bytes()
    suffix = Path(path).suffix.lower()
    if suffix == ".mp3":
        return _mp3_frames(b)
    if suffix == ".flac":
        return _flac_frames(b)
    if suffix in (".ogg", ".opus"):
        packets, _ = _ogg_packets(b)
        n_headers = 2 if suffix == ".opus" else 3  # the comment header is packet 2
        return b"".join(len(p).to_bytes(4, "big") + p for p in packets[n_headers:])
    if suffix == ".m4a":
        return _mp4_mdat(b)
    return b


def ogg_granules(path: Path) -> list[int]:
    """Granule positions of the audio pages (the last header page has granule 0)."""
    return [g for g in _ogg_packets(Path(path).read_bytes())[1] if g > 0]
