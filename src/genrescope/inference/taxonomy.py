"""Which of a tagger's labels are genres.

The pretrained taggers were trained on listeners' tags (Million Song Dataset, Last.fm)
and MagnaTagATune annotations. Those tag sets mix genres with moods ("happy", "sad"),
decades ("80s"), instruments ("guitar", "piano") and voices ("female vocalists").
genrescope reports genre tags as genres and everything else under ``--tags``. The
probabilities are the tagger's own sigmoid outputs: independent per tag, so they do not
sum to one, and a song can be both "rock" and "indie" with high probability.

Classifiers trained by genrescope (GTZAN-10 and the like) have only genre labels; all
their labels are genres and their probabilities sum to one.
"""
from __future__ import annotations

import numpy as np

#: Genre tags of the MSD (Last.fm) tag set used by musicnn's MSD models.
MSD_GENRES = (
    "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
    "chillout", "classic rock", "soul", "indie rock", "electronica", "folk", "punk", "blues", "hard rock",
    "ambient", "experimental", "Hip-Hop", "country", "easy listening", "funk", "electro", "heavy metal",
    "Progressive rock", "rnb", "indie pop", "House",
)

#: Genre tags of the MagnaTagATune tag set used by musicnn's MTT models.
MTT_GENRES = (
    "classical", "techno", "electronic", "rock", "ambient", "indian", "opera", "pop", "new age", "dance",
    "country", "metal", "choral",
)
# MTT's "classic" is left out on purpose: it is an ambiguous tag (classic rock? classical?)
# that annotators used for both.

KNOWN_GENRES = frozenset(MSD_GENRES) | frozenset(MTT_GENRES)


def genre_labels_of(labels: list[str], multi_label: bool) -> list[str]:
    """The labels a model reports as genres: all of them for a classifier, the genre tags
    of a tagger."""
    if not multi_label:
        return list(labels)
    return [lab for lab in labels if lab in KNOWN_GENRES]


def split_genres_and_tags(labels: list[str], track_probs: np.ndarray, genre_labels: list[str]
                          ) -> tuple[list[tuple[str, float]], list[tuple[str, float]] | None]:
    """Rank the track probabilities into (genres, other tags), each highest first.

    ``other tags`` is None when every label is a genre.
    """
    pairs = sorted(zip(labels, (float(p) for p in track_probs)), key=lambda lp: -lp[1])
    gset = set(genre_labels)
    genres = [(lab, p) for lab, p in pairs if lab in gset]
    tags = [(lab, p) for lab, p in pairs if lab not in gset]
    return genres, (tags if tags else None)
