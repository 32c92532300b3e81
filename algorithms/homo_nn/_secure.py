"""Secure aggregation by pairwise masking: the client and arbiter steps of one round.

Five exchanges through the arbiter (who relays but cannot read or forge):

1. ``keys``: each selected client sends two fresh X25519 public keys (one to
   seal shares, one to agree masks), with a MAC of them for every other
   selected client under their pair key (``federation.PairKeys``); the arbiter
   returns the roster U1 and each client's group's keys, and a client accepts a
   key only if its owner's MAC verifies: the arbiter can neither swap a key nor
   invent a client.
2. ``shares``: each client Shamir-shares its self-mask seed and its masking key
   among its group, each share sealed for its recipient; the arbiter relays them (U2).
3. ``masked``: each client trains, then sends y = q(n·w ‖ n ‖ n·loss) + masks;
   the round's barrier (fraction / deadline) fixes the survivors U3.
4. ``confirm``: the arbiter names survivors and dropped; each client checks
   the list against what it knows (Bonawitz et al. §4: at least t survivors,
   itself among them, exactly the clients it shared with) and MACs it for its
   holders; the arbiter relays the MACs, and a client goes on only if t holders
   saw the same list.
5. ``reveal``: survivors send their shares of the survivors' self-mask seeds and
   of the dropped clients' masking keys — never both for one client — and the
   arbiter removes every mask, leaving Σ n_k w_k, Σ n_k and Σ n_k·loss_k.

The round's selection, each group and the threshold t (a strict majority of a
group) come from the job's seeded selection, which every client computes
itself: nothing the arbiter says can lower them. Keys are fresh per round, so
revealing a dropped client's masking key exposes nothing of later rounds, and
a late client's update stays hidden by its self-mask even when its pairwise
masks are known. Without pair keys (no sealing material) the MACs and the
consistency round are skipped and the run's outputs say the round keys were
unauthenticated.
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

MAC_BYTES = 16
"""Length of a pair-key MAC (``federation.PairKeys.mac``)."""

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
    # With pair keys, shares are sealed under them (never revealed, so safe to reuse per round
    # with a fresh context); only without them does a client need a fresh sealing key pair.
    seal_key = None if view.authenticated else m.KeyPair.generate()
    seal_public = seal_key.public if seal_key is not None else b""
    mask_key = m.KeyPair.generate()
    s.arbiter.put("keys", {"seal": seal_public, "mask": mask_key.public,
                           "macs": view.sign_keys(seal_public, mask_key.public)})
    roster = s.arbiter.get("roster")
    if not roster.get("included"):
        return False
    keys = view.check_roster(roster, seal_public, mask_key.public)
    holders = view.holders_in(keys)
    self_seed = m.new_seed()
    seed_shares = m.split_secret(self_seed, view.t, len(view.group))
    key_shares = m.split_secret(mask_key.secret, view.t, len(view.group))
    index = {v: i for i, v in enumerate(view.group)}
    mine: dict[str, tuple[bytes, bytes]] = {me: (seed_shares[index[me]], key_shares[index[me]])}
    boxes: dict[str, bytes] = {}  # one box key per peer, for the shares both ways

    def box(v: str) -> bytes:
        if v not in boxes:
            boxes[v] = (view.share_key(v) if seal_key is None else m.box_key(seal_key.secret, keys[v]["seal"]))
        return boxes[v]

    s.arbiter.put("shares", {v: m.seal(box(v), _share_message(me, v, seed_shares[index[v]], key_shares[index[v]]))
                             for v in holders if v != me})
    if vanish_after_sharing:
        return False
    relay = s.arbiter.get("relay")
    if not relay.get("included"):
        return False
    relayed = relay.get("shares")
    if not isinstance(relayed, dict):
        raise RoundError(ctx.job_id, round_no, f"the arbiter sent {me} malformed relayed shares")
    for u, sealed_share in relayed.items():
        if u not in holders or u == me:
            raise RoundError(ctx.job_id, round_no, f"the arbiter relayed a share from {u}, who is not in {me}'s group")
        mine[u] = _open_share(ctx, u, me, m.unseal(box(u), sealed_share))
    # The masks do not depend on the update: compute them while the local training runs.
    pads = m.mask_pads(me, self_seed, mask_key.secret, {v: keys[v]["mask"] for v in mine}, view.update_size)
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
    s.arbiter.put("reveal", {"seed": {v: mine[v][0] for v in survivors & mine.keys()},
                             "key": {v: mine[v][1] for v in dropped & mine.keys()}})
    return True


@dataclass
class RoundView:
    """What one client knows for certain in a masked round, and the checks it makes with it.

    ``selected`` is recomputed from the job's seeded selection, ``group`` (the
    holders of this client's shares) and the threshold ``t`` from it, so an
    arbiter that shrinks the roster cannot lower the threshold. With pair keys
    (``ctx.federation.pair_keys``) each round key and each survivor list is
    authenticated client to client by a MAC the arbiter relays but cannot forge.
    """

    ctx: Context
    scope: str
    me: str
    params: HomoNNParams
    round_no: int
    selected: list[str]
    group: list[str]
    t: int
    update_size: int
    pair_keys: PairKeys | None

    @classmethod
    def of(cls, ctx: Context, s: Context, me: str, params: HomoNNParams, round_no: int, update_size: int) -> RoundView:
        clients = list(client_refs(ctx))
        selected = select_clients(clients, params.selection, round_no)
        if me not in selected:
            raise RoundError(ctx.job_id, round_no, f"the arbiter asked {me} to mask an update in a round that "
                             f"did not select it")
        if ctx.federation.pair_keys is None and not ctx.federation.local_peers:
            raise RoundError(ctx.job_id, round_no, f"{me} has no pair keys (certified sealing keys) and its peers are "
                             "on other machines: unauthenticated round keys would let the arbiter substitute them; "
                             "give the party its sealing material (sealing_dir in its conf)")
        members = group(selected, me, params.secure.neighbours)
        t = checked_threshold(ctx.job_id, round_no, params, len(members))
        return cls(ctx, f"{ctx.job_id}|{s.tag('mac')}|", me, params, round_no, selected, members, t, update_size,
                   ctx.federation.pair_keys)

    @property
    def authenticated(self) -> bool:
        return self.pair_keys is not None

    def _fail(self, message: str) -> RoundError:
        return RoundError(self.ctx.job_id, self.round_no, message)

    # --- round keys
    def sign_keys(self, seal: bytes, mask: bytes) -> bytes:
        """A MAC of this client's round keys for every selected client, in sorted order (its own slot
        zero), as one blob the arbiter cuts up: a dict of 100 MACs cost more to encode than to compute."""
        if self.pair_keys is None:
            return b""
        message = _keys_message(self.me, seal, mask)
        return b"".join(bytes(MAC_BYTES) if v == self.me else self.pair_keys.mac(v, f"{self.scope}keys", message)
                        for v in sorted(self.selected))

    def share_key(self, peer: str) -> bytes:
        """The key sealing this round's shares between this client and ``peer`` (from their pair key)."""
        assert self.pair_keys is not None
        return self.pair_keys.key(peer, f"{self.scope}shares")

    def members(self, bits: Any, what: str) -> set[str]:
        """The clients a membership bitmap from the arbiter names (over the sorted selection)."""
        universe = sorted(self.selected)
        if not isinstance(bits, bytes) or len(bits) != len(universe) or set(bits) - {0, 1}:
            raise self._fail(f"the arbiter sent {self.me} a malformed {what}")
        return {v for v, bit in zip(universe, bits) if bit}

    def check_roster(self, roster: Mapping[str, Any], seal: bytes, mask: bytes) -> dict[str, dict[str, bytes]]:
        """The round keys of this client's group, each proven to come from its owner; the roster checked."""
        keys = roster.get("keys")
        if not isinstance(keys, dict):
            raise self._fail(f"the arbiter sent {self.me} a malformed roster")
        ids = self.members(roster.get("ids"), "roster")
        if strangers := sorted(set(keys) - ids):
            raise self._fail(f"the arbiter's roster relays keys of {strangers}, who are not clients selected for "
                             "this round")
        if self.me not in ids:
            raise self._fail(f"the arbiter's roster leaves out {self.me}, yet included it")
        own = keys.get(self.me)
        if not isinstance(own, dict) or own.get("seal") != seal or own.get("mask") != mask:
            raise self._fail(f"the arbiter relayed other round keys as {self.me}'s own")
        present = [v for v in self.group if v in ids]
        if missing := [v for v in present if v not in keys]:
            raise self._fail(f"the arbiter withheld the keys of neighbours {missing} from {self.me}")
        for v in present:
            entry = keys[v]
            if not isinstance(entry, dict) or not all(isinstance(entry.get(k), bytes) and len(entry[k]) == 32
                                                      for k in (("mask",) if self.authenticated else ("seal", "mask"))):
                raise self._fail(f"the round keys relayed as client {v}'s are malformed")
            if v != self.me and self.pair_keys is not None and not self.pair_keys.verify(
                    v, f"{self.scope}keys", _keys_message(v, entry["seal"], entry["mask"]), entry.get("mac")):
                raise self._fail(f"the round keys relayed as client {v}'s are not {v}'s (its MAC does not verify): "
                                 f"the arbiter substituted keys or invented a client; {self.me} stops")
        if len(present) < self.t:
            raise self._fail(f"only {len(present)} of {self.me}'s {len(self.group)} share holders sent round keys, "
                             f"{self.t} needed")
        return {v: keys[v] for v in present}

    def holders_in(self, keys: Mapping[str, Any]) -> list[str]:
        return [v for v in self.group if v in keys]

    # --- the survivor list, before any share is revealed
    def check_unmask(self, request: Mapping[str, Any], shared_with: set[str]) -> tuple[set[str], set[str]]:
        """Bonawitz et al.'s checks on the arbiter's survivor list before revealing anything.

        Survivors and dropped are disjoint clients of the round, this client
        survived, at least t of its group survived, and within its group
        survivors ∪ dropped is exactly the set it exchanged shares with: the
        arbiter cannot call a client dropped that it never shared with, nor
        leave one out to learn both its seed and its key."""
        survivors = self.members(request.get("survivors"), "survivor list")
        dropped = self.members(request.get("dropped"), "dropped list")
        if survivors & dropped:
            raise self._fail(f"the arbiter asks {self.me} for both seeds of {sorted(survivors & dropped)}")
        if outside := sorted((survivors | dropped) - set(self.selected)):
            raise self._fail(f"the arbiter's survivor list names {outside}, who were not selected")
        if self.me not in survivors:
            raise self._fail(f"the arbiter's survivor list leaves out {self.me}, yet asks it to reveal shares")
        in_group = (survivors | dropped) & set(self.group)
        if in_group != shared_with:
            raise self._fail(f"within {self.me}'s group the arbiter lists {sorted(in_group)} as survivors or dropped, "
                             f"but {self.me} exchanged shares with {sorted(shared_with)}")
        alive = len(survivors & set(self.group))
        if alive < self.t:
            raise self._fail(f"only {alive} of {self.me}'s share holders survived, {self.t} needed")
        return survivors, dropped

    def sign_outcome(self, survivors: set[str], dropped: set[str]) -> dict[str, bytes]:
        """The consistency round: tell every holder, through the arbiter, which list this client was shown."""
        if self.pair_keys is None:
            return {}
        message = _outcome_message(survivors, dropped)
        return {v: self.pair_keys.mac(v, f"{self.scope}confirm", message)
                for v in self.group if v != self.me and v in survivors}

    def check_confirmations(self, relayed: Any, survivors: set[str], dropped: set[str]) -> None:
        """At least t holders (this client included) saw the same survivor list: the arbiter did not show
        different clients different lists to collect a seed from some and a key from others."""
        if self.pair_keys is None:
            return
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
    if keys is None:
        return ("unauthenticated: no sealing keys, so round keys were not MAC'd and the arbiter could have "
                "substituted them")
    return f"pair keys, {keys.describe()}"


