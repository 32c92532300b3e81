"""Secure aggregation by pairwise masking: the client and arbiter steps of one round.

Bonawitz et al. (CCS'17) with the clients' pair keys (``federation.PairKeys``:
the agreement of their certified sealing keys) in place of per-round key
exchange, so no key crosses the arbiter at all. Four exchanges through the
arbiter, who relays but can neither read nor forge:

1. ``shares``: each selected client Shamir-shares a fresh self-mask seed b_u
   among its group (its neighbours and itself), each share sealed for its holder
   under their pair key for this round; the arbiter relays them. A share opens
   only for its holder and only if its sender made it: the arbiter can neither
   substitute one nor invent a client (a stranger has no pair key). Who shared
   is the roster U2.
2. ``masked``: each client trains, then sends y = q(n·w ‖ n ‖ n·loss) + PRG(b_u)
   + Σ_v ±PRG(s_uv) over the group members it exchanged shares with, s_uv
   derived from the pair key, the round and both clients' fresh nonces (sent
   inside the sealed shares); the barrier (fraction / deadline) fixes the
   survivors U3.
3. ``confirm``: the arbiter names survivors and dropped; each client checks the
   list against what it knows (Bonawitz et al. §4: at least t survivors in its
   group, itself among them, exactly the clients it shared with) and MACs it for
   its holders; the arbiter relays the MACs, and a client goes on only if t
   holders saw the same list.
4. ``reveal``: survivors send their shares of the survivors' seeds and, for each
   dropped client of their group, their pairwise seed s_uv with it (never both
   for one client: a survivor's pairwise seeds with other survivors stay
   secret); the arbiter removes every mask, leaving Σ n_k w_k, Σ n_k and
   Σ n_k·loss_k.

Bonawitz et al. share a per-round masking key instead and reconstruct a dropped
client's key, which opens all of its pairwise masks; revealing s_uv only for the
survivors u discloses less. Pairwise seeds are derived per round (the context
names job, round and purpose), so one round's reveal says nothing of another,
and a late client's update stays hidden by its self-mask.

The round's selection, each group and the threshold t (a strict majority of a
group) come from the job's seeded selection, which every client computes
itself: nothing the arbiter says can lower them. Without pair keys masking is
refused: the arbiter could stand in for any client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fedspark.algorithms.homo_nn import _masking as m
from fedspark.algorithms.homo_nn._aggregate import needed_reports, select_clients
from fedspark.algorithms.homo_nn._barrier import gather
from fedspark.algorithms.homo_nn._errors import RoundError
from fedspark.algorithms.homo_nn._params import HomoNNParams
from fedspark.algorithms.homo_nn._roster import at, client_refs
from fedspark.common import PartyRef
from fedspark.federation import Context

if TYPE_CHECKING:
    from fedspark.federation import PairKeys

LocalUpdate = Callable[[], tuple[np.ndarray, int, float]]
"""Trains locally when called; returns (weights, n_samples, mean loss)."""

PAIR_SEED_BYTES = 32


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
    ctx: Context, me: str, params: HomoNNParams, local_update: LocalUpdate, *, n_parameters: int, round_no: int,
    vanish_after_sharing: bool = False,
) -> bool:
    """Run this client's side of one masked round; False when the arbiter left it out.

    Every check a client makes uses only what it knows itself: the job's clients, the
    round's seeded selection and its pair keys; the arbiter's lists are checked, never
    believed. ``vanish_after_sharing`` stops right after the shares went out: a client
    crashing mid-round, which the others must survive (tests only)."""
    s = ctx.sub("sa")
    view = RoundView.of(ctx, s, me, params, round_no, n_parameters + 2)
    self_seed = m.new_seed()
    shares = m.split_secret(self_seed, view.t, len(view.group))
    index = {v: i for i, v in enumerate(view.group)}
    s.arbiter.put("shares", {v: m.seal(view.share_key(v), _share_message(me, v, view.nonce, shares[index[v]]))
                             for v in view.group if v != me})
    if vanish_after_sharing:
        return False
    relay = s.arbiter.get("relay")
    if not relay.get("included"):
        return False
    mine = {me: shares[index[me]], **view.open_shares(relay.get("shares"))}
    # The masks do not depend on the update: compute them before the local training's result.
    pads = m.mask_pads(me, self_seed, {v: view.pair_seed(v) for v in mine if v != me}, view.update_size)
    weights, n, loss = local_update()
    # Overflow is judged on every client of the round, not this client's group: the
    # arbiter adds all survivors' vectors, so any of them may push the sum past 2^63.
    q = m.quantise(encode_update(weights, n, loss), params.secure.frac_bits, len(view.selected))
    if q.size != pads.size:
        raise RoundError(ctx.job_id, round_no, f"client {me}'s update has {q.size} values, the round expects "
                         f"{pads.size}")
    s.arbiter.put("masked", q + pads)
    request = s.arbiter.get("unmask")
    if not request.get("included"):
        return False
    survivors, dropped = view.check_unmask(request, set(mine))
    s.arbiter.put("confirm", view.sign_outcome(survivors, dropped))
    view.check_confirmations(s.arbiter.get("confirmations"), survivors, dropped)
    s.arbiter.put("reveal", {"seed": {v: mine[v] for v in survivors & mine.keys()},
                             "pair": {v: view.pair_seed(v) for v in dropped & mine.keys()}})
    return True


@dataclass
class RoundView:
    """What one client knows for certain in a masked round, and the checks it makes with it.

    ``selected`` is recomputed from the job's seeded selection, ``group`` (the
    holders of this client's shares) and the threshold ``t`` from it, so an
    arbiter that shrinks the roster cannot lower the threshold. Shares, pairwise
    seeds and the consistency MACs all come from the pair keys.
    """

    ctx: Context
    scope: str
    me: str
    round_no: int
    selected: list[str]
    group: list[str]
    t: int
    update_size: int
    pair_keys: PairKeys
    nonce: bytes = field(default_factory=m.new_seed)
    """This client's fresh randomness for the round, sent inside its sealed shares: pairwise seeds mix
    both clients' nonces, so a job id reused with long-lived sealing keys never repeats a seed."""
    peer_nonces: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: Context, s: Context, me: str, params: HomoNNParams, round_no: int, update_size: int) -> RoundView:
        pair_keys = ctx.federation.pair_keys
        if pair_keys is None:
            raise RoundError(ctx.job_id, round_no, f"{me} has no pair keys (sealing keys; `fedspark run` issues them, "
                             "a party conf names them as sealing_dir): without them the arbiter could stand in "
                             "for any client, so masking is refused")
        selected = select_clients(list(client_refs(ctx)), params.selection, round_no)
        if me not in selected:
            raise RoundError(ctx.job_id, round_no, f"the arbiter asked {me} to mask an update in a round that "
                             f"did not select it")
        members = group(selected, me, params.secure.neighbours)
        t = checked_threshold(ctx.job_id, round_no, params, len(members))
        return cls(ctx, f"{ctx.job_id}|{s.tag('mac')}|", me, round_no, selected, members, t, update_size,
                   pair_keys)

    def _fail(self, message: str) -> RoundError:
        return RoundError(self.ctx.job_id, self.round_no, message)

    # --- keys from the pair keys, fresh per round (the context names job, round and purpose)
    def share_key(self, peer: str) -> bytes:
        """The key sealing this round's shares between this client and ``peer``."""
        return self.pair_keys.key(peer, f"{self.scope}shares")

    def pair_seed(self, peer: str) -> bytes:
        """The seed of this round's pairwise mask with ``peer`` (revealed only if ``peer`` dropped): from
        their pair key, this round's scope and both clients' nonces (in id order)."""
        nonces = b"".join(self.nonce if v == self.me else self.peer_nonces[v] for v in sorted((self.me, peer)))
        return self.pair_keys.key(peer, f"{self.scope}mask|{nonces.hex()}")

    def members(self, bits: Any, what: str) -> set[str]:
        """The clients a membership bitmap from the arbiter names (over the sorted selection)."""
        universe = sorted(self.selected)
        if not isinstance(bits, bytes) or len(bits) != len(universe) or set(bits) - {0, 1}:
            raise self._fail(f"the arbiter sent {self.me} a malformed {what}")
        return {v for v, bit in zip(universe, bits) if bit}

    # --- the shares the arbiter relays
    def open_shares(self, relayed: Any) -> dict[str, bytes]:
        """The shares relayed to this client, each opened under its sender's pair key: a share the sender
        did not seal, or from anyone outside this client's group, stops the client."""
        if not isinstance(relayed, dict):
            raise self._fail(f"the arbiter sent {self.me} malformed relayed shares")
        opened: dict[str, bytes] = {}
        for u, sealed in relayed.items():
            if u not in self.group or u == self.me:
                raise self._fail(f"the arbiter relayed a share from {u}, who is not in {self.me}'s group: it may "
                                 "have invented a client")
            try:
                message = m.unseal(self.share_key(u), sealed)
            except Exception:  # noqa: BLE001 - any failure to open is the same refusal
                raise self._fail(f"the share relayed as client {u}'s does not open under {u}'s pair key: the arbiter "
                                 f"substituted it; {self.me} stops") from None
            self.peer_nonces[u], opened[u] = _open_share(self.ctx, u, self.me, message)
        if len(opened) + 1 < self.t:
            raise self._fail(f"only {len(opened) + 1} of {self.me}'s {len(self.group)} share holders shared, "
                             f"{self.t} needed")
        return opened

    # --- the survivor list, before any share is revealed
    def check_unmask(self, request: Mapping[str, Any], shared_with: set[str]) -> tuple[set[str], set[str]]:
        """Bonawitz et al.'s checks on the arbiter's survivor list before revealing anything.

        Survivors and dropped are disjoint clients of the round, this client
        survived, at least t of its group survived, and within its group
        survivors ∪ dropped is exactly the set it exchanged shares with: the
        arbiter cannot call a client dropped that it never shared with, nor
        leave one out to learn both its seed and its pairwise masks."""
        survivors = self.members(request.get("survivors"), "survivor list")
        dropped = self.members(request.get("dropped"), "dropped list")
        if survivors & dropped:
            raise self._fail(f"the arbiter's survivor list names {sorted(survivors & dropped)} as both survived "
                             f"and dropped")
        if self.me not in survivors:
            raise self._fail(f"the arbiter's survivor list leaves out {self.me}, yet asks it to reveal shares")
        in_group = (survivors | dropped) & set(self.group)
        if in_group != shared_with:
            raise self._fail(f"within {self.me}'s group the arbiter's survivor list names {sorted(in_group)} as "
                             f"survived or dropped, but {self.me} exchanged shares with {sorted(shared_with)}")
        alive = len(survivors & set(self.group))
        if alive < self.t:
            raise self._fail(f"the arbiter's survivor list leaves {alive} of {self.me}'s share holders alive, "
                             f"{self.t} needed")
        return survivors, dropped

    def sign_outcome(self, survivors: set[str], dropped: set[str]) -> dict[str, bytes]:
        """The consistency round: tell every holder, through the arbiter, which list this client was shown."""
        message = _outcome_message(survivors, dropped)
        return {v: self.pair_keys.mac(v, f"{self.scope}confirm", message)
                for v in self.group if v != self.me and v in survivors}

    def check_confirmations(self, relayed: Any, survivors: set[str], dropped: set[str]) -> None:
        """At least t holders (this client included) saw the same survivor list: the arbiter did not show
        different clients different lists to collect a seed from some and pairwise seeds from others."""
        tags = relayed.get("tags") if isinstance(relayed, dict) else None
        if not isinstance(tags, dict):
            raise self._fail(f"the arbiter sent {self.me} malformed confirmations")
        message = _outcome_message(survivors, dropped)
        agreeing = {v for v, tag in tags.items() if v in survivors and v in self.group and v != self.me
                    and self.pair_keys.verify(v, f"{self.scope}confirm", message, tag)}
        if len(agreeing) + 1 < self.t:
            raise self._fail(f"only {len(agreeing) + 1} of {self.me}'s share holders confirmed the survivor list it "
                             f"was shown, {self.t} needed: the arbiter may have shown clients different lists; "
                             f"{self.me} reveals nothing")


