"""The Dirichlet split of one table into virtual clients: seeded, complete, non-IID, none empty."""

from __future__ import annotations

import numpy as np

from fedspark.algorithms.homo_nn._split import dirichlet_split


def test_split_is_seeded_complete_and_skewed() -> None:
    labels = np.repeat([0.0, 1.0], [300, 300])
    owner = dirichlet_split(labels, clients=20, alpha=0.3, seed=5)
    assert np.array_equal(owner, dirichlet_split(labels, clients=20, alpha=0.3, seed=5))
    counts = np.bincount(owner, minlength=20)
    assert counts.sum() == 600 and counts.min() >= 2
    positive_share = np.array([labels[owner == c].mean() for c in range(20)])
    assert positive_share.std() > 0.2  # label skew: far from every client holding half positives


def test_large_alpha_is_close_to_iid() -> None:
    labels = np.repeat([0.0, 1.0], [3000, 3000])
    owner = dirichlet_split(labels, clients=10, alpha=1000.0, seed=1)
    positive_share = np.array([labels[owner == c].mean() for c in range(10)])
    assert np.all(np.abs(positive_share - 0.5) < 0.05)
