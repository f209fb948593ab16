"""A failure's timeline: timers, cancellations, wake-ups, connections; drawn and exported."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import pytest

import seedloop
from seedloop import net
from seedloop._html import CALLBACK_COLOUR, LANE_COLOURS, render_report
from seedloop._investigate import compare_runs, same_outcome
from seedloop._loop import SeedTask
from seedloop._result import RunResult
from seedloop._trace_export import REQUIRED_KEYS, trace_events

pytest_plugins = ["pytester"]

# -- redis-py 4.5.1's cancellation race (CVE-2023-28858), on seedloop.net ------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cancelled_reply.py"
_spec = importlib.util.spec_from_file_location("cancelled_reply", EXAMPLE)
assert _spec is not None and _spec.loader is not None
cancelled_reply = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cancelled_reply)
pool_race = cancelled_reply.pool_race
READLINE = next(
    n
    for n, line in enumerate(EXAMPLE.read_text().splitlines(), 1)
    if "return (await reader.readline())" in line
)


@pytest.fixture(scope="module")
def pool_failure() -> seedloop.Failure:
    failure = seedloop.find_failing_seed(pool_race, range(50))
    assert failure is not None
    return failure


def test_the_timeline_shows_the_cancellation_and_which_connection_each_command_used(
    pool_failure: seedloop.Failure,
) -> None:
    text = pool_failure.timeline
    assert text is not None
    # The timer that decided it: wait_for's timeout (3.12+: wait_for is
    # asyncio.timeout, inside the user's own task), then who cancelled whom,
    # and the line of the cancelled command where the CancelledError landed.
    timer = r"(wait_for\(\) timeout|asyncio\.timeout\(\) deadline) armed by #\d+ user"
    assert re.search(r"timer +" + timer, text), text
    cancel = re.search(
        r"- (#\d+ user|a callback \(" + timer + r"\)) cancels (#\d+ (?:command|user))"
        + r"( at cancelled_reply.py:\d+)?\n",
        text,
    )
    assert cancel, text
    cancelled_label = cancel.group(3)
    landed = f"CancelledError lands in {cancelled_label} at cancelled_reply.py:{READLINE} command()"
    assert landed in text
    # Connections by identity, and the pool's queue waking the next command.
    assert "conn 1: app 10.0.0.2:" in text and "conn 2: app 10.0.0.2:" in text
    assert re.search(r"woken by #\d+ (command|user) at step \d+: Queue 1 get\(\)", text)
    rec = pool_failure.recording
    assert rec is not None
    sends = defaultdict(list)
    for event in rec.events:
        if event.kind == "send" and event.task:
            sends[event.task].append(event.conn)
    lanes = {lane.label: lane.ordinal for lane in rec.lanes if lane.ordinal}
    cancelled = lanes[cancelled_label]
    # The command that read the stale reply used the cancelled command's connection.
    woken = re.search(rf"(#\d+) (command|user) +resumes .*\n.*woken by {cancelled_label} ", text)
    assert woken, text
    victim = next(o for label, o in lanes.items() if label.startswith(woken.group(1) + " "))
    assert sends[victim] == sends[cancelled] and len(sends[cancelled]) == 1
    # The stale reply: delivered on that connection after the cancellation.
    assert any(
        e.kind == "recv" and e.conn == sends[cancelled][0] and e.to_step is not None
        and rec.step_at(e.to_step).task == victim
        for e in rec.events
    )
    assert "=> AssertionError: user " in text


def test_recording_costs_nothing_outside_a_replay(pool_failure: seedloop.Failure) -> None:
    # The cancel tap is removed once the timeline is recorded, and a search's
    # runs have no network tap.
    assert SeedTask.cancel is asyncio.Task.cancel

    async def probe() -> object:
        return net.current()._tap

    assert seedloop.run(probe, seed=0) is None


async def order_race() -> None:
    order: list[int] = []

    async def worker(i: int) -> None:
        await asyncio.sleep(0)
        order.append(i)

    await asyncio.gather(*(worker(i) for i in range(4)))
    assert order[0] != 0, f"order {order}"


def test_the_report_says_whether_the_timelines_run_failed_as_the_seed_found() -> None:
    seen = set()
    for seed in range(40):
        failure = seedloop.find_failing_seed(order_race, [seed], strategy="shuffle")
        if failure is None:
            continue
        assert failure.recording is not None and failure.recording.source == "the shrunk schedule"
        replayed = failure.recording.exception
        if replayed == f"AssertionError: {failure.exception}":
            assert "same exception type and message" in failure.timeline_outcome
            seen.add("same")
        else:
            # The shrunk run failed with another message: the seed's own is quoted.
            assert "ended differently from the seed found" in failure.timeline_outcome
            assert f"the seed's run raised AssertionError: {failure.exception}" in (
                failure.timeline_outcome
            )
            assert failure.timeline_outcome in failure.report()
            assert repr(failure.timeline_outcome)[1:-1] in repr(failure)
            page = render_report(target="order_race", failure=failure)
            assert "ended differently from the seed found" in page
            seen.add("different")
        if seen == {"same", "different"}:
            break
    assert seen == {"same", "different"}


def test_compare_runs_masks_addresses_and_names_both_exceptions() -> None:
    a, b = KeyError("<obj at 0x7f00>"), KeyError("<obj at 0x7f99>")
    assert same_outcome(a, b) and not same_outcome(a, ValueError("<obj at 0x7f00>"))
    result = RunResult(0, "fifo", None, ValueError("x"), "", [], 0, 0.0)  # type: ignore[arg-type]
    text = compare_runs("the shrunk schedule", KeyError("y"), result)
    assert "raised ValueError: x" in text and "raised KeyError: 'y'" in text


# -- Chrome trace-event export -------------------------------------------------


def check_trace_format(data: dict) -> list[dict]:
    """The Trace Event Format's rules the export relies on; returns the events."""
    assert isinstance(data, dict) and isinstance(data["traceEvents"], list)
    assert data.get("displayTimeUnit") in (None, "ms", "ns")
    events = data["traceEvents"]
    last_ts: dict[tuple[int, int], float] = {}
    ends: dict[tuple[int, int], float] = {}
    flows: dict[int, dict[str, dict]] = defaultdict(dict)
    named_threads = {(e["pid"], e["tid"]) for e in events
                     if e["ph"] == "M" and e["name"] == "thread_name"}
    for event in events:
        ph = event["ph"]
        assert ph in REQUIRED_KEYS, event
        for key in REQUIRED_KEYS[ph]:
            assert key in event, (key, event)
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if ph == "M":
            assert event["name"] in (
                "process_name", "thread_name", "process_sort_index", "thread_sort_index"
            )
            continue
        assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0
        where = (event["pid"], event["tid"])
        assert where in named_threads, event
        # Timestamps never go back on a thread, and its slices do not overlap.
        assert event["ts"] >= last_ts.get(where, 0), event
        last_ts[where] = event["ts"]
        if ph == "X":
            assert event["dur"] > 0 and event["ts"] >= ends.get(where, 0)
            ends[where] = event["ts"] + event["dur"]
        if ph == "i":
            assert event["s"] in ("g", "p", "t")
        if ph in ("s", "f"):
            assert ph not in flows[event["id"]], "flow ids are unique per pair"
            flows[event["id"]][ph] = event
        if ph == "f":
            assert event["bp"] == "e"
    for pair in flows.values():
        assert set(pair) == {"s", "f"}, pair
        assert pair["s"]["ts"] <= pair["f"]["ts"]
        assert pair["s"]["cat"] == pair["f"]["cat"]
    return events


