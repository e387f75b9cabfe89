"""``genrescope evaluate``: score a model on a dataset split or a feature table."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from genrescope.commands._args import add_dataset_layout, add_progress, add_runtime

NAME = "evaluate"
SCORED_SPLITS = ("train", "valid", "test")


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="score a model on a dataset split or a feature table",
        description="Track-level and window-level accuracy and macro-F1, per-class precision and recall and the "
                    "confusion matrix, on a split the model was not selected on (default: test). The output says "
                    "which split and how many tracks; accuracy and macro-F1 are the last two lines.",
        epilog="examples:\n  genrescope evaluate runs/resnet/best.safetensors ~/gtzan --eval-split test"
               "\n  genrescope evaluate gtzan-features --features-csv held_out.csv --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="shipped model name, checkpoint or ONNX file")
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="dataset folder or CSV manifest")
    p.add_argument("--features-csv", metavar="CSV", default=None, help="score a table model on this CSV")
    p.add_argument("--eval-split", default=None, choices=SCORED_SPLITS,
                   help="which split to score (dataset default: test; CSV default: every row)")
    add_dataset_layout(p)
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.add_argument("--plots", metavar="DIR", default=None, help="write the confusion matrix PNG here")
    add_runtime(p)
    p.add_argument("-j", "--jobs", type=int, default=1, help="files in parallel (default: %(default)s)")
    add_progress(p, "progress counter")


def run(args) -> int:
    from genrescope.inference.runtimes import load_inference_model
    from genrescope.training.evaluate import evaluate_table

    model = load_inference_model(args.model, runtime=args.runtime)
    if args.features_csv:
        rep = evaluate_table(model, args.features_csv, args.eval_split)
        where = f"{args.features_csv}" + (f" (split {args.eval_split})" if args.eval_split else "")
        if args.format == "json":
            print(json.dumps({"model": model.name, "data": where, **rep.to_dict()}, indent=2, allow_nan=False))
        else:
            print(f"model {model.name} on {where}: {rep.n} rows\n")
            print(rep.format())
            print(f"\naccuracy {rep.accuracy:.4f}\nmacro-F1 {rep.macro_f1:.4f}")
        return 0
    from genrescope.errors import GenrescopeError

    if not args.dataset:
        raise GenrescopeError("give a DATASET, or --features-csv TABLE.csv")
    return _evaluate_dataset(args)


def _evaluate_dataset(args) -> int:
    from genrescope.datasets import load_dataset
    from genrescope.inference.predict import Predictor
    from genrescope.training.evaluate import evaluate_dataset, plot_confusion

    split = args.eval_split or "test"
    manifest = load_dataset(args.dataset, layout=args.layout, split=args.split, seed=args.seed,
                            fma_subset=args.fma_subset)
    predictor = Predictor(args.model, runtime=args.runtime)
    res = evaluate_dataset(predictor, manifest, split, jobs=args.jobs, progress=not args.no_progress)
    if split == "valid":
        print(f"note: if {args.model} was trained by genrescope, the valid split chose its epoch; its score there "
              f"is optimistic. Use --eval-split test.", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"model": predictor.name, "split": split, "tracks": res["tracks"],
                          "accuracy": res["track"].accuracy, "macro_f1": res["track"].macro_f1, "n": res["tracks"],
                          "window": res["window"].to_dict(), "track": res["track"].to_dict(),
                          "failed": res["failed"]}, indent=2, allow_nan=False))
    else:
        print(f"model {predictor.name} on split '{split}' of {args.dataset}: {res['tracks']} tracks"
              + (f", {len(res['failed'])} unreadable" if res["failed"] else "") + "\n")
        print("track level:\n" + res["track"].format())
        print(f"\nwindow level: accuracy {res['window'].accuracy:.4f}, macro-F1 {res['window'].macro_f1:.4f} "
              f"(n={res['window'].n})")
        print(f"\naccuracy {res['track'].accuracy:.4f}\nmacro-F1 {res['track'].macro_f1:.4f}")
    if args.plots:
        out = Path(args.plots)
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion(res["track"], out / f"confusion_{split}.png", f"{predictor.name}: {split}, track level")
    return 0
