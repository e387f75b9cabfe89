"""``genrescope plot``: one PNG of a file's waveform, spectrograms and genre timeline."""
from __future__ import annotations

NAME = "plot"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="one PNG: waveform, spectrogram, mel, MFCC and a model's genre timeline",
                       description="Draw a file's waveform, power spectrogram, mel spectrogram and MFCCs and, with "
                                   "--model, its genre timeline underneath, aligned in time, as one PNG. The features "
                                   "use the model's own feature config. Needs matplotlib (the train extra).",
                       epilog="example: genrescope plot song.mp3 --model musicnn-msd --segments -o song.png")
    p.add_argument("file", metavar="FILE", help="an audio file")
    p.add_argument("-m", "--model", default=None, help="shipped model name or model file: add its genre timeline "
                   "(--segments and --saliency use the default model, genre10, unless --model says otherwise)")
    p.add_argument("-o", "--output", metavar="PNG", required=True, help="the PNG to write")
    p.add_argument("--segments", action="store_true", help="mark the labelled segments on the timeline")
    p.add_argument("--saliency", action="store_true", help="shade the top genre's occlusion saliency")


def run(args) -> int:
    from genrescope.insight.plot import plot_file

    out = plot_file(args.file, args.output, model=args.model, segments=args.segments, saliency=args.saliency)
    print(f"wrote {out}")
    return 0
