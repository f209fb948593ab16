"""The deterministic world inside a run: clocks, randomness, blocking calls, escapes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import copyreg
import datetime
import json
import os
import pickle
import queue
import random
import secrets
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from time import monotonic as imported_monotonic  # rebound before any run

import pytest

import seedloop
from seedloop import _engine, _world
from seedloop._world.guards import _INLINE_WAIT_GRACE

EPOCH = _world.DEFAULT_WALL_EPOCH
UTC = datetime.timezone.utc

# The real objects, kept in a container: module globals of this test module
# are themselves rebinding sites that runs patch.
REAL = {
    "time": time.time,
    "time_ns": time.time_ns,
    "monotonic": time.monotonic,
    "perf_counter": time.perf_counter,
    "sleep": time.sleep,
    "urandom": os.urandom,
    "datetime": datetime.datetime,
    "date": datetime.date,
    "random.random": random.random,
    "random.seed": random.seed,
    "random._urandom": random._urandom,  # type: ignore[attr-defined]
    "Random.seed": random.Random.__dict__["seed"],
    "Thread.start": threading.Thread.__dict__["start"],
    "Popen.__init__": subprocess.Popen.__dict__["__init__"],
    "Condition.wait": threading.Condition.__dict__["wait"],
    "socket.sendfile": socket.socket.__dict__["sendfile"],
    "getaddrinfo": socket.getaddrinfo,
    "fork": os.fork,
    "uuid.getnode": uuid.getnode,
    "imported_monotonic": imported_monotonic,
    "select": select.select,
    "times": os.times,
}


def assert_world_restored() -> None:
    assert time.time is REAL["time"]
    assert time.time_ns is REAL["time_ns"]
    assert time.monotonic is REAL["monotonic"]
    assert time.perf_counter is REAL["perf_counter"]
    assert time.sleep is REAL["sleep"]
    assert os.urandom is REAL["urandom"]
    assert datetime.datetime is REAL["datetime"]
    assert datetime.date is REAL["date"]
    assert random.random is REAL["random.random"]
    assert random.seed is REAL["random.seed"]
    assert random._urandom is REAL["random._urandom"]  # type: ignore[attr-defined]
    assert random.Random.__dict__["seed"] is REAL["Random.seed"]
    assert threading.Thread.__dict__["start"] is REAL["Thread.start"]
    assert subprocess.Popen.__dict__["__init__"] is REAL["Popen.__init__"]
    assert threading.Condition.__dict__["wait"] is REAL["Condition.wait"]
    assert socket.socket.__dict__["sendfile"] is REAL["socket.sendfile"]
    for name in ("connect", "connect_ex", "bind", "listen", "send", "sendall", "sendto"):
        assert name not in socket.socket.__dict__, name
    assert socket.getaddrinfo is REAL["getaddrinfo"]
    assert os.fork is REAL["fork"]
    assert uuid.getnode is REAL["uuid.getnode"]
    assert imported_monotonic is REAL["imported_monotonic"]
    assert select.select is REAL["select"]
    assert os.times is REAL["times"]
    assert _world.current() is None
    # Outside a run the clocks are real again.
    assert abs(time.time() - REAL["time"]()) < 60
    assert datetime.datetime.now().year >= 2025


async def all_sources() -> dict[str, object]:
    """Read every world source, with some virtual time passing in between."""
    await asyncio.sleep(1.5)
    worker = await asyncio.to_thread(lambda: (time.monotonic(), os.urandom(4).hex()))
    return {
        "time": time.time(),
        "time_ns": time.time_ns(),
        "monotonic": time.monotonic(),
        "monotonic_ns": time.monotonic_ns(),
        "imported_monotonic": imported_monotonic(),
        "perf_counter": time.perf_counter(),
        "perf_counter_ns": time.perf_counter_ns(),
        "localtime": list(time.gmtime()),
        "now_utc": datetime.datetime.now(UTC).isoformat(),
        "utcnow": datetime.datetime.utcnow().isoformat(),
        "today": datetime.date.today().isoformat(),
        "random": random.random(),
        "randint": random.randint(0, 10**9),
        "unseeded_Random": random.Random().random(),
        "urandom": os.urandom(16).hex(),
        "uuid4": str(uuid.uuid4()),
        "uuid1": str(uuid.uuid1()),
        "token_hex": secrets.token_hex(8),
        "token_urlsafe": secrets.token_urlsafe(8),
        "randbits": secrets.randbits(30),
        "choice": secrets.choice("abcdefghijklmnopqrstuvwxyz"),
        "SystemRandom": random.SystemRandom().random(),
        "to_thread": list(worker),
    }


RANDOM_SOURCES = (
    "random",
    "randint",
    "unseeded_Random",
    "urandom",
    "uuid4",
    "uuid1",
    "token_hex",
    "token_urlsafe",
    "randbits",
    "SystemRandom",
)


# -- determinism -------------------------------------------------------------


def test_same_seed_same_values_different_seed_different_randomness():
    a = seedloop.run(all_sources, seed=11)
    b = seedloop.run(all_sources, seed=11)
    c = seedloop.run(all_sources, seed=12)
    assert a == b
    for key in RANDOM_SOURCES:
        assert a[key] != c[key], key
    assert a["to_thread"][1] != c["to_thread"][1]
    # Time comes from the virtual clock, so it depends on what ran, not on the seed.
    assert a["monotonic"] == c["monotonic"] == 1.5
    assert_world_restored()


def test_clocks_follow_virtual_time():
    async def scenario():
        loop = asyncio.get_running_loop()
        start = (time.monotonic(), time.time(), datetime.datetime.now(UTC))
        await asyncio.sleep(3600)
        return start, (time.monotonic(), time.time(), datetime.datetime.now(UTC)), loop.time()

    (m0, t0, d0), (m1, t1, d1), loop_time = seedloop.run(scenario, seed=3)
    assert (m0, t0) == (0.0, EPOCH)
    assert d0 == datetime.datetime(2025, 1, 1, tzinfo=UTC)
    assert m1 == loop_time == 3600.0
    assert t1 == EPOCH + 3600
    assert d1 - d0 == datetime.timedelta(hours=1)


def test_every_clock_reads_the_same_instant():
    r = seedloop.run(all_sources, seed=1)
    assert r["monotonic"] == r["perf_counter"] == r["imported_monotonic"] == 1.5
    assert r["monotonic_ns"] == r["perf_counter_ns"] == 1_500_000_000
    assert r["time"] == EPOCH + 1.5
    assert r["time_ns"] == EPOCH * 10**9 + 1_500_000_000
    assert r["now_utc"] == "2025-01-01T00:00:01.500000+00:00"
    assert r["utcnow"] == "2025-01-01T00:00:01.500000"
    assert r["localtime"][:6] == [2025, 1, 1, 0, 0, 1]
    assert r["to_thread"][0] == 1.5


def test_clock_read_cost_makes_consecutive_reads_differ_as_on_a_real_machine():
    async def scenario():
        loop = asyncio.get_running_loop()
        reads = [time.monotonic(), time.monotonic(), time.time(), time.time()]
        stamps = [datetime.datetime.now(UTC), datetime.datetime.now(UTC)]
        deadline = time.monotonic() + 1
        await asyncio.sleep(1)  # begun after the reads: ends after them
        return reads, stamps, deadline, time.monotonic(), loop.time()

    reads, stamps, deadline, after, loop_time = seedloop.run(
        scenario, seed=0, clock_read_cost=1e-6
    )
    assert reads[0] < reads[1] and reads[2] < reads[3] and stamps[0] < stamps[1]
    assert reads[1] - reads[0] == pytest.approx(1e-6)
    assert after >= deadline and after == loop_time
    # The default: every read in a step sees the same instant, times stay exact.
    reads, stamps, deadline, after, loop_time = seedloop.run(scenario, seed=0)
    assert reads == [0.0, 0.0, EPOCH, EPOCH] and stamps[0] == stamps[1]
    assert after == loop_time == deadline == 1.0
    with pytest.raises(seedloop.InvalidWorldOptionError, match="clock_read_cost"):
        seedloop.run(scenario, clock_read_cost=-1)


def test_clock_gettime_and_time_formatting():
    async def scenario():
        await asyncio.sleep(2)
        return (
            time.clock_gettime(time.CLOCK_REALTIME),
            time.clock_gettime_ns(time.CLOCK_MONOTONIC),
            time.strftime("%Y"),
            time.ctime() == time.asctime(),
            time.gmtime(0).tm_year,
        )

    wall, mono_ns, year, same, explicit = seedloop.run(scenario, seed=0)
    assert wall == EPOCH + 2
    assert mono_ns == 2_000_000_000
    assert year in ("2024", "2025")  # local time zone of the machine
    assert same
    assert explicit == 1970  # an explicit time is used as given


def test_wall_epoch_option():
    async def scenario():
        await asyncio.sleep(10)
        return time.time(), datetime.datetime.now(UTC), datetime.date.today()

    when = datetime.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    t, now, today = seedloop.run(scenario, seed=0, wall_epoch=when)
    assert t == when.timestamp() + 10
    assert now == when + datetime.timedelta(seconds=10)
    assert today.year == 2030
    t, _, _ = seedloop.run(scenario, seed=0, wall_epoch=1_000_000_000.25)
    assert t == 1_000_000_010.25


@pytest.mark.parametrize(
    "options",
    [
        {"sleep": "maybe"},
        {"wall_epoch": "2025"},
        {"wall_epoch": datetime.datetime(2030, 1, 1)},  # naive
        {"wall_epoch": float("nan")},
        {"wall_epoch": 1e300},  # once a bare OverflowError
        {"wall_epoch": -1e12},  # once accepted, breaking datetime.now() later
        {"wall_epoch": 2**80},
        {"world": "yes"},
    ],
)
def test_invalid_world_options_say_what_to_do(options):
    async def scenario():
        return 1

    with pytest.raises(_world.InvalidWorldOptionError) as info:
        seedloop.run(scenario, seed=0, **options)
    assert isinstance(info.value, seedloop.SeedloopError)
    assert isinstance(info.value, ValueError)
    assert_world_restored()


# -- randomness ----------------------------------------------------------------


def test_global_random_generator_is_untouched():
    before = random.getstate()

    async def scenario():
        random.seed()  # no argument: seeded from the run, not the OS
        return random.random(), random.getrandbits(64)

    first = seedloop.run(scenario, seed=5)
    assert first == seedloop.run(scenario, seed=5)
    assert random.getstate() == before


def test_random_module_matches_a_seeded_random_instance():
    async def scenario():
        return [random.random() for _ in range(3)]

    expected = random.Random(_engine.derive_seed(9, "random"))
    assert seedloop.run(scenario, seed=9) == [expected.random() for _ in range(3)]


def test_urandom_stream_is_the_rust_prng():
    async def scenario():
        return os.urandom(8), os.urandom(3)

    first, second = seedloop.run(scenario, seed=4)
    rng = _engine.Rng(4, "world/urandom")
    assert first == rng.bytes(8)
    assert second == rng.bytes(3)
    assert _engine.random_bytes(4, "world/urandom", 8) == first


def test_rng_binding():
    a, b = _engine.Rng(1, "x"), _engine.Rng(1, "x")
    assert [a.next_u64() for _ in range(4)] == [b.next_u64() for _ in range(4)]
    assert _engine.Rng(1, "x").bytes(16) != _engine.Rng(1, "y").bytes(16)
    assert len(a.bytes(0)) == 0 and len(a.bytes(13)) == 13
    assert all(0 <= a.below(7) < 7 for _ in range(100))
    assert all(0.0 <= a.random() < 1.0 for _ in range(100))


def test_urandom_and_getrandom_validate_like_the_real_ones():
    async def scenario():
        with pytest.raises(ValueError):
            os.urandom(-1)
        with pytest.raises(TypeError):
            os.urandom(1.5)  # type: ignore[arg-type]
        return os.getrandom(5) if hasattr(os, "getrandom") else b"12345"

    assert len(seedloop.run(scenario, seed=0)) == 5


def test_uuid1_is_seeded_and_uses_a_random_multicast_node():
    async def scenario():
        await asyncio.sleep(1)
        return uuid.uuid1(), uuid.uuid1()

    (a, b), (c, _) = seedloop.run(scenario, seed=2), seedloop.run(scenario, seed=3)
    assert (a, b) == seedloop.run(scenario, seed=2)
    assert a != b and a.node == b.node
    assert a.node & (1 << 40)
    assert a.node != c.node
    assert a.time == b.time - 1 or a.time < b.time
    unix_100ns = (a.time - 0x01B21DD213814000) * 100
    assert unix_100ns == (EPOCH + 1) * 10**9


# -- datetime stand-ins ----------------------------------------------------------


def test_datetime_values_inside_a_run_are_real_datetimes():
    async def scenario():
        now = datetime.datetime.now()
        made = datetime.datetime(2020, 1, 2, 3, 4)
        parsed = datetime.datetime.fromisoformat("2020-01-02T03:04:00")
        day = datetime.date(2020, 1, 2)
        return (
            now,
            made,
            parsed,
            day,
            isinstance(REAL["datetime"](2020, 1, 1), datetime.datetime),
            issubclass(REAL["datetime"], datetime.date),
            made + datetime.timedelta(days=1),
        )

    now, made, parsed, day, isinst, issub, later = seedloop.run(scenario, seed=0)
    for value in (now, made, parsed, later):
        assert type(value) is datetime.datetime
    assert type(day) is datetime.date
    assert made == parsed
    assert isinst and issub
    assert now == datetime.datetime.fromtimestamp(EPOCH)


def test_datetimes_pickle_and_copy_inside_a_run():
    async def scenario():
        now = datetime.datetime.now(UTC)
        day = datetime.date.today()
        again = pickle.loads(pickle.dumps((now, day)))
        return pickle.dumps((now, day)), again, copy.deepcopy(now), (now, day)

    blob, again, copied, original = seedloop.run(scenario, seed=0)
    assert again == original
    assert type(again[0]) is datetime.datetime and type(again[1]) is datetime.date
    assert copied == original[0] and type(copied) is datetime.datetime
    loaded = pickle.loads(blob)  # outside the run: real objects
    assert loaded == original and type(loaded[0]) is datetime.datetime
    assert REAL["datetime"] not in copyreg.dispatch_table


# -- sleep ----------------------------------------------------------------------


def test_time_sleep_advances_virtual_time_and_blocks_everything():
    async def scenario():
        loop = asyncio.get_running_loop()
        woke = []

        started = asyncio.Event()

        async def timer():
            started.set()
            await asyncio.sleep(1)
            woke.append(loop.time())

        task = asyncio.create_task(timer())
        await started.wait()
        time.sleep(5)  # blocks the loop: the 1 s timer fires late, at 5 s
        after = loop.time()
        await task
        return after, woke

    after, woke = seedloop.run(scenario, seed=0)
    assert after == 5.0
    assert woke == [5.0]


def test_time_sleep_is_deterministic_and_part_of_the_trace():
    async def scenario():
        time.sleep(0.25)
        await asyncio.sleep(0)
        return time.monotonic()

    a = seedloop.execute(scenario, 1)
    b = seedloop.execute(scenario, 1)
    assert a.value == b.value == 0.25
    assert a.fingerprint == b.fingerprint
    assert a.virtual_time == 0.25


def test_select_without_descriptors_is_a_virtual_sleep():
    async def scenario():
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        ready = select.select([], [], [], 3)
        return ready, loop.time(), time.perf_counter() - started

    real_start = REAL["perf_counter"]()
    ready, now, elapsed = seedloop.run(scenario, seed=0)
    assert REAL["perf_counter"]() - real_start < 1.0  # not 3 real seconds
    assert ready == ([], [], []) and now == 3.0 and elapsed == 3.0
    assert_world_restored()

    async def forever():
        select.select([], [], [], None)

    with pytest.raises(seedloop.BlockingCallError, match="blocks the event loop forever"):
        seedloop.run(forever)

    async def bad_timeout():
        select.select([], [], [], -1)

    with pytest.raises(ValueError, match="non-negative"):
        seedloop.run(bad_timeout)

    async def error_mode():
        select.select([], [], [], 0.5)

    with pytest.raises(seedloop.BlockingCallError):
        seedloop.run(error_mode, sleep="error")
    assert_world_restored()


def test_select_on_real_descriptors_is_an_escape():
    r, w = os.pipe()
    try:

        async def scenario():
            select.select([r], [], [], 0)

        with pytest.raises(seedloop.SimulationEscapeError, match="select.select"):
            seedloop.run(scenario)
    finally:
        os.close(r)
        os.close(w)
    assert_world_restored()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process start")
def test_multiprocessing_spawn_is_an_escape():
    import multiprocessing

    async def scenario():
        process = multiprocessing.get_context("spawn").Process(target=print)
        process.start()
        process.join()

    with pytest.raises(seedloop.SimulationEscapeError, match="starting a process"):
        seedloop.run(scenario)
    assert_world_restored()


def test_os_times_reads_the_virtual_clock():
    async def scenario():
        before = os.times()
        await asyncio.sleep(7)
        return before, os.times(), time.process_time()

    before, after, cpu = seedloop.run(scenario, seed=0)
    assert tuple(before) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert after.user == after.elapsed == cpu == 7.0
    assert after.system == after.children_user == after.children_system == 0.0
    assert_world_restored()
    assert os.times().elapsed > 0


def test_time_sleep_error_mode():
    async def scenario():
        time.sleep(0)  # a zero sleep does not block: allowed
        time.sleep(0.1)

    with pytest.raises(seedloop.BlockingCallError, match="await asyncio.sleep"):
        seedloop.run(scenario, seed=0, sleep="error")
    assert_world_restored()


def test_blocking_waits_in_inline_executor_work_raise_instead_of_hanging():
    async def scenario():
        loop = asyncio.get_running_loop()
        q: queue.Queue[int] = queue.Queue()
        ev = threading.Event()
        blocking = [
            lambda: asyncio.to_thread(ev.wait, 5),  # would burn 5 s and return False
            lambda: asyncio.to_thread(q.get),  # would hang: only the loop fills q
            lambda: loop.run_in_executor(None, threading.Semaphore(0).acquire),
        ]
        for call in blocking:
            with pytest.raises(seedloop.BlockingCallError, match="asyncio primitives"):
                await call()
        # Waits that do not block keep working.
        ev.set()
        q.put(7)
        assert await asyncio.to_thread(ev.wait, 5) is True
        assert await asyncio.to_thread(q.get) == 7
        assert await asyncio.to_thread(threading.Event().wait, 0) is False
        with pytest.raises(queue.Empty):
            await asyncio.to_thread(q.get, timeout=0)
        cond = threading.Condition()
        with cond:
            assert await asyncio.to_thread(cond.wait, 0) is False
        return "done"

    # Threads another test's library left behind (Dask's, say) might be the
    # waker: each refused wait then first gets its bounded grace period.
    grace = 3 * _INLINE_WAIT_GRACE if threading.active_count() > 1 else 0.0
    started = time.perf_counter()
    assert seedloop.run(scenario, seed=0) == "done"
    assert time.perf_counter() - started < 3 + grace
    assert_world_restored()
    # Outside a run the real wait is back.
    assert threading.Event().wait(0.001) is False


def test_negative_timeouts_of_asyncio_wait_and_as_completed_time_out_at_once():
    async def scenario():
        slow = asyncio.ensure_future(asyncio.sleep(10))
        done, pending = await asyncio.wait([slow], timeout=-1)
        assert (done, pending) == (set(), {slow})
        done, pending = await asyncio.wait(
            {slow}, timeout=-0.5, return_when=asyncio.FIRST_COMPLETED
        )
        assert (done, pending) == (set(), {slow})
        with pytest.raises(asyncio.TimeoutError):
            for fut in asyncio.as_completed([slow], timeout=-1):
                await fut
        assert asyncio.get_running_loop().time() == 0  # timed out at once
        slow.cancel()
        return "done"

    assert seedloop.run(scenario, seed=0) == "done"


def test_time_sleep_rejects_negative_values():
    async def scenario():
        time.sleep(-1)

    with pytest.raises(ValueError, match="non-negative"):
        seedloop.run(scenario, seed=0)


def test_long_time_sleep_hits_the_time_budget():
    async def scenario():
        time.sleep(10_000)
        await asyncio.sleep(0)

    with pytest.raises(seedloop.HangError, match="max_time"):
        seedloop.run(scenario, seed=0, max_time=60)


# -- executors ------------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_to_thread_runs_inline_with_context_and_results():
    async def scenario():
        request_id.set("r-42")
        threads_before = threading.active_count()

        def work(x):
            return x * 2, request_id.get(), threading.get_ident(), time.monotonic()

        await asyncio.sleep(2)
        value, rid, tid, when = await asyncio.to_thread(work, 21)
        return (
            value,
            rid,
            tid == threading.get_ident(),
            when,
            threading.active_count() == threads_before,
        )

    assert seedloop.run(scenario, seed=0) == (42, "r-42", True, 2.0, True)


def test_executor_exceptions_reach_the_awaiting_task():
    async def scenario():
        def boom():
            raise KeyError("from the executor")

        loop = asyncio.get_running_loop()
        with pytest.raises(KeyError, match="from the executor"):
            await loop.run_in_executor(None, boom)
        with pytest.raises(KeyError, match="from the executor"):
            await asyncio.to_thread(boom)
        return "ok"

    assert seedloop.run(scenario, seed=0) == "ok"


def test_executor_work_is_deterministic_under_concurrency():
    async def scenario():
        order = []

        def work(i):
            order.append(i)
            return os.urandom(2).hex()

        async def one(i):
            await asyncio.sleep(0)
            return await asyncio.to_thread(work, i)

        results = await asyncio.gather(*(one(i) for i in range(8)))
        with concurrent.futures.ThreadPoolExecutor() as pool:  # never started
            extra = await asyncio.get_running_loop().run_in_executor(pool, work, 99)
        return order, results, extra

    runs = [seedloop.run(scenario, seed=s) for s in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0] or runs[0][1] != runs[2][1]


def test_thread_executor_mode_allows_threads():
    async def scenario():
        return await asyncio.to_thread(threading.get_ident)

    assert seedloop.run(scenario, seed=0, executor="thread") != threading.get_ident()
    assert_world_restored()


# -- escapes --------------------------------------------------------------------


def expect_escape(make_coro, match):
    with pytest.raises(seedloop.SimulationEscapeError, match=match) as info:
        seedloop.run(make_coro, seed=0)
    assert isinstance(info.value, NotImplementedError)
    assert isinstance(info.value, seedloop.SeedloopError)
    assert_world_restored()


def test_thread_start_is_an_escape():
    async def scenario():
        threading.Thread(target=print).start()

    expect_escape(scenario, r"threading\.Thread\.start\(\).*asyncio tasks")


def test_thread_pool_submit_is_an_escape():
    async def scenario():
        with concurrent.futures.ThreadPoolExecutor() as pool:
            pool.submit(print)

    expect_escape(scenario, "Thread.start")


@pytest.mark.parametrize(
    "action",
    [
        lambda s: s.connect(("127.0.0.1", 9)),
        lambda s: s.connect_ex(("127.0.0.1", 9)),
        lambda s: s.bind(("127.0.0.1", 0)),
        lambda s: s.listen(),
        lambda s: s.send(b"x"),
        lambda s: s.sendall(b"x"),
    ],
)
def test_real_tcp_socket_io_is_an_escape(action):
    async def scenario():
        with socket.socket() as sock:  # creating a socket object is fine
            sock.setblocking(False)
            action(sock)

    expect_escape(scenario, r"socket\.\w+\(\) on a real socket")


def test_real_udp_sendto_is_an_escape():
    async def scenario():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"x", ("127.0.0.1", 9))

    expect_escape(scenario, r"socket\.sendto\(\)")


def test_dns_lookups_of_names_are_escapes_but_literals_are_not():
    async def scenario():
        literal = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert literal[0][4] == ("127.0.0.1", 80)
        socket.getaddrinfo("example.com", 80)  # the stdlib's, not the loop's

    expect_escape(scenario, r"getaddrinfo\('example\.com'\), a real DNS lookup")


def test_blocking_stdlib_clients_are_stopped_at_the_escape():
    async def scenario():
        socket.create_connection(("127.0.0.1", 9), timeout=1)

    expect_escape(scenario, r"socket\.connect\(\) on a real socket")


def test_subprocesses_are_escapes():
    async def popen():
        subprocess.run(["true"])

    async def aio():
        await asyncio.create_subprocess_exec("true")

    async def shell():
        os.system("true")

    async def spawn():
        os.posix_spawn("/bin/true", ["true"], dict(os.environ))

    async def pipe():
        r, w = os.pipe()
        try:
            await asyncio.get_running_loop().connect_read_pipe(asyncio.Protocol, os.fdopen(r))
        finally:
            os.close(w)

    expect_escape(popen, r"subprocess\.Popen\(\)")
    expect_escape(aio, "create_subprocess_exec")
    expect_escape(shell, r"os\.system\(\)")
    expect_escape(spawn, r"os\.posix_spawn\(\)")
    expect_escape(pipe, "connect_read_pipe")


def test_fork_is_guarded():
    async def scenario():
        return os.fork is not REAL["fork"], os.fork.__wrapped__ is REAL["fork"]

    assert seedloop.run(scenario, seed=0) == (True, True)


def test_simulated_sockets_and_allowed_real_io_pass():
    async def scenario():
        a, b = socket.socketpair()
        with a, b:
            _world.mark_simulated(a)
            a.send(b"sim")  # a socket the simulation owns
            with _world.real_io_allowed():
                b.send(b"real")  # deliberate real I/O
            return a.recv(10), b.recv(10)

    assert seedloop.run(scenario, seed=0) == (b"real", b"sim")
    assert_world_restored()


def test_a_swallowed_escape_still_fails_the_run():
    async def scenario():
        try:
            threading.Thread(target=print).start()
        except Exception:
            pass  # a library that "handles" everything
        with socket.socket() as sock:
            try:
                sock.connect(("127.0.0.1", 9))
            except NotImplementedError:
                pass
        return "looked fine"

    result = seedloop.execute(scenario, 0)
    assert isinstance(result.exception, seedloop.SimulationEscapeError)
    assert "Thread.start" in str(result.exception)
    expect_escape(scenario, "Thread.start")


# -- restoring ------------------------------------------------------------------


def test_everything_is_restored_after_a_run_and_after_a_failing_run():
    before = random.getstate()

    async def failing():
        await all_sources()
        raise RuntimeError("scenario failed")

    seedloop.run(all_sources, seed=1)
    assert_world_restored()
    with pytest.raises(RuntimeError, match="scenario failed"):
        seedloop.run(failing, seed=1)
    assert_world_restored()
    assert random.getstate() == before


def test_rebinding_sites_are_patched_during_the_run():
    async def scenario():
        await asyncio.sleep(7)
        return imported_monotonic(), imported_monotonic is not REAL["monotonic"]

    assert seedloop.run(scenario, seed=0) == (7.0, True)
    assert imported_monotonic is REAL["monotonic"]


def test_modules_imported_during_a_run_get_the_real_objects_afterwards(tmp_path, monkeypatch):
    (tmp_path / "seedloop_world_probe.py").write_text(
        "from time import monotonic\n"
        "from os import urandom\n"
        "from datetime import datetime\n"
        "class Stamp(datetime):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    async def scenario():
        import seedloop_world_probe as probe

        await asyncio.sleep(4)
        return probe.monotonic(), probe.datetime.now(UTC).year

    try:
        assert seedloop.run(scenario, seed=0) == (4.0, 2025)
        probe = sys.modules["seedloop_world_probe"]
        assert probe.monotonic is REAL["monotonic"]
        assert probe.urandom is REAL["urandom"]
        assert probe.datetime is REAL["datetime"]
        # A subclass made from the stand-in during the run still works as one.
        stamp = probe.Stamp(2020, 1, 1)
        assert type(stamp) is probe.Stamp and isinstance(stamp, datetime.datetime)
        assert not isinstance(datetime.datetime(2020, 1, 1), probe.Stamp)
        assert type(probe.Stamp.now()) is probe.Stamp
        assert probe.Stamp.now().year >= 2025
        # Next run: the module is now a known rebinding site.
        assert seedloop.run(scenario, seed=0) == (4.0, 2025)
        assert probe.monotonic is REAL["monotonic"]
    finally:
        sys.modules.pop("seedloop_world_probe", None)


def test_other_threads_see_the_real_world_during_a_run():
    seen = {}
    go, done = threading.Event(), threading.Event()

    def observer():
        go.wait(10)
        seen["time"] = time.time()
        seen["urandom"] = os.urandom(8)
        done.set()

    thread = threading.Thread(target=observer)
    thread.start()  # started outside the run

    async def scenario():
        go.set()
        done.wait(10)  # a real blocking wait, on purpose
        return time.time()

    assert seedloop.run(scenario, seed=0) == EPOCH
    thread.join()
    assert abs(seen["time"] - REAL["time"]()) < 60
    assert seen["urandom"] != _engine.Rng(0, "world/urandom").bytes(8)


def test_concurrent_runs_on_two_threads_each_have_their_own_world():
    results = {}
    barrier = threading.Barrier(2)

    def runner(name, delay):
        async def scenario():
            barrier.wait(10)
            await asyncio.sleep(delay)
            return time.monotonic(), os.urandom(4)

        results[name] = seedloop.run(scenario, seed=delay)

    threads = [threading.Thread(target=runner, args=(n, d)) for n, d in (("a", 3), ("b", 8))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"] == (3.0, _engine.Rng(3, "world/urandom").bytes(4))
    assert results["b"] == (8.0, _engine.Rng(8, "world/urandom").bytes(4))
    assert_world_restored()


def test_seed_searches_hold_the_world_and_restore_it():
    async def scenario():
        await asyncio.sleep(1)
        return time.time(), os.urandom(2)

    seen = []

    def predicate(result):
        # Between runs the stand-ins stay in place but behave like the real thing.
        seen.append((result, time.time is REAL["time"], abs(time.time() - REAL["time"]()) < 60))
        return False

    assert seedloop.find_seed_where(scenario, predicate, range(4)) is None
    assert_world_restored()
    assert [s[1:] for s in seen] == [(False, True)] * 4
    assert [s[0] for s in seen] == [seedloop.run(scenario, seed=n) for n in range(4)]

    async def failing():
        await scenario()
        raise ValueError("boom")

    assert seedloop.find_failing_seed(failing, range(3)).seed == 0
    assert_world_restored()
    with pytest.raises(ValueError):
        seedloop.find_seed_where(failing, bool, range(3))
    assert_world_restored()


def test_world_false_leaves_the_process_alone_but_seeds_random():
    async def scenario():
        return time.time is REAL["time"], random.random()

    untouched, value = seedloop.run(scenario, seed=9, world=False)
    assert untouched
    assert value == random.Random(_engine.derive_seed(9, "random")).random()
    hit = seedloop.find_seed_where(scenario, lambda r: True, range(3), world=False)
    assert hit is not None and hit[1][0]


def test_world_options_are_part_of_the_replay_command():
    async def scenario():
        time.sleep(1)

    failure = seedloop.find_failing_seed(scenario, range(3), sleep="error")
    assert failure is not None
    assert isinstance(failure.exception, seedloop.BlockingCallError)
    assert "sleep='error'" in failure.replay_command


# -- across processes -------------------------------------------------------------

CROSS_PROCESS_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path.insert(0, sys.argv[2])
    import seedloop
    from test_world import all_sources

    async def scenario():
        values = await all_sources()
        tasks = [asyncio.create_task(asyncio.sleep(0.001 * (i % 3))) for i in range(6)]
        await asyncio.gather(*tasks)
        values["set_order"] = sorted({"a", "b", "c"})
        return values

    result = seedloop.execute(scenario, int(sys.argv[1]))
    print(json.dumps({"value": result.value, "fingerprint": result.fingerprint}, sort_keys=True))
    """
)


