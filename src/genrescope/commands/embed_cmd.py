"""``genrescope embed``: a pretrained backbone's embeddings of a dataset, per window and per track."""
from __future__ import annotations

from genrescope.commands._args import add_cache, add_dataset_layout, add_engine, add_progress

NAME = "embed"


def add_parser(sub) -> None:
    p = sub.add_parser(
        NAME, help="write pretrained-backbone embeddings of a dataset (per window and per track)",
        description="Run a pretrained backbone over every track of a dataset and write its embeddings: "
                    "windows.npy (one row per window) with windows.csv (track, label, split, start, end), and "
                    "tracks.npy (mean over windows) with tracks.csv; --parquet also writes Parquet files.")
    p.add_argument("dataset", metavar="DATASET", help="dataset folder or CSV manifest")
    p.add_argument("--backbone", default="musicnn-msd", help="shipped model to embed with (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", default="embeddings", help="output folder (default: %(default)s)")
    add_dataset_layout(p)
    p.add_argument("--parquet", action="store_true", help="also write windows.parquet and tracks.parquet (pyarrow)")
    add_cache(p)
    add_engine(p, "worker processes, each running the backbone on one file at a time")
    add_progress(p)


def run(args) -> int:
    import sys

    from genrescope.training.embed import write_embeddings

    r = write_embeddings(args.dataset, args.backbone, args.out, layout=args.layout, split=args.split, seed=args.seed,
                         fma_subset=args.fma_subset, cache=args.cache, jobs=args.jobs, engine=args.engine,
                         address=args.ray_address, parquet=args.parquet, progress=not args.no_progress)
    print(f"{r['tracks']} tracks, {r['windows']} windows, {r['dim']}-d {r['backbone']} embeddings -> {r['out']}/ "
          f"({', '.join(r['written'])})")
    for f in r["failed"]:
        print(f"unreadable: {f}", file=sys.stderr)
    return 1 if r["failed"] else 0
