"""`genrescope learn` labels and taxonomy: genres read from every container and spelling,
merged spellings, aliases, rare labels, and the groups the folds keep apart."""
from __future__ import annotations

from pathlib import Path

import pytest

from genrescope.errors import GenrescopeError
from genrescope.learn.labels import Track, read_label_csv, read_track, read_tracks, split_genres
from genrescope.learn.user_taxonomy import build_taxonomy, label_key, read_aliases
from helpers.learn_library import ALIASES, write_audio_file, write_genre_tags
from genrescope.testing import synth_music

pytest.importorskip("mutagen")


@pytest.mark.parametrize("values, expected", [
    (["Rock; Pop"], ["Rock", "Pop"]), (["Rock/Pop"], ["Rock", "Pop"]), (["Rock | Pop"], ["Rock", "Pop"]),
    (["Rock, Pop"], ["Rock", "Pop"]), (["Rock", "Pop"], ["Rock", "Pop"]), (["(17)"], ["Rock"]), (["17"], ["Rock"]),
    (["(17)Hard Rock"], ["Hard Rock"]), (["(0)"], ["Blues"]), (["R&B"], ["R&B"]), (["Drum & Bass"], ["Drum & Bass"]),
    (["  "], []), (["(RX)"], []), (["(999)"], []),
])
def test_split_genres(values, expected):
    assert split_genres(values) == expected


@pytest.mark.parametrize("fmt, values, expected", [
    ("mp3", ["Rock; Pop"], ["Rock", "Pop"]), ("mp3", ["(17)"], ["Rock"]), ("mp3", ["Jazz", "Funk"], ["Jazz", "Funk"]),
    ("wav", ["13"], ["Pop"]), ("flac", ["Drum & Bass", "R&B"], ["Drum & Bass", "R&B"]), ("ogg", ["Rock/Pop"], ["Rock", "Pop"]),
    ("opus", ["hip hop"], ["hip hop"]), ("m4a", ["Bossa Nova"], ["Bossa Nova"]), ("mp3", None, []),
])
def test_genres_read_from_every_container(tmp_path, fmt, values, expected):
    if fmt == "m4a":
        pytest.importorskip("av")
    sr = 24000 if fmt == "opus" else 22050
    path = tmp_path / f"a.{fmt}"
    write_audio_file(path, fmt, synth_music(1.0, sr), sr)
    write_genre_tags(path, fmt, values, "Some Artist" if values else None)
    t = read_track(path)
    assert t.genres == expected
    assert t.group == ("artist:some artist" if values else f"folder:{tmp_path}")


def test_groups_fall_back_to_album_then_folder():
    assert Track("/m/x/a.mp3", artist=" The Band ", album="Live").group == "artist:the band"
    assert Track("/m/x/a.mp3", album="Live").group == "album:live"
    assert Track("/m/x/a.mp3").group == "folder:/m/x"


def test_spellings_merge_into_the_commonest():
    assert len({label_key(s) for s in ("Hip Hop", "hip-hop", "HIPHOP", "Hip_Hop")}) == 1
    assert label_key("Drum & Bass") == label_key("drum and bass") != label_key("R&B")
    tax = build_taxonomy([["hip hop"], ["Hip-Hop"], ["Hip-Hop"], ["HIPHOP"], ["Rock"], ["rock"], ["ROCK"]])
    assert tax.labels == ["Hip-Hop", "Rock"]  # most tracks first; a tie of spellings: the capitalised one
    assert tax.counts["Hip-Hop"] == 4 and set(tax.spellings["Hip-Hop"]) == {"hip hop", "Hip-Hop", "HIPHOP"}


def test_aliases_map_and_drop(tmp_path):
    f = tmp_path / "aliases.txt"
    f.write_text(ALIASES + "Deep House = House\n")
    aliases = read_aliases(f)
    genres = [["Rap"], ["Hip-Hop"], ["hip hop"], ["Xmas"], ["Xmas", "Rock"], ["Deep House"], ["House"], ["house"]]
    tax = build_taxonomy(genres, aliases=aliases)
    assert tax.counts == {"Hip-Hop": 3, "House": 3}
    assert tax.dropped == {"Xmas": 2}
    assert tax.label_of(["Rap"]) == "Hip-Hop" and tax.label_of(["Xmas"]) is None
    assert tax.rare == {"Rock": 1}  # "Xmas; Rock": Xmas dropped, Rock kept but rare


def test_bad_alias_line_names_the_file_and_line(tmp_path):
    f = tmp_path / "aliases.txt"
    f.write_text("Rap = Hip-Hop\nthis has no equals sign\n")
    with pytest.raises(GenrescopeError, match=r"aliases.txt: line 2"):
        read_aliases(f)


def test_rare_labels_are_listed_and_left_out():
    tax = build_taxonomy([["A"]] * 3 + [["B"]] * 2, min_tracks=3)
    assert tax.labels == ["A"] and tax.rare == {"B": 2}
    assert tax.label_of(["B"]) is None
    # a rare first genre gives way to the next kept one
    tax = build_taxonomy([["A"]] * 3 + [["B", "A"]], min_tracks=3)
    assert tax.counts == {"A": 4} and tax.rare == {"B": 1}


def test_labels_from_folders_and_csv(tmp_path):
    files = []
    for rel in ("lib/Jazz/a.wav", "lib/Jazz/b.wav", "lib/Samba/c.wav", "lib/loose.wav"):
        p = tmp_path / rel
        write_audio_file(p, "wav", synth_music(0.5), 22050)
        files.append(str(p))
    tracks, problems = read_tracks(files, "folders", roots=[str(tmp_path / "lib")])
    assert [t.genres for t in tracks] == [["Jazz"], ["Jazz"], ["Samba"], []] and not problems
    csv = tmp_path / "labels.csv"
    csv.write_text("path,genre\nlib/Jazz/a.wav,Bossa Nova\n" + f"{files[2]},Samba; Choro\n")
    tracks, _ = read_tracks(files, str(csv))
    assert [t.genres for t in tracks] == [["Bossa Nova"], [], ["Samba", "Choro"], []]


def test_bad_label_csv_is_a_clear_error(tmp_path):
    with pytest.raises(GenrescopeError, match="no such file"):
        read_label_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("only-one-column\n")
    with pytest.raises(GenrescopeError, match=r"bad.csv: line 1"):
        read_label_csv(bad)


def test_untaggable_file_counts_as_untagged(tmp_path):
    p = tmp_path / "junk.mp3"
    p.write_bytes(b"not audio at all" * 10)
    tracks, problems = read_tracks([str(p)])
    assert tracks[0].genres == []
    assert all(str(p) in m for m in problems)
