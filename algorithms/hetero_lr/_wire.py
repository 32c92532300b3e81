"""How hetero LR values look on the wire: ciphertext lists as fixed-width binary columns."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from fedspark.arrow_bridge import fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.common import ProtocolError
from fedspark.crypto import PublicKey


def pack(public_key: PublicKey, ciphertexts: Sequence[int]) -> pa.FixedSizeBinaryArray:
    return ints_to_fixed_binary(ciphertexts, public_key.ciphertext_width)


def unpack(public_key: PublicKey, value: object, *, what: str, expected: int | None = None) -> list[int]:
    """Ciphertexts from a peer: checked for type, width and count before use."""
    if not isinstance(value, pa.FixedSizeBinaryArray) or value.type.byte_width != public_key.ciphertext_width:
        raise ProtocolError(
            f"{what}: expected a fixed_size_binary({public_key.ciphertext_width}) column of ciphertexts, "
            f"got {getattr(value, 'type', type(value).__name__)}"
        )
    if expected is not None and len(value) != expected:
        raise ProtocolError(f"{what}: expected {expected} ciphertexts, got {len(value)}")
    ints = fixed_binary_to_ints(value)
    nsq = public_key.nsquare
    if any(not 0 < c < nsq for c in ints):
        raise ProtocolError(f"{what}: a value is not a ciphertext under this job's key")
    return ints
