"""The typed value codec: round-trips, refusals, and garbage from a peer."""

from __future__ import annotations

import ast
import datetime
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from fedspark.common import FederationError, PartyRef, Role
from fedspark.federation import CodecError, MessageKey, PayloadKind, codec, decode_value, encode_value
from fedspark.federation import federation_pb2 as pb
from fedspark.federation.transport import ChunkPart, Header, Receipt

FEDERATION_DIR = Path(codec.__file__).resolve().parent

_rng = random.Random(7)
CIPHER_WIDTH = 512  # bytes of a 2048-bit key's ciphertext (mod n^2)
ciphertexts = pa.array(
    [_rng.getrandbits(CIPHER_WIDTH * 8).to_bytes(CIPHER_WIDTH, "big") for _ in range(5)],
    type=pa.binary(CIPHER_WIDTH),
)
multi_chunk_table = pa.concat_tables(
    [pa.table({"id": ["a", "b"], "x": [1.0, 2.0]}), pa.table({"id": ["c"], "x": pa.array([None], pa.float64())})]
)

ROUND_TRIPS: list[tuple[str, object, object]] = [
    ("none", None, None),
    ("true", True, True),
    ("false", False, False),
    ("zero", 0, 0),
    ("negative", -17, -17),
    ("int64 max", 2**63 - 1, 2**63 - 1),
    ("int64 min", -(2**63), -(2**63)),
    ("just above int64", 2**63, 2**63),
    ("just below int64", -(2**63) - 1, -(2**63) - 1),
    ("4096-bit", 2**4096 - 1, 2**4096 - 1),
    ("negative 4096-bit", -(2**4095) - 12345, -(2**4095) - 12345),
    ("random paillier-sized", _rng.getrandbits(4096) | 1 << 4095, None),
    ("numpy int", np.int64(-5), -5),
    ("numpy bool", np.bool_(True), True),
    ("float", 1.5, 1.5),
    ("negative zero", -0.0, -0.0),
    ("infinity", float("-inf"), float("-inf")),
    ("nan", float("nan"), float("nan")),
    ("numpy float32", np.float32(0.25), 0.25),
    ("empty str", "", ""),
    ("unicode str", "héllo ✓ 数据", "héllo ✓ 数据"),
    ("empty bytes", b"", b""),
    ("bytes", b"\x00\xff" * 10, b"\x00\xff" * 10),
    ("bytearray", bytearray(b"ab"), b"ab"),
    ("empty list", [], []),
    ("list", [1, "a", None, 2.5], [1, "a", None, 2.5]),
    ("tuple becomes list", (1, (2, 3)), [1, [2, 3]]),
    ("empty dict", {}, {}),
    ("nested dict", {"a": {"b": [1, {"c": b"x"}], "d": None}}, {"a": {"b": [1, {"c": b"x"}], "d": None}}),
    ("2-D float array", np.arange(12, dtype=np.float64).reshape(3, 4) / 7, None),
    ("1-D int32 array", np.array([-1, 0, 2**31 - 1], dtype=np.int32), None),
    ("bool array", np.array([True, False, True]), None),
    ("uint8 matrix", np.arange(6, dtype=np.uint8).reshape(2, 3), None),
    ("float16", np.array([0.5, -2.0], dtype=np.float16), None),
    ("empty 0x3", np.zeros((0, 3), dtype=np.float32), None),
    ("3-D", np.arange(24, dtype=np.int64).reshape(2, 3, 4), None),
    ("fortran order", np.asfortranarray(np.arange(6.0).reshape(2, 3)), None),
    ("scalar array", np.array(3.5), None),
    ("arrow int array with nulls", pa.array([1, None, 3]), None),
    ("arrow string array", pa.array(["x", "yz", None]), None),
    ("fixed_size_binary array", ciphertexts, None),
    ("fixed_size_binary batch", pa.record_batch([ciphertexts, pa.array(range(5))], names=["ct", "row"]), None),
    ("multi-chunk table", multi_chunk_table, None),
    ("empty table", pa.table({}), None),
    ("empty table with schema", pa.table({"ct": pa.array([], pa.binary(CIPHER_WIDTH))}), None),
    (
        "table with metadata",
        pa.table({"x": [1]}).replace_schema_metadata({"exponent": "-53"}),
        None,
    ),
    ("value with a table inside", {"ct": pa.table({"c": ciphertexts}), "exponent": -53}, None),
]


