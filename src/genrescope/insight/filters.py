"""``genrescope filters``: what each convolutional filter of a model responds to.

For every filter of every ``Conv1d``/``Conv2d`` layer, the audio chunks of a dataset that
activate it most are found and written as short WAVs, with a PNG grid of their mel
spectrograms and an HTML index to listen and look.

The chunk of an activation is its receptive field along time. It is found by following the
time axis through the forward pass itself: a :class:`torch.overrides.TorchFunctionMode`
attaches to every tensor an affine map ``index t -> input frames [offset + t * stride,
offset + t * stride + size)`` and the axis that holds time, and updates it at every
convolution, pooling and padding (kernel, stride, padding, dilation along that axis), follows
the axis through transposes, permutes, squeezes and reshapes, and keeps it through
element-wise operations. Where tensors of different maps meet (a concatenation of branches with
different kernels, a residual sum) the map becomes their envelope, the widest field among the
channels; an operation that merges time away (a global pooling) ends it. Frames then map to
samples through the STFT (frame f is centred on sample ``f * hop_length`` and spans ``n_fft``).
tests/test_insight_filters.py checks the map against a network whose receptive fields are known
exactly.

Needs the ``train`` extra (torch; matplotlib for the PNGs).
"""
from __future__ import annotations

import heapq
import html
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrescope.errors import GenrescopeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimeMap:
    """Index ``t`` along ``axis`` covers input frames ``[offset + t * stride, offset + t * stride + size)``."""

    axis: int
    stride: int
    offset: int
    size: int

    def frames(self, t: int) -> tuple[int, int]:
        start = self.offset + t * self.stride
        return start, start + self.size


def _pair(v, i: int, n: int):
    """Element i of a kernel/stride/padding argument given as an int or an n-tuple."""
    if isinstance(v, int):
        return v
    v = tuple(v)
    return v[i] if len(v) == n else v[0]


def _through_window(m: TimeMap, x, func_name: str, args, kwargs, out) -> TimeMap | None:
    """The map after a convolution or pooling along m.axis (None if time is not a spatial axis)."""
    spatial = 1 if "1d" in func_name else 2
    k_axis = m.axis - (x.dim() - spatial)
    if k_axis < 0:
        return None
    names = (["weight", "bias", "stride", "padding", "dilation"] if "conv" in func_name
             else ["kernel_size", "stride", "padding", "dilation"] if "max" in func_name
             else ["kernel_size", "stride", "padding"])
    p = dict(zip(names, args[1:]))
    p.update(kwargs)
    if "conv" in func_name:
        k = p["weight"].shape[2 + k_axis]
        stride = _pair(p.get("stride", 1), k_axis, spatial)
    else:
        k = _pair(p["kernel_size"], k_axis, spatial)
        stride = _pair(p.get("stride") or p["kernel_size"], k_axis, spatial)
    dil = _pair(p.get("dilation", 1), k_axis, spatial)
    pad = p.get("padding", 0)
    span = dil * (k - 1) + 1
    if pad == "valid":
        left = 0
    elif pad == "same":
        left = (span - 1) // 2
    else:
        left = _pair(pad, k_axis, spatial)
    return TimeMap(m.axis, m.stride * stride, m.offset - left * m.stride, m.size + (span - 1) * m.stride)


def _merge(maps: list[TimeMap]) -> TimeMap | None:
    if not maps or any(m.stride != maps[0].stride or m.axis != maps[0].axis for m in maps):
        return None
    start = min(m.offset for m in maps)
    end = max(m.offset + m.size for m in maps)
    return TimeMap(maps[0].axis, maps[0].stride, start, end - start)


def _follow_axis(m: TimeMap, x, out, func_name: str, args) -> TimeMap | None:
    """The time axis of ``out`` for a shape-changing operation, or None when time is gone."""
    n = x.shape[m.axis]
    if func_name in ("transpose", "swapaxes"):
        a, b = (d % x.dim() for d in args[1:3])
        return TimeMap({a: b, b: a}.get(m.axis, m.axis), m.stride, m.offset, m.size)
    if func_name == "permute":
        dims = args[1] if isinstance(args[1], (tuple, list)) else args[1:]
        return TimeMap([d % x.dim() for d in dims].index(m.axis), m.stride, m.offset, m.size)
    if tuple(out.shape) == tuple(x.shape):
        return m
    hits = [i for i, s in enumerate(out.shape) if s == n]
    if len(hits) == 1:
        return TimeMap(hits[0], m.stride, m.offset, m.size)
    return None