def client_keys(ctx: Context, params: HomoNNParams) -> str:
    """What authenticated the clients to each other in this run, for its outputs."""
    if params.secure.mode == "none":
        return "not used (secure.mode none: the arbiter sees every update)"
    keys = ctx.federation.pair_keys
    return "none" if keys is None else f"pair keys, {keys.describe()}"


def checked_threshold(job_id: str, round_no: int, params: HomoNNParams, holders: int) -> int:
    """The threshold for ``holders`` share holders; an explicit one must exceed half of them.

    With t ≤ holders/2, two disjoint halves could each reach t: an arbiter could
    collect the seed from one half and the pairwise seeds from the other."""
    t = threshold(params, holders)
    if t * 2 <= holders or t > holders:
        raise RoundError(job_id, round_no, f"secure.threshold {t} must exceed half of the {holders} share holders "
                         f"and not exceed them (use {holders // 2 + 1}..{holders}, or leave it unset)")
    return t


def _outcome_message(survivors: set[str], dropped: set[str]) -> bytes:
    return ("survivors:" + ",".join(sorted(survivors)) + "|dropped:" + ",".join(sorted(dropped))).encode()


def _share_message(sender: str, recipient: str, nonce: bytes, seed_share: bytes) -> bytes:
    """Shares are bound to (sender, recipient): a relaying arbiter cannot swap them between holders."""
    return f"{sender}>{recipient}|".encode() + nonce + seed_share


