"""Reading and writing the genre tags of one file, with mutagen.

Each supported container keeps two things of ours: the genre field players show, and one
machine-readable field with the scores and the model (``GENRESCOPE=rock:0.62;pop:0.21;
model=NAME``):

=============  ==================================  ======================================
container      genre                               scores
=============  ==================================  ======================================
mp3 (ID3v2)    ``TCON``                            ``TXXX:GENRESCOPE``
flac/ogg/opus  Vorbis comment ``GENRE``            Vorbis comment ``GENRESCOPE``
m4a/mp4        ``©gen`` atom (``gnre`` is cleared  ``----:com.apple.iTunes:GENRESCOPE``
               with it)
=============  ==================================  ======================================

A *snapshot* is the raw state of those fields, ``{key: list | None}`` (None: absent), plain
JSON, so a report can carry it and :func:`apply_snapshot` can put it back exactly. Only
these keys are ever touched; mutagen rewrites tag blocks, never audio frames.
"""
from __future__ import annotations

import os

from genrescope.errors import GenrescopeError

#: Name of the machine-readable field in every container.
FIELD = "GENRESCOPE"
_MP4_FIELD = f"----:com.apple.iTunes:{FIELD}"


class TagError(GenrescopeError):
    """A file whose tags cannot be read or written."""


def _kind(f) -> str | None:
    from mutagen.flac import FLAC
    from mutagen.mp3 import MP3
    from mutagen.mp4 import MP4
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    if isinstance(f, MP3):
        return "id3"
    if isinstance(f, (FLAC, OggVorbis, OggOpus)):
        return "vorbis"
    if isinstance(f, MP4):
        return "mp4"
    return None


def open_file(path: str | os.PathLike):
    """The mutagen object of ``path`` and its kind (``id3``, ``vorbis``, ``mp4`` or None).

    Raises
    ------
    TagError
        mutagen cannot parse the file.
    """
    import mutagen

    try:
        f = mutagen.File(str(path))
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as e:
        raise TagError(f"{path}: cannot read its tags ({e})") from e
    return f, (_kind(f) if f is not None else None)


def tag_kind(path: str | os.PathLike) -> str | None:
    """The tag family this module writes for ``path``, None when it writes none."""
    return open_file(path)[1]


def keys(kind: str) -> tuple[str, ...]:
    """The fields a snapshot of this kind holds."""
    return {"id3": ("TCON", f"TXXX:{FIELD}"), "vorbis": ("genre", FIELD.lower()),
            "mp4": ("©gen", "gnre", _MP4_FIELD)}[kind]


def genre_key(kind: str) -> str:
    return keys(kind)[0]


def score_key(kind: str) -> str:
    return keys(kind)[-1]


def _get(f, kind: str, key: str) -> list | None:
    tags = f.tags
    if tags is None:
        return None
    if kind == "id3":
        frames = tags.getall(key)
        return None if not frames else [str(t) for fr in frames for t in fr.text]
    if kind == "vorbis":
        vals = tags.get(key)  # case-insensitive: GENRE, genre, Genre
        return None if vals is None else [str(v) for v in vals]
    vals = tags.get(key)
    if vals is None:
        return None
    if key == "gnre":
        return [int(v) for v in vals]
    if key.startswith("----:"):
        return [bytes(v).decode("utf-8", "replace") for v in vals]
    return [str(v) for v in vals]


def _set(f, kind: str, key: str, values: list | None) -> None:
    if f.tags is None:
        if values is None:
            return
        f.add_tags()
    tags = f.tags
    if kind == "id3":
        from mutagen.id3 import TCON, TXXX

        tags.delall(key)
        if values is not None:
            frame = (TCON(encoding=3, text=list(values)) if key == "TCON"
                     else TXXX(encoding=3, desc=key.split(":", 1)[1], text=list(values)))
            tags.add(frame)
        return
    if values is None:
        if key in tags:
            del tags[key]
        return
    if kind == "mp4" and key.startswith("----:"):
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        values = [MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8) for v in values]
    tags[key] = list(values)


def snapshot_of(f, kind: str) -> dict:
    return {k: _get(f, kind, k) for k in keys(kind)}


def read_snapshot(path: str | os.PathLike) -> tuple[str | None, dict | None]:
    """``(kind, snapshot)`` of a file; ``(None, None)`` for containers this module leaves alone."""
    f, kind = open_file(path)
    return (kind, snapshot_of(f, kind)) if kind else (None, None)


def apply_snapshot(path: str | os.PathLike, kind: str, snapshot: dict) -> None:
    """Set the fields of ``snapshot`` (None deletes) in ``path`` in place and save.

    The caller works on a copy (:func:`genrescope.library.safe_write.rewrite`); ID3 tags keep
    their version (2.3 stays 2.3).
    """
    import mutagen

    f, found = open_file(path)
    if found != kind:
        raise TagError(f"{path}: expected {kind} tags, found {found or 'an unsupported container'}")
    for key, values in snapshot.items():
        _set(f, kind, key, values)
    try:
        if kind == "id3":
            version = f.tags.version[1] if f.tags is not None and f.tags.version[1] in (3, 4) else 4
            f.save(v2_version=version)
        else:
            f.save()
    except (mutagen.MutagenError, OSError) as e:
        raise TagError(f"{path}: cannot write its tags ({e})") from e


def format_scores(scores: list[tuple[str, float]], model: str) -> str:
    """``rock:0.62;pop:0.21;model=NAME``: the machine-readable field."""
    parts = [f"{label}:{prob:.2f}" for label, prob in scores]
    return ";".join(parts + [f"model={model}"])


def parse_scores(text: str) -> tuple[list[tuple[str, float]], str | None]:
    """Inverse of :func:`format_scores`: ``(scores, model)``; unknown parts are ignored."""
    scores, model = [], None
    for part in text.split(";"):
        if part.startswith("model="):
            model = part[len("model="):]
        elif ":" in part:
            label, _, prob = part.rpartition(":")
            try:
                scores.append((label, float(prob)))
            except ValueError:
                continue
    return scores, model


def owns(genres: list[str] | None, scores_text: str | None) -> bool:
    """True when ``genres`` are what a genrescope run wrote (all among its stored scores)."""
    if not genres or not scores_text:
        return False
    return set(genres) <= {label for label, _ in parse_scores(scores_text)[0]}


def planned_snapshot(kind: str, current: dict, genres: list[str], scores_text: str, *,
                     overwrite: bool) -> tuple[dict, bool]:
    """The snapshot to write, and whether an existing genre was kept.

    A genre counts as the user's own unless it equals what a previous genrescope run
    wrote (the labels of the current scores field); the user's own is kept without
    ``overwrite``. The scores field is always ours to replace.
    """
    gkey, skey = genre_key(kind), score_key(kind)
    plan = dict(current)
    plan[skey] = [scores_text]
    existing = current.get(gkey)
    ours = owns(existing, current[skey][0] if current.get(skey) else None)
    kept = bool(existing) and not ours and not overwrite
    if genres and not kept:
        plan[gkey] = list(genres)
        if kind == "mp4":
            plan["gnre"] = None  # an old numeric genre would shadow ©gen in some players
    return plan, kept and bool(genres)
