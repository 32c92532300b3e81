"""Errors of the federation layer; each names the job, the tag and the peer.

Raised to the party that is sending or receiving (``FederationError``)::

    FederationError
    ├── CodecError          a value cannot be encoded, or received bytes cannot be decoded
    │   └── UnknownPayloadKind  a header names a payload kind the codec does not declare
    ├── PeerTimeout         no message under a tag from a peer within the timeout
    ├── PeerSilent          a peer stopped answering heartbeats while we waited for it
    ├── PeerUnreachable     the peer's gateway did not answer before the connect deadline
    │   └── HandshakeFailed the TLS handshake with the peer failed (certificate, CA, plaintext)
    ├── DeliveryFailed      the peer answers but a message makes no progress (chunks keep failing)
    ├── PayloadTooLarge     a send above this transport's ``max_send_bytes``; nothing was sent
    ├── NoRoute             no gateway address is known for the peer's party
    ├── SendRefused         the peer's gateway refused the message (``.reason`` says why)
    ├── DuplicateSend       a (tag, peer) was sent twice: scopes must make tags unique
    ├── DuplicateRecv       a (tag, peer) was received twice
    ├── UnknownParty        a party that is not part of the job
    ├── EmptyGroup          a role group with no party in this job (e.g. no arbiter)
    ├── InvalidRoster       the job's party list is unusable (duplicates, two guests)
    ├── InvalidName         a scope or value name that would make an ambiguous tag
    ├── TransportClosed     the local transport was closed under a waiting call
    ├── BindFailed          a gateway could not listen on its address
    ├── TableIncomplete     a distributed table's manifest and partitions disagree
    ├── CertificateError    TLS material is missing, unreadable, expired or not from the CA
    ├── SealingKeyError     a sealing key is missing, unreadable, or unknown for a peer
    └── SealBroken          a sealed payload does not open: altered, re-addressed or not sealed

Refused before a gateway starts or a route is used (``ConfigError``: this party's own
settings would expose it; the CLI exits with the config error code)::

    ConfigError
    └── InsecureTransport
        ├── PlaintextOffLoopback  a bind or route off loopback without mTLS, and no ``insecure_plaintext``
        └── UnsealedStar          a star (an exchange) without end-to-end sealing

Raised inside the *receiving* gateway when a peer's message is not acceptable
(``ProtocolError``: the peer misbehaves); the gRPC servicer maps each to a status
code and the sender sees a ``SendRefused`` carrying the same ``RefusalReason``::

    ProtocolError
    └── MessageRefused
        ├── UnknownJob      the job was never opened on this gateway
        ├── NotAMember      sender or receiver is not a party of the job
        ├── WrongRecipient  addressed to another party than this gateway's
        ├── CorruptMessage  checksum, chunk order, size or header is wrong
        ├── MessageTooLarge bigger than this gateway accepts
        ├── QuotaExceeded   the sending party has used up its byte quota for the job
        ├── UnsupportedPayload  a payload kind the codec does not declare (never guessed at)
        ├── IdentityMismatch    the TLS certificate names another party than the message claims
        ├── UnknownDestination  an exchange has no route to the party a message is addressed to
        ├── RelayRefused        a party's own gateway will not forward a table partition (token, sender)
        ├── ForwardFailed       a party's own gateway stored a partition but could not deliver it onwards
        └── ReadRefused         a party's own gateway will not serve a received table's partition (token, caller)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from fedspark.common import ConfigError, FederationError, ProtocolError


class CodecError(FederationError):
    """A value has no wire encoding, or bytes are not a valid encoding.

    Decoding never falls back to anything clever: bytes from another
    organisation that do not parse are an error, never executed or guessed at.
    """

    def __init__(
        self,
        reason: str,
        *,
        job_id: str | None = None,
        tag: str | None = None,
        peer: str | None = None,
    ) -> None:
        where = f"job {job_id}: '{tag}' with {peer}: " if job_id is not None else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.job_id, self.tag, self.peer = job_id, tag, peer

    def with_context(self, job_id: str, tag: str, peer: str) -> CodecError:
        """The same error, naming the message it happened in."""
        return CodecError(self.reason, job_id=job_id, tag=tag, peer=peer)


class UnknownPayloadKind(CodecError):
    """A header announces a payload kind the codec does not declare.

    Kept apart from other decoding errors so the gateway can refuse such a
    message as unsupported (not as corrupt): nothing is ever decoded by guessing.
    """

    def __init__(self, number: int) -> None:
        super().__init__(f"unknown payload kind number {number}")
        self.number = number


class PeerTimeout(FederationError):
    """No message under ``tag`` arrived from ``peer`` in time."""

    def __init__(self, job_id: str, tag: str, peer: str, waited_s: float) -> None:
        super().__init__(f"job {job_id}: no '{tag}' from {peer} after {waited_s:.0f}s")
        self.job_id, self.tag, self.peer, self.waited_s = job_id, tag, peer, waited_s


class PeerSilent(FederationError):
    """A peer answered no heartbeat for longer than the configured limit.

    Raised to a receiver while it waits, so a dead peer is reported within
    ``limit_s`` instead of at the end of a long receive timeout; a peer that
    is merely busy computing still answers heartbeats from its gateway threads.
    """

    def __init__(self, job_id: str, tag: str, peer: str, silent_s: float, limit_s: float) -> None:
        super().__init__(
            f"job {job_id}: {peer} has been silent for {silent_s:.1f}s "
            f"(no heartbeat; limit {limit_s:g}s) while waiting for '{tag}'"
        )
        self.job_id, self.tag, self.peer = job_id, tag, peer
        self.silent_s, self.limit_s = silent_s, limit_s


class PeerUnreachable(FederationError):
    """The peer's gateway could not be reached before the connect deadline."""

    def __init__(self, job_id: str, tag: str, peer: str, address: str, reason: str) -> None:
        super().__init__(f"job {job_id}: cannot deliver '{tag}' to {peer} at {address}: {reason}")
        self.job_id, self.tag, self.peer = job_id, tag, peer
        self.address, self.reason = address, reason


