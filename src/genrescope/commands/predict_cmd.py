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
    p.add_argument("--threads", type=int, default=None,
                   help="run one model call at a time on N threads (default: one-thread calls side by side, one "
                        "per core)")
    add_progress(p, "progress counter")
    p.add_argument("--segments", action="store_true",
                   help="also give a few labelled stretches (\"0:00-1:12 rock, 1:12-2:40 electronic\"): the timeline "
                        "decoded by Viterbi with a cost per change of genre, for mixes, radio and medleys")
    p.add_argument("--saliency", action="store_true",
                   help="also give which seconds drove the top genres (occlusion: each half second silenced in "
                        "turn; costs about 6 extra model runs per window)")


def run(args) -> int:
    import os
    import sys

    from genrescope.audio.files import find_audio_files
    from genrescope.errors import GenrescopeError
    from genrescope.inference.predict import Predictor, predict_files
    from genrescope.inference.runtimes import numpy_blas_one_thread

    if args.timeline == "-" and args.format == "csv":
        raise GenrescopeError("--format csv --timeline: give the timeline a file of its own (--timeline "
                              "timeline.csv, or tl_{stem}.csv for several files); stdout holds the genre rows")
    numpy_blas_one_thread()  # the cores go to the model runtime's own threads
    files = find_audio_files(args.paths)
    if not files:
        raise GenrescopeError(f"no audio files found in {' '.join(map(str, args.paths))}")
    jobs = max(1, min(args.jobs or (os.cpu_count() or 1), len(files)))
    predictor = Predictor(args.model, runtime=args.runtime, threads=args.threads or (1 if jobs > 1 else None),
                          backend=args.backend, precision=args.precision)
    show_progress = not args.no_progress and len(files) > 1 and sys.stderr.isatty()
    preds = predict_files(predictor, files, jobs=jobs, progress=show_progress)
    extras: dict = {}
    if args.segments or args.saliency:
        from genrescope.insight.annotate import annotate_predictions

        extras = annotate_predictions(predictor, preds, segments=args.segments, saliency=args.saliency)
    _print(args, preds, extras)
    _report_problems(args, preds)
    return 1 if any(p.error for p in preds) else 0


def _print(args, preds, extras: dict) -> None:
    import sys

    from genrescope.inference import output as out

    inline = args.timeline == "-"
    if args.format == "json":
        print(out.json_text([{**out.prediction_object(p, timeline=inline, top=args.top, tags=args.tags),
                              **extras.get(id(p), {})} for p in preds]))
    elif args.format == "csv":
        print(out.predictions_csv(preds, args.top), end="")
    else:
        from genrescope.insight.annotate import format_annotations

        for p in preds:
            print(out.format_table(p, args.top, args.tags)
                  + (format_annotations(extras[id(p)]) if id(p) in extras else ""))
            if inline:
                print(out.format_timeline_table(p))
    if args.timeline is not None and not inline:
        ok = [p for p in preds if p.error is None]
        for p, path in zip(ok, out.timeline_paths(args.timeline, ok)):
            path.write_text(out.timeline_csv(p))
            print(f"timeline of {p.path} -> {path}", file=sys.stderr)


def _report_problems(args, preds) -> None:
    import sys

    for p in preds:
        for note in p.warnings:
            print(f"genrescope: warning: {note}", file=sys.stderr)
    if args.format != "table":
        for p in preds:
            if p.error:
                print(f"genrescope: {p.error}", file=sys.stderr)
