"""Join audio files end to end into one WAV (a medley, to see segments): the README's plot
and page screenshots are of `python tools/medley.py medley.wav` on four GTZAN excerpts.

    python tools/medley.py OUT.wav FILE [FILE ...] [--sr 22050]
"""
from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf

from genrescope.audio.decode import load_audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--sr", type=int, default=22050)
    args = ap.parse_args()
    ys = [load_audio(f, sr=args.sr) for f in args.files]
    sf.write(args.out, np.concatenate(ys), args.sr, subtype="PCM_16")
    t = 0.0
    for f, y in zip(args.files, ys):
        print(f"{t:7.2f} s  {f}")
        t += len(y) / args.sr
    print(f"{t:7.2f} s  end -> {args.out}")


if __name__ == "__main__":
    main()
