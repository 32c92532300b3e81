"""Attacks on the federation transport (issue 20, item 5: no plaintext federation off loopback).

Real gRPC servers on 127.0.0.1 and real party processes; no mocks. The attacker is:

* (a, b) any other process of the machine, against a ``fedspark run`` job with default
  settings: it can dial the parties' loopback ports but holds no certificate of the
  job's CA (it may read the CA's public certificate);
* (c) an operator's mistake: a plaintext gateway or route that leaves the machine;
* (d) a star configured without end-to-end sealing (the exchange would read everything);
* (e) the exchange of a star, which records every sealed payload it carries and
  replays one into a later run of the job with the same job id.

Names added by the change are imported inside the tests, so that this file also runs
against the code before it (each test must fail there).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from fedspark.common import ConfigError, PartyRef, Role
from fedspark.federation import (
    Envelope,
    Federation,
    GatewayOptions,
    GrpcTransport,
    MessageKey,
    SealBroken,
    Sealer,
    SealingKey,
    Security,
    SendOptions,
    codec,
    create_exchange,
    create_gateway,
    encode_value,
    init_ca,
    issue_party_cert,
)
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation.transport import split

GUEST, HOST, ARBITER = PartyRef(Role.GUEST, "9999"), PartyRef(Role.HOST, "10000"), PartyRef(Role.ARBITER, "10001")
MEMBERS = [GUEST, HOST]
KEY_BITS = 1024  # test-sized; the runner lowers every local party's floor to it explicitly
PUBLIC_KEY_TAG = "setup.public_key"  # the hetero LR arbiter's first message (algorithms/hetero_lr/_arbiter.py)
OFF_LOOPBACK_ROUTE = "10.255.255.1:9"  # never dialled: refused when the route is set


def _breast_job(data: Path, **overrides: Any) -> dict[str, Any]:
    """The breast hetero LR job (jobs/hetero_lr_breast.yaml) sized for a test; no ``federation`` section unless given."""
    job: dict[str, Any] = {
        "name": "hetero_lr_breast_transport",
        "algorithm": "hetero_lr",
        "parties": {
            "guest": {"party_id": "9999", "data": {"uri": str(data / "breast_hetero_guest.csv"), "label_column": "y"}},
            "hosts": [{"party_id": "10000", "data": {"uri": str(data / "breast_hetero_host.csv")}}],
            "arbiter": {"party_id": "10001"},
        },
        "params": {"learning_rate": 0.15, "alpha": 0.01, "max_iter": 3, "batch_size": 240, "seed": 7},
        "security": {"key_size": KEY_BITS},
        "spark": {"spark.master": "local[1]", "spark.driver.memory": "512m"},
    }
    job.update(overrides)
    return job


def _push(channel: grpc.Channel, key: MessageKey, payload: bytes) -> None:
    """Deliver one message with the gateway's Push RPC, as any gRPC client can try."""
    stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
    stub.Push((codec.chunk_to_proto(part) for part in split(Envelope(key, payload))), timeout=10)


def _events(stdout: str) -> list[dict[str, Any]]:
    """The event lines a party process printed for its runner."""
    prefix = "@@fedspark-event "
    return [json.loads(line[len(prefix):]) for line in stdout.splitlines() if line.startswith(prefix)]


# ------------------------------------------------------------------ (a, b) a `fedspark run` job, default settings


@dataclass
class _Run:
    job_id: str
    run_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Iterator[_Run]:
    """One breast job through the embedded runner (``fedspark run``), shared by the attacks on a running job.

    Default federation settings. The arbiter stalls 8 s before its first message
    (``debug.delay_s``), so an injected public key would arrive first; the fixture
    yields as soon as every party's gateway listens, with their ports.
    """
    from fedspark.engine import EmbeddedRunner, load_job

    folder = tmp_path_factory.mktemp("transport-run")
    job_file = folder / "job.yaml"
    job_file.write_text(yaml.safe_dump(_breast_job(test_data, debug={"delay_s": {"arbiter": 8}})))
    run = _Run(f"transport-{os.getpid()}", folder / "runs" / f"transport-{os.getpid()}")
    all_ready = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "ready":
            run.ports[event["party"]] = int(event["port"])
            if len(run.ports) == 3:
                all_ready.set()

    runner = EmbeddedRunner(load_job(job_file), job_file, run.job_id, folder / "runs", on_event=on_event,
                            min_key_size=KEY_BITS)

    def target() -> None:
        try:
            run.result = runner.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the tests that wait for the result
            run.error = exc
        finally:
            run.done.set()
            all_ready.set()

    thread = threading.Thread(target=target, name="fedspark-run", daemon=True)
    thread.start()
    assert all_ready.wait(300), "the parties' gateways did not start"
    if run.error is not None:
        raise run.error
    yield run
    run.done.wait(600)


