"""A user's library, made from GTZAN: learn from its tags, tag the rest, score both against genre10.

    python bench/learn_library.py [--per-genre N] [--keep DIR] [--seed 0]

Library: copies of the readable FF train + valid GTZAN tracks (``../shared/data/gtzan/audio``,
Opus; the shared files are never touched) in a temporary folder, renamed ``track_0001.opus`` ...
in one folder per artist-proxy group, so neither a file's name nor its folder tells its genre.
GTZAN has no artist labels; the proxy group (genre and block of 10 track numbers, as in
``recipes/gtzan_folds.py``: each genre's excerpts come in artist runs) goes into every copy's
ARTIST tag, so learn's artist-grouped folds keep a group on one side. Whole proxy groups of
each genre, about 70 % of its tracks, get a GENRE tag in one of several spellings ("Hip-Hop",
"hiphop", "HIP HOP", ...); the other 30 % stay untagged and are the held-out set, so no group
straddles the two. GTZAN gives each excerpt exactly one genre, so no multi-valued tags are made.

Steps, each a ``genrescope`` command in a fresh process, timed: ``learn`` with an empty
embedding cache (cold), ``learn`` again (rerun: the cache should hit), ``tag --write --model``
with the learnt model, and ``predict`` on the untagged files with the learnt model and with the
default ``genre10``. Printed: top-1 accuracy on the untagged files for both models, precision
and coverage of the genres ``tag`` wrote (and genre10's precision on its most confident files at
the same coverage), the learn times, and whether any tagged file's genre changed.

Caveat: ``genre10`` was trained on these very 338 tracks (GTZAN FF train + valid is all the
labelled audio here), so its figure here is on its own training data and flatters it; the
learnt model never saw the untagged files.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
from gtzan_folds import SHARED_AUDIO, load_gtzan, proxy_groups  # noqa: E402

#: the GENRE values a tagged copy gets, drawn per proxy group (one spelling per "artist")
SPELLINGS = {"blues": ("Blues", "blues", "BLUES"), "classical": ("Classical", "classical", "CLASSICAL"),
             "country": ("Country", "country", "COUNTRY"), "disco": ("Disco", "disco", "DISCO"),
             "hiphop": ("Hip-Hop", "hiphop", "HIP HOP", "Hip Hop", "hip_hop"), "jazz": ("Jazz", "jazz", "JAZZ"),
             "metal": ("Metal", "metal", "METAL"), "pop": ("Pop", "pop", "POP"),
             "reggae": ("Reggae", "reggae", "REGGAE"), "rock": ("Rock", "rock", "ROCK")}
TAGGED_FRACTION = 0.7


def canonical(label: str) -> str:
    """A genre name without case, spaces or punctuation ("Hip-Hop" -> "hiphop")."""
    return re.sub(r"[^a-z0-9]", "", label.lower())


def choose_untagged(tracks, groups: np.ndarray, rng) -> set[int]:
    """Indices of whole proxy groups, per genre, until about 30 % of the genre's tracks
    (a genre of one group stays tagged)."""
    untagged: set[int] = set()
    for genre in sorted({t.label for t in tracks}):
        idx = [i for i, t in enumerate(tracks) if t.label == genre]
        names = sorted({groups[i] for i in idx})
        rng.shuffle(names)
        target, taken = (1 - TAGGED_FRACTION) * len(idx), 0
        for name in names[:-1]:  # the last group stays tagged: every genre keeps training data
            members = [i for i in idx if groups[i] == name]
            if abs(taken + len(members) - target) >= abs(taken - target):
                continue  # only moves that bring the untagged share closer to the target
            untagged |= set(members)
            taken += len(members)
    return untagged


def build_library(root: Path, tracks, seed: int) -> list[dict]:
    """Copy and tag the tracks under ``root``; one dict per copy (path, genre, tagged, spelling)."""
    from mutagen.oggopus import OggOpus

    rng = np.random.default_rng(seed)
    groups = proxy_groups(tracks)
    untagged = choose_untagged(tracks, groups, rng)
    artist = {g: f"Artist {k:03d}" for k, g in enumerate(sorted(set(groups), key=lambda _: rng.random()))}
    spelling = {g: rng.choice(SPELLINGS[g.split("/")[0]]) for g in sorted(set(groups))}
    order = rng.permutation(len(tracks))
    rows = []
    for n, i in enumerate(order, 1):
        t, g = tracks[i], groups[i]
        dest = root / artist[g].replace(" ", "_").lower() / f"track_{n:04d}.opus"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(t.path, dest)
        f = OggOpus(dest)
        f["artist"] = [artist[g]]
        if i not in untagged:
            f["genre"] = [str(spelling[g])]
        f.save()
        rows.append({"path": str(dest), "genre": t.label, "tagged": i not in untagged,
                     "spelling": None if i in untagged else str(spelling[g])})
    return rows


def genrescope(args: list[str], env: dict) -> tuple[float, str]:
    """Run one genrescope command (niced); its wall time in seconds and its stdout."""
    t0 = time.perf_counter()
    done = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "genrescope", *args], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"genrescope {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0, done.stdout


def predictions(paths: list[str], model: str, env: dict) -> tuple[float, dict[str, list[tuple[str, float]]]]:
    """(seconds, path -> [(genre, probability)] best first) from ``genrescope predict``."""
    sec, out = genrescope(["predict", *paths, "--model", model, "--format", "json", "--top", "0"], env)
    return sec, {d["path"]: [(g["label"], g["probability"]) for g in d["genres"]] for d in json.loads(out)}


def accuracy(rows: list[dict], pred: dict) -> tuple[float, float]:
    """Top-1 accuracy of ``pred`` on ``rows`` and its binomial standard error."""
    hits = [canonical(pred[r["path"]][0][0]) == r["genre"] for r in rows]
    acc = float(np.mean(hits))
    return acc, float(np.sqrt(acc * (1 - acc) / len(hits)))


def written_genres(rows: list[dict]) -> dict[str, list[str]]:
    from mutagen.oggopus import OggOpus

    return {r["path"]: list(OggOpus(r["path"]).get("genre", [])) for r in rows}


def matched_precision(rows: list[dict], pred: dict, n: int) -> float | None:
    """Precision of a model's top genre on its ``n`` most confident files of ``rows``."""
    if n == 0:
        return None
    best = sorted(rows, key=lambda r: -pred[r["path"]][0][1])[:n]
    return float(np.mean([canonical(pred[r["path"]][0][0]) == r["genre"] for r in best]))