class HandshakeFailed(PeerUnreachable):
    """The TLS handshake with the peer's gateway failed; retrying will not help.

    ``reason`` says which side refused what (expired or foreign certificate,
    a peer that names another party, TLS on one side only), as far as it can
    be told from this side.
    """


class DeliveryFailed(FederationError):
    """The peer's gateway answers, but a message stopped making progress.

    For instance a chunk that is lost or corrupted on every attempt: after a
    bounded number of resends the sender gives up instead of looping forever.
    """

    def __init__(self, job_id: str, tag: str, peer: str, address: str, reason: str) -> None:
        super().__init__(f"job {job_id}: '{tag}' to {peer} at {address} failed: {reason}")
        self.job_id, self.tag, self.peer = job_id, tag, peer
        self.address, self.reason = address, reason


class PayloadTooLarge(FederationError):
    """A message is bigger than this transport may send; raised before anything is sent."""

    def __init__(self, job_id: str, tag: str, peer: str, size: int, limit: int) -> None:
        super().__init__(
            f"job {job_id}: '{tag}' to {peer} is {size} bytes, more than the {limit} bytes "
            "this transport may send (max_send_bytes); nothing was sent"
        )
        self.job_id, self.tag, self.peer = job_id, tag, peer
        self.size, self.limit = size, limit


class NoRoute(FederationError):
    """The route table has no gateway address for the peer's party."""

    def __init__(self, job_id: str, tag: str, peer: str, party_id: str, known: Iterable[str]) -> None:
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"job {job_id}: no route to party {party_id} for '{tag}' to {peer} "
            f"(routes known for: {known_text})"
        )
        self.job_id, self.tag, self.peer, self.party_id = job_id, tag, peer, party_id


class RefusalReason(str, enum.Enum):
    """Why a gateway refused a message; travels back to the sender."""

    UNKNOWN_JOB = "unknown_job"
    NOT_A_MEMBER = "not_a_member"
    WRONG_RECIPIENT = "wrong_recipient"
    CORRUPT = "corrupt"
    TOO_LARGE = "too_large"
    QUOTA = "quota"
    UNSUPPORTED = "unsupported"
    IDENTITY = "identity"
    NO_ROUTE = "no_route"
    RELAY_REFUSED = "relay_refused"
    FORWARD_FAILED = "forward_failed"
    READ_REFUSED = "read_refused"

    def __str__(self) -> str:
        return self.value