@pytest.mark.integration
def test_a_plaintext_client_is_refused_by_every_gateway_of_a_fedspark_run_job(embedded_run: _Run) -> None:
    assert sorted(embedded_run.ports) == ["arbiter:10001", "guest:9999", "host:10000"]
    for party, port in embedded_run.ports.items():
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.GatewayStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.RpcError) as info:
                stub.Ping(codec.ping_request_to_proto("4242"), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE, party  # no TLS handshake, no answer


@pytest.mark.integration
def test_a_local_process_without_the_jobs_certificate_cannot_inject_the_arbiters_public_key(
    embedded_run: _Run, tmp_path: Path
) -> None:
    """The arbiter's `setup.public_key`, forged, pushed at the guest's gateway before the arbiter sends its own."""
    from fedspark.crypto import generate_keypair

    forged_key, _ = generate_keypair(KEY_BITS, allow_insecure_key_size=True)
    key = MessageKey(embedded_run.job_id, PUBLIC_KEY_TAG, ARBITER, GUEST)
    forged = encode_value(forged_key.to_dict())
    address = f"127.0.0.1:{embedded_run.ports[str(GUEST)]}"
    # 1. In plaintext, claiming to be the arbiter.
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as info:
        _push(channel, key, forged)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    # 2. Over TLS, trusting the job's CA (its certificate is public) but with the attacker's own
    #    certificate for party 10001, from a CA of its own: the gateway refuses the client certificate.
    init_ca(tmp_path / "rogue-ca", days=1)
    rogue = issue_party_cert(tmp_path / "rogue-ca", tmp_path / "rogue", ARBITER.party_id, days=1)
    job_ca = (embedded_run.run_dir / "certs" / "ca" / "ca.pem").read_bytes()
    credentials = grpc.ssl_channel_credentials(job_ca, rogue.key.read_bytes(), rogue.cert.read_bytes())
    options = [("grpc.ssl_target_name_override", f"party-{GUEST.party_id}")]
    with grpc.secure_channel(address, credentials, options=options) as channel, pytest.raises(grpc.RpcError) as info:
        _push(channel, key, forged)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE

    # The job is not affected: it trains with the arbiter's own key, over mTLS for every party.
    assert embedded_run.done.wait(600), "the job did not finish"
    assert embedded_run.error is None, embedded_run.error
    results = embedded_run.result.results
    assert {party: metrics["transport"] for party, metrics in results.items()} == dict.fromkeys(results, "mtls")
    guest = json.loads((embedded_run.run_dir / "guest-9999" / "metrics.json").read_text())
    assert guest["epochs"] == 3 and guest["auc"] > 0.97 and guest["transport"] == "mtls"
    arbiter = json.loads((embedded_run.run_dir / "arbiter-10001" / "metrics.json").read_text())
    assert arbiter["key_size"] == KEY_BITS
    # The run's private keys are gone (success or failure alike); the certificates stay.
    certs = embedded_run.run_dir / "certs"
    assert not list(certs.rglob("*.key"))
    assert not list((embedded_run.run_dir / "sealing").rglob("*.key"))  # no tap here: sealing keys go too
    assert (certs / "ca" / "ca.pem").is_file()
    assert all((certs / party / f"party-{party}.pem").is_file() for party in ("9999", "10000", "10001"))


# ------------------------------------------------------------------ (c) plaintext off loopback


def test_a_plaintext_gateway_off_loopback_refuses_to_start_unless_the_party_opts_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigError, match=r"party 9999: .*0\.0\.0\.0:0.*federation\.insecure_plaintext: true"):
        gateway, _ = create_gateway("9999", "0.0.0.0", 0)
        gateway.stop(grace_s=0)
    with pytest.raises(ConfigError, match=r"0\.0\.0\.0.*insecure_plaintext"):
        GrpcTransport(GUEST, listen=GatewayOptions(host="0.0.0.0")).close()

    caplog.set_level(logging.WARNING, logger="fedspark.federation")
    transport = GrpcTransport(GUEST, listen=GatewayOptions(host="0.0.0.0"), security=Security(insecure_plaintext=True))
    try:
        assert transport.port > 0
        assert transport.mode == "plaintext (insecure_plaintext: true)"
        assert "listens in PLAINTEXT on 0.0.0.0:0" in caplog.text
    finally:
        transport.close()


