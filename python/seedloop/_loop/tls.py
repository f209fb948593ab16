"""TLS on a simulated transport: asyncio's own SSLProtocol, built for this Python version."""

from __future__ import annotations

import asyncio
import sys
from asyncio import sslproto
from typing import Any


def _ssl_protocol(
    loop: Any,
    app_protocol: asyncio.BaseProtocol,
    sslcontext: Any,
    waiter: asyncio.Future[Any] | None,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    handshake_timeout: float | None = None,
    shutdown_timeout: float | None = None,
) -> Any:
    """asyncio's own TLS-over-memory-BIO protocol, run on a simulated transport."""
    kwargs: dict[str, Any] = {"ssl_handshake_timeout": handshake_timeout}
    if sys.version_info >= (3, 11):
        kwargs["ssl_shutdown_timeout"] = shutdown_timeout
    return sslproto.SSLProtocol(
        loop,
        app_protocol,
        None if isinstance(sslcontext, bool) else sslcontext,
        waiter,
        server_side,
        server_hostname,
        **kwargs,
    )
