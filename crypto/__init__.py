"""Paillier encryption with one fixed-point precision per job.

Algorithms use: ``generate_keypair`` (arbiter), ``PublicKey`` (encrypt and
combine ciphertexts as integers; ``dot_many`` for X^T[[d]]), ``PrivateKey``
(decrypt), ``FixedPoint`` (floats <-> integers mod n). Obfuscators r^n come
from an ``ObfuscatorPool`` (Damgård–Jurik–Nielsen exponents, ``Exponent``).
``Packer`` packs several quantised values into one plaintext (BatchCrypt).
``split_secret``/``combine_secret``: Shamir sharing of short seeds (masking).
The Arrow kernels (``encrypt_batches``, ``xtd_batches``, ...) run the same
operations inside ``mapInArrow``. Ciphertexts cross the wire as fixed-width
binary columns built by ``fedspark.arrow_bridge``.
"""

from fedspark.crypto._errors import (
    DecodingOverflow,
    EncodingOverflow,
    InsecureKeySize,
    KeyMismatch,
    ObfuscatorReuse,
    PackingOverflow,
    PeerKeyTooSmall,
)
from fedspark.crypto._fixed_point import DEFAULT_FRAC_BITS, FixedPoint
from fedspark.crypto._kernels import (
    add_batches,
    add_plain_batches,
    encrypt_batches,
    merge_partials,
    mul_scalar_batches,
    obfuscator_batches,
    quantise_features,
    sum_batches,
    xtd_batches,
)
from fedspark.crypto._keygen import security_level
from fedspark.crypto._obfuscators import Exponent, ObfuscatorPool, exponent_bits
from fedspark.crypto._packing import Packer
from fedspark.crypto._paillier import (
    DEFAULT_KEY_SIZE,
    SECURE_MIN_KEY_SIZE,
    Obfuscation,
    PrivateKey,
    PublicKey,
    check_peer_key,
    generate_keypair,
)
from fedspark.crypto._shamir import combine_secret, split_secret

__all__ = [
    "DEFAULT_FRAC_BITS",
    "DEFAULT_KEY_SIZE",
    "SECURE_MIN_KEY_SIZE",
    "DecodingOverflow",
    "EncodingOverflow",
    "Exponent",
    "FixedPoint",
    "InsecureKeySize",
    "KeyMismatch",
    "Obfuscation",
    "ObfuscatorPool",
    "ObfuscatorReuse",
    "Packer",
    "PackingOverflow",
    "PeerKeyTooSmall",
    "PrivateKey",
    "PublicKey",
    "add_batches",
    "add_plain_batches",
    "check_peer_key",
    "combine_secret",
    "encrypt_batches",
    "exponent_bits",
    "generate_keypair",
    "merge_partials",
    "mul_scalar_batches",
    "obfuscator_batches",
    "quantise_features",
    "security_level",
    "split_secret",
    "sum_batches",
    "xtd_batches",
]
