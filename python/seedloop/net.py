"""seedloop.net: a simulated network for code that runs inside a simulation.

Every simulated run has its own :class:`Network`, created on first use and
seeded from the run's seed (its own ``"net"`` stream, so drawing latencies or
faults never changes the scheduler's choices). Code under test uses plain
asyncio and libraries on top of it: ``asyncio.start_server`` /
``open_connection``, ``loop.create_server`` / ``create_connection``,
``loop.getaddrinfo``, ``loop.sock_connect`` + ``create_connection(sock=...)``
and ``loop.create_datagram_endpoint`` all go to the simulated network; no real
socket is ever connected, bound or listened on.

Example::

    import asyncio, seedloop
    from seedloop import net

    async def scenario():
        n = net.current()
        server, client = n.host("server"), n.host("client")

        async def serve():
            async def echo(r, w):
                w.write(await r.read(100)); await w.drain(); w.close()
            srv = await asyncio.start_server(echo, None, 7000)
            await srv.serve_forever()

        server.spawn(serve())

        async def ask():
            r, w = await asyncio.open_connection("server", 7000)
            w.write(b"hi"); return await r.read()

        return await client.spawn(ask())

    assert seedloop.run(scenario, seed=1) == b"hi"

Hosts have names (resolved by the simulated DNS) and addresses (10.0.0.N in
creation order unless given). ``localhost``/127.0.0.1 is the calling host's
own loopback; ``host=None``/"0.0.0.0" in ``create_server`` binds every
address of the calling host. Which host a task belongs to is a context
variable: :meth:`Host.spawn` sets it, tasks and protocol callbacks inherit
it, and code outside any spawned task runs on the default host ``"main"``.

Semantics (more in ``docs/net.md``):

* Streams are TCP-like: bytes are never lost, duplicated or reordered unless
  the connection is reset; ``close()`` delivers everything written before the
  FIN; ``abort()`` resets (the peer's ``connection_lost`` gets
  ``ConnectionResetError``). Writes count toward ``get_write_buffer_size()``
  until the peer's transport has consumed them, so a reader that stops reading
  (``pause_reading``) makes the writer's ``drain()`` block.
* Connecting sends a SYN that takes one latency draw; a refused connection
  (no listener) fails with ``ConnectionRefusedError`` after a round trip.
  A SYN that is lost (partition, host down) is retransmitted after 1, 2, 4,
  ... seconds like Linux; after ``connect_retries`` retransmissions (6 by
  default, 127 s in total) the connect fails with ``TimeoutError``
  (``ETIMEDOUT``). An address no host has fails with ``OSError(EHOSTUNREACH)``.
* A partition holds stream segments (also those in flight when it starts);
  healing re-sends them with fresh latency draws, in order. There is no
  retransmission give-up: a connection outlives any partition, and the
  application's own timeouts decide. Datagrams across a partition are lost.
* ``crash(host)`` is a power cut: the host's tasks are cancelled, its
  listeners and sockets vanish without callbacks, everything in flight to it
  is dropped, and each peer of each of its connections receives a reset
  (after one latency draw, or after heal if partitioned). ``restart(host)``
  brings it back up with nothing running: spawn its services again.
* Every host has a data directory, ``host.data_dir`` (``/seedloop/<name>``):
  files under it live on the host's simulated disk (``host.disk``; faults,
  capacity, latency), where a crash keeps only what was fsynced
  (``docs/disk.md``).
* TLS (``ssl=`` on ``create_connection``/``create_server``, ``start_tls``)
  is real TLS (asyncio's own ``SSLProtocol`` over memory BIOs) carried by the
  simulated streams, with real certificate verification.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import ipaddress
import socket
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from . import _engine
from ._disk import DATA_ROOT, Disk, DiskError
from .errors import SeedloopError

if TYPE_CHECKING:
    from ._loop import _DatagramTransport, _Listener, _StreamTransport

__all__ = [
    "DATA_ROOT",
    "Disk",
    "DiskError",
    "Exponential",
    "Fixed",
    "Host",
    "Latency",
    "NetError",
    "NetNotSupportedError",
    "Network",
    "Normal",
    "Uniform",
    "current",
    "current_host",
    "host",
]


class NetError(SeedloopError, RuntimeError):
    """seedloop.net was used in a way that cannot work (the message says how to fix it)."""


class NetNotSupportedError(SeedloopError, NotImplementedError):
    """A network feature the simulation does not provide.

    It subclasses NotImplementedError so that libraries with a fallback (for
    instance aiohttp when ``loop.sendfile`` is unavailable) take it.
    """


# -- latency distributions ---------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    """Always ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Uniform:
    """Uniform in ``[low, high]`` seconds (nanosecond resolution)."""

    low: float
    high: float


