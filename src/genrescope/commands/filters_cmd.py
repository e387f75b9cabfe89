"""``genrescope filters``: what each convolutional filter of a model responds to."""
from __future__ import annotations

NAME = "filters"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="what each convolutional filter of a model responds to",
                       description="For every filter of every convolutional layer of a PyTorch model (a checkpoint "
                                   "or a shipped model with weights), find the audio chunks of DATASET that activate "
                                   "it most, mapping time indices back through the convolutions and poolings to "
                                   "sample ranges, and write one short WAV per filter, a PNG grid of their "
                                   "spectrograms and an HTML index. Needs the train extra.",
                       epilog="example: genrescope filters musicnn-msd music/ -o filters/")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a .safetensors checkpoint or a shipped model name")
    p.add_argument("dataset", metavar="DATASET", help="audio files or folders to search")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="folder to write")
    p.add_argument("--top", type=int, default=1, help="chunks kept per filter (default: %(default)s)")
    p.add_argument("--max-files", type=int, default=50, help="files read at most (default: %(default)s)")


def run(args) -> int:
    from genrescope.insight.filters import run_filters

    return run_filters(args)
