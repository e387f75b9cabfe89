"""Command-line interface: argument parsing only.

Each subcommand's work lives in the module it belongs to (``run_*`` functions that take
the parsed arguments); they are imported only when that subcommand runs, so ``--help``
stays fast and never imports numpy-heavy or torch code.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from genrescope import __version__

EPILOG = "Run 'genrescope COMMAND --help' for the options of one command."


def _add_engine(p, jobs_help: str = "worker processes") -> None:
    """--engine, --ray-address and -j: one definition for tag, embed and features."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local worker processes, or a Ray cluster (pip install 'genrescope[ray]')")
    p.add_argument("--ray-address", "--address", dest="ray_address", default=None, metavar="ADDR",
                   help="with --engine ray: an existing cluster, HOST:6379 (default: start a local one)")
    p.add_argument("-j", "--jobs", type=int, default=0,
                   help=f"{jobs_help} (default: 0 = every CPU core; with --engine ray, every CPU of the cluster)")


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="decode audio files and print duration, sample rate and a feature summary",
                       description="Decode each file and print its format, duration, sample rate, channels, "
                                   "loudness and a log-mel summary. A quick check that genrescope reads your audio.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files, folders or glob patterns")
    p.add_argument("--sr", type=int, default=22050, help="sample rate to analyse at (default: %(default)s)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(_run=("genrescope.insight.info", "run_info"))


def _add_features(sub) -> None:
    p = sub.add_parser(
        "features", help="compute features: a per-file table to stdout, or a dataset into the feature cache",
        description="With --format, print one row of features per file to stdout (e.g. --set gtzan-table "
                    "--format csv reproduces the 57 columns of the GTZAN features table). Without --format, "
                    "extract --set for every audio file under PATH into the feature cache, in parallel, "
                    "resuming where a previous run stopped. Cache entries are keyed by file content and "
                    "feature config (<cache>/<set>-<config key>/<aa>/<hash>.npy, a float32 (bins, frames) "
                    "array each), so renamed files are not re-extracted. Unreadable files are reported on "
                    "stderr and skipped; the exit code is 1 if any failed.",
        epilog="examples: genrescope features song.mp3 --set gtzan-table --format csv; "
               "genrescope features music/ --set log-mel -j 4")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or glob patterns")
    p.add_argument("--set", dest="feature_set", default="log-mel",
                   choices=("log-mel", "mfcc", "stft", "gtzan-table"),
                   help="which features (default: %(default)s)")
    p.add_argument("--format", choices=("csv", "json"), default=None,
                   help="print a table to stdout (json: one object per line) instead of filling the cache. "
                        "log-mel/mfcc/stft rows are filename, n_frames, duration_s, then the mean and std over "
                        "time of every band (mel0_mean, mel0_std, ...); gtzan-table rows are filename and the "
                        "57 GTZAN columns, and gtzan-table needs --format. Does not read or write the cache")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="feature cache folder (default: $GENRESCOPE_CACHE or ~/.cache/genrescope/features)")
    _add_engine(p)
    p.add_argument("--sr", type=int, default=None, help="override the sample rate of the feature config")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_run=("genrescope.features.command", "run_features"))


