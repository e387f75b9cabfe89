"""``genrescope compare``: one table of trained checkpoints' stored scores."""
from __future__ import annotations

NAME = "compare"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="a comparison table of trained checkpoints",
                       description="One row per checkpoint with the scores stored in it at training time "
                                   "(validation and test, track level), parameters and seconds per epoch.")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help=".safetensors checkpoints")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="output format")


def run(args) -> int:
    import csv
    import io

    from genrescope.training.evaluate import COMPARE_COLUMNS, compare_rows, format_markdown, rank_key

    rows = sorted(compare_rows(args.checkpoints), key=rank_key)
    if args.format == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(COMPARE_COLUMNS))
        w.writeheader()
        w.writerows(rows)
        print(buf.getvalue(), end="")
    else:
        print(format_markdown(rows))
    return 0