@dataclass(frozen=True)
class Normal:
    """Normal with ``mean``/``std`` seconds, never below ``minimum``."""

    mean: float
    std: float
    minimum: float = 0.0


@dataclass(frozen=True)
class Exponential:
    """``offset`` + an exponential tail with mean ``mean`` seconds."""

    mean: float
    offset: float = 0.0


Latency = Union[float, "tuple[float, float]", Fixed, Uniform, Normal, Exponential]

DEFAULT_LATENCY = Uniform(0.001, 0.005)


def _dist_spec(dist: Latency) -> tuple[str, list[float]]:
    if isinstance(dist, bool):
        raise TypeError(f"latency must be seconds or a distribution, got {dist!r}")
    if isinstance(dist, (int, float)):
        return "fixed", [float(dist)]
    if isinstance(dist, tuple) and len(dist) == 2:
        return "uniform", [float(dist[0]), float(dist[1])]
    if isinstance(dist, Fixed):
        return "fixed", [dist.delay]
    if isinstance(dist, Uniform):
        return "uniform", [dist.low, dist.high]
    if isinstance(dist, Normal):
        return "normal", [dist.mean, dist.std, dist.minimum]
    if isinstance(dist, Exponential):
        return "exponential", [dist.mean, dist.offset]
    raise TypeError(
        f"latency must be seconds, a (low, high) tuple or one of net.Fixed/Uniform/"
        f"Normal/Exponential, got {dist!r}"
    )


# -- hosts -------------------------------------------------------------------

_HOST: contextvars.ContextVar[Host] = contextvars.ContextVar("seedloop_net_host")
#: Called (no arguments) when code asks for a data directory: the file layer
#: starts watching for C-level opens of simulated paths (see _world/disk.py).
_DATA_DIR_HOOKS: list[Callable[[], None]] = []

HostRef = Union["Host", str]


class Host:
    """A simulated machine: a name, an address, its tasks, sockets and listeners."""

    def __init__(self, network: Network, name: str, address: str, hid: int) -> None:
        self.network = network
        self.name = name
        self.address = address
        self.id = hid
        self._context = contextvars.copy_context()
        self._context.run(_HOST.set, self)
        self._tasks: list[asyncio.Task[Any]] = []
        self._live_after_prune = 0
        self._transports: dict[int, _StreamTransport] = {}
        self._datagrams: dict[int, _DatagramTransport] = {}
        self._next_port = 49152
        self._ports: set[int] = set()
        self._disk: Disk | None = None

    def __repr__(self) -> str:
        state = "up" if self.up else "down"
        return f"<seedloop.net.Host {self.name} {self.address} {state}>"

    @property
    def up(self) -> bool:
        """False between :meth:`crash` and :meth:`restart`."""
        return bool(self.network._core.host_up(self.id))

    @property
    def data_dir(self) -> str:
        """This host's data directory, ``"/seedloop/<name>"``: files under it live on :attr:`disk`.

        Code running on this host that opens, reads, writes, fsyncs, renames
        or lists paths under it uses the simulated disk, never the real one.
        """
        for hook in _DATA_DIR_HOOKS:
            hook()
        return f"{DATA_ROOT}/{self.name}"

    @property
    def disk(self) -> Disk:
        """This host's simulated disk: faults, capacity, latency, torn writes, inspection."""
        d = self._disk
        if d is None:
            if "/" in self.name:
                raise NetError(f"host {self.name!r} has a '/' in its name: it cannot have a data directory")
            d = self._disk = Disk(self.network._disk_core(), self.id, self.data_dir, _dist_spec)
        return d

    def context(self) -> contextvars.Context:
        """A fresh copy of this host's context (runs code "on" this host)."""
        return self._context.run(contextvars.copy_context)

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any] | Callable[[], Awaitable[Any]],
        *,
        name: str | None = None,
    ) -> asyncio.Task[Any]:
        """Start ``coro`` (or ``coro()`` for a factory) as a task running on this host."""
        if not self.up:
            if asyncio.iscoroutine(coro):
                coro.close()
            raise NetError(f"host {self.name!r} is down; call restart() before spawning on it")
        if not asyncio.iscoroutine(coro):
            if not callable(coro):
                raise TypeError(f"spawn() takes a coroutine or a coroutine function, got {coro!r}")
            made = coro()
            if not asyncio.iscoroutine(made):
                raise TypeError(f"spawn(): {coro!r}() returned {made!r}, not a coroutine")
            coro = made
        loop = self.network.loop
        return self.context().run(loop.create_task, coro, name=name)

    def crash(self) -> None:
        """Power off this host (see :meth:`Network.crash`)."""
        self.network.crash(self)

    def restart(self) -> None:
        """Power this host back on (see :meth:`Network.restart`)."""
        self.network.restart(self)

    # -- internals --------------------------------------------------------

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.append(task)
        if len(self._tasks) > 2 * self._live_after_prune + 64:
            self._tasks = [t for t in self._tasks if not t.done()]
            self._live_after_prune = len(self._tasks)

    def _alloc_port(self) -> int:
        for _ in range(65536 - 49152):
            port = self._next_port
            self._next_port = 49152 if port >= 65535 else port + 1
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise OSError(errno.EADDRINUSE, f"host {self.name}: no free ephemeral port left")

    def _release_port(self, port: int) -> None:
        self._ports.discard(port)


