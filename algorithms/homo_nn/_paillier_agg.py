"""Secure aggregation with packed Paillier under a key the clients share and the arbiter lacks.

The first client generates the key pair and hands the private key to the
other clients directly (client to client; the arbiter relays nothing), the
public key to the arbiter. Each round a client encrypts p_k·w_k (p_k = its
share n_k / Σ n of the selected clients, told by the arbiter) packed many
values per ciphertext (BatchCrypt packing from ``crypto``); the arbiter
multiplies ciphertexts, which adds the plaintexts, and hands the encrypted
FedAvg back. It never decrypts anything, and never holds the global model in
plaintext either: only clients can open it. Late clients' shares are missing
from the sum, so the arbiter also sends the scale 1/Σ p_k of those who reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import at
from fedspark.arrow_bridge import fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.common import PartyRef
from fedspark.crypto import Packer, PrivateKey, PublicKey, generate_keypair
from fedspark.federation import Context


def client_key(ctx: Context, clients: Sequence[PartyRef], params: HomoNNParams) -> PrivateKey:
    """The job's shared private key: made by the first client, sent to the others directly."""
    s = ctx.sub("paillier")
    if ctx.me == clients[0]:
        public, private = generate_keypair(params.secure.key_size,
                                           allow_insecure_key_size=params.secure.allow_insecure_key_size)
        for ref in clients[1:]:
            at(s, ref).put("key", {"p": int(private.to_phe().p), "q": int(private.to_phe().q)})
        s.arbiter.put("public_key", public.to_dict())
        return private
    key = at(s, clients[0]).get("key")
    return PrivateKey.from_pq(int(key["p"]), int(key["q"]))


def arbiter_key(ctx: Context, first_client: PartyRef) -> PublicKey:
    return PublicKey.from_dict(at(ctx.sub("paillier"), first_client).get("public_key"))


def packer(public_key: PublicKey, params: HomoNNParams, clients: int) -> Packer:
    return Packer(public_key.n, slot_bits=32, clip=params.secure.clip, summands=max(clients, 1))


def encrypt_update(public_key: PublicKey, pack: Packer, share: float, weights: np.ndarray, loss: float) -> pa.Array:
    """Enc(p_k·w_k ‖ p_k·loss) as one fixed-width binary column."""
    values = np.concatenate([share * weights, [share * loss]])
    return ints_to_fixed_binary(pack.encrypt(public_key, values), public_key.ciphertext_width)


def aggregate(ctx: Context, public_key: PublicKey, updates: Mapping[str, Any], shares: Mapping[str, float],
              count: int) -> dict[str, Any]:
    """The encrypted sum of the reported updates, and the scale that makes it their FedAvg."""
    columns = []
    for pid, update in updates.items():
        column = update.get("enc") if isinstance(update, dict) else None
        if not isinstance(column, pa.FixedSizeBinaryArray) or column.type.byte_width != public_key.ciphertext_width:
            raise RoundError(ctx.job_id, -1, f"client {pid} sent a malformed encrypted update")
        columns.append(fixed_binary_to_ints(column))
    if len({len(c) for c in columns}) != 1:
        raise RoundError(ctx.job_id, -1, "clients sent encrypted updates of different lengths")
    total = [public_key.sum(cts) for cts in zip(*columns)]
    return {"enc": ints_to_fixed_binary(total, public_key.ciphertext_width),
            "scale": 1.0 / sum(shares[pid] for pid in updates), "count": count}


def decrypt_global(private_key: PrivateKey, pack: Packer, model: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    """(weights, mean loss) from the arbiter's encrypted aggregate."""
    values = pack.decrypt(private_key, fixed_binary_to_ints(model["enc"]), int(model["count"])) * float(model["scale"])
    return values[:-1], float(values[-1])
