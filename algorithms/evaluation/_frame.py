"""Binary classification metrics over a scored DataFrame, computed by Spark: no row reaches the driver.

The same figures as :func:`._binary.binary_metrics` (scikit-learn's AUC and KS):
rows are grouped by distinct score (positives and negatives per score), then
one ordered pass over those groups gives, for each score s, the positives and
negatives scoring below it. AUC = Σ_s pos_s·(neg_below_s + ½·neg_s) / (P·N)
(ties count one half, as in scikit-learn) and KS = max_s (TPR − FPR) at
threshold s. The ordered pass runs in one task, over distinct scores rather
than rows; only five numbers come back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def binary_metrics_frame(
    scored: DataFrame, threshold: float = 0.5, *, label: str = "label", score: str = "score"
) -> dict[str, float]:
    """AUC, KS and accuracy at ``threshold`` of a DataFrame with 0/1 ``label`` and ``score`` columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    positive = (F.col(label) == F.lit(1.0)).cast("long")
    per_score = scored.groupBy(score).agg(F.sum(positive).alias("pos"), F.sum(1 - positive).alias("neg"))
    below = Window.orderBy(score).rowsBetween(Window.unboundedPreceding, -1)
    cumulative = per_score.select(
        "pos", "neg",
        F.coalesce(F.sum("pos").over(below), F.lit(0)).alias("pos_below"),
        F.coalesce(F.sum("neg").over(below), F.lit(0)).alias("neg_below"),
    )
    totals = scored.agg(
        F.sum(positive).alias("P"), F.count("*").alias("n"),
        F.sum(((F.col(score) >= F.lit(threshold)) == (positive == 1)).cast("long")).alias("correct"),
    ).first()
    assert totals is not None  # an aggregation without grouping has one row
    n_pos, n_rows = int(totals["P"] or 0), int(totals["n"])
    n_neg = n_rows - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("binary metrics need both classes among the labels")
    tpr = (F.lit(n_pos) - F.col("pos_below")) / F.lit(n_pos)
    fpr = (F.lit(n_neg) - F.col("neg_below")) / F.lit(n_neg)
    curve = cumulative.agg(
        F.sum(F.col("pos") * (F.col("neg_below") + 0.5 * F.col("neg"))).alias("auc_pairs"),
        F.max(tpr - fpr).alias("ks"),
    ).first()
    assert curve is not None
    return {
        "auc": float(curve["auc_pairs"]) / (n_pos * n_neg),
        "ks": max(0.0, float(curve["ks"])),
        "accuracy": int(totals["correct"]) / n_rows,
        "n": n_rows,
    }
