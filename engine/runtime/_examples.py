"""Example tables for users, generated on demand instead of committed.

The repository ships no data files. ``fedspark examples`` writes the two
tables of FATE's public vertical breast-cancer example, rebuilt from the copy
of the Wisconsin breast-cancer table that scikit-learn bundles (no download):
each of the 30 columns standardised (z-score, population std) and rounded to
6 decimals; the guest holds ``id``, the label ``y`` (1 = benign, as in
scikit-learn and in FATE's file) and columns 20-29 as ``x0..x9``; the host
holds ``id`` and columns 0-19 as ``x0..x19``; ``id`` is the row's index in
scikit-learn's table. The output equals FATE's files
(``breast_hetero_guest.csv`` / ``breast_hetero_host.csv``) byte for byte, so
results on generated data compare with FATE's published runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedspark.common import DataError

GUEST_FILE = "breast_hetero_guest.csv"
HOST_FILE = "breast_hetero_host.csv"
HOMO_FILES = {"guest": "breast_homo_guest.csv", "host": "breast_homo_host.csv", "test": "breast_homo_test.csv"}
_HOMO_ROWS = {"guest": (0, 227), "host": (227, 455), "test": (455, 569)}

_GUEST_COLUMNS = range(20, 30)
_HOST_COLUMNS = range(0, 20)

# Row order of FATE's files: a permutation of scikit-learn's 569 row indices.
# It does not come from numpy's RandomState/default_rng permutations, Python's
# random.shuffle or scikit-learn's shuffle/train_test_split with small seeds
# (searched), so it is written out here; it is 569 row indices, not data.
_PUBLIC_ROW_ORDER: tuple[int, ...] = (
    133, 273, 175, 551, 199, 274, 420, 76, 315, 399, 238, 246, 253, 550, 208, 185, 156, 0, 70,
    293, 287, 222, 262, 309, 534, 54, 172, 484, 102, 458, 495, 158, 160, 292, 493, 394, 528,
    335, 311, 25, 522, 512, 230, 548, 213, 390, 275, 219, 236, 336, 20, 193, 200, 83, 376, 295,
    77, 441, 109, 319, 349, 89, 419, 562, 370, 546, 49, 412, 417, 440, 482, 291, 198, 542, 320,
    94, 116, 429, 518, 323, 248, 280, 391, 462, 406, 416, 411, 474, 96, 232, 354, 240, 378, 177,
    33, 251, 224, 186, 85, 422, 104, 461, 142, 380, 123, 428, 396, 66, 170, 481, 313, 53, 296,
    114, 243, 140, 152, 268, 91, 255, 559, 14, 100, 353, 543, 165, 43, 201, 108, 328, 439, 162,
    325, 183, 197, 498, 477, 421, 374, 470, 382, 510, 132, 545, 121, 45, 333, 134, 182, 519,
    207, 99, 366, 180, 318, 501, 229, 7, 247, 494, 174, 340, 125, 209, 347, 332, 361, 500, 300,
    283, 107, 131, 303, 567, 507, 3, 516, 143, 398, 530, 119, 259, 450, 192, 514, 241, 402, 148,
    395, 299, 149, 60, 61, 126, 372, 82, 425, 337, 386, 184, 58, 88, 117, 459, 221, 223, 128,
    294, 541, 111, 266, 568, 362, 271, 187, 155, 5, 511, 252, 480, 513, 86, 105, 242, 312, 473,
    364, 565, 447, 488, 151, 263, 563, 194, 433, 244, 489, 465, 483, 397, 52, 147, 27, 436, 434,
    190, 407, 202, 455, 452, 385, 188, 159, 32, 264, 245, 535, 430, 443, 154, 9, 63, 329, 536,
    65, 438, 269, 36, 98, 392, 69, 517, 92, 552, 505, 566, 163, 358, 442, 15, 503, 176, 327, 1,
    404, 24, 139, 101, 350, 90, 191, 383, 11, 314, 352, 235, 305, 375, 215, 466, 486, 250, 339,
    103, 206, 345, 346, 317, 499, 478, 47, 456, 211, 490, 113, 359, 344, 532, 261, 4, 226, 464,
    277, 257, 260, 301, 537, 403, 233, 487, 141, 68, 363, 379, 51, 195, 239, 161, 169, 212, 120,
    367, 171, 348, 409, 112, 524, 62, 393, 75, 124, 231, 285, 448, 460, 218, 467, 525, 80, 472,
    549, 527, 168, 351, 57, 560, 424, 355, 42, 217, 286, 135, 521, 278, 504, 97, 84, 553, 469,
    87, 22, 19, 265, 38, 479, 17, 189, 178, 164, 451, 290, 67, 110, 556, 150, 321, 526, 18, 446,
    432, 523, 418, 272, 153, 509, 288, 258, 228, 476, 423, 64, 137, 343, 302, 561, 8, 502, 28,
    457, 136, 365, 384, 81, 306, 282, 475, 118, 55, 557, 284, 256, 426, 387, 497, 298, 157, 249,
    342, 508, 267, 338, 360, 12, 210, 533, 167, 79, 369, 437, 485, 408, 308, 414, 41, 276, 146,
    405, 35, 13, 166, 173, 531, 388, 205, 6, 144, 540, 30, 435, 31, 203, 59, 95, 37, 331, 237,
    10, 389, 324, 179, 220, 50, 401, 368, 29, 78, 204, 214, 127, 46, 554, 449, 564, 297, 491,
    492, 181, 427, 471, 515, 445, 506, 93, 453, 357, 544, 26, 356, 227, 377, 234, 341, 129, 289,
    539, 145, 138, 410, 56, 216, 281, 16, 444, 547, 270, 44, 34, 371, 310, 538, 72, 73, 279,
    196, 74, 23, 334, 400, 431, 254, 48, 130, 555, 520, 122, 496, 225, 326, 106, 381, 415, 71,
    558, 21, 316, 463, 454, 413, 330, 468, 322, 307, 373, 304, 529, 40, 115, 2, 39,
)


def write_breast_examples(out_dir: Path) -> dict[str, Path]:
    """Write the guest and host breast tables into ``out_dir``; return ``{"guest": ..., "host": ...}``.

    Existing files of the same name are replaced. Values are printed with six
    decimals, ``-0.0`` normalised to ``0.000000``.
    """
    scaled, labels = scaled_breast()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    guest = out_dir / GUEST_FILE
    host = out_dir / HOST_FILE
    _write_csv(guest, scaled, labels, _GUEST_COLUMNS)
    _write_csv(host, scaled, None, _HOST_COLUMNS)
    return {"guest": guest, "host": host}


def write_breast_homo_examples(out_dir: Path) -> dict[str, Path]:
    """Write FATE's horizontal breast split: ``{"guest": ..., "host": ..., "test": ...}``.

    The same rows in the same public order, cut into 227 / 228 / 114 rows; every
    table has the label and all 30 columns, the guest's ten first (``x0..x9`` are
    columns 20-29, ``x10..x29`` columns 0-19), as in FATE's ``breast_homo_*.csv``.
    """
    scaled, labels = scaled_breast()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = [*_GUEST_COLUMNS, *_HOST_COLUMNS]
    paths: dict[str, Path] = {}
    for name, (start, stop) in _HOMO_ROWS.items():
        paths[name] = out_dir / HOMO_FILES[name]
        _write_csv(paths[name], scaled, labels, columns, _PUBLIC_ROW_ORDER[start:stop])
    return paths


def scaled_breast() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]

    data = load_breast_cancer()
    features = np.asarray(data.data, dtype=np.float64)
    labels = np.asarray(data.target, dtype=np.int64)
    if len(_PUBLIC_ROW_ORDER) != features.shape[0]:
        raise DataError(
            f"scikit-learn's breast-cancer table has {features.shape[0]} rows, expected {len(_PUBLIC_ROW_ORDER)}"
        )
    return np.round((features - features.mean(axis=0)) / features.std(axis=0), 6) + 0.0, labels


def _write_csv(
    path: Path,
    scaled: np.ndarray,
    labels: np.ndarray | None,
    columns: Sequence[int],
    rows: Sequence[int] = _PUBLIC_ROW_ORDER,
) -> None:
    """One table in FATE's layout: id, optional y, then x0.. for ``columns``."""
    names = ["id", *(["y"] if labels is not None else []), *(f"x{j}" for j in range(len(columns)))]
    lines = [",".join(names)]
    for row in rows:
        cells = [str(row)]
        if labels is not None:
            cells.append(str(int(labels[row])))
        cells.extend(f"{scaled[row, column]:.6f}" for column in columns)
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
