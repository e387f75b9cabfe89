"""The feature cache and parallel extraction into it.

An entry is keyed by the file's content and by everything that defines the feature:

    <root>/<kind>-<cfg.key()>/<aa>/<blake2b of the file bytes>.npy

so renaming or moving a file reuses its entry, editing it re-extracts, and a change of
any :class:`~genrescope.config.FeatureConfig` field lands in another folder. Entries are
written to a temporary file in the same folder and renamed into place, so a killed run
leaves no half-written entry and the next run resumes by skipping what exists. The key
does not cover the decoders (libsndfile, soxr): after upgrading them, use a new cache.

:func:`extract_many` runs on the engines (:mod:`genrescope.engines`): local worker
processes or a Ray cluster. numpy and the decoders are imported inside functions, so that
a worker has limited BLAS to one thread before numpy is loaded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterable

from genrescope.config import DEFAULT_FEATURES, FeatureConfig
from genrescope.progress import Progress
from genrescope.errors import AudioNotFoundError, GenrescopeError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20
#: Temporary files older than this are leftovers of a killed run and are removed.
STALE_TEMP_S = 3600.0
#: CLI ``--set`` names of the feature kinds, and the column prefix of their summary rows.
SET_KINDS = {"log-mel": ("log_mel", "mel"), "mfcc": ("mfcc", "mfcc"), "stft": ("stft", "stft")}


def default_cache_root() -> Path:
    """``$GENRESCOPE_CACHE``, else ``~/.cache/genrescope/features`` (not created here)."""
    env = os.environ.get("GENRESCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genrescope" / "features"


def content_hash(path: str | os.PathLike) -> str:
    """blake2b (128 bit) hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    except FileNotFoundError as e:
        raise AudioNotFoundError(path, "file not found") from e
    except IsADirectoryError as e:
        raise AudioNotFoundError(path, "is a directory, not an audio file") from e
    except OSError as e:
        raise AudioNotFoundError(path, f"cannot be read ({e.strerror})") from e
    return h.hexdigest()


