"""Simulated UDP: the datagram transport and datagram delivery."""

from __future__ import annotations

import asyncio
import errno
import socket
from asyncio import trsock
from typing import Any

from ..net import _WILDCARDS, Host, Network, _is_loopback
from .fake_socket import SimSocket


class _DatagramTransport(asyncio.DatagramTransport):
    """A simulated UDP socket."""

    def __init__(
        self, net: Network, host: Host, sockname: tuple[str, int], remote: tuple[str, int] | None
    ) -> None:
        self._simsock = SimSocket(socket.SOCK_DGRAM, sockname, remote, fd=net._new_fd())
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
        self._simsock._closed = True  # fileno() is -1 from now on
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