def _open_share(ctx: Context, sender: str, me: str, message: bytes) -> tuple[bytes, bytes]:
    """(the sender's round nonce, its seed share for ``me``)."""
    header = f"{sender}>{me}|".encode()
    if not message.startswith(header) or len(message) <= len(header) + m.SEED_BYTES:
        raise RoundError(ctx.job_id, -1, f"a share relayed as coming from {sender} is not addressed from it to {me}")
    body = message[len(header):]
    return body[:m.SEED_BYTES], body[m.SEED_BYTES:]


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
    chosen = sorted(selected)
    k = params.secure.neighbours
    t = threshold(params, len(group(chosen, chosen[0], k)))  # every group of the circulant graph has one size
    g1 = gather(s, "shares", selected, deadline_s=deadline)
    u2 = sorted(g1.values)
    enough = len(u2) >= t
    for pid, party in selected.items():
        boxes = ({v: g1.values[v][pid] for v in group(chosen, pid, k) if v != pid and v in g1.values
                  and isinstance(g1.values[v], dict) and pid in g1.values[v]} if enough else {})
        at(s, party).put("relay", {"included": enough and pid in g1.values, "shares": boxes})
    if not enough:
        return SecureOutcome(None, late=sorted(g1.late), aborted=f"{len(u2)} clients shared seeds, {t} needed")
    p2 = {pid: selected[pid] for pid in u2}
    g3 = gather(s, "masked", p2, need=max(t, needed_reports(len(u2), need_fraction)), deadline_s=deadline)
    u3 = sorted(g3.values)
    dropped = sorted(set(u2) - set(u3))
    enough = len(u3) >= t
    for pid, party in p2.items():
        at(s, party).put("unmask", {"included": enough and pid in g3.values, "survivors": _bits(chosen, u3),
                                    "dropped": _bits(chosen, dropped)})
    late_parties = {pid: p2[pid] for pid in dropped}
    if not enough:
        return SecureOutcome(None, late=dropped, aborted=f"{len(u3)} masked updates, {t} needed",
                             late_parties=late_parties)
    p3 = {pid: selected[pid] for pid in u3}
    # The consistency round: each survivor's MACs on the list it was shown go to its holders.
    g_confirm = gather(s, "confirm", p3, deadline_s=deadline)
    for pid, party in p3.items():
        tags = {v: c[pid] for v, c in g_confirm.values.items() if isinstance(c, dict) and pid in c}
        at(s, party).put("confirmations", {"tags": tags})
    g4 = gather(s, "reveal", p3, deadline_s=deadline)
    if len(g4.values) < t:
        return SecureOutcome(None, reported=u3, late=dropped, dropped=dropped, late_parties=late_parties,
                             aborted=f"{len(g4.values)} survivors revealed shares, {t} needed")
    try:
        total = _unmask(ctx.job_id, g3.values, g4.values, chosen, set(u2), dropped, params)
    except _TooFewShares as exc:
        return SecureOutcome(None, reported=u3, late=dropped, dropped=dropped, late_parties=late_parties,
                             aborted=str(exc))
    return SecureOutcome(m.dequantise(total, params.secure.frac_bits), reported=u3, late=dropped,
                         dropped=dropped, late_parties=late_parties)


