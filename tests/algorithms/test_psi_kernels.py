"""PSI kernels on hand-built batches: commutativity, pass-through, empty input, bad peer values."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pyarrow as pa
import pytest

from fedspark.algorithms.psi import (
    ELEMENT_BYTES,
    PsiProtocolError,
    blind,
    hash_and_blind,
    hash_to_group,
    random_scalar,
    reblind,
)
from fedspark.algorithms.psi.commit_reveal import commitment, derive_salt, draw_random, opens

SALT = bytes(range(64))


def _run(kernel: functools.partial[Iterator[pa.RecordBatch]], batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    return list(kernel(iter(batches)))


def test_blinding_commutes_so_double_blinded_values_meet() -> None:
    a, b = random_scalar(), random_scalar()
    point = hash_to_group(SALT, b"customer-42")
    assert blind(b, blind(a, point)) == blind(a, blind(b, point))
    assert blind(a, point) != blind(b, point) != point


def test_hash_and_blind_replaces_the_canonical_column_and_keeps_the_rest() -> None:
    scalar = random_scalar()
    batch = pa.record_batch({"id": [7, 8, 9], "canon": ["7", "8", "9"]})
    kernel = functools.partial(hash_and_blind, salt=SALT, scalar=scalar, source="canon", target="blinded")
    (out,) = _run(kernel, [batch])
    assert out.schema.names == ["id", "blinded"]
    assert out.column("id").to_pylist() == [7, 8, 9]
    assert out.column("blinded").type == pa.binary(ELEMENT_BYTES)
    assert out.column("blinded").to_pylist()[1] == blind(scalar, hash_to_group(SALT, b"8"))


def test_salt_changes_every_value() -> None:
    scalar = random_scalar()
    assert blind(scalar, hash_to_group(SALT, b"x")) != blind(scalar, hash_to_group(bytes(64), b"x"))


def test_kernels_handle_no_batches_and_empty_batches() -> None:
    scalar = random_scalar()
    empty = pa.record_batch({"canon": pa.array([], pa.string())})
    kernel = functools.partial(hash_and_blind, salt=SALT, scalar=scalar, source="canon", target="b")
    assert _run(kernel, []) == []
    (out,) = _run(kernel, [empty])
    assert out.num_rows == 0 and out.schema.names == ["b"]
    again = functools.partial(reblind, scalar=scalar, source="b", target="d", origin="host:1")
    (twice,) = _run(again, [pa.record_batch({"b": pa.array([], pa.binary())})])
    assert twice.num_rows == 0 and twice.schema.names == ["b", "d"]


def test_null_id_is_refused() -> None:
    kernel = functools.partial(hash_and_blind, salt=SALT, scalar=random_scalar(), source="c", target="b")
    with pytest.raises(ValueError, match="null id"):
        _run(kernel, [pa.record_batch({"c": ["1", None]})])


def test_reblind_pairs_each_received_value_with_its_reblinded_form() -> None:
    a, b = random_scalar(), random_scalar()
    sent = [blind(a, hash_to_group(SALT, str(i).encode())) for i in range(5)]
    # Spark hands fixed-width values back as variable binary; a sliced batch has an offset.
    batch = pa.record_batch({"b": pa.array(sent, pa.binary())}).slice(1, 3)
    kernel = functools.partial(reblind, scalar=b, source="b", target="d", origin="guest:9999")
    (out,) = _run(kernel, [batch])
    assert out.column("b").to_pylist() == sent[1:4]
    assert out.column("d").to_pylist() == [blind(b, value) for value in sent[1:4]]


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([b"\x00" * 31], "32-byte group element"),
        ([None], "32-byte group element"),
        ([b"\xff" * 32], "not a valid ristretto255 element"),
    ],
)
def test_reblind_refuses_what_is_not_a_group_element(values: list[bytes | None], match: str) -> None:
    kernel = functools.partial(reblind, scalar=random_scalar(), source="b", target="d", origin="host:10000")
    with pytest.raises(PsiProtocolError, match=f"host:10000 .*{match}"):
        _run(kernel, [pa.record_batch({"b": pa.array(values, pa.binary())})])


def test_commitments_open_only_to_their_random_and_salt_depends_on_everyone() -> None:
    r1, r2 = draw_random(), draw_random()
    assert opens(commitment(r1), r1) and not opens(commitment(r1), r2)
    assert len(derive_salt("job", [r1, r2])) == 64
    assert derive_salt("job", [r1, r2]) != derive_salt("job", [r1, draw_random()])
    assert derive_salt("job", [r1, r2]) != derive_salt("job2", [r1, r2])