def test_save_trace_writes_the_trace_event_format(
    pool_failure: seedloop.Failure, tmp_path: Path
) -> None:
    path = tmp_path / "pool.json"
    pool_failure.save_trace(path)
    data = json.loads(path.read_text())
    events = check_trace_format(data)
    processes = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert {"host redis", "host app"} <= processes
    threads = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert any(t.endswith(" user") for t in threads) and "callbacks on app" in threads
    slices = [e for e in events if e["ph"] == "X"]
    assert len(slices) == len(pool_failure.recording.steps)
    assert any(f"cancelled_reply.py:{READLINE}" in e["name"] for e in slices)
    assert any(e["name"].startswith("cancel:") for e in events if e["ph"] == "i")
    assert any(e["name"].startswith("cancelled:") for e in events if e["ph"] == "i")
    assert any(e["name"].startswith("timer:") for e in events if e["ph"] in "iX")
    flows = [e for e in events if e["ph"] == "s" and e["cat"] == "net"]
    assert flows
    # Wake-ups by a task (the queue handing the connection on) are flows too.
    assert any(e["ph"] == "s" and e["cat"] == "wake" for e in events)
    # A flow runs from a task's send to the task step that read the bytes.
    finish = {e["id"]: e for e in events if e["ph"] == "f"}
    assert any(finish[e["id"]]["pid"] != e["pid"] for e in flows)  # across hosts
    assert data["otherData"]["exception"].startswith("AssertionError: user ")


