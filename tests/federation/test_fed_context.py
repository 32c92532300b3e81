"""Context scoping, party groups, Federation checks and run_parties, over loopback."""

from __future__ import annotations

import threading
import time

import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Context,
    DuplicateSend,
    EmptyGroup,
    Federation,
    InvalidName,
    InvalidRoster,
    LoopbackHub,
    MessageKey,
    PeerTimeout,
    TransportClosed,
    UnknownParty,
    run_parties,
)

GUEST = PartyRef(Role.GUEST, "9999")
# Deliberately not in sorted order: ctx.hosts must follow the roster.
HOSTS = (PartyRef(Role.HOST, "10002"), PartyRef(Role.HOST, "10000"), PartyRef(Role.HOST, "10001"))
ARBITER = PartyRef(Role.ARBITER, "10000")
JOB = "job-ctx"


def lone_context(me: PartyRef = GUEST, roster: tuple[PartyRef, ...] = (GUEST, *HOSTS)) -> Context:
    """``me``'s context with every roster party present on one hub (nobody else running)."""
    hub = LoopbackHub()
    for party in roster:
        hub.transport(party.party_id).open_job(JOB, roster)
    return Context(Federation(JOB, me, roster, hub.transport(me.party_id), timeout_s=0.1))


def test_scopes_build_the_wire_tag() -> None:
    ctx = lone_context()
    tags = {i: ictx.sub("batch-7").tag("wx") for i, ictx in ctx.iterations(5)}
    assert tags[3] == "iter-3.batch-7.wx"
    assert ctx.tag("pubkey") == "pubkey"
    assert [i for i, _ in ctx.iterations(3, prefix="epoch")] == [0, 1, 2]
    assert next(iter(ctx.iterations(1, prefix="epoch")))[1].namespace == "epoch-0"
    assert (ctx.me, ctx.role, ctx.job_id, ctx.party_id) == (GUEST, Role.GUEST, JOB, "9999")


def test_put_uses_the_scoped_tag_on_the_wire() -> None:
    guest, host = GUEST, HOSTS[1]

    def guest_fn(ctx: Context) -> None:
        for i, ictx in ctx.iterations(4):
            if i == 3:
                ictx.sub("batch-7").hosts[1].put("wx", "payload")

    def host_fn(ctx: Context) -> object:
        # Read with the raw federation: the tag is the only thing that matches.
        return ctx.federation.recv("iter-3.batch-7.wx", frm=guest)

    results = run_parties(JOB, {guest: guest_fn, HOSTS[0]: lambda ctx: None, host: host_fn, HOSTS[2]: lambda ctx: None})
    assert results[host] == "payload"


@pytest.mark.parametrize("name", ["", "a.b", "iter.3"])
def test_names_that_would_blur_tags_are_refused(name: str) -> None:
    ctx = lone_context()
    with pytest.raises(InvalidName):
        ctx.sub(name)
    with pytest.raises(InvalidName):
        ctx.hosts.put(name, 1)


def test_hosts_get_returns_one_value_per_host_in_roster_order() -> None:
    roster = {GUEST: None, **{h: None for h in HOSTS}, ARBITER: None}

    def host_fn(ctx: Context) -> None:
        ctx.guest.put("id", ctx.party_id)
        ctx.arbiter.put("id", ctx.party_id)

    def guest_fn(ctx: Context) -> tuple[list[str], str, int]:
        return ctx.hosts.get("id"), ctx.hosts[1].party.party_id, len(ctx.hosts)

    def arbiter_fn(ctx: Context) -> object:
        return ctx.hosts[2].get("id"), ctx.hosts[0].get("id"), ctx.hosts[1].get("id")

    functions = {p: host_fn for p in roster}
    functions[GUEST] = guest_fn  # type: ignore[assignment]
    functions[ARBITER] = arbiter_fn  # type: ignore[assignment]
    results = run_parties(JOB, functions)
    assert results[GUEST] == (["10002", "10000", "10001"], "10000", 3)
    assert results[ARBITER] == ("10001", "10002", "10000")


def test_hosts_put_reaches_every_host_once() -> None:
    def guest_fn(ctx: Context) -> None:
        ctx.hosts.put("pubkey", {"n": 2**2047 + 1})

    def host_fn(ctx: Context) -> object:
        return ctx.guest.get("pubkey")

    functions = {GUEST: guest_fn, **{h: host_fn for h in HOSTS}}
    results = run_parties(JOB, functions)
    assert [results[h] for h in HOSTS] == [{"n": 2**2047 + 1}] * 3


