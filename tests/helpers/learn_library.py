"""Helpers of the `genrescope learn` tests: a generated library whose genres are written in
every container and spelling the label reader knows, with audio each genre sounds like.

Three genres sound different (chord root and tempo of :func:`genrescope.testing.synth_music`), so a
head on the taggers' embeddings can learn them from a few seconds a track.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrescope.testing import synth_music

#: genre -> (chord root Hz, tempo bpm) of its generated audio
SOUND = {"Hip-Hop": (98.0, 88.0), "Rock": (330.0, 150.0), "Drum & Bass": (880.0, 174.0),
         "Polka": (523.0, 120.0), "Xmas": (262.0, 100.0), None: (196.0, 110.0)}


@dataclass
class Item:
    """One file of the generated library: its name, container, the tag values written, the
    genre it should learn as (None: unlabelled) and its artist."""

    name: str
    fmt: str
    values: list | None  # genre tag values as written (None: no genre tag)
    sound: str | None
    artist: str | None
    expect: str | None


def _audio(sound: str | None, seed: int, seconds: float, sr: int) -> np.ndarray:
    f0, tempo = SOUND[sound]
    rng = np.random.default_rng(seed)
    return synth_music(seconds, sr, seed=seed, f0=f0 * rng.uniform(0.97, 1.03), tempo=tempo)


def write_audio_file(path: Path, fmt: str, y: np.ndarray, sr: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "m4a":
        from helpers.library import write_m4a

        write_m4a(path, y, sr)
        return
    kw = {"mp3": dict(format="MP3"), "ogg": dict(format="OGG", subtype="VORBIS"),
          "opus": dict(format="OGG", subtype="OPUS"), "flac": dict(format="FLAC"),
          "wav": dict(format="WAV", subtype="PCM_16")}[fmt]
    sf.write(str(path), y, sr, **kw)


def write_genre_tags(path: Path, fmt: str, values: list | None, artist: str | None) -> None:
    """Write genre values (strings, or ints for MP4 ``gnre``) and the artist in the file's own container."""
    import mutagen

    if fmt in ("mp3", "wav"):
        from mutagen.id3 import TCON, TPE1

        f = mutagen.File(str(path))
        if f.tags is None:
            f.add_tags()
        if values:
            f.tags.add(TCON(encoding=3, text=[str(v) for v in values]))
        if artist:
            f.tags.add(TPE1(encoding=3, text=[artist]))
        f.save()
        return
    f = mutagen.File(str(path))
    if f.tags is None:
        f.add_tags()
    if fmt == "m4a":
        if values:
            texts = [v for v in values if isinstance(v, str)]
            nums = [v for v in values if isinstance(v, int)]
            if texts:
                f.tags["©gen"] = texts
            if nums:
                f.tags["gnre"] = nums
        if artist:
            f.tags["©ART"] = [artist]
    else:
        if values:
            f.tags["genre"] = [str(v) for v in values]
        if artist:
            f.tags["artist"] = [artist]
    f.save()


def library_items() -> list[Item]:
    """The generated library: every spelling and container; 3 labels of 7-8 tracks, a rare one,
    a dropped one, untagged files."""
    hh = [("mp3", ["Hip-Hop"]), ("flac", ["hip hop"]), ("ogg", ["HIPHOP"]), ("opus", ["Rap"]),
          ("mp3", ["Hip-Hop"]), ("flac", ["Hip-Hop"]), ("wav", ["hip-hop"])]
    rock = [("mp3", ["(17)"]), ("mp3", ["17"]), ("m4a", ["ROCK"]), ("flac", ["Rock; Pop"]), ("ogg", ["Rock/Pop"]),
            ("m4a", ["Rock"]), ("mp3", ["Rock", "Pop"]), ("flac", ["rock"])]
    dnb = [("flac", ["Drum & Bass"]), ("ogg", ["drum and bass"]), ("mp3", ["Drum_and_Bass"]),
           ("flac", ["Drum & Bass"]), ("opus", ["DRUM & BASS"]), ("mp3", ["Drum & Bass"]), ("ogg", ["Drum & Bass"])]
    items = []
    for genre, rows in (("Hip-Hop", hh), ("Rock", rock), ("Drum & Bass", dnb)):
        for i, (fmt, values) in enumerate(rows):
            artist = f"{genre} artist {i % 3}"
            items.append(Item(f"{genre.replace(' ', '').replace('&', 'n')}_{i}.{fmt}", fmt, values, genre, artist,
                              genre))
    items.append(Item("polka_0.flac", "flac", ["Polka"], "Polka", "Polka band", None))  # rare: 1 track
    items.append(Item("xmas_0.mp3", "mp3", ["Xmas"], "Xmas", "Carols", None))  # dropped by the alias file
    items.append(Item("xmas_1.ogg", "ogg", ["Xmas"], "Xmas", "Carols", None))
    for i, fmt in enumerate(("mp3", "flac", "ogg")):
        items.append(Item(f"untagged_{i}.{fmt}", fmt, None, "Rock" if i == 0 else "Hip-Hop", None, None))
    return items


ALIASES = "# test aliases\nRap = Hip-Hop\nXmas =\nPop = Rock\n"


def make_learn_library(root: Path, seconds: float = 3.2) -> tuple[Path, list[Item]]:
    """Write the library under ``root/lib`` and the alias file ``root/aliases.txt``; (library, items)."""
    lib = root / "lib"
    items = library_items()
    for k, it in enumerate(items):
        sr = 24000 if it.fmt == "opus" else 22050
        path = lib / it.name
        write_audio_file(path, it.fmt, _audio(it.sound, k, seconds, sr), sr)
        write_genre_tags(path, it.fmt, it.values, it.artist)
    (root / "aliases.txt").write_text(ALIASES)
    return lib, items
