"""Secure aggregation by pairwise masking: the client and arbiter steps of one round.

Four exchanges through the arbiter (who relays but cannot read):

1. ``keys``: each selected client sends two fresh X25519 public keys (one to
   seal shares, one to agree masks); the arbiter returns the roster U1.
2. ``shares``: each client Shamir-shares its self-mask seed and its masking key
   among U1, each share sealed for its recipient; the arbiter relays them (U2).
3. ``masked``: each client trains, then sends y = q(n·w ‖ n ‖ n·loss) + masks;
   the round's barrier (fraction / deadline) fixes the survivors U3.
4. ``reveal``: survivors send their shares of the survivors' self-mask seeds and
   of the dropped clients' masking keys — never both for one client — and the
   arbiter removes every mask, leaving Σ n_k w_k, Σ n_k and Σ n_k·loss_k.

Keys are fresh per round, so revealing a dropped client's masking key exposes
nothing of later rounds, and a late client's update stays hidden by its
self-mask even when its pairwise masks are known.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedspark.algorithms.homo_nn import _masking as m
from fedspark.algorithms.homo_nn._aggregate import needed_reports
from fedspark.algorithms.homo_nn._barrier import gather
from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import at
from fedspark.common import PartyRef
from fedspark.federation import Context

LocalUpdate = Callable[[], tuple[np.ndarray, int, float]]
"""Trains locally when called; returns (weights, n_samples, mean loss)."""


def threshold(params: HomoNNParams, count: int) -> int:
    """Shares needed to recover a secret: the job's value, else a strict majority (at least 2)."""
    if params.secure.threshold is not None:
        return params.secure.threshold
    return max(2, count // 2 + 1)


def neighbours(ids: Sequence[str], me: str, k: int | None) -> list[str]:
    """The clients ``me`` masks with and shares its seeds among.

    Everyone (Bonawitz et al.) when ``k`` is None or covers the roster; else the
    k/2 nearest on each side of ``me`` in sorted id order, a circulant graph as in
    Bell et al. (CCS'20), which cuts each client's work from O(n) to O(k). Every
    party computes the graph itself from the roster, so the arbiter cannot pick it.
    """
    ordered = sorted(ids)
    if k is None or k >= len(ordered) - 1:
        return [v for v in ordered if v != me]
    i, half = ordered.index(me), max(1, k // 2)
    return sorted({ordered[(i + d) % len(ordered)] for d in range(-half, half + 1) if d != 0})


def group(ids: Sequence[str], owner: str, k: int | None) -> list[str]:
    """Who holds shares of ``owner``'s secrets (its neighbours and itself), in share-index order."""
    return sorted([*neighbours(ids, owner, k), owner])


def encode_update(weights: np.ndarray, n: int, loss: float) -> np.ndarray:
    """The vector a client contributes: its weights scaled by n, then n and n·loss."""
    return np.concatenate([weights * float(n), [float(n), float(n) * loss]])


def decode_total(total: np.ndarray) -> tuple[np.ndarray, int, float]:
    n = float(total[-2])
    if n <= 0:
        raise ValueError(f"aggregate sample count {n} is not positive")
    return total[:-2] / n, int(round(n)), float(total[-1] / n)


# ------------------------------------------------------------------ client


def client_round(
    ctx: Context, me: str, params: HomoNNParams, local_update: LocalUpdate, *, vanish_after_sharing: bool = False
) -> bool:
    """Run this client's side of one masked round; False when the arbiter left it out.

    ``vanish_after_sharing`` stops right after the shares went out: a client
    crashing mid-round, which the others must survive (tests only)."""
    s = ctx.sub("sa")
    seal_key, mask_key = m.KeyPair.generate(), m.KeyPair.generate()
    s.arbiter.put("keys", {"seal": seal_key.public, "mask": mask_key.public})
    roster = s.arbiter.get("roster")
    if not roster.get("included"):
        return False
    keys: dict[str, dict[str, bytes]] = roster["keys"]
    holders = group(list(roster["ids"]), me, params.secure.neighbours)
    if missing := sorted(v for v in holders if v not in keys):
        raise RoundError(ctx.job_id, -1, f"the arbiter withheld the keys of neighbours {missing} from {me}")
    t = threshold(params, len(holders))
    self_seed = m.new_seed()
    seed_shares = m.split_secret(self_seed, t, len(holders))
    key_shares = m.split_secret(mask_key.secret, t, len(holders))
    mine: dict[str, tuple[bytes, bytes]] = {me: (seed_shares[holders.index(me)], key_shares[holders.index(me)])}
    boxes: dict[str, bytes] = {}  # one box key per peer, for the shares both ways

    def box(v: str) -> bytes:
        if v not in boxes:
            boxes[v] = m.box_key(seal_key.secret, keys[v]["seal"])
        return boxes[v]

    sealed = {
        v: m.seal(box(v), _share_message(me, v, seed_shares[i], key_shares[i]))
        for i, v in enumerate(holders)
        if v != me
    }
    s.arbiter.put("shares", sealed)
    if vanish_after_sharing:
        return False
    relay = s.arbiter.get("relay")
    if not relay.get("included"):
        return False
    for u, sealed_share in relay["shares"].items():
        if u not in keys or u == me:
            raise RoundError(ctx.job_id, -1, f"the arbiter relayed a share from {u}, who is not in the round")
        mine[u] = _open_share(ctx, u, me, m.unseal(box(u), sealed_share))
    round_peers = {v: keys[v]["mask"] for v in mine}
    weights, n, loss = local_update()
    q = m.quantise(encode_update(weights, n, loss), params.secure.frac_bits, len(round_peers))
    s.arbiter.put("masked", m.mask_vector(q, me, self_seed, mask_key.secret, round_peers))
    request = s.arbiter.get("unmask")
    if not request.get("included"):
        return False
    survivors, dropped = set(request["survivors"]), set(request["dropped"])
    if survivors & dropped:
        # Revealing both seeds of one client would expose its update: refuse.
        raise RoundError(ctx.job_id, -1, f"the arbiter asks for both seeds of {sorted(survivors & dropped)}")
    s.arbiter.put("reveal", {"seed": {v: mine[v][0] for v in survivors & mine.keys()},
                             "key": {v: mine[v][1] for v in dropped & mine.keys()}})
    return True


def _share_message(sender: str, recipient: str, seed_share: bytes, key_share: bytes) -> bytes:
    """Shares are bound to (sender, recipient) so a relaying arbiter cannot swap them."""
    return f"{sender}>{recipient}|".encode() + seed_share + key_share


def _open_share(ctx: Context, sender: str, me: str, message: bytes) -> tuple[bytes, bytes]:
    """(seed share, key share) from a sealed message; both shares have the same length."""
    header = f"{sender}>{me}|".encode()
    body = message[len(header) :]
    if not message.startswith(header) or not body or len(body) % 2:
        raise RoundError(ctx.job_id, -1, f"a share relayed as coming from {sender} is not addressed from it to {me}")
    half = len(body) // 2
    return body[:half], body[half:]


# ------------------------------------------------------------------ arbiter


@dataclass
class SecureOutcome:
    total: np.ndarray | None
    reported: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    aborted: str | None = None
    late_parties: dict[str, PartyRef] = field(default_factory=dict)


def arbiter_round(
    ctx: Context, selected: Mapping[str, PartyRef], params: HomoNNParams, need_fraction: float
) -> SecureOutcome:
    """Collect masked updates of ``selected`` and unmask only their sum (length n_params + 2)."""
    s = ctx.sub("sa")
    deadline = params.sync.deadline_s
    g1 = gather(s, "keys", selected, deadline_s=deadline)
    u1 = sorted(g1.values)
    t = threshold(params, min(len(u1), (params.secure.neighbours or len(u1)) + 1))
    enough = len(u1) >= t
    for pid, party in selected.items():
        included = enough and pid in g1.values
        # Everyone gets the ids (each client derives its neighbourhood itself), but only the
        # keys of its own neighbourhood: 100 clients × 100 keys made the roster the round's
        # largest message set.
        keys = {v: g1.values[v] for v in group(u1, pid, params.secure.neighbours)} if included else {}
        at(s, party).put("roster", {"included": included, "ids": u1 if included else [], "keys": keys,
                                    "threshold": t})
    if not enough:
        return SecureOutcome(None, late=sorted(g1.late), aborted=f"{len(u1)} clients sent keys, {t} needed")
    p1 = {pid: selected[pid] for pid in u1}
    g2 = gather(s, "shares", p1, deadline_s=deadline)
    u2 = sorted(g2.values)
    enough = len(u2) >= t
    for pid, party in p1.items():
        boxes = {v: g2.values[v][pid] for v in u2 if v != pid and pid in g2.values[v]} if enough else {}
        at(s, party).put("relay", {"included": enough and pid in g2.values, "shares": boxes})
    if not enough:
        return SecureOutcome(None, late=sorted(g2.late), aborted=f"{len(u2)} clients shared seeds, {t} needed")
    p2 = {pid: selected[pid] for pid in u2}
    g3 = gather(s, "masked", p2, need=max(t, needed_reports(len(u2), need_fraction)), deadline_s=deadline)
    u3 = sorted(g3.values)
    dropped = sorted(set(u2) - set(u3))
    enough = len(u3) >= t
    for pid, party in p2.items():
        at(s, party).put("unmask", {"included": enough and pid in g3.values, "survivors": u3, "dropped": dropped})
    late_parties = {pid: p2[pid] for pid in dropped}
    if not enough:
        return SecureOutcome(None, late=dropped, aborted=f"{len(u3)} masked updates, {t} needed",
                             late_parties=late_parties)
    g4 = gather(s, "reveal", {pid: selected[pid] for pid in u3}, deadline_s=deadline)
    if len(g4.values) < t:
        return SecureOutcome(None, reported=u3, late=dropped, dropped=dropped, late_parties=late_parties,
                             aborted=f"{len(g4.values)} survivors revealed shares, {t} needed")
    masks = {pid: g1.values[pid]["mask"] for pid in u2}
    try:
        total = _unmask(ctx.job_id, g3.values, g4.values, u1, masks, dropped, params)
    except _TooFewShares as exc:
        return SecureOutcome(None, reported=u3, late=dropped, dropped=dropped, late_parties=late_parties,
                             aborted=str(exc))
    return SecureOutcome(m.dequantise(total, params.secure.frac_bits), reported=u3, late=dropped,
                         dropped=dropped, late_parties=late_parties)


class _TooFewShares(Exception):
    pass


def _recover(owner: str, what: str, reveals: Mapping[str, Any], u1: list[str], params: HomoNNParams) -> bytes:
    holders = group(u1, owner, params.secure.neighbours)
    t = threshold(params, len(holders))
    shares = [(holders.index(u) + 1, reveals[u][what][owner]) for u in holders if owner in reveals.get(u, {}).get(what, {})]
    if len(shares) < t:
        raise _TooFewShares(f"{len(shares)} shares of client {owner}'s {what}, {t} needed")
    return m.combine_secret(shares[:t])


def _unmask(
    job_id: str,
    masked: Mapping[str, Any],
    reveals: Mapping[str, Any],
    u1: list[str],
    masks: Mapping[str, bytes],
    dropped: list[str],
    params: HomoNNParams,
) -> np.ndarray:
    survivors = sorted(masked)
    total = np.zeros(len(next(iter(masked.values()))), dtype=np.uint64)
    for pid in survivors:
        y = masked[pid]
        if not isinstance(y, np.ndarray) or y.dtype != np.uint64 or y.shape != total.shape:
            raise RoundError(job_id, -1, f"client {pid} sent a malformed masked update")
        total += y
    for v in survivors:
        total -= m.stream(_recover(v, "seed", reveals, u1, params), total.size)
    for v in dropped:
        secret = _recover(v, "key", reveals, u1, params)
        for u in set(survivors) & set(neighbours(u1, v, params.secure.neighbours)):
            pad = m.stream(m.agree(secret, masks[u]), total.size)
            # u added sign(u, v)·PRG(s_uv); take it out.
            total = total - pad if m.pair_sign(u, v) > 0 else total + pad
    return total