def test_empty_groups_say_what_is_missing() -> None:
    ctx = lone_context()
    with pytest.raises(EmptyGroup, match=f"job {JOB} has no arbiter: cannot put 'key'"):
        ctx.arbiter.put("key", 1)
    with pytest.raises(EmptyGroup, match="has no arbiter: cannot get 'key'"):
        ctx.arbiter.get("key")
    hostless = lone_context(roster=(GUEST,))
    with pytest.raises(EmptyGroup, match="has no hosts: cannot get 'wx'"):
        hostless.hosts.get("wx")
    with pytest.raises(IndexError, match=f"job {JOB} has 3 hosts; no hosts\\[5\\]"):
        ctx.hosts[5]


def test_same_name_twice_in_one_scope_is_a_duplicate_send() -> None:
    ctx = lone_context(me=HOSTS[0])
    ctx.guest.put("wx", 1)
    with pytest.raises(DuplicateSend, match=f"job {JOB}: 'wx' was already sent to guest:9999"):
        ctx.guest.put("wx", 2)
    for _, ictx in ctx.iterations(2):
        ictx.guest.put("wx", 3)  # each round has its own tag


def test_codec_errors_name_the_message() -> None:
    ctx = lone_context(me=HOSTS[0])
    with pytest.raises(CodecError, match=f"job {JOB}: 'iter-0.wx' with guest:9999: cannot encode value of type set"):
        ctx.sub("iter-0").guest.put("wx", {1})
    ctx.sub("iter-0").guest.put("wx", 1)  # the failed encode did not use up the tag


def test_peer_timeout_message_format() -> None:
    assert str(PeerTimeout("J", "TAG", "host:10000", 30)) == "job J: no 'TAG' from host:10000 after 30s"
    ctx = lone_context()
    with pytest.raises(PeerTimeout, match=f"job {JOB}: no 'iter-2.d' from host:10000 after 0s"):
        ctx.sub("iter-2").hosts[1].get("d")


def test_federation_checks_its_roster() -> None:
    hub = LoopbackHub()
    with pytest.raises(UnknownParty, match="guest:9999 is not a party of this job"):
        Federation(JOB, GUEST, HOSTS, hub.transport("9999"))
    with pytest.raises(InvalidRoster, match="2 parties play guest"):
        Federation(JOB, GUEST, (GUEST, PartyRef(Role.GUEST, "1")), hub.transport("9999"))
    with pytest.raises(InvalidRoster, match="listed twice"):
        Federation(JOB, GUEST, (GUEST, GUEST), hub.transport("9999"))
    with pytest.raises(InvalidRoster, match="transport receives for party 10000"):
        Federation(JOB, GUEST, (GUEST,), hub.transport("10000"))


def test_run_parties_reraises_the_first_failure_naming_the_party() -> None:
    host = HOSTS[0]

    def guest_fn(ctx: Context) -> None:
        ctx.hosts[0].get("never-sent")  # would wait 60 s without the hub closing

    def host_fn(ctx: Context) -> None:
        raise ZeroDivisionError("host blew up")

    started = time.monotonic()
    with pytest.raises(ZeroDivisionError, match="host blew up") as info:
        run_parties(JOB, {GUEST: guest_fn, host: host_fn}, timeout_s=60)
    assert time.monotonic() - started < 5
    assert info.value.__notes__ == [f"raised by party {host} in job {JOB} (run_parties)"]


def test_run_parties_returns_results_and_leaves_no_threads() -> None:
    before = {t.name for t in threading.enumerate()}

    def guest_fn(ctx: Context) -> int:
        ctx.arbiter.put("x", 20)
        return int(ctx.arbiter.get("y"))

    def arbiter_fn(ctx: Context) -> str:
        ctx.guest.put("y", ctx.guest.get("x") + 1)
        return "done"

    assert run_parties(JOB, {GUEST: guest_fn, ARBITER: arbiter_fn}) == {GUEST: 21, ARBITER: "done"}
    assert {t.name for t in threading.enumerate()} - before == set()


def test_closed_transport_wakes_a_waiting_federation() -> None:
    hub = LoopbackHub()
    transport = hub.transport("9999")
    transport.open_job(JOB, (GUEST, HOSTS[0]))
    fed = Federation(JOB, GUEST, (GUEST, HOSTS[0]), transport, timeout_s=10)
    timer = threading.Timer(0.1, hub.close)
    timer.start()
    with pytest.raises(TransportClosed, match="while waiting for 'x' \\(host:10002\\)"):
        fed.recv("x", frm=HOSTS[0])
    timer.join()
    assert MessageKey(JOB, "x", HOSTS[0], GUEST) == MessageKey(JOB, "x", HOSTS[0], GUEST, 0)
