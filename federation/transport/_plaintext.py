"""No plaintext federation off loopback: the check every gateway bind and every route passes.

Plaintext gRPC authenticates nobody. On loopback only processes of this
machine can connect, and the operator who runs them all (``fedspark run``) may
choose that; anywhere else, anyone who reaches a gateway's port can send in
any party's name and anyone on the path reads every value. So a gateway that
listens off loopback, or a route that leaves the machine, without mTLS is
refused (:class:`~fedspark.federation.PlaintextOffLoopback`) unless the
party's own configuration says ``federation.insecure_plaintext: true``; a run
that takes that exit says so in its log and in its results (:func:`transport_mode`).

The check lives here, below every entry point (``create_gateway``,
``GrpcTransport``'s routes, the exchange, ``ping_peer``), so none can forget it.
Host names are not resolved: only a literal loopback address (``127.0.0.0/8``,
``::1``) or ``localhost`` counts, because what a name resolves to can change
after the check. A wildcard bind (``0.0.0.0``, ``::``) listens on every
interface and is therefore off loopback.
"""

from __future__ import annotations

import ipaddress
import logging

from fedspark.federation._errors import PlaintextOffLoopback

log = logging.getLogger("fedspark.federation.transport")

MTLS = "mtls"
PLAINTEXT_LOOPBACK = "plaintext (loopback)"
PLAINTEXT_INSECURE = "plaintext (insecure_plaintext: true)"


def transport_mode(tls: bool, insecure_plaintext: bool) -> str:
    """What a party's results say about its link: ``mtls``, or plaintext and why it was allowed."""
    if tls:
        return MTLS
    return PLAINTEXT_INSECURE if insecure_plaintext else PLAINTEXT_LOOPBACK


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is a literal loopback address or ``localhost`` (never resolved, see module doc)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def is_loopback_address(address: str) -> bool:
    """Whether a gRPC target (``host:port``, ``[v6]:port``, ``dns:``/``ipv4:``/``ipv6:``/``unix:`` forms) stays on this machine.

    Anything this function cannot parse counts as off loopback: the safe answer.
    """
    target = address.strip()
    if target.startswith(("unix:", "unix-abstract:")):
        return True  # a local socket cannot leave the machine
    if target.startswith("dns:"):
        target = target[len("dns:"):]
        if target.startswith("//"):
            target = target[2:].split("/", 1)[1] if "/" in target[2:] else ""
    elif target.startswith(("ipv4:", "ipv6:")):
        hosts = target.split(":", 1)[1].split(",")
        return bool(hosts) and all(is_loopback_address(part) for part in hosts)
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return False
    return is_loopback_host(host)


def check_bind(who: str, host: str, port: int, *, tls: bool, insecure_plaintext: bool, what: str = "gateway") -> None:
    """Refuse a plaintext server bound off loopback unless ``who`` (``party 9999``) opted in (then warn)."""
    if tls or is_loopback_host(host):
        return
    address = f"{host}:{port}"
    if not insecure_plaintext:
        raise PlaintextOffLoopback(who, f"the {what} would listen in plaintext on", address)
    log.warning("%s: the %s listens in PLAINTEXT on %s, off loopback (insecure_plaintext: true): "
                "peers are not authenticated and every value is readable on the network", who, what, address)


def check_routes(who: str, routes: dict[str, str], *, tls: bool, insecure_plaintext: bool) -> None:
    """Refuse plaintext routes that leave this machine unless ``who`` opted in (then warn, once per route)."""
    if tls:
        return
    for peer, address in sorted(routes.items()):
        if is_loopback_address(address):
            continue
        if not insecure_plaintext:
            raise PlaintextOffLoopback(who, f"the route to party {peer} would send in plaintext to", address)
        log.warning("%s: the route to party %s sends in PLAINTEXT to %s, off loopback "
                    "(insecure_plaintext: true)", who, peer, address)