def _add_dataset(sub) -> None:
    p = sub.add_parser("dataset", help="inspect a dataset: counts per class and split, duration, bad files",
                       description="Work with labelled music collections (a folder per genre, GTZAN, FMA or a "
                                   "CSV manifest).")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    i = dsub.add_parser("info", help="counts per class and split, total duration, unreadable files",
                        description="Load a dataset, split it, and print the number of tracks per class and "
                                    "split, the total duration and any file that cannot be read.")
    i.add_argument("path", metavar="PATH", help="dataset root folder or CSV manifest")
    i.add_argument("--layout", default="auto", choices=("auto", "folders", "gtzan", "fma", "csv"),
                   help="dataset layout (default: detect)")
    i.add_argument("--split", default="auto",
                   help="split policy: auto, gtzan-ff (fault-filtered), stratified, artist, fma-official, "
                        "given (a CSV's split column), none "
                        "(default: the dataset's own, else stratified by track and artist)")
    i.add_argument("--fma-subset", default=None, choices=("small", "medium", "large", "full"),
                   help="FMA subset to keep (default: from the audio folder name)")
    i.add_argument("--seed", type=int, default=0, help="seed of random splits (default: %(default)s)")
    i.add_argument("--no-check", action="store_true", help="skip decoding headers to find unreadable files")
    i.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    i.set_defaults(_run=("genrescope.datasets.info", "run_dataset_info"))


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the model architectures with their inputs and parameter counts",
                       description="List every registered architecture: its input (feature kind, bins, window) "
                                   "and parameter count for the default feature config.")
    p.add_argument("--n-classes", type=int, default=10, help="output classes to count for (default: %(default)s)")
    p.add_argument("--pretrained", action="store_true",
                   help="list the models shipped with genrescope (usable by name anywhere a checkpoint is "
                        "accepted) and their provenance instead")
    p.add_argument("--learnt", action="store_true",
                   help="list the models learnt with `genrescope learn` in the models folder ($GENRESCOPE_MODELS "
                        "or ~/.local/share/genrescope/models), usable as --model NAME")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(_run=("genrescope.inference.listing", "run_models"))


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX (checked against PyTorch), or the page to a "
                                      "static site with --web",
                       description="Write a checkpoint as one self-contained ONNX file (features in, genre "
                                   "probabilities out; feature config and labels in its metadata), then compare "
                                   "ONNX Runtime's outputs with PyTorch's on random input.",
                       epilog="examples: genrescope export runs/resnet/best.safetensors --onnx resnet.onnx; "
                              "genrescope export --web site/ --model musicnn-msd")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", default=None,
                   help="a .safetensors checkpoint written by genrescope (with --web: one more model to include)")
    p.add_argument("--onnx", metavar="OUT", default=None, help="output file (default: CHECKPOINT with .onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--static-time", action="store_true", help="fix the time axis to one window")
    p.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch")
    p.add_argument("--web", metavar="DIR", default=None,
                   help="instead, write a static copy of the web page into DIR that analyses files entirely in "
                        "the browser (Web Audio, the model's features in a worker, onnxruntime-web); serve DIR "
                        "with any static file server, e.g. python -m http.server -d DIR")
    p.add_argument("-m", "--model", action="append", default=None, metavar="NAME",
                   help="with --web: a shipped model name or ONNX file to include (repeatable; default: the "
                        "default model)")
    p.set_defaults(_run=("genrescope.serve.webexport", "run_export_cli"))


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="genres of audio files, with confidence and a timeline",
        description="Predict the genres of each file (folders and glob patterns are expanded) with the default "
                    "shipped model unless --model says otherwise. A tagger's probabilities are independent tag "
                    "probabilities and need not sum to one. A file that cannot be read is reported and the others "
                    "go on; a truncated or damaged file is predicted on what decodes, with a warning; the exit "
                    "code is 1 if any file failed.",
        epilog="examples:\n  genrescope predict song.mp3\n  genrescope predict ~/Music --format json --timeline > out.json"
               "\n  genrescope predict song.flac --model gtzan-features",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or glob patterns")
    from genrescope.inference.registry import DEFAULT_MODEL  # names only: no model, no heavy import

    p.add_argument("-m", "--model", default="default",
                   help=f"shipped model name, checkpoint (.safetensors) or ONNX file (default: {DEFAULT_MODEL})")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)")
    p.add_argument("--top", type=int, default=5, help="genres to show per file (default: %(default)s; 0 = all)")
    p.add_argument("--timeline", nargs="?", const="-", default=None, metavar="CSV",
                   help="include the per-window probabilities: in the JSON, or printed, or saved to CSV if a "
                        "path is given (with several files, PATH may contain {stem})")
    p.add_argument("--tags", action="store_true", help="also show the tagger's non-genre tags (moods, eras, ...)")
    p.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="inference runtime (default: onnx)")
    _add_backend(p)
    p.add_argument("-j", "--jobs", type=int, default=0, help="files in parallel (default: number of CPU cores)")
    p.add_argument("--threads", type=int, default=None, help="threads per model call (default: runtime's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress counter on stderr")
    p.add_argument("--segments", action="store_true",
                   help="also give a few labelled stretches (\"0:00-1:12 rock, 1:12-2:40 electronic\"): the timeline "
                        "decoded by Viterbi with a cost per change of genre, for mixes, radio and medleys")
    p.add_argument("--saliency", action="store_true",
                   help="also give which seconds drove the top genres (occlusion: each half second silenced in "
                        "turn; costs about 6 extra model runs per window)")
    p.set_defaults(_run=("genrescope.inference.output", "run_predict"))


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model on a dataset (or a feature table)",
        description="Train one architecture (see `genrescope models`) on a labelled dataset, select the epoch on "
                    "the validation split, score the test split once, and write best.safetensors (+ .onnx), "
                    "last.safetensors, metrics.csv, learning_curves.png and the confusion matrix to --out.",
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
    p.add_argument("--layout", default="auto", choices=("auto", "folders", "gtzan", "fma", "csv"),
                   help="dataset layout (default: detect)")
    p.add_argument("--split", default="auto", help="split policy, as in `dataset info` (default: auto)")
    p.add_argument("--fma-subset", default=None, choices=("small", "medium", "large", "full"), help="FMA subset")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30, help="maximum epochs (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=32, help="windows per batch (default: %(default)s)")
    g.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default: %(default)s)")
    g.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default: %(default)s)")
    g.add_argument("--patience", type=int, default=8, help="early stopping patience in epochs (default: %(default)s)")
    g.add_argument("--balance", choices=("weights", "sampler", "none"), default="weights",
                   help="class balance: weighted loss, balanced sampling or none (default: %(default)s)")
    g.add_argument("--windows-per-track", type=int, default=0,
                   help="training windows drawn per track per epoch (default: 4)")
    g.add_argument("--augment", default="all",
                   help="comma list of crop,gain,specaugment,mixup, or all, or none (default: all)")
    g.add_argument("--seed", type=int, default=0, help="seed of everything random (default: %(default)s)")
    g.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ...")
    g.add_argument("--resume", action="store_true", help="continue a stopped run in --out from its last epoch")
    g.add_argument("--refit", action="store_true",
                   help="after selection, retrain on train + valid for the selected number of epochs "
                        "(written to OUT/refit/; the valid score reported is the one from before the refit)")
    f = p.add_argument_group("features")
    f.add_argument("--sr", type=int, default=None, help="sample rate (default: the model's)")
    f.add_argument("--n-mels", type=int, default=None, help="mel bands (default: the model's)")
    f.add_argument("--window-s", type=float, default=None, help="window length in seconds (default: the model's)")
    f.add_argument("--window-hop-s", type=float, default=None, help="window hop for evaluation (default: the model's)")
    f.add_argument("--cache", metavar="DIR", default=None, help="feature cache folder")
    f.add_argument("-j", "--jobs", type=int, default=0, help="feature extraction processes (default: CPU cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(_run=("genrescope.training.experiment", "run_train"))


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a model on a dataset split or a feature table",
        description="Track-level and window-level accuracy and macro-F1, per-class precision and recall and the "
                    "confusion matrix, on a split the model was not selected on (default: test). The output says "
                    "which split and how many tracks; accuracy and macro-F1 are the last two lines.",
        epilog="examples:\n  genrescope evaluate runs/resnet/best.safetensors ~/gtzan --split test"
               "\n  genrescope evaluate gtzan-features --features-csv held_out.csv --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="shipped model name, checkpoint or ONNX file")
    p.add_argument("dataset", nargs="?", metavar="DATASET", help="dataset folder or CSV manifest")
    p.add_argument("--features-csv", metavar="CSV", default=None, help="score a table model on this CSV")
    p.add_argument("--split", default=None,
                   help="which split to score (dataset default: test; CSV default: every row)")
    p.add_argument("--layout", default="auto", choices=("auto", "folders", "gtzan", "fma", "csv"), help="dataset layout")
    p.add_argument("--split-policy", default="auto", help="how the dataset is split (as `dataset info --split`)")
    p.add_argument("--seed", type=int, default=0, help="seed of a random split (default: %(default)s)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    p.add_argument("--plots", metavar="DIR", default=None, help="write the confusion matrix PNG here")
    p.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="inference runtime (default: onnx)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="files in parallel (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress counter")
    p.set_defaults(_run=("genrescope.training.evaluate", "run_evaluate"))


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="a comparison table of trained checkpoints",
                       description="One row per checkpoint with the scores stored in it at training time "
                                   "(validation and test, track level), parameters and seconds per epoch.")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help=".safetensors checkpoints")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="output format")
    p.set_defaults(_run=("genrescope.training.evaluate", "run_compare"))


