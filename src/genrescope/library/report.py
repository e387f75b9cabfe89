"""The report of a tagging run: one row per file, CSV or JSON lines.

Fields (JSON lines keep the structures; CSV encodes the structured ones as compact JSON,
except ``genres``, written ``label:prob;label:prob``):

``path``
    the file (absolute).
``status``
    ``written``, ``would-write`` (a dry run: nothing was written), ``unchanged`` (the tags
    already say this), ``no-tags`` (a container genrescope writes no tags into, e.g. wav)
    or ``failed``.
``genres``
    the whole ranking, best first: ``[[label, probability], ...]``.
``model``, ``duration_s``
    the model that analysed the file and the audio's length in seconds.
``written``
    ``{field: values}``: the tag fields changed (or, in a dry run, to be changed).
``previous``
    ``{field: values or null}``: the same fields before the run (null: absent);
    ``genrescope tag --undo REPORT`` restores them.
``note``, ``error``
    why an existing genre was kept or none was written (with a learnt model: ``unsure: 0.41
    waltz / 0.37 viennese waltz``), or why the file failed (one line naming the file).
``expected_precision``
    with a learnt model (``genrescope learn``), for a genre it wrote (or would write): the
    precision cross-validation measured for that label at its threshold.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from genrescope.errors import GenrescopeError

FIELDS = ("path", "status", "genres", "model", "duration_s", "written", "previous", "note", "error",
          "expected_precision")
_JSON_FIELDS = ("written", "previous")


def is_jsonl(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith((".jsonl", ".json", ".ndjson"))


def _csv_genres(genres: list) -> str:
    return ";".join(f"{g}:{p:.4f}" for g, p in genres)


def _parse_csv_genres(text: str) -> list:
    out = []
    for part in filter(None, text.split(";")):
        label, _, prob = part.rpartition(":")
        out.append([label, float(prob)])
    return out


def dumps(records: list[dict], jsonl: bool) -> str:
    """The report text of ``records`` (sorted by path, so reruns and engines compare equal)."""
    rows = sorted(records, key=lambda r: r["path"])
    if jsonl:
        return "".join(json.dumps({k: r.get(k) for k in FIELDS}, ensure_ascii=False) + "\n" for r in rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(FIELDS)
    for r in rows:
        cells = []
        for k in FIELDS:
            v = r.get(k)
            if k == "genres":
                v = _csv_genres(v or [])
            elif k in _JSON_FIELDS:
                v = "" if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":"))
            cells.append("" if v is None else v)
        w.writerow(cells)
    return buf.getvalue()


def write(path: str | os.PathLike, records: list[dict]) -> None:
    """Write the report atomically (a killed run never leaves half a report)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(dumps(records, is_jsonl(p)), encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        raise GenrescopeError(f"{p}: cannot write the report ({e.strerror or e})") from e


def read(path: str | os.PathLike) -> list[dict]:
    """The records of a report written by :func:`write` (CSV or JSON lines)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise GenrescopeError(f"{p}: cannot read the report ({e.strerror or e})") from e
    try:
        if is_jsonl(p):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and "path" not in rows[0]:
            raise ValueError("no path column")
        for r in rows:
            r["genres"] = _parse_csv_genres(r.get("genres") or "")
            for k in _JSON_FIELDS:
                r[k] = json.loads(r[k]) if r.get(k) else None
            r["duration_s"] = float(r["duration_s"]) if r.get("duration_s") else None
            r["expected_precision"] = float(r["expected_precision"]) if r.get("expected_precision") else None
            for k in ("model", "note", "error"):
                r[k] = r.get(k) or None
        return rows
    except (ValueError, KeyError) as e:
        raise GenrescopeError(f"{p}: not a genrescope tag report ({e})") from e
