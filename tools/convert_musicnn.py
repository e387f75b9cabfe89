"""Convert the pretrained musicnn taggers (musicnn==0.1.0, ISC) to safetensors + ONNX, and verify them.

Convert (reads the TF1 checkpoints shipped in the wheel; no TensorFlow needed)::

    python tools/convert_musicnn.py [--wheel musicnn-0.1.0-py3-none-any.whl]

writes ``src/genrescope/pretrained/<name>/{weights.safetensors,config.json,model.onnx}`` for
musicnn-msd, musicnn-mtt, vgg-msd and vgg-mtt. Without ``--wheel`` the wheel is fetched
with ``pip download --no-deps musicnn==0.1.0``. Every checkpoint variable must map to
exactly one PyTorch tensor (Adam slots and beta powers are the only ones skipped), and
every tensor's CRC32C is checked.

Verify against the original TensorFlow graphs (run in a throwaway TF venv, see
``tools/musicnn_tf_reference.py``)::

    python tools/convert_musicnn.py --verify AUDIO... --tf-python /work/tfvenv/bin/python \\
        [--reference AUDIO... --write-reference tests/data/musicnn_reference.npz]

compares TF vs PyTorch tag probabilities and embeddings on musicnn's own input patches,
ONNX Runtime vs PyTorch, the checkpoint values read here vs TF's reader, and musicnn's
librosa log-mel vs ``genrescope.features.spectrogram.log_mel`` on the same 16 kHz waveform.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from genrescope.config import MUSICNN_FEATURES  # noqa: E402
from genrescope.errors import CheckpointError  # noqa: E402
from genrescope.inference.protobuf import protobuf_fields, read_varint  # noqa: E402

log = logging.getLogger("convert_musicnn")

CONVERSION_VERSION = 1
OPSET = 17
SOURCE_URL = "https://github.com/jordipons/musicnn"
PAPER = ("J. Pons and X. Serra, 'musicnn: pre-trained convolutional neural networks for music audio "
         "tagging', ISMIR 2019 late-breaking/demo")

#: shipped name -> (TF checkpoint folder in the wheel, architecture, hparams, dataset)
MODELS = {
    "musicnn-msd": ("MSD_musicnn", "musicnn", {"n_classes": 50, "n_mels": 96, "frontend_width": 1.6,
                                               "midend_filters": 64, "backend_units": 200}, "MSD"),
    "musicnn-mtt": ("MTT_musicnn", "musicnn", {"n_classes": 50, "n_mels": 96, "frontend_width": 1.6,
                                               "midend_filters": 64, "backend_units": 200}, "MTT"),
    "vgg-msd": ("MSD_vgg", "musicnn_vgg", {"n_classes": 50, "n_mels": 96, "n_frames": 187, "filters": 128}, "MSD"),
    "vgg-mtt": ("MTT_vgg", "musicnn_vgg", {"n_classes": 50, "n_mels": 96, "n_frames": 187, "filters": 128}, "MTT"),
}
DATASETS = {"MSD": "Million Song Dataset, 50 most frequent last.fm tags",
            "MTT": "MagnaTagATune, 50 most frequent tags"}
#: optimiser state in the checkpoints, not part of the network
OPTIMISER_VARS = re.compile(r"(/Adam(_1)?$)|(^beta[12]_power$)")


# ---------------------------------------------------------------- TF1 checkpoint reader
# A TF "tensor bundle" is a LevelDB-format table (.index) of BundleEntryProto records
# pointing into raw little-endian tensor bytes (.data-00000-of-00001). Reading it directly
# keeps TensorFlow out of the conversion; --verify checks the values against TF's reader.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}
_TABLE_MAGIC = 0xDB4775248B80FB57


def _table_block(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one uncompressed LevelDB block (prefix-compressed keys)."""
    if data[offset + size] != 0:
        raise CheckpointError("compressed checkpoint index blocks are not supported")
    blk = data[offset:offset + size]
    n_restarts = struct.unpack_from("<I", blk, len(blk) - 4)[0]
    end, pos, key, out = len(blk) - 4 - 4 * n_restarts, 0, b"", []
    while pos < end:
        shared, pos = read_varint(blk, pos)
        unshared, pos = read_varint(blk, pos)
        vlen, pos = read_varint(blk, pos)
        key = key[:shared] + blk[pos:pos + unshared]
        pos += unshared
        out.append((key, blk[pos:pos + vlen]))
        pos += vlen
    return out


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    try:
        return [(field, value) for field, _, value in protobuf_fields(buf)]
    except (ValueError, IndexError) as e:
        raise CheckpointError(f"unreadable protobuf in checkpoint index ({e})") from e


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _index_entries(prefix: str) -> list[tuple[str, bytes]]:
    """(variable name, BundleEntryProto bytes) of every entry in ``prefix.index``."""
    index = Path(prefix + ".index").read_bytes()
    if len(index) < 48 or struct.unpack_from("<Q", index, len(index) - 8)[0] != _TABLE_MAGIC:
        raise CheckpointError(f"{prefix}.index: not a TF checkpoint index")
    footer, pos = index[-48:], 0
    for _ in range(2):  # skip the metaindex handle
        _, pos = read_varint(footer, pos)
    index_off, pos = read_varint(footer, pos)
    index_size, pos = read_varint(footer, pos)
    out = []
    for _, handle in _table_block(index, index_off, index_size):
        off, p = read_varint(handle, 0)
        size, _ = read_varint(handle, p)
        out += [(k.decode(), v) for k, v in _table_block(index, off, size) if k]  # "" is the bundle header
    return out