def _add_embed(sub) -> None:
    p = sub.add_parser(
        "embed", help="write pretrained-backbone embeddings of a dataset (per window and per track)",
        description="Run a pretrained backbone over every track of a dataset and write its embeddings: "
                    "windows.npy (one row per window) with windows.csv (track, label, split, start, end), and "
                    "tracks.npy (mean over windows) with tracks.csv; --parquet also writes Parquet files.")
    p.add_argument("dataset", metavar="DATASET", help="dataset folder or CSV manifest")
    p.add_argument("--backbone", default="musicnn-msd", help="shipped model to embed with (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", default="embeddings", help="output folder (default: %(default)s)")
    p.add_argument("--layout", default="auto", choices=("auto", "folders", "gtzan", "fma", "csv"), help="dataset layout")
    p.add_argument("--split", default="auto", help="split policy recorded with each row (default: auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of a random split")
    p.add_argument("--parquet", action="store_true", help="also write windows.parquet and tracks.parquet (pyarrow)")
    p.add_argument("--cache", metavar="DIR", default=None, help="feature cache folder")
    _add_engine(p, "worker processes, each running the backbone on one file at a time")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_run=("genrescope.training.embed", "run_embed"))


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="one PNG: waveform, spectrogram, mel, MFCC and a model's genre timeline",
                       description="Draw a file's waveform, power spectrogram, mel spectrogram and MFCCs and, with "
                                   "--model, its genre timeline underneath, aligned in time, as one PNG. The features "
                                   "use the model's own feature config. Needs matplotlib (the train extra).",
                       epilog="example: genrescope plot song.mp3 --model musicnn-msd --segments -o song.png")
    p.add_argument("file", metavar="FILE", help="an audio file")
    p.add_argument("-m", "--model", default=None, help="shipped model name or model file: add its genre timeline")
    p.add_argument("-o", "--output", metavar="PNG", required=True, help="the PNG to write")
    p.add_argument("--segments", action="store_true", help="mark the labelled segments on the timeline")
    p.add_argument("--saliency", action="store_true", help="shade the top genre's occlusion saliency")
    p.set_defaults(_run=("genrescope.insight.plot", "run_plot"))


