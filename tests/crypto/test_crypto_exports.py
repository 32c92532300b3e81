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
    for name in crypto.__all__:
        assert getattr(crypto, name) is not None
