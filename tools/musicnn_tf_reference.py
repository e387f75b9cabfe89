"""Run the ORIGINAL musicnn TensorFlow graphs on real audio and save what they see and say.

This script runs in a throwaway TensorFlow environment, never in genrescope's own:

    python3 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" "librosa==0.9.2" soundfile
    /work/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    /work/tfvenv/bin/python tools/musicnn_tf_reference.py --out /tmp/musicnn_tf.npz AUDIO...

For each file it computes musicnn's own input (``musicnn.extractor.batch_data``: librosa
at 16 kHz, mel power cast to float16, ``log10(10000 x + 1)``, 187-frame patches without
overlap) and feeds those patches to each TF model, built by ``musicnn.models`` exactly
as ``musicnn.extractor`` builds it. Unlike the original, a failed checkpoint restore is
an error, not a silent run on random weights. ``tools/convert_musicnn.py --verify``
compares the saved outputs with the PyTorch and ONNX ports.

Saved arrays (``<i>`` indexes the audio files, ``<model>`` is e.g. ``MSD_musicnn``):

- ``y16_<i>``: the 16 kHz waveform librosa decoded (float32)
- ``rep_<i>``: musicnn's log-mel, (frames, 96), float16 as musicnn makes it
- ``rep32_<i>``: the same computed without the float16 cast, float32
- ``rep32_reflect_<i>``: the same with reflect padding (librosa < 0.9's default, which
  musicnn was trained and released with; librosa >= 0.9 pads with zeros)
- ``patches_<i>``: the network input, (n, 187, 96) float32
- ``probs_<model>_<i>``, ``emb_<model>_<i>``: sigmoid outputs and embeddings
  (musicnn: "penultimate"; vgg: pool5 flattened in TF's (time, mel, channel) order)
- ``var_<model>/<name>``: every non-optimiser checkpoint variable, read by TF itself
"""
from __future__ import annotations

import argparse
import inspect
import json
import os

import librosa
import numpy as np
import tensorflow as tf
from musicnn import configuration as mconfig
from musicnn import extractor as mextractor  # disables eager execution, as musicnn does
from musicnn import models as mmodels

MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
N_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1, as extractor computes
BATCH = 16


def musicnn_input(path: str) -> dict[str, np.ndarray]:
    """musicnn's own spectrogram and patches of one file, plus the waveform behind them."""
    patches, rep = mextractor.batch_data(path, N_FRAMES, N_FRAMES)
    y, sr = librosa.load(path, sr=mconfig.SR)  # the call batch_data makes
    out = {"y16": y.astype(np.float32), "rep": rep, "patches": patches.astype(np.float32)}
    for key, pad in (("rep32", {}), ("rep32_reflect", {"pad_mode": "reflect"})):
        mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=mconfig.FFT_HOP, n_fft=mconfig.FFT_SIZE,
                                             n_mels=mconfig.N_MELS, **pad).T
        out[key] = np.log10(10000 * mel.astype(np.float32) + 1)
    return out


def run_model(model: str, musicnn_dir: str, patches: list[np.ndarray]) -> tuple[list, list, dict]:
    """(probs per file, embeddings per file, checkpoint variables) of one TF model."""
    labels = mconfig.MTT_LABELS if "MTT" in model else mconfig.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, mconfig.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        out = mmodels.define_model(x, is_training, model, len(labels))
        probs = tf.nn.sigmoid(out[0])
        emb = tf.compat.v1.layers.flatten(out[5]) if "vgg" in model else out[8]  # pool5 / penultimate
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver().restore(sess, os.path.join(musicnn_dir, model) + "/")  # raises on failure
    graph_vars = {v.name.split(":")[0] for v in tf.compat.v1.global_variables()}
    reader = tf.compat.v1.train.NewCheckpointReader(os.path.join(musicnn_dir, model) + "/")  # a prefix, not the dir
    ckpt_vars = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                 if "Adam" not in k and not k.startswith("beta")}
    if graph_vars != set(ckpt_vars):
        raise RuntimeError(f"{model}: graph and checkpoint variables differ: {graph_vars ^ set(ckpt_vars)}")
    p_all, e_all = [], []
    for pt in patches:
        ps, es = [], []
        for i in range(0, len(pt), BATCH):
            p, e = sess.run([probs, emb], feed_dict={x: pt[i:i + BATCH], is_training: False})
            ps.append(p)
            es.append(e)
        p_all.append(np.concatenate(ps))
        e_all.append(np.concatenate(es))
    sess.close()
    return p_all, e_all, ckpt_vars


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("audio", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--musicnn-dir", default=os.path.dirname(mmodels.__file__),
                    help="folder holding the MSD_musicnn/... checkpoint folders")
    args = ap.parse_args()
    arrays: dict[str, np.ndarray] = {}
    inputs = []
    for i, path in enumerate(args.audio):
        d = musicnn_input(path)
        inputs.append(d["patches"])
        arrays.update({f"{k}_{i}": v for k, v in d.items()})
        print(f"{path}: {len(d['y16']) / 16000:.1f} s, {len(d['patches'])} patches, "
              f"{int(np.isinf(d['rep']).sum())} inf in the float16 log-mel", flush=True)
    for model in args.models:
        p_all, e_all, ckpt_vars = run_model(model, args.musicnn_dir, inputs)
        for i, (p, e) in enumerate(zip(p_all, e_all)):
            arrays[f"probs_{model}_{i}"], arrays[f"emb_{model}_{i}"] = p, e
        arrays.update({f"var_{model}/{k}": v for k, v in ckpt_vars.items()})
        print(f"{model}: done, {len(ckpt_vars)} variables", flush=True)
    pad_default = inspect.signature(librosa.stft).parameters["pad_mode"].default
    meta = {"audio": args.audio, "models": args.models, "tensorflow": tf.__version__, "librosa_pad_mode": pad_default,
            "librosa": librosa.__version__, "numpy": np.__version__, "n_frames": N_FRAMES}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(args.out, **arrays)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
