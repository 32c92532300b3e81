"""Paillier encryption with one fixed-point precision per job.

Algorithms use: ``generate_keypair`` (arbiter), ``PublicKey`` (encrypt and
combine ciphertexts as integers), ``PrivateKey`` (decrypt), ``FixedPoint``
(floats <-> integers mod n). Ciphertexts cross the wire as fixed-width binary
columns built by ``fedspark.arrow_bridge``.
"""

from fedspark.crypto._errors import EncodingOverflow, InsecureKeySize, KeyMismatch
from fedspark.crypto._fixed_point import DEFAULT_FRAC_BITS, FixedPoint
from fedspark.crypto._paillier import (
    DEFAULT_KEY_SIZE,
    SECURE_MIN_KEY_SIZE,
    PrivateKey,
    PublicKey,
    generate_keypair,
)

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_KEY_SIZE",
    "SECURE_MIN_KEY_SIZE",
    "EncodingOverflow",
    "FixedPoint",
    "InsecureKeySize",
    "KeyMismatch",
    "PrivateKey",
    "PublicKey",
    "generate_keypair",
]
