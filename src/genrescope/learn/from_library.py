"""``genrescope learn``: a genre model learnt from the tags a library already carries.

:func:`learn_library` is the whole job with typed arguments (the command,
``commands/learn_cmd.py``, and the beets plugin call it).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from genrescope.errors import GenrescopeError
from genrescope.learn.labels import Track, read_tracks
from genrescope.learn.user_taxonomy import MIN_TRACKS, Taxonomy, alias_spellings, build_taxonomy, read_aliases
from genrescope.learn.thresholds import MIN_PRECISION, coverage, label_precision, label_thresholds


@dataclass
class LearnOutcome:
    """What :func:`learn_library` did: the model folder and the figures it printed."""

    out: Path
    taxonomy: Taxonomy
    figures: dict
    thresholds: dict[str, float | None]
    untagged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def default_out(paths: list[str]) -> Path:
    """``<models folder>/<name of the first PATH>``: where ``--out`` defaults to."""
    from genrescope.inference.registry import learnt_models_root

    name = Path(os.path.abspath(paths[0])).name or "library"
    return learnt_models_root() / name


def learn_tracks(tracks: list[Track], out: str | os.PathLike, *, aliases: str | os.PathLike | None = None,
                 min_tracks: int = MIN_TRACKS, min_precision: float = MIN_PRECISION, folds: int = 5,
                 jobs: int = 0, progress: bool = True, cache_root=None, seed: int = 0,
                 say: Callable[[str], None] = print, library: str | None = None,
                 label_source: str = "tags", candidates=None) -> LearnOutcome:
    """Learn from tracks whose genres are already known (``Track.genres``; empty: untagged).

    Prints (``say``) the taxonomy before training and the cross-validated figures after, and
    writes the model folder ``out`` (:mod:`genrescope.learn.model_dir`).

    Raises
    ------
    GenrescopeError
        Fewer than two labels with ``min_tracks`` tracks, bad options, or no readable audio.
    """
    from genrescope.learn.embeddings import backbone_features, embed_files
    from genrescope.learn.learner import CANDIDATES, learn_head
    from genrescope.learn.model_dir import save_model
    from genrescope.learn.learn_report import cv_figures, results_text, taxonomy_table

    check_options(min_precision=min_precision, folds=folds, min_tracks=min_tracks)
    t0 = time.perf_counter()
    alias_map = read_aliases(aliases) if aliases else {}
    tax = build_taxonomy([t.genres for t in tracks], aliases=alias_map, min_tracks=min_tracks,
                         alias_names=alias_spellings(aliases))
    untagged = [t.path for t in tracks if not t.genres]
    say(taxonomy_table(tax, untagged=len(untagged), min_tracks=min_tracks))
    labelled = [(t, lab) for t in tracks if (lab := tax.label_of(t.genres)) is not None]
    if len(tax.labels) < 2:
        raise GenrescopeError(f"{library or 'the library'}: {len(tax.labels)} label(s) with at least {min_tracks} "
                              f"tracks; learning needs two or more (tag more files, merge labels with --aliases, "
                              f"or lower --min-tracks)")
    emb = embed_files([t.path for t, _ in labelled], cache_root=cache_root, jobs=jobs, progress=progress)
    for f, why in emb.failed.items():
        say(f"left out (unreadable): {why}")
    say(f"embedded {len(emb.windows)} files in {emb.seconds:.1f} s ({emb.cached} from the cache; "
        f"{emb.per_file_s:.2f} s per computed file)")
    x, y, groups = training_arrays(labelled, emb.windows, tax.labels, say=say, library=library)
    t1 = time.perf_counter()
    learnt = learn_head(x, y, groups, len(tax.labels), n_folds=folds, seed=seed,
                        candidates=candidates or CANDIDATES, progress=lambda m: say("  " + m))
    th = label_thresholds(learnt.cv.probs, y, min_precision)
    cov = coverage(learnt.cv.probs, y, th)
    figs = cv_figures(tax.labels, y, learnt.cv.probs, learnt.cv.fold_accuracy, learnt.cv.fold_macro_f1, th, cov)
    figs["groups"] = int(len(set(groups.tolist())))
    say(results_text(tax.labels, figs, th, min_precision, learnt.head.config))
    seconds = {"embedding": round(emb.seconds, 2), "learning": round(time.perf_counter() - t1, 2)}
    info = {"library": library, "label_source": label_source, "aliases": str(aliases) if aliases else None,
            "min_tracks": min_tracks, "min_precision": min_precision,
            "threshold_precision": dict(zip(tax.labels, label_precision(learnt.cv.probs, y, th))),
            "counts": tax.counts, "rare": tax.rare, "dropped": tax.dropped, "untagged": len(untagged),
            "spellings": tax.spellings, "cv": figs, "seconds": seconds,
            "backbone_per_file_s": round(emb.per_file_s, 3)}
    features = backbone_features()
    out = save_model(out, learnt.head, tax.labels, feature_config=features, window_s=float(features["window_s"]),
                     dim=x.shape[1] // 2, thresholds=th, info=info)
    seconds["total"] = round(time.perf_counter() - t0, 2)
    say(f"model written to {out} (use it as --model {out})")
    return LearnOutcome(out, tax, figs, dict(zip(tax.labels, th)), untagged, dict(emb.failed), seconds)


def training_arrays(labelled: list[tuple[Track, str]], windows: dict[str, np.ndarray], labels: list[str], *,
                    say: Callable[[str], None] = print, library: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (N, 2 D) pooled features, y (N,) label indices, groups (N,)) of the labelled tracks with audio.

    Raises GenrescopeError when fewer than two labels have readable audio; names a label whose
    tracks all share one group (held out, nothing of it is left to learn from).
    """
    from genrescope.learn.embeddings import pool

    keep = [(t, lab) for t, lab in labelled if t.path in windows]
    if len({lab for _, lab in keep}) < 2:
        raise GenrescopeError(f"{library or 'the library'}: fewer than two labels have readable audio")
    for lab in labels:
        if len({t.group for t, lab2 in keep if lab2 == lab}) == 1:
            say(f"note: every {lab} track belongs to one artist (or album, or folder): held out, it has nothing "
                f"to learn from, so its figures are those of an unseen artist")
    x = np.stack([pool(windows[t.path]) for t, _ in keep])
    y = np.array([labels.index(lab) for _, lab in keep])
    return x, y, np.array([t.group for t, _ in keep])


