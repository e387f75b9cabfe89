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
    from genrescope.errors import GenrescopeError

    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise GenrescopeError("genrescope filters needs PyTorch: pip install 'genrescope[train]'") from e
    from genrescope.audio.files import find_audio_files
    from genrescope.insight.filters import find_top_chunks, load_torch_model, write_report

    files = find_audio_files([args.dataset])[: args.max_files]
    if not files:
        raise GenrescopeError(f"{args.dataset}: no audio files found")
    model, cfg, _ = load_torch_model(args.checkpoint)
    kind = getattr(getattr(model, "config", None), "kind", "log_mel")
    if kind not in ("log_mel", "stft", "mfcc"):
        raise GenrescopeError(f"{args.checkpoint}: filters need a spectrogram model, not {kind!r} input")
    results = find_top_chunks(model, cfg, files, kind=kind, top=args.top)
    index = write_report(results, args.output, cfg, f"{args.checkpoint} over {len(files)} files of {args.dataset}; "
                         "each chunk is the filter's receptive field around its highest activation")
    n = sum(len(v) for v in results.values())
    constant = sum(not chunks for v in results.values() for chunks in v)
    print(f"{len(results)} conv layers, {n} filters ({constant} with a constant output, so no chunk), "
          f"{len(files)} files -> {index}")
    return 0
