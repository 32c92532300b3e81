"""End-to-end sealed payloads: what a party sends can be opened only by the party it is for.

In a star topology every message passes through an exchange that routes by
header. mTLS protects each hop, but the exchange terminates TLS and would see
every payload (masked gradients, partial scores, public keys). So the sending
party seals the payload for the receiving party before it enters the wire, and
the receiving party opens it after the whole message has arrived; the exchange
carries opaque bytes and cannot read, alter, truncate, reorder or re-address
them unnoticed.

Construction (all from ``cryptography``):

* each party holds an X25519 key pair; the pair key of two parties is their
  X25519 shared secret;
* each message gets a fresh 16-byte random salt, and its AES-256-GCM key is
  ``HKDF-SHA256(shared, salt, info="fedspark-seal-v1 <lower id> <higher id>")``,
  so no (key, nonce) pair is ever reused, whatever the number of messages;
* the payload is sealed in segments of ``SEGMENT_BYTES`` (nonce = segment
  index and a last-segment flag), so a spilled gigabyte is opened segment by
  segment into a file, never held whole in memory;
* the associated data is the message's header (job, tag, src, dst, seq,
  kind) and the receiver's nonce for the job (below), the nonce the segment index and flag:
  a payload moved to another tag, peer or sequence number, a dropped last segment or
  swapped segments fail to open.

Freshness across runs of a job. The header binds the job id, but a job id can
repeat (a re-run, an operator's fixed id), and the exchange records everything
it carries: bound to the header alone, a payload sealed in one run would open
in a later run with the same id, replaying a public key, a gradient or a mask.
So the *receiver* contributes freshness: each party draws ``NONCE_BYTES``
random bytes when it opens a job (its receive nonce), announces them to the
job's other parties (one message under ``NONCE_TAG``, sealed like any payload
but bound to no nonce: :meth:`Sealer.announce`), and a sender seals every
payload for a receiver with that receiver's current nonce
(``transport._freshness`` runs the exchange). The receiver opens only with its
own current nonce, so a payload from an earlier run, which names the earlier
nonce, does not open. The announcement needs neither freshness nor secrecy: a
replayed or forged one makes the sender seal with a nonce the receiver does not
hold, and the receiver then cannot open what it gets. That is a denial of
service (which whoever can replay messages can cause anyway by dropping them),
never a replay. Nothing else is trusted: no clock, no shared job secret, no
replay cache on disk.

The sealed bytes start with ``MAGIC`` (``FSEAL`` and a version byte); the
first byte is not a valid protobuf tag and no Arrow IPC stream starts with it,
so sealed bytes are never mistaken for a codec value.

Trust assumption: a party's public sealing key must be bound to its party id,
or whoever substitutes a key reads that party's messages. Two ways:

* with mTLS, the key is carried in the party's certificate (``issue_party_cert
  (..., sealing_key=...)``) and peers accept it only from a certificate that
  chains to the federation CA and names that party (``_certs``): the CA
  vouches for it, as it already vouches for the party's TLS identity;
* without certificates, a key table (``sealing-peers.json``) is trusted as
  given: it must come from the federation operator with the route table (the
  embedded runner in ``fedspark run``), never through the exchange.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedspark.federation._errors import SealBroken, SealingKeyError
from fedspark.federation._message import Envelope, MessageKey, PayloadKind
from fedspark.federation.transport._spill import ReceivedPayload

MAGIC = b"FSEAL\x01"
SALT_BYTES = 16
TAG_BYTES = 16
NONCE_BYTES = 16
"""A receiver's per-job nonce: random, drawn when it opens the job."""
NONCE_TAG = "fedspark:receive-nonce"
"""The reserved tag of receive-nonce announcements (a transport refuses to send data under it)."""
SEGMENT_BYTES = 1 << 20
"""Plaintext bytes per AEAD segment: the most memory an open holds at once (per message)."""

_PREAMBLE = struct.Struct(">6s16sI")  # magic, salt, segment size
_INFO = b"fedspark-seal-v1"
KEY_FILE = "sealing.key"
PEERS_FILE = "sealing-peers.json"
PEER_CERTS_DIR = "peers"
CA_FILE = "ca.pem"


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class SealingKey:
    """A party's X25519 key pair for sealing; the private half never leaves the party."""

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SealingKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path | str) -> SealingKey:
        """Read a key written by :meth:`save` (32 raw bytes)."""
        file = Path(path)
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise SealingKeyError(str(file), f"cannot read the sealing key: {exc.strerror or exc}") from exc
        if len(raw) != 32:
            raise SealingKeyError(str(file), f"a sealing key has 32 bytes, this file has {len(raw)}")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def save(self, path: Path | str) -> None:
        """Write the private key with mode 0600 (replacing an older file)."""
        file = Path(path)
        raw = self._private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        file.unlink(missing_ok=True)
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(raw)

    @property
    def public_hex(self) -> str:
        return _raw_public(self._private.public_key()).hex()

    def shared(self, peer_public: bytes) -> bytes:
        return self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))