def _add_filters(sub) -> None:
    p = sub.add_parser("filters", help="what each convolutional filter of a model responds to",
                       description="For every filter of every convolutional layer of a PyTorch model (a checkpoint "
                                   "or a shipped model with weights), find the audio chunks of DATASET that activate "
                                   "it most, mapping time indices back through the convolutions and poolings to "
                                   "sample ranges, and write one short WAV per filter, a PNG grid of their "
                                   "spectrograms and an HTML index. Needs the train extra.",
                       epilog="example: genrescope filters musicnn-msd music/ -o filters/")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint or a shipped model name")
    p.add_argument("dataset", metavar="DATASET", help="audio files or folders to search")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="folder to write")
    p.add_argument("--top", type=int, default=1, help="chunks kept per filter (default: %(default)s)")
    p.add_argument("--max-files", type=int, default=50, help="files read at most (default: %(default)s)")
    p.set_defaults(_run=("genrescope.insight.filters", "run_filters"))


def _add_backend(p) -> None:
    """--backend and --precision, as predict and serve take them."""
    p.add_argument("--backend", choices=("onnxruntime", "openvino"), default="onnxruntime",
                   help="engine of the ONNX export: onnxruntime (default, exact float32) or openvino "
                        "(pip install 'genrescope[fast]'; bfloat16 where the CPU has it)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="arithmetic of --backend openvino (default: auto = bf16 where the CPU has it); "
                        "every answer states what ran")


