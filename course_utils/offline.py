"""Offline guarantees: block the network under tests, render circuitsvis from its bundled JavaScript.

The course must run with no network. The test suite calls :func:`block_network` (and the kernels it
starts do too, through the build's IPython startup file when ``COURSE_OFFLINE_GUARD=1``), so any
attempt to reach a non-loopback address fails loudly instead of silently depending on the internet.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from typing import Any

_ORIGINAL: dict[str, Any] = {}


class NetworkBlocked(ConnectionError):
    """Raised when code tries to reach the network while the offline guard is on."""


def _is_local(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return str(host).endswith(".localhost")


def block_network() -> None:
    """Make every non-loopback connection (and every DNS lookup of a remote name) raise NetworkBlocked."""
    if _ORIGINAL:
        return
    _ORIGINAL["connect"] = socket.socket.connect
    _ORIGINAL["connect_ex"] = socket.socket.connect_ex
    _ORIGINAL["getaddrinfo"] = socket.getaddrinfo

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            raise NetworkBlocked(f"network access is disabled (the course runs offline): tried to connect to "
                                 f"{address[0]}:{address[1]}")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        return _ORIGINAL["connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return _ORIGINAL["connect_ex"](self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            raise NetworkBlocked(f"network access is disabled (the course runs offline): tried to look up {host!r}")
        return _ORIGINAL["getaddrinfo"](host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def unblock_network() -> None:
    """Undo :func:`block_network`."""
    if not _ORIGINAL:
        return
    socket.socket.connect = _ORIGINAL.pop("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _ORIGINAL.pop("connect_ex")  # type: ignore[method-assign]
    socket.getaddrinfo = _ORIGINAL.pop("getaddrinfo")  # type: ignore[assignment]


def force_local_circuitsvis() -> bool:
    """Make circuitsvis render from its bundled JavaScript, never probe the internet, and use
    deterministic element ids. Returns False when circuitsvis is not installed."""
    try:
        from circuitsvis.utils import render as cv_render
    except ImportError:
        return False
    counter = {"n": 0}

    def _repr_html_(self: Any) -> str:
        src = self.local_src
        marker = 'id="circuits-vis-'
        start = src.find(marker)
        if start >= 0:
            old = src[start + 4: src.index('"', start + 4)]
            counter["n"] += 1
            digest = hashlib.sha1(src.replace(old, "").encode()).hexdigest()[:8]
            src = src.replace(old, f"circuits-vis-{digest}-{counter['n']}")
        return src

    cv_render.internet_on = lambda: False
    cv_render.RenderedHTML._repr_html_ = _repr_html_
    return True
