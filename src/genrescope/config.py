"""Frozen configuration objects: the single source of every number that defines an input.

A ``FeatureConfig`` is saved inside every checkpoint and ONNX export and read back by
training, evaluation, prediction and the web app, so that the features a model was
trained on are the features it is served with.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from genrescope.errors import GenrescopeError

LOG_KINDS = ("db", "log10_1p")


def pretrained_dir():
    """The folder of the models shipped inside the package (``genrescope/pretrained``)."""
    from pathlib import Path

    return Path(__file__).resolve().parent / "pretrained"



PAD_MODES = ("constant", "reflect")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that turns a waveform into a model's input.

    Parameters
    ----------
    sr : int
        Sample rate the audio is resampled to, in Hz.
    n_fft : int
        FFT size (and Hann window length) in samples.
    hop_length : int
        Hop between STFT frames in samples.
    n_mels : int
        Number of mel bands.
    fmin, fmax : float
        Mel band range in Hz; ``fmax=None`` means ``sr / 2``.
    mel_htk : bool
        HTK mel scale if True, Slaney's (librosa's default) if False.
    mel_norm : str or None
        ``"slaney"`` (area-normalised triangles, librosa's default) or None.
    power : float
        Exponent of the magnitude spectrogram fed to the mel filterbank (2 = power).
    center : bool
        Pad the signal by ``n_fft // 2`` on both sides so frame t is centred at ``t * hop``.
    pad_mode : str
        ``"constant"`` (zeros, librosa >= 0.9) or ``"reflect"`` (librosa < 0.9).
    log : str
        ``"db"``: ``10 log10(max(S, log_floor))``; ``"log10_1p"``: ``log10(1 + log_scale * S)``
        (musicnn's compression).
    log_floor : float
        Smallest power before the log in dB mode (librosa's ``amin``).
    log_scale : float
        Multiplier inside ``log10_1p``.
    top_db : float or None
        If set, dB values are clipped to ``max - top_db`` (per array), like librosa.
    n_mfcc : int
        Number of MFCC coefficients.
    mfcc_top_db : float or None
        ``top_db`` applied before the DCT for MFCCs (librosa's ``mfcc`` uses 80).
    window_s : float
        Length of one model window in seconds.
    window_hop_s : float
        Hop between model windows in seconds.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    mel_htk: bool = False
    mel_norm: str | None = "slaney"
    power: float = 2.0
    center: bool = True
    pad_mode: str = "constant"
    log: str = "db"
    log_floor: float = 1e-10
    log_scale: float = 10000.0
    top_db: float | None = None
    n_mfcc: int = 20
    mfcc_top_db: float | None = 80.0
    window_s: float = 3.0
    window_hop_s: float = 1.5

    def __post_init__(self) -> None:
        if self.sr <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise GenrescopeError(f"FeatureConfig: sr, n_fft, hop_length, n_mels must be > 0: {self}")
        if self.log not in LOG_KINDS:
            raise GenrescopeError(f"FeatureConfig: log must be one of {LOG_KINDS}, got {self.log!r}")
        if self.pad_mode not in PAD_MODES:
            raise GenrescopeError(f"FeatureConfig: pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.mel_norm not in (None, "slaney"):
            raise GenrescopeError(f"FeatureConfig: mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if self.window_s <= 0 or self.window_hop_s <= 0:
            raise GenrescopeError("FeatureConfig: window_s and window_hop_s must be > 0")
        top = self.sr / 2
        if not (0 <= self.fmin < self.mel_fmax <= top + 1e-9):
            raise GenrescopeError(f"FeatureConfig: need 0 <= fmin < fmax <= sr/2, got {self.fmin}, {self.fmax}")

    @property
    def mel_fmax(self) -> float:
        """``fmax`` with None resolved to the Nyquist frequency."""
        return float(self.sr) / 2 if self.fmax is None else float(self.fmax)

    @property
    def window_frames(self) -> int:
        """Number of spectrogram frames in one model window."""
        return int(round(self.window_s * self.sr / self.hop_length))

    @property
    def window_hop_frames(self) -> int:
        """Number of spectrogram frames between the starts of two model windows."""
        return max(1, int(round(self.window_hop_s * self.sr / self.hop_length)))

    @property
    def frame_rate(self) -> float:
        """Spectrogram frames per second."""
        return self.sr / self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureConfig":
        """A config read from a file (a checkpoint, an ONNX export): every field type- and bounds-checked."""
        if not isinstance(d, dict):
            raise GenrescopeError(f"FeatureConfig: expected a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise GenrescopeError(f"FeatureConfig: unknown fields {sorted(unknown)} (written by a newer genrescope?)")
        for name, value in d.items():
            _check_type(name, value)
        return cls(**d).validate()

    def validate(self) -> "FeatureConfig":
        """Raise GenrescopeError unless every number is within :data:`BOUNDS` (a model file is input
        too: ``n_fft=2**28`` would allocate 98 GiB); returns ``self``."""
        for name, (lo, hi) in BOUNDS.items():
            value = getattr(self, name)
            if value is not None and not (lo <= value <= hi):  # NaN fails both comparisons
                raise GenrescopeError(f"FeatureConfig: {name}={value!r} is outside [{lo:g}, {hi:g}]")
        if self.n_mfcc > self.n_mels:
            raise GenrescopeError(f"FeatureConfig: n_mfcc={self.n_mfcc} exceeds n_mels={self.n_mels}")
        if not 1 <= self.window_frames <= _MAX_WINDOW_FRAMES:
            raise GenrescopeError(f"FeatureConfig: a window of {self.window_frames} frames is outside "
                                  f"[1, {_MAX_WINDOW_FRAMES}]")
        return self

    def key(self) -> str:
        """A short stable hash of every field, for cache keys."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **changes: Any) -> "FeatureConfig":
        return dataclasses.replace(self, **changes)


