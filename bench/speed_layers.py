"""Per graph: FLOP of a window, per-layer time by kind of op, and the parity of fast against exact.

Used by bench/predict.py. The per-layer profile runs one core, one thread: OpenVINO's
performance counters (a fused layer counts under the node it was fused into, so layers are
grouped by the kind of op that ran, ``node_type``) and ONNX Runtime's profiler (by op type).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from speed_probes import SHARED, _pin_one_core

#: kinds of op: matrix products; reductions (musicnn's max over mel, the pooling); element-wise;
#: layout (copies and reorders)
KINDS = {
    "matrix": {"Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Gemm", "Conv"},
    "reduction": {"ReduceMax", "ReduceMean", "MaxPool", "AvgPool", "Pooling", "Reduce", "GlobalAveragePool"},
    "element-wise": {"Multiply", "Add", "Subtract", "Divide", "Eltwise", "MulAdd", "PowerStatic", "Relu", "Sigmoid",
                     "Softmax", "SoftMax", "Clamp", "Maximum", "Minimum", "Mul", "Sub", "Div", "Sqrt", "Power",
                     "BatchNormalization", "Exp", "Sum", "Where", "Neg", "Abs"},
    "layout": {"Reorder", "Transpose", "Concat", "Gather", "Reshape", "Pad", "Squeeze", "Unsqueeze", "Split", "Slice",
               "StridedSlice", "Broadcast", "Expand", "Convert", "Cast", "Flatten", "Identity", "Tile"},
}


def kind_of(op: str) -> str:
    return next((k for k, ops in KINDS.items() if op in ops), "other")


def graph_macs(path: str) -> dict[str, float]:
    """Multiply-adds of every Conv / MatMul / Gemm node of one ONNX graph for one window, by node name."""
    return {n: float(m) * k * c for n, (m, k, c) in graph_gemms(path).items()}


def graph_gemms(path: str) -> dict[str, tuple[int, int, int]]:
    """The matrix product (M, K, N) each Conv / MatMul / Gemm node of one ONNX graph computes for one
    window (a convolution as the product of its unrolled input and its filters), by node name.

    The shapes come from running the graph once on a window with every such node's input
    and output exposed (musicnn's padding is computed in the graph, so static shape
    inference cannot see them).
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from genrescope.inference.onnx_model import INPUT_NAME, OnnxModel

    om, proto = OnnxModel(path), onnx.load(path)
    weights = {t.name: numpy_helper.to_array(t).shape for t in proto.graph.initializer}
    nodes = [n for n in proto.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    have = {o.name for o in proto.graph.output}
    for t in {t for n in nodes for t in (n.input[0], n.input[1], n.output[0])} - have - set(weights):
        proto.graph.output.append(helper.make_empty_tensor_value_info(t))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    if om.input_kind == "table":
        x = np.zeros((1, om.n_bins), np.float32)
    else:  # one window (3 s of a whole-song model)
        x = np.zeros((1, om.n_bins, om.window_frames or int(3 * om.feature_config.frame_rate)), np.float32)
    shapes = dict(zip([o.name for o in sess.get_outputs()], [v.shape for v in sess.run(None, {INPUT_NAME: x})]))
    shapes.update(weights)
    gemms = {}
    for n in nodes:
        out = shapes[n.output[0]]
        if n.op_type == "Conv":  # (1, C_out, H, W): M = H W positions, K = C_in kh kw, N = C_out
            k, m, c = int(np.prod(weights[n.input[1]][1:])), int(np.prod(out[2:])), int(out[1])
        else:
            a = shapes[n.input[0]]
            k = a[-2] if any(at.name == "transA" and at.i for at in n.attribute) else a[-1]
            m, c = int(np.prod(out[:-1])), int(out[-1])
        gemms[n.name] = (m, int(k), c)
    return gemms


def shape_matched_gemm_s(model: str, repeat: int = 5) -> float | None:
    """Seconds a window's matrix products take as torch bfloat16 GEMMs of their own shapes, one core,
    one thread (best of ``repeat`` each): the GEMM rate at the model's shapes, not a square one."""
    try:
        import torch
    except ImportError:
        return None
    import time

    from genrescope.inference.registry import resolve_model_path

    mask = os.sched_getaffinity(0)
    _pin_one_core()
    torch.set_num_threads(1)
    total = 0.0
    try:
        for name in graph_names(model):
            for m, k, n in graph_gemms(str(resolve_model_path(name)[1])).values():
                a, b = torch.randn(m, k, dtype=torch.bfloat16), torch.randn(k, n, dtype=torch.bfloat16)
                a @ b
                best = float("inf")
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    a @ b
                    best = min(best, time.perf_counter() - t0)
                total += best
    finally:
        os.sched_setaffinity(0, mask)
    return total




def graph_names(model: str) -> list[str]:
    """The ONNX graphs one window goes through: a model that names a backbone runs it first."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import DEFAULT_MODEL, resolve_model_path

    name = DEFAULT_MODEL if model == "default" else model
    backbone = OnnxModel(resolve_model_path(name)[1]).provenance.get("backbone")
    return ([backbone] if backbone else []) + [name]


def model_macs_per_window(model: str) -> float:
    """Multiply-adds of one window through every graph of ``model``."""
    from genrescope.inference.registry import resolve_model_path

    return sum(sum(graph_macs(str(resolve_model_path(n)[1])).values()) for n in graph_names(model))


def song_windows(path: Path, model: str, n: int = 32) -> np.ndarray:
    """``n`` windows of the song, evenly spread, as the first graph of ``model`` takes them."""
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    om = OnnxModel(resolve_model_path(graph_names(model)[0])[1])
    cfg = om.feature_config
    w = slice_windows(compute(load_audio(path, sr=cfg.sr), cfg, om.input_kind), cfg, win_frames=om.window_frames)[0]
    return np.ascontiguousarray(w[np.linspace(0, len(w) - 1, min(n, len(w))).astype(int)], dtype=np.float32)


def _openvino_times(path: str, x: np.ndarray, precision: str) -> dict[tuple[str, str], float]:
    import openvino as ov

    core = ov.Core()
    want = "bf16" if precision in ("auto", "bf16") and "BF16" in core.get_property(
        "CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
    cm = core.compile_model(core.read_model(path), "CPU", {
        "INFERENCE_PRECISION_HINT": want, "PERF_COUNT": True, "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
        "ENABLE_CPU_PINNING": False})
    req = cm.create_infer_request()
    req.infer({0: x[:1]})
    times: dict[tuple[str, str], float] = {}
    for i in range(len(x)):
        req.infer({0: x[i:i + 1]})
        for p in req.profiling_info:
            key = (p.node_name, p.node_type)
            times[key] = times.get(key, 0.0) + p.real_time.total_seconds()
    return times


def _onnxruntime_times(path: str, x: np.ndarray) -> dict[tuple[str, str], float]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.enable_profiling = 1, True
    with tempfile.TemporaryDirectory() as d:
        opts.profile_file_prefix = os.path.join(d, "p")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        for i in range(len(x)):
            sess.run(None, {sess.get_inputs()[0].name: x[i:i + 1]})
        events = json.loads(Path(sess.end_profiling()).read_text())
    times: dict[tuple[str, str], float] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            key = (e["name"][:-len("_kernel_time")], e.get("args", {}).get("op_name", "?"))
            times[key] = times.get(key, 0.0) + e["dur"] / 1e6
    return times


def layer_profile(model: str, backend: str, windows: np.ndarray) -> dict:
    """One core, one thread: per graph, ms a window by kind of op and its top layers, with GFLOP/s
    of the matrix products (the graph's multiply-adds over the time of its matrix-product layers)."""
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    mask = os.sched_getaffinity(0)
    _pin_one_core()
    out = {}
    try:
        for name in graph_names(model):
            path = str(resolve_model_path(name)[1])
            om = OnnxModel(path)
            x = np.zeros((len(windows), om.n_bins), np.float32) if om.input_kind == "table" else windows
            times = _openvino_times(path, x, "auto") if backend == "openvino" else _onnxruntime_times(path, x)
            kinds: dict[str, float] = {}
            for (_, op), t in times.items():
                kinds[kind_of(op)] = kinds.get(kind_of(op), 0.0) + t / len(x)
            total = sum(kinds.values()) or 1.0
            top = sorted(((t / len(x), node, op) for (node, op), t in times.items()), reverse=True)[:6]
            macs = sum(graph_macs(path).values())
            matrix = kinds.get("matrix", 0.0)
            out[name] = {"ms": total * 1e3, "kinds": {k: v / total for k, v in kinds.items()},
                         "top": [(ms * 1e3, node, op) for ms, node, op in top],
                         "matrix_gflops": 2 * macs / matrix / 1e9 if matrix else None}
    finally:
        os.sched_setaffinity(0, mask)
    return out


def parity(model: str, n_files: int) -> dict:
    """The default model on OpenVINO bfloat16 against exact float32 (ONNX Runtime) on every window of the
    shared GTZAN tracks (``n_files`` of them, 0: all), and float32 ONNX against the unfolded PyTorch
    composition (the taggers as converted, not folded) on the windows of the first ten."""
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import compute
    from genrescope.features.windows import slice_windows
    from genrescope.inference.inference_model import predict_batches
    from genrescope.inference.runtimes import load_inference_model

    files = sorted((SHARED / "gtzan" / "audio").glob("*/*.opus"))
    files = files[:n_files] if n_files else files
    if not files:
        return {}
    exact = load_inference_model(model, backend="onnxruntime")
    fast = load_inference_model(model, backend="openvino")
    cfg, g = exact.feature_config, len(exact.labels)
    same = total = 0
    worst_fp32 = 0.0
    torch_ref = _torch_reference(model)
    for k, f in enumerate(files):
        w = slice_windows(compute(load_audio(f, sr=cfg.sr), cfg, exact.kind), cfg, win_frames=exact.window_frames)[0]
        batches = [w[i:i + 1] for i in range(len(w))]
        a = np.concatenate(predict_batches(exact, batches))
        b = np.concatenate(predict_batches(fast, batches))
        same += int((a[:, :g].argmax(1) == b[:, :g].argmax(1)).sum())
        total += len(w)
        if torch_ref is not None and k < 10:
            worst_fp32 = max(worst_fp32, float(np.abs(a - torch_ref(w)).max()))
    return {"files": len(files), "windows": total, "top_equal": same / total, "bf16_ran": fast.precision,
            "fp32_vs_torch": worst_fp32 if torch_ref is not None else None}


def _torch_reference(model: str):
    """``windows -> (N, genres + tags)`` of the unfolded PyTorch composition of a one-graph model, or None."""
    try:
        import torch
    except ImportError:
        return None
    from genrescope.config import pretrained_dir
    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import DEFAULT_MODEL, resolve_model_path
    from genrescope.training.fused_export import fused_reference

    name = DEFAULT_MODEL if model == "default" else model
    fused = OnnxModel(resolve_model_path(name)[1]).provenance.get("fused")
    if not fused:
        return None
    head = pretrained_dir() / name / "checkpoint.safetensors"
    ref = fused_reference(fused["backbone"], head if head.is_file() else None)

    def run(w: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            outs = ref(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)))
        return np.concatenate([o.numpy() for o in outs[:-1]], axis=1)  # the answer (and tags), not embeddings

    return run