def read_tf_checkpoint(prefix: str, skip: re.Pattern = OPTIMISER_VARS) -> tuple[dict[str, np.ndarray], list[str]]:
    """Variables of a TF1 checkpoint: ``prefix.index`` + ``prefix.data-00000-of-00001``.

    Returns the variables whose name does not match ``skip`` (each checked against its
    CRC32C) and the sorted names that were skipped.
    """
    data = Path(prefix + ".data-00000-of-00001").read_bytes()
    out: dict[str, np.ndarray] = {}
    skipped = []
    for name, value in _index_entries(prefix):
        if skip.search(name):
            skipped.append(name)
            continue
        entry = {"dtype": 0, "shape": [], "shard": 0, "offset": 0, "size": 0, "crc": None, "slices": False}
        for field, v in _proto_fields(value):
            if field == 1:
                entry["dtype"] = v
            elif field == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
                entry["shape"] = [dict(_proto_fields(dim)).get(1, 0) for f2, dim in _proto_fields(v) if f2 == 2]
            elif field in (3, 4, 5):
                entry[{3: "shard", 4: "offset", 5: "size"}[field]] = v
            elif field == 6:
                entry["crc"] = struct.unpack("<I", v)[0]
            elif field == 7:
                entry["slices"] = True
        if entry["dtype"] not in _DTYPES or entry["shard"] != 0 or entry["slices"]:
            raise CheckpointError(f"{prefix}: unsupported entry for {name}: {entry}")
        raw = data[entry["offset"]:entry["offset"] + entry["size"]]
        if len(raw) != entry["size"] or (entry["crc"] is not None and _masked_crc32c(raw) != entry["crc"]):
            raise CheckpointError(f"{prefix}: checksum mismatch for {name}")
        out[name] = np.frombuffer(raw, _DTYPES[entry["dtype"]]).reshape(entry["shape"]).copy()
    return out, sorted(skipped)


# ---------------------------------------------------------------- TF name -> PyTorch key
#: torch key -> (TF variable name, array transform)
Mapping = dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]


def _conv2d(k):  # TF (kh, kw, in, out) -> torch (out, in, kh, kw); kh is time in both
    return k.transpose(3, 2, 0, 1)


def _conv1d(k):  # TF (7, in, 1, out), a full-width 2-D kernel -> torch Conv1d (out, in, 7)
    return k[:, :, 0, :].transpose(2, 1, 0)


def _dense(k):  # TF (in, out) -> torch (out, in)
    return k.T


def _same(v):
    return v


