"""Who may connect: loopback or token, and the token itself. Plain Python, no server."""

from __future__ import annotations

import hmac
import ipaddress
import secrets

#: The cookie that carries the token once a browser opened the URL with ``?token=``.
COOKIE = "backchain_token"


def is_loopback(host: str) -> bool:
    """``host`` (a name or an address to bind) reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token sessions need on ``host``: the given one; a generated one when ``host`` is
    not loopback and none was given; None on loopback without one.

    Returns:
        The token (or None) and whether it was generated here (the caller prints it).
    """
    if token is not None:
        if not token:
            raise ValueError("an empty token would let anyone in")
        return token, False
    if is_loopback(host):
        return None, False
    return secrets.token_urlsafe(18), True


def token_ok(expected: str | None, offered: str | None) -> bool:
    """``offered`` is the token (always true when no token is needed)."""
    if expected is None:
        return True
    if offered is None:
        return False
    return hmac.compare_digest(expected.encode(), offered.encode())
