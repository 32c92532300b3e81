"""Secure aggregation with packed Paillier under a key the clients share and the arbiter lacks.

The first client generates the key pair and hands the private key to the
other clients directly, sealed under each pair's key (``federation.PairKeys``:
the primes never cross unsealed, whatever carries them), and the public key to
the arbiter. Each round a client encrypts p_k·w_k (p_k = its share n_k / Σ n
of the selected clients, told by the arbiter) packed many values per
ciphertext (BatchCrypt packing from ``crypto``); the arbiter multiplies
ciphertexts, which adds the plaintexts, and hands the encrypted FedAvg back.

Every client holds the private key, so the arbiter could otherwise hand client
A's ciphertext to client B as "the global model" and B would read A's update.
Each plaintext is therefore masked, before encryption, with pairwise masks mod
n over the round's selected clients (each with its neighbours of the circulant
graph ``secure.neighbours``, as in masking mode): u adds PRG(k_uv) for v > u and
subtracts it for v < u, so the masks cancel only in the sum over every selected
client. One client's ciphertext, or the sum over any proper subset, decrypts to
uniform noise. The price: no dropout recovery, so a round needs every selected
client's update (``sync.min_fraction: 1``; a late client aborts the round and
the global model stays). Clients compute the selection and the number of values
themselves; nothing the arbiter supplies is trusted but the ciphertexts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fedspark.algorithms.homo_nn import _masking as m
from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import at
from fedspark.algorithms.homo_nn._secure import neighbours
from fedspark.arrow_bridge import fixed_binary_to_ints, ints_to_fixed_binary
from fedspark.common import PartyRef
from fedspark.crypto import Packer, PrivateKey, PublicKey, generate_keypair
from fedspark.federation import Context, PairKeys

_PRIME_BYTES = 2


def require_pair_keys(ctx: Context, what: str) -> PairKeys:
    """This party's pair keys; ``what`` cannot run without them."""
    keys = ctx.federation.pair_keys
    if keys is None:
        raise RoundError(ctx.job_id, 0, f"{what} needs pair keys between the clients (sealing keys, which "
                         f"`fedspark run` issues; a party conf names them as sealing_dir): party {ctx.party_id} "
                         "has none")
    return keys


def client_key(ctx: Context, clients: Sequence[PartyRef], params: HomoNNParams) -> PrivateKey:
    """The job's shared private key: made by the first client, sent to the others sealed for each."""
    s = ctx.sub("paillier")
    pair_keys = require_pair_keys(ctx, "secure.mode paillier")
    context = f"{ctx.job_id}|paillier-private-key"
    if ctx.me == clients[0]:
        public, private = generate_keypair(params.secure.key_size,
                                           allow_insecure_key_size=params.secure.allow_insecure_key_size)
        primes = _encode_primes(int(private.to_phe().p), int(private.to_phe().q))
        for ref in clients[1:]:
            at(s, ref).put("key", m.seal(pair_keys.key(ref.party_id, context), primes))
        s.arbiter.put("public_key", public.to_dict())
        return private
    sealed = at(s, clients[0]).get("key")
    try:
        p, q = _decode_primes(m.unseal(pair_keys.key(clients[0].party_id, context), sealed))
    except Exception as exc:  # noqa: BLE001 - any failure to open is the same refusal
        raise RoundError(ctx.job_id, 0, f"the private key relayed as client {clients[0]}'s does not open for "
                         f"{ctx.party_id}: not sealed by {clients[0]} ({exc.__class__.__name__})") from None
    return PrivateKey.from_pq(p, q)


