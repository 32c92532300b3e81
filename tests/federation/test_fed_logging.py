"""The gateway's log: one INFO line per stored message, refusals at WARNING with their reason."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from fedspark.common import PartyRef, Role
from fedspark.federation import Envelope, GrpcTransport, MessageKey, SendOptions, SendRefused

GUEST = PartyRef(Role.GUEST, "9999")
HOST = PartyRef(Role.HOST, "10000")


def test_stored_messages_at_info_and_refusals_at_warning(
    grpc_network_factory: Callable[..., dict[str, GrpcTransport]], caplog: pytest.LogCaptureFixture
) -> None:
    net = grpc_network_factory("job-a", [GUEST, HOST], send=SendOptions(connect_deadline_s=2.0))
    caplog.set_level(logging.INFO, logger="fedspark.federation")
    net["10000"].send(Envelope(MessageKey("job-a", "x.grad", HOST, GUEST), b"z" * 1000))
    with pytest.raises(SendRefused):
        net["10000"].send(Envelope(MessageKey("job-b", "x.grad", HOST, GUEST), b"z"))
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "stored" in r.getMessage()]
    assert len(infos) == 1
    assert infos[0].startswith("stored job=job-a tag=x.grad seq=0 src=host:10000 dst=guest:9999 kind=value bytes=1000 ")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("reason=unknown_job" in w and "job-b" in w for w in warnings), warnings
