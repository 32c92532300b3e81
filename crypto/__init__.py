"""Paillier encryption with one fixed-point precision per job.

Algorithms use: ``generate_keypair`` (arbiter), ``PublicKey`` (encrypt and
combine ciphertexts as integers; ``dot_many`` for X^T[[d]]), ``PrivateKey``
(decrypt), ``FixedPoint`` (floats <-> integers mod n). Obfuscators r^n come
from an ``ObfuscatorPool`` (Damgård–Jurik–Nielsen exponents, ``Exponent``).
``Packer`` packs several quantised values into one plaintext (BatchCrypt).
``split_secret``/``combine_secret``: Shamir sharing of short seeds (masking).
Batch math for algorithms (``quantise_features``, ``encrypt_values``, ``xtd``
for X^T[[d]], ``merge_partials``) works on ints and numpy arrays only; the
Spark kernels that run it inside ``mapInArrow`` belong to the algorithm and
convert columns with ``fedspark.arrow_bridge`` (crypto never imports it).
Ciphertexts cross the wire as fixed-width binary columns built there.
"""

from fedspark.crypto._batch import encrypt_values, merge_partials, quantise_features, xtd
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
    "check_peer_key",
    "combine_secret",
    "encrypt_values",
    "exponent_bits",
    "generate_keypair",
    "merge_partials",
    "quantise_features",
    "security_level",
    "split_secret",
    "xtd",
]