class SendRefused(FederationError):
    """The peer's gateway received the message and refused it; resending will not help."""

    def __init__(
        self, job_id: str, tag: str, peer: str, reason: RefusalReason | None, detail: str
    ) -> None:
        super().__init__(f"job {job_id}: {peer} refused '{tag}': {detail}")
        self.job_id, self.tag, self.peer = job_id, tag, peer
        self.reason, self.detail = reason, detail


class DuplicateSend(FederationError):
    """A (job, tag, peer) was sent twice.

    Tags must be unique per peer so that a receiver can never confuse two
    rounds; repeated steps belong in ``ctx.iterations`` / ``ctx.sub`` scopes.
    """

    def __init__(self, job_id: str, tag: str, peer: str) -> None:
        super().__init__(
            f"job {job_id}: '{tag}' was already sent to {peer}; "
            "use ctx.sub()/ctx.iterations() to give repeated steps their own tags"
        )
        self.job_id, self.tag, self.peer = job_id, tag, peer


class DuplicateRecv(FederationError):
    """A (job, tag, peer) was received twice; the second would wait forever."""

    def __init__(self, job_id: str, tag: str, peer: str) -> None:
        super().__init__(f"job {job_id}: '{tag}' from {peer} was already received")
        self.job_id, self.tag, self.peer = job_id, tag, peer


class UnknownParty(FederationError, ValueError):
    """A party that is not part of the job was named as sender or receiver."""

    def __init__(self, job_id: str, party: str, parties: Iterable[str]) -> None:
        super().__init__(
            f"job {job_id}: {party} is not a party of this job (parties: {', '.join(parties)})"
        )
        self.job_id, self.party = job_id, party


class EmptyGroup(FederationError, LookupError):
    """A role group (``ctx.arbiter``, ``ctx.hosts``) has no party in this job."""

    def __init__(self, job_id: str, group: str, action: str) -> None:
        super().__init__(f"job {job_id} has no {group}: cannot {action}")
        self.job_id, self.group, self.action = job_id, group, action


class InvalidRoster(FederationError, ValueError):
    """The job's party list cannot be used (duplicates, several guests or arbiters)."""

    def __init__(self, job_id: str, problem: str) -> None:
        super().__init__(f"job {job_id}: invalid party list: {problem}")
        self.job_id, self.problem = job_id, problem


class InvalidName(FederationError, ValueError):
    """A scope or value name that would make tags ambiguous (empty, or with a dot)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"invalid federation name {name!r}: {problem}")
        self.name, self.problem = name, problem


class TransportClosed(FederationError):
    """The local transport was closed while a call was using it."""

    def __init__(self, job_id: str, tag: str, peer: str, action: str) -> None:
        super().__init__(f"job {job_id}: transport closed while {action} '{tag}' ({peer})")
        self.job_id, self.tag, self.peer, self.action = job_id, tag, peer, action


class TableIncomplete(FederationError):
    """A distributed table's manifest and its partitions disagree (a partition is missing or short).

    Raised by the receiver instead of handing the algorithm a table with rows
    missing: vertical algorithms match row i across parties, so a silently
    short table would pair the wrong people.
    """

    def __init__(self, job_id: str, tag: str, peer: str, reason: str) -> None:
        super().__init__(f"job {job_id}: table '{tag}' from {peer}: {reason}")
        self.job_id, self.tag, self.peer, self.reason = job_id, tag, peer, reason


class BindFailed(FederationError):
    """A gateway could not listen on the requested address (port taken, bad host)."""

    def __init__(self, party_id: str, address: str, reason: str) -> None:
        super().__init__(f"party {party_id}: gateway cannot listen on {address}: {reason}")
        self.party_id, self.address, self.reason = party_id, address, reason


class CertificateError(FederationError, ValueError):
    """TLS material cannot be used: missing, unreadable, expired, or not issued by the CA.

    Checked when a gateway or transport starts, so a party with a bad
    certificate fails at once with the file named, not later as a vague
    handshake error at some peer.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"certificate {path}: {problem}")
        self.path, self.problem = path, problem


