"""A tiny genre head on a backbone's embeddings, as `train --backbone` exports it: for the
browser export and in-browser inference tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HEAD_LABELS = ["calm", "busy", "loud"]


def make_head(path: Path, backbone: str = "musicnn-msd", seed: int = 0, blocks=("embeddings",)) -> Path:
    """A tiny head on ``backbone``'s rows (a dense layer and a softmax), as a genrescope ONNX export
    whose provenance names the backbone and its blocks: what `train --backbone` writes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from genrescope.inference.backbone import Backbone

    bb = Backbone(backbone, blocks=tuple(blocks))
    dim = bb.dim
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((dim, len(HEAD_LABELS))) * 3 / np.sqrt(dim)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(len(HEAD_LABELS), np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["features", "w", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)], "head",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(HEAD_LABELS)])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"format": "genrescope-onnx", "format_version": "1", "genrescope_version": "test", "model_name": "head",
            "model_config": "{}", "feature_config": json.dumps(bb.feature_config.to_dict()),
            "labels": json.dumps(HEAD_LABELS), "input_kind": "table", "n_bins": str(dim), "window_s": "null",
            "min_frames": "1", "dynamic_time": "false", "input_frames": "0", "outputs": '["probabilities"]',
            "output_activation": "softmax",
            "provenance": json.dumps({"backbone": backbone, "backbone_blocks": list(blocks)})}
    helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    return path
