"""Key pairs shared by the crypto tests: small keys wherever the size does not matter."""

from __future__ import annotations

import pytest

from fedspark.crypto import PrivateKey, PublicKey, generate_keypair


@pytest.fixture(scope="session")
def keys512() -> tuple[PublicKey, PrivateKey]:
    """Fast key pair for homomorphic identities (insecure size, tests only)."""
    return generate_keypair(512, allow_insecure_key_size=True)


@pytest.fixture(scope="session")
def keys1024() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(1024, allow_insecure_key_size=True)
