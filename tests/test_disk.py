"""The simulated disk: page cache vs durable state, crashes, faults, file objects, isolation."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import io
import logging
import os
import pathlib
import sys

import pytest

import seedloop
from seedloop import net

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def quiet_asyncio():
    """Python 3.11 logs the cancelled handlers of a crashed host (a CPython bug, see net.md)."""
    log = logging.getLogger("asyncio")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


def on_host(body, *, seed=1, host="server", setup=None):
    """Run ``body(host)`` (a plain function) as a task on ``host``; returns its value."""

    async def scenario():
        h = net.host(host)
        if setup is not None:
            setup(h)

        async def go():
            return body(h)

        return await h.spawn(go())

    return seedloop.run(scenario, seed=seed)


def crash_between(first, then, *, seed=1, setup=None):
    """``first(host)`` on the server, a power cut and restart, then ``then(host)``."""

    async def scenario():
        h = net.host("server")
        if setup is not None:
            setup(h)

        async def go(fn):
            return fn(h)

        before = await h.spawn(go(first))
        h.crash()
        h.restart()
        return before, await h.spawn(go(then))

    return seedloop.run(scenario, seed=seed)


def sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path, data, *, fsync=True):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


# -- volatile vs durable ---------------------------------------------------------


def test_writes_are_read_back_at_once_but_durable_only_after_fsync():
    def body(h):
        path = f"{h.data_dir}/a"
        write(path, b"hello", fsync=False)
        seen = read(path)
        durable_before = h.disk.files(durable=True)
        fd = os.open(path, os.O_WRONLY)
        os.fsync(fd)
        os.close(fd)
        sync_dir(h.data_dir)
        return seen, durable_before, h.disk.files(durable=True)

    seen, before, after = on_host(body)
    assert seen == b"hello"
    assert before == {}
    assert after == {"/seedloop/server/a": b"hello"}


def test_a_crash_drops_unsynced_data_and_keeps_synced_data():
    def first(h):
        write(f"{h.data_dir}/synced", b"kept")
        write(f"{h.data_dir}/unsynced", b"lost", fsync=False)
        sync_dir(h.data_dir)  # both names are durable, only one file's bytes
        with open(f"{h.data_dir}/synced", "ab") as f:
            f.write(b" but not this")
        return read(f"{h.data_dir}/synced")

    def then(h):
        return read(f"{h.data_dir}/synced"), read(f"{h.data_dir}/unsynced")

    before, after = crash_between(first, then)
    assert before == b"kept but not this"
    assert after == (b"kept", b"")


def test_a_created_file_needs_its_directory_fsynced():
    def first(h):
        os.mkdir(f"{h.data_dir}/d")
        sync_dir(h.data_dir)
        write(f"{h.data_dir}/d/no-dir-sync", b"x")
        write(f"{h.data_dir}/d/dir-synced", b"y")
        sync_dir(f"{h.data_dir}/d")
        write(f"{h.data_dir}/d/after", b"z")
        return sorted(os.listdir(f"{h.data_dir}/d"))

    def then(h):
        return sorted(os.listdir(f"{h.data_dir}/d"))

    before, after = crash_between(first, then)
    assert before == ["after", "dir-synced", "no-dir-sync"]
    assert after == ["dir-synced", "no-dir-sync"]


def test_a_new_directory_needs_its_parent_fsynced():
    def first(h):
        os.makedirs(f"{h.data_dir}/a/b")
        write(f"{h.data_dir}/a/b/f", b"1")
        sync_dir(f"{h.data_dir}/a/b")
        sync_dir(f"{h.data_dir}/a")  # but not data_dir: "a" itself is not durable

    def then(h):
        return os.path.exists(f"{h.data_dir}/a"), os.listdir(h.data_dir)

    assert crash_between(first, then)[1] == (False, [])


def test_rename_and_unlink_are_durable_only_after_a_directory_fsync():
    def first(h):
        d = h.data_dir
        write(f"{d}/config", b"old")
        write(f"{d}/doomed", b"d")
        sync_dir(d)
        write(f"{d}/config.tmp", b"new")
        os.replace(f"{d}/config.tmp", f"{d}/config")  # the atomic-replace idiom...
        os.remove(f"{d}/doomed")
        return read(f"{d}/config"), os.path.exists(f"{d}/doomed")

    def then(h):
        return read(f"{h.data_dir}/config"), sorted(os.listdir(h.data_dir))

    before, after = crash_between(first, then)
    assert before == (b"new", False)
    assert after == (b"old", ["config", "doomed"])  # ...without its directory fsync

    def first_synced(h):
        first(h)
        sync_dir(h.data_dir)

    assert crash_between(first_synced, then)[1] == (b"new", ["config"])


def test_rename_without_fsyncing_the_file_leaves_it_empty():
    def first(h):
        write(f"{h.data_dir}/f.tmp", b"data", fsync=False)
        os.rename(f"{h.data_dir}/f.tmp", f"{h.data_dir}/f")
        sync_dir(h.data_dir)

    assert crash_between(first, lambda h: read(f"{h.data_dir}/f"))[1] == b""


def test_torn_writes_keep_a_seeded_prefix_of_the_unsynced_writes():
    def first(h):
        h.disk.torn_writes = True
        write(f"{h.data_dir}/log", b"")
        sync_dir(h.data_dir)
        with open(f"{h.data_dir}/log", "ab", buffering=0) as f:
            for record in (b"aaaa", b"bbbb", b"cccc"):
                f.write(record)

    outcomes = set()
    for seed in range(60):
        _, got = crash_between(first, lambda h: read(f"{h.data_dir}/log"), seed=seed)
        assert b"aaaabbbbcccc".startswith(got)
        assert got == crash_between(first, lambda h: read(f"{h.data_dir}/log"), seed=seed)[1]
        outcomes.add(len(got))
    assert len(outcomes) >= 6, outcomes  # whole records, none, and cuts inside one
    assert any(n % 4 for n in outcomes)


def test_without_torn_writes_a_crash_keeps_no_unsynced_byte():
    def first(h):
        write(f"{h.data_dir}/log", b"")
        sync_dir(h.data_dir)
        with open(f"{h.data_dir}/log", "ab") as f:
            f.write(b"abc")

    for seed in range(20):
        assert crash_between(first, lambda h: read(f"{h.data_dir}/log"), seed=seed)[1] == b""


# -- faults ----------------------------------------------------------------------


def test_eio_on_read_and_write_as_many_times_as_asked():
    def body(h):
        path = f"{h.data_dir}/f"
        write(path, b"data")
        h.disk.fail("read", error="EIO", times=2)
        errors = []
        for _ in range(3):
            try:
                errors.append(read(path))
            except OSError as e:
                errors.append(e.errno)
        h.disk.fail("write", path="f")
        try:
            write(path, b"more")
        except OSError as e:
            errors.append((e.errno, e.filename))
        write(f"{h.data_dir}/other", b"fine")  # the fault names one path
        return errors

    assert on_host(body) == [errno.EIO, errno.EIO, b"data", (errno.EIO, None)]


def test_capacity_writes_what_fits_then_enospc():
    def body(h):
        h.disk.capacity = 10
        fd = os.open(f"{h.data_dir}/f", os.O_WRONLY | os.O_CREAT)
        first = os.write(fd, b"123456")
        second = os.write(fd, b"789abc")
        try:
            os.write(fd, b"d")
        except OSError as e:
            third = e
        os.close(fd)
        os.remove(f"{h.data_dir}/f")  # frees the space
        write(f"{h.data_dir}/g", b"0123456789")
        return first, second, third

    first, second, third = on_host(body)
    assert (first, second) == (6, 4)
    assert isinstance(third, OSError) and third.errno == errno.ENOSPC


def test_injected_enospc_reaches_a_buffered_file_on_flush():
    def body(h):
        h.disk.fail("write", error="ENOSPC", times=None)
        f = open(f"{h.data_dir}/f", "w")
        f.write("x" * 10)  # Python's buffer: no error yet
        with pytest.raises(OSError) as info:
            f.flush()
        return info.value.errno

    assert on_host(body) == errno.ENOSPC


def test_a_failed_fsync_loses_the_data_for_good():
    """Linux's fsyncgate: the pages are marked clean, a retried fsync succeeds, a crash loses them."""

    def first(h):
        path = f"{h.data_dir}/f"
        write(path, b"")
        sync_dir(h.data_dir)
        h.disk.fail("fsync", path="f")
        f = open(path, "ab")
        f.write(b"lost")
        f.flush()
        try:
            os.fsync(f.fileno())
        except OSError as e:
            failed = e.errno
        os.fsync(f.fileno())  # "succeeds"
        f.write(b"!")
        f.flush()
        os.fsync(f.fileno())
        return failed, read(path)

    before, after = crash_between(first, lambda h: read(f"{h.data_dir}/f"))
    assert before == (errno.EIO, b"lost!")
    assert after == b"\0\0\0\0!"  # the lost bytes are a hole; the later write is durable


