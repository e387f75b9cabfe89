"""``genrescope export``: a checkpoint to ONNX (checked against PyTorch), or the page to a static site."""
from __future__ import annotations

import json

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="export a checkpoint to ONNX (checked against PyTorch), or the page to a "
                                  "static site with --web",
                       description="Write a checkpoint as one self-contained ONNX file (features in, genre "
                                   "probabilities out; feature config and labels in its metadata), then compare "
                                   "ONNX Runtime's outputs with PyTorch's on random input.",
                       epilog="examples: genrescope export runs/resnet/best.safetensors --onnx resnet.onnx; "
                              "genrescope export --web site/ --model musicnn-msd")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", default=None,
                   help="a .safetensors checkpoint written by genrescope (with --web: one more model to include)")
    p.add_argument("--onnx", metavar="OUT", default=None, help="output file (default: CHECKPOINT with .onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--static-time", action="store_true", help="fix the time axis to one window")
    p.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch")
    p.add_argument("--web", metavar="DIR", default=None,
                   help="instead, write a static copy of the web page into DIR that analyses files entirely in "
                        "the browser (Web Audio, the model's features in a worker, onnxruntime-web); serve DIR "
                        "with any static file server, e.g. python -m http.server -d DIR")
    p.add_argument("-m", "--model", action="append", default=None, metavar="NAME",
                   help="with --web: a shipped model name, ONNX file or model folder to include (repeatable; "
                        "default: the default model)")


def run(args) -> int:
    if args.web:
        return _web(args)
    from genrescope.errors import GenrescopeError

    if not args.checkpoint:
        raise GenrescopeError("export: give a CHECKPOINT to export to ONNX, or --web DIR")
    from genrescope.training.export import PARITY_TOLERANCE, export_checkpoint

    om, diff = export_checkpoint(args.checkpoint, args.onnx, opset=args.opset, dynamic_time=not args.static_time,
                                 check=not args.no_check)
    print(f"wrote {om.path} ({om.path.stat().st_size / 1e6:.1f} MB): {om!r}")
    if diff is None:
        return 0
    ok = diff <= PARITY_TOLERANCE
    print(f"parity with PyTorch: max |diff| = {diff:.2e} ({'ok' if ok else f'ABOVE {PARITY_TOLERANCE:g}'})")
    return 0 if ok else 1


def _web(args) -> int:
    from genrescope.serve.webexport import MANIFEST, export_web

    models = list(args.model or []) + ([args.checkpoint] if args.checkpoint else [])
    out = export_web(args.web, models or ["default"])
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = json.loads((out / "webmodels" / MANIFEST).read_text())
    print(f"wrote {out} ({total / 1e6:.1f} MB): models {', '.join(m['id'] for m in manifest['models'])}")
    print(f"serve it with any static file server, e.g.: python -m http.server -b 127.0.0.1 -d {out} 8000")
    return 0
