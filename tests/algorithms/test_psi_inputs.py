"""Bad PSI input stops every party with an error naming the party at fault; ids never travel."""

from __future__ import annotations

from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from fedspark.algorithms.psi import (
    DuplicateIds,
    EmptyIntersection,
    IdTypeMismatch,
    InvalidIds,
    PeerInputRejected,
    align,
)
from fedspark.common import DataError, PartyRef, Role
from fedspark.federation import Context, run_parties

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")
HOST2 = PartyRef(Role.HOST, "10001")


def _errors(spark: SparkSession, tables: dict[PartyRef, DataFrame], **kwargs: Any) -> dict[PartyRef, Exception]:
    """Run PSI at every party and return what each one raised (each must raise)."""

    def side(df: DataFrame, party_kwargs: dict[str, Any]) -> Any:
        def run(ctx: Context) -> Exception:
            try:
                align(ctx, df, "id", spark, **party_kwargs)
            except DataError as exc:
                return exc
            raise AssertionError(f"{ctx.me} aligned bad input")

        return run

    per_party = kwargs.pop("per_party", {})
    functions = {p: side(df, {**kwargs, **per_party.get(p, {})}) for p, df in tables.items()}
    return run_parties("psi-bad-input", functions, timeout_s=120)


def test_int_ids_against_text_ids_without_declared_type_are_refused_everywhere(spark: SparkSession) -> None:
    errors = _errors(spark, {GUEST: spark.range(5), HOST: spark.createDataFrame([("1",), ("2",)], "id string")})
    for party, error in errors.items():
        assert isinstance(error, IdTypeMismatch), error
        assert str(party) in str(error)
        assert "guest:9999 holds int ids, host:10000 holds string ids" in str(error)
        assert "declare the same id_type" in str(error)


def test_different_declared_types_are_refused(spark: SparkSession) -> None:
    tables = {GUEST: spark.range(5), HOST: spark.range(5)}
    errors = _errors(spark, tables, per_party={GUEST: {"id_type": "int"}, HOST: {"id_type": "string"}})
    assert all(isinstance(e, IdTypeMismatch) and "declare different id types" in str(e) for e in errors.values())


def test_duplicate_ids_name_the_party_and_an_example_only_to_that_party(spark: SparkSession) -> None:
    host = spark.createDataFrame([(f"u{i}",) for i in [1, 2, 3, 3, 4]], "id string")
    errors = _errors(spark, {GUEST: spark.createDataFrame([("u1",), ("u2",)], "id string"), HOST: host, HOST2: host.distinct()})
    assert isinstance(errors[HOST], DuplicateIds)
    assert "party host:10000" in str(errors[HOST]) and "'u3' (2 times)" in str(errors[HOST])
    for party in (GUEST, HOST2):
        assert isinstance(errors[party], PeerInputRejected) and errors[party].peer == "host:10000"
        assert "duplicate ids" in str(errors[party]) and "u3" not in str(errors[party]), "the example id stays home"


def test_int_ids_that_collide_after_normalisation_are_duplicates(spark: SparkSession) -> None:
    guest = spark.createDataFrame([("7",), ("007",), ("8",)], "id string")
    errors = _errors(spark, {GUEST: guest, HOST: spark.range(10)}, id_type="int")
    assert isinstance(errors[GUEST], DuplicateIds) and errors[GUEST].count == 2
    assert isinstance(errors[HOST], PeerInputRejected) and errors[HOST].peer == "guest:9999"


def test_unparsable_and_null_ids_are_refused(spark: SparkSession) -> None:
    host = spark.createDataFrame([("1",), ("x2",)], "id string")
    errors = _errors(spark, {GUEST: spark.range(5), HOST: host}, id_type="int")
    assert isinstance(errors[HOST], InvalidIds) and "'x2', which is not an integer" in str(errors[HOST])
    nulls = spark.createDataFrame([("a",), (None,)], "id string")
    errors = _errors(spark, {GUEST: nulls, HOST: spark.createDataFrame([("a",)], "id string")})
    assert isinstance(errors[GUEST], InvalidIds) and "null id" in str(errors[GUEST])


def test_unsupported_id_column_type_and_missing_column(spark: SparkSession) -> None:
    errors = _errors(spark, {GUEST: spark.createDataFrame([(1.5,)], "id double"), HOST: spark.range(3).toDF("key")})
    assert isinstance(errors[GUEST], InvalidIds) and "has type double" in str(errors[GUEST])
    assert isinstance(errors[HOST], InvalidIds) and "does not exist" in str(errors[HOST])


def test_empty_intersection_is_a_clear_error_at_every_party(spark: SparkSession) -> None:
    errors = _errors(spark, {GUEST: spark.range(0, 50), HOST: spark.range(100, 150)})
    for error in errors.values():
        assert isinstance(error, EmptyIntersection) and "no id common to" in str(error)
    assert errors[GUEST].own_ids == 50


@pytest.mark.parametrize("secret", [b"\x00" * 32, b"short"])
def test_a_bad_secret_is_refused_before_anything_is_sent(spark: SparkSession, secret: bytes) -> None:
    with pytest.raises(ValueError, match="non-zero 32-byte"):
        run_parties("psi-bad-secret", {GUEST: lambda ctx: align(ctx, spark.range(1), "id", spark, secret=secret)})
