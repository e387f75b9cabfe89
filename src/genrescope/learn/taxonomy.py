"""The taxonomy a library teaches: spellings merged, aliases applied, rare labels left out.

* Spellings that differ only in case, spaces, hyphens, underscores and ``&``/``and`` are one
  label (``Hip Hop``, ``hip-hop``, ``HIPHOP``; ``Drum & Bass``, ``drum and bass``); it is
  shown in its commonest spelling.
* An alias file maps labels onto others or drops them, one rule a line::

      # comments and blank lines are ignored
      Rap = Hip-Hop
      Deep House = House
      Xmas =            # nothing after "=": files with only this genre are left untagged

* A label with fewer than ``min_tracks`` tracks is listed as rare and left out.

A track's label is its first genre (in tag order) that survives all three; a track with
none is *unlabelled*: not training data, but a file to tag later.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from genrescope.errors import GenrescopeError

#: Default of ``--min-tracks``.
MIN_TRACKS = 3


def label_key(name: str) -> str:
    """The spelling-free key of a label: ``"Hip-Hop"``, ``"hip hop"``, ``"HIPHOP"`` -> ``"hiphop"``.

    Case, spaces, hyphens and underscores are ignored, and ``&`` reads as ``and``.
    """
    s = name.casefold().replace("&", "and").replace("+", "and")
    return re.sub(r"[\s\-_.'’]+", "", s)


def read_aliases(path: str | os.PathLike) -> dict[str, str | None]:
    """``{key of a label: key of its target, or None to drop it}`` from an alias file.

    Raises
    ------
    GenrescopeError
        The file is missing or a line has no ``=``.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise GenrescopeError(f"{p}: cannot read the alias file ({e})") from e
    out: dict[str, str | None] = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise GenrescopeError(f"{p}: line {i}: expected 'Label = Other Label' (or 'Label =' to drop it), "
                                  f"got {line!r}")
        src, dst = (s.strip() for s in line.split("=", 1))
        if not label_key(src):
            raise GenrescopeError(f"{p}: line {i}: no label before '='")
        out[label_key(src)] = label_key(dst) or None
    return out


def alias_spellings(path: str | os.PathLike | None) -> dict[str, str]:
    """``{key: spelling}`` of every alias target, to show a target no file spells."""
    if path is None:
        return {}
    out = {}
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        line = line.split("#", 1)[0]
        if "=" in line and line.split("=", 1)[1].strip():
            dst = line.split("=", 1)[1].strip()
            out[label_key(dst)] = dst
    return out


@dataclass
class Taxonomy:
    """The labels learnt from a library and how its spellings map onto them.

    Attributes
    ----------
    labels : list of str
        The kept labels in display spelling, most tracks first.
    counts : dict
        Tracks per kept label.
    rare : dict
        Labels left out for too few tracks -> their track counts.
    dropped : dict
        Spellings the alias file drops -> how many files carry them.
    spellings : dict
        Display label -> every spelling merged into it, with counts.
    """

    labels: list[str]
    counts: dict[str, int]
    rare: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    spellings: dict[str, dict[str, int]] = field(default_factory=dict)
    aliases: dict[str, str | None] = field(default_factory=dict)
    _display: dict[str, str] = field(default_factory=dict, repr=False)

    def candidates(self, genres: list[str]) -> list[str]:
        """Keys of ``genres`` after the aliases, in order, dropped ones left out."""
        out = []
        for g in genres:
            k = _follow(label_key(g), self.aliases)
            if k and k not in out:
                out.append(k)
        return out

    def label_of(self, genres: list[str]) -> str | None:
        """The label a track with these genres learns from (None: unlabelled)."""
        kept = {label_key(lab): lab for lab in self.labels}
        for k in self.candidates(genres):
            if k in kept:
                return kept[k]
        return None


def _follow(key: str, aliases: dict[str, str | None]) -> str | None:
    seen = set()
    while key in aliases and key not in seen:  # chains (A = B, B = C); a loop stops where it closes
        seen.add(key)
        nxt = aliases[key]
        if nxt is None:
            return None
        key = nxt
    return key


def _spelling_rank(item: tuple[str, int]) -> tuple:
    """Commonest first; on a tie, a capitalised spelling ("Rock") before "rock" and "ROCK"."""
    s, n = item
    return n, not s.islower() and not s.isupper(), not s.islower(), s


def build_taxonomy(track_genres: list[list[str]], *, aliases: dict[str, str | None] | None = None,
                   min_tracks: int = MIN_TRACKS, alias_names: dict[str, str] | None = None) -> Taxonomy:
    """The taxonomy of a library whose tracks have these genres (one list per track).

    Parameters
    ----------
    track_genres : list of list of str
        Each track's genres in tag order (:attr:`genrescope.learn.labels.Track.genres`).
    aliases : dict, optional
        From :func:`read_aliases`.
    min_tracks : int
        Labels with fewer tracks are rare: listed, left out.
    alias_names : dict, optional
        Display spellings of alias targets (:func:`alias_spellings`).
    """
    if min_tracks < 1:
        raise GenrescopeError(f"--min-tracks must be at least 1, got {min_tracks}")
    tax = Taxonomy([], {}, aliases=dict(aliases or {}))
    spell: dict[str, Counter] = {}
    dropped: Counter = Counter()
    for genres in track_genres:
        for g in dict.fromkeys(genres):
            k = _follow(label_key(g), tax.aliases)
            if k is None:
                dropped[g] += 1
            elif k:
                spell.setdefault(k, Counter())[g] += 1
    # first pass: each track counts for its first genre; second: rare ones give way to the next
    first = Counter(c[0] for c in map(tax.candidates, track_genres) if c)
    kept = {k for k, n in first.items() if n >= min_tracks}
    final = Counter(next((k for k in tax.candidates(g) if k in kept), None) for g in track_genres)
    final.pop(None, None)
    names = dict(alias_names or {})
    for k, c in spell.items():
        direct = {s: n for s, n in c.items() if label_key(s) == k}  # spelled as itself, not via an alias
        if direct or k not in names:
            names[k] = max((direct or c).items(), key=_spelling_rank)[0]
    order = sorted(final, key=lambda k: (-final[k], names[k].casefold()))
    tax.labels = [names[k] for k in order]
    tax.counts = {names[k]: final[k] for k in order}
    tax.rare = {names[k]: n for k, n in sorted(first.items(), key=lambda kv: -kv[1]) if k not in kept}
    tax.dropped = dict(dropped.most_common())
    tax.spellings = {names[k]: dict(spell.get(k, {})) for k in order}
    return tax
