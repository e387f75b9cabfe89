"""Proving the models learn: every architecture, one protocol, held-out tracks.

    python bench/learn.py synthetic [--per-style 40 --duration 10 --epochs 20]
    python bench/learn.py real      [--excerpts-per-source 12 --epochs 12]
    python bench/learn.py both

``synthetic`` writes a generated dataset with real musical structure into a temporary
folder (a folder per style, 22050 Hz WAV): four styles that differ in rhythm
(four-on-the-floor kick, one-drop offbeat skank, swing ride, no drums), tempo (ranges
that overlap) and timbre (bright saw-like stabs, mid plucks, mellow comping, slow pads),
with a random key, chord progression, drum level, gain, background noise and stray
noise bursts per track. It is split by track (stratified 70/15/15, seeded).

``real`` uses the recordings in ../shared/data (skipped with a message when absent):
GTZAN classical excerpts vs the orchestral Wesnoth soundtracks vs the electronic
Warzone 2100 tracks. The long soundtracks are cut into excerpts, and every excerpt of
one source file shares its split side (the source file is the "artist" of the
manifest); the GTZAN excerpts keep their fault-filtered, artist-conscious split
(gtzan-ff) between train and held-out, and the held-out ones (gtzan-ff valid: none of
its classical test tracks is in the shared copy) are halved by track into valid and
test. So no test excerpt has a sibling, or a GTZAN artist, in training.

Every architecture is trained with the same loop, epochs budget, early stopping on
the validation track macro-F1, augmentation and seed (``genrescope.training.train.fit``);
``features-mlp`` reads the 57-column GTZAN table (``gtzan_table.extract_row``) of each
track instead of a spectrogram. The test split is scored once, with the weights
selected on valid. A markdown table goes to stdout; per-epoch logs to stderr.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SR = 22050

#: label -> (tempo range in BPM, harmonics range, spectral rolloff exponent range)
STYLES = {
    "four-floor": ((112, 132), (6, 16), (0.8, 1.8)),
    "offbeat": ((84, 120), (4, 14), (1.0, 2.2)),
    "swing": ((96, 140), (3, 10), (1.2, 2.6)),
    "ambient": ((70, 118), (3, 12), (1.0, 2.4)),
}
MAJOR, MINOR = (0, 4, 7), (0, 3, 7)


# ---------------------------------------------------------------- instruments
def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(seconds * sr)) / sr


def tone(freq: float, seconds: float, sr: int, *, n_harm: int, rolloff: float, attack: float = 0.005,
         decay: float = 4.0, rng: np.random.Generator) -> np.ndarray:
    """Additive harmonic tone (n,) with amplitudes k**-rolloff, linear attack, exponential decay."""
    t = _t(seconds, sr)
    k = np.arange(1, n_harm + 1)
    k = k[freq * k < 0.45 * sr]
    phases = rng.uniform(0, 2 * np.pi, len(k))[:, None]
    wave = ((k ** -rolloff)[:, None] * np.sin(2 * np.pi * freq * k[:, None] * t + phases)).sum(0)  # (n,)
    env = np.minimum(1.0, t / attack) * np.exp(-decay * t)
    fade = np.minimum(1.0, (t[-1] - t) / 0.01) if len(t) else t  # no click at the note's end
    return wave * env * fade / max(1e-9, float(np.sum(k ** -rolloff)))


def kick(sr: int) -> np.ndarray:
    t = _t(0.3, sr)
    f = 48 + 110 * np.exp(-t * 35)  # pitch drop
    return np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t * 11)


def snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.2, sr)
    noise = np.diff(rng.standard_normal(len(t) + 1))
    return (0.5 * noise + 0.6 * np.sin(2 * np.pi * 185 * t)) * np.exp(-t * 22)


def hat(sr: int, rng: np.random.Generator, seconds: float = 0.05) -> np.ndarray:
    t = _t(seconds, sr)
    noise = np.diff(rng.standard_normal(len(t) + 2), n=2)  # high-passed white noise
    return 0.25 * noise * np.exp(-t * 70)


def ride(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.5, sr)
    bell = sum(np.sin(2 * np.pi * f * t) for f in (3150.0, 4370.0, 5230.0, 6640.0)) / 4
    noise = np.diff(rng.standard_normal(len(t) + 2), n=2) / 4
    return (0.5 * bell + 0.3 * noise) * np.exp(-t * 7)


def add(buf: np.ndarray, sig: np.ndarray, at_s: float, sr: int, gain: float = 1.0) -> None:
    i = int(at_s * sr)
    if i >= len(buf) or i < 0:
        return
    n = min(len(sig), len(buf) - i)
    buf[i:i + n] += gain * sig[:n]


def midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


# ---------------------------------------------------------------- styles
def _progression(rng: np.random.Generator, n: int) -> list[tuple[int, tuple[int, ...]]]:
    """``n`` chords as (semitones above the key, intervals), from common degrees."""
    degrees = [(0, MAJOR), (5, MAJOR), (7, MAJOR), (9, MINOR), (2, MINOR), (4, MINOR)]
    out = [degrees[0]]
    while len(out) < n:
        out.append(degrees[int(rng.integers(len(degrees)))])
    return out


@dataclass
class Song:
    """What one track's parts share: tempo, key, chords, timbre, and the two buses."""

    sr: int
    rng: np.random.Generator
    beat: float  # seconds
    key: int  # MIDI note of the bass root
    n_beats: int
    bars: list  # one chord per bar of 4 beats: (semitones above the key, intervals)
    tone_kw: dict
    music: np.ndarray
    drums: np.ndarray

    def chord(self, b: int) -> tuple[int, tuple[int, ...]]:
        return self.bars[b // 4]

    def note(self, midi: float, seconds: float, at_beat: float, gain: float, **kw) -> None:
        """Add a tone with the track's timbre (``kw`` overrides it) to the music bus."""
        add(self.music, tone(midi_hz(midi), seconds, self.sr, **{**self.tone_kw, **kw}), at_beat * self.beat,
            self.sr, gain)

    def hit(self, sig: np.ndarray, at_beat: float, gain: float = 1.0) -> None:
        add(self.drums, sig, at_beat * self.beat, self.sr, gain)


def _four_floor(s: Song) -> None:
    sr, rng = s.sr, s.rng
    stab = [i for i in range(16) if rng.random() < 0.3] or [2, 10]  # a fixed 16th pattern per track
    for b in range(s.n_beats):
        s.hit(kick(sr), b)
        s.hit(hat(sr, rng), b + 0.5, 0.8)
        if b % 2 == 1 and rng.random() < 0.7:
            s.hit(snare(sr, rng), b, 0.5)
        deg, iv = s.chord(b)
        s.note(s.key + deg, 0.9 * s.beat / 2, b + 0.5, 0.8, n_harm=6, rolloff=1.0, decay=6)  # offbeat bass
        for i16 in stab:
            if i16 // 4 == b % 4:
                for i in iv:
                    s.note(s.key + 24 + deg + i, 0.15, b + (i16 % 4) / 4, 0.5, decay=12)


def _offbeat(s: Song) -> None:
    sr, rng = s.sr, s.rng
    for b in range(s.n_beats):
        if b % 4 == 2:  # one drop: kick and snare together on beat 3
            s.hit(kick(sr), b, 0.8)
            s.hit(snare(sr, rng), b, 0.6)
        s.hit(hat(sr, rng), b, 0.4)
        deg, iv = s.chord(b)
        for i in iv:  # the skank on every offbeat
            s.note(s.key + 24 + deg + i, 0.12, b + 0.5, 0.6, decay=15)
        if rng.random() < 0.8:
            step = (0, 7, 12, 10)[int(rng.integers(4))]
            s.note(s.key + deg + step, 0.8 * s.beat, b, 1.0, n_harm=3, rolloff=1.5, decay=3)


def _swing(s: Song) -> None:
    sr, rng = s.sr, s.rng
    for b in range(s.n_beats):
        s.hit(ride(sr, rng), b, 0.5)
        if b % 2 == 1:
            s.hit(ride(sr, rng), b + 2 / 3, 0.35)  # the swung "a"
            s.hit(hat(sr, rng, 0.03), b, 0.5)
        if rng.random() < 0.25:
            s.hit(kick(sr), b, 0.3)  # feathered
        deg, iv = s.chord(b)
        walk = (0, 4, 7, 9, 12, 11, 5, 2)[int(rng.integers(8))]
        s.note(s.key + deg + walk, 0.9 * s.beat, b, 1.0, n_harm=4, rolloff=1.8, decay=2.5)  # walking bass
        if rng.random() < 0.35:  # sparse comping with sevenths
            for i in (*iv, 10):
                sig = tone(midi_hz(s.key + 24 + deg + i), 0.4 * s.beat, sr, **{**s.tone_kw, "decay": 5})
                add(s.music, sig, (b + (2 / 3 if rng.random() < 0.5 else 0)) * s.beat, sr, 0.4)  # some swung


def _ambient(s: Song) -> None:
    change = int(s.rng.integers(4, 9))
    for b in range(0, s.n_beats, change):
        deg, iv = s.chord(b)
        for i in iv:
            for det in (-0.08, 0.08):  # two detuned voices: slow beating
                s.note(s.key + 12 + deg + i + det, change * s.beat + 1.0, b, 0.5, attack=0.8, decay=0.3)
    if s.rng.random() < 0.5:  # arpeggiated plucks: onsets without drums
        for i8 in range(2 * s.n_beats):
            deg, iv = s.chord(i8 // 2)
            s.note(s.key + 24 + deg + iv[i8 % 3], 0.3, i8 / 2, 0.3, decay=10)


PARTS = {"four-floor": _four_floor, "offbeat": _offbeat, "swing": _swing, "ambient": _ambient}


def _peak1(x: np.ndarray) -> np.ndarray:
    return x / (np.abs(x).max() + 1e-9)


def render(style: str, duration: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One track of ``style``: float32 (n,), RMS level drawn in -32..-16 dBFS."""
    (t_lo, t_hi), (h_lo, h_hi), (r_lo, r_hi) = STYLES[style]
    beat = 60.0 / rng.uniform(t_lo, t_hi)
    key = int(rng.integers(40, 52))  # E2..D#3
    tone_kw = dict(n_harm=int(rng.integers(h_lo, h_hi + 1)), rolloff=float(rng.uniform(r_lo, r_hi)), rng=rng)
    n_beats = int(math.ceil(duration / beat)) + 1
    bars = _progression(rng, n_beats // 4 + 2)
    s = Song(sr, rng, beat, key, n_beats, bars, tone_kw, np.zeros(int(duration * sr)), np.zeros(int(duration * sr)))
    PARTS[style](s)
    music = s.music
    if style != "ambient" and rng.random() < 0.2:  # a pad under the groove, as in the ambient style
        s.music = np.zeros_like(music)
        for b in range(0, n_beats, 4):
            deg, iv = s.chord(b)
            for i in iv:
                s.note(key + 12 + deg + i, 4 * beat + 0.5, b, 1.0, attack=0.5, decay=0.4)
        music = _peak1(music) + 10 ** (rng.uniform(-18.0, -8.0) / 20) * _peak1(s.music)
    drum_db = rng.uniform(-12.0, 0.0) if style != "ambient" else -np.inf
    return finish(_peak1(music) + 10 ** (drum_db / 20) * _peak1(s.drums), rng)


def finish(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Background noise at a random SNR (white or brown), stray noise bursts, random level."""
    y = y / (np.sqrt(np.mean(y ** 2)) + 1e-9)  # unit RMS
    noise = rng.standard_normal(len(y))
    if rng.random() < 0.5:  # brown-ish noise: low-frequency rumble instead of hiss
        noise = np.cumsum(noise)
        noise -= np.convolve(noise, np.ones(2001) / 2001, mode="same")
    noise /= np.sqrt(np.mean(noise ** 2)) + 1e-9
    y = y + 10 ** (-rng.uniform(8.0, 30.0) / 20) * noise
    for _ in range(int(rng.poisson(2.0))):  # clicks and crackle any style may have
        at = int(rng.integers(len(y)))
        n = int(rng.integers(200, 2000))
        burst = rng.standard_normal(n) * np.exp(-np.linspace(0, 6, n))
        y[at:at + len(burst)] += rng.uniform(0.5, 3.0) * burst[:len(y) - at]
    # the level is set on the RMS, not the peak: a peak-normalised drum track would be
    # quieter than a pad track, and loudness would give the style away
    y = y / (np.sqrt(np.mean(y ** 2)) + 1e-9) * 10 ** (rng.uniform(-32.0, -16.0) / 20)
    return (y / max(1.0, np.abs(y).max() / 0.99)).astype(np.float32)


def write_synthetic(root: Path, *, per_style: int, duration: float, seed: int) -> Path:
    """Write ``per_style`` tracks of each style under ``root/<style>/``; returns ``root``."""
    import soundfile as sf

    for si, style in enumerate(STYLES):
        (root / style).mkdir(parents=True, exist_ok=True)
        for i in range(per_style):
            rng = np.random.default_rng([seed, si, i])
            sf.write(str(root / style / f"{style}-{i:03d}.wav"), render(style, duration, SR, rng), SR,
                     subtype="PCM_16")
    return root


# ---------------------------------------------------------------- real music
REAL_CLASSES = ("gtzan-classical", "wesnoth-orchestral", "warzone-electronic")


def write_real_excerpts(root: Path, data: Path, *, excerpt_s: float, per_source: int, seed: int,
                        fractions: tuple[float, float, float]):
    """Cut the real recordings into excerpts under ``root`` and split them by source.

    Returns a Manifest whose ``artist`` is the source file, so that no source has
    excerpts on two sides. GTZAN tracks follow the gtzan-ff split (artist-conscious)
    for train vs the rest; see below for valid vs test.
    """
    import soundfile as sf

    from genrescope.audio.decode import load_audio
    from genrescope.datasets import Manifest, Track, check_no_leakage, split_tracks
    from genrescope.datasets.gtzan import ff_lists

    ff = ff_lists()
    sources = [("gtzan-classical", p) for p in sorted((data / "gtzan" / "classical-15s").glob("*.flac"))]
    sources += [("gtzan-classical", p) for p in sorted((data / "gtzan" / "clips" / "classical").glob("*.wav"))]
    sources += [("wesnoth-orchestral", p) for p in sorted((data / "free-music" / "wesnoth").glob("*.ogg"))
                if p.stem != "silence"]
    sources += [("warzone-electronic", p) for p in sorted((data / "free-music" / "warzone2100").glob("*.opus"))]
    gtzan, free = [], []
    for label, src in sources:
        y = load_audio(src, sr=SR)
        n = int(excerpt_s * SR)
        count = len(y) // n
        if count == 0:
            continue
        # evenly spread over the source, never overlapping
        picks = np.unique(np.linspace(0, count - 1, min(count, per_source)).round().astype(int))
        for k in picks:
            out = root / label / f"{src.stem}__{k:02d}.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(out), y[k * n:(k + 1) * n], SR, subtype="PCM_16")
            t = Track(str(out), label, f"{label}/{src.stem}/{k:02d}", artist=f"{label}/{src.stem}")
            if label == "gtzan-classical":
                part = ff.get(src.stem)
                if part in ("train", "valid", "test"):
                    gtzan.append(t.replace(split=part))
            else:
                free.append(t)
    # The shared copy has no track of gtzan-ff's classical test list: its valid tracks (no
    # artist in common with its train tracks) are halved, by source, into valid and test.
    held = sorted({t.artist for t in gtzan if t.split == "valid"})
    rng = np.random.default_rng(seed)
    to_test = {held[i] for i in rng.permutation(len(held))[: len(held) // 2]}
    gtzan = [t.replace(split="test") if t.artist in to_test else t for t in gtzan]
    entries = gtzan + split_tracks(free, fractions, seed=seed)
    m = Manifest(list(REAL_CLASSES), entries, layout="csv", root=str(root), split_policy="gtzan-ff+by-source")
    check_no_leakage(m)
    m.to_csv(root / "manifest.csv")
    return m


# ---------------------------------------------------------------- training
def feature_config_for(name: str, args):
    from genrescope.models import default_features

    fc = default_features(name)
    if name == "features-mlp":
        return fc
    return fc.replace(n_mels=args.n_mels, n_fft=args.n_fft, window_s=args.window_s, window_hop_s=args.window_s / 2)


def table_data(manifest, fc, jobs: int):
    """TrainData of GTZAN-table rows, one per track, with the manifest's split."""
    from concurrent.futures import ProcessPoolExecutor

    from genrescope.training.data import SPLITS, TrainData
    from genrescope.features.gtzan_table import extract_row, rows_to_matrix

    tracks = [t for t in manifest.entries if t.split in SPLITS]
    paths = [t.path for t in tracks]
    if jobs > 1:
        import multiprocessing

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            rows = list(ex.map(extract_row, paths, chunksize=4))
    else:
        rows = [extract_row(p) for p in paths]
    X = rows_to_matrix(rows).astype(np.float32)
    classes = list(manifest.labels)
    items = {s: [X[i] for i, t in enumerate(tracks) if t.split == s] for s in SPLITS}
    labels = {s: np.array([classes.index(t.label) for t in tracks if t.split == s], dtype=np.int64) for s in SPLITS}
    ids = {s: [t.track_id for t in tracks if t.split == s] for s in SPLITS}
    return TrainData(classes, "table", fc, items, labels, ids)


def load_inputs(names: list[str], manifest, args, cache_root: Path) -> tuple[dict, dict]:
    """One TrainData per distinct (kind, feature config); and the seconds each took."""
    from genrescope.training.data import from_manifest
    from genrescope.models import default_config

    datas, seconds = {}, {}
    for name in names:
        fc = feature_config_for(name, args)
        kind = default_config(name, feature_config=fc, n_classes=len(manifest.labels)).kind
        key = (kind, fc.key())
        if key in datas:
            continue
        t0 = time.perf_counter()
        if kind == "table":
            datas[key] = table_data(manifest, fc, args.jobs)
        else:
            datas[key] = from_manifest(manifest, fc, kind, cache_root=cache_root, jobs=args.jobs, progress=False)
        seconds[key] = time.perf_counter() - t0
        print(f"features {kind}: {seconds[key]:.1f} s", file=sys.stderr, flush=True)
    return datas, seconds


def train_all(names: list[str], datas: dict, args, out_root: Path) -> list[dict]:
    import torch

    from genrescope.training.augment import AugmentConfig
    from genrescope.models import build_model, default_config, n_params
    from genrescope.training.train import TrainConfig, fit

    torch.set_num_threads(args.threads)
    aug = AugmentConfig() if args.augment else AugmentConfig.off()
    cfg = TrainConfig(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, windows_per_track=args.windows_per_track, augment=aug, device=args.device)
    rows = []
    for name in names:
        fc = feature_config_for(name, args)
        data = next(d for (kind, key), d in datas.items() if key == fc.key() and
                    kind == default_config(name, feature_config=fc, n_classes=len(d.classes)).kind)
        mcfg = default_config(name, feature_config=fc, n_classes=data.n_classes)
        print(f"--- {name} ({data.kind}, {data.n_bins} bins)", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        res = fit(name, data, out_root / name, cfg=cfg, feature_config=fc, model_config=mcfg, progress=False)
        wall = time.perf_counter() - t0
        secs = [h["seconds"] for h in res.history]
        rows.append({"model": name, "input": f"{data.kind} {data.n_bins}",
                     "params": n_params(build_model(name, mcfg)),
                     "test_acc": res.test["track_accuracy"], "test_f1": res.test["track_macro_f1"],
                     "test_win_acc": res.test["window_accuracy"], "valid_acc": res.valid["track_accuracy"],
                     "best_epoch": res.best_epoch, "epochs": len(res.history),
                     "s_per_epoch": float(np.median(secs)), "wall": wall})
        r = rows[-1]
        print(f"{name}: test acc {r['test_acc']:.3f} F1 {r['test_f1']:.3f} (best epoch {r['best_epoch']}, "
              f"{wall:.0f} s); test confusion (rows true {data.classes}): "
              f"{res.test['report'].confusion.tolist()}", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| model | input | params | test track acc | test track macro-F1 | test window acc | "
            "valid track acc | best epoch / run | s / epoch | train wall s |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input']} | {r['params']:,} | {r['test_acc']:.3f} | {r['test_f1']:.3f} | "
                     f"{r['test_win_acc']:.3f} | {r['valid_acc']:.3f} | {r['best_epoch']} / {r['epochs']} | "
                     f"{r['s_per_epoch']:.1f} | {r['wall']:.0f} |")
    return "\n".join(lines)


def describe(manifest, datas: dict, feat_s: dict, args) -> str:
    counts = manifest.counts()
    split = "; ".join(f"{lab}: {c['train']}/{c['valid']}/{c['test']}" for lab, c in counts.items())
    feats = ", ".join(f"{k[0]} {s:.0f} s" for k, s in feat_s.items())
    return (f"tracks train/valid/test per class: {split}\n"
            f"protocol: epochs {args.epochs}, patience {args.patience} (valid track macro-F1), batch {args.batch_size}, "
            f"lr {args.lr}, seed {args.seed}, {args.windows_per_track} windows/track/epoch, augmentation "
            f"{'on (crop, gain, SpecAugment, mixup)' if args.augment else 'off'}, torch threads {args.threads}\n"
            f"features: n_fft {args.n_fft}, hop 512, n_mels {args.n_mels}, {args.window_s:g} s windows "
            f"(hop {args.window_s / 2:g} s), 22050 Hz; features-mlp: 57-column GTZAN table per track\n"
            f"feature extraction: {feats}")


# ---------------------------------------------------------------- modes
def run_synthetic(args, names: list[str]) -> None:
    from genrescope.datasets import load_dataset

    with tempfile.TemporaryDirectory(prefix="genrescope-learn-") as tmp:
        t0 = time.perf_counter()
        root = write_synthetic(Path(tmp) / "audio", per_style=args.per_style, duration=args.duration, seed=args.seed)
        gen_s = time.perf_counter() - t0
        manifest = load_dataset(root, layout="folders", split="stratified", seed=args.seed)
        datas, feat_s = load_inputs(names, manifest, args, Path(tmp) / "cache")
        rows = train_all(names, datas, args, Path(tmp) / "runs")
    print(f"## Synthetic styles: {len(STYLES)} classes x {args.per_style} tracks of {args.duration:g} s "
          f"(generated in {gen_s:.0f} s), chance = {1 / len(STYLES):.2f}\n")
    print(describe(manifest, datas, feat_s, args) + "\n")
    print(markdown(rows) + "\n")


def run_real(args, names: list[str]) -> None:
    if not SHARED_DATA.is_dir():
        print(f"real: {SHARED_DATA} is not present; skipped")
        return
    with tempfile.TemporaryDirectory(prefix="genrescope-learn-real-") as tmp:
        t0 = time.perf_counter()
        manifest = write_real_excerpts(Path(tmp) / "audio", SHARED_DATA, excerpt_s=args.excerpt_s,
                                       per_source=args.excerpts_per_source, seed=args.seed,
                                       fractions=args.real_fractions)
        cut_s = time.perf_counter() - t0
        sides = {}
        for t in manifest.entries:
            sides.setdefault((t.split, t.label), set()).add(t.artist.split("/", 1)[1])
        datas, feat_s = load_inputs(names, manifest, args, Path(tmp) / "cache")
        rows = train_all(names, datas, args, Path(tmp) / "runs")
    print(f"## Real music: {', '.join(REAL_CLASSES)}; {args.excerpt_s:g} s excerpts, at most "
          f"{args.excerpts_per_source} per source (cut in {cut_s:.0f} s), split by source, chance = "
          f"{1 / len(REAL_CLASSES):.2f}\n")
    print(describe(manifest, datas, feat_s, args))
    for split in ("valid", "test"):
        held = [f"{lab}: {', '.join(sorted(sides.get((split, lab), ())))}" for lab in REAL_CLASSES[1:]]
        print(f"{split} sources: " + "; ".join(held))
    print("\n" + markdown(rows) + "\n")


def parse_args(argv=None):
    from genrescope.models import BUILTIN

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("synthetic", "real", "both"))
    ap.add_argument("--models", default=",".join(BUILTIN), help="comma-separated (default: every built-in)")
    ap.add_argument("--epochs", type=int, default=None, help="default: 20 synthetic, 12 real")
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--windows-per-track", type=int, default=4)
    ap.add_argument("--no-augment", dest="augment", action="store_false")
    ap.add_argument("--n-mels", type=int, default=64)
    ap.add_argument("--n-fft", type=int, default=1024)
    ap.add_argument("--window-s", type=float, default=3.0)
    ap.add_argument("--per-style", type=int, default=40, help="synthetic tracks per style")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per synthetic track")
    ap.add_argument("--excerpt-s", type=float, default=15.0, help="real: excerpt length")
    ap.add_argument("--excerpts-per-source", type=int, default=12, help="real: most excerpts cut from one file")
    ap.add_argument("--real-fractions", type=lambda v: tuple(float(x) for x in v.split(",")), default=(0.7, 0.15, 0.15),
                    help="real: train,valid,test shares of the soundtrack sources (default 0.7,0.15,0.15)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--jobs", type=int, default=2, help="feature extraction processes")
    ap.add_argument("--device", default="auto")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    epochs = args.epochs
    if args.mode in ("synthetic", "both"):
        args.epochs = epochs or 20
        run_synthetic(args, names)
    if args.mode in ("real", "both"):
        args.epochs = epochs or 12
        run_real(args, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