def test_faults_with_a_probability_are_seeded():
    def body(h):
        h.disk.fail("meta", times=None, probability=0.5)
        out = []
        for _ in range(40):
            try:
                os.stat(h.data_dir)
                out.append(1)
            except OSError:
                out.append(0)
        return out

    a, b = on_host(body, seed=3), on_host(body, seed=3)
    assert a == b and 5 < sum(a) < 35
    assert a != on_host(body, seed=4)


def test_latency_blocks_in_virtual_time():
    def body(h):
        loop = asyncio.get_running_loop()
        h.disk.set_latency(0.25, op="fsync")
        t0 = loop.time()
        write(f"{h.data_dir}/f", b"x", fsync=False)
        t1 = loop.time()
        write(f"{h.data_dir}/g", b"x")
        t2 = loop.time()
        h.disk.latency = net.Uniform(0.001, 0.002)
        os.listdir(h.data_dir)
        return t1 - t0, t2 - t1, loop.time() - t2

    cheap, fsync, listdir = on_host(body)
    assert cheap == 0
    assert fsync == pytest.approx(0.25)
    assert 0.001 <= listdir <= 0.002 + 1e-9


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d.fail("sync"), "unknown disk operation"),
        (lambda d: d.fail("read", error="EPERM"), "unknown disk error"),
        (lambda d: d.fail("read", times=0), "times must be"),
        (lambda d: d.fail("read", probability=2), "probability"),
        (lambda d: d.fail("read", path="/elsewhere/x"), "not under this host's data directory"),
        (lambda d: setattr(d, "capacity", -1), "capacity"),
        (lambda d: setattr(d, "torn_writes", 1), "torn_writes"),
        (lambda d: setattr(d, "latency", "slow"), "disk latency"),
        (lambda d: d.set_latency(0.1, op="stat"), "unknown disk operation"),
    ],
)
def test_bad_settings_are_typed_errors(call, message):
    async def scenario():
        with pytest.raises(net.DiskError, match=message):
            call(net.host("server").disk)

    seedloop.run(scenario, seed=1)
    assert issubclass(net.DiskError, seedloop.SeedloopError)


