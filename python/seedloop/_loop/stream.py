"""Simulated TCP: listeners, the connection handshake and the stream transport."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from asyncio import base_events, trsock
from collections.abc import Callable
from typing import Any

from ..net import Host, Network, _is_loopback
from .fake_socket import SimSocket
from .tls import _ssl_protocol

MAX_READ = 256 * 1024
_ATTACH_TAKES_TRANSPORT = sys.version_info >= (3, 13)


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
        self.sock = SimSocket(socket.SOCK_STREAM, (ip, port), listener=self, fd=net._new_fd())
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

    def _poll_state(self) -> tuple[bool, bool]:
        return bool(self.backlog), False  # readable: a connection waits to be accepted


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
        if self.net._tap is not None:
            self.net._tap("connect", self)
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
        client._peer_host_id = dst.id
        server = _StreamTransport(
            self.net, dst, ba, ab, (peer_ip, self.port), (local_ip, self.local_port)
        )
        server._listener = listener
        server._peer_host_id = src.id
        server._awaiting_open = True
        self.net._arm(ab, established + ack)
        self.loop.call_at(established, self._established, client)

    def _established(self, transport: _StreamTransport) -> None:
        if self.fut.done() or self.net._core.incarnation(self.src.id) != self.incarnation:
            transport._force_close(None, send_rst=True)
            return
        if self.net._tap is not None:
            self.net._tap("established", transport)
        self.fut.set_result(transport)

    def _refused(self) -> None:
        if not self._alive():
            return
        if self.net._tap is not None:
            self.net._tap("refused", self)
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
        self._simsock = SimSocket(
            socket.SOCK_STREAM, sockname, peername, fd=net._new_fd(), owner=self
        )
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
        self._eof_received = False  # FIN or RST seen: a kernel socket polls readable
        self._refused = False  # wrote to a closed peer: a reset is on its way
        self._unacked = 0  # bytes written to a closed peer
        self._peer_host_id = host.id  # set by the handshake
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
        if self._net._tap is not None:
            self._tap_received(opened, data, fin, rst)
        if opened:
            self._awaiting_open = False
            self._accept()
            return
        if fin or rst:
            self._eof_received = True
        if data:
            self._feed(data)
        if fin:
            self._on_eof()
        if rst:
            self._on_reset()

    def _tap_received(self, opened: bool, data: bytes, fin: bool, rst: bool) -> None:
        tap = self._net._tap
        assert tap is not None
        if opened:
            tap("accept", self)
        if data:
            tap("recv", self, len(data))
        if fin:
            tap("eof", self)
        if rst:
            tap("reset", self)

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
            self._loop.call_soon(self._net._due, self._in, context=self._ctx)

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
        if self._net._tap is not None:
            self._net._tap("send", self, len(data))
        if self._out not in self._net._receivers:
            # The peer's socket is closed: these bytes are never acknowledged
            # (they count against the write buffer) and are answered with a
            # reset, as a kernel does, instead of vanishing without a word.
            self._unacked += len(data)
            if not self._refused:
                self._refused = True
                self._reset_after_round_trip()
        self._maybe_pause_protocol()

    def _reset_after_round_trip(self, rto: float = 0.0) -> None:
        if self._closing:
            return
        core, me, peer = self._core, self._host.id, self._peer_host_id
        if core.path_open(me, peer) and core.path_open(peer, me):
            delay = core.draw_latency(me, peer) + core.draw_latency(peer, me)
            self._loop.call_later(delay, self._refused_by_peer, context=self._ctx)
            return
        # Cut off: the bytes are retransmitted (backing off as TCP's RTO does,
        # up to 120 s) until the path is back; partitions never give up.
        rto = min(max(rto * 2, self._net.initial_rto), 120.0)
        self._loop.call_later(rto, self._reset_after_round_trip, rto, context=self._ctx)

    def _refused_by_peer(self) -> None:
        if not self._closing:
            self._on_reset()

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
        return 0 if self._lost else int(self._core.pending_bytes(self._out)) + self._unacked

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
            # Through the network's delivery step, not _on_due directly: what
            # this delivery takes may let the sender resume writing.
            self._loop.call_soon(self._net._due, self._in, context=self._ctx)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def _poll_state(self) -> tuple[bool, bool] | None:
        """What poll() on this connection's socket would say: (readable, writable)."""
        if self._lost:
            return None
        # Readable: the peer's FIN/RST arrived, or due bytes wait while reading
        # is paused (they sit in the kernel buffer on a real socket).
        readable = self._eof_received or self._closing or self._deferred
        return readable, not self._closing and not self._write_paused

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
        if self._core.pending_bytes(self._in) and self._protocol is not None:
            # As Linux: closing with bytes unread (or still arriving) resets
            # the connection, so a peer still writing learns its bytes are lost.
            self._force_close(None, send_rst=True)
            return
        if not self._eof_sent:
            self._eof_sent = True
            self._net._arm(self._out, self._core.send_fin(self._out, self._loop.time()))
        if self._net._tap is not None:
            self._net._tap("close", self)
        self._shutdown(None)

    def abort(self) -> None:
        """Reset the connection: unsent bytes are dropped, the peer gets ConnectionResetError."""
        self._force_close(None, send_rst=True)

    def _force_close(self, exc: BaseException | None, *, send_rst: bool = True) -> None:
        if self._closing:
            return
        if self._net._tap is not None:
            self._net._tap("abort" if send_rst else "close", self)
        if send_rst:
            if self._core.has_pipe(self._out):
                self._net._arm(self._out, self._core.send_rst(self._out, self._loop.time()))
            else:
                # Our FIN was delivered and the direction forgotten: the reset
                # still reaches a peer that may be writing (or waiting in drain()).
                peer = self._net._senders.get(self._in)
                if peer is not None and not peer._refused:
                    peer._refused = True
                    peer._reset_after_round_trip()
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
        self._simsock._closed = True  # fileno() is -1 from now on, as a closed socket's
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
