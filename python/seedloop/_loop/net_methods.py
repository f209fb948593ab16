"""NetLoopMixin: the loop's network methods, served by the run's simulated network.

``NetLoopMixin`` overrides the loop's network methods (``create_connection``,
``create_server``, ``getaddrinfo``, ``sock_connect``,
``create_datagram_endpoint``, ...) so that they talk to the run's simulated
:class:`seedloop.net.Network`. Bytes move through the Rust data plane
(``_engine.NetCore``); every delivery is a ``loop.call_at`` timer, so the
seeded scheduler orders deliveries like any other callback and the trace
records them. Nothing here touches a real socket: the one real object that can
show up is the unconnected ``socket.socket`` aiohappyeyeballs creates before
``loop.sock_connect``; it is never connected, bound or read, only closed.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from asyncio import base_events
from collections.abc import Callable
from typing import Any

from ..net import (
    _HOST,
    _WILDCARDS,
    Host,
    NetNotSupportedError,
    Network,
    _is_loopback,
)
from .datagram import _DatagramTransport
from .fake_socket import SimSocket
from .stream import _Listener, _open, _StreamTransport
from .tls import _ssl_protocol


def _not_supported(what: str) -> NetNotSupportedError:
    return NetNotSupportedError(
        f"{what} is not simulated by seedloop.net; inside a simulation use "
        "asyncio streams, loop.create_connection/create_server, sock_connect + "
        "create_connection(sock=...) or create_datagram_endpoint"
    )



class _SendfileProtocol(asyncio.Protocol):
    """The transport's protocol while ``loop.sendfile`` writes (asyncio's
    ``_SendfileFallbackProtocol`` for the simulated transport): reading is
    paused, and ``drain()`` waits while the peer has not taken the bytes."""

    def __init__(self, transport: _StreamTransport) -> None:
        self._transport = transport
        self._proto = transport.get_protocol()
        self._should_resume_reading = transport.is_reading()
        self._should_resume_writing = transport._write_paused
        transport.pause_reading()
        transport.set_protocol(self)
        self._write_ready: asyncio.Future[None] | None = (
            transport._loop.create_future() if self._should_resume_writing else None
        )

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._write_ready is not None:
            await self._write_ready

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_exception(
                exc if exc is not None else ConnectionError("Connection is closed by peer")
            )
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._write_ready is None:
            self._write_ready = self._transport._loop.create_future()

    def resume_writing(self) -> None:
        if self._write_ready is not None:
            if not self._write_ready.done():
                self._write_ready.set_result(None)
            self._write_ready = None

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("Invalid state: reading should be paused")

    def restore(self) -> None:
        self._transport.set_protocol(self._proto)
        if self._should_resume_reading:
            self._transport.resume_reading()
        if self._write_ready is not None:
            self._write_ready.cancel()
        # Hand the protocol the transport's writing state as it is now.
        paused = self._transport._write_paused
        if self._should_resume_writing and not paused:
            self._proto.resume_writing()  # type: ignore[attr-defined]
        elif paused and not self._should_resume_writing:
            self._proto.pause_writing()  # type: ignore[attr-defined]


class NetLoopMixin:
    """Network methods of SeedLoop, served by the run's simulated network."""

    _seedloop_net: Network | None = None

    def _sim_net(self) -> Network:
        net = self._seedloop_net
        if net is None:
            net = Network(self, int(getattr(self, "seed", 0)))  # type: ignore[arg-type]
            self._seedloop_net = net
        return net

    # Tasks belong to the host whose context created them (crash cancels them).
    def _track_on_host(self, task: Any, context: Any) -> None:
        """Called by ``create_task`` when a network exists: the task runs on its host."""
        net = self._seedloop_net
        host = context.get(_HOST) if context is not None else _HOST.get(None)
        if host is not None and host.network is net:
            host._track(task)

    # -- DNS ----------------------------------------------------------------

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        return self._sim_net().getaddrinfo(host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        return self._sim_net().getnameinfo(sockaddr, flags)

    # -- streams ------------------------------------------------------------

    async def create_connection(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        sock: Any = None,
        local_addr: Any = None,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        happy_eyeballs_delay: Any = None,
        interleave: Any = None,
        all_errors: bool = False,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if ssl and server_hostname is None:
            if not isinstance(host, str) or not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        net = self._sim_net()
        if sock is not None:
            if host is not None or port is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            transport = net._connected_socks.pop(sock, None)
            if transport is None:
                raise NetNotSupportedError(
                    "create_connection(sock=...) inside a simulation needs a socket connected "
                    "with 'await loop.sock_connect(sock, address)' in the same run"
                )
            if not isinstance(sock, SimSocket):
                transport._real_sock = sock
        else:
            if host is None and port is None:
                raise ValueError("host and port was not specified and no sock specified")
            ip, p = _resolve_port(net, host, port, "connect")
            src = net.current_host()
            local_port = None
            if local_addr is not None:
                local_port = _bind_local(net, src, local_addr)
            transport = await _open(net, src, ip, p, local_port)
        try:
            protocol = protocol_factory()
        except BaseException:
            transport._force_close(None, send_rst=True)
            raise
        if not ssl:
            transport._start(protocol)
            return transport, protocol
        waiter = self.create_future()  # type: ignore[attr-defined]
        ssl_protocol = _ssl_protocol(
            self,
            protocol,
            ssl,
            waiter,
            server_side=False,
            server_hostname=server_hostname,
            handshake_timeout=ssl_handshake_timeout,
            shutdown_timeout=ssl_shutdown_timeout,
        )
        transport._start(ssl_protocol)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return ssl_protocol._app_transport, protocol

    async def sock_connect(self, sock: Any, address: Any) -> None:
        if getattr(sock, "type", None) != socket.SOCK_STREAM:
            raise _not_supported("sock_connect() on a non-TCP socket")
        net = self._sim_net()
        ip, port = _resolve_port(net, address[0], address[1], "connect")
        transport = await _open(net, net.current_host(), ip, port)
        net._connected_socks[sock] = transport

    async def create_server(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        family: int = 0,
        flags: int = socket.AI_PASSIVE,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: Any = None,
        reuse_port: Any = None,
        keep_alive: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        start_serving: bool = True,
    ) -> base_events.Server:
        if sock is not None:
            if host is not None or port is not None:  # asyncio's check comes first
                raise ValueError("host/port and sock can not be specified at the same time")
            raise _not_supported("create_server(sock=...)")
        _check_port(port, "bind")  # before the address, as bind() parses its arguments
        net = self._sim_net()
        me = net.current_host()
        if not me.up:
            raise OSError(errno.ENETDOWN, f"host {me.name} is down")
        names = [host] if host is None or isinstance(host, (str, bytes)) else list(host)
        ips: list[str] = []
        for name in names:
            ip = _bind_address(net, me, name)
            if ip not in ips:
                ips.append(ip)
        if "0.0.0.0" in ips:
            ips = ["0.0.0.0"]
        portnum = _resolve_port(net, None, port, "bind")[1] if port is not None else 0
        if portnum == 0:
            portnum = me._alloc_port()
        else:
            for ip in ips:
                if _port_taken(net, me, ip, portnum):
                    raise OSError(
                        errno.EADDRINUSE,
                        f"error while attempting to bind on address {(ip, portnum)!r}: "
                        "address already in use",
                    )
            me._ports.add(portnum)
        listeners = []
        for ip in ips:
            lst = _Listener(net, me, ip, portnum)
            net._listeners[lst.key] = lst
            listeners.append(lst)
        sockets = [lst.sock for lst in listeners]
        args: list[Any] = [self, sockets, protocol_factory, ssl, backlog, ssl_handshake_timeout]
        if sys.version_info >= (3, 11):
            args.append(ssl_shutdown_timeout)
        server = base_events.Server(*args)
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        return server

    def _start_serving(
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        listener = getattr(sock, "_listener", None)
        if listener is None:
            raise _not_supported("serving on a real socket")
        # args: backlog, ssl_handshake_timeout[, ssl_shutdown_timeout]
        timeouts = (list(args[1:3]) + [None, None])[:2]
        listener.start(protocol_factory, server, sslcontext, *timeouts)

    def _stop_serving(self, sock: Any) -> None:
        sock.close()

    # -- datagrams ----------------------------------------------------------

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], asyncio.DatagramProtocol],
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_address: Any = None,
        reuse_port: Any = None,
        allow_broadcast: Any = None,
        sock: Any = None,
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        if sock is not None:
            raise _not_supported("create_datagram_endpoint(sock=...)")
        net = self._sim_net()
        me = net.current_host()
        if not me.up:
            raise OSError(errno.ENETDOWN, f"host {me.name} is down")
        ip, port = "0.0.0.0", 0
        if local_addr is not None:
            _check_port(local_addr[1], "bind")
            ip = _bind_address(net, me, local_addr[0])
            port = _resolve_port(net, None, local_addr[1], "bind")[1]
        if port == 0:
            port = me._alloc_port()
            while (me.id, port) in net._udp:
                port = me._alloc_port()
        elif (me.id, port) in net._udp:
            raise OSError(
                errno.EADDRINUSE,
                f"error while attempting to bind on address {(ip, port)!r}: address already in use",
            )
        remote = None
        if remote_addr is not None:
            remote = _resolve_port(net, remote_addr[0], remote_addr[1], "connect")
        transport = _DatagramTransport(net, me, (ip, port), remote)
        try:
            protocol = protocol_factory()
        except BaseException:
            transport._vanish()
            raise
        transport._protocol = protocol
        protocol.connection_made(transport)
        return transport, protocol

    # -- sendfile: always the fallback ---------------------------------------

    async def sendfile(
        self,
        transport: Any,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool = True,
    ) -> int:
        if not fallback:
            raise NetNotSupportedError(
                "loop.sendfile(fallback=False): the simulated network has no native "
                "sendfile; with fallback=True (the default) the file's bytes are read "
                "and written to the transport"
            )
        if not isinstance(transport, _StreamTransport):
            # asyncio's own transports over the simulated stream (TLS) say
            # themselves that they take the read-and-write fallback.
            return await super().sendfile(  # type: ignore[misc, no-any-return]
                transport, file, offset, count, fallback=fallback
            )
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        # asyncio's BaseEventLoop._sendfile_fallback, with a protocol swap that
        # knows the simulated transport's flow control.
        if offset:
            file.seek(offset)
        blocksize = min(count, 16384) if count else 16384
        buf = bytearray(blocksize)
        total_sent = 0
        proto = _SendfileProtocol(transport)
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        return total_sent
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)  # type: ignore[attr-defined]
                if not read:
                    return total_sent  # EOF
                await proto.drain()
                transport.write(view[:read])
                total_sent += read
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
            proto.restore()

    # -- what is not simulated ----------------------------------------------

    async def sock_sendfile(self, *args: Any, **kwargs: Any) -> int:
        raise _not_supported("loop.sock_sendfile()")

    async def sock_recv(self, *args: Any, **kwargs: Any) -> bytes:
        raise _not_supported("loop.sock_recv()")

    async def sock_recv_into(self, *args: Any, **kwargs: Any) -> int:
        raise _not_supported("loop.sock_recv_into()")

    async def sock_recvfrom(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_supported("loop.sock_recvfrom()")

    async def sock_sendall(self, *args: Any, **kwargs: Any) -> None:
        raise _not_supported("loop.sock_sendall()")

    async def sock_sendto(self, *args: Any, **kwargs: Any) -> int:
        raise _not_supported("loop.sock_sendto()")

    async def sock_accept(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_supported("loop.sock_accept()")

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_supported("Unix sockets (create_unix_connection)")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_supported("Unix sockets (create_unix_server)")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise _not_supported("connect_accepted_socket()")


def _bind_address(net: Network, me: Host, name: Any) -> str:
    if isinstance(name, bytes):
        name = name.decode("idna")
    if name is None or name in _WILDCARDS:
        return "0.0.0.0"
    ip = net._lookup_name(name)
    if ip is None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    if _is_loopback(ip):
        return "127.0.0.1"
    if ip == "0.0.0.0":
        return ip
    if ip != me.address:
        raise OSError(
            errno.EADDRNOTAVAIL,
            f"error while attempting to bind on address {(ip, 0)!r}: cannot assign requested "
            f"address (it is not an address of host {me.name!r}; spawn the server on that host)",
        )
    return ip


def _port_taken(net: Network, me: Host, ip: str, port: int) -> bool:
    for (hid, lip, lport), lst in net._listeners.items():
        if hid == me.id and lport == port and not lst.closed:
            if lip == ip or lip == "0.0.0.0" or ip == "0.0.0.0":
                return True
    return False


def _check_port(port: Any, op: str) -> None:
    # The stock loop's bind()/connect() on an out-of-range port number
    # (a numeric string counts: asyncio turns it into an int first).
    if isinstance(port, (str, bytes)) and port.isdigit():
        port = int(port)
    if isinstance(port, int) and not 0 <= port <= 65535:
        raise OverflowError(f"{op}(): port must be 0-65535.")


def _resolve_port(net: Network, host: Any, port: Any, op: str) -> tuple[str, int]:
    """``net._resolve`` for a bind or connect: out-of-range ports raise like stock."""
    _check_port(port, op)
    ip, p = net._resolve(host, port)
    _check_port(p, op)  # a numeric string ("70000") resolves to it
    return ip, int(p)


def _bind_local(net: Network, me: Host, local_addr: Any) -> int | None:
    _bind_address(net, me, local_addr[0])
    _check_port(local_addr[1], "bind")
    port = int(local_addr[1] or 0)
    if port == 0:
        return None
    if port in me._ports:
        raise OSError(
            errno.EADDRINUSE,
            f"error while attempting to bind on address {tuple(local_addr)!r}: "
            "address already in use",
        )
    me._ports.add(port)
    return port
