"""One ONNX graph for a model made of several: an ensemble of taggers, or a head behind them.

A shipped model that is several networks (``musicnn`` = both musicnn taggers, their tags merged
by label; ``genre10`` = a head on both taggers' embeddings) is exported as one graph, so a
runtime schedules it as one piece and the in-browser page loads one file and runs it as it is.
Its outputs:

* ``probabilities``: the model's answer (the head's genres; an ensemble's merged tags);
* ``tags`` (a head only): the taggers' tag probabilities, merged by label
  (:class:`~genrescope.inference.ensemble.LabelMerge`, here one constant matrix product);
* ``embeddings``: the taggers' penultimate layers side by side (the ``musicnn`` backbone's row).

musicnn taggers go in as :class:`~genrescope.models.musicnn_folded.FoldedMusicnn` (constants
folded into the weights, dead filters dropped). The graph's metadata follows genrescope's ONNX
format; ``tag_labels`` names the ``tags`` columns and ``provenance.fused`` says what was fused.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genrescope.errors import GenrescopeError
from genrescope.inference.ensemble import LabelMerge
from genrescope.inference.onnx_model import INPUT_NAME, OUTPUT_NAME, OnnxModel

TAGS_OUTPUT = "tags"
EMBEDDINGS_OUTPUT = "embeddings"
OPSET = 17
#: metadata keys of the members' graphs that describe the input, copied as they are
INPUT_KEYS = ("feature_config", "input_kind", "n_bins", "window_s", "min_frames", "dynamic_time", "input_frames",
              "format", "format_version")


class WithEmbeddings(nn.Module):
    """A tagger as export sees it: ``x -> (probabilities, embeddings)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, return_embeddings=True)


def with_embeddings(model: nn.Module, *, fold: bool = True) -> nn.Module:
    """A converted tagger as a module ``x -> (probabilities, embeddings)`` in eval mode; with ``fold``
    a musicnn tagger as :class:`~genrescope.models.musicnn_folded.FoldedMusicnn`."""
    from genrescope.models.musicnn import Musicnn
    from genrescope.models.musicnn_folded import FoldedMusicnn

    if fold and isinstance(model, Musicnn):
        return FoldedMusicnn(model.eval())
    return WithEmbeddings(model).eval()


def tagger_module(name: str) -> nn.Module:
    """A shipped tagger as a module ``x -> (probabilities, embeddings)`` (musicnn ones folded)."""
    from genrescope.models.musicnn import load_musicnn

    return with_embeddings(load_musicnn(name)[0])


class FusedGraph(nn.Module):
    """Taggers that read the same windows, their tags merged by label, and optionally a head.

    ``forward(x)`` returns ``(tags, embeddings)`` without a head, ``(head probabilities, tags,
    embeddings)`` with one. The head reads, per tagger in order, its ``blocks`` side by side
    (``embeddings`` and/or ``probabilities``), as :class:`~genrescope.inference.backbone.Backbone`
    builds a row.
    """

    def __init__(self, taggers: list[nn.Module], tag_label_lists: list[list[str]], *, head: nn.Module | None = None,
                 blocks: tuple[str, ...] = (EMBEDDINGS_OUTPUT,), head_activation: str = "softmax"):
        super().__init__()
        self.taggers = nn.ModuleList(taggers)
        merge = LabelMerge(tag_label_lists)
        rows = sum(len(c) for c in merge.columns)
        matrix = np.zeros((rows, len(merge.labels)), np.float32)  # tagger columns -> merged label, 1/count each
        start = 0
        for cols in merge.columns:
            matrix[start + np.arange(len(cols)), cols] = 1.0 / merge.counts[cols]
            start += len(cols)
        self.register_buffer("merge", torch.from_numpy(matrix))
        self.tag_labels = merge.labels
        self.head, self.blocks, self.head_activation = head, tuple(blocks), head_activation

    def forward(self, x: torch.Tensor):
        outs = [t(x) for t in self.taggers]  # (probabilities (B, G_i), embeddings (B, D_i)) each
        tags = torch.cat([p for p, _ in outs], dim=1) @ self.merge  # (B, K)
        emb = torch.cat([e for _, e in outs], dim=1)  # (B, sum D_i)
        if self.head is None:
            return tags, emb
        parts = {"embeddings": 1, "probabilities": 0}
        row = torch.cat([o[parts[b]] for o in outs for b in self.blocks], dim=1)
        logits = self.head(row)
        probs = torch.sigmoid(logits) if self.head_activation == "sigmoid" else torch.softmax(logits, dim=-1)
        return probs, tags, emb


def _trace(module: nn.Module, example: torch.Tensor, outputs: list[str]) -> bytes:
    buf = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and constant-folding notes
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
                          output_names=outputs, dynamic_axes={n: {0: "batch"} for n in [INPUT_NAME, *outputs]},
                          do_constant_folding=True)
    return buf.getvalue()


