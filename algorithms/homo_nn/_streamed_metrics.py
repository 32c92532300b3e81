"""Binary metrics folded batch by batch, so scoring a client's table never gathers its scores.

Accuracy and the row count are exact counts. AUC and KS come from a histogram of
the scores over ``BINS`` equal bins of [0, 1] (per class): pairs whose scores
share a bin count as ties, so AUC differs from the exact value by at most half
the share of (positive, negative) pairs that share a bin, and KS is taken at
bin edges. At 2^16 bins that is far below what either metric is read to.
The memory is the two histograms (1 MiB), whatever the table's size.
"""

from __future__ import annotations

import numpy as np

BINS = 1 << 16


class BinaryCounts:
    """Counts for AUC, KS and accuracy at ``threshold`` of scores P(y=1) in [0, 1]."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self.positive = np.zeros(BINS, dtype=np.int64)
        self.negative = np.zeros(BINS, dtype=np.int64)
        self.correct = 0
        self.n = 0

    def add(self, labels: np.ndarray, scores: np.ndarray) -> None:
        y = np.asarray(labels, dtype=np.float64) == 1.0
        s = np.asarray(scores, dtype=np.float64)
        bins = np.clip((s * BINS).astype(np.int64), 0, BINS - 1)
        self.positive += np.bincount(bins[y], minlength=BINS)
        self.negative += np.bincount(bins[~y], minlength=BINS)
        self.correct += int(np.count_nonzero((s >= self.threshold) == y))
        self.n += len(s)

    def metrics(self) -> dict[str, float]:
        """``auc``, ``ks``, ``accuracy``, ``n``, as :func:`fedspark.algorithms.evaluation.binary_metrics` names them."""
        pos, neg = int(self.positive.sum()), int(self.negative.sum())
        if pos == 0 or neg == 0:
            raise ValueError("binary metrics need both classes among the labels")
        below = np.cumsum(self.negative) - self.negative  # negatives in lower bins
        auc = float((self.positive * (below + 0.5 * self.negative)).sum()) / (pos * neg)
        tpr = np.cumsum(self.positive[::-1]) / pos  # share scored at or above each bin, from the top
        fpr = np.cumsum(self.negative[::-1]) / neg
        return {"auc": auc, "ks": float(np.max(tpr - fpr)), "accuracy": self.correct / self.n, "n": self.n}
