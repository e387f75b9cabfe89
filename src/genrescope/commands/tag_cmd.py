"""``genrescope tag``: genres for a whole library: a report, and with --write the files' own tags."""
from __future__ import annotations

import argparse

from genrescope.commands._args import add_engine, add_model, add_progress, add_runtime

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
    add_model(p)
    add_runtime(p)
    add_engine(p)
    p.add_argument("--journal", metavar="FILE", default=None, help="journal file (default: REPORT.journal)")
    p.add_argument("--undo", metavar="REPORT", default=None,
                   help="restore the tag values REPORT says a run replaced, and nothing else; REPORT may also "
                        "be a run's journal (REPORT.journal), which a killed run leaves behind")
    add_progress(p)


def options_from(args):
    """The run's :class:`~genrescope.library.core.TagOptions`, checked."""
    from genrescope.errors import GenrescopeError
    from genrescope.library.core import TagOptions

    if args.top < 1:
        raise GenrescopeError(f"--top {args.top}: must be 1 or more")
    if not 0.0 <= args.min_confidence <= 1.0:
        raise GenrescopeError(f"--min-confidence {args.min_confidence}: must be between 0 and 1")
    if args.windows < 0:
        raise GenrescopeError(f"--windows {args.windows}: must be 0 (all) or more")
    return TagOptions(model=args.model, top=args.top, min_confidence=args.min_confidence, windows=args.windows,
                      write=args.write, overwrite=args.overwrite, runtime=args.runtime,
                      write_damaged=args.write_damaged)


def run(args) -> int:
    """Exit code 1 when any file failed."""
    from genrescope.errors import GenrescopeError
    from genrescope.library.tag_run import tag_library

    if args.undo:
        from genrescope.library.undo import run_undo

        return run_undo(args.undo, journal=args.journal)
    if not args.paths:
        raise GenrescopeError("tag: give the folders or files to tag (or --undo REPORT)")
    opts = options_from(args)
    run_kw = run_options_from(args)
    return finish(tag_library(args.paths, opts, **run_kw), opts.write, run_kw["report_path"])


def run_options_from(args) -> dict:
    """The keyword arguments of :func:`~genrescope.library.tag_run.tag_library` besides the paths and options."""
    from genrescope.library.tag_run import DEFAULT_REPORT

    return dict(report_path=args.report or DEFAULT_REPORT, journal=args.journal, engine=args.engine, jobs=args.jobs,
                ray_address=args.ray_address, progress=not args.no_progress)


def finish(records: list[dict], write: bool, report_path: str) -> int:
    """Say what the run found (warnings, failures, a summary) on stderr; exit code 1 when any file failed."""
    import sys

    failed = [r for r in records if r["status"] == "failed"]
    for r in records:
        if r["status"] == "damaged":  # its note holds the decode warnings too
            print(f"genrescope: warning: {r['path']}: {r['note']}", file=sys.stderr)
            continue
        for w in r.get("warnings") or []:
            print(f"genrescope: warning: {w}", file=sys.stderr)
    for r in failed:
        print(f"genrescope: {r['error']}", file=sys.stderr)
    print(_summary(records, write, report_path), file=sys.stderr)
    return 1 if failed else 0


def _summary(records: list[dict], write: bool, report_path: str) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    dry = "" if write else " (dry run: nothing written; add --write)"
    exp = [r["expected_precision"] for r in records if r.get("expected_precision") is not None]
    sure = (f"; {len(exp)} genres {'written' if write else 'to write'} at the learnt thresholds, "
            f"expected precision {sum(exp) / len(exp):.2f}") if exp else ""
    return f"{len(records)} files: {parts}{dry}{sure}; report: {report_path}"
