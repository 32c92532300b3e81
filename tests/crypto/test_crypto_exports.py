"""The public names of fedspark.crypto are pinned: changing them is an API change."""

from fedspark import crypto


def test_exported_names() -> None:
    assert sorted(crypto.__all__) == [
        "DEFAULT_FRAC_BITS",
        "DEFAULT_KEY_SIZE",
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
        "SECURE_MIN_KEY_SIZE",
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
    for name in crypto.__all__:
        assert getattr(crypto, name) is not None
