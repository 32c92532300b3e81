"""Fixed-base windowed exponentiation: g^x with about |x|/w multiplications.

When the base never changes (h_s of an obfuscator pool), its powers can be
computed once: T[k][d] = g^(d · 2^(w·k)) for every window position k and
digit d < 2^w. Then g^x = Π_k T[k][d_k] over the base-2^w digits d_k of x:
no squarings at all, one modular multiplication per nonzero digit
(Brickell–Gordon–McCurley–Wilson, EUROCRYPT'92, in its simplest form).
A 224-bit exponent with w = 12 costs 18 multiplications instead of the ~260
of a square-and-multiply ``powmod``; the table costs ⌈|x|/w⌉·2^w
multiplications and as many residues of memory, once per key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gmpy2 import mpz

MAX_TABLE_ENTRIES = 1 << 17
"""Cap on precomputed residues (~70 MB at 4096-bit residues)."""


def choose_window(exp_bits: int, expected_uses: int, max_entries: int = MAX_TABLE_ENTRIES) -> int:
    """The window that minimises table cost plus ``expected_uses`` evaluations.

    Cost model in modular multiplications: building ≈ ⌈b/w⌉·(2^w − 1), each
    evaluation ≈ ⌈b/w⌉ − 1. Windows whose table exceeds ``max_entries`` are skipped.
    """
    best, best_cost = 1, math.inf
    for w in range(1, 17):
        positions = -(-exp_bits // w)
        entries = positions * ((1 << w) - 1)
        if entries > max_entries and w > 1:
            break
        cost = entries + max(1, expected_uses) * (positions - 1)
        if cost < best_cost:
            best, best_cost = w, cost
    return best


class FixedBaseTable:
    """Precomputed powers of one base modulo one modulus, for exponents below 2^exp_bits."""

    def __init__(self, base: int, modulus: int, exp_bits: int, window: int) -> None:
        if exp_bits < 1 or not 1 <= window <= 16:
            raise ValueError(f"need exp_bits >= 1 and 1 <= window <= 16, got {exp_bits}, {window}")
        self.modulus = mpz(modulus)
        self.exp_bits = exp_bits
        self.window = window
        self.positions = -(-exp_bits // window)
        self._mask = (1 << window) - 1
        m = self.modulus
        g = mpz(base) % m
        rows: list[list[mpz]] = []
        for k in range(self.positions):
            # the top position only needs digits up to the exponent's top bits
            top_bits = min(window, exp_bits - window * k)
            row = [mpz(1), g]
            for _ in range(2, 1 << top_bits):
                row.append(row[-1] * g % m)
            rows.append(row)
            if k + 1 < self.positions:
                g = row[-1] * g % m  # g^(2^w): the next position's base
        self._rows = rows

    @property
    def entries(self) -> int:
        """Residues held (the table's memory, in units of one residue)."""
        return sum(len(row) - 1 for row in self._rows)

    def pow(self, x: int) -> mpz:
        """base^x mod modulus for 0 <= x < 2^exp_bits, one multiplication per nonzero digit."""
        if x < 0 or x >> self.exp_bits:
            raise ValueError(f"exponent must lie in [0, 2^{self.exp_bits}), got {x.bit_length()} bits")
        m, w, mask = self.modulus, self.window, self._mask
        acc: mpz | None = None
        for row in self._rows:
            d = x & mask
            x >>= w
            if d:
                acc = row[d] if acc is None else acc * row[d] % m
        return mpz(1) if acc is None else acc

    def pow_many(self, exponents: Sequence[int]) -> list[mpz]:
        """``pow`` for each exponent (one Python call for the batch)."""
        return [self.pow(x) for x in exponents]
