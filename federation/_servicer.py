"""The gRPC face of a gateway: unpack, call the gateway, map errors to status codes.

All rules live in :class:`~fedspark.federation._gateway.Gateway`; this module
only translates. The refusal reason also travels as trailing metadata, so the
sender gets the same ``RefusalReason`` the gateway raised, not a guess from
the status code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import grpc

from fedspark.federation import codec
from fedspark.federation import federation_pb2 as pb
from fedspark.federation import federation_pb2_grpc as pb_grpc
from fedspark.federation._errors import MessageRefused, RefusalReason, TransportClosed
from fedspark.federation._gateway import Gateway

REFUSAL_METADATA_KEY = "fedspark-refusal"

STATUS_OF_REFUSAL: dict[RefusalReason, grpc.StatusCode] = {
    RefusalReason.UNKNOWN_JOB: grpc.StatusCode.NOT_FOUND,
    RefusalReason.NOT_A_MEMBER: grpc.StatusCode.PERMISSION_DENIED,
    RefusalReason.WRONG_RECIPIENT: grpc.StatusCode.PERMISSION_DENIED,
    RefusalReason.CORRUPT: grpc.StatusCode.DATA_LOSS,
    RefusalReason.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class GatewayServicer(pb_grpc.GatewayServicer):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def Push(self, request_iterator: Iterator[pb.Chunk], context: grpc.ServicerContext) -> pb.PushAck:
        try:
            receipt = self._gateway.receive(codec.chunk_from_proto(chunk) for chunk in request_iterator)
        except MessageRefused as exc:
            _abort_refused(context, exc)
        except TransportClosed as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return codec.receipt_to_proto(receipt)

    def Ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingReply:
        return codec.ping_reply_to_proto(self._gateway.party_id)


def _abort_refused(context: grpc.ServicerContext, exc: MessageRefused) -> NoReturn:
    context.set_trailing_metadata(((REFUSAL_METADATA_KEY, exc.reason.value),))
    context.abort(STATUS_OF_REFUSAL[exc.reason], str(exc))