def export_fused(out_path: str | os.PathLike, backbone: str, *, head_checkpoint: str | os.PathLike | None = None,
                 model_name: str | None = None, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``backbone`` (a shipped tagger or ensemble), with the head of ``head_checkpoint`` behind
    it when given, as one ONNX graph (see the module docstring).

    Parameters
    ----------
    out_path : path
        The ``.onnx`` to write (atomically).
    backbone : str
        ``musicnn``, or one shipped tagger.
    head_checkpoint : path, optional
        A head trained on the backbone's rows (``train --backbone``); its checkpoint names the
        backbone and blocks, which must match.
    model_name, provenance :
        The graph's name (default: the backbone's, or the head's) and provenance (default: the
        head checkpoint's, or the members' conversion records).
    """
    import onnx

    from genrescope.inference.registry import ENSEMBLES, resolve_model_path
    from genrescope.models.checkpoint import atomic_path, load_checkpoint

    members = list(ENSEMBLES.get(backbone, (backbone,)))
    graphs = [OnnxModel(resolve_model_path(m)[1]) for m in members]
    taggers = [tagger_module(m) for m in members]
    head = info = None
    blocks: tuple[str, ...] = (EMBEDDINGS_OUTPUT,)
    if head_checkpoint is not None:
        head, info = load_checkpoint(head_checkpoint)
        if info.get("backbone") != backbone:
            raise GenrescopeError(f"{head_checkpoint}: a head on {info.get('backbone')!r}, not on {backbone!r}")
        blocks = tuple(info.get("backbone_blocks") or (EMBEDDINGS_OUTPUT,))
    activation = getattr(head.config, "output_activation", "softmax") if head is not None else "sigmoid"
    fused = FusedGraph(taggers, [list(g.labels) for g in graphs], head=head, blocks=blocks, head_activation=activation)
    outputs = [OUTPUT_NAME] + ([TAGS_OUTPUT] if head is not None else []) + [EMBEDDINGS_OUTPUT]
    first = graphs[0]
    example = torch.zeros(2, first.n_bins, first.input_frames or first.window_frames)
    proto = onnx.load_from_string(_trace(fused, example, outputs))
    fuse_note = {"backbone": backbone, "members": members, "blocks": list(blocks),
                 "folded": "front-end signs in the weights, dead filters dropped (models/musicnn_folded.py)"}
    if head is not None:
        prov = dict(provenance or {k: v for k, v in info.items() if k in ("dataset", "command", "note", "selection")})
        labels, name = list(info["labels"]), model_name or info.get("model_name", "head")
        model_config = {"head": info["model_name"], "backbone": backbone, "blocks": list(blocks)}
    else:
        prov = dict(provenance or {m: g.provenance for m, g in zip(members, graphs)})
        labels, name = fused.tag_labels, model_name or backbone
        model_config = {"ensemble": members}
    prov = {k: v for k, v in prov.items() if k not in ("backbone", "backbone_blocks")}
    meta = {k: first.metadata[k] for k in INPUT_KEYS if k in first.metadata}
    meta.update({"model_name": name, "labels": json.dumps(labels), "outputs": json.dumps(outputs),
                 "output_activation": activation, "model_config": json.dumps(model_config, sort_keys=True),
                 "provenance": json.dumps({**prov, "fused": fuse_note}, sort_keys=True, default=str),
                 "genrescope_version": first.metadata.get("genrescope_version", "")})
    if head is not None:
        meta["tag_labels"] = json.dumps(fused.tag_labels)
    if "licence" in first.metadata:
        meta["licence"] = first.metadata["licence"] + ("; the head: MIT" if head is not None else "")
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto)
    with atomic_path(out_path) as tmp:
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)  # a shipped file like the others (mkstemp makes it private)
    return Path(out_path)


def fused_reference(backbone: str, head_checkpoint=None) -> FusedGraph:
    """The unfolded PyTorch composition of the same model (the taggers as converted), for parity checks."""
    from genrescope.inference.registry import ENSEMBLES
    from genrescope.models.checkpoint import load_checkpoint
    from genrescope.models.musicnn import load_musicnn

    members = list(ENSEMBLES.get(backbone, (backbone,)))
    loaded = [load_musicnn(m) for m in members]
    head, blocks, activation = None, (EMBEDDINGS_OUTPUT,), "sigmoid"
    if head_checkpoint is not None:
        head, info = load_checkpoint(head_checkpoint)
        blocks = tuple(info.get("backbone_blocks") or blocks)
        activation = getattr(head.config, "output_activation", "softmax")
    return FusedGraph([with_embeddings(m, fold=False) for m, _ in loaded], [c["labels"] for _, c in loaded], head=head, blocks=blocks,
                      head_activation=activation).eval()


__all__ = ["FusedGraph", "export_fused", "fused_reference", "tagger_module", "with_embeddings", "TAGS_OUTPUT", "EMBEDDINGS_OUTPUT"]