def _bn(tf_name: str, torch_prefix: str) -> Mapping:
    return {f"{torch_prefix}.weight": (f"{tf_name}/gamma", _same), f"{torch_prefix}.bias": (f"{tf_name}/beta", _same),
            f"{torch_prefix}.running_mean": (f"{tf_name}/moving_mean", _same),
            f"{torch_prefix}.running_var": (f"{tf_name}/moving_variance", _same)}


def _layer(tf_name: str, torch_prefix: str, kernel_fn) -> Mapping:
    return {f"{torch_prefix}.weight": (f"{tf_name}/kernel", kernel_fn),
            f"{torch_prefix}.bias": (f"{tf_name}/bias", _same)}


def musicnn_mapping() -> Mapping:
    """torch key -> (TF variable, transform), in the order musicnn.models creates the layers."""
    m = _bn("batch_normalization", "input_bn")
    branches = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2"]  # 7x38, 7x67, 128, 64, 32
    for i, b in enumerate(branches):
        m |= _layer(f"conv2d_{i}" if i else "conv2d", f"{b}.conv", _conv2d)
        m |= _bn(f"batch_normalization_{i + 1}", f"{b}.bn")
    for j in range(3):
        m |= _layer(f"conv2d_{5 + j}", f"midend.{j}.conv", _conv1d)
        m |= _bn(f"batch_normalization_{6 + j}", f"midend.{j}.bn")
    m |= _bn("batch_normalization_9", "pool_bn") | _layer("dense", "dense", _dense)
    m |= _bn("batch_normalization_10", "dense_bn") | _layer("dense_1", "classifier", _dense)
    return m


def vgg_mapping() -> Mapping:
    m = _bn("batch_normalization", "input_bn")
    for i in range(5):
        m |= _layer(f"{i + 1}CNN", f"convs.{i}", _conv2d) | _bn(f"batch_normalization_{i + 1}", f"bns.{i}")
    return m | _layer("dense", "classifier", _dense)


def tf_to_state_dict(tf_vars: dict[str, np.ndarray], model, mapping, where: str) -> dict:
    """The module's state dict filled from TF variables; fails on any missing or unused variable."""
    import torch

    expected = model.state_dict()
    state, used = {}, set()
    for key, ref in expected.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros_like(ref)  # TF has no counterpart; unused at inference
            continue
        if key not in mapping:
            raise CheckpointError(f"{where}: no TF variable mapped to {key}")
        tf_name, fn = mapping[key]
        if tf_name not in tf_vars:
            raise CheckpointError(f"{where}: TF variable {tf_name} (for {key}) is missing")
        value = np.ascontiguousarray(fn(tf_vars[tf_name]), dtype=np.float32)
        if value.shape != tuple(ref.shape):
            raise CheckpointError(f"{where}: {tf_name} {tf_vars[tf_name].shape} -> {value.shape} "
                                  f"does not fit {key} {tuple(ref.shape)}")
        state[key] = torch.from_numpy(value)
        used.add(tf_name)
    unused = sorted(set(tf_vars) - used)
    if unused:
        raise CheckpointError(f"{where}: TF variables not used by the port: {unused}")
    if len(set(mapping) - set(expected)):
        raise CheckpointError(f"{where}: mapping names unknown keys {sorted(set(mapping) - set(expected))}")
    return state


# ---------------------------------------------------------------- wheel
def unpack_wheel(wheel: Path | None, workdir: Path) -> tuple[Path, str]:
    """(folder holding musicnn/..., sha256 of the wheel); downloads the wheel if none is given."""
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "musicnn==0.1.0", "-d", str(workdir)],
                       check=True)
        wheel = next(workdir.glob("musicnn-0.1.0-*.whl"))
    if wheel.is_dir():
        return wheel, "unpacked"
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with zipfile.ZipFile(wheel) as z:
        z.extractall(workdir / "wheel")
    return workdir / "wheel", sha


def musicnn_labels(root: Path) -> dict[str, list[str]]:
    """MSD_LABELS and MTT_LABELS from the wheel's configuration.py, read without importing it."""
    import ast

    labels = {}
    for node in ast.parse((root / "musicnn" / "configuration.py").read_text()).body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("MSD_LABELS", "MTT_LABELS"):
            labels[node.targets[0].id[:3]] = ast.literal_eval(node.value)
    return labels