# -- isolation, determinism, the real filesystem ----------------------------------------


def test_each_host_sees_only_its_own_disk():
    async def scenario():
        a, b = net.host("a"), net.host("b")

        async def put(h, data):
            write(f"{h.data_dir}/f", data)
            return os.listdir(h.data_dir)

        assert await a.spawn(put(a, b"A")) == ["f"]
        assert await b.spawn(put(b, b"B")) == ["f"]

        async def peek():
            read(f"{b.data_dir}/f")

        with pytest.raises(net.DiskError, match="host 'b'"):
            await a.spawn(peek())
        with pytest.raises(net.DiskError, match="data directories"):
            os.listdir("/seedloop")
        # Code outside any spawned task runs on "main", with its own disk.
        write(f"{net.current_host().data_dir}/m", b"M")
        return a.disk.files(), b.disk.files(), net.host("main").disk.files()

    assert seedloop.run(scenario, seed=1) == (
        {"/seedloop/a/f": b"A"},
        {"/seedloop/b/f": b"B"},
        {"/seedloop/main/m": b"M"},
    )


def test_same_seed_same_disk_state(quiet_asyncio):
    sys.path.insert(0, str(EXAMPLES))
    try:
        import wal_kv
    finally:
        sys.path.remove(str(EXAMPLES))

    async def scenario():
        await wal_kv.buggy()
        return net.host("server").disk.files(durable=True)

    for seed in (1, 2, 3):
        first, again = seedloop.execute(scenario, seed), seedloop.execute(scenario, seed)
        assert first.fingerprint == again.fingerprint
        assert first.value == again.value
    assert seedloop.execute(scenario, 1).value != seedloop.execute(scenario, 2).value


