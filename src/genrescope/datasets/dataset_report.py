"""What a dataset holds: counts per class and split, duration, skipped and unreadable files, leakage."""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import Any

from genrescope.datasets.manifest import SPLITS, Manifest
from genrescope.datasets.splits import find_leakage
from genrescope.errors import GenrescopeError

log = logging.getLogger(__name__)

#: Example paths shown per skip reason in the table output (JSON lists them all).
_SHOW_PER_REASON = 5


def check_files(manifest: Manifest) -> tuple[dict[str, float], list[dict[str, str]]]:
    """Read every track's header: seconds of audio per split, and the files that fail.

    Returns
    -------
    durations : dict
        ``{"train": s, "valid": s, "test": s, "none": s, "total": s}``.
    unreadable : list of dict
        ``{"path", "track_id", "reason"}`` for every file whose header cannot be read.
    """
    from genrescope.audio.decode import audio_info

    dur: dict[str, float] = defaultdict(float)
    unreadable = []
    for n, t in enumerate(manifest.entries, 1):
        try:
            seconds = audio_info(t.path).duration_s
        except GenrescopeError as e:
            unreadable.append({"path": t.path, "track_id": t.track_id, "reason": getattr(e, "reason", str(e))})
            continue
        dur[t.split or "none"] += seconds
        if n % 1000 == 0:
            log.info("read %d of %d headers", n, len(manifest.entries))
    out = {s: round(dur[s], 3) for s in (*SPLITS, "none")}
    out["total"] = round(sum(dur.values()), 3)
    return out, unreadable


def dataset_report(manifest: Manifest, *, check: bool = True) -> dict[str, Any]:
    """Everything ``dataset info`` prints, as a JSON-ready dict."""
    counts = manifest.counts()
    totals = {k: sum(row[k] for row in counts.values()) for k in (*SPLITS, "none", "total")}
    durations, unreadable = check_files(manifest) if check else (None, None)
    return {
        "path": manifest.root,
        "layout": manifest.layout,
        "split_policy": manifest.split_policy,
        "labels": list(manifest.labels),
        "n_tracks": len(manifest.entries),
        "counts": counts,
        "totals": totals,
        "duration_s": durations,
        "unreadable": unreadable,
        "skipped": [{"path": s.path, "track_id": s.track_id, "reason": s.reason} for s in manifest.skipped],
        "skipped_by_reason": dict(Counter(s.reason for s in manifest.skipped).most_common()),
        "leakage": find_leakage(manifest),
    }


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` for a number of seconds."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_report(r: dict[str, Any]) -> str:
    """The human-readable table of :func:`dataset_report`."""
    cols = [*SPLITS, *(["none"] if r["totals"]["none"] else []), "total"]
    width = max([len("label"), len("total")] + [len(x) for x in r["labels"]])
    lines = [f"{r['path']}  (layout {r['layout']}, split {r['split_policy'] or 'none'})", ""]
    lines.append(f"{'label':<{width}}" + "".join(f"{c:>8}" for c in cols))
    for label in r["labels"]:
        lines.append(f"{label:<{width}}" + "".join(f"{r['counts'][label][c]:>8}" for c in cols))
    lines.append(f"{'total':<{width}}" + "".join(f"{r['totals'][c]:>8}" for c in cols))
    lines.append("")
    d = r["duration_s"]
    if d is None:
        lines.append(f"{r['n_tracks']} tracks (durations not read: --no-check)")
    else:
        parts = ", ".join(f"{c} {format_duration(d[c])}" for c in cols[:-1] if d[c])
        lines.append(f"{r['n_tracks']} tracks, {format_duration(d['total'])} of audio ({parts})")
    if r["skipped"]:
        lines.append(f"skipped: {_files(len(r['skipped']))}")
        by_reason: dict[str, list[str]] = defaultdict(list)
        for s in r["skipped"]:
            by_reason[s["reason"]].append(s["path"])
        for reason, paths in by_reason.items():
            lines.append(f"  {len(paths):>5}  {reason}")
            lines.extend(f"         {p}" for p in paths[:_SHOW_PER_REASON])
            if len(paths) > _SHOW_PER_REASON:
                lines.append(f"         ... and {len(paths) - _SHOW_PER_REASON} more")
    if r["unreadable"] is not None:
        lines.append(f"unreadable: {_files(len(r['unreadable']))}")
        lines.extend(f"  {u['path']}: {u['reason']}" for u in r["unreadable"])
    lines.append("split leakage: " + ("none" if not r["leakage"] else f"{len(r['leakage'])} problems"))
    lines.extend(f"  {p}" for p in r["leakage"][:20])
    return "\n".join(lines)


__all__ = ["dataset_report", "format_report", "check_files", "format_duration"]
