"""How closely genrescope.features.gtzan_table reproduces the published GTZAN features table, and how fast.

For every excerpt in ../shared/data/gtzan/clips whose row is in the shared CSV, the row is
recomputed from audio and compared with the CSV, column by column:

* most columns: relative error ``|ours - csv| / |csv|``, median and max over clips;
* ``harmony_mean`` / ``perceptr_mean``: these are means of zero-centred waveforms, ~1e-5
  against a standard deviation of ~0.1, and the table computed them by float32 summation,
  so a relative error says nothing. They are scored as ``|ours - csv| / sqrt(csv var)``,
  the error in units of the waveform's own standard deviation;
* ``tempo``: a choice among lags on a grid (60 * 22050 / 512 / lag BPM); it is scored by the
  fraction of clips where the pick is identical, beside its relative error.

Timing: seconds per 30 s of audio for genrescope and, in the same run, for the librosa
recipe that made the table (librosa 0.11 called with the old defaults), and their ratio.

    python bench/gtzan_table_agreement.py [--limit N] [--no-librosa] [--data DIR]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from genrescope.audio.decode import load_audio
from genrescope.features.gtzan_table import COLUMNS, extract_row, read_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CSV_NAME = "features_30_sec.ff-train-valid.csv"
MEAN_OF_WAVEFORM = {"harmony_mean": "harmony_var", "perceptr_mean": "perceptr_var"}


def librosa_row(y: np.ndarray, sr: int) -> dict[str, float]:
    """The librosa reference recipe, shared with the tests (genrescope.testing.librosa_gtzan_row)."""
    from genrescope.testing import librosa_gtzan_row as reference

    row = reference(y, sr)
    return {c: row[c] for c in COLUMNS}


def errors(row: dict[str, float], ref: np.ndarray) -> np.ndarray:
    """Per-column error of ``row`` against a reference vector in COLUMNS order (see module doc)."""
    out = np.empty(len(COLUMNS))
    for j, c in enumerate(COLUMNS):
        if c in MEAN_OF_WAVEFORM:
            out[j] = abs(row[c] - ref[j]) / np.sqrt(ref[COLUMNS.index(MEAN_OF_WAVEFORM[c])])
        else:
            out[j] = abs(row[c] - ref[j]) / max(abs(ref[j]), 1e-30)
    return out


def time_median_filters(y: np.ndarray) -> tuple[float, float]:
    """Seconds for HPSS's two 31-point median filters on one clip: scipy's 2-D footprint
    (what librosa calls) against genrescope's line-wise 1-D filter. Results are equal."""
    import scipy.ndimage

    from genrescope.features import spectral
    S = spectral.magnitude(spectral.stft(y, pad_mode="reflect"))
    t0 = time.perf_counter()
    ref = [scipy.ndimage.median_filter(S, size=fp, mode="reflect") for fp in ((1, 31), (31, 1))]
    t_2d = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = [spectral.median_filter_1d(S, 31, axis=ax) for ax in (1, 0)]
    t_1d = time.perf_counter() - t0
    assert all(np.array_equal(a, b) for a, b in zip(ref, ours))
    return t_2d, t_1d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: ../shared/data)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N matching clips")
    ap.add_argument("--no-librosa", action="store_true", help="skip the librosa reference and the timing ratio")
    args = ap.parse_args(argv)

    csv_path = args.data / "gtzan" / CSV_NAME
    if not csv_path.is_file():
        print(f"skipped: {csv_path} is absent (the shared data lives beside the repo, not in it)")
        return 0
    names, X, _, _ = read_table(csv_path)
    by_name = {n: X[i] for i, n in enumerate(names)}
    clips = [p for p in sorted((args.data / "gtzan" / "clips").glob("*/*.wav")) if p.stem + ".au" in by_name]
    clips = clips[: args.limit] if args.limit else clips
    if not clips:
        print("skipped: no clip in gtzan/clips has a row in the CSV")
        return 0
    use_librosa = not args.no_librosa
    if use_librosa:
        try:
            import librosa
        except ImportError:
            print("librosa is not installed: no reference timing")
            use_librosa = False
    if use_librosa:  # warm numba's compiled kernels so they do not count as run time
        librosa_row(load_audio(clips[0], sr=22050)[: 22050 * 3], 22050)
    extract_row(clips[0])

    errs, lerrs, t_ours, t_ref = [], [], [], []
    for p in clips:
        ref = by_name[p.stem + ".au"]
        y = load_audio(p, sr=22050)
        per30 = 30.0 / (len(y) / 22050)
        t0 = time.perf_counter()
        row = extract_row(p)  # from the path: decoding counts, as for a user
        t_ours.append((time.perf_counter() - t0) * per30)
        errs.append(errors(row, ref))
        if use_librosa:
            t0 = time.perf_counter()
            lrow = librosa_row(load_audio(p, sr=22050), 22050)
            t_ref.append((time.perf_counter() - t0) * per30)
            lerrs.append(errors(lrow, ref))
        print(f"  {p.name:22s} genrescope {t_ours[-1]:.3f} s" + (f"  librosa {t_ref[-1]:.3f} s" if use_librosa else ""),
              flush=True)
    E = np.array(errs)  # (clips, 57)
    tempo_j = COLUMNS.index("tempo")
    print(f"\n{len(clips)} clips of {csv_path.name}; error = |ours - csv| / |csv|, "
          "except harmony/perceptr means: |ours - csv| / std of the waveform")
    head = f"{'column':26s} {'median':>9s} {'max':>9s}" + (f" {'librosa med':>12s}" if use_librosa else "")
    print(head)
    for j, c in enumerate(COLUMNS):
        line = f"{c:26s} {np.median(E[:, j]):9.2e} {E[:, j].max():9.2e}"
        if use_librosa:
            line += f" {np.median(np.array(lerrs)[:, j]):12.2e}"
        print(line)
    tempo_same = np.mean(E[:, tempo_j] == 0)
    med = np.median(E, axis=0)
    worst = int(np.argmax(med))
    print(f"\ncolumns with median error < 1%: {np.sum(med < 0.01)}/{len(COLUMNS)}; "
          f"worst median {COLUMNS[worst]} {med[worst]:.2e}; worst single value {E.max():.2e} "
          f"({COLUMNS[int(np.argmax(E.max(axis=0)))]}); tempo identical on {tempo_same:.0%} of clips")
    print(f"time per 30 s file: genrescope {np.median(t_ours):.3f} s (median)", end="")
    if use_librosa:
        print(f", librosa recipe {np.median(t_ref):.3f} s; librosa / genrescope = "
              f"{np.median(t_ref) / np.median(t_ours):.1f}x")
    else:
        print()
    t_2d, t_1d = time_median_filters(load_audio(clips[0], sr=22050))
    print(f"HPSS median filters on {clips[0].name}: scipy 2-D footprint {t_2d:.3f} s, "
          f"line-wise 1-D {t_1d:.3f} s ({t_2d / t_1d:.1f}x), identical output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
