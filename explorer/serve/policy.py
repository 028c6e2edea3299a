"""Who may connect: loopback or token, the token itself, which ``Host`` and ``Origin`` a
request may name, and how large a terminal may be. Plain Python, no server."""

from __future__ import annotations

import fcntl
import hmac
import ipaddress
import secrets
import socket
import struct
from collections.abc import Iterable
from urllib.parse import urlsplit

#: The cookie that carries the token once a browser opened the URL with ``?token=``.
COOKIE = "backchain_token"

#: The largest terminal a session gets, in cells. A 4K screen (3840x2160 pixels) at the
#: smallest font anyone reads (8x16 pixels a cell) is 480x135 cells; 500x200 is more than
#: that and still a small screen buffer (the explorer's memory grows with the cell count: a
#: 2000x2000 resize grew a session to 7.4 GB before the clamp).
MAX_WIDTH = 500
MAX_HEIGHT = 200
#: The smallest: what a resize below it would leave is of no use and 0 or less is nonsense.
MIN_WIDTH = 10
MIN_HEIGHT = 5

#: A websocket message is a key press, a paste, a resize or a ping: 64 KiB is a long paste.
MAX_MESSAGE = 64 * 1024


def is_loopback(host: str) -> bool:
    """``host`` (a name or an address to bind) reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """``host`` binds every address of the machine (``0.0.0.0``, ``::``)."""
    return host in ("", "0.0.0.0", "::")


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


def clamp_size(width: object, height: object) -> tuple[int, int] | None:
    """A terminal size from the browser, clamped to what a real screen needs; None when it
    is not two integers."""
    if type(width) is not int or type(height) is not int:
        return None
    return min(max(width, MIN_WIDTH), MAX_WIDTH), min(max(height, MIN_HEIGHT), MAX_HEIGHT)


def machine_addresses() -> list[str]:
    """This machine's non-loopback IP addresses (IPv4 by interface, IPv6 from /proc), in
    interface order; link-local IPv6 addresses left out (a URL with them needs a zone)."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(s.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(reply[20:24]))
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as table:
            for line in table:
                raw = line.split()[0]
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    except (OSError, ValueError):
        pass
    out: list[str] = []
    for text in found:
        address = ipaddress.ip_address(text)
        if address.is_loopback or address.is_link_local or text in out:
            continue
        out.append(text)
    return out


def machine_names() -> list[str]:
    """This machine's host name and fully qualified name (once each)."""
    names = [socket.gethostname(), socket.getfqdn()]
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


def public_hosts(bound: str) -> list[str]:
    """The host parts of the URLs a trainee can open for a server bound to ``bound``: the
    bound address itself, or every non-loopback address of the machine (else its name) for
    a wildcard bind."""
    if not is_wildcard(bound):
        return [bound]
    return machine_addresses() or machine_names()[:1] or ["localhost"]


def allowed_hosts(bound: str) -> frozenset[str]:
    """Host names (lower case, no port) a request's ``Host`` and ``Origin`` may name for a
    server bound to ``bound``: loopback names always; beyond loopback also the bound address,
    the machine's addresses (wildcard bind) and its names."""
    hosts = {"localhost", "127.0.0.1", "::1", bound.lower()}
    if not is_loopback(bound):
        hosts.update(n.lower() for n in machine_names())
        if is_wildcard(bound):
            hosts.update(machine_addresses())
    hosts.discard("")
    return frozenset(hosts)


def _split_host(authority: str) -> tuple[str, int | None] | None:
    """``name:port`` or ``[v6]:port`` into (lower-case host, port or None); None when it is
    not one."""
    try:
        parts = urlsplit("//" + authority)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host or parts.username is not None or parts.path or parts.query:
        return None
    return host.lower(), port


def host_ok(header: str | None, hosts: Iterable[str], port: int) -> bool:
    """A ``Host`` header names one of ``hosts`` and the server's ``port`` (a browser omits the
    port only for 80)."""
    if not header:
        return False
    split = _split_host(header)
    if split is None:
        return False
    host, given = split
    return host in hosts and (given if given is not None else 80) == port


def origin_ok(header: str | None, hosts: Iterable[str], port: int) -> bool:
    """An ``Origin`` header is absent (not a browser's cross-site request) or names this
    server: ``http(s)://HOST:PORT`` with HOST in ``hosts``. ``null`` (a sandboxed or file
    page) is foreign."""
    if header is None:
        return True
    try:
        parts = urlsplit(header)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        return False
    return host_ok(parts.netloc, hosts, port)
