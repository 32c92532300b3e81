"""Sealing keys for every party of a ``fedspark run`` job, written into each party's own folder.

Each party gets one X25519 key pair. In a star they seal every payload end to
end; in every topology they give each pair of parties a pair key
(``federation.PairKeys``) with which clients of secure aggregation authenticate
what the arbiter relays. With ``tls: true`` each party's certificate carries its
public key and every party gets the others' certificates (the CA vouches for the
keys); without TLS a table of public keys (the runner plays the federation
operator who distributes it with the route table). The private keys are deleted
when the run ends (``remove``), unless a recording tap needs them to open what
it recorded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fedspark.common import PartyRef


class SealingKeys:
    """The sealing keys of a job's parties, each written into that party's own folder.

    ``distribute_certificates`` (with mTLS) gives every party the others'
    certificates, which carry their sealing keys and are checked against the
    CA; ``distribute_table`` (without) gives every party a table of public keys.
    """

    def __init__(self, run_dir: Path, parties: list[PartyRef]) -> None:
        from fedspark.federation import SealingKey
        from fedspark.federation.security import KEY_FILE

        self.root = run_dir / "sealing"
        self._keys = {ref.party_id: SealingKey.generate() for ref in parties}
        for party, key in self._keys.items():
            self.folder(party).mkdir(parents=True, exist_ok=True)
            key.save(self.folder(party) / KEY_FILE)

    def folder(self, party_id: str) -> Path:
        return self.root / party_id

    def public(self, party_id: str) -> bytes | None:
        """A party's raw public key (None for names that seal nothing, like the exchange)."""
        key = self._keys.get(party_id)
        return bytes.fromhex(key.public_hex) if key is not None else None

    def distribute_table(self) -> None:
        from fedspark.federation.security import PEERS_FILE, write_peer_keys

        table = {party: key.public_hex for party, key in self._keys.items()}
        for party in self._keys:
            write_peer_keys(self.folder(party) / PEERS_FILE, table)

    def distribute_certificates(self, tls_root: Path) -> None:
        """Copy every party's certificate (from ``<tls_root>/<party>/``) and the CA into each party's folder."""
        from fedspark.federation.security import CA_FILE, PEER_CERTS_DIR

        for party in self._keys:
            peers = self.folder(party) / PEER_CERTS_DIR
            peers.mkdir(exist_ok=True)
            shutil.copyfile(tls_root / "ca" / "ca.pem", self.folder(party) / CA_FILE)
            for other in self._keys:
                shutil.copyfile(tls_root / other / f"party-{other}.pem", peers / f"party-{other}.pem")

    def party_args(self, ref: PartyRef) -> list[str]:
        """The party's sealing folder on its command line."""
        return ["--sealing-dir", str(self.folder(ref.party_id))]

    def remove(self) -> None:
        """Delete every party's private sealing key (public keys and certificates stay)."""
        from fedspark.federation.security import KEY_FILE

        for party in self._keys:
            (self.folder(party) / KEY_FILE).unlink(missing_ok=True)
