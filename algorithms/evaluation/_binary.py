"""Binary classification metrics reported after training (guest side: it holds the labels)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score, roc_curve


def binary_metrics(
    labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, KS (max TPR − FPR) and accuracy at ``threshold``."""
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("binary metrics need both classes among the labels")
    fpr, tpr, _ = roc_curve(y, s)
    return {
        "auc": float(roc_auc_score(y, s)),
        "ks": float(np.max(tpr - fpr)),
        "accuracy": float(np.mean((s >= threshold) == (y == 1.0))),
        "n": int(len(y)),
    }
