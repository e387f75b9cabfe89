"""Model selection for the GTZAN-10 features model, on the FF split of the features table.

Every candidate is trained on the table's ``train`` rows and scored on ``valid`` (the
selection split). The table's test rows are held back elsewhere, so no test score is
printed here; `genrescope evaluate gtzan-features --features-csv TEST.csv` scores them.
Baselines from scikit-learn are run too when it is installed (it is not a dependency).

    python bench/tabular.py [--csv ../shared/data/gtzan/features_30_sec.ff-train-valid.csv]
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_CSV = HERE.parent.parent / "shared" / "data" / "gtzan" / "features_30_sec.ff-train-valid.csv"


def mlp_grid(data, fc, epochs: int):
    import torch

    from genrescope.models import default_config
    from genrescope.training.train import TrainConfig, fit
    import tempfile

    torch.set_num_threads(1)
    rows = []
    for hidden, dropout, wd, lr in itertools.product([(512, 256, 64), (256, 64), (128,)], [0.3, 0.5],
                                                     [1e-2, 1e-1], [1e-3, 3e-3]):
        mcfg = default_config("features-mlp", feature_config=fc, n_classes=data.n_classes, hidden=hidden,
                              dropout=dropout)
        cfg = TrainConfig(epochs=epochs, batch_size=32, lr=lr, weight_decay=wd, patience=20, seed=0,
                          balance="weights")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            res = fit("features-mlp", data, d, cfg=cfg, feature_config=fc, model_config=mcfg, progress=False)
        rows.append({"model": f"features-mlp hidden={','.join(map(str, hidden))} dropout={dropout} wd={wd} lr={lr}",
                     "valid_acc": res.valid["track_accuracy"], "valid_f1": res.valid["track_macro_f1"],
                     "best_epoch": res.best_epoch, "seconds": time.perf_counter() - t0})
        print(f"{rows[-1]['model']:<60} acc {rows[-1]['valid_acc']:.3f} F1 {rows[-1]['valid_f1']:.3f} "
              f"epoch {res.best_epoch}", file=sys.stderr, flush=True)
    return rows


def sklearn_baselines(Xtr, ytr, Xva, yva):
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC
    except ImportError:
        print("scikit-learn not installed: baselines skipped", file=sys.stderr)
        return []
    from genrescope.training.metrics import score

    cands = {f"logistic C={c}": make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)) for c in (0.1, 1.0)}
    cands.update({f"svm-rbf C={c}": make_pipeline(StandardScaler(), SVC(C=c)) for c in (1.0, 10.0)})
    cands["random-forest 500"] = RandomForestClassifier(500, random_state=0)
    cands["hist-gradient-boosting"] = HistGradientBoostingClassifier(random_state=0)
    rows = []
    labels = [str(i) for i in range(int(max(ytr.max(), yva.max())) + 1)]
    for name, est in cands.items():
        t0 = time.perf_counter()
        est.fit(Xtr, ytr)
        r = score(yva, est.predict(Xva), labels)
        rows.append({"model": name, "valid_acc": r.accuracy, "valid_f1": r.macro_f1, "best_epoch": None,
                     "seconds": time.perf_counter() - t0})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=str(DEFAULT_CSV))
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--no-mlp", action="store_true")
    args = ap.parse_args()
    if not Path(args.csv).is_file():
        print(f"skip: {args.csv} not found", file=sys.stderr)
        return 0
    from genrescope.training.experiment import load_table_data
    from genrescope.models import default_features

    fc = default_features("features-mlp")
    data = load_table_data(args.csv, fc)
    Xtr, Xva = np.stack(data.items["train"]), np.stack(data.items["valid"])
    rows = sklearn_baselines(Xtr, data.labels["train"], Xva, data.labels["valid"])
    if not args.no_mlp:
        rows += mlp_grid(data, fc, args.epochs)
    rows.sort(key=lambda r: -r["valid_f1"])
    print(f"{len(data.items['train'])} train rows, {len(data.items['valid'])} valid rows (FF split); "
          f"selection split = valid\n")
    print("| model | valid accuracy | valid macro-F1 | best epoch | seconds |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['valid_acc']:.3f} | {r['valid_f1']:.3f} | {r['best_epoch'] or ''} | "
              f"{r['seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
