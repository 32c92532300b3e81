"""Routing through others: the star topology's exchange, and a gateway's relay for its executors.

The :class:`Exchange` forwards Transfer streams between parties and sees
headers and (sealed) ciphertexts only; a party's gateway relays the table
partitions its own executors hand over (:class:`OutboundRelay`), with its
identity and sealer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedspark.federation._lazy import lazy_exports

if TYPE_CHECKING:
    from fedspark.federation._errors import ForwardFailed, RelayRefused, UnknownDestination
    from fedspark.federation.star._exchange import DEFAULT_EXCHANGE_NAME, Exchange, create_exchange
    from fedspark.federation.star._relay import RELAY_TOKEN_METADATA_KEY, OutboundRelay

_EXPORTS = {
    "ForwardFailed": "fedspark.federation._errors",
    "RelayRefused": "fedspark.federation._errors",
    "UnknownDestination": "fedspark.federation._errors",
    "DEFAULT_EXCHANGE_NAME": "fedspark.federation.star._exchange",
    "Exchange": "fedspark.federation.star._exchange",
    "create_exchange": "fedspark.federation.star._exchange",
    "OutboundRelay": "fedspark.federation.star._relay",
    "RELAY_TOKEN_METADATA_KEY": "fedspark.federation.star._relay",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DEFAULT_EXCHANGE_NAME",
    "Exchange",
    "ForwardFailed",
    "OutboundRelay",
    "RELAY_TOKEN_METADATA_KEY",
    "RelayRefused",
    "UnknownDestination",
    "create_exchange",
]