def test_nothing_reaches_the_real_filesystem(tmp_path):
    real = tmp_path / "real.txt"

    def body(h):
        os.makedirs(f"{h.data_dir}/x/y")
        write(f"{h.data_dir}/x/y/f", b"sim")
        real.write_text("real")  # outside every data directory: the real disk, as before
        return read(f"{h.data_dir}/x/y/f")

    assert on_host(body) == b"sim"
    assert not os.path.exists("/seedloop")
    assert real.read_text() == "real"
    # Outside a run a data-directory path is an ordinary (missing) real path.
    assert not os.path.exists("/seedloop/server/x")


def test_descriptors_and_files_of_a_crashed_host_go_nowhere():
    async def scenario():
        h = net.host("server")
        opened = asyncio.get_running_loop().create_future()

        async def writer():
            f = open(f"{h.data_dir}/f", "wb")
            sync_dir(h.data_dir)
            opened.set_result(f)
            await asyncio.sleep(10)

        h.spawn(writer())
        f = await opened
        h.crash()
        f.write(b"after the power cut")
        f.close()  # no error: the process is gone, its writes with it
        h.restart()
        return h.disk.files()

    assert seedloop.run(scenario, seed=1) == {"/seedloop/server/f": b""}


# -- file objects and os functions ----------------------------------------------------


def test_file_objects_behave_like_real_ones():
    def body(h):
        p = f"{h.data_dir}/t.txt"
        out = {}
        with open(p, "w", encoding="utf-8") as f:
            assert isinstance(f, io.TextIOWrapper) and f.mode == "w" and f.name == p
            f.write("één\n")
            f.writelines(["two\n", "three"])
            out["tell"] = f.tell()
        assert f.closed
        with pytest.raises(ValueError):
            f.write("x")
        with open(p, encoding="utf-8") as f:
            out["lines"] = list(f)
            f.seek(0)
            out["readline"] = f.readline()
            out["rest"] = f.read()
        with open(p, "rb") as f:
            out["bytes"] = f.read(3)
            out["pos"] = f.tell()
            f.seek(-2, os.SEEK_END)
            out["end"] = f.read()
            buf = bytearray(4)
            f.seek(0)
            out["readinto"] = (f.readinto(buf), bytes(buf))
        with open(p, "a") as f:
            out["append_pos"] = f.tell()
            f.write("\nfour")
        with open(p, "r+b") as f:
            f.write(b"E")
            f.truncate(10)
        out["after"] = read(p)
        with open(p, "rb", buffering=0) as raw:
            out["raw"] = (type(raw).__name__, raw.read(2), raw.mode)
        with pytest.raises(FileExistsError):
            open(p, "x")
        with pytest.raises(FileNotFoundError) as e:
            open(f"{h.data_dir}/missing")
        out["missing"] = e.value.filename
        with pytest.raises(IsADirectoryError):
            open(h.data_dir, "w")
        with pytest.raises(IsADirectoryError):
            open(h.data_dir)
        with pytest.raises(ValueError):
            open(p, "rw")
        opened = []

        def opener(path, flags):
            opened.append(path)
            return os.open(path, flags, 0o600)

        with open(f"{h.data_dir}/o", "w", opener=opener) as f:
            f.write("via opener")
        out["opener"] = (opened, read(f"{h.data_dir}/o"))
        with open(f"{h.data_dir}/n.txt", "w", newline="\r\n") as f:
            f.write("a\nb\n")
        out["newlines"] = read(f"{h.data_dir}/n.txt")
        return out

    out = on_host(body)
    assert out["tell"] == len("één\ntwo\nthree".encode())
    assert out["lines"] == ["één\n", "two\n", "three"]
    assert out["readline"] == "één\n" and out["rest"] == "two\nthree"
    assert out["bytes"] == "é".encode() + b"\xc3"[:0] + b"\xc3"
    assert out["pos"] == 3 and out["end"] == b"ee"
    assert out["readinto"] == (4, "één".encode()[:4])
    assert out["append_pos"] == len("één\ntwo\nthree".encode())
    assert out["after"] == b"E" + "één\ntwo\nthree".encode()[1:10]
    assert out["raw"] == ("SimFileIO", b"E\xa9", "rb")
    assert out["missing"] == "/seedloop/server/missing"
    assert out["newlines"] == b"a\r\nb\r\n"
    assert out["opener"] == (["/seedloop/server/o"], b"via opener")


