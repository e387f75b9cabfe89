"""``genrescope train``: one architecture on a labelled dataset or a feature table."""
from __future__ import annotations

import argparse

from genrescope.commands._args import add_cache, add_dataset_layout, add_progress

NAME = "train"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="train a model on a dataset (or a feature table)",
        description="Train one architecture (see `genrescope models`) on a labelled dataset, select the epoch on "
                    "the validation split, score the test split once, and write best.safetensors (+ .onnx), "
                    "last.safetensors, metrics.csv, learning_curves.png and the confusion matrix to --out. "
                    "Needs the train extra (PyTorch).",
        epilog="examples:\n  genrescope train ~/gtzan --model resnet-chunk --out runs/resnet"
               "\n  genrescope train --features-csv features_30_sec.csv --model features-mlp"
               "\n  genrescope train my_music/ --backbone musicnn-msd --finetune 2 --epochs 10"
               "\n  torchrun --nproc_per_node=2 -m genrescope train ~/gtzan --model cnn-gru",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="dataset folder or CSV manifest")
    p.add_argument("--model", default="resnet-chunk", help="architecture (default: %(default)s)")
    p.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the model config, e.g. dropout=0.5 or hidden=256,64 (repeatable)")
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (default: runs/MODEL)")
    p.add_argument("--features-csv", metavar="CSV", default=None,
                   help="train a table model (features-mlp) on a GTZAN-features-style CSV instead of audio")
    p.add_argument("--backbone", metavar="NAME", default=None,
                   help="transfer learning: train a small head on this pretrained model's window embeddings "
                        "(e.g. musicnn-msd); the head runs behind the backbone at prediction time")
    p.add_argument("--head", choices=("linear", "mlp"), default="linear",
                   help="with --backbone: a linear head or a one-hidden-layer MLP (default: %(default)s)")
    p.add_argument("--finetune", type=int, metavar="N", default=None,
                   help="with --backbone (a musicnn tagger): train the head end to end on log-mel windows "
                        "together with the backbone's last N blocks (0 = head only, 1 = + back end, 2-4 = + "
                        "mid-end layers, 5 = all); slower than the default head on cached embeddings")
    add_dataset_layout(p, seed=False)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30, help="maximum epochs (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=32, help="windows per batch (default: %(default)s)")
    g.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default: %(default)s)")
    g.add_argument("--patience", type=int, default=8, help="early stopping patience in epochs (default: %(default)s)")
    g.add_argument("--balance", choices=("weights", "sampler", "none"), default="weights",
                   help="class balance: weighted loss, balanced sampling or none (default: %(default)s)")
    g.add_argument("--windows-per-track", type=int, default=4,
                   help="training windows drawn per track per epoch (default: %(default)s)")
    g.add_argument("--augment", default="all",
                   help="comma list of crop,gain,specaugment,mixup, or all, or none (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of everything random, the split too (default: %(default)s)")
    g.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ... (default: %(default)s)")
    g.add_argument("--resume", action="store_true", help="continue a stopped run in --out from its last epoch")
    g.add_argument("--refit", action="store_true",
                   help="after selection, retrain on train + valid for the selected number of epochs "
                        "(written to OUT/refit/; the valid score reported is the one from before the refit)")
    f = p.add_argument_group("features")
    f.add_argument("--sr", type=int, default=None, help="sample rate (default: the model's)")
    f.add_argument("--n-mels", type=int, default=None, help="mel bands (default: the model's)")
    f.add_argument("--window-s", type=float, default=None, help="window length in seconds (default: the model's)")
    f.add_argument("--window-hop-s", type=float, default=None, help="window hop for evaluation (default: the model's)")
    add_cache(f)
    f.add_argument("-j", "--jobs", type=int, default=0, help="feature extraction processes (default: CPU cores)")
    add_progress(p, "progress bars")


def run(args) -> int:
    import dataclasses

    from genrescope.training.experiment import TrainRequest, run_train

    names = [f.name for f in dataclasses.fields(TrainRequest)]
    req = TrainRequest(**{n: getattr(args, n) for n in names})
    return run_train(dataclasses.replace(req, model_opt=tuple(req.model_opt)))
