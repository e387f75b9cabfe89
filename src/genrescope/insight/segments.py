"""Segments: a genre timeline turned into a few labelled stretches (``--segments``).

For DJ mixes, radio recordings and medleys: "0:00-1:12 rock, 1:12-2:40 electronic". The
timeline is decoded as a hidden Markov model whose hidden state is the genre playing, by
the Viterbi algorithm:

* emission score of genre g in window t: ``log p_t(g)``, the window's probability of g
  renormalised over the genres considered (a tagger's genre tags are independent sigmoids;
  renormalising makes them compete like classes);
* a transition to another genre costs ``switch_cost`` nats, staying costs nothing.

The best path maximises the total log-probability minus ``switch_cost`` per change: a change
happens only where the evidence of the windows after it outweighs the cost, so one odd window
never splits a segment, while a real change of style over a few windows does. Unlike a moving
average this does not blur the boundary: it lands between two windows, where the evidence turns.
Only the ``max_genres`` genres with the highest track probability are candidates, so a long mix
is not explained by rare tags.
"""
from __future__ import annotations

import itertools

import numpy as np

from genrescope.errors import GenrescopeError

#: Nats a change of genre costs (about the log-odds of three windows that prefer the new genre
#: 2:1; tests/test_insight_segments.py checks boundaries of real excerpts with it).
SWITCH_COST = 4.0
MAX_GENRES = 8


def viterbi(log_emit: np.ndarray, switch_cost: float) -> np.ndarray:
    """The state path maximising ``sum_t log_emit[t, s_t] - switch_cost * #changes``.

    Parameters
    ----------
    log_emit : np.ndarray
        (T, S) emission log-scores.
    switch_cost : float
        Penalty (>= 0) of each change of state.

    Returns
    -------
    np.ndarray
        (T,) int state index per step.
    """
    if log_emit.ndim != 2 or not len(log_emit):
        raise GenrescopeError(f"viterbi: expected (T >= 1, S) scores, got {log_emit.shape}")
    if switch_cost < 0:
        raise GenrescopeError(f"switch cost must be >= 0, got {switch_cost}")
    T, S = log_emit.shape
    score = log_emit[0].astype(np.float64).copy()
    back = np.zeros((T, S), np.int64)
    for t in range(1, T):
        best = int(np.argmax(score))
        switch = score[best] - switch_cost
        stay = score >= switch  # ties keep the state: no change without a gain
        back[t] = np.where(stay, np.arange(S), best)
        score = np.where(stay, score, switch) + log_emit[t]
    path = np.empty(T, np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def segment_timeline(timeline, genres: list[tuple[str, float]] | None = None, *, switch_cost: float = SWITCH_COST,
                     max_genres: int = MAX_GENRES, duration_s: float | None = None) -> list[dict]:
    """Labelled stretches of a :class:`~genrescope.inference.predict.Timeline`.

    Parameters
    ----------
    timeline : Timeline
        Window probabilities over time.
    genres : list of (label, probability), optional
        The track's genre ranking (``Prediction.genres``); candidates are its first
        ``max_genres``. Default: every label, ranked by the timeline's mean.
    duration_s : float, optional
        The audio's end (seconds): the last segment ends there, not where the last window's
        padded frames end.

    Returns
    -------
    list of dict
        ``{"start_s", "end_s", "label", "probability"}`` in time order, ``probability`` being the
        label's mean probability over the segment's windows. Boundaries lie halfway between the
        centres of the last window of one segment and the first of the next.
    """
    probs = np.asarray(timeline.probs, np.float64)
    if genres is None:
        mean = probs.mean(axis=0)
        genres = sorted(zip(timeline.labels, mean), key=lambda g: -g[1])
    cand = [g for g, _ in genres[:max_genres]]
    if not cand:
        raise GenrescopeError("segments: the model reports no genres")
    idx = [timeline.labels.index(g) for g in cand]
    p = np.clip(probs[:, idx], 1e-9, None)
    path = viterbi(np.log(p / p.sum(axis=1, keepdims=True)), switch_cost)
    centres = (np.asarray(timeline.start_s, np.float64) + np.asarray(timeline.end_s, np.float64)) / 2
    cuts = [0] + [t for t in range(1, len(path)) if path[t] != path[t - 1]] + [len(path)]
    out = []
    for a, b in itertools.pairwise(cuts):
        start = float(timeline.start_s[0]) if a == 0 else (centres[a - 1] + centres[a]) / 2
        end = float(timeline.end_s[-1]) if b == len(path) else (centres[b - 1] + centres[b]) / 2
        if duration_s is not None:
            end = min(end, float(duration_s))
        out.append({"start_s": round(float(start), 3), "end_s": round(float(end), 3), "label": cand[path[a]],
                    "probability": round(float(probs[a:b, idx[path[a]]].mean()), 4)})
    return out


def fmt_time(s: float) -> str:
    """Seconds as m:ss."""
    s = max(0.0, float(s))
    return f"{int(s // 60)}:{int(s % 60):02d}"


def format_segments(segments: list[dict]) -> str:
    """``0:00-1:12 rock, 1:12-2:40 electronic``."""
    return ", ".join(f"{fmt_time(s['start_s'])}-{fmt_time(s['end_s'])} {s['label']}" for s in segments)
