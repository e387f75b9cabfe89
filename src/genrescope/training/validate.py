"""Scoring a model in training on one split: window probabilities, then window- and
track-level accuracy and macro-F1 (the numbers selection and the logs use)."""
from __future__ import annotations

import numpy as np
import torch

from genrescope.training.data import TrainData
from genrescope.training.metrics import score


def predict_tracks(model: torch.nn.Module, data: TrainData, split: str, device: torch.device,
                   batch_size: int = 64) -> tuple[list[np.ndarray], np.ndarray]:
    """Window probabilities of every track of a split (eval mode, no augmentation)."""
    model.eval()
    out = []
    with torch.no_grad():
        for windows in data.track_windows(split):
            probs = []
            for i in range(0, len(windows), batch_size):
                xb = torch.from_numpy(windows[i:i + batch_size]).to(device)
                probs.append(torch.softmax(model(xb).float(), dim=-1).cpu().numpy())
            out.append(np.concatenate(probs))
    return out, data.labels_of(split)


def evaluate_split(model, data: TrainData, split: str, device, aggregate: str = "mean") -> dict:
    """Window- and track-level accuracy and macro-F1 on one split."""
    from genrescope.features.windows import aggregate as agg

    window_probs, y = predict_tracks(model, data, split, device)
    track_probs = [agg(p, aggregate) for p in window_probs]
    track_pred = np.array([p.argmax() for p in track_probs])
    # the mean negative log-probability of each track's true class: breaks ties in selection
    track_nll = float(np.mean([-np.log(max(float(p[t]), 1e-12)) for p, t in zip(track_probs, y)])) if len(y) else 0.0
    win_true = np.concatenate([np.full(len(p), t) for p, t in zip(window_probs, y)])
    win_pred = np.concatenate([p.argmax(1) for p in window_probs])
    track = score(y, track_pred, data.classes)
    window = score(win_true, win_pred, data.classes)
    return {"split": split, "tracks": int(len(y)), "windows": int(len(win_true)),
            "track_accuracy": track.accuracy, "track_macro_f1": track.macro_f1,
            "window_accuracy": window.accuracy, "window_macro_f1": window.macro_f1,
            "track_nll": track_nll, "report": track}
