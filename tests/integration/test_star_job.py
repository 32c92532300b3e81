"""The breast job over a star: every message through an exchange process that cannot read it.

Real processes on loopback: ``fedspark run`` starts the three parties and an
exchange (``fedspark exchange`` on a free port), with mTLS on every hop and
payloads sealed end to end. The job must train exactly as over a mesh, and
what the exchange recorded must be headers and sealed bytes only: the very
bytes the receiving gateways stored, none of which decodes, and none of which
contains anything the parties' payloads held in plaintext. Also: the
``fedspark exchange`` command on its own refuses an unknown destination,
naming it, and stops cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from cli_helpers import FEDSPARK, breast_job, leftover_processes, run_cli

from fedspark.common import PartyRef, Role
from fedspark.federation import (
    CodecError,
    Envelope,
    GrpcTransport,
    MessageKey,
    PayloadKind,
    PeerUnreachable,
    RefusalReason,
    Sealer,
    SendOptions,
    SendRefused,
    decode_value,
    encode_value,
)
from fedspark.federation.security import NONCE_TAG

pytestmark = pytest.mark.integration

PARAMS = {"learning_rate": 0.15, "max_iter": 3, "batch_size": 240, "seed": 7}
WINDOW = 24


def _messages(tap: Path, *, chunked: bool) -> dict[tuple[str, str, str, int], tuple[str, bytes]]:
    """(tag, src, dst, seq) -> (kind, payload) from a tap folder; an exchange's chunks are joined."""
    parts: dict[tuple[str, str, str, int], dict[int, bytes]] = {}
    kinds: dict[tuple[str, str, str, int], str] = {}
    for header_file in sorted(tap.glob("*.json")):
        header = json.loads(header_file.read_text())
        key = (header["tag"], header["src"], header["dst"], header["seq"])
        kinds[key] = header["kind"]
        index = header["index"] if chunked else 0
        parts.setdefault(key, {})[index] = (tap / header["payload_file"]).read_bytes()
    return {key: (kinds[key], b"".join(chunks[i] for i in sorted(chunks))) for key, chunks in parts.items()}


