"""Per-file feature tables: band summaries of log-mel / MFCC / STFT, or the GTZAN table's row,
computed on the engines (``genrescope features --format``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

from genrescope.config import FeatureConfig
from genrescope.errors import GenrescopeError
from genrescope.features.cache import SET_KINDS, compute_file


def table_columns(feature_set: str, cfg: FeatureConfig) -> list[str]:
    """Column names of ``genrescope features --set SET --format ...``.

    ``gtzan-table``: ``filename`` and the 57 columns of the GTZAN features table.
    ``log-mel`` / ``mfcc`` / ``stft``: ``filename, n_frames, duration_s`` and, for every
    band i, the mean and standard deviation over time of the feature
    (``mel{i}_mean, mel{i}_std``, ``mfcc{i}_...``, ``stft{i}_...``; dB for mel and stft).
    """
    if feature_set == "gtzan-table":
        return ["filename"] + [c for c in _gtzan_table().COLUMNS if c != "filename"]
    from genrescope.features.spectrogram import n_bins

    kind, prefix = SET_KINDS[feature_set]
    return ["filename", "n_frames", "duration_s"] + [
        f"{prefix}{i}_{stat}" for i in range(n_bins(cfg, kind)) for stat in ("mean", "std")]


def table_row(path: str | os.PathLike, feature_set: str, cfg: FeatureConfig) -> dict:
    """The output row of one file (see :func:`table_columns`); raises GenrescopeError."""
    import numpy as np

    name = Path(path).name
    if feature_set == "gtzan-table":
        mod = _gtzan_table()
        values = mod.extract_row(path)
        return {"filename": name, **{c: values[c] for c in mod.COLUMNS if c != "filename"}}
    kind, _ = SET_KINDS[feature_set]
    feats, seconds = compute_file(path, cfg, kind)  # (n_bins, n_frames)
    stats = np.stack([feats.mean(axis=1, dtype=np.float64), feats.std(axis=1, dtype=np.float64)], axis=1)
    row: dict = {"filename": name, "n_frames": int(feats.shape[1]), "duration_s": round(seconds, 4)}
    row.update(zip(table_columns(feature_set, cfg)[3:], (round(float(v), 4) for v in stats.ravel())))
    return row


def _gtzan_table():
    try:
        from genrescope.features import gtzan_table
    except ModuleNotFoundError as e:
        if e.name != "genrescope.features.gtzan_table":
            raise
        raise GenrescopeError("--set gtzan-table: this genrescope has no genrescope.features.gtzan_table module") from e
    return gtzan_table


@dataclass(frozen=True)
class TableTask:
    """The engines' task of ``--format``: a file -> its :func:`table_row`."""

    feature_set: str
    cfg: FeatureConfig
    isolate: ClassVar[bool] = False  # rows are rounded: -j 1 may run here, with every thread

    def open(self, threads: int | None):
        return lambda path: table_row(path, self.feature_set, self.cfg)


def rows_in_order(files: list[Path], feature_set: str, cfg: FeatureConfig, jobs: int, engine: str = "local",
                   address: str | None = None) -> Iterator[tuple[dict | None, str | None]]:
    """``(row, None)`` or ``(None, error naming the file)`` per file, in the order of ``files``."""
    from genrescope.engines import in_order, map_files

    paths = [str(f) for f in files]
    results = map_files(paths, TableTask(feature_set, cfg), engine=engine, jobs=jobs, address=address)
    for i, row, err in in_order(results, len(paths)):
        yield row, None if err is None else (err if paths[i] in err else f"{paths[i]}: {err}")


__all__ = ["TableTask", "rows_in_order", "table_columns", "table_row"]
