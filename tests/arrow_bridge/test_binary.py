"""Big unsigned integers <-> fixed-width big-endian binary columns."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from fedspark.arrow_bridge import (
    BinaryWidthError,
    as_fixed_binary,
    fixed_binary_to_ints,
    ints_to_fixed_binary,
)

N_2048 = (1 << 2047) | random.Random(7).getrandbits(2046) | 1
N_SQUARED = N_2048 * N_2048
WIDTH = 512  # bytes of n^2 for a 2048-bit n


def test_width_matches_a_2048_bit_key() -> None:
    assert (N_SQUARED.bit_length() + 7) // 8 == WIDTH


def test_round_trip_includes_both_ends() -> None:
    rng = random.Random(1)
    values = [0, N_SQUARED - 1, 1, *(rng.randrange(N_SQUARED) for _ in range(100))]
    array = ints_to_fixed_binary(values, WIDTH)
    assert array.type == pa.binary(WIDTH)
    assert len(array) == len(values)
    assert array.null_count == 0
    assert array[1].as_py() == (N_SQUARED - 1).to_bytes(WIDTH, "big")
    assert array[0].as_py() == bytes(WIDTH)
    assert fixed_binary_to_ints(array) == values


def test_empty_round_trip() -> None:
    array = ints_to_fixed_binary([], WIDTH)
    assert len(array) == 0
    assert fixed_binary_to_ints(array) == []


def test_accepts_int_like_values() -> None:
    import gmpy2

    array = ints_to_fixed_binary([gmpy2.mpz(5), 7], 4)
    assert fixed_binary_to_ints(array) == [5, 7]


@pytest.mark.parametrize(
    ("values", "index", "message"),
    [
        ([1, 2, 1 << (8 * WIDTH)], 2, "needs 513 bytes"),
        ([N_SQUARED - 1, N_SQUARED * N_SQUARED], 1, "needs 1024 bytes"),
        ([3, -1], 1, "negative"),
    ],
    ids=["one-bit-too-wide", "n-to-the-4", "negative"],
)
def test_values_that_do_not_fit_are_named(values: list[int], index: int, message: str) -> None:
    with pytest.raises(BinaryWidthError, match=message) as caught:
        ints_to_fixed_binary(values, WIDTH)
    assert caught.value.index == index
    assert f"value #{index}" in str(caught.value)


def test_zero_width_is_refused() -> None:
    with pytest.raises(BinaryWidthError, match="positive"):
        ints_to_fixed_binary([1], 0)


def test_sliced_and_chunked_arrays_decode_their_own_values() -> None:
    values = list(range(1000, 1010))
    array = ints_to_fixed_binary(values, 8)
    assert fixed_binary_to_ints(array.slice(3, 4)) == values[3:7]
    chunked = pa.chunked_array([array.slice(0, 5), array.slice(5)])
    assert fixed_binary_to_ints(chunked) == values


def test_variable_binary_of_equal_lengths_is_viewed_without_copy() -> None:
    values = [2**70 + i for i in range(6)]
    variable = ints_to_fixed_binary(values, 16).cast(pa.binary()).slice(1)
    fixed = as_fixed_binary(variable, 16)
    assert fixed.type == pa.binary(16)
    assert fixed.buffers()[1].address == variable.buffers()[2].address + 16
    assert fixed_binary_to_ints(variable) == values[1:]
    assert fixed_binary_to_ints(variable.cast(pa.large_binary())) == values[1:]


def test_variable_binary_of_mixed_lengths_is_refused() -> None:
    with pytest.raises(BinaryWidthError, match="has 2 bytes") as caught:
        as_fixed_binary(pa.array([b"abc", b"de"]))
    assert caught.value.index == 1
    with pytest.raises(BinaryWidthError, match="has 3 bytes"):
        as_fixed_binary(pa.array([b"abc"]), 4)


def test_nulls_are_refused() -> None:
    array = pa.array([b"ab", None], pa.binary(2))
    with pytest.raises(BinaryWidthError, match="null") as caught:
        fixed_binary_to_ints(array)
    assert caught.value.index == 1
