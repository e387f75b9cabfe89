"""``genrescope dataset info``: counts per class and split, duration, unreadable files."""
from __future__ import annotations

import json

from genrescope.commands._args import add_dataset_layout

NAME = "dataset"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="inspect a dataset: counts per class and split, duration, bad files",
                       description="Work with labelled music collections (a folder per genre, GTZAN, FMA or a "
                                   "CSV manifest).")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    i = dsub.add_parser("info", help="counts per class and split, total duration, unreadable files",
                        description="Load a dataset, split it, and print the number of tracks per class and "
                                    "split, the total duration and any file that cannot be read.")
    i.add_argument("path", metavar="PATH", help="dataset root folder or CSV manifest")
    add_dataset_layout(i)
    i.add_argument("--no-check", action="store_true", help="skip decoding headers to find unreadable files")
    i.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args) -> int:
    """Returns 0 whenever the dataset loads, whatever files it finds unreadable; a dataset that
    cannot be loaded at all raises :class:`~genrescope.errors.DatasetError`."""
    from genrescope.datasets import load_dataset
    from genrescope.datasets.dataset_report import dataset_report, format_report

    manifest = load_dataset(args.path, args.layout, split=args.split, seed=args.seed, fma_subset=args.fma_subset)
    report = dataset_report(manifest, check=not args.no_check)
    print(json.dumps(report, indent=2) if args.format == "json" else format_report(report))
    return 0
