"""``genrescope predict``: genres of files, with confidence, a timeline, segments and saliency."""
from __future__ import annotations

import argparse

from genrescope.commands._args import add_backend, add_model, add_progress, add_runtime

NAME = "predict"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="genres of audio files, with confidence and a timeline",
        description="Predict the genres of each file (folders and glob patterns are expanded) with the default "
                    "shipped model unless --model says otherwise. A tagger's probabilities are independent tag "
                    "probabilities and need not sum to one. A file that cannot be read is reported and the others "
                    "go on; a truncated or damaged file is predicted on what decodes, with a warning; the exit "
                    "code is 1 if any file failed.",
        epilog="examples:\n  genrescope predict song.mp3\n  genrescope predict ~/Music --format json --timeline > out.json"
               "\n  genrescope predict song.flac --model gtzan-features",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders or glob patterns")
    add_model(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)")
    p.add_argument("--top", type=int, default=5, help="genres to show per file (default: %(default)s; 0 = all)")
    p.add_argument("--timeline", nargs="?", const="-", default=None, metavar="CSV",
                   help="include the per-window probabilities: in the JSON, or printed, or saved to CSV if a "
                        "path is given (with several files, PATH may contain {stem})")
    p.add_argument("--tags", action="store_true", help="also show the tagger's non-genre tags (moods, eras, ...)")
    add_runtime(p)
    add_backend(p)
    p.add_argument("-j", "--jobs", type=int, default=0, help="files in parallel (default: number of CPU cores)")
    p.add_argument("--threads", type=int, default=None, help="threads per model call (default: runtime's choice)")
    add_progress(p, "progress counter")
    p.add_argument("--segments", action="store_true",
                   help="also give a few labelled stretches (\"0:00-1:12 rock, 1:12-2:40 electronic\"): the timeline "
                        "decoded by Viterbi with a cost per change of genre, for mixes, radio and medleys")
    p.add_argument("--saliency", action="store_true",
                   help="also give which seconds drove the top genres (occlusion: each half second silenced in "
                        "turn; costs about 6 extra model runs per window)")


def run(args) -> int:
    from genrescope.inference.output import run_predict

    return run_predict(args)