def assert_same(got: object, want: object) -> None:
    """Deep equality that also checks types (tuples excepted) and array dtypes."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype.newbyteorder("=") and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable
    elif isinstance(want, (pa.Table, pa.RecordBatch, pa.Array)):
        assert type(got) is type(want)
        arrow_got: Any = got
        assert arrow_got.equals(want), f"{got} != {want}"
        if not isinstance(want, pa.Array):
            assert arrow_got.schema.equals(want.schema, check_metadata=True)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for k in want:
            assert_same(got[k], want[k])
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    elif isinstance(want, float) and math.isnan(want):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert type(got) is type(want) and got == want
        if isinstance(want, float):
            assert math.copysign(1, got) == math.copysign(1, want)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [(v, e) for _, v, e in ROUND_TRIPS], ids=[n for n, _, _ in ROUND_TRIPS])
def test_round_trip(value: object, expected: object) -> None:
    assert_same(decode_value(encode_value(value)), value if expected is None else expected)


def test_big_ints_use_minimal_twos_complement() -> None:
    message = codec.value_to_proto(2**63)
    assert message.WhichOneof("kind") == "big_int_value"
    assert message.big_int_value == b"\x00\x80" + b"\x00" * 7
    assert codec.value_to_proto(2**63 - 1).WhichOneof("kind") == "int_value"


def test_big_endian_arrays_arrive_native() -> None:
    value = np.array([1, 2, 258], dtype=">i4")
    got = decode_value(encode_value(value))
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype("=i4")
    assert got.tolist() == [1, 2, 258]


class Opaque:
    pass


REJECTED: list[tuple[str, object, str]] = [
    ("set", {1, 2}, "cannot encode value of type set"),
    ("object", Opaque(), "of type test_fed_codec.Opaque"),
    ("complex", 1j, "of type complex"),
    ("non-str key", {1: "a"}, "dict key 1 is int, only str keys travel"),
    ("nested set", {"a": [1, {2}]}, "cannot encode value['a'][1] of type set"),
    ("string array", np.array(["a", "b"]), "dtype <U1"),
    ("complex array", np.array([1 + 2j]), "dtype complex128"),
    ("object array", np.array([Opaque()], dtype=object), "dtype object"),
    ("datetime", datetime.date(2024, 1, 1), "of type datetime.date"),
    ("chunked array", pa.chunked_array([[1, 2]]), "ChunkedArray"),
    ("lone surrogate", "\ud800", "not valid UTF-8"),
]


@pytest.mark.parametrize(("value", "message"), [(v, m) for _, v, m in REJECTED], ids=[n for n, _, _ in REJECTED])
def test_unsupported_values_are_refused_by_name(value: object, message: str) -> None:
    with pytest.raises(CodecError, match=None) as info:
        encode_value(value)
    assert message in str(info.value)
    assert isinstance(info.value, FederationError)


def test_nesting_depth_is_bounded() -> None:
    value: Any = 1
    for _ in range(codec.MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(CodecError, match="nested deeper than"):
        encode_value(value)


def _ipc_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


GARBAGE: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("0xff run", b"\xff" * 16),
    ("truncated field", b"\x32\x10abc"),
    ("invalid utf-8 string", pb.Value(bytes_value=b"\xff\xfe").SerializeToString().replace(b"\x3a", b"\x32", 1)),
    ("arrow kind with garbage ipc", pb.Value(arrow_value=pb.ArrowValue(kind=pb.ARROW_KIND_TABLE, ipc_stream=b"nope")).SerializeToString()),
    ("ndarray without metadata", pb.Value(arrow_value=pb.ArrowValue(kind=pb.ARROW_KIND_NDARRAY, ipc_stream=_ipc_stream(pa.table({"x": [1]})))).SerializeToString()),
    ("unknown arrow kind", pb.Value(arrow_value=pb.ArrowValue(kind=99, ipc_stream=b"")).SerializeToString()),  # type: ignore[arg-type]
    ("empty big int", pb.Value(big_int_value=b"").SerializeToString()),
]


@pytest.mark.parametrize("data", [d for _, d in GARBAGE], ids=[n for n, _ in GARBAGE])
def test_garbage_is_a_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_value(data)


def test_ndarray_metadata_is_checked() -> None:
    batch = pa.record_batch(
        [pa.array([1.0, 2.0])],
        schema=pa.schema(
            [pa.field("data", pa.float64())],
            metadata={"fedspark.ndarray.shape": "[3]", "fedspark.ndarray.dtype": "<f8"},
        ),
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    data = pb.Value(
        arrow_value=pb.ArrowValue(kind=pb.ARROW_KIND_NDARRAY, ipc_stream=sink.getvalue().to_pybytes())
    ).SerializeToString()
    with pytest.raises(CodecError, match="2 values .* for shape \\(3,\\)"):
        decode_value(data)


def test_random_and_truncated_bytes_never_crash() -> None:
    rng = random.Random(1)
    valid = encode_value({"t": multi_chunk_table, "n": 2**300, "a": np.ones((2, 2)), "s": ["x"]})
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64))) for _ in range(300)]
    samples += [valid[:cut] for cut in range(0, len(valid), 7)]
    for data in samples:
        try:
            decode_value(data)
        except CodecError:
            pass


def test_header_and_chunk_round_trip() -> None:
    key = MessageKey("j", "iter-1.wx", PartyRef(Role.HOST, "10000"), PartyRef(Role.GUEST, "9999"), seq=4)
    header = Header(key, PayloadKind.ARROW_STREAM, total_bytes=10, chunk_count=2)
    assert codec.header_from_proto(codec.header_to_proto(header)) == header
    part = ChunkPart(0, b"abc", 123, header)
    assert codec.chunk_from_proto(codec.chunk_to_proto(part)) == part
    tail = ChunkPart(1, b"def", 7)
    assert codec.chunk_from_proto(codec.chunk_to_proto(tail)) == tail


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.ClearField("job_id"), "without job id or tag"),
        (lambda h: h.ClearField("dst"), "lacks its source or destination"),
        (lambda h: setattr(h.src, "role", pb.ROLE_UNSPECIFIED), "unknown role number 0"),
        (lambda h: h.src.ClearField("party_id"), "party without a party id"),
        (lambda h: setattr(h, "payload_kind", pb.PAYLOAD_KIND_UNSPECIFIED), "unknown payload kind"),
        (lambda h: setattr(h, "chunk_count", 0), "announces 0 chunks"),
    ],
)
def test_malformed_headers_are_codec_errors(mutate: Any, message: str) -> None:
    key = MessageKey("j", "t", PartyRef(Role.HOST, "1"), PartyRef(Role.GUEST, "2"))
    proto = codec.header_to_proto(Header(key, PayloadKind.VALUE, 0, 1))
    mutate(proto)
    with pytest.raises(CodecError, match=message):
        codec.header_from_proto(proto)


def test_no_pickle_anywhere_in_the_federation_package() -> None:
    for path in FEDERATION_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                root = name.split(".")[0]
                assert root not in {"pickle", "cloudpickle", "dill", "marshal", "shelve"}, path.name


def test_ack_and_ping_round_trip() -> None:
    receipt = Receipt(duplicate=True, stored_bytes=12)
    assert codec.receipt_from_proto(codec.receipt_to_proto(receipt)) == receipt
    assert codec.ping_request_from_proto(codec.ping_request_to_proto("9999")) == "9999"
    assert codec.ping_reply_from_proto(codec.ping_reply_to_proto("10000")) == "10000"
