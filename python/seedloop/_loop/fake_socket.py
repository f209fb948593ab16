"""SimSocket: the socket object a simulated transport or server shows (never a real socket)."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any

from .._world import fake_fds

if TYPE_CHECKING:
    from .stream import _Listener


class SimSocket:
    """The socket of a simulated transport or server (never a real socket).

    Accepts ``setsockopt`` (remembered, returned by ``getsockopt``), answers
    ``getsockname``/``getpeername``/``family``/``type``. ``fileno()`` is a
    fake descriptor (above any real one; -1 once closed) that ``select.poll``
    and ``select.select`` answer for inside a run from ``owner._poll_state()``:
    readable once data waits unread or the peer closed, as a kernel socket.
    """

    def __init__(
        self,
        type_: int,
        sockname: tuple[str, int],
        peername: tuple[str, int] | None = None,
        listener: _Listener | None = None,
        *,
        fd: int = -1,
        owner: Any = None,
    ) -> None:
        self.family = socket.AF_INET
        self.type = socket.SocketKind(type_)
        self.proto = socket.IPPROTO_UDP if type_ == socket.SOCK_DGRAM else socket.IPPROTO_TCP
        self._sockname = sockname
        self._peername = peername
        self._listener = listener
        self._opts: dict[tuple[int, int], Any] = {}
        self._closed = False
        self._owner = owner if owner is not None else listener
        self._fd = -1
        if fd >= 0:
            self._fd = fake_fds.FAKE_FD_BASE + fd
            fake_fds.register(self._fd, self)

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
        return -1 if self._closed else self._fd

    def _poll_state(self) -> tuple[bool, bool] | None:
        if self._closed:
            return None
        state = getattr(self._owner, "_poll_state", None)
        return (False, True) if state is None else state()

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