class _TooFewShares(Exception):
    pass


def _bits(universe: Sequence[str], members: Sequence[str]) -> bytes:
    """A set of clients as one byte per client of the sorted selection (cheaper on the wire than ids)."""
    chosen = set(members)
    return bytes(int(v in chosen) for v in universe)


def _recover(owner: str, reveals: Mapping[str, Any], selected: list[str], params: HomoNNParams) -> bytes:
    """``owner``'s self-mask seed from t revealed shares; share indexes follow its group in the selection."""
    holders = group(selected, owner, params.secure.neighbours)
    t = threshold(params, len(holders))
    shares = [(holders.index(u) + 1, reveals[u]["seed"][owner]) for u in holders
              if isinstance(reveals.get(u), dict) and owner in reveals[u].get("seed", {})]
    if len(shares) < t:
        raise _TooFewShares(f"{len(shares)} shares of client {owner}'s seed, {t} needed")
    return m.combine_secret(shares[:t])


def _unmask(
    job_id: str,
    masked: Mapping[str, Any],
    reveals: Mapping[str, Any],
    selected: list[str],
    shared: set[str],
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
        total -= m.stream(_recover(v, reveals, selected, params), total.size)
    for v in dropped:
        # Every survivor of v's group masked with v (v shared with it) and reveals their pairwise seed.
        for u in sorted(set(survivors) & set(neighbours(selected, v, params.secure.neighbours)) & shared):
            seed = reveals.get(u, {}).get("pair", {}).get(v) if isinstance(reveals.get(u), dict) else None
            if not isinstance(seed, bytes) or len(seed) != PAIR_SEED_BYTES:
                raise _TooFewShares(f"survivor {u} did not reveal its pairwise seed with dropped client {v}")
            pad = m.stream(seed, total.size)
            # u added sign(u, v)·PRG(s_uv); take it out.
            total = total - pad if m.pair_sign(u, v) > 0 else total + pad
    return total