def test_the_trace_checker_catches_broken_traces() -> None:
    good = {"traceEvents": [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "a"}},
        {"name": "x", "ph": "X", "ts": 5, "dur": 1, "pid": 1, "tid": 1},
        {"name": "s", "ph": "s", "ts": 5, "pid": 1, "tid": 1, "id": 1, "cat": "net"},
        {"name": "s", "ph": "f", "bp": "e", "ts": 6, "pid": 1, "tid": 1, "id": 1, "cat": "net"},
    ]}
    check_trace_format(good)
    for broken in (
        [{"name": "y", "ph": "X", "ts": 4, "dur": 1, "pid": 1, "tid": 1}],  # time goes back
        [{"name": "s", "ph": "s", "ts": 7, "pid": 1, "tid": 1, "id": 2, "cat": "net"}],  # unpaired
        [{"name": "z", "ph": "X", "ts": 9, "pid": 1, "tid": 1}],  # no dur
    ):
        with pytest.raises(AssertionError):
            check_trace_format({"traceEvents": good["traceEvents"] + broken})


def test_save_trace_needs_a_recorded_timeline() -> None:
    failure = seedloop.find_failing_seed(order_race, range(20), strategy="shuffle", explain=False)
    assert failure is not None and failure.recording is None
    with pytest.raises(seedloop.NoRecordingError, match="explain=True"):
        failure.save_trace("unused.json")


async def ready_race() -> None:
    state = {"ready": False}

    async def producer() -> None:
        await asyncio.sleep(0)
        state["ready"] = True

    async def consumer() -> None:
        await asyncio.sleep(0)
        assert state["ready"], "consumer ran before producer was ready"

    await asyncio.gather(producer(), consumer())


def test_trace_of_a_run_without_network_is_one_process(tmp_path: Path) -> None:
    failure = seedloop.find_failing_seed(ready_race, range(50))
    data = trace_events(failure.recording)
    events = check_trace_format(data)
    assert {e["pid"] for e in events} == {1}
    assert any(e.get("cat") == "reordered" for e in events)  # the decisive reordering


def test_pytest_option_writes_one_trace_per_failing_test(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(
        test_two="""
import asyncio, pytest

async def race():
    order = []
    async def w(i):
        await asyncio.sleep(0)
        order.append(i)
    await asyncio.gather(w(0), w(1))
    assert order == [0, 1], order

@pytest.mark.seedloop(seeds=range(50))
async def test_a():
    await race()

@pytest.mark.seedloop(seeds=range(50))
async def test_b():
    await race()

@pytest.mark.seedloop(seeds=range(5))
async def test_passes():
    await asyncio.sleep(0)
"""
    )
    out_dir = tmp_path / "traces"
    result = pytester.runpytest(
        "-p", "no:asyncio", "-p", "no:xdist", "-p", "no:cacheprovider",
        f"--seedloop-trace={out_dir}",
    )
    result.assert_outcomes(failed=2, passed=1)
    files = sorted(os.listdir(out_dir))
    assert files == ["test_two.py__test_a.trace.json", "test_two.py__test_b.trace.json"]
    for name in files:
        check_trace_format(json.loads((out_dir / name).read_text()))
    assert f"trace:       {out_dir / files[0]}" in result.stdout.str()


# -- the HTML drawing ----------------------------------------------------------


def test_the_svg_has_a_lane_per_task_grouped_by_host(pool_failure: seedloop.Failure) -> None:
    page = render_report(target="pool_race", failure=pool_failure)
    rec = pool_failure.recording
    tasks = [lane for lane in rec.lanes if lane.ordinal]
    assert page.count('<g class="lane"') == len(rec.lanes) > len(tasks)
    assert 'class="host-label">host redis<' in page and 'class="host-label">host app<' in page
    assert page.count('class="message"') >= 2  # network arrows
    assert 'class="cancel"' in page and 'class="cancelled"' in page
    assert 'class="wake"' in page  # the cancelled command's finally woke the next one
    assert "step timer" in page
    for step in rec.steps:
        if step.task:
            assert f'href="#step-{step.step}"' in page and f'id="step-{step.step}"' in page
    assert f"cancelled_reply.py:{READLINE}" in page
    # Self-contained: nothing is fetched.
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "<link" not in page and "@import" not in page


async def evil_names() -> None:
    async def job() -> None:
        await asyncio.sleep(0)
        raise ValueError("<img src=x onerror=alert(1)>")

    await asyncio.create_task(job(), name="<script>alert('lane')</script>")


def test_every_user_string_in_the_drawing_is_escaped() -> None:
    failure = seedloop.find_failing_seed(evil_names, range(3))
    page = render_report(target="<b>t</b>", failure=failure)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;lane&#x27;)&lt;/script&gt;" in page


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(
            v for k, v in enumerate(line) if k % 4 != 3))
        prev = line
    return width, height, rows


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
    "google-chrome"
)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless Chromium on this machine (apt-get install chromium)",
)
def test_the_report_renders_in_headless_chromium(
    pool_failure: seedloop.Failure, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(target="pool_race", failure=pool_failure), encoding="utf-8")
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}"]
    run = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
         "--window-size=1000,1100", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert shot.exists(), run.stderr
    # The page logs nothing: no script error, no failed load.
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    lanes = len(pool_failure.recording.lanes)
    # The browser built every lane and step of the drawing.
    assert dom.count('<g class="lane"') == lanes
    assert len(re.findall(r'<a href="#step-\d+" class="step', dom)) == len(
        pool_failure.recording.steps
    )
    # The screenshot shows the lanes: each task colour and the callbacks' grey.
    _, _, rows = _png_pixels(shot.read_bytes())
    pixels = set()
    for row in rows:
        pixels.update(row[i : i + 3] for i in range(0, len(row), 3))
    wanted = {bytes.fromhex(c[1:]) for c in (CALLBACK_COLOUR, *LANE_COLOURS[:4])}
    assert wanted <= pixels, sorted(c.hex() for c in wanted - pixels)


