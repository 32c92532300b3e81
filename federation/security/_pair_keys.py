"""Static secrets each pair of parties shares, bound to their party ids: authentication through a relay.

A protocol whose messages pass through a party that must not be trusted with
them (the arbiter relaying round keys in secure aggregation) needs to know
that a value relayed "from client u" really came from u. The pair secret of u
and v is the X25519 agreement of their sealing keys, the same keys the
federation CA certifies in their certificates (``_certs``): only u and v can
compute it, so a MAC under it proves to v that u said exactly this, and a
secret box under it hides a value from everyone but v. A MAC costs a
microsecond where an ECDSA verification costs a hundred, and secure
aggregation checks one per neighbour per message.

Two kinds, and every output of a run says which (``describe``):

* ``from_dir``: this party's sealing key and its peers' public keys as
  certified by the CA (``certified``), or from a key table the operator handed
  out (not certified: trusted as given);
* ``dealt``: one process deals every party's pair secrets from a random
  master secret: simulations and protocol unit tests, where all parties are
  threads of one process and there is nothing to authenticate against.

Keys are derived per use: ``key(peer, context)`` hashes the pair secret with a
context string naming job, round and purpose, so no key serves two purposes
and a MAC made for one round does not verify in another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from fedspark.federation._errors import SealingKeyError
from fedspark.federation.security._seal import CA_FILE, KEY_FILE, PEER_CERTS_DIR, PEERS_FILE, SealingKey, load_peer_keys

SECRET_BYTES = 32
MAC_BYTES = 16
_PERSON = b"fedspark-pair-v1"


class PairKeys:
    """This party's pair secrets with every peer, computed once per peer and cached."""

    def __init__(self, party_id: str, shared: Callable[[str], bytes], peers: Iterable[str], *,
                 certified: bool, origin: str) -> None:
        self.party_id = str(party_id)
        self.certified = certified
        self.origin = origin
        self._shared = shared
        self._peers = frozenset(str(p) for p in peers) - {self.party_id}
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ construction

    @classmethod
    def from_keys(cls, party_id: str, key: SealingKey, peers: Mapping[str, bytes], *, certified: bool,
                  origin: str) -> PairKeys:
        """Pair secrets from this party's X25519 key and its peers' public keys."""

        def shared(peer: str) -> bytes:
            raw = key.shared(peers[peer])
            low, high = sorted((str(party_id), peer))
            return hashlib.blake2b(f"{low}\x00{high}".encode(), digest_size=SECRET_BYTES, person=_PERSON,
                                   salt=b"x25519", key=raw).digest()

        return cls(party_id, shared, peers, certified=certified, origin=origin)

    @classmethod
    def from_dir(cls, folder: Path | str, party_id: str) -> PairKeys:
        """As ``Sealer.from_dir`` reads them: ``sealing.key`` and ``peers/*.pem`` checked against ``ca.pem``
        (certified), else ``sealing-peers.json`` (as given by the operator)."""
        base = Path(folder)
        key = SealingKey.load(base / KEY_FILE)
        certificates = sorted((base / PEER_CERTS_DIR).glob("*.pem"))
        if certificates:
            from fedspark.federation.security._certs import certified_sealing_keys

            peers, certified = certified_sealing_keys(base / CA_FILE, certificates), True
        else:
            peers, certified = load_peer_keys(base / PEERS_FILE), False
        own = peers.get(str(party_id))
        if own is not None and own.hex() != key.public_hex:
            raise SealingKeyError(str(base / KEY_FILE), f"the key of party {party_id} does not match its public key")
        origin = "sealing keys certified by the federation CA" if certified else "a sealing-key table from the operator"
        return cls.from_keys(party_id, key, peers, certified=certified, origin=origin)

    @classmethod
    def dealt(cls, party_ids: Iterable[str], master: bytes | None = None) -> dict[str, PairKeys]:
        """Every party's pair secrets dealt from one master secret (one process holds them all)."""
        ids = [str(p) for p in party_ids]
        master = secrets.token_bytes(SECRET_BYTES) if master is None else master

        def for_party(me: str) -> PairKeys:
            def shared(peer: str) -> bytes:
                low, high = sorted((me, peer))
                return hashlib.blake2b(f"{low}\x00{high}".encode(), digest_size=SECRET_BYTES, person=_PERSON,
                                       salt=b"dealt", key=master).digest()

            return cls(me, shared, ids, certified=False, origin="dealt in one process (no party certificates)")

        return {me: for_party(me) for me in ids}

    # ------------------------------------------------------------ use

    def knows(self, peer: str) -> bool:
        return str(peer) in self._peers

    def key(self, peer: str, context: str) -> bytes:
        """A 32-byte key only this party and ``peer`` can compute, for ``context`` alone."""
        secret = self._secret(str(peer))
        return hashlib.blake2b(context.encode(), digest_size=SECRET_BYTES, person=_PERSON, key=secret).digest()

    def mac(self, peer: str, context: str, message: bytes) -> bytes:
        """A tag proving to ``peer`` that this party said ``message`` in ``context``."""
        return hashlib.blake2b(message, digest_size=MAC_BYTES, key=self.key(peer, context)).digest()

    def verify(self, peer: str, context: str, message: bytes, tag: object) -> bool:
        """Whether ``peer`` made ``tag`` for ``message`` in ``context`` (constant time; False for junk)."""
        if not isinstance(tag, bytes) or len(tag) != MAC_BYTES or not self.knows(peer):
            return False
        return hmac.compare_digest(self.mac(peer, context, message), tag)

    def describe(self) -> str:
        return f"{'certified' if self.certified else 'not certified'}: {self.origin}"

    def _secret(self, peer: str) -> bytes:
        if peer == self.party_id or peer not in self._peers:
            raise SealingKeyError(f"of party {self.party_id}", f"no pair key with party {peer}")
        with self._lock:
            secret = self._cache.get(peer)
        if secret is None:
            secret = self._shared(peer)
            with self._lock:
                self._cache[peer] = secret
        return secret