def _make_mode():
    import torch
    from torch.overrides import TorchFunctionMode

    class TimeTracker(TorchFunctionMode):
        """Carries a TimeMap (tensor attribute ``_gs_time``) through every torch function."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = getattr(func, "__name__", "").lstrip("_")
            flat = [a for a in args if isinstance(a, torch.Tensor)]
            flat += [t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, torch.Tensor)]
            maps = [getattr(t, "_gs_time", None) for t in flat]
            first = next((t for t, mp in zip(flat, maps) if mp is not None), None)
            if first is None or not isinstance(out, torch.Tensor) or out.dim() == 0:
                return out
            mp = first._gs_time
            if name.startswith(("conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d")):
                new = _through_window(mp, first, name, args, kwargs, out)
            elif name == "pad":
                pads = args[1] if len(args) > 1 else kwargs["pad"]
                i = 2 * (first.dim() - 1 - mp.axis)
                left = pads[i] if i < len(pads) else 0
                new = TimeMap(mp.axis, mp.stride, mp.offset - left * mp.stride, mp.size)
            elif name in ("cat", "stack", "concatenate") or len([x for x in maps if x is not None]) > 1:
                new = _merge([x for x in maps if x is not None])
                if new is not None and out.dim() != first.dim():
                    new = _follow_axis(new, first, out, name, args)
            else:
                new = _follow_axis(mp, first, out, name, args)
            if new is not None and new.axis < out.dim():
                out._gs_time = new
            return out

    return TimeTracker


def conv_time_maps(model, x) -> dict[str, tuple[TimeMap | None, object]]:
    """Run ``model(x)`` once; for every Conv1d/Conv2d module: (its output's TimeMap, the output).

    ``x`` is (B, n_bins, T) with time on its last axis, mapped to itself (stride 1, size 1).
    """
    import torch

    convs = {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))}
    if not convs:
        raise GenrescopeError(f"filters: {type(model).__name__} has no convolutional layer")
    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=n: seen.__setitem__(
        name, (getattr(out, "_gs_time", None), out.detach()))) for n, m in convs.items()]
    x = x.clone()
    x._gs_time = TimeMap(x.dim() - 1, 1, 0, 1)
    try:
        with torch.no_grad(), _make_mode()():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return {n: seen[n] for n in convs if n in seen}


def filter_activations(out, m: TimeMap):
    """(B, C, ..., T', ...) conv output -> (B, C, T') numpy: the max over every axis but time."""
    a = out.movedim(m.axis, -1)
    a = a.reshape(a.shape[0], a.shape[1], -1, a.shape[-1]).amax(dim=2)
    return a.numpy()


def inside_window(m: TimeMap, n: int, window_frames: int) -> np.ndarray:
    """(n,) bool: the positions whose receptive field lies inside the model window.

    A position whose field reaches past the window's edge sees the layer's zero padding, which
    looks like digital silence beside the music: a fake onset or pause at every window edge,
    where most filters would otherwise find their maximum. All positions when none lies inside.
    """
    fields = np.array([m.frames(t) for t in range(n)]).reshape(-1, 2)
    ok = (fields[:, 0] >= 0) & (fields[:, 1] <= window_frames)
    return ok if ok.any() else np.ones(n, bool)


def frames_to_samples(f0: int, f1: int, cfg, n_samples: int) -> tuple[int, int]:
    """Samples spanned by STFT frames [f0, f1) (centred frames: frame f is centred on f * hop)."""
    half = cfg.n_fft // 2 if cfg.center else 0
    start = f0 * cfg.hop_length - half + (0 if cfg.center else half)
    end = (f1 - 1) * cfg.hop_length + cfg.n_fft - half
    return max(0, start), min(n_samples, max(end, start + 1))


def load_torch_model(name: str):
    """(module in eval mode, FeatureConfig, labels) for a checkpoint or a shipped model with weights."""
    from genrescope.config import FeatureConfig
    from genrescope.inference.registry import resolve_model_path

    _, path = resolve_model_path(name, runtime="torch")
    if path.name == "weights.safetensors":
        from genrescope.models.musicnn import load_musicnn

        model, config = load_musicnn(path.parent)
        return model.eval(), FeatureConfig.from_dict(config["features"]), list(config["labels"])
    from genrescope.models.checkpoint import load_checkpoint

    model, info = load_checkpoint(path)
    fc = info["feature_config"]
    return model.eval(), fc if isinstance(fc, FeatureConfig) else FeatureConfig.from_dict(fc), list(info["labels"])


@dataclass
class Chunk:
    """One top-activating chunk of a filter."""

    value: float
    file: str
    start: int  # samples, at the model's sample rate
    end: int
    frames: tuple[int, int]  # the receptive field, in STFT frames of the file


#: A filter whose activation varies by less than this (relative) over the whole data is constant.
CONSTANT_TOL = 1e-6


def find_top_chunks(model, cfg, files: list[Path], *, kind: str = "log_mel", top: int = 1,
                    window_frames: int | None = None, batch: int = 4) -> dict[str, list[list[Chunk]]]:
    """For every conv layer, every filter's ``top`` chunks of ``files`` (highest activation first).

    The activation is the conv's output as its layer uses it (musicnn's front end flips the
    channels whose batch norm inverts them), at positions whose receptive field lies inside the
    model window (:func:`inside_window`). A filter whose output is the same for every input (its
    weights decayed to zero in training: most of musicnn-msd's first-layer filters) gets no
    chunk: an empty list, where a tie would have named an arbitrary chunk for every such filter.
    """
    import torch

    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows

    heaps: dict[str, list[list]] = {}
    ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # layer -> each filter's lowest and highest activation
    maps: dict[str, TimeMap] = {}
    lengths: list[int] = []
    for fi, path in enumerate(files):
        y = load_audio(path, sr=cfg.sr)
        lengths.append(len(y))
        windows, start_s, _ = slice_windows(compute(y, cfg, kind), cfg, win_frames=window_frames or cfg.window_frames)
        starts = np.round(start_s * cfg.frame_rate).astype(int)
        for i in range(0, len(windows), batch):
            for layer, (m, out) in conv_time_maps(model, torch.from_numpy(windows[i:i + batch])).items():
                if m is None:
                    continue
                maps[layer] = m
                acts = filter_activations(out, m)  # (b, C, T')
                inside = inside_window(m, acts.shape[2], windows.shape[2])
                acts = acts[:, :, inside]
                lo, hi = ranges.setdefault(layer, (np.full(acts.shape[1], np.inf), np.full(acts.shape[1], -np.inf)))
                np.minimum(lo, acts.min(axis=(0, 2)), out=lo)
                np.maximum(hi, acts.max(axis=(0, 2)), out=hi)
                hs = heaps.setdefault(layer, [[] for _ in range(acts.shape[1])])
                flat = acts.transpose(1, 0, 2).reshape(acts.shape[1], -1)  # (C, b * T')
                best = flat.argmax(axis=1)
                positions = np.flatnonzero(inside)
                for c, k in enumerate(best):
                    b, t = divmod(int(k), acts.shape[2])
                    t = int(positions[t])
                    item = (float(flat[c, k]), fi, int(starts[i + b]), t)
                    (heapq.heappush if len(hs[c]) < top else heapq.heappushpop)(hs[c], item)
    skipped = [n for n in heaps if n not in maps]
    if skipped:
        log.warning("filters: no time map for %s", ", ".join(skipped))
    return {layer: [_chunks(h, maps[layer], cfg, files, lengths, constant=bool(flat))
                    for h, flat in zip(hs, _constant(*ranges[layer]))] for layer, hs in heaps.items()}


def _constant(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(C,) bool: the filters whose activation never moved over the data (weights decayed to zero)."""
    return hi - lo <= CONSTANT_TOL * np.maximum(1.0, np.abs(hi))


def _chunks(heap: list, m: TimeMap, cfg, files: list[Path], lengths: list[int], *, constant: bool) -> list[Chunk]:
    """One filter's heap of ``(value, file index, window start frame, t)`` as Chunks, best first;
    none for a constant filter (no chunk is its own: every input gives the same value)."""
    if constant:
        return []
    chunks = []
    for value, fi, w0, t in sorted(heap, reverse=True):
        f0, f1 = m.frames(t)
        f0, f1 = max(0, w0 + f0), w0 + f1
        s0, s1 = frames_to_samples(f0, f1, cfg, lengths[fi])
        chunks.append(Chunk(value, str(files[fi]), s0, s1, (f0, f1)))
    return chunks


def write_report(results: dict[str, list[list[Chunk]]], out_dir: str | os.PathLike, cfg, maps_note: str = "") -> Path:
    """One WAV per filter (its best chunk), a PNG grid of their mel spectrograms per layer, index.html."""
    import soundfile as sf

    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import log_mel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    audio: dict[str, np.ndarray] = {}
    parts = [(f"<!doctype html><meta charset='utf-8'><title>genrescope filters</title><h1>Filters</h1>"
              f"<p>{html.escape(maps_note)}</p>")]
    for layer, filters in results.items():
        slug = layer.replace(".", "_") or "conv"
        (out / slug).mkdir(exist_ok=True)
        mels = []
        rows = []
        for c, chunks in enumerate(filters):
            if not chunks:
                mels.append(None)
                rows.append(f"<tr><td>{c}</td><td colspan='4'>constant output whatever the input (its weights are "
                            "zero): no chunk</td></tr>")
                continue
            ch = chunks[0]
            y = audio.setdefault(ch.file, load_audio(ch.file, sr=cfg.sr))
            seg = y[ch.start:ch.end]
            wav = f"{slug}/filter_{c:03d}.wav"
            sf.write(str(out / wav), seg, cfg.sr, subtype="PCM_16")
            mels.append(log_mel(seg, cfg) if len(seg) else None)
            rows.append(f"<tr><td>{c}</td><td>{ch.value:.3g}</td><td>{html.escape(Path(ch.file).name)}</td>"
                        f"<td>{ch.start / cfg.sr:.2f}-{ch.end / cfg.sr:.2f} s</td>"
                        f"<td><audio controls preload='none' src='{wav}'></audio></td></tr>")
        png = _grid_png(mels, out / f"{slug}.png", layer)
        parts.append(f"<h2>{html.escape(layer)} ({len(filters)} filters)</h2>"
                     + (f"<img src='{png.name}' style='max-width:100%'>" if png else "")
                     + "<table><tr><th>filter</th><th>activation</th><th>file</th><th>chunk</th><th>listen</th></tr>"
                     + "".join(rows) + "</table>")
    (out / "index.html").write_text("\n".join(parts))
    return out / "index.html"


def _grid_png(mels: list, path: Path, title: str, cols: int = 16) -> Path | None:
    """All filters' chunk spectrograms as one mosaic (filter i at row i // cols, column i % cols),
    each scaled to its own range and padded to the widest chunk."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.warning("filters: no matplotlib, so no spectrogram grid")
        return None
    real = [m for m in mels if m is not None and m.size]
    if not real:
        return None
    h, w = real[0].shape[0], max(m.shape[1] for m in real)
    cols = min(cols, len(mels))
    rows = -(-len(mels) // cols)
    mosaic = np.full((rows * (h + 2), cols * (w + 2)), np.nan, np.float32)
    for i, m in enumerate(mels):
        if m is None or not m.size:
            continue
        lo, hi = float(m.min()), float(m.max())
        r, c = divmod(i, cols)
        mosaic[r * (h + 2):r * (h + 2) + h, c * (w + 2):c * (w + 2) + m.shape[1]] = (m[::-1] - lo) / (hi - lo + 1e-9)
    fig = Figure(figsize=(min(16, cols * 1.0), min(60, rows * 0.8) + 0.5), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.01, 0.01, 0.98, 0.98 - 0.4 / fig.get_figheight()])
    ax.imshow(mosaic, origin="upper", aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(f"{title}: filter i at row i // {cols}, column i % {cols} (each mel chunk low band at the bottom, "
                 "scaled to its own range)", fontsize=8)
    fig.savefig(path, format="png")
    return path


__all__ = [
    "TimeMap",
    "conv_time_maps",
    "filter_activations",
    "find_top_chunks",
    "frames_to_samples",
    "load_torch_model",
    "write_report",
]