OLD_REDIS = os.environ.get("SEEDLOOP_REDIS_451")


@pytest.mark.skipif(
    not OLD_REDIS,
    reason="redis-py 4.5.1 is not at hand: pip install --target DIR redis==4.5.1 and set "
    "SEEDLOOP_REDIS_451=DIR (the suite's own redis is a fixed version)",
)
def test_redis_py_451_cancellation_race_is_explained() -> None:
    # A subprocess: the suite imports a fixed redis itself.
    here = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(OLD_REDIS), str(here.parent / "python"), os.environ.get("PYTHONPATH", "")]
    ))
    out = subprocess.run(
        [sys.executable, str(here / "redis_cve_scenario.py")],
        capture_output=True, text=True, timeout=300, env=env, cwd=here,
    )
    text = out.stdout
    assert "fails with AssertionError: GET bar returned b'foo'" in text, out.stderr[-3000:]
    # The cancellation, where it landed inside redis-py, and the one connection.
    assert re.search(r"- #\d+ client cancels #\d+ execute_command at redis_cve_scenario.py:\d+",
                     text), text
    assert re.search(r"CancelledError lands in #\d+ execute_command at connection.py:\d+", text)
    assert "conn 1: app 10.0.0.2:" in text and "conn 2" not in text
    assert "same exception type and message" in text


async def cut_off() -> None:
    n = net.current()
    server, client = n.host("server"), n.host("client")

    async def serve() -> None:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            while data := await r.read(100):
                w.write(data)
        srv = await asyncio.start_server(echo, None, 7000)
        await srv.serve_forever()

    server.spawn(serve())

    async def ask() -> bytes:
        r, w = await asyncio.open_connection("server", 7000)
        n.partition(server, client)
        w.write(b"ping")
        await asyncio.sleep(1)
        n.heal()
        reply = await r.read(4)
        n.crash(server)
        await r.read(4)
        return reply

    await client.spawn(ask())
    raise AssertionError("the client should have seen the reset")


def test_partitions_heals_crashes_and_resets_are_in_the_timeline() -> None:
    failure = seedloop.find_failing_seed(cut_off, range(3))
    assert failure is not None
    text = failure.timeline
    assert "- partition: server <-> client" in text
    assert "- heal: every partition" in text
    assert "- host server crashes" in text
    assert re.search(r"conn 1: client gets a reset", text), text
    kinds = {e.kind for e in failure.recording.events}
    assert {"partition", "heal", "crash", "reset", "send", "recv", "accept"} <= kinds