# ---------------------------------------------------------------- export
def export_onnx(model, path: Path, metadata: dict[str, str]) -> None:
    """One self-contained ONNX file, opset 17, dynamic batch axis, metadata_props filled.

    The graph follows genrescope's ONNX format (:mod:`genrescope.inference.onnx_model`): input
    ``features`` (B, 96, 187) log-mel, output ``probabilities`` (sigmoid here: the tags
    are multi-label), plus ``embeddings``. A musicnn tagger is exported folded
    (genrescope.models.musicnn_folded: signs in the weights, dead filters dropped).
    """
    import io
    import warnings

    import onnx
    import torch

    from genrescope.inference.onnx_model import INPUT_NAME, OUTPUT_NAME
    from genrescope.training.fused_export import with_embeddings  # a musicnn tagger folded

    buf = io.BytesIO()
    dummy = torch.zeros(1, MUSICNN_FEATURES.n_mels, MUSICNN_FEATURES.window_frames)
    names = [INPUT_NAME, OUTPUT_NAME, "embeddings"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and folding notes
        torch.onnx.export(with_embeddings(model), (dummy,), buf, dynamo=False, opset_version=OPSET,
                          input_names=names[:1], output_names=names[1:], dynamic_axes={n: {0: "batch"} for n in names})
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in metadata.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def onnx_metadata(config: dict) -> dict[str, str]:
    """genrescope's ONNX metadata keys (see genrescope.inference.onnx_model), plus source and licence."""
    from genrescope import __version__
    from genrescope.inference.onnx_model import ONNX_FORMAT, ONNX_FORMAT_VERSION, OUTPUT_NAME

    fc = MUSICNN_FEATURES
    return {
        "format": ONNX_FORMAT, "format_version": str(ONNX_FORMAT_VERSION), "genrescope_version": __version__,
        "model_name": config["name"],
        "model_config": json.dumps({"architecture": config["architecture"], **config["hparams"]}, sort_keys=True),
        "feature_config": json.dumps(fc.to_dict(), sort_keys=True), "labels": json.dumps(config["labels"]),
        "input_kind": "log_mel", "n_bins": str(fc.n_mels), "window_s": json.dumps(fc.window_s),
        "min_frames": str(fc.window_frames), "dynamic_time": "false", "input_frames": str(fc.window_frames),
        "outputs": json.dumps([OUTPUT_NAME, "embeddings"]), "output_activation": "sigmoid",
        "provenance": json.dumps({"source": config["source"], "conversion": config["conversion"]}, sort_keys=True),
        "licence": "ISC (musicnn, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019)",
    }


def convert(root: Path, wheel_sha: str, out: Path, names: list[str]) -> None:
    import torch
    from safetensors.torch import save_file

    from genrescope.models.musicnn import build_musicnn, load_musicnn

    labels = musicnn_labels(root)
    for name in names:
        folder, arch, hparams, dataset = MODELS[name]
        ckpt_dir = root / "musicnn" / folder
        # musicnn saved with an empty file name: the files are ".index", ".data-00000-of-00001"
        tf_vars, skipped = read_tf_checkpoint(f"{ckpt_dir}/")
        config = {
            "name": name, "architecture": arch, "hparams": hparams, "labels": labels[dataset],
            "features": MUSICNN_FEATURES.to_dict(),
            "input": {"name": "features", "shape": ["batch", MUSICNN_FEATURES.n_mels, MUSICNN_FEATURES.window_frames],
                      "layout": "(B, n_mels, T): windows of genrescope.features.spectrogram.log_mel(y, features)"},
            "outputs": {"probabilities": "(B, 50) independent sigmoid tag probabilities (multi-label)",
                        "embeddings": "(B, 200) penultimate dense layer" if arch == "musicnn"
                        else "(B, 256) last max pooling, flattened (musicnn's pool5)"},
            "training_data": DATASETS[dataset],
            "reported_results": (ckpt_dir / "experiment.result").read_text().strip(),
            "source": {"package": "musicnn==0.1.0", "checkpoint": f"musicnn/{folder}/", "wheel_sha256": wheel_sha,
                       "url": SOURCE_URL, "paper": PAPER},
            "licence": "ISC, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019, "
                       "code developed by Jordi Pons; see ../LICENSE-musicnn.txt",
            "conversion": {"tool": "tools/convert_musicnn.py", "version": CONVERSION_VERSION,
                           "torch": torch.__version__.split("+")[0],
                           "skipped_tf_variables": f"{len(skipped)} optimiser variables (Adam slots, beta powers)"},
            "notes": "musicnn computes its log-mel from a float16 mel power spectrogram; these features "
                     "use float32 (see genrescope.config.MUSICNN_FEATURES).",
        }
        model = build_musicnn(config).eval()
        mapping = musicnn_mapping() if arch == "musicnn" else vgg_mapping()
        state = tf_to_state_dict(tf_vars, model, mapping, where=f"{folder}")
        model.load_state_dict(state, strict=True)
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in state.items()}, str(dest / "weights.safetensors"),
                  metadata={"source": f"{name}: musicnn==0.1.0 {folder} (ISC licence); see config.json"})
        # one metadata key only: safetensors writes several in a random order, and the file should be reproducible
        (dest / "weights.safetensors").chmod(0o644)
        (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        reloaded, _ = load_musicnn(dest)
        metadata = onnx_metadata(config)
        export_onnx(reloaded, dest / "model.onnx", metadata)
        log.info("%s: %d tensors from %s -> %s", name, len(state), folder, dest)


def reexport(out: Path, names: list[str]) -> None:
    """Export each model's ONNX graph again from its weights.safetensors, keeping its metadata.

    For a change of the PyTorch forward pass that leaves the numbers alone (a graph that runs
    faster): the weights, config.json and every metadata key stay as converted.
    """
    import onnx

    from genrescope.models.musicnn import load_musicnn

    for name in names:
        dest = out / name
        metadata = {p.key: p.value for p in onnx.load(str(dest / "model.onnx")).metadata_props}
        model, _ = load_musicnn(dest)
        export_onnx(model, dest / "model.onnx", metadata)
        log.info("%s: ONNX graph exported again from %s", name, dest / "weights.safetensors")
    write_ensemble(out)


def write_ensemble(out: Path) -> None:
    """``<out>/musicnn``: both musicnn taggers as one graph (genrescope.training.fused_export), tags
    merged by label, embeddings side by side."""
    from genrescope.inference.registry import ENSEMBLES
    from genrescope.training.fused_export import export_fused

    members = ENSEMBLES["musicnn"]
    if not all((out / m / "model.onnx").is_file() for m in members):
        return
    dest = out / "musicnn"
    dest.mkdir(exist_ok=True)
    path = export_fused(dest / "model.onnx", "musicnn")
    from genrescope.inference.onnx_model import OnnxModel

    labels = OnnxModel(path).labels
    config = {"name": "musicnn", "architecture": " + ".join(members) + ", one graph",
              "description": "both musicnn taggers: tags merged by label (a tag both know gets the mean), "
                             "embeddings side by side",
              "labels": labels, "members": list(members),
              "outputs": {"probabilities": f"(B, {len(labels)}) merged tag probabilities (multi-label)",
                          "embeddings": "(B, 400) both taggers' penultimate layers, musicnn-msd first"},
              "command": "python tools/convert_musicnn.py --reexport",
              "licence": "ISC, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019, "
                         "code developed by Jordi Pons; see ../LICENSE-musicnn.txt"}
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log.info("musicnn: %s fused into %s", " + ".join(members), path)


# ---------------------------------------------------------------- verification
def _ort_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def verify(tf_npz: Path, out: Path, names: list[str]) -> dict:
    """Compare the ports with the TF outputs saved by musicnn_tf_reference.py; returns the max differences."""
    import torch

    from genrescope.features.spectrogram import log_mel
    from genrescope.models.musicnn import load_musicnn

    ref = np.load(tf_npz)
    meta = json.loads(str(ref["meta"]))
    n_files = len(meta["audio"])
    report: dict = {"tensorflow": meta["tensorflow"], "librosa": meta["librosa"], "audio": meta["audio"], "models": {}}
    for name in names:
        folder = MODELS[name][0]
        if f"probs_{folder}_0" not in ref:
            continue
        model, config = load_musicnn(out / name)
        sess = _ort_session(out / name / "model.onnx")
        rows = []
        for i in range(n_files):
            x = ref[f"patches_{i}"].transpose(0, 2, 1)  # (n, 187, 96) -> (n, 96, 187)
            with torch.no_grad():
                p, e = model(torch.from_numpy(np.ascontiguousarray(x)), return_embeddings=True)
            p, e = p.numpy(), e.numpy()
            po, eo = sess.run(["probabilities", "embeddings"], {"features": np.ascontiguousarray(x)})
            rows.append({"file": Path(meta["audio"][i]).name, "patches": len(x),
                         "tf_torch_probs": float(np.abs(p - ref[f"probs_{folder}_{i}"]).max()),
                         "tf_torch_emb": float(np.abs(e - ref[f"emb_{folder}_{i}"]).max()),
                         "onnx_torch_probs": float(np.abs(po - p).max()),
                         "onnx_torch_emb": float(np.abs(eo - e).max())})
        summary = {k: max(r[k] for r in rows) for k in rows[0] if k not in ("file", "patches")}
        summary["patches"] = sum(r["patches"] for r in rows)
        report["models"][name] = {"max": summary, "per_file": rows}
        log.info("%s vs TF %s: %s", name, folder, summary)
    # musicnn as run here pads like the installed librosa (zeros since 0.9); as released and
    # trained (librosa 0.6/0.7) it padded by reflection, which MUSICNN_FEATURES keeps
    as_run = MUSICNN_FEATURES.replace(pad_mode=meta["librosa_pad_mode"])
    report["features"] = []
    for i in range(n_files):
        y = ref[f"y16_{i}"]
        ours = log_mel(y, MUSICNN_FEATURES).T  # (frames, 96)
        ours_as_run = log_mel(y, as_run).T
        rep = ref[f"rep_{i}"].astype(np.float32)
        report["features"].append({
            "file": Path(meta["audio"][i]).name, "frames": [int(len(ours)), int(len(rep))],
            "reflect_vs_librosa_reflect_float32": float(np.abs(ours - ref[f"rep32_reflect_{i}"]).max()),
            "as_run_vs_musicnn_float16": float(np.abs(ours_as_run - rep).max()),
            "as_run_vs_librosa_float32": float(np.abs(ours_as_run - ref[f"rep32_{i}"]).max()),
            "reflect_vs_musicnn_as_run": float(np.abs(ours - rep).max()),
            "reflect_vs_musicnn_as_run_inner": float(np.abs(ours - rep)[1:-1].max()),
            "max_value": float(rep.max())})
    report["features_max"] = {k: max(r[k] for r in report["features"]) for k in report["features"][0]
                              if k not in ("file", "frames")}
    return report


def check_reader_against_tf(tf_npz: Path, root: Path) -> dict[str, float]:
    """Max |ours - TF's reader| over every variable of every model in the npz."""
    ref = np.load(tf_npz)
    out = {}
    for _, (folder, *_rest) in MODELS.items():
        keys = [k for k in ref.files if k.startswith(f"var_{folder}/")]
        if not keys:
            continue
        ours, _ = read_tf_checkpoint(f"{root / 'musicnn' / folder}/")
        if set(ours) != {k.split("/", 1)[1] for k in keys}:
            raise CheckpointError(f"{folder}: variable sets differ from TF's reader")
        out[folder] = max(float(np.abs(ours[k.split('/', 1)[1]] - ref[k]).max()) for k in keys)
    return out


def write_reference(tf_npz: Path, reference_audio: list[str], dest: Path, names: list[str], per_file: int = 2) -> None:
    """A small TF-free test fixture: a few input patches and TF's outputs on them."""
    ref = np.load(tf_npz)
    meta = json.loads(str(ref["meta"]))
    wanted = [str(Path(a).resolve()) for a in reference_audio]
    patches, sources, take = [], [], []
    for i, a in enumerate(meta["audio"]):
        if str(Path(a).resolve()) not in wanted:
            continue
        n = len(ref[f"patches_{i}"])
        idx = sorted({min(1, n - 1), n // 2})[:per_file]
        take.append((i, idx))
        patches.append(ref[f"patches_{i}"][idx].transpose(0, 2, 1))  # (k, 96, 187)
        licence = Path(a).with_name(Path(a).name.replace(".hq.ogg", ".txt"))
        for j in idx:
            sources.append({"file": Path(a).name, "patch": int(j), "start_s": j * 187 * 256 / 16000,
                            "licence": licence.read_text().strip() if licence.exists() else "see file"})
    arrays = {"patches": np.concatenate(patches).astype(np.float32)}
    for name in names:
        folder = MODELS[name][0]
        arrays[f"probs/{name}"] = np.concatenate([ref[f"probs_{folder}_{i}"][idx] for i, idx in take])
        arrays[f"emb/{name}"] = np.concatenate([ref[f"emb_{folder}_{i}"][idx] for i, idx in take])
    info = {"what": "musicnn==0.1.0 TF graph outputs on musicnn's own input patches (float16 log-mel, "
                    "187 x 96, stored transposed as (n, 96, 187))", "tensorflow": meta["tensorflow"],
            "librosa": meta["librosa"], "sources": sources, "made_by": "tools/convert_musicnn.py --write-reference"}
    arrays["info"] = np.array(json.dumps(info))
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dest, **arrays)
    log.info("wrote %s (%d patches, %.0f kB)", dest, len(arrays["patches"]), dest.stat().st_size / 1e3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, help="musicnn-0.1.0 wheel or its unpacked folder (default: pip download)")
    ap.add_argument("--out", type=Path, default=REPO / "src" / "genrescope" / "pretrained")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--skip-convert", action="store_true", help="only verify the files already in --out")
    ap.add_argument("--reexport", action="store_true",
                    help="only export the ONNX graphs again from the weights in --out (metadata kept), then stop")
    ap.add_argument("--verify", nargs="*", metavar="AUDIO", help="audio files to run TF and the port on")
    ap.add_argument("--tf-python", default="/work/tfvenv/bin/python", help="python of the TensorFlow venv")
    ap.add_argument("--tf-npz", type=Path, help="reuse outputs of tools/musicnn_tf_reference.py instead")
    ap.add_argument("--reference", nargs="*", default=[], metavar="AUDIO",
                    help="files (among --verify) whose patches go into --write-reference")
    ap.add_argument("--write-reference", type=Path)
    ap.add_argument("--report", type=Path, help="write the verification report as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.reexport:
        reexport(args.out, args.models)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root, sha = unpack_wheel(args.wheel, Path(tmp))
        if not args.skip_convert:
            convert(root, sha, args.out, args.models)
        if args.verify is None and args.tf_npz is None:
            return 0
        tf_npz = args.tf_npz
        if tf_npz is None:
            tf_npz = Path(tmp) / "tf.npz"
            subprocess.run([args.tf_python, str(REPO / "tools" / "musicnn_tf_reference.py"), "--out", str(tf_npz),
                            "--musicnn-dir", str(root / "musicnn"), *args.verify], check=True)
        report = verify(tf_npz, args.out, args.models)
        report["checkpoint_reader_vs_tf"] = check_reader_against_tf(tf_npz, root)
        summary = {k: report[k] for k in ("tensorflow", "librosa", "checkpoint_reader_vs_tf", "features_max")}
        summary["models"] = {n: r["max"] for n, r in report["models"].items()}
        print(json.dumps(summary, indent=1))
        if args.report:
            args.report.write_text(json.dumps(report, indent=1))
        if args.write_reference:
            write_reference(tf_npz, args.reference, args.write_reference, args.models)
        worst = max(r["max"]["tf_torch_probs"] for r in report["models"].values())
        worst_onnx = max(r["max"]["onnx_torch_probs"] for r in report["models"].values())
        ok = worst < 1e-4 and worst_onnx < 1e-5
        print(f"max |TF - PyTorch| probabilities {worst:.2e}, max |ONNX - PyTorch| {worst_onnx:.2e}: "
              f"{'OK' if ok else 'FAILED'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
