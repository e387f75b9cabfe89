"""The one tagging core shared by ``genrescope tag`` and the beets plugin.

Two halves, so that engines can run them in different processes:

* :func:`analyse` (in a worker): a file -> its genre ranking, as a small picklable dict,
  optionally from ``windows`` windows spread evenly over the song instead of all of them;
* :func:`choose` and :func:`tag_file` (in the process that owns the journal): the genres
  to write, the tags to change, the crash-safe rewrite and the report record.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genrescope.errors import GenrescopeError
from genrescope.library import tags as T
from genrescope.library.journal import Journal
from genrescope.library.safe_write import rewrite

#: Builds the predictor of a model name, in place of :func:`make_predictor`: anything with
#: ``predict(path)`` (and ``predict(path, windows=n)``) returning a Prediction. A tagging run
#: calls it in every worker, so for worker processes it must pickle (a module-level class or
#: function).
PredictorFactory = Callable[[str], Any]


@dataclass(frozen=True)
class TagOptions:
    """What decides a file's result; their hash keys the journal."""

    model: str = "default"
    top: int = 1
    min_confidence: float = 0.0
    windows: int = 0  # 0: every window of the song
    write: bool = False
    overwrite: bool = False
    runtime: str = "onnx"
    write_damaged: bool = False  # also write files that decode much shorter than their header says

    def job_key(self) -> str:
        fields = asdict(self)
        if not self.write_damaged:  # the key of a run without it stays what it was before the option
            del fields["write_damaged"]
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


#: A file whose audio decodes to less than this share of what its header promises is
#: "cut short": reported, and written only with ``write_damaged``.
SHORT_SHARE = 0.5


def make_predictor(model: str = "default", *, runtime: str = "onnx", threads: int | None = None):
    """The Predictor of ``model`` on ``runtime``, with ``threads`` intra-op threads (None: the runtime's choice)."""
    from genrescope.inference.predict import Predictor
    from genrescope.inference.runtimes import numpy_blas_one_thread

    numpy_blas_one_thread()  # the cores go to the model runtime's own threads
    return Predictor(model, runtime=runtime, threads=threads)


def analyse(predictor, path: str | os.PathLike, windows: int = 0) -> dict:
    """``{"model", "duration_s", "header_s", "warnings", "genres": [[label, prob], ...]}`` of one
    file, genres best first.

    ``header_s`` is the length the file's header promises (None when it does not say);
    ``warnings`` the decode warnings (truncated, damaged, silent), one line each. Raises
    GenrescopeError for unreadable audio. With ``windows`` > 0 and a song longer than that
    many model windows, only ``windows`` windows spread evenly over it are analysed and their
    timelines pooled into one track answer.
    """
    if windows == 0:
        hit = _from_cache(predictor, path)
        if hit is not None:
            return hit
    pred = predictor.predict(path, windows=windows) if windows > 0 else predictor.predict(path)
    return {"model": pred.model, "duration_s": None if pred.duration_s is None else round(float(pred.duration_s), 3),
            "header_s": _header_seconds(path), "warnings": list(getattr(pred, "warnings", None) or []),
            "genres": [[str(g), round(float(p), 4)] for g, p in pred.genres]}


def _header_seconds(path: str | os.PathLike) -> float | None:
    """The length the header promises, or None when it gives none (or cannot be read)."""
    from genrescope.audio.decode import audio_info

    try:
        info = audio_info(path)
    except (GenrescopeError, OSError):
        return None
    return round(info.frames / info.sr, 3) if info.frames and info.sr else None


def cut_short(analysis: dict) -> str | None:
    """Why a file's audio counts as cut short (much shorter than its header says), or None."""
    got, promised = analysis.get("duration_s"), analysis.get("header_s")
    if got is None or not promised or got >= SHORT_SHARE * promised:
        return None
    return f"only {got:.1f} s of the {promised:.1f} s its header promises decode"


def _from_cache(predictor, path) -> dict | None:
    """A learnt model's answer from the file's cached embeddings (``learn`` computed them): no decoding."""
    model = getattr(predictor, "model", None)
    cached = getattr(model, "cached_track", None)
    if cached is None:
        return None
    hit = cached(str(path))
    if hit is None:
        return None
    probs, duration = hit
    order = np.argsort(-probs, kind="stable")
    return {"model": model.name, "duration_s": round(duration, 3),
            "genres": [[str(model.labels[i]), round(float(probs[i]), 4)] for i in order]}


def choose(genres: list, top: int, min_confidence: float) -> tuple[list[str], list[tuple[str, float]]]:
    """``(genres to write, scores to store)``: the top ``top``, genres only at ``min_confidence`` or more."""
    scores = [(str(g), float(p)) for g, p in genres[:max(1, top)]]
    return [g for g, p in scores if p >= min_confidence], scores


def learnt_thresholds(model: str) -> dict | None:
    """``{"thresholds": {label: t or None}, "precision": {label: p}}`` of a learnt model
    (``genrescope learn``), found the way every command finds a model; None for any other model."""
    from genrescope.errors import CheckpointError
    from genrescope.inference.registry import is_learnt_dir, resolve_model_path
    from genrescope.learn.model_dir import read_config

    try:
        folder = resolve_model_path(model)[1].parent
        cfg = read_config(folder) if is_learnt_dir(folder) else {}
    except CheckpointError:  # not a model at all: the run itself says so
        return None
    if not isinstance(cfg.get("thresholds"), dict):
        return None
    return {"thresholds": cfg["thresholds"], "precision": cfg.get("threshold_precision") or {}}


