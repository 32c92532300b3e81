"""Names every layer shares: the error root, party references, and column references."""

from fedspark.common._columns import column_ref
from fedspark.common._errors import (
    ConfigError,
    CryptoError,
    DataError,
    FederationError,
    FedsparkError,
    ProtocolError,
)
from fedspark.common._roles import PartyRef, Role

__all__ = [
    "ConfigError",
    "CryptoError",
    "DataError",
    "FederationError",
    "FedsparkError",
    "PartyRef",
    "ProtocolError",
    "Role",
    "column_ref",
]
