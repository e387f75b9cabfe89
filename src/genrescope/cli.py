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


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="decode audio files and print duration, sample rate and a feature summary",
                       description="Decode each file and print its format, duration, sample rate, channels, "
                                   "loudness and a log-mel summary. A quick check that genrescope reads your audio.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files, folders or glob patterns")
    p.add_argument("--sr", type=int, default=22050, help="sample rate to analyse at (default: %(default)s)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(_run=("genrescope.inspect", "run_info"))


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
    p.add_argument("-j", "--jobs", type=int, default=0, help="worker processes (default: number of CPU cores)")
    p.add_argument("--sr", type=int, default=None, help="override the sample rate of the feature config")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(_run=("genrescope.cache", "run_features"))


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
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    p.set_defaults(_run=("genrescope.models", "run_models"))


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX and check it against PyTorch",
                       description="Write a checkpoint as one self-contained ONNX file (features in, genre "
                                   "probabilities out; feature config and labels in its metadata), then compare "
                                   "ONNX Runtime's outputs with PyTorch's on random input.",
                       epilog="example: genrescope export runs/resnet/best.safetensors --onnx resnet.onnx")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint written by genrescope")
    p.add_argument("--onnx", metavar="OUT", default=None, help="output file (default: CHECKPOINT with .onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--static-time", action="store_true", help="fix the time axis to one window")
    p.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch")
    p.set_defaults(_run=("genrescope.export", "run_export"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genrescope",
        description="Tell what genre a piece of music is, and how that belief moves through the song.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"genrescope {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_info(sub)
    _add_features(sub)
    _add_dataset(sub)
    _add_models(sub)
    _add_export(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genrescope`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    module, func = args._run
    from genrescope.errors import GenrescopeError

    try:
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