def checked_threshold(job_id: str, round_no: int, params: HomoNNParams, holders: int) -> int:
    """The threshold for ``holders`` share holders; an explicit one must exceed half of them.

    With t ≤ holders/2, two disjoint halves could each reach t: an arbiter could
    collect the seed from one half and the masking key from the other."""
    t = threshold(params, holders)
    if t * 2 <= holders or t > holders:
        raise RoundError(job_id, round_no, f"secure.threshold {t} must exceed half of the {holders} share holders "
                         f"and not exceed them (use {holders // 2 + 1}..{holders}, or leave it unset)")
    return t


def _keys_message(owner: str, seal: bytes, mask: bytes) -> bytes:
    return owner.encode() + b"\x00" + seal + mask


def _outcome_message(survivors: set[str], dropped: set[str]) -> bytes:
    return ("survivors:" + ",".join(sorted(survivors)) + "|dropped:" + ",".join(sorted(dropped))).encode()


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
    chosen = sorted(selected)
    k = params.secure.neighbours
    t = threshold(params, len(group(chosen, chosen[0], k)))  # every group of the circulant graph has one size
    g1 = gather(s, "keys", selected, deadline_s=deadline)
    u1 = sorted(g1.values)
    enough = len(u1) >= t
    for pid, party in selected.items():
        included = enough and pid in g1.values
        # Everyone gets the ids (each client derives its neighbourhood itself), but only the
        # keys of its own neighbourhood, each with its owner's MAC for this client:
        # 100 clients × 100 keys made the roster the round's largest message set.
        slot = chosen.index(pid)
        keys = ({v: _relayed_keys(g1.values[v], slot) for v in group(chosen, pid, k) if v in g1.values}
                if included else {})
        at(s, party).put("roster", {"included": included, "ids": _bits(chosen, u1 if included else []),
                                    "keys": keys})
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
    masks = {pid: g1.values[pid]["mask"] for pid in u2}
    try:
        total = _unmask(ctx.job_id, g3.values, g4.values, chosen, masks, dropped, params)
    except _TooFewShares as exc:
        return SecureOutcome(None, reported=u3, late=dropped, dropped=dropped, late_parties=late_parties,
                             aborted=str(exc))
    return SecureOutcome(m.dequantise(total, params.secure.frac_bits), reported=u3, late=dropped,
                         dropped=dropped, late_parties=late_parties)


