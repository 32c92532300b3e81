# mypy: disable-error-code="type-arg"
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_GUEST: _ClassVar[Role]
    ROLE_HOST: _ClassVar[Role]
    ROLE_ARBITER: _ClassVar[Role]

class PayloadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYLOAD_KIND_UNSPECIFIED: _ClassVar[PayloadKind]
    PAYLOAD_KIND_VALUE: _ClassVar[PayloadKind]
    PAYLOAD_KIND_ARROW_STREAM: _ClassVar[PayloadKind]
    PAYLOAD_KIND_RAW: _ClassVar[PayloadKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_UNKNOWN: _ClassVar[JobState]
    JOB_STATE_OPEN: _ClassVar[JobState]
    JOB_STATE_CLOSED: _ClassVar[JobState]

class NullValue(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NULL_VALUE: _ClassVar[NullValue]

class ArrowKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARROW_KIND_UNSPECIFIED: _ClassVar[ArrowKind]
    ARROW_KIND_TABLE: _ClassVar[ArrowKind]
    ARROW_KIND_RECORD_BATCH: _ClassVar[ArrowKind]
    ARROW_KIND_ARRAY: _ClassVar[ArrowKind]
    ARROW_KIND_NDARRAY: _ClassVar[ArrowKind]
ROLE_UNSPECIFIED: Role
ROLE_GUEST: Role
ROLE_HOST: Role
ROLE_ARBITER: Role
PAYLOAD_KIND_UNSPECIFIED: PayloadKind
PAYLOAD_KIND_VALUE: PayloadKind
PAYLOAD_KIND_ARROW_STREAM: PayloadKind
PAYLOAD_KIND_RAW: PayloadKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_UNKNOWN: JobState
JOB_STATE_OPEN: JobState
JOB_STATE_CLOSED: JobState
NULL_VALUE: NullValue
ARROW_KIND_UNSPECIFIED: ArrowKind
ARROW_KIND_TABLE: ArrowKind
ARROW_KIND_RECORD_BATCH: ArrowKind
ARROW_KIND_ARRAY: ArrowKind
ARROW_KIND_NDARRAY: ArrowKind

class Party(_message.Message):
    __slots__ = ("role", "party_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    role: Role
    party_id: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., party_id: _Optional[str] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("job_id", "tag", "src", "dst", "seq", "payload_kind", "total_bytes", "chunk_count", "chunk_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_KIND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tag: str
    src: Party
    dst: Party
    seq: int
    payload_kind: PayloadKind
    total_bytes: int
    chunk_count: int
    chunk_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., tag: _Optional[str] = ..., src: _Optional[_Union[Party, _Mapping]] = ..., dst: _Optional[_Union[Party, _Mapping]] = ..., seq: _Optional[int] = ..., payload_kind: _Optional[_Union[PayloadKind, str]] = ..., total_bytes: _Optional[int] = ..., chunk_count: _Optional[int] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("header", "index", "data", "crc32")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32_FIELD_NUMBER: _ClassVar[int]
    header: Header
    index: int
    data: bytes
    crc32: int
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., index: _Optional[int] = ..., data: _Optional[bytes] = ..., crc32: _Optional[int] = ...) -> None: ...

class PushAck(_message.Message):
    __slots__ = ("duplicate", "stored_bytes")
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    stored_bytes: int
    def __init__(self, duplicate: _Optional[bool] = ..., stored_bytes: _Optional[int] = ...) -> None: ...

class MessageRef(_message.Message):
    __slots__ = ("tag", "src", "dst", "seq")
    TAG_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    tag: str
    src: Party
    dst: Party
    seq: int
    def __init__(self, tag: _Optional[str] = ..., src: _Optional[_Union[Party, _Mapping]] = ..., dst: _Optional[_Union[Party, _Mapping]] = ..., seq: _Optional[int] = ...) -> None: ...

class TransferOpen(_message.Message):
    __slots__ = ("header", "pending")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    header: Header
    pending: _containers.RepeatedCompositeFieldContainer[MessageRef]
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., pending: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("open", "chunk")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    open: TransferOpen
    chunk: Chunk
    def __init__(self, open: _Optional[_Union[TransferOpen, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class TransferReply(_message.Message):
    __slots__ = ("next_index", "resend", "complete", "duplicate", "stored_bytes", "boot_id", "read", "missing")
    NEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESEND_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    next_index: int
    resend: bool
    complete: bool
    duplicate: bool
    stored_bytes: int
    boot_id: str
    read: _containers.RepeatedCompositeFieldContainer[MessageRef]
    missing: _containers.RepeatedCompositeFieldContainer[MessageRef]
    def __init__(self, next_index: _Optional[int] = ..., resend: _Optional[bool] = ..., complete: _Optional[bool] = ..., duplicate: _Optional[bool] = ..., stored_bytes: _Optional[int] = ..., boot_id: _Optional[str] = ..., read: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ..., missing: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("job_id", "from_party_id", "boot_id", "pending")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    from_party_id: str
    boot_id: str
    pending: _containers.RepeatedCompositeFieldContainer[MessageRef]
    def __init__(self, job_id: _Optional[str] = ..., from_party_id: _Optional[str] = ..., boot_id: _Optional[str] = ..., pending: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("party_id", "boot_id", "job_state", "read", "missing")
    PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_STATE_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    party_id: str
    boot_id: str
    job_state: JobState
    read: _containers.RepeatedCompositeFieldContainer[MessageRef]
    missing: _containers.RepeatedCompositeFieldContainer[MessageRef]
    def __init__(self, party_id: _Optional[str] = ..., boot_id: _Optional[str] = ..., job_state: _Optional[_Union[JobState, str]] = ..., read: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ..., missing: _Optional[_Iterable[_Union[MessageRef, _Mapping]]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("from_party_id",)
    FROM_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    from_party_id: str
    def __init__(self, from_party_id: _Optional[str] = ...) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("party_id",)
    PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    party_id: str
    def __init__(self, party_id: _Optional[str] = ...) -> None: ...

class ReadPartRequest(_message.Message):
    __slots__ = ("job_id", "tag", "src", "partition", "offset", "chunk_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tag: str
    src: Party
    partition: int
    offset: int
    chunk_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., tag: _Optional[str] = ..., src: _Optional[_Union[Party, _Mapping]] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., chunk_bytes: _Optional[int] = ...) -> None: ...

class PartChunk(_message.Message):
    __slots__ = ("data", "crc32")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CRC32_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    crc32: int
    def __init__(self, data: _Optional[bytes] = ..., crc32: _Optional[int] = ...) -> None: ...

class ArrowValue(_message.Message):
    __slots__ = ("kind", "ipc_stream")
    KIND_FIELD_NUMBER: _ClassVar[int]
    IPC_STREAM_FIELD_NUMBER: _ClassVar[int]
    kind: ArrowKind
    ipc_stream: bytes
    def __init__(self, kind: _Optional[_Union[ArrowKind, str]] = ..., ipc_stream: _Optional[bytes] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, items: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class ValueMap(_message.Message):
    __slots__ = ("entries",)
    class EntriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.MessageMap[str, Value]
    def __init__(self, entries: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("null_value", "bool_value", "int_value", "big_int_value", "double_value", "string_value", "bytes_value", "list_value", "map_value", "arrow_value")
    NULL_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BIG_INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAP_VALUE_FIELD_NUMBER: _ClassVar[int]
    ARROW_VALUE_FIELD_NUMBER: _ClassVar[int]
    null_value: NullValue
    bool_value: bool
    int_value: int
    big_int_value: bytes
    double_value: float
    string_value: str
    bytes_value: bytes
    list_value: ValueList
    map_value: ValueMap
    arrow_value: ArrowValue
    def __init__(self, null_value: _Optional[_Union[NullValue, str]] = ..., bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., big_int_value: _Optional[bytes] = ..., double_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bytes_value: _Optional[bytes] = ..., list_value: _Optional[_Union[ValueList, _Mapping]] = ..., map_value: _Optional[_Union[ValueMap, _Mapping]] = ..., arrow_value: _Optional[_Union[ArrowValue, _Mapping]] = ...) -> None: ...
