"""``genrescope learn``: a genre model learnt from the genre tags a library already carries."""
from __future__ import annotations

import argparse

from genrescope.commands._args import add_cache, add_progress

NAME = "learn"


def add_parser(sub) -> None:
    from genrescope.learn import MIN_PRECISION

    p = sub.add_parser(
        NAME, help="learn a genre model from the genre tags a library already carries",
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
    p.add_argument("--min-precision", type=float, default=MIN_PRECISION, metavar="P",
                   help="precision each label's writing threshold must reach (default: %(default)s)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=0, help="worker processes for embedding (default: 0 = every core)")
    add_cache(p)
    add_progress(p)


def run(args) -> int:
    import sys

    from genrescope.learn.from_library import learn_library

    learn_library(args.paths, args.out, labels=args.labels, aliases=args.aliases, min_tracks=args.min_tracks,
                  min_precision=args.min_precision, folds=args.folds, jobs=args.jobs,
                  progress=not args.no_progress and sys.stderr.isatty(), cache_root=args.cache)
    return 0
