"""``genrescope models``: the architectures one can train, or the shipped models."""
from __future__ import annotations

import json


def run_models(args) -> int:
    """``genrescope models``: print the registry with parameter counts (or, with
    ``--pretrained``, the shipped models and their provenance; no torch needed then)."""
    if getattr(args, "pretrained", False):
        return _print_pretrained(args.format)
    if getattr(args, "learnt", False):
        return _print_learnt(args.format)
    from genrescope.models import REGISTRY, list_models

    rows = list_models(n_classes=args.n_classes)
    if args.format == "json":
        print(json.dumps([{"name": r.name, "class": f"{r.cls.__module__}.{r.cls.__qualname__}", "params": r.n_params,
                           "kind": r.kind, "n_bins": r.n_bins, "window_s": r.window_s, "frames": r.frames}
                          for r in rows], indent=2))
        return 0
    print(f"{'name':<22}{'class':<17}{'input':<9}{'bins':>6}{'window':>8}{'params':>12}  frames")
    for r in rows:
        known = r.n_bins is not None
        win = "?" if not known else "song" if r.window_s is None else f"{r.window_s:g} s"
        print(f"{r.name:<22}{r.cls.__name__:<17}{r.kind:<9}{r.n_bins if known else '?':>6}{win:>8}{r.n_params:>12,}  "
              f"{'yes' if r.frames else ''}")
    missing = [n for n in REGISTRY if n not in {r.name for r in rows}]
    if missing:
        print(f"not available here: {', '.join(missing)}")
    return 0


def _print_pretrained(fmt: str) -> int:
    from genrescope.inference.registry import DEFAULT_MODEL, pretrained_info, pretrained_names

    infos = []
    for name in pretrained_names():
        info = pretrained_info(name)
        infos.append({"name": name, "default": name == DEFAULT_MODEL,
                      "labels": len(info.get("labels", [])) or None,
                      "description": info.get("description") or info.get("source", {}).get("description", ""),
                      "source": info.get("source"), "licence": info.get("license") or info.get("licence"),
                      "selection": info.get("selection"), "ensemble": info.get("ensemble")})
    if fmt == "json":
        print(json.dumps(infos, indent=2, default=str))
        return 0
    for i in infos:
        head = i["name"] + ("  (default)" if i["default"] else "")
        print(head)
        if i["ensemble"]:
            print(f"  ensemble of {' + '.join(i['ensemble'])}: mean tag probability per label")
        if i["labels"]:
            print(f"  {i['labels']} labels")
        if i["description"]:
            print(f"  {i['description']}")
        src = i["source"]
        if isinstance(src, dict):
            print("  source: " + ", ".join(f"{k}: {v}" for k, v in src.items() if isinstance(v, (str, int, float))))
        elif src:
            print(f"  source: {src}")
        if i["licence"]:
            print(f"  licence: {i['licence']}")
        print()
    return 0


def _print_learnt(fmt: str) -> int:
    """The learnt models in the models folder: name, labels, tracks, CV accuracy, date."""
    from genrescope.inference.registry import learnt_model_names, learnt_models_root

    root = learnt_models_root()
    infos = []
    for name in learnt_model_names():
        try:
            cfg = json.loads((root / name / "config.json").read_text())
        except (OSError, ValueError):
            continue
        cv = cfg.get("cv") or {}
        infos.append({"name": name, "path": str(root / name), "labels": cfg.get("labels", []),
                      "tracks": cv.get("tracks"), "accuracy": cv.get("accuracy"), "macro_f1": cv.get("macro_f1"),
                      "library": cfg.get("library"), "created": cfg.get("created")})
    if fmt == "json":
        print(json.dumps(infos, indent=2))
        return 0
    if not infos:
        print(f"no learnt models in {root} (genrescope learn PATH writes one there)")
        return 0
    print(f"learnt models in {root}:")
    for i in infos:
        acc = "?" if i["accuracy"] is None else f"{i['accuracy']:.3f}"
        print(f"{i['name']}\n  {len(i['labels'])} labels from {i['tracks']} tracks of {i['library']}; "
              f"CV accuracy {acc}; learnt {i['created']}\n  labels: {', '.join(i['labels'])}")
    return 0