def load_peer_keys(path: Path | str) -> dict[str, bytes]:
    """``{party_id: public key}`` from a JSON file of hex strings (see :func:`write_peer_keys`)."""
    file = Path(path)
    try:
        table = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SealingKeyError(str(file), f"cannot read the sealing key table: {exc}") from exc
    if not isinstance(table, dict):
        raise SealingKeyError(str(file), "the sealing key table must map party ids to hex keys")
    keys: dict[str, bytes] = {}
    for party, text in table.items():
        try:
            raw = bytes.fromhex(str(text))
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise SealingKeyError(str(file), f"party {party}: not a 32-byte hex X25519 public key")
        keys[str(party)] = raw
    return keys


def write_peer_keys(path: Path | str, keys: Mapping[str, str]) -> None:
    """Write ``{party_id: public key hex}`` (the table every party of a job gets)."""
    Path(path).write_text(json.dumps(dict(sorted(keys.items())), indent=2), encoding="utf-8")


class Sealer:
    """Seals this party's outgoing payloads for their receivers and opens incoming ones.

    ``peers`` maps party ids to their public sealing keys (this party's own
    entry, if present, is ignored). A message to or from a party without a key
    is an error, never sent or accepted in the clear.
    """

    def __init__(self, party_id: str, key: SealingKey, peers: Mapping[str, bytes]) -> None:
        self.party_id = str(party_id)
        self._key = key
        self._peers = {str(p): bytes(k) for p, k in peers.items()}
        self._shared: dict[str, bytes] = {}

    @classmethod
    def from_dir(cls, folder: Path | str, party_id: str) -> Sealer:
        """This party's ``sealing.key`` and its peers' public keys, as the embedded runner writes them.

        Peers' keys come from ``peers/*.pem`` (party certificates carrying a
        sealing key, each checked against ``ca.pem``: the CA vouches for them)
        when that folder exists, else from ``sealing-peers.json`` (a table
        trusted as given). Either way this party's own entry must match its key.
        """
        base = Path(folder)
        key = SealingKey.load(base / KEY_FILE)
        certificates = sorted((base / PEER_CERTS_DIR).glob("*.pem"))
        if certificates:
            from fedspark.federation.security._certs import certified_sealing_keys

            peers = certified_sealing_keys(base / CA_FILE, certificates)
        else:
            peers = load_peer_keys(base / PEERS_FILE)
        own = peers.get(str(party_id))
        if own is not None and own.hex() != key.public_hex:
            raise SealingKeyError(str(base / KEY_FILE), f"the key of party {party_id} does not match its public key in {base}")
        return cls(party_id, key, peers)

    def seal(self, envelope: Envelope, receiver_nonce: bytes) -> Envelope:
        """The same envelope with its payload sealed for ``envelope.key.dst``, bound to its ``receiver_nonce``.

        ``receiver_nonce`` is the receiver's current nonce for the job, learned from its announcement.
        """
        return self._seal(envelope, _checked_nonce(receiver_nonce))

    def open(self, key: MessageKey, kind: PayloadKind, sealed: bytes | memoryview, nonce: bytes) -> bytes:
        """The plaintext of a sealed payload; ``SealBroken`` naming the sender if it does not open.

        ``nonce`` is this party's own receive nonce for the job.
        """
        return b"".join(self._segments(key, kind, memoryview(sealed), _checked_nonce(nonce)))

    def open_payload(self, key: MessageKey, payload: ReceivedPayload, nonce: bytes) -> ReceivedPayload:
        """Open a stored payload with this party's receive ``nonce``: a spilled one into a file next to it.

        The sealed payload is released either way; the caller owns the result.
        """
        kind = payload.kind or PayloadKind.VALUE
        try:
            nonce = _checked_nonce(nonce)
            if payload.path is None:
                data = self.open(key, kind, payload.read(), nonce)
                return ReceivedPayload(len(data), data=data, kind=payload.kind)
            opened = payload.path.with_name(payload.path.name + ".open")
            size = 0
            try:
                with opened.open("wb") as out:
                    for plain in self._segments(key, kind, memoryview(payload.buffer()), nonce):
                        out.write(plain)
                        size += len(plain)
            except BaseException:
                opened.unlink(missing_ok=True)
                raise
            return ReceivedPayload(size, path=opened, kind=payload.kind)
        finally:
            payload.release()

    def announce(self, key: MessageKey, nonce: bytes) -> Envelope:
        """This party's receive ``nonce`` for ``key.job_id``, sealed for ``key.dst`` under ``NONCE_TAG``.

        Bound to the header but to no nonce (there is none yet): the one seal
        that is not fresh, harmlessly (see the module doc).
        """
        if key.tag != NONCE_TAG:
            raise ValueError(f"a receive-nonce announcement travels under {NONCE_TAG!r}, not {key.tag!r}")
        return self._seal(Envelope(key, _checked_nonce(nonce), PayloadKind.RAW), b"")

    def read_announcement(self, key: MessageKey, sealed: bytes | memoryview) -> bytes:
        """The receive nonce ``key.src`` announced; ``SealBroken`` if it does not open or is not a nonce."""
        if key.tag != NONCE_TAG:
            raise ValueError(f"a receive-nonce announcement travels under {NONCE_TAG!r}, not {key.tag!r}")
        nonce = b"".join(self._segments(key, PayloadKind.RAW, memoryview(sealed), b""))
        if len(nonce) != NONCE_BYTES:
            raise SealBroken(key.job_id, key.tag, str(key.src), f"a receive nonce has {NONCE_BYTES} bytes, not {len(nonce)}")
        return nonce

    def _seal(self, envelope: Envelope, nonce: bytes) -> Envelope:
        key = envelope.key
        salt = os.urandom(SALT_BYTES)
        aead = AESGCM(self._message_key(key, envelope.kind, key.dst.party_id, salt, "sealing"))
        aad = _aad(key, envelope.kind, nonce)
        payload = memoryview(envelope.payload)
        count = max(1, -(-len(payload) // SEGMENT_BYTES))
        pieces = [_PREAMBLE.pack(MAGIC, salt, SEGMENT_BYTES)]
        for index in range(count):
            last = index == count - 1
            segment = payload[index * SEGMENT_BYTES : (index + 1) * SEGMENT_BYTES]
            pieces.append(aead.encrypt(_nonce(index, last), bytes(segment), aad))
        return Envelope(key, b"".join(pieces), envelope.kind)

    def _segments(self, key: MessageKey, kind: PayloadKind, sealed: memoryview, nonce: bytes) -> Iterator[bytes]:
        peer = str(key.src)
        if bytes(sealed[: len(MAGIC)]) != MAGIC:
            raise SealBroken(key.job_id, key.tag, peer, "the payload is not sealed (no seal marker): refused in the clear")
        if len(sealed) < _PREAMBLE.size + TAG_BYTES:
            raise SealBroken(key.job_id, key.tag, peer, f"{len(sealed)} bytes are too few for a sealed payload")
        _, salt, segment_bytes = _PREAMBLE.unpack(sealed[: _PREAMBLE.size])
        if not 0 < segment_bytes <= 64 * SEGMENT_BYTES:
            raise SealBroken(key.job_id, key.tag, peer, f"implausible segment size {segment_bytes}")
        aead = AESGCM(self._message_key(key, kind, key.src.party_id, salt, "opening"))
        aad = _aad(key, kind, nonce)
        body = sealed[_PREAMBLE.size :]
        step = segment_bytes + TAG_BYTES
        count = max(1, -(-len(body) // step))
        for index in range(count):
            last = index == count - 1
            try:
                yield aead.decrypt(_nonce(index, last), bytes(body[index * step : (index + 1) * step]), aad)
            except InvalidTag:
                raise SealBroken(
                    key.job_id,
                    key.tag,
                    peer,
                    f"segment {index + 1} of {count} does not authenticate: the payload was altered, truncated "
                    f"or re-addressed in transit, sealed for another run of this job (a replay, or a stale "
                    f"receive nonce), or not sealed by party {key.src.party_id} for party {self.party_id}",
                ) from None

    def _message_key(self, key: MessageKey, kind: PayloadKind, peer_id: str, salt: bytes, action: str) -> bytes:
        shared = self._shared.get(peer_id)
        if shared is None:
            public = self._peers.get(peer_id)
            if public is None:
                known = ", ".join(sorted(self._peers)) or "none"
                raise SealingKeyError(
                    f"party {peer_id}",
                    f"job {key.job_id}: no public sealing key for party {peer_id} while {action} '{key.tag}' "
                    f"(keys known for: {known})",
                )
            shared = self._key.shared(public)
            self._shared[peer_id] = shared
        low, high = sorted((self.party_id, peer_id))
        info = b" ".join([_INFO, low.encode(), high.encode()])
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(shared)


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


def _checked_nonce(nonce: bytes) -> bytes:
    """A receive nonce must be exactly ``NONCE_BYTES``: an empty one would silently drop freshness."""
    if not isinstance(nonce, bytes | bytearray) or len(nonce) != NONCE_BYTES:
        size = len(nonce) if isinstance(nonce, bytes | bytearray) else type(nonce).__name__
        raise ValueError(f"a receive nonce has {NONCE_BYTES} bytes, got {size}")
    return bytes(nonce)


def _aad(key: MessageKey, kind: PayloadKind, nonce: bytes) -> bytes:
    """The header fields and the receiver's nonce a sealed payload is bound to (canonical JSON).

    An announcement is bound to the empty nonce; every other payload to a
    ``NONCE_BYTES`` one, so the two can never stand in for each other.
    """
    fields = [key.job_id, key.tag, key.src.role.value, key.src.party_id, key.dst.role.value, key.dst.party_id,
              key.seq, kind.value, nonce.hex()]
    return _INFO + b"\0" + json.dumps(fields, separators=(",", ":")).encode() + b"\0"