def _atomic_write(dest: Path, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``dest``, then rename it to ``dest``."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FeatureCache:
    """Features of audio files on disk, keyed by file content, config and feature kind.

    Parameters
    ----------
    root : path-like or None
        Cache root; None means :func:`default_cache_root`.
    cfg : FeatureConfig
        The feature configuration.
    kind : str
        ``"log_mel"``, ``"mfcc"`` or ``"stft"`` (see :func:`genrescope.features.spectrogram.compute`).
    """

    def __init__(self, root: str | os.PathLike | None = None, cfg: FeatureConfig = DEFAULT_FEATURES,
                 kind: str = "log_mel"):
        kind = kind.replace("-", "_")
        # "embed_<backbone>" folders hold derived arrays (genrescope.inference.backbone) stored, not computed, here
        if kind not in ("log_mel", "mfcc", "stft") and not kind.startswith("embed_"):
            raise GenrescopeError(f"FeatureCache: unknown feature kind {kind!r}")
        # absolute: the engines' workers (a Ray cluster's) may run in another working directory
        self.root = (Path(root).expanduser() if root is not None else default_cache_root()).absolute()
        self.cfg = cfg
        self.kind = kind
        self.dir = self.root / f"{kind}-{cfg.key()}"

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.dir)!r})"

    def entry(self, digest: str) -> Path:
        """Where the features of a file with content hash ``digest`` live."""
        return self.dir / digest[:2] / f"{digest}.npy"

    def path_for(self, path: str | os.PathLike) -> Path:
        """The cache file for ``path`` (hashes the file; the entry may not exist)."""
        return self.entry(content_hash(path))

    def has(self, path: str | os.PathLike) -> bool:
        return self.path_for(path).is_file()

    def get(self, path: str | os.PathLike) -> "np.ndarray":
        """Features of ``path``, shape (n_bins, n_frames) float32: read, or computed and stored.

        Raises
        ------
        GenrescopeError
            The file is missing or cannot be decoded.
        """
        return self.load_or_make(path, lambda: compute_file(path, self.cfg, self.kind)[0])

    def load(self, path: str | os.PathLike) -> "np.ndarray | None":
        """The stored entry of ``path``, or None when there is none or it cannot be read."""
        import numpy as np

        dest = self.path_for(path)
        if not dest.is_file():
            return None
        try:
            return np.load(dest, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None

    def load_or_make(self, path: str | os.PathLike, make) -> "np.ndarray":
        """The entry of ``path``: read, or ``make()`` computed and stored (a damaged entry is made again)."""
        import numpy as np

        dest = self.path_for(path)
        if dest.is_file():
            try:
                return np.load(dest, allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:  # damaged entry, e.g. after a power cut
                log.warning("%s: damaged cache entry %s (%s), recomputing", path, dest, e)
        value = make()
        self.store(dest, value)
        return value

    def store(self, dest: Path, feats: "np.ndarray") -> None:
        """Write one entry atomically (and the folder's config.json on first use)."""
        import numpy as np

        dest.parent.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "config.json"
        if not meta.exists():  # tells a human what the key in the folder name stands for
            text = json.dumps({"kind": self.kind, "feature_config": self.cfg.to_dict()}, indent=2)
            _atomic_write(meta, lambda f: f.write(text.encode()))
        _atomic_write(dest, lambda f: np.save(f, feats, allow_pickle=False))

    def remove_stale_temps(self, max_age_s: float = STALE_TEMP_S) -> int:
        """Delete temp files left by killed runs; returns how many were removed."""
        if not self.dir.is_dir():
            return 0
        now, n = time.time(), 0
        for tmp in self.dir.glob("*/.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
                    n += 1
            except FileNotFoundError:  # another run finished or removed it
                pass
        return n


def compute_file(path: str | os.PathLike, cfg: FeatureConfig, kind: str) -> tuple["np.ndarray", float]:
    """Decode ``path`` at ``cfg.sr`` and compute ``kind``; returns (features, seconds of audio)."""
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute

    y = load_audio(path, sr=cfg.sr)
    return compute(y, cfg, kind), len(y) / cfg.sr


# ---------------------------------------------------------------- parallel extraction
@dataclass
class ExtractReport:
    """What :func:`extract_many` did. ``failed`` and ``warnings`` hold (path, message);
    ``entries`` maps each path that has features now to its cache file."""

    done: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    entries: dict[str, Path] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0

    @property
    def speed(self) -> float:
        """Seconds of audio extracted per second of wall time (x real time)."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class ExtractTask:
    """The engines' task of :func:`extract_many`: ``(src, dest)`` -> :func:`_extract_one`'s tuple."""

    cache: FeatureCache
    isolate: ClassVar[bool] = True  # -j 1 too: every entry comes from a one-BLAS-thread worker

    def open(self, threads: int | None):
        return lambda src, dest: _extract_one(src, dest, self.cache)


def _extract_one(src: str, dest: Path, cache: FeatureCache) -> tuple[float, str | None, list[str]]:
    """Worker: compute one file into its cache entry. Returns (audio seconds, error, warnings)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            feats, seconds = compute_file(src, cache.cfg, cache.kind)
        cache.store(dest, feats)
    except GenrescopeError as e:
        return 0.0, str(e), []
    except Exception as e:  # a bug or an odd file must not end a long run; it is reported as failed
        log.exception("%s: unexpected error", src)
        return 0.0, f"{src}: unexpected error ({type(e).__name__}: {e})", []
    return seconds, None, [str(w.message) for w in caught]


def extract_many(paths: Iterable[str | os.PathLike], cache: FeatureCache, jobs: int = 0,
                 progress: bool = True, *, engine: str = "local", address: str | None = None) -> ExtractReport:
    """Fill ``cache`` with the features of ``paths`` using ``jobs`` workers.

    Files already cached (by content) are skipped; files that cannot be read are
    recorded in the report and the run goes on. ``engine`` and ``jobs`` as
    :func:`genrescope.engines.map_files` takes them (``jobs=0``: every core). Workers are
    spawned (even for ``jobs=1``: OpenBLAS's float32 matmul rounds differently with 1 and
    with N threads, and every entry should be computed the same way whatever ``jobs`` or
    the engine), so a script calling this needs the usual ``if __name__ == "__main__":``
    guard. On Ray the workers write the entries themselves: the cache folder must be at
    the same path on every node (a shared mount).
    """
    from genrescope.engines import map_files

    t0 = time.perf_counter()
    report = ExtractReport()
    todo: list[tuple[Path, Path]] = []
    twins: list[tuple[Path, Path]] = []  # same content as a file planned before them
    planned: set[Path] = set()
    for p in map(Path, paths):
        try:
            dest = cache.path_for(p)
        except GenrescopeError as e:
            report.failed.append((str(p), str(e)))
            continue
        if dest in planned:
            twins.append((p, dest))
        elif dest.is_file():
            report.cached += 1
            report.entries[str(p)] = dest
        else:
            planned.add(dest)
            todo.append((p, dest))
    cache.remove_stale_temps()
    bar = Progress(len(todo), progress)
    try:
        results = map_files([str(s) for s, _ in todo], ExtractTask(cache), engine=engine, jobs=jobs,
                            address=address, args=[(d,) for _, d in todo])
        for i, out, err in results:
            src = todo[i][0]
            seconds, err, warns = out if err is None else (0.0, err, [])
            if err is None:
                report.done += 1
                report.entries[str(src)] = todo[i][1]
                report.audio_s += seconds
                report.warnings.extend((str(src), w) for w in warns)
            else:
                report.failed.append((str(src), err))
            bar.step()
    finally:
        bar.close()
    for p, dest in twins:
        if dest.is_file():
            report.cached += 1
            report.entries[str(p)] = dest
        else:
            report.failed.append((str(p), f"{p}: same content as another file, which failed"))
    report.wall_s = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------- genrescope features