def run_in_fresh_process(seed: int, hash_seed: str) -> dict[str, object]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-c", CROSS_PROCESS_SCRIPT, str(seed), os.path.dirname(__file__)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_same_seed_same_world_in_two_processes_with_different_hash_seeds():
    a = run_in_fresh_process(21, "1")
    b = run_in_fresh_process(21, "2")
    c = run_in_fresh_process(22, "1")
    assert a == b
    assert a["value"]["uuid4"] != c["value"]["uuid4"]
    # The in-process run agrees with the fresh processes.
    assert seedloop.run(all_sources, seed=21) == {
        k: v for k, v in a["value"].items() if k != "set_order"
    }


# -- real libraries (optional) -------------------------------------------------


@pytest.mark.extra
def test_library_clock_imported_before_the_run_is_virtual():
    connector = pytest.importorskip("aiohttp.connector")
    real_monotonic = connector.monotonic
    assert real_monotonic is REAL["monotonic"]  # aiohttp did `from time import monotonic`

    async def scenario():
        await asyncio.sleep(42)
        return connector.monotonic()

    assert seedloop.run(scenario, seed=0) == 42.0
    assert connector.monotonic is real_monotonic


def test_inline_executor_work_may_wait_on_a_thread_started_before_the_run():
    import queue
    import threading

    requests: queue.Queue = queue.Queue()
    replies: queue.Queue = queue.Queue()

    def worker():
        while (item := requests.get()) is not None:
            replies.put(item * item)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()

    async def scenario():
        requests.put(21)
        return await asyncio.to_thread(replies.get, True, 5)

    try:
        assert seedloop.run(scenario) == 441
    finally:
        requests.put(None)
        thread.join(5)


def test_inline_wait_still_refuses_to_hang_when_other_threads_exist():
    import queue
    import threading
    import time

    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait, daemon=True)  # never the waker
    bystander.start()

    async def scenario():
        return await asyncio.to_thread(queue.Queue().get)

    started = time.monotonic()
    try:
        with pytest.raises(seedloop.BlockingCallError):
            seedloop.run(scenario)
    finally:
        stop.set()
        bystander.join(5)
    assert time.monotonic() - started < 10  # a bounded grace period, then the error


def test_a_blocking_wait_that_times_out_lets_virtual_time_pass() -> None:
    # queue.Queue.put(timeout=) loops on "deadline = monotonic() + timeout" around
    # a real Condition.wait: with a clock that never moved it never gave up
    # (janus' sync side does the same). Run in a subprocess: before the fix it hung.
    code = textwrap.dedent(
        """
        import queue, time, seedloop

        async def scenario():
            q = queue.Queue(1)
            q.put(1)
            start = time.monotonic()
            try:
                q.put(2, timeout=0.05)
            except queue.Full:
                return round(time.monotonic() - start, 3)

        print(seedloop.run(scenario, seed=0))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.05"