# -- the network -------------------------------------------------------------

_SERVICES = {"http": 80, "https": 443, "ws": 80, "wss": 443, "redis": 6379, "domain": 53}
_WILDCARDS = ("", "0.0.0.0", "::")


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


class Network:
    """The simulated network of one run. Get it with :func:`current`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seed: int) -> None:
        self.loop = loop
        spec = _dist_spec(DEFAULT_LATENCY)
        self._core = _engine.NetCore(seed, spec[0], spec[1])
        self._hosts: dict[str, Host] = {}
        self._by_id: list[Host] = []
        self._by_address: dict[str, Host] = {}
        self._aliases: dict[str, Host] = {}
        self._next_address = 0x0A000001  # 10.0.0.1
        #: How many times a lost SYN is retransmitted before connect() fails.
        self.connect_retries = 6
        #: The first SYN retransmission timeout (doubles each time), seconds.
        self.initial_rto = 1.0
        # pipe id -> (receiving transport, sending transport)
        self._receivers: dict[int, _StreamTransport] = {}
        self._senders: dict[int, _StreamTransport] = {}
        self._listeners: dict[tuple[int, str, int], _Listener] = {}
        self._udp: dict[tuple[int, int], _DatagramTransport] = {}
        self._connected_socks: weakref.WeakKeyDictionary[Any, _StreamTransport] = (
            weakref.WeakKeyDictionary()
        )
        self._serial = 0
        self._fds = 0  # simulated sockets' fake descriptors, numbered per run
        self._link_cfg: dict[tuple[int | None, int | None], dict[str, Any]] = {}
        #: ``tap(kind, subject, nbytes=0)`` for each connection event while a
        #: failure's timeline is recorded (None otherwise: nothing to pay).
        self._tap: Callable[..., None] | None = getattr(loop, "_seedloop_tap", None)
        self._seed = seed
        self._disks: _engine.DiskCore | None = None
        #: Open descriptors on simulated disks: fake fd -> (disk, path relative to its root).
        self._disk_fds: dict[int, tuple[Disk, str]] = {}

    def __repr__(self) -> str:
        return f"<seedloop.net.Network hosts={list(self._hosts)}>"

    # -- hosts and names ----------------------------------------------------

    def host(self, name: str, *, address: str | None = None) -> Host:
        """The host called ``name``, created (with the next 10.0.0.N address) if new."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a host name must be a non-empty str, got {name!r}")
        if address is not None and not isinstance(address, str):
            raise TypeError(
                f"host address must be an IPv4 literal str such as '10.0.0.9' or None, "
                f"got {address!r}"
            )
        key = name.lower().rstrip(".")
        existing = self._hosts.get(key)
        if existing is not None:
            if address is not None and address != existing.address:
                raise NetError(
                    f"host {name!r} already exists with address {existing.address}; "
                    f"pick another name for {address}"
                )
            return existing
        if key == "localhost":
            raise NetError("'localhost' is every host's own loopback; pick another host name")
        if address is None:
            address = self._fresh_address()
        else:
            try:
                ip = ipaddress.IPv4Address(address)
            except ValueError:
                raise NetError(f"host address must be an IPv4 literal, got {address!r}") from None
            if ip.is_loopback or ip.is_unspecified:
                raise NetError(f"{address} is reserved (loopback/wildcard); use another address")
            if address in self._by_address:
                raise NetError(f"address {address} already belongs to {self._by_address[address]}")
        hid = self._core.add_host()
        h = Host(self, key, address, hid)
        self._hosts[key] = h
        self._by_id.append(h)
        self._by_address[address] = h
        return h

    def _fresh_address(self) -> str:
        while True:
            n = self._next_address
            self._next_address += 1
            if n & 0xFF in (0, 255):
                continue
            addr = str(ipaddress.IPv4Address(n))
            if addr not in self._by_address:
                return addr

    @property
    def hosts(self) -> list[Host]:
        """Every host, in creation order."""
        return list(self._by_id)

    def add_name(self, name: str, host: HostRef) -> None:
        """Make ``name`` resolve to ``host`` too (a DNS alias)."""
        self._aliases[name.lower().rstrip(".")] = self._host(host)

    def default_host(self) -> Host:
        """The host of code not spawned on any host: ``"main"``."""
        return self.host("main")

    def current_host(self) -> Host:
        """The host the calling code runs on."""
        h = _HOST.get(None)
        if h is not None and h.network is self:
            return h
        return self.default_host()

    def _host(self, ref: HostRef) -> Host:
        if isinstance(ref, Host):
            if ref.network is not self:
                raise NetError(f"{ref!r} belongs to another run's network")
            return ref
        if isinstance(ref, str):
            h = self._hosts.get(ref.lower().rstrip(".")) or self._by_address.get(ref)
            if h is None:
                raise NetError(f"no host called {ref!r}; create it first with net.host({ref!r})")
            return h
        raise TypeError(f"expected a Host or a host name, got {ref!r}")

    def _hosts_of(self, group: HostRef | Iterable[HostRef]) -> list[Host]:
        if isinstance(group, (Host, str)):
            return [self._host(group)]
        return [self._host(g) for g in group]

    def _lookup_name(self, name: str) -> str | None:
        """The IPv4 literal ``name`` resolves to, or None."""
        key = name.lower().rstrip(".")
        if key == "localhost":
            return "127.0.0.1"
        try:
            ipaddress.IPv4Address(key)
            return key
        except ValueError:
            pass
        h = self._hosts.get(key) or self._aliases.get(key)
        return h.address if h is not None else None

    def _route(self, src: Host, ip: str) -> Host | None:
        """The host that owns ``ip`` as seen from ``src``."""
        if _is_loopback(ip) or ip in _WILDCARDS or ip == src.address:
            return src
        return self._by_address.get(ip)

    # -- faults -------------------------------------------------------------

    def set_latency(
        self, a: HostRef | None, b: HostRef | None, dist: Latency, *, both_ways: bool = True
    ) -> None:
        """Latency of ``a -> b`` (and ``b -> a`` unless ``both_ways=False``).

        ``a``/``b`` None sets the default of every link not configured
        explicitly. ``a == b`` sets a host's loopback (10 µs by default).
        """
        self._configure(a, b, both_ways, latency=dist)

    def set_loss(
        self,
        a: HostRef | None,
        b: HostRef | None,
        loss: float = 0.0,
        *,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        both_ways: bool = True,
    ) -> None:
        """Datagram faults on ``a -> b``: drop, duplicate and reorder probabilities.

        Streams are never affected (TCP retransmits; bytes stay ordered).
        A reordered datagram gets an extra latency draw and may be overtaken.
        """
        self._configure(a, b, both_ways, loss=loss, duplicate=duplicate, reorder=reorder)

    def _configure(
        self, a: HostRef | None, b: HostRef | None, both_ways: bool, **changes: Any
    ) -> None:
        if (a is None) != (b is None):
            raise NetError("give both hosts, or neither (None, None) for the default link")
        pairs: list[tuple[int | None, int | None]]
        if a is None or b is None:
            pairs = [(None, None)]
        else:
            ha, hb = self._host(a), self._host(b)
            pairs = [(ha.id, hb.id)] + ([(hb.id, ha.id)] if both_ways and ha is not hb else [])
        for x, y in pairs:
            key = (x, y)
            cfg = (
                self._link_cfg.get(key)
                or self._link_cfg.get((None, None))
                or {
                    "latency": DEFAULT_LATENCY,
                    "loss": 0.0,
                    "duplicate": 0.0,
                    "reorder": 0.0,
                }
            )
            if x is not None and x == y and key not in self._link_cfg:
                cfg = dict(cfg, latency=Fixed(0.00001))
            cfg = dict(cfg, **changes)
            for k in ("loss", "duplicate", "reorder"):
                p = cfg[k]
                if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                    raise ValueError(f"{k} must be a probability in [0, 1], got {p!r}")
            kind, params = _dist_spec(cfg["latency"])
            self._core.set_link(x, y, kind, params, cfg["loss"], cfg["duplicate"], cfg["reorder"])
            self._link_cfg[key] = cfg

    def partition(
        self,
        a: HostRef | Iterable[HostRef],
        b: HostRef | Iterable[HostRef],
        *,
        one_way: bool = False,
    ) -> None:
        """Cut every path between group ``a`` and group ``b``.

        With ``one_way=True`` only ``a -> b`` is cut: ``b`` still reaches ``a``.
        Stream bytes are held until :meth:`heal`; datagrams are dropped.
        """
        for x in self._hosts_of(a):
            for y in self._hosts_of(b):
                if x is y:
                    continue
                self._core.block(x.id, y.id)
                if not one_way:
                    self._core.block(y.id, x.id)
        if self._tap is not None:
            self._tap("partition", (self._hosts_of(a), self._hosts_of(b), one_way))

    def isolate(self, host: HostRef) -> None:
        """Cut ``host`` off from every other host (both ways)."""
        h = self._host(host)
        self.partition(h, [o for o in self._by_id if o is not h])

    def heal(
        self,
        a: HostRef | Iterable[HostRef] | None = None,
        b: HostRef | Iterable[HostRef] | None = None,
        *,
        one_way: bool = False,
    ) -> None:
        """Remove partitions: all of them, or those between ``a`` and ``b``.

        Held stream bytes are then delivered, in order, after fresh latency draws.
        """
        now = self.loop.time()
        if a is None and b is None:
            wake = self._core.heal_all(now)
        elif a is None or b is None:
            raise NetError("heal() takes both groups, or none to heal everything")
        else:
            wake = []
            for x in self._hosts_of(a):
                for y in self._hosts_of(b):
                    wake += self._core.unblock(x.id, y.id, now)
                    if not one_way:
                        wake += self._core.unblock(y.id, x.id, now)
        if self._tap is not None:
            everything = a is None and b is None
            groups = ([], []) if everything else (self._hosts_of(a), self._hosts_of(b))  # type: ignore[arg-type]
            self._tap("heal", (*groups, one_way))
        self._arm_all(wake)

    def is_partitioned(self, a: HostRef, b: HostRef) -> bool:
        """Whether the path ``a -> b`` is cut."""
        return bool(self._core.is_blocked(self._host(a).id, self._host(b).id))

    def crash(self, host: HostRef) -> None:
        """Power off ``host``: its tasks are cancelled, its sockets vanish, peers get resets."""
        h = self._host(host)
        if not h.up:
            return
        if self._tap is not None:
            self._tap("crash", h)
        self._arm_all(self._core.crash(h.id, self.loop.time()))
        for t in list(h._transports.values()):
            t._vanish()
        for d in list(h._datagrams.values()):
            d._vanish()
        for key in [k for k in self._listeners if k[0] == h.id]:
            self._listeners.pop(key)._vanish()
        h._ports.clear()
        tasks = [t for t in h._tasks if not t.done()]
        h._tasks = []
        ordinal = getattr(self.loop, "task_ordinal", None)
        if ordinal is not None:
            tasks.sort(key=ordinal)
        for t in tasks:
            t.cancel(f"host {h.name} crashed")
        if self._disks is not None:
            # Power cut: the page cache is gone; only what was synced survives.
            self._disks.crash(h.id)

    def restart(self, host: HostRef) -> None:
        """Power ``host`` back on, with nothing running and nothing listening."""
        h = self._host(host)
        if self._tap is not None:
            self._tap("restart", h)
        self._core.restart(h.id)
        if self._disks is not None:
            self._disks.restart(h.id)

    def stats(self) -> dict[str, int]:
        """Counters: streams, bytes, held segments, resets, datagram faults."""
        return dict(self._core.stats())

    # -- DNS ----------------------------------------------------------------

    def getaddrinfo(
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        """Simulated ``getaddrinfo``: IPv4 rows for host names, aliases and literals."""
        if isinstance(host, bytes):
            host = host.decode("idna")
        if isinstance(port, bytes):
            port = port.decode("ascii")
        if host is None:
            ip = "0.0.0.0" if flags & socket.AI_PASSIVE else "127.0.0.1"
        else:
            if not isinstance(host, str):
                raise TypeError(f"getaddrinfo() host must be str, bytes or None, got {host!r}")
            if ":" in host:
                raise socket.gaierror(
                    socket.EAI_NONAME, f"{host}: seedloop.net is IPv4-only (no IPv6 addresses)"
                )
            if flags & socket.AI_NUMERICHOST:
                try:
                    ipaddress.IPv4Address(host)
                except ValueError:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
            found = self._lookup_name(host)
            if found is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            ip = found
        if family not in (0, socket.AF_INET):
            raise socket.gaierror(
                getattr(socket, "EAI_ADDRFAMILY", socket.EAI_NONAME),
                "Address family for hostname not supported (seedloop.net is IPv4-only)",
            )
        if port is None:
            portnum = 0
        elif isinstance(port, int):
            # As the C getaddrinfo: a port must fit a C long, and a negative
            # one is no service (a too-large one passes; bind/connect refuse it).
            if not -(2**63) <= port < 2**63:
                raise OverflowError("Python int too large to convert to C long")
            if port < 0:
                raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
            portnum = port
        elif isinstance(port, str) and port.isdigit():
            portnum = int(port)
        elif isinstance(port, str) and port in _SERVICES:
            portnum = _SERVICES[port]
        else:
            raise socket.gaierror(socket.EAI_SERVICE, "Servname not supported for ai_socktype")
        canon = ""
        if flags & socket.AI_CANONNAME and isinstance(host, str):
            canon = host
        rows: list[tuple[Any, ...]] = []
        kinds = (
            [(socket.SOCK_STREAM, socket.IPPROTO_TCP), (socket.SOCK_DGRAM, socket.IPPROTO_UDP)]
            if not type
            else [(type, proto or (socket.IPPROTO_UDP if type == socket.SOCK_DGRAM else 6))]
        )
        for kind, pr in kinds:
            if proto and pr != proto:
                continue
            rows.append((socket.AF_INET, kind, pr, canon, (ip, portnum)))
        return rows

    def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        """Simulated ``getnameinfo``: the host name of a simulated address."""
        ip, port = sockaddr[0], sockaddr[1]
        name = ip
        if not flags & socket.NI_NUMERICHOST:
            if _is_loopback(ip):
                name = "localhost"
            else:
                h = self._by_address.get(ip)
                if h is not None:
                    name = h.name
                elif flags & socket.NI_NAMEREQD:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return name, str(port)

    def _resolve(self, host: str | bytes | None, port: Any) -> tuple[str, int]:
        rows = self.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        ip, p = rows[0][4]
        return ip, p

    # -- plumbing used by the transports ------------------------------------

    def _arm(self, pipe: int, at: float | None) -> None:
        if at is None or self.loop.is_closed():
            return  # after the run (e.g. a transport's __del__): nothing is delivered
        recv = self._receivers.get(pipe)
        ctx = recv._ctx if recv is not None else None
        self.loop.call_at(at, self._due, pipe, context=ctx)

    def _arm_all(self, wake: list[tuple[int, float]]) -> None:
        for pipe, at in wake:
            self._arm(pipe, at)

    def _due(self, pipe: int) -> None:
        recv = self._receivers.get(pipe)
        if recv is not None:
            recv._on_due()
        else:
            # Nobody receives any more (closed): drain so the pipe can finish.
            try:
                self._core.take(pipe, self.loop.time(), 1 << 30)
            except RuntimeError:
                return
        sender = self._senders.get(pipe)
        if sender is not None:
            sender._maybe_resume_protocol()

    def _disk_core(self) -> _engine.DiskCore:
        core = self._disks
        if core is None:
            core = self._disks = _engine.DiskCore(self._seed)
        return core

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _new_fd(self) -> int:
        self._fds += 1
        return self._fds


def current() -> Network:
    """The network of the running simulation (created on first use)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise NetError(
            "seedloop.net.current() needs a running simulation: call it inside a "
            "scenario run by seedloop.run(...) or on a SeedLoop"
        ) from None
    get = getattr(loop, "_sim_net", None)
    if get is None:
        raise NetError(
            f"seedloop.net works only on a seedloop.SeedLoop, not on {type(loop).__name__}; "
            "run the scenario with seedloop.run(...)"
        )
    net: Network = get()
    return net


def current_host() -> Host:
    """The simulated host the calling code runs on."""
    return current().current_host()


def host(name: str, *, address: str | None = None) -> Host:
    """Shortcut for ``current().host(name)``."""
    return current().host(name, address=address)
