"""The loop side of seedloop.net: the methods SeedLoop inherits, transports, fake sockets.

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
from asyncio import base_events, sslproto, trsock
from collections.abc import Callable
from typing import Any

from .net import (
    _HOST,
    _WILDCARDS,
    Host,
    NetNotSupportedError,
    Network,
    _is_loopback,
)

MAX_READ = 256 * 1024
_ATTACH_TAKES_TRANSPORT = sys.version_info >= (3, 13)


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


def _not_supported(what: str) -> NetNotSupportedError:
    return NetNotSupportedError(
        f"{what} is not simulated by seedloop.net; inside a simulation use "
        "asyncio streams, loop.create_connection/create_server, sock_connect + "
        "create_connection(sock=...) or create_datagram_endpoint"
    )


class SimSocket:
    """The socket of a simulated transport or server (never a real socket).

    Accepts ``setsockopt`` (remembered, returned by ``getsockopt``), answers
    ``getsockname``/``getpeername``/``family``/``type``, and reports
    ``fileno() == -1``.
    """

    def __init__(
        self,
        type_: int,
        sockname: tuple[str, int],
        peername: tuple[str, int] | None = None,
        listener: _Listener | None = None,
    ) -> None:
        self.family = socket.AF_INET
        self.type = socket.SocketKind(type_)
        self.proto = socket.IPPROTO_UDP if type_ == socket.SOCK_DGRAM else socket.IPPROTO_TCP
        self._sockname = sockname
        self._peername = peername
        self._listener = listener
        self._opts: dict[tuple[int, int], Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        peer = f", raddr={self._peername}" if self._peername else ""
        return f"<seedloop.net.SimSocket {self.type.name} laddr={self._sockname}{peer}>"

    def getsockname(self) -> tuple[str, int]:
        return self._sockname

    def getpeername(self) -> tuple[str, int]:
        if self._peername is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._peername

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        self._opts[(level, optname)] = value

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> Any:
        value = self._opts.get((level, optname), 0)
        if buflen:
            return value if isinstance(value, bytes) else b"\0" * buflen
        return value

    def fileno(self) -> int:
        return -1

    def setblocking(self, flag: bool) -> None:
        pass

    def settimeout(self, value: float | None) -> None:
        pass

    def gettimeout(self) -> float | None:
        return 0.0

    def listen(self, backlog: int = 0) -> None:
        pass

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.close()

    def detach(self) -> int:
        return -1


# -- listeners and connection set-up -----------------------------------------


class _Listener:
    """A bound TCP port on a host; accepts once the server starts serving."""

    def __init__(self, net: Network, host: Host, ip: str, port: int) -> None:
        self.net = net
        self.host = host
        self.ip = ip
        self.port = port
        self.key = (host.id, ip, port)
        self.accepting = False
        self.closed = False
        self.factory: Callable[[], asyncio.BaseProtocol] | None = None
        self.server: base_events.Server | None = None
        self.backlog: list[_StreamTransport] = []
        self.sock = SimSocket(socket.SOCK_STREAM, (ip, port), listener=self)
        self.ssl: Any = None
        self.ssl_timeouts: tuple[Any, Any] = (None, None)

    def matches(self, ip: str) -> bool:
        return self.ip == "0.0.0.0" or self.ip == ip or (_is_loopback(ip) and _is_loopback(self.ip))

    def start(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        server: Any,
        sslcontext: Any = None,
        handshake_timeout: Any = None,
        shutdown_timeout: Any = None,
    ) -> None:
        if self.closed:
            return
        self.ssl = sslcontext
        self.ssl_timeouts = (handshake_timeout, shutdown_timeout)
        self.factory = factory
        self.server = server
        self.accepting = True
        waiting, self.backlog = self.backlog, []
        for t in waiting:
            self.net.loop.call_soon(t._accept, context=t._ctx)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.accepting = False
        if self.net._listeners.get(self.key) is self:
            del self.net._listeners[self.key]
            self.host._release_port(self.port)
        waiting, self.backlog = self.backlog, []
        for t in waiting:
            t._force_close(None, send_rst=True)

    def _vanish(self) -> None:
        self.closed = True
        self.accepting = False
        self.backlog = []


def _find_listener(net: Network, host: Host, ip: str, port: int) -> _Listener | None:
    for key in ((host.id, ip, port), (host.id, "0.0.0.0", port), (host.id, "127.0.0.1", port)):
        lst = net._listeners.get(key)
        if lst is not None and not lst.closed and lst.matches(ip):
            return lst
    return None


class _Connect:
    """One TCP handshake: SYN (retransmitted on loss), SYN-ACK or RST, then ACK."""

    def __init__(
        self, net: Network, src: Host, dst_ip: str, port: int, local_port: int | None
    ) -> None:
        self.net = net
        self.loop = net.loop
        self.src = src
        self.ip = dst_ip
        self.port = port
        self.fut: asyncio.Future[_StreamTransport] = self.loop.create_future()
        self.incarnation = net._core.incarnation(src.id)
        self.local_port = local_port if local_port is not None else src._alloc_port()
        self.answered = False
        self.retx: asyncio.TimerHandle | None = None

    def _stop_retransmitting(self) -> None:
        # Drop the handle too: it refers back to this object, and engine handles
        # are not tracked by the cyclic GC.
        if self.retx is not None:
            self.retx.cancel()
            self.retx = None

    def _alive(self) -> bool:
        return (
            not self.fut.done()
            and not self.answered
            and self.net._core.incarnation(self.src.id) == self.incarnation
        )

    def start(self) -> None:
        dst = self.net._route(self.src, self.ip)
        if dst is None:
            self._fail(OSError(errno.EHOSTUNREACH, f"No route to host {self.ip}"))
            return
        self.dst = dst
        self._attempt(0)

    def _attempt(self, n: int) -> None:
        if not self._alive():
            return
        if n > self.net.connect_retries:
            self._fail(TimeoutError(errno.ETIMEDOUT, f"Connect call failed {(self.ip, self.port)}"))
            return
        self.retx = self.loop.call_later(self.net.initial_rto * (2**n), self._attempt, n + 1)
        core = self.net._core
        if not core.path_open(self.src.id, self.dst.id):
            return  # the SYN is lost: retransmitted later
        delay = core.draw_latency(self.src.id, self.dst.id)
        self.loop.call_later(delay, self._syn_arrives)

    def _syn_arrives(self) -> None:
        if not self._alive():
            return
        core, dst, src = self.net._core, self.dst, self.src
        if not core.host_up(dst.id) or not core.path_open(dst.id, src.id):
            return  # lost, or the answer is: retransmit later
        back = core.draw_latency(dst.id, src.id)
        listener = _find_listener(self.net, dst, self.ip, self.port)
        if listener is None:
            self.loop.call_later(back, self._refused)
            return
        self.answered = True
        self._stop_retransmitting()
        ack = core.draw_latency(src.id, dst.id)
        now = self.loop.time()
        established = now + back
        ab, ba = core.open_stream(src.id, dst.id, established + ack)
        peer_ip = self.ip if not _is_loopback(self.ip) else "127.0.0.1"
        local_ip = "127.0.0.1" if dst is src and _is_loopback(self.ip) else src.address
        if dst is src and not _is_loopback(self.ip):
            local_ip = src.address
        client = _StreamTransport(
            self.net, src, ab, ba, (local_ip, self.local_port), (peer_ip, self.port)
        )
        client._local_port = self.local_port
        server = _StreamTransport(
            self.net, dst, ba, ab, (peer_ip, self.port), (local_ip, self.local_port)
        )
        server._listener = listener
        server._awaiting_open = True
        self.net._arm(ab, established + ack)
        self.loop.call_at(established, self._established, client)

    def _established(self, transport: _StreamTransport) -> None:
        if self.fut.done() or self.net._core.incarnation(self.src.id) != self.incarnation:
            transport._force_close(None, send_rst=True)
            return
        self.fut.set_result(transport)

    def _refused(self) -> None:
        if not self._alive():
            return
        self._fail(
            ConnectionRefusedError(
                errno.ECONNREFUSED, f"Connect call failed {(self.ip, self.port)}"
            )
        )

    def _fail(self, exc: BaseException) -> None:
        self._stop_retransmitting()
        self.src._release_port(self.local_port)
        if not self.fut.done():
            self.fut.set_exception(exc)


async def _open(
    net: Network, src: Host, ip: str, port: int, local_port: int | None = None
) -> _StreamTransport:
    if not src.up:
        raise OSError(errno.ENETDOWN, f"host {src.name} is down")
    c = _Connect(net, src, ip, port, local_port)
    c.start()
    try:
        return await c.fut
    except asyncio.CancelledError:
        c._stop_retransmitting()
        if not c.answered:
            src._release_port(c.local_port)
        raise


# -- the stream transport -----------------------------------------------------


class _StreamTransport(asyncio.Transport):
    """One end of a simulated TCP connection."""

    _start_tls_compatible = True

    def __init__(
        self,
        net: Network,
        host: Host,
        out_pipe: int,
        in_pipe: int,
        sockname: tuple[str, int],
        peername: tuple[str, int],
    ) -> None:
        self._simsock = SimSocket(socket.SOCK_STREAM, sockname, peername)
        super().__init__(
            {
                "peername": peername,
                "sockname": sockname,
                "socket": trsock.TransportSocket(self._simsock),  # type: ignore[arg-type]
            }
        )
        self._net = net
        self._core = net._core
        self._loop = net.loop
        self._host = host
        self._out = out_pipe
        self._in = in_pipe
        self._ctx = host.context()
        self._serial = net._next_serial()
        host._transports[self._serial] = self
        net._receivers[in_pipe] = self
        net._senders[out_pipe] = self
        self._protocol: asyncio.BaseProtocol | None = None
        self._buffered = False
        self._listener: _Listener | None = None
        self._server: Any = None
        self._awaiting_open = False
        self._local_port: int | None = None
        self._real_sock: Any = None
        self._closing = False
        self._lost = False
        self._eof_sent = False
        self._paused = False
        self._deferred = False
        self._write_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024

    def __repr__(self) -> str:
        state = "closed" if self._lost else "closing" if self._closing else "open"
        return (
            f"<seedloop.net transport {self._host.name} {self._extra['sockname']} -> "
            f"{self._extra['peername']} {state}>"
        )

    # -- receiving --------------------------------------------------------

    def _on_due(self) -> None:
        if self._lost:
            return
        if (self._protocol is None and not self._awaiting_open) or self._paused:
            self._deferred = True  # the pipe stays armed in the engine
            return
        opened, data, fin, rst, next_at = self._core.take(self._in, self._loop.time(), MAX_READ)
        if next_at is not None:
            self._net._arm(self._in, next_at)
        if opened:
            self._awaiting_open = False
            self._accept()
            return
        if data:
            self._feed(data)
        if fin:
            self._on_eof()
        if rst:
            self._on_reset()

    def _feed(self, data: bytes) -> None:
        if self._closing or self._protocol is None:
            return
        try:
            if self._buffered:
                view = memoryview(data)
                proto: Any = self._protocol
                while view:
                    buf = proto.get_buffer(len(view))
                    n = min(len(buf), len(view))
                    if not n:
                        raise RuntimeError("get_buffer() returned an empty buffer")
                    memoryview(buf)[:n] = view[:n]
                    proto.buffer_updated(n)
                    view = view[n:]
            else:
                self._protocol.data_received(data)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _on_eof(self) -> None:
        if self._closing or self._protocol is None:
            return
        try:
            keep_open = self._protocol.eof_received()  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    def _on_reset(self) -> None:
        self._force_close(
            ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), send_rst=False
        )

    def _accept(self) -> None:
        lst = self._listener
        if lst is None or lst.closed:
            self._force_close(None, send_rst=True)
            return
        if not lst.accepting:
            lst.backlog.append(self)
            return
        factory = lst.factory
        assert factory is not None
        self._server = lst.server
        try:
            protocol = factory()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {"message": "Error in protocol factory of a simulated server", "exception": exc}
            )
            self._force_close(None, send_rst=True)
            return
        if self._server is not None:
            if _ATTACH_TAKES_TRANSPORT:
                self._server._attach(self)
            else:
                self._server._attach()
        if lst.ssl:
            waiter = self._loop.create_future()
            # A failed handshake is logged by SSLProtocol; do not warn twice.
            waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
            protocol = _ssl_protocol(
                self._loop,
                protocol,
                lst.ssl,
                waiter,
                server_side=True,
                handshake_timeout=lst.ssl_timeouts[0],
                shutdown_timeout=lst.ssl_timeouts[1],
            )
        self._start(protocol, raise_errors=False)

    def _start(self, protocol: asyncio.BaseProtocol, raise_errors: bool = True) -> None:
        self.set_protocol(protocol)
        try:
            protocol.connection_made(self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if raise_errors:
                self._force_close(None, send_rst=True)
                raise
            self._fatal_error(exc, "Fatal error: protocol.connection_made() call failed.")
            return
        if self._deferred:
            self._deferred = False
            self._loop.call_soon(self._on_due, context=self._ctx)

    # -- sending ----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof_sent and not self._closing:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self._closing:
            return
        at = self._core.send(self._out, bytes(data), self._loop.time())
        self._net._arm(self._out, at)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._closing or self._eof_sent:
            return
        self._eof_sent = True
        self._net._arm(self._out, self._core.send_fin(self._out, self._loop.time()))

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0 if self._lost else int(self._core.pending_bytes(self._out))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    @property
    def _protocol_paused(self) -> bool:
        # Python 3.10's TLS transport asks its stream for it (sendfile's fallback).
        return self._write_paused

    def _maybe_pause_protocol(self) -> None:
        if self._write_paused or self._protocol is None:
            return
        if self.get_write_buffer_size() <= self._high:
            return
        self._write_paused = True
        try:
            self._protocol.pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "protocol.pause_writing() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def _maybe_resume_protocol(self) -> None:
        if not self._write_paused or self._lost or self._protocol is None:
            return
        if self.get_write_buffer_size() > self._low:
            return
        self._write_paused = False
        try:
            self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "protocol.resume_writing() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    # -- reading control ----------------------------------------------------

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._deferred:
            self._deferred = False
            self._loop.call_soon(self._on_due, context=self._ctx)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    # -- protocol ---------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[return-value]

    # -- closing ----------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send everything written so far, then a FIN; connection_lost(None) follows."""
        if self._closing:
            return
        if not self._eof_sent:
            self._eof_sent = True
            self._net._arm(self._out, self._core.send_fin(self._out, self._loop.time()))
        self._shutdown(None)

    def abort(self) -> None:
        """Reset the connection: unsent bytes are dropped, the peer gets ConnectionResetError."""
        self._force_close(None, send_rst=True)

    def _force_close(self, exc: BaseException | None, *, send_rst: bool = True) -> None:
        if self._closing:
            return
        if send_rst:
            self._net._arm(self._out, self._core.send_rst(self._out, self._loop.time()))
        self._shutdown(exc)

    def _shutdown(self, exc: BaseException | None) -> None:
        self._closing = True
        self._net._receivers.pop(self._in, None)
        self._core.discard(self._in)
        self._core.sender_closed(self._out)
        if self._loop.is_closed():
            self._lost = True  # closed after the run: no more callbacks
            self._forget()
            return
        self._loop.call_soon(self._call_connection_lost, exc, context=self._ctx)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc, send_rst=True)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        try:
            if self._protocol is not None:
                self._protocol.connection_lost(exc)
        finally:
            self._forget()
            self._detach_server()

    def _forget(self) -> None:
        self._net._senders.pop(self._out, None)
        self._net._receivers.pop(self._in, None)
        self._host._transports.pop(self._serial, None)
        if self._local_port is not None:
            self._host._release_port(self._local_port)
            self._local_port = None
        if self._real_sock is not None:
            sock, self._real_sock = self._real_sock, None
            sock.close()

    def _vanish(self) -> None:
        """The host crashed: gone without a protocol callback (the engine reset the peer)."""
        self._closing = True
        self._lost = True
        self._forget()
        self._detach_server()

    def _detach_server(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            if _ATTACH_TAKES_TRANSPORT:
                server._detach(self)
            else:
                server._detach()


# -- datagrams ----------------------------------------------------------------


class _DatagramTransport(asyncio.DatagramTransport):
    """A simulated UDP socket."""

    def __init__(
        self, net: Network, host: Host, sockname: tuple[str, int], remote: tuple[str, int] | None
    ) -> None:
        self._simsock = SimSocket(socket.SOCK_DGRAM, sockname, remote)
        super().__init__(
            {
                "sockname": sockname,
                "peername": remote,
                "socket": trsock.TransportSocket(self._simsock),  # type: ignore[arg-type]
            }
        )
        self._net = net
        self._loop = net.loop
        self._host = host
        self._ip, self._port = sockname
        self._remote = remote
        self._ctx = host.context()
        self._protocol: asyncio.DatagramProtocol | None = None
        self._closing = False
        self._serial = net._next_serial()
        host._datagrams[self._serial] = self
        net._udp[(host.id, self._port)] = self

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._closing:
            return
        if addr is None:
            addr = self._remote
            if addr is None:
                raise OSError(errno.EDESTADDRREQ, "Destination address required")
        elif self._remote is not None and tuple(addr[:2]) != self._remote:
            raise ValueError(f"Invalid address: must be None or {self._remote}")
        net = self._net
        ip, port = net._resolve(addr[0], addr[1])
        dst = net._route(self._host, ip)
        if dst is None:
            return  # nobody has that address: the datagram goes nowhere
        src_ip = "127.0.0.1" if _is_loopback(ip) else self._host.address
        src_addr = (src_ip, self._port)
        ctx = dst.context()
        for dgram, at in net._core.dgram_send(
            self._host.id, dst.id, bytes(data), self._loop.time()
        ):
            self._loop.call_at(
                at,
                _deliver_datagram,
                net,
                dgram,
                self._host.id,
                dst,
                ip,
                port,
                src_addr,
                context=ctx,
            )

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._unbind()
        self._loop.call_soon(self._call_connection_lost, None, context=self._ctx)

    def abort(self) -> None:
        self.close()

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._protocol is not None:
            self._protocol.connection_lost(exc)

    def _unbind(self) -> None:
        if self._net._udp.get((self._host.id, self._port)) is self:
            del self._net._udp[(self._host.id, self._port)]
            self._host._release_port(self._port)
        self._host._datagrams.pop(self._serial, None)

    def _vanish(self) -> None:
        self._closing = True
        self._unbind()


def _deliver_datagram(
    net: Network,
    dgram: int,
    src_id: int,
    dst: Host,
    ip: str,
    port: int,
    src_addr: tuple[str, int],
) -> None:
    data = net._core.dgram_take(dgram, src_id)
    if data is None:
        return
    ep = net._udp.get((dst.id, port))
    if ep is None or ep._closing or ep._protocol is None:
        return
    if (
        ep._ip not in _WILDCARDS
        and ep._ip != ip
        and not (_is_loopback(ep._ip) and _is_loopback(ip))
    ):
        return
    if ep._remote is not None and src_addr != ep._remote:
        return
    ep._protocol.datagram_received(data, src_addr)


# -- the mixin ------------------------------------------------------------------


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
            ip, p = net._resolve(host, port)
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
        ip, port = net._resolve(address[0], address[1])
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
            raise _not_supported("create_server(sock=...)")
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
        if port is None or port == 0:
            portnum = me._alloc_port()
        else:
            portnum = int(net._resolve(None, port)[1])
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
            ip = _bind_address(net, me, local_addr[0])
            port = int(net._resolve(None, local_addr[1])[1])
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
            remote = net._resolve(remote_addr[0], remote_addr[1])
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


def _bind_local(net: Network, me: Host, local_addr: Any) -> int | None:
    _bind_address(net, me, local_addr[0])
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
