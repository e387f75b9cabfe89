"""What ``genrescope predict`` prints: tables, JSON and CSV of Predictions.

JSON schema (``--format json``): one array, one object per input file::

    {"path": str, "model": str, "duration_s": float | null,
     "genres": [{"label": str, "probability": float}, ...],   # highest first
     "multi_label": bool | null,   # true: independent tag probabilities (need not sum to 1)
     "backend": "openvino" | "onnxruntime" | "torch" | null,   # the engine that ran (--backend auto picks;
                                                               # the page's in-browser answers: "onnxruntime-web")
     "precision": "fp32" | "bf16" | null,   # the arithmetic that ran (openvino: bf16 where the CPU has it)
     "error": str | null,          # why this file failed; genres is then []
     "warnings": [str, ...],       # what did not stop it: truncated or damaged file, silence
     "tags": [{"label": ..., "probability": ...}],            # with --tags (taggers and heads), --top of them
     "timeline": {"labels": [...], "multi_label": bool,       # with --timeline
                  "start_s": [...], "end_s": [...], "probabilities": [[...], ...]},
     "segments": [{"start_s", "end_s", "label", "probability"}, ...],   # with --segments
     "saliency": {"method": "occlusion", "occlude_s", "labels": [...],  # with --saliency
                  "start_s": [...], "end_s": [...], "drop": [[...], ...]}}

No output holds NaN or Infinity: JSON is written with ``allow_nan=False``, and the
analysis refuses non-finite samples and non-finite model outputs as errors about the file.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from genrescope.errors import GenrescopeError


def _bar(p: float, width: int = 20) -> str:
    n = int(round(max(0.0, min(1.0, p)) * width))
    return "#" * n + "." * (width - n)


def format_table(pred, top: int, tags: bool) -> str:
    if pred.error:
        return f"{pred.path}\n  error: {pred.error}\n"
    multi = pred.timeline.multi_label
    n = len(pred.timeline.probs)
    head = (f"{pred.path}  ({pred.duration_s:.1f} s, {n} window{'' if n == 1 else 's'}, model {pred.model}"
            + (", tag probabilities" if multi else "") + ")")
    lines = [head]
    genres = pred.genres if not top else pred.genres[:top]
    w = max([len(g) for g, _ in genres] + [5])
    lines += [f"  {g:<{w}}  {p:5.3f}  {_bar(p)}" for g, p in genres]
    if tags and pred.tags:
        lines.append("  other tags:")
        shown = pred.tags if not top else pred.tags[:top]
        w2 = max(len(g) for g, _ in shown)
        lines += [f"    {g:<{w2}}  {p:5.3f}" for g, p in shown]
    return "\n".join(lines) + "\n"


def format_timeline_table(pred, top: int = 3) -> str:
    """A readable per-window listing: time span and the leading genres."""
    if pred.error or pred.timeline is None:
        return ""
    tl = pred.timeline
    genre_set = set(g for g, _ in pred.genres)
    idx = [i for i, lab in enumerate(tl.labels) if lab in genre_set]
    lines = []
    for k in range(len(tl.probs)):
        row = sorted(((tl.labels[i], float(tl.probs[k, i])) for i in idx), key=lambda t: -t[1])[:top]
        lines.append(f"  {tl.start_s[k]:7.1f}-{tl.end_s[k]:<7.1f} " + "  ".join(f"{g} {p:.2f}" for g, p in row))
    return "\n".join(lines) + "\n"


def timeline_csv(pred) -> str:
    tl = pred.timeline
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["start_s", "end_s", *tl.labels])
    for k in range(len(tl.probs)):
        w.writerow([f"{tl.start_s[k]:.3f}", f"{tl.end_s[k]:.3f}", *(f"{p:.4f}" for p in tl.probs[k])])
    return buf.getvalue()


def predictions_csv(preds, top: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "model", "duration_s", "rank", "label", "probability", "error", "warnings"])
    for p in preds:
        if p.error:
            w.writerow([p.path, p.model, "", "", "", "", p.error, ""])
            continue
        notes = "; ".join(p.warnings)
        for r, (g, prob) in enumerate(p.genres[:top] if top else p.genres, 1):
            w.writerow([p.path, p.model, f"{p.duration_s:.3f}", r, g, f"{prob:.4f}", "", notes])
    return buf.getvalue()


def timeline_paths(template: str, preds) -> list[Path]:
    """Where each prediction's timeline CSV goes; two files with one stem get ``-2``, ``-3``... (no overwrite)."""
    if "{stem}" not in template:
        if len(preds) > 1:
            raise GenrescopeError("--timeline PATH with several files needs {stem} in PATH, e.g. tl_{stem}.csv")
        return [Path(template) for _ in preds]
    out: list[Path] = []
    for p in preds:
        stem = Path(p.path).stem
        path, k = Path(template.format(stem=stem)), 1
        while path in out:
            k += 1
            path = Path(template.format(stem=f"{stem}-{k}"))
        out.append(path)
    return out


def prediction_object(pred, *, timeline: bool = False, top: int = 5, tags: bool = False) -> dict:
    """One file's JSON object, as ``--format json`` prints it (and the API's ``to_dict``): ``tags``
    only with ``tags`` (``--tags``), ``top`` (0: all) limiting genres and tags alike, as in the table."""
    d = pred.to_dict(timeline=timeline, top=top or None)
    if not tags:
        d.pop("tags", None)
    elif top and d.get("tags"):
        d["tags"] = d["tags"][:top]
    return d


def json_text(obj) -> str:
    return json.dumps(obj, indent=1, allow_nan=False)
