"""Pools of precomputed Paillier obfuscators r^n mod n², each handed out once.

Encryption is c = (1 + m·n) · r^n mod n². With phe, r^n costs a full
exponentiation (|n| squarings mod n²): 99% of the encryption time. The
obfuscator does not depend on m, so we compute it ahead of need, and cheaper:

Damgård–Jurik–Nielsen. Draw a random unit y, set h = −y² mod n and
h_s = h^n mod n² once per pool. Then h_s^x = (h^x)^n is an n-th residue, i.e.
an r^n with r = h^x, and h_s is a fixed base, so h_s^x costs about |x|/w
multiplications with a windowed table (``_fixed_base``). The pool draws h
itself (``secrets``): the encrypting party need not trust whoever holds the
private key to have picked a good base.

Exponent lengths and what each rests on:

``Exponent.FULL`` (x of ⌈|n|/2⌉ bits)
    Semantic security under the decisional composite residuosity (DCR)
    assumption, Paillier's own, as DJN argue: h^x for a random ⌈|n|/2⌉-bit x
    is indistinguishable from a uniform element of ⟨h⟩ if factoring n is hard
    (Håstad, Schrift, Shamir, "The discrete logarithm modulo a composite hides
    O(n) bits", JCSS 47(3), 1993).
``Exponent.SHORT`` (x of 2κ bits, κ the key's security level: 224 bits at 2048)
    Additionally rests on the short-exponent discrete-log assumption: h^x for a
    random 2κ-bit x is indistinguishable from h^x for a full-length x. The best
    known attacks on a c-bit exponent (Pollard's kangaroo, and van Oorschot–
    Wiener's, which would also need the factorisation of n to learn the order
    of h) cost about 2^(c/2) = 2^κ operations.

References: I. Damgård, M. Jurik, "A Generalisation, a Simplification and
Some Applications of Paillier's Probabilistic Public-Key System", PKC 2001;
I. Damgård, M. Jurik, J. B. Nielsen, "A generalization of Paillier's
public-key system with applications to electronic voting", IJIS 9(6), 2010;
P. van Oorschot, M. Wiener, "On Diffie-Hellman key agreement with short
exponents", EUROCRYPT 1996; S. Patel, G. Sundaram, "An efficient discrete log
pseudo random generator", CRYPTO 1998; R. Gennaro, "An improved pseudo-random
generator based on the discrete logarithm problem", J. Cryptology 18(2), 2005;
T. Koshiba, K. Kurosawa, "Short exponent Diffie-Hellman problems", PKC 2004.

Reusing an obfuscator is fatal (c1/c2 = (1+n)^(m1−m2) reveals m1 − m2), so a
pool hands out each value exactly once, refuses to be copied or serialised,
and drops its stock in a forked child.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, NoReturn

import gmpy2
from gmpy2 import mpz

from fedspark.crypto._errors import ObfuscatorReuse
from fedspark.crypto._fixed_base import MAX_TABLE_ENTRIES, FixedBaseTable, choose_window
from fedspark.crypto._keygen import security_level
from fedspark.crypto._parallel import thread_map

if TYPE_CHECKING:
    from fedspark.crypto._paillier import PublicKey

DEFAULT_EXPECTED_USES = 4096


class Exponent(str, Enum):
    """Length of the secret exponent x of an obfuscator h_s^x (see the module docstring)."""

    SHORT = "short"
    FULL = "full"


def exponent_bits(key_size: int, mode: Exponent | str) -> int:
    """Bits of x: 2κ for ``short`` (224 at 2048 bits), ⌈|n|/2⌉ for ``full``."""
    if Exponent(mode) is Exponent.SHORT:
        return 2 * security_level(key_size)
    return -(-key_size // 2)


def draw_base(n: int) -> mpz:
    """h_s = (−y²)^n mod n² for a fresh random unit y (DJN's choice of h)."""
    n_ = mpz(n)
    while True:
        y = mpz(secrets.randbelow(n - 2) + 2)
        if gmpy2.gcd(y, n_) == 1:
            break
    h = (-y * y) % n_
    return gmpy2.powmod(h, n_, n_ * n_)


class ObfuscatorPool:
    """Obfuscators h_s^x for one key, generated in bulk and handed out exactly once.

    ``fill(count)`` generates ahead of need; ``take(count)`` hands out stock and
    generates any shortfall on the spot. The windowed table for h_s is built on
    first use; ``window`` defaults to the cheapest for ``expected_uses``
    evaluations (``choose_window``). Thread-safe.

    ``h_s`` may be passed to share one base between processes of the *same*
    party (their exponents stay independent); never accept it from another
    party, which could pick a base of small order.
    """

    def __init__(
        self,
        key: PublicKey | int,
        mode: Exponent | str = Exponent.SHORT,
        *,
        window: int | None = None,
        expected_uses: int = DEFAULT_EXPECTED_USES,
        h_s: int | None = None,
        max_table_entries: int = MAX_TABLE_ENTRIES,
    ) -> None:
        self.n = int(key) if isinstance(key, int) else int(key.n)
        self.nsquare = mpz(self.n) ** 2
        self.mode = Exponent(mode)
        self.exponent_bits = exponent_bits(self.n.bit_length(), self.mode)
        self.window = window or choose_window(self.exponent_bits, expected_uses, max_table_entries)
        if h_s is not None and not (1 < h_s < self.nsquare and math.gcd(int(h_s), self.n) == 1):
            raise ValueError("h_s must be a unit modulo n² other than 1")
        self.h_s = mpz(h_s) if h_s is not None else draw_base(self.n)
        self._table: FixedBaseTable | None = None
        self._stock: deque[mpz] = deque()
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.issued = 0
        """Obfuscators handed out so far (each exactly once)."""

    def __len__(self) -> int:
        """Obfuscators ready to hand out."""
        return len(self._stock)

    def precompute(self) -> FixedBaseTable:
        """Build the fixed-base table now (otherwise the first generation does)."""
        with self._lock:
            if self._table is None:
                self._table = FixedBaseTable(self.h_s, self.nsquare, self.exponent_bits, self.window)
            return self._table

    def generate(self, count: int, *, workers: int = 1) -> list[mpz]:
        """``count`` fresh obfuscators, not kept by the pool (the kernel form uses this).

        Each draws its own exponent from ``secrets``; ``workers`` > 1 splits the
        work over threads that release the GIL inside gmpy2.
        """
        table = self._table or self.precompute()
        bits = self.exponent_bits

        def chunk(size: int) -> list[mpz]:
            return [table.pow(_nonzero_exponent(bits)) for _ in range(size)]

        if count <= 0:
            return []
        sizes = _split(count, workers)
        return [o for part in thread_map(chunk, sizes, workers) for o in part]

    def fill(self, count: int, *, workers: int = 1) -> None:
        """Generate ``count`` obfuscators ahead of need and add them to the stock."""
        fresh = self.generate(count, workers=workers)
        self._check_process()
        with self._lock:
            self._stock.extend(fresh)

    def extend(self, obfuscators: Iterable[int]) -> None:
        """Add obfuscators generated elsewhere (e.g. by the Arrow kernel on executors).

        The caller guarantees they were generated for this pool only: the same
        values fed to two pools would be used twice.
        """
        values = [mpz(o) for o in obfuscators]
        if any(not 0 < o < self.nsquare for o in values):
            raise ValueError("an obfuscator is not a residue modulo n² of this key")
        self._check_process()
        with self._lock:
            self._stock.extend(values)

    def take(self, count: int) -> list[mpz]:
        """Hand out ``count`` obfuscators, removing them from the pool; generate any shortfall."""
        self._check_process()
        with self._lock:
            ready = min(count, len(self._stock))
            out = [self._stock.popleft() for _ in range(ready)]
            self.issued += count
        if ready < count:
            out.extend(self.generate(count - ready))
        return out

    def take_one(self) -> mpz:
        """Hand out one obfuscator."""
        return self.take(1)[0]

    def _check_process(self) -> None:
        """A forked child inherits the parent's stock; drop it so no value is used twice.

        The lock is replaced too: a thread of the parent may have held it at fork time.
        """
        if os.getpid() != self._pid:
            self._lock = threading.Lock()
            self._stock = deque()
            self._pid = os.getpid()

    def __reduce__(self) -> NoReturn:
        raise ObfuscatorReuse("serialised")

    def __copy__(self) -> NoReturn:
        raise ObfuscatorReuse("copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise ObfuscatorReuse("copied")


def _nonzero_exponent(bits: int) -> int:
    """A uniform secret exponent in [1, 2^bits) from the OS CSPRNG (x = 0 would give r^n = 1)."""
    while True:
        x = secrets.randbits(bits)
        if x:
            return x


def _split(count: int, parts: int) -> list[int]:
    """``count`` as ``parts`` near-equal non-empty sizes."""
    parts = max(1, min(parts, count))
    base, extra = divmod(count, parts)
    return [base + (i < extra) for i in range(parts)]
