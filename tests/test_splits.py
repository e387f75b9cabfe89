"""Splits: stratified, seeded, and never leaking a track or an artist across sides."""
from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from genrescope.datasets import Manifest, Track, apply_split_policy, check_no_leakage, find_leakage, split_tracks
from genrescope.datasets.splits import artist_key, split_manifest
from genrescope.errors import DatasetError

GENRES = ["blues", "classical", "jazz", "metal", "reggae"]


def artist_heavy_manifest(seed: int = 123) -> Manifest:
    """Tracks with uneven artist runs: one artist with 35 reggae tracks (GTZAN's Bob Marley),
    artists with 1-12 tracks, some spanning two genres, artist names in varying case and
    spacing, and some tracks with no artist at all."""
    rng = random.Random(seed)
    tracks = []
    n = 0

    def add(label, artist):
        nonlocal n
        tracks.append(Track(f"/data/{label}/{n:05d}.wav", label, f"t{n:05d}", artist))
        n += 1

    for i in range(35):
        add("reggae", "Bob Marley" if i % 3 else "  bob   MARLEY ")
    for a in range(40):
        label = GENRES[a % len(GENRES)]
        for _ in range(rng.choice([1, 1, 2, 3, 5, 8, 12])):
            add(label, f"artist {a}")
        if a % 7 == 0:  # crossover artist: also in the next genre
            for _ in range(rng.randint(1, 4)):
                add(GENRES[(a + 1) % len(GENRES)], f"Artist {a}")
    for label in GENRES:
        for _ in range(6):
            add(label, None)
    return Manifest(sorted(GENRES), tracks, layout="csv", root="synthetic")


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 42, 1234])
def test_artists_and_tracks_never_cross_splits(seed):
    m = artist_heavy_manifest()
    out = split_tracks(m.entries, seed=seed)
    assert [t.track_id for t in out] == [t.track_id for t in m.entries]  # same tracks, same order
    assert all(t.split in ("train", "valid", "test") for t in out)
    sides = defaultdict(set)
    for t in out:
        if t.artist is not None:
            sides[artist_key(t.artist)].add(t.split)
    assert sides["bob marley"] and len(sides["bob marley"]) == 1
    assert all(len(s) == 1 for s in sides.values()), {a: s for a, s in sides.items() if len(s) > 1}
    check_no_leakage(Manifest(m.labels, out))
    # stratified as far as the artist groups allow
    n = Counter(t.split for t in out)
    total = len(out)
    assert 0.55 < n["train"] / total < 0.85
    assert n["valid"] > 0 and n["test"] > 0
    for g in GENRES:
        assert any(t.split == "train" and t.label == g for t in out), g


def test_same_seed_same_split_other_seed_other_split():
    m = artist_heavy_manifest()
    a = [t.split for t in split_tracks(m.entries, seed=3)]
    assert a == [t.split for t in split_tracks(m.entries, seed=3)]
    others = [[t.split for t in split_tracks(m.entries, seed=s)] for s in range(4, 9)]
    assert any(o != a for o in others)


def test_track_level_split_is_stratified_per_class():
    tracks = [Track(f"/x/{g}{i}.wav", g, f"{g}.{i:05d}") for g in GENRES for i in range(100)]
    out = split_tracks(tracks, seed=5)
    c = Counter((t.label, t.split) for t in out)
    for g in GENRES:
        assert (c[(g, "train")], c[(g, "valid")], c[(g, "test")]) == (70, 15, 15)


def test_fractions_are_configurable_and_checked():
    tracks = [Track(f"/x/{i}.wav", GENRES[i % 2], str(i)) for i in range(40)]
    out = split_tracks(tracks, (0.5, 0.0, 0.5), seed=0)
    c = Counter(t.split for t in out)
    assert c["valid"] == 0 and c["train"] == 20 and c["test"] == 20
    for bad in [(0.7, 0.3), (0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)]:
        with pytest.raises(DatasetError, match="fractions"):
            split_tracks(tracks, bad)


def test_tiny_dataset_still_fills_every_split():
    tracks = [Track(f"/x/{i}.wav", "rock", str(i)) for i in range(3)]
    assert sorted(t.split for t in split_tracks(tracks, seed=0)) == ["test", "train", "valid"]


def test_duplicate_track_ids_and_files_stay_together():
    # two rows for one recording (same id), and the same file listed under two ids
    tracks = [Track(f"/x/{i}.wav", GENRES[i % 3], f"id{i}") for i in range(30)]
    tracks += [Track("/x/other.wav", "blues", "id3"), Track("/x/5.wav", GENRES[5 % 3], "alias-of-5")]
    for seed in range(5):
        out = split_tracks(tracks, seed=seed)
        assert out[3].split == out[30].split
        assert out[5].split == out[31].split


def test_check_no_leakage_catches_artist_track_and_file():
    base = [Track("/a/1.wav", "jazz", "1", "Miles Davis", "train"),
            Track("/a/2.wav", "jazz", "2", "miles  davis", "test"),
            Track("/a/3.wav", "rock", "3", None, "valid")]
    with pytest.raises(DatasetError, match="artist 'miles davis' is in train, test"):
        check_no_leakage(Manifest(["jazz", "rock"], base, root="m.csv"))
    dup_id = [Track("/a/1.wav", "jazz", "1", None, "train"), Track("/a/9.wav", "jazz", "1", None, "valid")]
    assert find_leakage(Manifest(["jazz"], dup_id)) == ["track '1' is in train, valid"]
    dup_file = [Track("/a/1.wav", "jazz", "1", None, "train"), Track("/a/../a/1.wav", "jazz", "x", None, "test")]
    assert len(find_leakage(Manifest(["jazz"], dup_file))) == 1
    # tracks without a split never count as leaking
    unsplit = [Track("/a/1.wav", "jazz", "1", "A", "train"), Track("/a/2.wav", "jazz", "2", "A", None)]
    check_no_leakage(Manifest(["jazz"], unsplit))


def test_artist_policy_needs_artists_and_stratified_does_not():
    m = Manifest(["rock"], [Track(f"/x/{i}.wav", "rock", str(i)) for i in range(10)], layout="folders",
                 root="/x")
    with pytest.raises(DatasetError, match="artist"):
        split_manifest(m, policy="artist")
    out = apply_split_policy(m, "stratified", seed=1)
    assert out.split_policy == "stratified" and all(t.split for t in out.entries)
    assert apply_split_policy(out, "none").splits() == [None]


def test_given_split_is_kept_and_mixed_split_column_is_an_error():
    given = [Track(f"/x/{i}.wav", "rock", str(i), split=("train", "test")[i % 2]) for i in range(6)]
    m = Manifest(["rock"], given, layout="csv", root="m.csv")
    assert [t.split for t in apply_split_policy(m, "auto").entries] == [t.split for t in given]
    mixed = m.with_entries([given[0], given[1].replace(split=None)])
    with pytest.raises(DatasetError, match="1 rows have a split and 1 do not"):
        apply_split_policy(mixed, "auto")
    with pytest.raises(DatasetError, match="unknown split policy"):
        apply_split_policy(m, "random")
    with pytest.raises(DatasetError, match="fma-official needs an FMA dataset"):
        apply_split_policy(m, "fma-official")