def check_options(*, labels: str = "tags", min_precision: float = MIN_PRECISION, folds: int = 5,
                  min_tracks: int = MIN_TRACKS, aliases=None) -> None:
    """Raise GenrescopeError for a bad option before any file is read."""
    if not 0 < min_precision <= 1:
        raise GenrescopeError(f"--min-precision must be in (0, 1], got {min_precision}")
    if folds < 2:
        raise GenrescopeError(f"--folds must be at least 2, got {folds}")
    if min_tracks < 1:
        raise GenrescopeError(f"--min-tracks must be at least 1, got {min_tracks}")
    if labels not in ("tags", "folders") and not Path(labels).is_file():
        raise GenrescopeError(f"{labels}: --labels takes 'tags', 'folders' or a CSV file of path,genre rows; "
                              f"no such file")
    if aliases is not None and not Path(aliases).is_file():
        raise GenrescopeError(f"{aliases}: no such alias file")


def learn_library(paths: list[str], out: str | os.PathLike | None = None, *, labels: str = "tags",
                  **kw) -> LearnOutcome:
    """Walk ``paths`` (folders, files, globs), read the labels (``"tags"``, ``"folders"`` or a CSV
    of path,genre) and learn (:func:`learn_tracks`, whose keyword arguments ``kw`` takes).
    ``out`` None: :func:`default_out`."""
    from genrescope.library.walk import Skipped, walk

    if not paths:
        raise GenrescopeError("learn: name at least one folder or file")
    check_options(labels=labels, **{k: kw[k] for k in ("min_precision", "folds", "min_tracks", "aliases") if k in kw})
    say = kw.get("say", print)
    files = []
    for item in walk([os.path.abspath(p) for p in paths]):
        if isinstance(item, Skipped):
            say(f"skipped: {item.error}")
        else:
            files.append(str(item))
    if not files:
        raise GenrescopeError(f"{', '.join(paths)}: no audio files found")
    tracks, problems = read_tracks(files, labels, roots=[os.path.abspath(p) for p in paths])
    for p in problems:
        say(f"tags unreadable, counted as untagged: {p}")
    out = Path(out) if out is not None else default_out(paths)
    return learn_tracks(tracks, out, library=", ".join(os.path.abspath(p) for p in paths),
                        label_source=labels, **kw)
