"""A pretrained backbone (a shipped tagger as a feature extractor) and a head behind it.

A backbone is a shipped tagger whose ONNX export also returns ``embeddings`` (the
penultimate layer, one vector per window). At prediction time a head trained on those
embeddings (:mod:`genrescope.training.embed`) runs behind the backbone: the log-mel
windows go through the backbone's ONNX graph, then the head's.
"""
from __future__ import annotations

import numpy as np

from genrescope.errors import CheckpointError

EMBEDDINGS_OUTPUT = "embeddings"
TAGS_OUTPUT = "probabilities"


class Backbone:
    """Shipped taggers used as a feature extractor: (N, n_mels, T) windows -> (N, D) rows.

    ``name`` is a shipped tagger, or a shipped ensemble of taggers that read the same
    windows (``musicnn`` = ``musicnn-msd`` + ``musicnn-mtt``): then a row is the members'
    blocks side by side. ``blocks`` names the outputs that make up a row, per member:
    ``embeddings`` (the penultimate layer) and/or ``probabilities`` (the tags). Every call
    also keeps the members' tag probabilities, so a head can report them as tags
    (:func:`head_inference_model`). Its default engine is exact float32 ONNX Runtime: the rows
    that training and ``learn`` compute and cache stay the same on every machine; a head that
    predicts runs its backbone on the predictor's engine.
    """

    def __init__(self, name: str, threads: int | None = None, backend: str = "onnxruntime", precision: str = "auto",
                 blocks: tuple[str, ...] = (EMBEDDINGS_OUTPUT,)):
        from genrescope.inference.ensemble import LabelMerge, share_threads
        from genrescope.inference.onnx_model import OnnxModel
        from genrescope.inference.registry import ENSEMBLES, is_fused, pretrained_names, resolve_model_path

        if name not in pretrained_names():  # a head's metadata names it: never a path to open
            raise CheckpointError(f"backbone {str(name)[:80]!r} is not a shipped model; "
                                  f"shipped: {', '.join(pretrained_names())}")
        self.name, self.blocks = name, check_blocks(blocks)
        # an ensemble shipped as one graph gives the rows of embeddings-only blocks and the merged
        # tags in one call; other blocks are built member by member
        one_graph = name in ENSEMBLES and is_fused(name) and self.blocks == (EMBEDDINGS_OUTPUT,)
        self.members = [name] if one_graph else list(ENSEMBLES.get(name, (name,)))
        each, self._side_by_side = share_threads(threads, len(self.members))
        self.models = [OnnxModel(resolve_model_path(m)[1], threads=each, backend=backend, precision=precision)
                       for m in self.members]
        for m, model in zip(self.members, self.models):
            missing = [b for b in (EMBEDDINGS_OUTPUT, TAGS_OUTPUT) if b not in model.outputs]
            if missing:
                raise CheckpointError(f"{m}: its ONNX export has no '{missing[0]}' output, so it cannot serve as a "
                                      f"backbone")
            if (model.feature_config, model.window_frames) != (self.models[0].feature_config,
                                                                self.models[0].window_frames):
                raise CheckpointError(f"backbone {name}: {m} reads different windows from {self.members[0]}")
        self.model = self.models[0]
        self.feature_config = self.model.feature_config
        self.window_frames = self.model.window_frames
        self._tags = LabelMerge([m.labels for m in self.models])  # merged as the ensemble merges them
        self.tag_labels: list[str] = self._tags.labels

    @property
    def precision(self) -> str:
        return "bf16" if any(m.precision == "bf16" for m in self.models) else "fp32"

    def run_windows(self, windows: np.ndarray, batch_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(N, n_mels, T) log-mel windows -> rows (N, D) and merged tag probabilities (N, K)."""
        from genrescope.inference.ensemble import run_members

        rows, tags = [], []
        for i in range(0, len(windows), batch_size):
            outs = run_members([m.run for m in self.models], windows[i:i + batch_size], self._side_by_side)
            rows.append(np.concatenate([o[b] for o in outs for b in self.blocks], axis=1))
            tags.append(self._tags([o[TAGS_OUTPUT] for o in outs]))
        if not rows:
            return np.zeros((0, 0), np.float32), np.zeros((0, len(self.tag_labels)), np.float32)
        return np.concatenate(rows).astype(np.float32), np.concatenate(tags).astype(np.float32)

    @property
    def dim(self) -> int:
        x = np.zeros((1, self.model.n_bins, self.window_frames), np.float32)
        return int(self.embed_windows(x).shape[1])

    def embed_windows(self, windows: np.ndarray, batch_size: int = 1) -> np.ndarray:
        """(N, n_mels, T) log-mel windows -> (N, D) float32 rows (the ``blocks`` of every member)."""
        return self.run_windows(windows, batch_size)[0]

    def embed_features(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whole-song log-mel (n_mels, n_frames) -> window embeddings (N, D), start_s, end_s."""
        from genrescope.features.windows import slice_windows

        windows, start, end = slice_windows(feats, self.feature_config, win_frames=self.window_frames)
        return self.embed_windows(windows), start, end


def check_blocks(blocks, where: str = "") -> tuple[str, ...]:
    """``blocks`` as a tuple when it names backbone outputs a row can hold, else CheckpointError
    (``where`` starts the message: a head's metadata is untrusted input)."""
    if not blocks or any(b not in (EMBEDDINGS_OUTPUT, TAGS_OUTPUT) for b in blocks):
        raise CheckpointError(f"{where}backbone blocks must be {EMBEDDINGS_OUTPUT!r} and/or {TAGS_OUTPUT!r}, "
                              f"got {str(list(blocks))[:80]}")
    return tuple(blocks)


def pool_rows(rows: np.ndarray) -> np.ndarray:
    """(N, D) window rows -> (1, 2 D) float32: their mean, then their standard deviation."""
    r = np.asarray(rows, dtype=np.float64)
    return np.concatenate([r.mean(axis=0), r.std(axis=0)])[None].astype(np.float32)


def head_inference_model(name: str, head, backbone_name: str, *, blocks=(EMBEDDINGS_OUTPUT,), track_head=None,
                         **engine):
    """Compose a backbone and a trained head (an InferenceModel on table rows) into one model
    that reads log-mel windows like the backbone. ``blocks`` says which backbone outputs the
    head was trained on (its provenance); ``engine`` (threads, backend, precision) runs the
    backbone (:mod:`genrescope.inference.backends`).

    The composed model also reports the backbone's own tags (``tag_labels``): its windows
    give the head's probabilities first, then the taggers' tag probabilities of the same pass.

    ``track_head`` (an :class:`~genrescope.inference.onnx_model.OnnxModel` on pooled rows, see
    :func:`pool_rows`) gives the track answer of a head learnt on pooled features: then the
    windows also give their backbone rows, last, and the model's ``predict_track`` pools them.
    """
    from genrescope.inference.inference_model import InferenceModel

    backbone = Backbone(backbone_name, blocks=tuple(blocks), **engine)
    precision = "bf16" if "bf16" in (backbone.precision, head.precision) else "fp32"

    def run(x: np.ndarray) -> np.ndarray:
        rows, tags = backbone.run_windows(x)
        parts = [head.predict_windows(rows), tags] + ([rows] if track_head is not None else [])
        return np.concatenate(parts, axis=1)

    im = InferenceModel(name, head.labels, backbone.feature_config, "log_mel", backbone.window_frames,
                        head.multi_label, run, f"{backbone_name} + {head.source}", head.runtime,
                        backend=backbone.model.backend, precision=precision, tag_labels=list(backbone.tag_labels))
    if track_head is not None:
        im.predict_track = lambda rows: track_head.predict_windows(pool_rows(rows))[0]
        im.row_width = int(track_head.n_bins) // 2
        im.cached_track = _cached_track(im, backbone)
    return im


def _cached_track(im, backbone: Backbone):
    """``path -> (track answer, duration_s)`` from the embedding cache (``embed-<backbone>``), or None."""
    def cached(path: str):
        from genrescope.features.cache import FeatureCache

        if tuple(backbone.blocks) != (EMBEDDINGS_OUTPUT,):
            return None
        blob = FeatureCache(None, backbone.feature_config, f"embed-{backbone.name}").load(path)
        # (N, 2 + D): start_s, end_s, row
        if blob is None or blob.ndim != 2 or blob.shape[1] != 2 + im.row_width or len(blob) == 0:
            return None
        return im.predict_track(blob[:, 2:]), float(blob[:, 1].max())

    return cached
