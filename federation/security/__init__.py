"""Who a party is and what the path may read: mutual TLS, the federation CA's certificates, sealing.

:class:`TlsConfig` holds a party's TLS material; ``init_ca`` and
``issue_party_cert`` make it (they need ``cryptography``). A :class:`Sealer`
seals payloads end to end for their receiver, so an exchange forwards opaque
bytes, and binds each to the receiver's per-job nonce so a recorded payload
cannot be replayed into a later run of the job; the files below are where a
party keeps its sealing material.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedspark.federation._lazy import lazy_exports

if TYPE_CHECKING:
    from fedspark.federation.security._certs import (
        CaFiles,
        PartyFiles,
        certified_sealing_keys,
        init_ca,
        issue_party_cert,
    )
    from fedspark.federation.security._pair_keys import PairKeys
    from fedspark.federation.security._seal import (
        CA_FILE,
        KEY_FILE,
        NONCE_BYTES,
        NONCE_TAG,
        PEER_CERTS_DIR,
        PEERS_FILE,
        Sealer,
        SealingKey,
        load_peer_keys,
        write_peer_keys,
    )
    from fedspark.federation.security._tls import TlsConfig, diagnose, party_of_auth_context

_EXPORTS = {
    "CaFiles": "fedspark.federation.security._certs",
    "PartyFiles": "fedspark.federation.security._certs",
    "certified_sealing_keys": "fedspark.federation.security._certs",
    "init_ca": "fedspark.federation.security._certs",
    "issue_party_cert": "fedspark.federation.security._certs",
    "PairKeys": "fedspark.federation.security._pair_keys",
    "CA_FILE": "fedspark.federation.security._seal",
    "KEY_FILE": "fedspark.federation.security._seal",
    "NONCE_BYTES": "fedspark.federation.security._seal",
    "NONCE_TAG": "fedspark.federation.security._seal",
    "PEERS_FILE": "fedspark.federation.security._seal",
    "PEER_CERTS_DIR": "fedspark.federation.security._seal",
    "Sealer": "fedspark.federation.security._seal",
    "SealingKey": "fedspark.federation.security._seal",
    "load_peer_keys": "fedspark.federation.security._seal",
    "write_peer_keys": "fedspark.federation.security._seal",
    "TlsConfig": "fedspark.federation.security._tls",
    "diagnose": "fedspark.federation.security._tls",
    "party_of_auth_context": "fedspark.federation.security._tls",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "CA_FILE",
    "CaFiles",
    "KEY_FILE",
    "NONCE_BYTES",
    "NONCE_TAG",
    "PEERS_FILE",
    "PEER_CERTS_DIR",
    "PairKeys",
    "PartyFiles",
    "Sealer",
    "SealingKey",
    "TlsConfig",
    "certified_sealing_keys",
    "diagnose",
    "init_ca",
    "issue_party_cert",
    "load_peer_keys",
    "party_of_auth_context",
    "write_peer_keys",
]