#: Accepted range of each number a model file may set (:meth:`FeatureConfig.validate`).
BOUNDS: dict[str, tuple[float, float]] = {
    "sr": (1000, 192000), "n_fft": (16, 32768), "hop_length": (16, 32768), "n_mels": (1, 512),
    "fmin": (0.0, 96000.0), "fmax": (1.0, 96000.0), "power": (0.25, 4.0), "log_floor": (1e-30, 1.0),
    "log_scale": (1e-6, 1e9), "top_db": (1e-3, 400.0), "n_mfcc": (1, 512), "mfcc_top_db": (1e-3, 400.0),
    "window_s": (1e-3, 600.0), "window_hop_s": (1e-3, 600.0)}
_MAX_WINDOW_FRAMES = 65536
_INT_FIELDS = ("sr", "n_fft", "hop_length", "n_mels", "n_mfcc")
_BOOL_FIELDS = ("mel_htk", "center")
_STR_FIELDS = ("mel_norm", "pad_mode", "log")


def _check_type(name: str, value: Any) -> None:
    """JSON types of a config read from a file: ints, numbers, booleans, strings (or null) where due."""
    if name in _BOOL_FIELDS:
        ok = isinstance(value, bool)
    elif name in _STR_FIELDS:
        ok = isinstance(value, str) or (value is None and name == "mel_norm")
    elif name in _INT_FIELDS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            value is None and name in ("fmax", "top_db", "mfcc_top_db"))
    if not ok:
        raise GenrescopeError(f"FeatureConfig: {name}={value!r} has the wrong type")


#: The default front end for models trained by genrescope on 22050 Hz audio.
DEFAULT_FEATURES = FeatureConfig()

#: musicnn's input pipeline (Pons & Serra 2019; musicnn 0.1.0 configuration.py and
#: extractor.py with the librosa defaults it was trained and released with, librosa < 0.9:
#: centred frames, reflect padding, Slaney mels, power 2): 16 kHz, 512-point FFT, hop 256,
#: 96 mels, log10(1 + 10000 * mel power), patches of 187 frames (extractor.py's
#: librosa.time_to_frames(3 s) + 1 = 2.992 s; 3.0 s would round to 188) cut without
#: overlap. musicnn also rounds the mel power to float16 before the log, which this config
#: does not reproduce (up to 2.1e-4 difference in the log-mel, tools/convert_musicnn.py --verify).
MUSICNN_FEATURES = FeatureConfig(
    sr=16000, n_fft=512, hop_length=256, n_mels=96, fmin=0.0, fmax=None, mel_htk=False, mel_norm="slaney",
    power=2.0, center=True, pad_mode="reflect", log="log10_1p", log_scale=10000.0,
    window_s=187 * 256 / 16000, window_hop_s=187 * 256 / 16000,
)


__all__ = ["FeatureConfig", "DEFAULT_FEATURES", "MUSICNN_FEATURES"]
