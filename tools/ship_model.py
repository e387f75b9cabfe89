"""Copy a trained run into the package as a shipped model, with its provenance.

    python tools/ship_model.py RUN_DIR NAME [--description TEXT]

Copies RUN_DIR/best.safetensors -> src/genrescope/pretrained/NAME/checkpoint.safetensors and
RUN_DIR/best.onnx -> .../model.onnx, and writes config.json from the checkpoint's metadata
(model, labels, feature config, dataset, split, metrics, command).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("name")
    ap.add_argument("--description", default="")
    ap.add_argument("--extra-json", default=None, help="a JSON file merged into config.json (e.g. selection results)")
    args = ap.parse_args()
    from genrescope.models.checkpoint import read_metadata
    from genrescope.inference.onnx_model import OnnxModel

    run = Path(args.run)
    ckpt, onnx = run / "best.safetensors", run / "best.onnx"
    meta = read_metadata(ckpt)
    OnnxModel(onnx)  # must load
    dest = ROOT / "src" / "genrescope" / "pretrained" / args.name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ckpt, dest / "checkpoint.safetensors")
    shutil.copyfile(onnx, dest / "model.onnx")
    keep = ("model_name", "labels", "feature_config", "model_config", "dataset", "split", "metrics", "command",
            "selection", "note", "train_config", "created", "genrescope_version", "epoch")
    config = {"name": args.name, "description": args.description, **{k: meta[k] for k in keep if k in meta}}
    if args.extra_json:
        config.update(json.loads(Path(args.extra_json).read_text()))
    (dest / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    print(f"shipped {args.name}: {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
