"""``genrescope tag``: genres for a whole library: a report, and with --write the files' own tags."""
from __future__ import annotations

import argparse

from genrescope.commands._args import add_engine, add_progress, add_runtime

NAME = "tag"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="genres for a whole music library: a report, and with --write the files' own genre tags",
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
    p.add_argument("--write-damaged", action="store_true",
                   help="with --write, also write files whose audio decodes to less than half of what their "
                        "header promises (default: reported as damaged and left alone)")
    p.add_argument("--overwrite", action="store_true", help="replace genre tags the files already have")
    p.add_argument("--top", type=int, default=1, help="genres to write per file (default: %(default)s)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                   help="write only genres with at least this probability (default: %(default)s)")
    p.add_argument("--windows", type=int, default=0, metavar="N",
                   help="analyse N windows spread evenly over each song instead of all (default: 0 = all)")
    p.add_argument("-m", "--model", default="default", help="shipped model name, checkpoint, ONNX file or model folder")
    add_runtime(p)
    add_engine(p)
    p.add_argument("--journal", metavar="FILE", default=None, help="journal file (default: REPORT.journal)")
    p.add_argument("--undo", metavar="REPORT", default=None,
                   help="restore the tag values REPORT says a run replaced, and nothing else; REPORT may also "
                        "be a run's journal (REPORT.journal), which a killed run leaves behind")
    add_progress(p)


def run(args) -> int:
    from genrescope.library.command import run_tag

    return run_tag(args)