def _windows(data: bytes) -> list[bytes]:
    """Distinctive slices of a plaintext payload (skipping runs of one repeated byte)."""
    step = max(WINDOW, len(data) // 40)
    slices = [data[i : i + WINDOW] for i in range(0, max(1, len(data) - WINDOW + 1), step)]
    return [s for s in slices if len(s) == WINDOW and len(set(s)) > 4]


def test_breast_job_over_star_matches_mesh_and_the_exchange_sees_no_plaintext(
    tmp_path: Path, test_data: Path, fresh_job_id: str
) -> None:
    mesh_id, star_id = f"{fresh_job_id}-mesh", f"{fresh_job_id}-star"
    mesh = run_cli(tmp_path, breast_job(test_data, params=PARAMS, federation={"timeout_s": 300}), mesh_id, timeout=900)
    assert mesh.returncode == 0, mesh.stderr
    star_job = breast_job(test_data, params=PARAMS, federation={"timeout_s": 300, "topology": "star", "tls": True})
    tap = tmp_path / "tap"
    star = run_cli(tmp_path, star_job, star_id, "--tap-dir", str(tap), timeout=900)
    assert star.returncode == 0, star.stderr
    assert leftover_processes(mesh_id) == [] and leftover_processes(star_id) == []

    runs = tmp_path / "runs"
    mesh_metrics = json.loads((runs / mesh_id / "guest-9999" / "metrics.json").read_text())
    star_metrics = json.loads((runs / star_id / "guest-9999" / "metrics.json").read_text())
    assert star_metrics["epochs"] == mesh_metrics["epochs"] == 3
    assert star_metrics["auc"] == pytest.approx(mesh_metrics["auc"], abs=1e-9) and star_metrics["auc"] > 0.97

    # What the exchange forwarded is, message by message, what the receiving gateways stored: sealed bytes.
    carried = _messages(tap / "exchange", chunked=True)
    stored: dict[tuple[str, str, str, int], tuple[str, bytes]] = {}
    for party_tap in (tap / f"{role}-{party}" for role, party in (("guest", 9999), ("host", 10000), ("arbiter", 10001))):
        stored.update(_messages(party_tap, chunked=False))
    assert len(carried) > 20 and set(carried) == set(stored)
    assert {key[1].split(":")[0] for key in carried} == {"guest", "host", "arbiter"}
    for key, (_, data) in carried.items():
        assert data == stored[key][1], key

    # Opened with the receivers' keys and their receive nonces for this run (each party announced its own
    # to the others), the stored payloads are the job's codec values (the plaintext).
    def sealer_of(party: PartyRef) -> Sealer:
        return Sealer.from_dir(runs / star_id / "sealing" / party.party_id, party.party_id)

    nonces: dict[str, bytes] = {}
    for (tag, src, dst, seq), (_, sealed) in stored.items():
        if tag == NONCE_TAG:
            announcer, receiver = PartyRef.parse(src), PartyRef.parse(dst)
            key = MessageKey(star_id, tag, announcer, receiver, seq)
            nonce = sealer_of(receiver).read_announcement(key, sealed)
            assert nonces.setdefault(announcer.party_id, nonce) == nonce  # one nonce per party for the run
    assert set(nonces) == {"9999", "10000", "10001"}
    plaintexts = []
    for (tag, src, dst, seq), (kind, sealed) in stored.items():
        if tag == NONCE_TAG:
            continue
        receiver = PartyRef.parse(dst)
        key = MessageKey(star_id, tag, PartyRef.parse(src), receiver, seq)
        plain = sealer_of(receiver).open(key, PayloadKind(kind), sealed, nonces[receiver.party_id])
        decode_value(plain)  # raises if the opened bytes were not a value the codec wrote
        plaintexts.append(plain)
    assert sum(b"\xff\xff\xff\xff" in p for p in plaintexts) > 5  # Arrow IPC streams (ciphertexts, gradients)

    windows = [w for p in plaintexts for w in _windows(p)]
    assert len(windows) > 200
    for key, (_, data) in carried.items():
        with pytest.raises(CodecError):
            decode_value(data)
        with pytest.raises(pa.ArrowInvalid):
            pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        assert b"\xff\xff\xff\xff" not in data[:64], key
        leaked = [w for w in windows if w in data]
        assert not leaked, f"{key}: plaintext bytes {leaked[0].hex()} visible at the exchange"

    # The exchange's records hold headers (job, tag, src, dst, seq, sizes), never a party's key.
    header = json.loads(next((tap / "exchange").glob("*.json")).read_text())
    assert {"job_id", "tag", "src", "dst", "seq", "total_bytes", "chunk_count", "index"} <= set(header)
    certs = runs / star_id / "certs"
    # The run's private keys (CA, parties, exchange) are gone once it ended; the certificates stay.
    assert (certs / "exchange" / "party-exchange.pem").is_file() and not list(certs.rglob("*.key"))
    # With mTLS the sealing keys travel in the parties' certificates, vouched for by the CA: no bare key table.
    for party in ("9999", "10000", "10001"):
        folder = runs / star_id / "sealing" / party
        assert sorted(p.name for p in (folder / "peers").glob("*.pem")) == [
            "party-10000.pem", "party-10001.pem", "party-9999.pem"]
        assert not (folder / "sealing-peers.json").exists()


def test_the_exchange_command_refuses_an_unknown_destination_naming_it(tmp_path: Path) -> None:
    guest = GrpcTransport(PartyRef(Role.GUEST, "9999"), send=SendOptions(connect_deadline_s=10))
    conf = tmp_path / "exchange.yaml"
    conf.write_text(yaml.safe_dump({"name": "hub", "host": "127.0.0.1", "port": 0,
                                    "routes": {"9999": f"127.0.0.1:{guest.port}"}}))
    proc = subprocess.Popen([*FEDSPARK, "exchange", "--conf", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline().split(" ", 1)[1])
        assert ready["event"] == "ready" and ready["party"] == "hub"
        guest.set_routes({"10000": f"127.0.0.1:{ready['port']}"})
        host = PartyRef(Role.HOST, "10000")
        with pytest.raises(SendRefused) as info:
            guest.send(Envelope(MessageKey("j", "w", PartyRef(Role.GUEST, "9999"), host), encode_value(1)))
        assert info.value.reason is RefusalReason.NO_ROUTE
        assert "exchange hub has no route to party 10000" in str(info.value)
        assert "routes known for: 9999" in str(info.value)
        with pytest.raises(PeerUnreachable, match="no route to party 10000"):
            guest.ping("10000")  # a ping names its destination in metadata: refused the same way
    finally:
        guest.close()
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "exchange hub on 127.0.0.1" in err


def test_a_failed_star_job_leaves_no_exchange_behind(tmp_path: Path, test_data: Path, fresh_job_id: str) -> None:
    job = breast_job(test_data, federation={"timeout_s": 4, "topology": "star"}, debug={"delay_s": {"host": 600}})
    proc = run_cli(tmp_path, job, fresh_job_id, timeout=240)
    assert proc.returncode != 0
    assert f"job {fresh_job_id}" in proc.stderr and "after 4s" in proc.stderr, proc.stderr
    log = (tmp_path / "runs" / fresh_job_id / "exchange" / "exchange.log").read_text()
    assert "exchange exchange on 127.0.0.1" in log  # it was running when the job failed
    certs = tmp_path / "runs" / fresh_job_id / "certs"  # mTLS by default: a failed run deletes its keys too
    assert (certs / "ca" / "ca.pem").is_file() and not list(certs.rglob("*.key"))
    assert leftover_processes(fresh_job_id) == []


def test_a_psi_job_over_star_with_mtls_sends_its_tables_from_executors_sealed(tmp_path: Path, fresh_job_id: str) -> None:
    """PSI moves its blinded ids as distributed tables: executors -> own gateway -> sealed -> exchange -> peer."""
    ids = {"9999": list(range(0, 300)), "10000": list(range(150, 450))}
    for party, values in ids.items():
        (tmp_path / f"{party}.csv").write_text("id,x\n" + "".join(f"{i},{i * 0.5}\n" for i in values))
    job = {
        "name": "psi_star",
        "algorithm": "psi",
        "parties": {
            "guest": {"party_id": "9999", "data": {"uri": str(tmp_path / "9999.csv")}},
            "hosts": [{"party_id": "10000", "data": {"uri": str(tmp_path / "10000.csv")}}],
        },
        "params": {"id_type": "int"},
        "federation": {"timeout_s": 300, "topology": "star", "tls": True},
        "spark": {"spark.master": "local[1]", "spark.driver.memory": "512m"},
    }
    tap = tmp_path / "tap"
    proc = run_cli(tmp_path, job, fresh_job_id, "--tap-dir", str(tap), timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert leftover_processes(fresh_job_id) == []
    run_dir = tmp_path / "runs" / fresh_job_id
    assert json.loads((run_dir / "guest-9999" / "metrics.json").read_text())["matched"] == 150

    carried = _messages(tap / "exchange", chunked=True)
    partitions = {key: kind for key, (kind, _) in carried.items() if key[3] > 0}
    assert partitions and set(partitions.values()) == {"arrow_stream"}  # table partitions crossed the star
    assert {key[0].rsplit(".", 1)[-1] for key in partitions} >= {"blinded", "reblinded", "intersection"}
    # Each partition was handed over by an executor and forwarded, sealed, by its party's own gateway.
    logs = {party: (run_dir / party / "gateway.log").read_text() for party in ("guest-9999", "host-10000")}
    for tag, src, dst, seq in partitions:
        line = f"forwarded job={fresh_job_id} tag={tag} seq={seq} src={src} dst={dst} "
        assert line in logs[src.replace(":", "-")] and "mode=sealed" in logs[src.replace(":", "-")], line
    for key, (_, data) in carried.items():
        assert data.startswith(b"FSEAL\x01"), key
        with pytest.raises(pa.ArrowInvalid):
            pa.ipc.open_stream(pa.py_buffer(data)).read_all()