class SealingKeyError(FederationError, ValueError):
    """Sealing material cannot be used: a key file is unreadable, or a peer has no public key.

    Checked before anything is sent: a message is never sent in the clear
    because a key is missing.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"sealing key {where}: {problem}")
        self.where, self.problem = where, problem


class SealBroken(FederationError):
    """A sealed payload from ``peer`` does not open; it is never decoded.

    Either someone on the path (an exchange, a proxy) altered, truncated or
    re-addressed it, or the peer sealed it with another key than the one this
    party was given for it.
    """

    def __init__(self, job_id: str, tag: str, peer: str, reason: str) -> None:
        super().__init__(f"job {job_id}: '{tag}' from {peer} was rejected: broken seal: {reason}")
        self.job_id, self.tag, self.peer, self.reason = job_id, tag, peer, reason


class InsecureTransport(ConfigError):
    """This party's transport settings would expose its traffic or its identity; nothing was started."""


class PlaintextOffLoopback(InsecureTransport):
    """A gateway bind or a route leaves this machine without mTLS, and the party did not opt in.

    Plaintext gRPC authenticates nobody: on a network, anyone who reaches the
    port can send in any party's name (a forged public key, a forged
    gradient) and anyone on the path reads every value. Loopback is the only
    place that is safe by default; elsewhere the party's *own* configuration
    must say ``federation.insecure_plaintext: true`` (a shared job file cannot).
    """

    def __init__(self, who: str, what: str, address: str) -> None:
        super().__init__(
            f"{who}: {what} {address}, which is not a loopback address, and mTLS is not configured: "
            "give the party its TLS files (tls: / --tls-dir), or set federation.insecure_plaintext: true "
            "in this party's own configuration to accept plaintext gRPC off loopback"
        )
        self.who, self.what, self.address = who, what, address


class UnsealedStar(InsecureTransport):
    """A star topology without end-to-end sealing: the exchange would read every payload.

    The exchange terminates TLS on both sides, so mTLS alone protects each hop,
    not the payload: without a ``Sealer`` it sees public keys, masked
    gradients and scores in the clear, and could alter them unnoticed.
    """

    def __init__(self, party_id: str, exchange: str) -> None:
        super().__init__(
            f"party {party_id}: a star topology through exchange {exchange!r} needs end-to-end sealing "
            "(Security(sealer=...)): without it the exchange reads and can alter every payload"
        )
        self.party_id, self.exchange = party_id, exchange


class MessageRefused(ProtocolError):
    """A receiving gateway will not store a peer's message.

    Raised inside the receiver (the peer misbehaved or is misconfigured); the
    sender learns the ``reason`` and the message text through the wire status.
    """

    reason: RefusalReason = RefusalReason.CORRUPT

    def __init__(self, job_id: str, tag: str, src: str, detail: str) -> None:
        super().__init__(detail)
        self.job_id, self.tag, self.src, self.detail = job_id, tag, src, detail


class UnknownJob(MessageRefused):
    reason = RefusalReason.UNKNOWN_JOB

    def __init__(self, job_id: str, tag: str, src: str, party_id: str) -> None:
        super().__init__(
            job_id,
            tag,
            src,
            f"gateway of party {party_id} has no open job '{job_id}' (message '{tag}' from {src})",
        )


class NotAMember(MessageRefused):
    reason = RefusalReason.NOT_A_MEMBER

    def __init__(self, job_id: str, tag: str, src: str, party: str, side: str) -> None:
        super().__init__(
            job_id,
            tag,
            src,
            f"job {job_id}: {side} {party} is not a party of this job (message '{tag}')",
        )
        self.party = party


class WrongRecipient(MessageRefused):
    reason = RefusalReason.WRONG_RECIPIENT

    def __init__(self, job_id: str, tag: str, src: str, dst: str, party_id: str) -> None:
        super().__init__(
            job_id,
            tag,
            src,
            f"job {job_id}: '{tag}' from {src} is addressed to {dst}, "
            f"but this gateway serves party {party_id}",
        )


class CorruptMessage(MessageRefused):
    reason = RefusalReason.CORRUPT

    def __init__(self, job_id: str, tag: str, src: str, problem: str) -> None:
        super().__init__(job_id, tag, src, f"job {job_id}: '{tag}' from {src} is corrupt: {problem}")
        self.problem = problem


class MessageTooLarge(MessageRefused):
    reason = RefusalReason.TOO_LARGE

    def __init__(self, job_id: str, tag: str, src: str, size: int, limit: int) -> None:
        super().__init__(
            job_id,
            tag,
            src,
            f"job {job_id}: '{tag}' from {src} has {size} bytes, "
            f"more than this gateway accepts ({limit})",
        )
        self.size, self.limit = size, limit