class _TooFewShares(Exception):
    pass


def _relayed_keys(sent: Any, slot: int) -> dict[str, Any]:
    """A client's round keys as relayed to the client in ``slot`` of the sorted selection: the keys and
    the MAC their owner made for that client."""
    if not isinstance(sent, dict):
        return {}
    macs = sent.get("macs")
    mac = macs[slot * MAC_BYTES:(slot + 1) * MAC_BYTES] if isinstance(macs, bytes) and macs else None
    return {"seal": sent.get("seal"), "mask": sent.get("mask"), "mac": mac}


def _bits(universe: Sequence[str], members: Sequence[str]) -> bytes:
    """A set of clients as one byte per client of the sorted selection (cheaper on the wire than ids)."""
    chosen = set(members)
    return bytes(int(v in chosen) for v in universe)


def _recover(owner: str, what: str, reveals: Mapping[str, Any], selected: list[str], params: HomoNNParams) -> bytes:
    """``owner``'s secret from t revealed shares; share indexes follow its group in the round's selection."""
    holders = group(selected, owner, params.secure.neighbours)
    t = threshold(params, len(holders))
    shares = [(holders.index(u) + 1, reveals[u][what][owner]) for u in holders if owner in reveals.get(u, {}).get(what, {})]
    if len(shares) < t:
        raise _TooFewShares(f"{len(shares)} shares of client {owner}'s {what}, {t} needed")
    return m.combine_secret(shares[:t])


def _unmask(
    job_id: str,
    masked: Mapping[str, Any],
    reveals: Mapping[str, Any],
    selected: list[str],
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
        total -= m.stream(_recover(v, "seed", reveals, selected, params), total.size)
    for v in dropped:
        secret = _recover(v, "key", reveals, selected, params)
        for u in set(survivors) & set(neighbours(selected, v, params.secure.neighbours)):
            pad = m.stream(m.agree(secret, masks[u]), total.size)
            # u added sign(u, v)·PRG(s_uv); take it out.
            total = total - pad if m.pair_sign(u, v) > 0 else total + pad
    return total