def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve", help="the web app: upload a song or use the microphone, see its genres move over time",
        description="Start a local web server with a page that analyses an uploaded file (summary, playback, the "
                    "current genre mix and a timeline of every genre) or listens to the microphone, plus the "
                    "HTTP API the page uses (documented at /docs). Needs the web extra: "
                    "pip install 'genrescope[web]'.",
        epilog="example: genrescope serve --port 8000 --model-dir runs/")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; browsers allow the "
                        "microphone only on localhost or https)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    p.add_argument("-m", "--model", default="default",
                   help="model the page starts with: default, a shipped name or a file in --model-dir")
    p.add_argument("--model-dir", metavar="DIR", default=None,
                   help="also offer every ONNX export (with --runtime torch: checkpoint) found under DIR")
    p.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="inference runtime (default: onnx)")
    _add_backend(p)
    g = p.add_argument_group("limits")
    g.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload in MiB (default: %(default)s)")
    g.add_argument("--max-duration", type=float, default=1800.0, help="longest audio in seconds (default: %(default)s)")
    g.add_argument("--max-jobs", type=int, default=0, help="files analysed at once (default: CPU cores, at most 4)")
    g.add_argument("--max-queue", type=int, default=16,
                   help="uploads that may wait for a free worker before the server answers 429 (default: %(default)s)")
    g.add_argument("--threads", type=int, default=None, help="threads per model call (default: cores / max-jobs)")
    g.add_argument("--max-live", type=int, default=4, help="microphone streams at once (default: %(default)s)")
    g.add_argument("--live-seconds", type=float, default=6.0,
                   help="seconds of microphone audio each live estimate looks at (default: %(default)s)")
    g.add_argument("--live-interval", type=float, default=1.0,
                   help="seconds between live estimates (default: %(default)s)")
    g.add_argument("--tmp-dir", metavar="DIR", default=None,
                   help="where the private upload folder is made (default: the system's temporary folder)")
    g.add_argument("--max-connections", type=int, default=None,
                   help="open HTTP connections; idle ones make room for new ones (default: 256)")
    g.add_argument("--job-timeout", type=float, default=None, help="seconds one analysis may run (default: 300)")
    g.add_argument("--max-models", type=int, default=None, help="models kept loaded at once (default: 4)")
    g.add_argument("--max-job-mb", type=float, default=None,
                   help="memory one analysis may use in MiB: estimated from the header, measured in its worker "
                        "process while it runs (default: 1024)")
    g = p.add_argument_group("browser origins")
    g.add_argument("--allow-host", metavar="NAME", action="append", default=None,
                   help="a host name clients may use for this server (repeatable; default: localhost, "
                        "the --host address and any IP address)")
    g.add_argument("--allow-origin", metavar="ORIGIN", action="append", default=None,
                   help="another website (https://example.org, or *) whose pages may POST and open the "
                        "live socket (repeatable; default: only the server's own pages)")
    p.set_defaults(_run=("genrescope.serve", "run_serve"))


