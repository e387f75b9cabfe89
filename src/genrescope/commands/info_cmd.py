"""``genrescope info``: decode files and print what genrescope reads in them."""
from __future__ import annotations

import json


NAME = "info"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="decode audio files and print duration, sample rate and a feature summary",
                       description="Decode each file and print its format, duration, sample rate, channels, "
                                   "loudness and a log-mel summary. A quick check that genrescope reads your audio.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files, folders or glob patterns")
    p.add_argument("--sr", type=int, default=22050, help="sample rate to analyse at (default: %(default)s)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


def run(args) -> int:
    from genrescope.audio.files import find_audio_files
    from genrescope.errors import GenrescopeError
    from genrescope.insight.summary import format_summary, summarize

    files = find_audio_files(args.files)
    if not files:
        raise GenrescopeError(f"no audio files found in {' '.join(args.files)}")
    rows, failed = [], 0
    for f in files:
        try:
            rows.append(summarize(f, sr=args.sr))
        except GenrescopeError as e:
            failed += 1
            rows.append({"path": str(f), "error": str(e)})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print("\n".join(format_summary(r) for r in rows), end="")
    return 1 if failed else 0