def test_a_plaintext_route_off_loopback_is_refused_unless_the_party_opts_in(tmp_path: Path) -> None:
    transport = GrpcTransport(GUEST)
    try:
        with pytest.raises(ConfigError, match=rf"route to party 10000 .*{OFF_LOOPBACK_ROUTE}.*insecure_plaintext"):
            transport.set_routes({"10000": OFF_LOOPBACK_ROUTE})
        assert transport.routes == {}
        transport.set_routes({"10000": "127.0.0.1:9", "10001": "localhost:9", "10002": "[::1]:9"})  # loopback: fine
    finally:
        transport.close()
    with pytest.raises(ConfigError, match=OFF_LOOPBACK_ROUTE):
        GrpcTransport(GUEST, routes={"10000": OFF_LOOPBACK_ROUTE}).close()

    opted_in = GrpcTransport(GUEST, security=Security(insecure_plaintext=True))
    try:
        opted_in.set_routes({"10000": OFF_LOOPBACK_ROUTE})
        assert opted_in.routes == {"10000": OFF_LOOPBACK_ROUTE}
    finally:
        opted_in.close()
    # With mTLS the same route is fine: the rule is about plaintext only.
    init_ca(tmp_path / "ca", days=1)
    tls = issue_party_cert(tmp_path / "ca", tmp_path / "9999", "9999", days=1).tls_config()
    secured = GrpcTransport(GUEST, security=Security(tls=tls))
    try:
        secured.set_routes({"10000": OFF_LOOPBACK_ROUTE})
        assert secured.mode == "mtls"
    finally:
        secured.close()