def test_flush_moves_pythons_buffer_to_the_page_cache():
    def body(h):
        p = f"{h.data_dir}/f"
        f = open(p, "w")
        f.write("buffered")
        before = read(p)
        f.flush()
        after = read(p)
        f.close()
        return before, after, h.disk.files(durable=True)

    assert on_host(body) == (b"", b"buffered", {})


def test_os_and_pathlib_functions():
    def body(h):
        d = pathlib.Path(h.data_dir)
        out = {}
        (d / "sub").mkdir()
        (d / "sub" / "a.txt").write_text("A")
        (d / "sub" / "b.bin").write_bytes(b"BB")
        (d / "t").touch()
        out["iterdir"] = sorted(p.name for p in (d / "sub").iterdir())
        out["glob"] = sorted(p.name for p in d.glob("sub/*.txt"))
        out["path"] = (
            os.path.exists(d / "sub"),
            os.path.isdir(d / "sub"),
            os.path.isfile(d / "sub" / "a.txt"),
            os.path.getsize(d / "sub" / "b.bin"),
            (d / "nope").exists(),
        )
        with os.scandir(d / "sub") as it:
            out["scandir"] = sorted((e.name, e.is_file(), e.path) for e in it)
        st = os.stat(d / "sub" / "b.bin")
        out["stat"] = (st.st_size, oct(st.st_mode & 0o170000))
        fd = os.open(d / "sub" / "b.bin", os.O_RDWR)
        out["fstat"] = os.fstat(fd).st_size
        os.lseek(fd, 1, os.SEEK_SET)
        os.write(fd, b"xyz")
        os.ftruncate(fd, 3)
        os.lseek(fd, 0, os.SEEK_SET)
        out["os.read"] = os.read(fd, 100)
        os.fdatasync(fd)
        with os.fdopen(fd, "rb") as f:
            out["fdopen"] = (f.read(), f.seek(0), f.read())
        with pytest.raises(OSError) as e:
            os.rmdir(d / "sub")
        out["rmdir"] = e.value.errno
        (d / "sub" / "a.txt").unlink()
        (d / "sub" / "b.bin").rename(d / "b.bin")
        os.rmdir(d / "sub")
        with pytest.raises(OSError) as e:
            os.rename(d / "b.bin", "/tmp/seedloop-never-written")
        out["exdev"] = e.value.errno
        out["final"] = sorted(os.listdir(d))
        return out

    out = on_host(body)
    assert out["iterdir"] == ["a.txt", "b.bin"]
    assert out["glob"] == ["a.txt"]
    assert out["path"] == (True, True, True, 2, False)
    assert out["scandir"] == [
        ("a.txt", True, "/seedloop/server/sub/a.txt"),
        ("b.bin", True, "/seedloop/server/sub/b.bin"),
    ]
    assert out["stat"] == (2, "0o100000")
    assert out["fstat"] == 2
    assert out["os.read"] == b"Bxy"
    assert out["fdopen"] == (b"", 0, b"Bxy")  # the descriptor's position was at the end
    assert out["rmdir"] == errno.ENOTEMPTY
    assert out["exdev"] == errno.EXDEV
    assert out["final"] == ["b.bin", "t"]
    assert not os.path.exists("/tmp/seedloop-never-written")