def _add_tag(sub) -> None:
    p = sub.add_parser(
        "tag", help="genres for a whole music library: a report, and with --write the files' own genre tags",
        description="Walk folders (nested, mixed formats), predict every track's genres and write a report (CSV, "
                    "or JSON lines for .jsonl: path, genres with confidence, model, duration, what was or would "
                    "be written, the previous tag values, error). Dry run unless --write: then the top genres go "
                    "into the files' genre tags (ID3 TCON, Vorbis GENRE, MP4 genre atom) plus a GENRESCOPE field "
                    "with the scores and the model, crash-safely and without touching the audio. A journal beside "
                    "the report lets a rerun of the same command skip finished files. Unreadable files are "
                    "reported and skipped; the exit code is 1 if any failed.",
        epilog="examples:\n  genrescope tag ~/Music --report tags.csv\n  genrescope tag ~/Music --report tags.csv "
               "--write\n  genrescope tag --undo tags.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders, audio files or glob patterns")
    p.add_argument("--report", metavar="REPORT", default=None,
                   help="report file, .csv or .jsonl (default: genrescope-tag.csv)")
    p.add_argument("--write", action="store_true", help="write the tags into the files (default: dry run)")
    p.add_argument("--overwrite", action="store_true", help="replace genre tags the files already have")
    p.add_argument("--top", type=int, default=1, help="genres to write per file (default: %(default)s)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                   help="write only genres with at least this probability (default: %(default)s)")
    p.add_argument("--windows", type=int, default=0, metavar="N",
                   help="analyse N windows spread evenly over each song instead of all (default: 0 = all)")
    p.add_argument("-m", "--model", default="default", help="shipped model name, checkpoint or ONNX file")
    p.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="inference runtime (default: onnx)")
    _add_engine(p)
    p.add_argument("--journal", metavar="FILE", default=None, help="journal file (default: REPORT.journal)")
    p.add_argument("--undo", metavar="REPORT", default=None,
                   help="restore the tag values REPORT says a run replaced, and nothing else")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_run=("genrescope.library.command", "run_tag"))


def _add_learn(sub) -> None:
    p = sub.add_parser(
        "learn", help="learn a genre model from the genre tags a library already carries",
        description="Read the genres the files already carry (or their folders, or a CSV), tidy them into one "
                    "taxonomy (printed with the tracks per label), learn a head on both musicnn taggers with "
                    "artist-grouped nested cross-validation, and write a model folder usable as --model DIR by "
                    "predict, tag, serve, plot and export. `tag --model DIR --write` then writes a genre only "
                    "where the learnt per-label threshold says it is sure.",
        epilog="examples:\n  genrescope learn ~/Music --out ~/models/mine\n  genrescope tag ~/Music --model "
               "~/models/mine --write\n  genrescope learn ~/Crates --labels folders --aliases aliases.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders, audio files or glob patterns")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="model folder to write (default: the models folder, named after the first PATH)")
    p.add_argument("--labels", default="tags", metavar="tags|folders|FILE.csv",
                   help="where the genres come from: the files' genre tags (default), the folder holding each "
                        "file, or a CSV of path,genre rows")
    p.add_argument("--aliases", metavar="FILE", default=None,
                   help="alias file: one 'Label = Other Label' (or 'Label =' to drop it) per line")
    p.add_argument("--min-tracks", type=int, default=3, metavar="N",
                   help="labels with fewer tracks are listed and left out (default: %(default)s)")
    p.add_argument("--min-precision", type=float, default=0.8, metavar="P",
                   help="precision each label's writing threshold must reach (default: %(default)s)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=0, help="worker processes for embedding (default: 0 = every core)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="embedding cache folder (default: $GENRESCOPE_CACHE or ~/.cache/genrescope/features)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_run=("genrescope.learn.command", "run_learn"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genrescope",
        description="Tell what genre a piece of music is, and how that belief moves through the song.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"genrescope {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_predict(sub)
    _add_info(sub)
    _add_features(sub)
    _add_dataset(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_compare(sub)
    _add_embed(sub)
    _add_models(sub)
    _add_export(sub)
    _add_serve(sub)
    _add_plot(sub)
    _add_filters(sub)
    _add_tag(sub)
    _add_learn(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Audio warnings (damaged, silent) as one line each, like the errors; others as Python shows them."""
    from genrescope.errors import DamagedAudioWarning, SilentAudioWarning

    if issubclass(category, (DamagedAudioWarning, SilentAudioWarning)):
        print(f"genrescope: warning: {message}", file=file or sys.stderr)
    else:
        import warnings

        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrescope`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    module, func = args._run
    import warnings

    from genrescope.errors import GenrescopeError

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(getattr(importlib.import_module(module), func)(args) or 0)
    except GenrescopeError as e:
        print(f"genrescope: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genrescope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