class QuotaExceeded(MessageRefused):
    """A party has sent this gateway more bytes in one job than the gateway accepts from one peer.

    Every message is bounded by ``MessageTooLarge``, but a peer could still
    fill the receiver's disk with many of them (under tags nobody will ever
    read, or in partitions of attempts the manifest will not name). Counted
    per (job, sending party), over everything stored for the job, read or not.
    """

    reason = RefusalReason.QUOTA

    def __init__(self, job_id: str, tag: str, src: str, party_id: str, used: int, size: int, quota: int) -> None:
        super().__init__(
            job_id,
            tag,
            src,
            f"job {job_id}: party {party_id} has sent {used} bytes in this job; '{tag}' from {src} "
            f"({size} bytes) would pass the {quota} bytes this gateway accepts from one party per job",
        )
        self.party_id, self.used, self.size, self.quota = party_id, used, size, quota


class UnsupportedPayload(MessageRefused):
    """The header names a payload kind the codec does not declare; no byte is decoded."""

    reason = RefusalReason.UNSUPPORTED

    def __init__(self, job_id: str, tag: str, src: str, problem: str) -> None:
        super().__init__(job_id, tag, src, f"job {job_id}: '{tag}' from {src} is not supported: {problem}")
        self.problem = problem


class IdentityMismatch(MessageRefused):
    """A peer's TLS certificate names another party than its message claims to come from.

    The certificate chains to the federation CA (gRPC checked that), so the
    peer is *some* party; but a party may only speak for itself, or one member
    could inject values in another member's name.
    """

    reason = RefusalReason.IDENTITY

    def __init__(self, job_id: str, tag: str, src: str, certified: str | None) -> None:
        named = f"party {certified}" if certified else "no party"
        super().__init__(
            job_id,
            tag,
            src,
            f"job {job_id}: '{tag}' claims to come from {src}, but the sender's certificate names {named}",
        )
        self.certified = certified


class UnknownDestination(MessageRefused):
    """An exchange was asked to forward a message to a party it has no route to."""

    reason = RefusalReason.NO_ROUTE

    def __init__(self, job_id: str, tag: str, src: str, party_id: str, exchange: str, known: Iterable[str]) -> None:
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(
            job_id,
            tag,
            src,
            f"exchange {exchange} has no route to party {party_id} ('{tag}' from {src}; routes known for: {known_text})",
        )
        self.party_id, self.exchange = party_id, exchange


class RelayRefused(MessageRefused):
    """A party's gateway will not forward a message an executor handed it (see ``star._relay``).

    Only this party's executors, holding the per-table token the driver
    registered, may make the gateway send in the party's name: anyone else who
    can reach the in-party port (or a peer on the federation port) must not.
    """

    reason = RefusalReason.RELAY_REFUSED

    def __init__(self, job_id: str, tag: str, dst: str, party_id: str, why: str) -> None:
        super().__init__(job_id, tag, dst, f"job {job_id}: party {party_id}'s gateway will not forward '{tag}' to {dst}: {why}")
        self.party_id = party_id


class ForwardFailed(MessageRefused):
    """A party's gateway stored an executor's partition but could not deliver it to the peer.

    Final for this task attempt (the partition was handed over once); Spark's
    task retry sends the partition again as a new attempt.
    """

    reason = RefusalReason.FORWARD_FAILED

    def __init__(self, job_id: str, tag: str, dst: str, party_id: str, cause: str) -> None:
        super().__init__(job_id, tag, dst, f"job {job_id}: party {party_id}'s gateway could not forward '{tag}' to {dst}: {cause}")
        self.party_id = party_id


class ReadRefused(MessageRefused):
    """A party's gateway will not serve a partition of a table it received (see ``transport._served``).

    A received table is read by this party's executors through the gateway's
    in-party port, each holding the per-table read token the driver
    registered; anyone else who can reach that port (another local user, or a
    peer on the federation port) must not read what the peer sent.
    """

    reason = RefusalReason.READ_REFUSED

    def __init__(self, job_id: str, tag: str, src: str, party_id: str, why: str) -> None:
        super().__init__(job_id, tag, src, f"job {job_id}: party {party_id}'s gateway will not serve '{tag}' from {src}: {why}")
        self.party_id = party_id