@pytest.mark.integration
def test_a_party_process_runs_plaintext_off_loopback_only_when_its_own_conf_says_so(tmp_path: Path) -> None:
    """The job file cannot opt in (every party shares it); the party's own conf can, and its log says so."""
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({**_breast_job(tmp_path), "federation": {"host": "0.0.0.0", "tls": False}}))
    command = [sys.executable, "-m", "fedspark.engine.party_main", "--job", str(job), "--party", str(ARBITER),
               "--job-id", "plain", "--runs-dir", str(tmp_path / "runs"), "--min-key-size", str(KEY_BITS)]
    refused = subprocess.run(command, input="", capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (error,) = _events(refused.stdout)
    assert error["event"] == "error" and error["kind"] == "PlaintextOffLoopback"
    assert "0.0.0.0:0" in error["message"] and "federation.insecure_plaintext: true" in error["message"]

    conf = tmp_path / "party-10001.yaml"
    conf.write_text(yaml.safe_dump({"party_id": "10001", "federation": {"insecure_plaintext": True}}))
    started = subprocess.run([*command, "--party-conf", str(conf)], input="", capture_output=True, text=True,
                             timeout=120)
    events = _events(started.stdout)
    assert [e["event"] for e in events][:1] == ["ready"], started.stdout + started.stderr
    assert "before sending routes" in events[-1]["message"]  # stdin closed: it listened, then stopped
    log = (tmp_path / "runs" / "plain" / "arbiter-10001" / "gateway.log").read_text()
    assert "listens in PLAINTEXT on 0.0.0.0:0" in log
    assert "federation over PLAINTEXT gRPC (plaintext (insecure_plaintext: true))" in log


def test_an_exchange_and_a_ping_follow_the_same_rule() -> None:
    with pytest.raises(ConfigError, match=r"exchange hub: the exchange would listen in plaintext on 0\.0\.0\.0:0"):
        create_exchange(host="0.0.0.0", name="hub").stop(grace_s=0)
    with pytest.raises(ConfigError, match=rf"exchange hub: the route to party 10000 .*{OFF_LOOPBACK_ROUTE}"):
        create_exchange({"10000": OFF_LOOPBACK_ROUTE}, name="hub").stop(grace_s=0)
    opted_in = create_exchange({"10000": OFF_LOOPBACK_ROUTE}, host="0.0.0.0", name="hub", insecure_plaintext=True)
    opted_in.stop(grace_s=0)
    from fedspark.federation import ping_peer

    with pytest.raises(ConfigError, match=rf"party 9999: the route to party 10000 .*{OFF_LOOPBACK_ROUTE}"):
        ping_peer("10000", OFF_LOOPBACK_ROUTE, from_party="9999", timeout_s=1)


def test_what_counts_as_loopback() -> None:
    from fedspark.federation.transport import is_loopback_address, is_loopback_host

    assert all(is_loopback_host(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback_host(h) for h in ("0.0.0.0", "::", "", "10.0.0.1", "bank.example", "localhost.evil"))
    assert all(is_loopback_address(a) for a in ("127.0.0.1:9", "[::1]:9", "localhost:9", "dns:///localhost:9",
                                                "ipv4:127.0.0.1:9,127.0.0.2:9", "unix:/tmp/gateway.sock"))
    assert not any(is_loopback_address(a) for a in (OFF_LOOPBACK_ROUTE, "127.0.0.1", "ipv4:127.0.0.1:9,10.0.0.1:9",
                                                    "dns://8.8.8.8/bank.example:9", "0.0.0.0:9", "garbage"))


# ------------------------------------------------------------------ (d) a star without sealing


def test_a_star_transport_without_a_sealer_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"party 9999: a star topology through exchange 'exchange' needs end-to-end sealing"):
        GrpcTransport(GUEST, security=Security(exchange="exchange")).close()


# ------------------------------------------------------------------ (e) a sealed message replayed into a later job


def test_a_sealed_message_recorded_in_one_job_does_not_open_in_a_later_job_with_the_same_id(tmp_path: Path) -> None:
    job = "job-replayed"
    keys = {p.party_id: SealingKey.generate() for p in MEMBERS}
    table = {p: bytes.fromhex(k.public_hex) for p, k in keys.items()}
    exchange = create_exchange(tap_dir=tmp_path / "exchange-tap")  # records every sealed payload it carries
    transports = {
        p.party_id: GrpcTransport(p, send=SendOptions(connect_deadline_s=10),
                                  security=Security(sealer=Sealer(p.party_id, keys[p.party_id], table), exchange="exchange"))
        for p in MEMBERS
    }
    guest, host = transports[GUEST.party_id], transports[HOST.party_id]
    try:
        exchange.set_routes({p: f"127.0.0.1:{t.port}" for p, t in transports.items()})
        for transport in transports.values():
            transport.set_routes(dict.fromkeys(transports, f"127.0.0.1:{exchange.port}"))
        for transport in transports.values():
            transport.open_job(job, MEMBERS)
        Federation(job, GUEST, MEMBERS, guest, timeout_s=10).send(PUBLIC_KEY_TAG, {"n": 1234567}, HOST)
        assert Federation(job, HOST, MEMBERS, host, timeout_s=10).recv(PUBLIC_KEY_TAG, GUEST) == {"n": 1234567}
        chunks = {}
        for header_file in sorted((tmp_path / "exchange-tap").glob("*.json")):
            header = json.loads(header_file.read_text())
            if header["tag"] == PUBLIC_KEY_TAG:
                chunks[header["index"]] = (tmp_path / "exchange-tap" / header["payload_file"]).read_bytes()
        recorded = b"".join(chunks[i] for i in sorted(chunks))
        assert recorded

        # The job ends; a later job with the same id starts (both parties close it and open it again).
        for transport in transports.values():
            transport.close_job(job)
        for transport in transports.values():
            transport.open_job(job, MEMBERS)
        # The exchange replays what it recorded into the later job: the host's gateway stores it
        # (the seal, not the gateway, is what can tell), but it does not open.
        key = MessageKey(job, PUBLIC_KEY_TAG, GUEST, HOST)
        with grpc.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            _push(channel, key, recorded)
        with pytest.raises(SealBroken, match="another run of this job"):
            host.recv(key, 10)
        # The later job itself works: what the guest seals now is bound to the host's new nonce.
        Federation(job, GUEST, MEMBERS, guest, timeout_s=10).send("after", 7, HOST)
        assert Federation(job, HOST, MEMBERS, host, timeout_s=10).recv("after", GUEST) == 7
    finally:
        for transport in transports.values():
            transport.close()
        exchange.stop(grace_s=0)
