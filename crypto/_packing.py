"""Several quantised values in one Paillier plaintext (BatchCrypt, USENIX ATC'20).

A 2048-bit plaintext has room for 63 values of 32 bits, so packing makes
encryption, transfer and homomorphic addition ~63× cheaper per value. This
follows BatchCrypt (Zhang et al., "BatchCrypt: Efficient Homomorphic
Encryption for Cross-Silo Federated Learning", USENIX ATC 2020): values are
clipped to [−clip, clip], quantised to signed integers of ``value_bits``, and
placed in slots of ``slot_bits`` whose top ``slot_bits − value_bits`` bits are
headroom, so up to ``summands`` packed plaintexts (e.g. one per party) can be
added before a slot could carry into its neighbour.

Layout: plaintext P = Σ_s q_s · 2^(w·s) as a signed integer, stored mod n.
Slots are signed, so a negative slot borrows from the one above; unpacking
undoes that by adding 2^(w−1) to every slot (a constant), reading the bytes,
and subtracting it again, which recovers every slot sum in [−2^(w−1), 2^(w−1)).
Only addition (of ciphertexts or packed plaintexts) is supported: a scalar
product would overflow the headroom.

Error bound: quantisation rounds to a step Δ = clip / (2^(value_bits−1) − 1),
so each value is off by at most Δ/2 and a sum of k packed vectors by at most
k·Δ/2 (``error_bound``), provided every value lies in [−clip, clip]; values
outside raise :class:`PackingOverflow` or, with ``overflow="clip"``, saturate
(BatchCrypt's choice, whose clipping error is then not bounded by Δ).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from fedspark.crypto._errors import DecodingOverflow, PackingOverflow
from fedspark.crypto._obfuscators import ObfuscatorPool
from fedspark.crypto._paillier import PrivateKey, PublicKey

_SLOT_DTYPES = {8: "<u1", 16: "<u2", 32: "<u4"}


class Packer:
    """Pack floats into Paillier plaintexts of ``slots`` signed slots each, and back."""

    def __init__(
        self,
        n: int,
        *,
        slot_bits: int = 32,
        clip: float = 1.0,
        summands: int = 1,
        overflow: Literal["raise", "clip"] = "raise",
    ) -> None:
        if slot_bits not in _SLOT_DTYPES:
            raise ValueError(f"slot_bits must be one of {sorted(_SLOT_DTYPES)}, got {slot_bits}")
        if summands < 1 or not clip > 0 or overflow not in ("raise", "clip"):
            raise ValueError(f"need summands >= 1, clip > 0, overflow 'raise' or 'clip'; got {summands}, {clip}, {overflow!r}")
        self.n = int(n)
        self.slot_bits = slot_bits
        self.summands = summands
        self.clip = float(clip)
        self.overflow = overflow
        self.value_bits = slot_bits - math.ceil(math.log2(summands))
        if self.value_bits < 2:
            raise ValueError(f"{summands} summands leave no value bits in {slot_bits}-bit slots")
        # |P| < 2^(w·slots − 1) must stay below n/2 so the sign of P survives mod n
        self.slots = (self.n.bit_length() - 2) // slot_bits
        self.q_max = (1 << (self.value_bits - 1)) - 1
        self.step = self.clip / self.q_max
        self._offset = sum(1 << (slot_bits * s + slot_bits - 1) for s in range(self.slots))
        self._dtype = np.dtype(_SLOT_DTYPES[slot_bits])

    def error_bound(self, summands: int | None = None) -> float:
        """Largest |decoded − exact| of one slot after adding ``summands`` packed vectors."""
        return (self.summands if summands is None else summands) * self.step / 2

    def plaintexts_for(self, count: int) -> int:
        """Plaintexts (ciphertexts) needed for ``count`` values."""
        return -(-count // self.slots)

    def quantise(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Signed slot integers round(v / Δ), checked (or clipped) against ±clip."""
        v = np.asarray(values, dtype=np.float64).ravel()
        outside = ~(np.abs(v) <= self.clip)  # also catches NaN
        if outside.any():
            if self.overflow == "raise" or np.isnan(v[outside]).any():
                bad = float(v[outside][0])
                raise PackingOverflow(bad, self.clip, self.slot_bits, self.value_bits, self.step)
            v = np.clip(v, -self.clip, self.clip)
        return np.rint(v / self.step).astype(np.int64)

    def pack(self, values: npt.ArrayLike) -> list[int]:
        """Plaintexts in [0, n), ``slots`` values each (the last one zero-padded)."""
        q = self.quantise(values)
        rows = self.plaintexts_for(q.size)
        padded = np.zeros(rows * self.slots, dtype=np.int64)
        padded[: q.size] = q
        biased = (padded + (1 << (self.slot_bits - 1))).astype(self._dtype).reshape(rows, self.slots)
        return [(int.from_bytes(row.tobytes(), "little") - self._offset) % self.n for row in biased]

    def unpack(self, plaintexts: Sequence[int], count: int) -> npt.NDArray[np.float64]:
        """The first ``count`` slot values (sums, if packed plaintexts were added) as floats."""
        size = self.slots * self.slot_bits // 8
        half = 1 << (self.slot_bits - 1)
        out = np.empty(len(plaintexts) * self.slots, dtype=np.int64)
        for i, m in enumerate(plaintexts):
            m = int(m) % self.n
            signed = m - self.n if m > self.n // 2 else m
            try:
                raw = np.frombuffer((signed + self._offset).to_bytes(size, "little"), dtype=self._dtype)
            except OverflowError:
                raise DecodingOverflow(self.clip * self.summands, self.value_bits, what=f"packed plaintext {i}") from None
            out[i * self.slots : (i + 1) * self.slots] = raw.astype(np.int64) - half
        return np.multiply(out[:count], self.step, dtype=np.float64)

    def encrypt(self, public_key: PublicKey, values: npt.ArrayLike, *, pool: ObfuscatorPool | None = None) -> list[int]:
        """Pack and encrypt: one ciphertext per ``slots`` values."""
        return public_key.encrypt_many(self.pack(values), pool=pool)

    def decrypt(self, private_key: PrivateKey, ciphertexts: Sequence[int], count: int, *, workers: int = 1) -> npt.NDArray[np.float64]:
        """Decrypt and unpack the first ``count`` values."""
        return self.unpack(private_key.decrypt_many(ciphertexts, workers=workers), count)