def choose_sure(genres: list, learnt: dict, min_confidence: float = 0.0
                ) -> tuple[list[str], str | None, float | None]:
    """A learnt model's choice: ``(genres to write, why none, expected precision)``.

    The best label is written only when its probability reaches that label's learnt
    threshold (and ``min_confidence``); otherwise the note says why, e.g.
    ``unsure: 0.41 Waltz / 0.37 Viennese Waltz (Waltz needs 0.62)``.
    """
    if not genres:
        return [], "no prediction", None
    (label, p), rest = genres[0], genres[1:]
    t = learnt["thresholds"].get(str(label))
    if t is not None and p >= max(t, min_confidence) - 1e-9:
        return [str(label)], None, learnt["precision"].get(str(label))
    ranking = " / ".join(f"{q:.2f} {g}" for g, q in [(label, p)] + list(rest[:1]))
    if t is None:
        return [], f"unsure: {ranking} (cross-validation never reached the target precision for {label})", None
    return [], f"unsure: {ranking} ({label} needs {max(t, min_confidence):.2f})", None


def record(path: str, analysis: dict | None, *, status: str, error: str | None = None, **extra) -> dict:
    """One report row (see :mod:`genrescope.library.report` for the fields)."""
    a = analysis or {}
    return {"path": path, "status": status, "genres": a.get("genres", []), "model": a.get("model"),
            "duration_s": a.get("duration_s"), "written": extra.get("written"),
            "previous": extra.get("previous"), "note": extra.get("note"), "error": error,
            "expected_precision": extra.get("expected_precision"),
            "warnings": list(a.get("warnings") or [])}  # for stderr; the report keeps them in the note


def _note(path: str, analysis: dict, *notes: str | None) -> str | None:
    """The report's note: ``notes`` and the file's decode warnings (without the path they start with)."""
    warns = [w.removeprefix(f"{path}: ") for w in analysis.get("warnings") or []]
    parts = [n for n in (*notes, *warns) if n]
    return "; ".join(dict.fromkeys(parts)) or None


def tag_file(path: str, analysis: dict, opts: TagOptions, journal: Journal, learnt: dict | None = None) -> dict:
    """Plan (and with ``opts.write`` make) the tag change of one analysed file; journal it.

    Returns the report record. ``written`` holds the changed fields' new values (what a
    dry run would write), ``previous`` the same fields' values before the run, which
    ``--undo`` puts back. ``learnt`` (:func:`learnt_thresholds`): write only where the
    learnt per-label threshold is reached (:func:`choose_sure`).
    """
    try:
        short = cut_short(analysis)
        if short and opts.write and not opts.write_damaged:
            rec = record(path, analysis, status="damaged", note=_note(path, analysis, f"cut short: {short}; not written "
                                                                                 "(--write-damaged writes it anyway)"))
            journal.finish(path, os.stat(path), rec)
            return rec
        kind, current = T.read_snapshot(path)
        if kind is None:
            rec = record(path, analysis, status="no-tags",
                         note=f"genrescope writes no tags into .{Path(path).suffix.lower().lstrip('.')} files")
            journal.finish(path, os.stat(path), rec)
            return rec
        genres, scores = choose(analysis["genres"], opts.top, opts.min_confidence)
        unsure, expected = None, None
        if learnt is not None:
            genres, unsure, expected = choose_sure(analysis["genres"], learnt, opts.min_confidence)
        plan, kept = T.planned_snapshot(kind, current, genres, T.format_scores(scores, analysis["model"]),
                                        overwrite=opts.overwrite)
        pend = journal.pending(path)
        before = pend[0] if pend is not None and pend[1] == current else current  # a write a kill cut short
        changed = {k: plan[k] for k in plan if plan[k] != before.get(k)}
        note = "existing genre kept (use --overwrite to replace it)" if kept else (
            None if genres else unsure or f"no genre reached --min-confidence {opts.min_confidence}")
        if not changed:
            status = "unchanged"
        elif not opts.write:
            status = "would-write"
        else:
            status = "written"
        rewritten = opts.write and plan != current
        if rewritten:
            journal.begin_write(path, before, plan)
            rewrite(path, lambda tmp: T.apply_snapshot(tmp, kind, plan))
        wrote_genre = bool(genres) and not kept and T.genre_key(kind) in changed
        rec = record(path, analysis, status=status, written=changed or None,
                     previous={k: before.get(k) for k in changed} or None,
                     note=_note(path, analysis, f"cut short: {short}" if short else None, note),
                     expected_precision=round(expected, 3) if wrote_genre and expected is not None else None)
        journal.finish(path, os.stat(path), rec, rewritten=rewritten)
        return rec
    except (GenrescopeError, OSError) as e:
        msg = str(e) if isinstance(e, GenrescopeError) else f"{path}: {e.strerror or e}"
        return record(path, analysis, status="failed", error=msg)
