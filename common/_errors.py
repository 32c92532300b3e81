"""The root of fedspark's error hierarchy.

Every error the product raises on purpose derives from :class:`FedsparkError`,
so the CLI can tell "the user's input or a peer was wrong" (print the message,
exit with ``exit_code``) from a bug (show the traceback). Each layer defines its
own small subclasses next to its code, carrying the fields that name what
failed (file, column, party, peer, tag) and building the message from them::

    FedsparkError
    ├── ConfigError            a job or party config is invalid
    ├── DataError              a table cannot be used (storage.TableError, ...)
    ├── CryptoError            key size, key mismatch, fixed-point range
    ├── FederationError        peers, timeouts, the wire (federation.PeerTimeout, ...)
    └── ProtocolError          a peer sent something the protocol does not allow
"""

from __future__ import annotations


class FedsparkError(Exception):
    """Base class: an expected failure with a message meant for the user."""

    exit_code = 1


class ConfigError(FedsparkError, ValueError):
    """A job or party configuration is invalid; the message names the file and field."""

    exit_code = 2


class DataError(FedsparkError, ValueError):
    """A party's table cannot be used as declared."""

    exit_code = 3


class CryptoError(FedsparkError):
    """A cryptographic precondition failed (key size, key mismatch, encoding range)."""

    exit_code = 4


class FederationError(FedsparkError):
    """Talking to another party failed: unreachable, timed out, or refused."""

    exit_code = 5


class ProtocolError(FedsparkError):
    """A peer's message does not fit the protocol step we are in."""

    exit_code = 6