def _encode_primes(p: int, q: int) -> bytes:
    parts = [x.to_bytes((x.bit_length() + 7) // 8, "big") for x in (p, q)]
    return b"".join(len(b).to_bytes(_PRIME_BYTES, "big") + b for b in parts)


def _decode_primes(raw: bytes) -> tuple[int, int]:
    values, at_ = [], 0
    for _ in range(2):
        size = int.from_bytes(raw[at_:at_ + _PRIME_BYTES], "big")
        at_ += _PRIME_BYTES
        values.append(int.from_bytes(raw[at_:at_ + size], "big"))
        at_ += size
    if at_ != len(raw) or min(values) < 3:
        raise ValueError("malformed primes")
    return values[0], values[1]


def arbiter_key(ctx: Context, first_client: PartyRef) -> PublicKey:
    return PublicKey.from_dict(at(ctx.sub("paillier"), first_client).get("public_key"))


def packer(public_key: PublicKey, params: HomoNNParams, clients: int) -> Packer:
    return Packer(public_key.n, slot_bits=32, clip=params.secure.clip, summands=max(clients, 1))


def round_masks(pair_keys: PairKeys, me: str, selected: Sequence[str], params: HomoNNParams, job_id: str,
                round_no: int, n: int, count: int) -> list[int]:
    """Σ_v ±PRG(k_uv) mod n per plaintext, over ``me``'s neighbours among the round's ``selected`` clients."""
    return masks_from_seeds(mask_seeds(pair_keys, me, selected, params, job_id, round_no), n, count)


def mask_seeds(pair_keys: PairKeys, me: str, selected: Sequence[str], params: HomoNNParams, job_id: str,
               round_no: int) -> list[tuple[int, bytes]]:
    """(sign, seed) of each of ``me``'s pairwise masks this round: +1 towards higher ids, −1 towards lower.
    Small enough to hand to an executor, which expands them (``masks_from_seeds``) next to the encryption."""
    context = f"{job_id}|round-{round_no}|paillier-mask"
    return [(1 if me < v else -1, pair_keys.key(v, context)) for v in neighbours(selected, me, params.secure.neighbours)]


def masks_from_seeds(seeds: Sequence[tuple[int, bytes]], n: int, count: int) -> list[int]:
    """The masks mod n of ``count`` plaintexts from (sign, seed) pairs.

    Each PRG value has 128 bits more than n, so its residue is uniform to within
    2^-128. The streams are summed as 32-bit limbs in numpy (sums of up to 2^31
    streams cannot overflow 64 bits) and turned into integers once per plaintext.
    """
    width = (n.bit_length() + 7) // 8 + 16
    limbs = -(-width // 4)
    plus = np.zeros(count * limbs, dtype=np.uint64)
    minus = np.zeros(count * limbs, dtype=np.uint64)
    for sign, seed in seeds:
        words = np.frombuffer(m.keystream(seed, count * limbs * 4), dtype="<u4")
        (plus if sign > 0 else minus)[:] += words
    return [(_limbs_to_int(plus[i * limbs:(i + 1) * limbs]) - _limbs_to_int(minus[i * limbs:(i + 1) * limbs])) % n
            for i in range(count)]


def _limbs_to_int(limbs: np.ndarray) -> int:
    """Σ limbs[j]·2^(32j) for uint64 limbs below 2^63: the low and high 32 bits as two integers."""
    low = int.from_bytes((limbs & 0xFFFFFFFF).astype("<u4").tobytes(), "little")
    high = int.from_bytes((limbs >> np.uint64(32)).astype("<u4").tobytes(), "little")
    return low + (high << 32)


def encrypt_update(public_key: PublicKey, pack: Packer, share: float, weights: np.ndarray, loss: float,
                   masks: Sequence[int]) -> pa.Array:
    """Enc(p_k·w_k ‖ p_k·loss + masks) as one fixed-width binary column."""
    plaintexts = pack.pack(np.concatenate([share * weights, [share * loss]]))
    if len(masks) != len(plaintexts):
        raise ValueError(f"{len(masks)} masks for {len(plaintexts)} plaintexts")
    n = public_key.n
    masked = [(p + mask) % n for p, mask in zip(plaintexts, masks)]
    return ints_to_fixed_binary(public_key.encrypt_many(masked), public_key.ciphertext_width)


def check_share(ctx: Context, round_no: int, share: Any) -> float:
    """The FedAvg weight the arbiter told this client, which must be a fraction."""
    if not isinstance(share, float) or not 0.0 < share <= 1.0:
        raise RoundError(ctx.job_id, round_no, f"the arbiter told {ctx.party_id} a FedAvg share of {share!r}")
    return share


def aggregate(ctx: Context, round_no: int, public_key: PublicKey, updates: Mapping[str, Any],
              selected: Collection[str]) -> dict[str, Any] | None:
    """The encrypted sum of every selected client's update; None (the round aborts) when one is missing:
    the pairwise masks cancel only in the full sum."""
    if set(updates) != set(selected):
        return None
    columns = []
    for pid, update in updates.items():
        column = update.get("enc") if isinstance(update, dict) else None
        if not isinstance(column, pa.FixedSizeBinaryArray) or column.type.byte_width != public_key.ciphertext_width:
            raise RoundError(ctx.job_id, round_no, f"client {pid} sent a malformed encrypted update")
        columns.append(fixed_binary_to_ints(column))
    if len({len(c) for c in columns}) != 1:
        raise RoundError(ctx.job_id, round_no, "clients sent encrypted updates of different lengths")
    total = [public_key.sum(cts) for cts in zip(*columns)]
    return {"enc": ints_to_fixed_binary(total, public_key.ciphertext_width)}


def decrypt_global(private_key: PrivateKey, pack: Packer, model: Mapping[str, Any], n_parameters: int
                   ) -> tuple[np.ndarray, float]:
    """(weights, mean loss) from the arbiter's encrypted aggregate; the value count is this client's own."""
    column = model.get("enc") if isinstance(model, Mapping) else None
    if not isinstance(column, pa.FixedSizeBinaryArray) or len(column) != pack.plaintexts_for(n_parameters + 1):
        raise ValueError("the arbiter's encrypted model does not have this network's size")
    values = pack.decrypt(private_key, fixed_binary_to_ints(column), n_parameters + 1)
    return values[:-1], float(values[-1])
