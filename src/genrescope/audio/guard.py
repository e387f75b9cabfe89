"""The decode policy shared by every path (training, cache, ``info``, predict, serve).

* Non-finite samples (NaN, infinity) are an error about the file: no model gets them.
* A truncated or partly damaged file is used as far as it decodes, with a warning; it
  fails only when less than :data:`MIN_SALVAGE_S` seconds decode.
* Silent input (peak under -80 dBFS) decodes, with a warning.

Warnings go to a :class:`DecodeNotes`: a list the caller reads (the Predictor puts it into
the prediction's ``warnings``), or Python's :mod:`warnings` when nobody collects them.
libmpg123 prints its complaints straight to file descriptor 2; :func:`quiet_stderr` catches
them around each libsndfile call and turns them into the file's warnings.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from genrescope.errors import CorruptAudioError, DamagedAudioWarning, SilentAudioWarning

log = logging.getLogger(__name__)

#: Peak amplitude under which a whole file counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4

#: Largest sample magnitude taken as audio (60 dB over full scale); beyond it, float data is damaged.
MAX_SAMPLE = 1000.0

#: Least audio (seconds) a damaged or truncated file must yield to be used at all.
MIN_SALVAGE_S = 0.5


class DecodeNotes:
    """One-line warnings about one file, each given once.

    Parameters
    ----------
    path : path-like
        The file the warnings are about (each message starts with it).
    sink : list of str, optional
        Where the messages go. None: each is issued with :func:`warnings.warn` instead.
    """

    def __init__(self, path: str | os.PathLike, sink: list[str] | None = None):
        self.path, self.sink = str(path), sink
        self._seen: set[str] = set()

    def warn(self, message: str, category: type[Warning] = DamagedAudioWarning) -> None:
        text = f"{self.path}: {message}"
        if text in self._seen:
            return
        self._seen.add(text)
        if self.sink is None:
            warnings.warn(text, category, stacklevel=4)
        else:
            self.sink.append(text)


def check_finite(native: Iterator[tuple[np.ndarray, int]], path: Path) -> Iterator[tuple[np.ndarray, int]]:
    """Pass ``(block, sr)`` pairs through; raise :class:`CorruptAudioError` at the first NaN or
    infinity, or at a sample beyond :data:`MAX_SAMPLE` (damaged float data: its power overflows float32)."""
    got = 0
    for block, sr in native:
        # min and max propagate NaN and infinity: a finiteness check without a temporary
        lo, hi = (float(block.min()), float(block.max())) if block.size else (0.0, 0.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            bad = int(np.flatnonzero(~np.isfinite(block.reshape(len(block), -1)).all(axis=1))[0])
            raise CorruptAudioError(path, f"decoded samples contain NaN or infinity (first at {(got + bad) / sr:.2f} s)")
        if max(-lo, hi) > MAX_SAMPLE:
            bad = int(np.flatnonzero((np.abs(block.reshape(len(block), -1)) > MAX_SAMPLE).any(axis=1))[0])
            raise CorruptAudioError(path, f"decoded samples are far outside [-1, 1] (peak {max(-lo, hi):.3g}, first at "
                                          f"{(got + bad) / sr:.2f} s): damaged float data?")
        got += len(block)
        yield block, sr


def warn_if_silent(blocks: Iterator[np.ndarray], notes: DecodeNotes) -> Iterator[np.ndarray]:
    """Pass blocks through; once they end, warn when their peak is under :data:`SILENCE_PEAK`."""
    peak, got = 0.0, 0
    for block in blocks:
        if block.size:
            peak = max(peak, -float(block.min()), float(block.max()))
        got += len(block)
        yield block
    if got and peak < SILENCE_PEAK:
        notes.warn("audio is silent (peak below -80 dBFS); genre predictions are meaningless", SilentAudioWarning)


# ---------------------------------------------------------------- libmpg123's stderr
_stderr_lock = threading.Lock()

#: What libmpg123 prints, and what genrescope says instead.
_MPG123 = (
    (re.compile(r"Xing stream size off"), "the MP3 header's stream size does not match the file (cut short?)"),
    (re.compile(r"Illegal Audio-MPEG-Header|Trying to resync|Skipped \d+ bytes|error:|big_values|part2_3_length"
                r"|Giving up|dequantization failed|Bad ID3|Cannot read next header"),
     "damaged MPEG frames were skipped"),
)
_MPG123_LINE = re.compile(r"^(Warning: |Note: |\[src/libmpg123|\[.*mpg123|Error: |error: |Skipped |Giving up)")


@contextmanager
def quiet_stderr(notes: DecodeNotes | None):
    """Catch what C code writes to file descriptor 2 meanwhile; libmpg123's lines become ``notes``.

    Other lines (another thread's log output, say) are written to the real stderr afterwards.
    The body must not yield: descriptor 2 is the process's, so the body holds a lock.
    """
    with _stderr_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no descriptor 2 (embedded, closed)
            yield
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                _route(tmp.read().decode("utf-8", "replace"), notes)


def _route(text: str, notes: DecodeNotes | None) -> None:
    other = []
    for line in text.splitlines():
        if not _MPG123_LINE.match(line.strip()):
            other.append(line)
            continue
        log.debug("libmpg123: %s", line)
        said = next((msg for pat, msg in _MPG123 if pat.search(line)), None)
        if notes is not None and said is not None:
            notes.warn(said)
    if other:
        try:
            os.write(2, ("\n".join(other) + "\n").encode())
        except OSError:
            pass