def test_aiofiles_reaches_the_simulated_disk():
    aiofiles = pytest.importorskip("aiofiles")
    aiofiles_os = pytest.importorskip("aiofiles.os")

    async def scenario():
        h = net.host("server")

        async def work():
            async with aiofiles.open(f"{h.data_dir}/f", "w") as f:
                await f.write("hello ")
                await f.write("aiofiles")
                await f.flush()
                os.fsync(f.fileno())
            async with aiofiles.open(f"{h.data_dir}/f") as f:
                return await f.read(), await aiofiles_os.path.exists(f"{h.data_dir}/f")

        return await h.spawn(work()), h.disk.files()

    text, files = seedloop.run(scenario, seed=1)
    assert text == ("hello aiofiles", True)
    assert files == {"/seedloop/server/f": b"hello aiofiles"}


# -- the example -----------------------------------------------------------------


def _example():
    spec = importlib.util.spec_from_file_location("wal_kv", EXAMPLES / "wal_kv.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["wal_kv"] = module  # worker processes find the factories by name
    spec.loader.exec_module(module)
    return module


def test_wal_kv_missing_fsync_is_found_and_the_fix_survives(quiet_asyncio):
    wal_kv = _example()
    for factory in (wal_kv.buggy, wal_kv.no_dir_fsync):
        failure = seedloop.find_failing_seed(factory, range(100), explain=False, shrink=False)
        assert failure is not None
        assert "lost acknowledged write" in str(failure.exception)
    seeds = int(os.environ.get("SEEDLOOP_WAL_SEEDS", "300"))
    assert seedloop.find_failing_seed(wal_kv.fixed, range(seeds), explain=False) is None
    # Every run twice, trace against trace: the disk draws nothing from outside the seed.
    assert seedloop.find_failing_seed(wal_kv.fixed, range(30), check_determinism=True) is None


def test_c_level_opens_of_simulated_paths_are_escapes():
    """sqlite3 and io.FileIO open files in C, on the real filesystem: refused, even if swallowed."""
    sqlite3 = pytest.importorskip("sqlite3")

    def body(h):
        caught = []
        for attempt in (lambda: sqlite3.connect(f"{h.data_dir}/db"), lambda: io.FileIO(f"{h.data_dir}/f", "w")):
            try:
                attempt()
            except seedloop.SimulationEscapeError as e:
                caught.append(str(e).split(",")[0])
        sqlite3.connect(":memory:").close()  # not a file: fine
        return caught

    async def scenario():
        h = net.host("server")
        return await h.spawn(asyncio.to_thread(body, h))

    result = seedloop.execute(scenario, 1)
    assert isinstance(result.exception, seedloop.SimulationEscapeError)  # swallowed, still reported
    assert "sqlite3.connect('/seedloop/server/db')" in str(result.exception)
    assert not os.path.exists("/seedloop")


def test_shutil_and_the_calls_the_disk_does_not_model():
    """rmtree (directory descriptors), copyfile/copy (sendfile refused, so read/write),
    truncate, access, chmod and utime (no modes or times: they only check the file exists)."""
    import shutil

    def body(h):
        d = h.data_dir
        os.makedirs(f"{d}/a/b/c")
        for p in ("a/x", "a/b/y", "a/b/c/z"):
            with open(f"{d}/{p}", "w") as f:
                f.write(p)
        shutil.copyfile(f"{d}/a/x", f"{d}/copy")
        shutil.copy(f"{d}/a/b/y", f"{d}/copy2")
        os.truncate(f"{d}/copy2", 1)
        os.chmod(f"{d}/copy", 0o600)
        os.utime(f"{d}/copy")
        with pytest.raises(FileNotFoundError):
            os.chmod(f"{d}/nope", 0o600)
        access = os.access(f"{d}/copy", os.W_OK), os.access(f"{d}/nope", os.R_OK)
        shutil.rmtree(f"{d}/a")
        return access, h.disk.files(), h.disk.directories()

    access, files, dirs = on_host(body)
    assert access == (True, False)
    assert files == {"/seedloop/server/copy": b"a/x", "/seedloop/server/copy2": b"a"}
    assert dirs == []


def test_path_resolution_walks_through_the_data_root():
    def body(h):
        p = pathlib.Path(h.data_dir) / "sub" / "f"
        p.parent.mkdir()
        p.write_text("1")
        return str(p.resolve()), os.path.realpath(p), os.path.isdir("/seedloop")

    assert on_host(body) == ("/seedloop/server/sub/f", "/seedloop/server/sub/f", True)


# -- the simulated disk answers like the real one ----------------------------------------

_NAMES = ["a", "b", "d", "e", "d/a", "d/b", "e/a", "a/x"]


def _random_ops(rng, n):
    ops = []
    for _ in range(n):
        kind = rng.choice(["write", "write", "read", "mkdir", "rmdir", "unlink", "rename",
                           "rename", "listdir", "stat", "truncate"])
        path = rng.choice(_NAMES)
        if kind == "write":
            ops.append((kind, path, rng.choice(["wb", "ab", "r+b", "xb"]), bytes([rng.randrange(256)]) * rng.randrange(1, 6)))
        elif kind == "rename":
            ops.append((kind, path, rng.choice(_NAMES)))
        elif kind == "truncate":
            ops.append((kind, path, rng.randrange(0, 8)))
        else:
            ops.append((kind, path))
    return ops


def _apply(root, op):
    kind, path = op[0], f"{root}/{op[1]}"
    try:
        if kind == "write":
            with open(path, op[2]) as f:
                return ("ok", f.write(op[3]))
        if kind == "read":
            with open(path, "rb") as f:
                return ("ok", f.read())
        if kind == "mkdir":
            return ("ok", os.mkdir(path))
        if kind == "rmdir":
            return ("ok", os.rmdir(path))
        if kind == "unlink":
            return ("ok", os.unlink(path))
        if kind == "rename":
            return ("ok", os.rename(path, f"{root}/{op[2]}"))
        if kind == "listdir":
            return ("ok", sorted(os.listdir(path)))
        if kind == "stat":
            st = os.stat(path)
            return ("ok", os.path.isdir(path), st.st_size if os.path.isfile(path) else None)
        return ("ok", os.truncate(path, op[2]))
    except OSError as e:
        return ("error", type(e).__name__, e.errno)


def _tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.normpath(f"{rel}/{d}")] = None
        for f in filenames:
            with open(f"{dirpath}/{f}", "rb") as fh:
                out[os.path.normpath(f"{rel}/{f}")] = fh.read()
    return dict(sorted(out.items()))


@pytest.mark.parametrize("case", range(int(os.environ.get("SEEDLOOP_DISK_CASES", "40"))))
def test_random_file_operations_answer_as_the_real_filesystem(tmp_path, case):
    import random

    ops = _random_ops(random.Random(case), 30)
    real = [_apply(tmp_path, op) for op in ops]
    real_tree = _tree(tmp_path)

    def body(h):
        return [_apply(h.data_dir, op) for op in ops], _tree(h.data_dir)

    sim, sim_tree = on_host(body)
    for op, r, s in zip(ops, real, sim, strict=True):
        assert r == s, f"{op}: real {r}, simulated {s}"
    assert sim_tree == real_tree