def learn_steps(lib: Path, work: Path, rows: list[dict], env: dict) -> dict:
    """learn (cold, rerun), tag --write and predict with the learnt model; their figures."""
    model = work / "model"
    cold, _ = genrescope(["learn", str(lib), "--out", str(model), "--no-progress"], env)
    rerun, _ = genrescope(["learn", str(lib), "--out", str(model), "--no-progress"], env)
    before = written_genres(rows)
    tag_s, _ = genrescope(["tag", str(lib), "--write", "--model", str(model), "--report", str(work / "tag.json"),
                           "--no-progress"], env)
    after = written_genres(rows)
    held = [r for r in rows if not r["tagged"]]
    wrote = [r for r in held if after[r["path"]]]
    right = [r for r in wrote if canonical(after[r["path"]][0]) == r["genre"]]
    pred_s, pred = predictions([r["path"] for r in held], str(model), env)
    return {"learn_cold_s": cold, "learn_rerun_s": rerun, "tag_s": tag_s, "predict_s": pred_s, "pred": pred,
            "written": len(wrote), "written_right": len(right),
            "tagged_changed": sum(before[r["path"]] != after[r["path"]] for r in rows if r["tagged"])}


def report(rows: list[dict], default: dict, learnt: dict | None, times: dict) -> str:
    held = [r for r in rows if not r["tagged"]]
    acc, se = accuracy(held, default)
    lines = [f"library: {len(rows)} copies, {len(rows) - len(held)} tagged ({len({r['spelling'] for r in rows if r['tagged']})}"
             f" spellings), {len(held)} untagged (held out)",
             f"genre10 (default; trained on these tracks, flattering): accuracy on the untagged {acc:.3f} ± {se:.3f}"
             f"  (predict {times['default_predict_s']:.0f} s)"]
    if learnt is None:
        lines.append("learnt model: the learn command is not available in this install; skipped")
        return "\n".join(lines)
    acc, se = accuracy(held, learnt["pred"])
    n, right = learnt["written"], learnt["written_right"]
    prec = right / n if n else float("nan")
    lines += [f"learnt model: accuracy on the untagged {acc:.3f} ± {se:.3f}  (predict {learnt['predict_s']:.0f} s)",
              f"tag --write: wrote {n} of {len(held)} untagged files (coverage {n / len(held):.3f}), "
              f"precision {prec:.3f} ({right}/{n}); tagged files whose genre changed: {learnt['tagged_changed']}",
              f"genre10 on its {n} most confident untagged files: precision "
              f"{matched_precision(held, default, n) or float('nan'):.3f}",
              f"learn: cold {learnt['learn_cold_s']:.0f} s, rerun {learnt['learn_rerun_s']:.0f} s; "
              f"tag {learnt['tag_s']:.0f} s"]
    return "\n".join(lines)


def has_learn(env: dict) -> bool:
    done = subprocess.run([sys.executable, "-m", "genrescope", "learn", "--help"], env=env, capture_output=True)
    return done.returncode == 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-genre", type=int, default=None, help="only the first N tracks of each genre")
    ap.add_argument("--keep", type=Path, default=None, help="build the library here and keep it (default: temp)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not SHARED_AUDIO.is_dir():
        print(f"{SHARED_AUDIO} is not present; nothing to do")
        return 0
    tracks = list(load_gtzan().entries)
    if args.per_genre:
        rng = np.random.default_rng(args.seed)  # a sample of each genre, across its groups
        keep = {g: set(rng.permutation([t.track_id for t in tracks if t.label == g])[:args.per_genre])
                for g in {t.label for t in tracks}}
        tracks = [t for t in tracks if t.track_id in keep[t.label]]
    with tempfile.TemporaryDirectory(prefix="learn-library-") as tmp:
        work = args.keep or Path(tmp)
        lib = work / "library"
        if lib.exists():
            sys.exit(f"{lib} exists; give an empty --keep folder")
        env = os.environ | {"GENRESCOPE_CACHE": str(work / "cache")}
        t0 = time.perf_counter()
        rows = build_library(lib, tracks, args.seed)
        times = {"build_s": time.perf_counter() - t0}
        held = [r["path"] for r in rows if not r["tagged"]]
        times["default_predict_s"], default = predictions(held, "genre10", env)
        learnt = learn_steps(lib, work, rows, env) if has_learn(env) else None
        print(report(rows, default, learnt, times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
