"""Would int8 make the default taggers faster? ONNX Runtime's quantizers against float32.

With the ``fast`` extra installed, the float32 graph (bfloat16 where the CPU has it) and the
static int8 graph also run on OpenVINO (its int8 kernels use AVX-512 VNNI where present).

For a shipped musicnn tagger, builds two int8 versions with onnxruntime.quantization:
  * static: QDQ, per-channel int8 weights, uint8 activations calibrated (min/max) on the
    windows of half the GTZAN clips in ../shared/data (generated music if absent);
  * dynamic: uint8 Conv weights, activations quantized per call;
then times each against the float32 graph in the same run (one core, one thread, 8-window
batches, best of --repeat) and reports how far their tag probabilities move on the windows
of the other half.

    python bench/quantize.py [--model musicnn-msd] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
try:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
except (AttributeError, OSError):
    pass

import numpy as np  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def windows(paths, fc) -> np.ndarray:
    from genrescope.audio.decode import load_audio
    from genrescope.features.spectrogram import log_mel
    from genrescope.features.windows import slice_windows

    return np.concatenate([slice_windows(log_mel(load_audio(p, sr=fc.sr), fc), fc)[0] for p in paths])


def audio(tmp: Path) -> list:
    files = sorted((SHARED / "gtzan").glob("**/*.wav"))
    if len(files) >= 4:
        return files
    import soundfile as sf

    from genrescope.testing import synth_music

    out = []
    for i in range(8):
        out.append(tmp / f"g{i}.wav")
        sf.write(str(out[-1]), synth_music(30.0, 22050, seed=i), 22050)
    return out


def ms_per_window(sess, x: np.ndarray, repeat: int) -> float:
    sess.run(None, {"features": x})
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run(None, {"features": x})
        best = min(best, time.perf_counter() - t0)
    return best / len(x) * 1e3


class _OpenVino:
    """An OpenVINO session answering ONNX Runtime's ``run(None, {"features": x})``."""

    def __init__(self, path: Path):
        from genrescope.inference.backends import OpenVinoSession

        self.session = OpenVinoSession(path, threads=1)

    def run(self, names, feed: dict) -> list:
        return self.session.run(names, feed["features"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="musicnn-msd")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from genrescope.inference.onnx_model import OnnxModel
    from genrescope.inference.registry import resolve_model_path

    src = resolve_model_path(args.model)[1]
    fc = OnnxModel(src).feature_config
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        files = audio(d)
        calib, test = windows(files[::2], fc), windows(files[1::2], fc)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter([{"features": calib[i:i + 8]} for i in range(0, len(calib), 8)])

            def get_next(self):
                return next(self.batches, None)

        quant_pre_process(str(src), str(d / "pre.onnx"))
        quantize_static(str(d / "pre.onnx"), str(d / "static.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        quantize_dynamic(str(d / "pre.onnx"), str(d / "dynamic.onnx"), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["Conv"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sessions = {name: ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                    for name, path in (("float32", src), ("int8 static (QDQ)", d / "static.onnx"),
                                       ("int8 dynamic", d / "dynamic.onnx"))}
        from genrescope.inference.backends import available_backends

        if "openvino" in available_backends():
            for name, path in (("openvino, float32 graph", src), ("openvino, int8 static (QDQ)", d / "static.onnx")):
                ov = _OpenVino(path)
                sessions[f"{name} ({ov.session.precision} where not int8)"] = ov
        ref = sessions["float32"].run(None, {"features": test})[0]
        print(f"model {args.model}; calibration {len(calib)} windows, test {len(test)} windows; one core\n")
        print("| graph | ms / window | speed vs float32 | max abs prob change | mean abs change | top tag agrees |")
        print("|---|---|---|---|---|---|")
        base = None
        for name, sess in sessions.items():
            ms = ms_per_window(sess, test[:8], args.repeat)
            base = base or ms
            p = sess.run(None, {"features": test})[0]
            print(f"| {name} | {ms:.1f} | {base / ms:.2f}x | {np.abs(p - ref).max():.4f} | {np.abs(p - ref).mean():.4f} "
                  f"| {(p.argmax(1) == ref.argmax(1)).mean():.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
