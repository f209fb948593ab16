"""seedloop.check: the Rust linearizability checker against a brute-force one, the recorder, eventually."""

from __future__ import annotations

import asyncio
import random
import runpy
from pathlib import Path
from typing import Any

import pytest

import seedloop
from seedloop import check
from seedloop.errors import (
    EventuallyError,
    HistoryError,
    InvalidDelayError,
    InvalidOptionError,
    ModelError,
)

# -- a brute-force checker, written from the definitions alone -----------------------


def _pairs(history: list[dict]) -> list[dict]:
    """Invokes paired with completions; fail left out; no completion = info."""
    open_: dict[Any, int] = {}
    ops: dict[int, dict] = {}
    for i, e in enumerate(history):
        if e["type"] == "invoke":
            open_[e["process"]] = i
            ops[i] = {"f": e["f"], "arg": e["value"], "call": i, "ret": None, "type": "info"}
        else:
            op = ops[open_.pop(e["process"])]
            op["type"] = e["type"]
            if e["type"] == "ok":
                op["ret"], op["out"] = i, e["value"]
    return [op for op in ops.values() if op["type"] != "fail"]


def _freeze(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _spec_step(model: str, state: Any, op: dict) -> tuple[bool, Any]:
    """The sequential specification of each built-in model."""
    known = op["type"] == "ok"
    f, arg, out = op["f"], op["arg"], op.get("out")
    if model in ("register", "cas-register"):
        if f == "write":
            return True, arg
        if f == "read":
            return (not known or out == state), state
        old, new = arg
        return state == old, new
    if model == "kv":
        key = arg[0]
        cur = dict(state).get(key)
        if f == "read":
            return (not known or out[1] == cur), state
        if f == "cas":
            old, new = arg[1]
            if cur != old:
                return False, state
            return True, tuple(sorted({**dict(state), key: new}.items()))
        return True, tuple(sorted({**dict(state), key: arg[1]}.items()))
    if model == "set":
        if f == "add":
            return True, state | {arg}
        return (not known or frozenset(out) == state), state
    if model == "queue":
        if f == "enqueue":
            return True, state + (arg,)
        if not known:
            return True, state[1:]
        if not state:
            return out is None, state
        return state[0] == out, state[1:]
    raise AssertionError(model)


_INIT = {"register": None, "cas-register": None, "kv": (), "set": frozenset(), "queue": ()}


def brute_force(history: list[dict], model: str) -> bool:
    """Every order of the operations that respects real time; an info op anywhere after its
    invoke or nowhere."""
    ops = _pairs(history)

    def go(used: frozenset[int], state: Any) -> bool:
        left = [i for i in range(len(ops)) if i not in used]
        if all(ops[i]["ret"] is None for i in left):
            return True
        first_ret = min(ops[i]["ret"] for i in left if ops[i]["ret"] is not None)
        for i in left:
            if ops[i]["call"] > first_ret:
                continue  # an op that returned before this one was invoked goes first
            ok, nxt = _spec_step(model, state, ops[i])
            if ok and go(used | {i}, nxt):
                return True
        return False

    return go(frozenset(), _INIT[model])


# -- random small histories ------------------------------------------------------------


def _random_op(model: str, rng: random.Random) -> tuple[str, Any]:
    v = rng.randint(1, 3)
    if model == "register":
        return rng.choice([("write", v), ("read", None)])
    if model == "cas-register":
        return rng.choice([("write", v), ("read", None), ("cas", [rng.randint(0, 3) or None, v])])
    if model == "kv":
        k = rng.choice("xy")
        return rng.choice([("write", [k, v]), ("read", [k, None]), ("cas", [k, [rng.choice([None, 1, 2]), v]])])
    if model == "set":
        return rng.choice([("add", v), ("read", None)])
    return rng.choice([("enqueue", v), ("dequeue", None)])


def random_history(model: str, rng: random.Random, n_ops: int, processes: int = 3) -> list[dict]:
    """Clients running against a real object (effect at a random moment inside the call), with
    some outputs corrupted, some ops failed, info or never completed."""
    real = _INIT[model]
    history: list[dict] = []
    busy: dict[int, dict] = {}
    ids = list(range(processes))  # a client that crashes comes back under a new id
    started = 0
    while started < n_ops or busy:
        free = [p for p in ids if p not in busy]
        if free and started < n_ops and (not busy or rng.random() < 0.5):
            p = rng.choice(free)
            f, arg = _random_op(model, rng)
            history.append({"process": p, "type": "invoke", "f": f, "value": arg})
            busy[p] = {"f": f, "arg": arg, "done": False, "out": None}
            started += 1
            continue
        p = rng.choice(sorted(busy))
        op = busy[p]
        if not op["done"] and rng.random() < 0.5:
            # the effect happens now (the linearization point of a correct object)
            ok, nxt = _spec_step(model, real, {"f": op["f"], "arg": op["arg"], "type": "info"})
            if ok:
                real = nxt
                op["out"] = _observe(model, real, op, nxt)
            op["done"], op["applied"] = True, ok
            continue
        del busy[p]
        r = rng.random()
        if r < 0.08:
            ids[ids.index(p)] = max(ids) + 1
            continue  # never completes
        kind = "info" if r < 0.18 else "fail" if r < 0.25 and not op["done"] else "ok"
        if kind == "ok" and not op["done"]:
            ok, nxt = _spec_step(model, real, {"f": op["f"], "arg": op["arg"], "type": "info"})
            if not ok:
                kind = "fail"
            else:
                op["out"] = _observe(model, real, op, nxt)
                real = nxt
        if kind == "ok" and op["done"] and not op.get("applied", True):
            kind = "fail"
        value = op["arg"]
        if kind == "ok" and op["f"] in ("read", "dequeue"):
            value = op["out"]
            if rng.random() < 0.3:  # a bug: a wrong answer
                value = _corrupt(model, op, rng)
        history.append({"process": p, "type": kind, "f": op["f"], "value": value})
    return history


def _observe(model: str, before: Any, op: dict, after: Any) -> Any:
    if op["f"] == "read":
        if model == "kv":
            return [op["arg"][0], dict(after).get(op["arg"][0])]
        if model == "set":
            return sorted(after)
        return after
    if op["f"] == "dequeue":
        return before[0] if before else None
    return op["arg"]


def _corrupt(model: str, op: dict, rng: random.Random) -> Any:
    v = rng.choice([None, 1, 2, 3])
    if model == "kv":
        return [op["arg"][0], v]
    if model == "set":
        return sorted(rng.sample([1, 2, 3], rng.randint(0, 3)))
    return v


@pytest.mark.parametrize("model", ["register", "cas-register", "kv", "set", "queue"])
def test_same_verdict_as_brute_force_on_random_histories(model: str) -> None:
    rng = random.Random(f"check-{model}")
    verdicts = {True: 0, False: 0}
    for i in range(3000):
        history = random_history(model, rng, rng.randint(1, 8))
        expected = brute_force(history, model)
        result = check.linearizable(history, model)
        assert result.ok == expected, f"history {i}: {history}"
        assert bool(result) == expected
        verdicts[expected] += 1
        if not expected:
            _check_counterexample(history, model, result)
    # Both verdicts well represented, or the comparison proves little.
    assert min(verdicts.values()) > 400, verdicts


def _check_counterexample(history: list[dict], model: str, result: check.CheckResult) -> None:
    """The counterexample's prefix is the shortest failing one, and its parts add up."""
    c = result.counterexample
    assert c is not None
    failed: set[int] = set()
    # ops that end in fail are left out before cutting (they surely never happened)
    open_: dict[Any, int] = {}
    for i, e in enumerate(history):
        if e["type"] == "invoke":
            open_[e["process"]] = i
        else:
            j = open_.pop(e["process"])
            if e["type"] == "fail":
                failed |= {i, j}
    upto = [e for i, e in enumerate(history) if i not in failed and i <= c.end]
    before = [e for i, e in enumerate(history) if i not in failed and i < c.end]
    assert not brute_force(upto, model), "the prefix ending at the counterexample linearizes"
    assert brute_force(before, model), "a shorter prefix fails already"
    assert c.op.completed == c.end and c.op.type == "ok"
    assert c.op in c.operations and all(op in c.operations for op in c.linearization)
    assert all(op.invoked <= c.end for op in c.operations)
    assert c.op not in c.linearization
    assert "cannot be placed" in str(c) and str(c.op) in str(c)


def test_info_write_may_take_effect_late_or_never() -> None:
    h = [
        {"process": 0, "type": "invoke", "f": "write", "value": 1},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": None},
        {"process": 0, "type": "info", "f": "write", "value": 1},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": 1},
    ]
    assert check.linearizable(h, "register").ok  # it landed after the first read
    assert check.linearizable(h[:4], "register").ok  # or never
    stale = h + [
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": None},
    ]
    assert not check.linearizable(stale, "register").ok  # but not undone


def test_fail_did_not_happen_and_missing_completion_is_info() -> None:
    h = [
        {"process": 0, "type": "invoke", "f": "write", "value": 1},
        {"process": 0, "type": "fail", "f": "write", "value": 1},
        {"process": 1, "type": "invoke", "f": "read", "value": None},
        {"process": 1, "type": "ok", "f": "read", "value": 1},
    ]
    assert not check.linearizable(h, "register").ok
    h[1] = {"process": 2, "type": "invoke", "f": "write", "value": 1}  # process 0 never completes
    h[0] = {"process": 0, "type": "invoke", "f": "write", "value": 5}
    assert check.linearizable(h, "register").ok


def test_counterexample_reads_well() -> None:
    h = [
        {"process": 0, "type": "invoke", "f": "write", "value": 1, "time": 0.0},
        {"process": 0, "type": "ok", "f": "write", "value": 1, "time": 0.1},
        {"process": 1, "type": "invoke", "f": "write", "value": 2, "time": 0.2},
        {"process": 1, "type": "ok", "f": "write", "value": 2, "time": 0.3},
        {"process": 2, "type": "invoke", "f": "read", "value": None, "time": 0.4},
        {"process": 2, "type": "ok", "f": "read", "value": 1, "time": 0.5},
        {"process": 2, "type": "invoke", "f": "read", "value": None, "time": 0.6},
        {"process": 2, "type": "ok", "f": "read", "value": 1, "time": 0.7},
    ]
    result = check.linearizable(h, "register")
    c = result.counterexample
    assert not result and c is not None
    assert (c.op.process, c.op.f, c.op.value, c.end) == (2, "read", 1, 5)
    assert [op.invoke_value for op in c.linearization] == [1, 2]
    assert c.state == 2 and c.op.time == 0.4 and c.op.end_time == 0.5
    text = str(result)
    assert text.splitlines()[0] == (
        "not linearizable under model 'register': process 2: read -> 1 (entries 4-5)"
    )
    assert "1. process 0: write 1 (entries 0-1)" in text
    assert "2. process 1: write 2 (entries 2-3)" in text
    assert "leaving the state at 2" in text
    assert check.linearizable(h, "register", counterexample=False).counterexample is None


def test_kv_is_checked_key_by_key_and_names_the_key() -> None:
    h = []
    for k in ("a", "b"):
        h += [
            {"process": 0, "type": "invoke", "f": "write", "value": [k, 1]},
            {"process": 0, "type": "ok", "f": "write", "value": [k, 1]},
        ]
    h += [
        {"process": 1, "type": "invoke", "f": "read", "value": ["b", None]},
        {"process": 1, "type": "ok", "f": "read", "value": ["b", None]},
    ]
    result = check.linearizable(h, "kv")
    assert not result.ok and result.counterexample is not None
    assert result.counterexample.key == "b"
    assert result.partitions == 2
    assert "(key 'b')" in str(result)


def test_set_is_not_split_by_element() -> None:
    """Two concurrent reads seeing {1} and {2}: each element alone is fine, the set is not."""
    h = [
        _inv(0, "add", 1), _inv(1, "add", 2), _inv(2, "read"), _inv(3, "read"),
        _ok(2, "read", [1]), _ok(3, "read", [2]), _ok(0, "add", 1), _ok(1, "add", 2),
    ]
    assert not brute_force(h, "set")
    result = check.linearizable(h, "set")
    assert not result.ok and result.partitions == 1


def test_set_counterexample_names_what_the_read_missed() -> None:
    h = [_inv(0, "add", "b"), _ok(0, "add", "b"), _inv(0, "add", "a"), _ok(0, "add", "a"),
         _inv(1, "read"), _ok(1, "read", ["b", "c"])]
    c = check.linearizable(h, "set").counterexample
    assert c is not None and c.state == ["a", "b"]
    assert "(the read, against that state: missing ['a'], unexpected ['c'])" in str(c)


# -- user models in Python -------------------------------------------------------------


class PyRegister:
    """The register again, in Python, with a partition that never splits it."""

    def __init__(self) -> None:
        self.steps = 0

    def init(self) -> Any:
        return None

    def step(self, state: Any, op: check.Operation) -> tuple[bool, Any]:
        self.steps += 1
        if op.f == "write":
            return True, op.value
        return (op.unknown or op.value == state), state


class PyKV:
    """A kv whose state is a dict (unhashable: compared by ==), split by key."""

    def init(self) -> dict:
        return {}

    def step(self, state: dict, op: check.Operation) -> tuple[bool, dict]:
        key = op.invoke_value[0]
        if op.f == "write":
            return True, {**state, key: op.invoke_value[1]}
        if op.f == "cas":
            old, new = op.invoke_value[1]
            return (state.get(key) == old), {**state, key: new}
        return (op.unknown or op.value[1] == state.get(key)), state

    def partition(self, ops: list[check.Operation]) -> list[list[check.Operation]]:
        parts: dict[Any, list[check.Operation]] = {}
        for op in ops:
            parts.setdefault(op.invoke_value[0], []).append(op)
        return list(parts.values())


@pytest.mark.parametrize(("builtin", "user"), [("register", PyRegister), ("kv", PyKV)])
def test_python_model_agrees_with_brute_force(builtin: str, user: type) -> None:
    rng = random.Random(f"python-{builtin}")
    for i in range(400):
        history = random_history(builtin, rng, rng.randint(1, 6))
        expected = brute_force(history, builtin)
        result = check.linearizable(history, user())
        assert result.ok == expected, f"history {i}: {history}"
        if not expected:
            assert result.counterexample is not None
            assert result.counterexample.model == user.__name__


def test_python_model_counterexample_shows_its_state() -> None:
    h = [
        {"process": 0, "type": "invoke", "f": "write", "value": ["k", 7]},
        {"process": 0, "type": "ok", "f": "write", "value": ["k", 7]},
        {"process": 0, "type": "invoke", "f": "read", "value": ["k", None]},
        {"process": 0, "type": "ok", "f": "read", "value": ["k", 8]},
    ]
    c = check.linearizable(h, PyKV()).counterexample
    assert c is not None and c.state == {"k": 7}
    assert "leaving the state at {'k': 7}" in str(c)


def test_bad_models_are_typed_errors() -> None:
    h = [{"process": 0, "type": "invoke", "f": "write", "value": 1}]
    with pytest.raises(ModelError, match="unknown model 'regsiter'"):
        check.linearizable(h, "regsiter")
    with pytest.raises(ModelError, match="init\\(\\) and"):
        check.linearizable(h, object())

    class Bad(PyRegister):
        def step(self, state: Any, op: check.Operation) -> Any:
            return True

    h.append({"process": 0, "type": "ok", "f": "write", "value": 1})
    with pytest.raises(ModelError, match=r"Bad.step\(state, op\) must return \(ok, new_state\)"):
        check.linearizable(h, Bad())


# -- malformed histories --------------------------------------------------------------


def _inv(p: Any, f: str, v: Any = None) -> dict:
    return {"process": p, "type": "invoke", "f": f, "value": v}


def _ok(p: Any, f: str, v: Any = None) -> dict:
    return {"process": p, "type": "ok", "f": f, "value": v}


@pytest.mark.parametrize(
    ("history", "model", "message"),
    [
        (5, "register", "a history is a list of operation dicts"),
        ([_inv(0, "write", 1), "oops"], "register", "entry 1 is a str, not a dict"),
        ([{"type": "invoke", "f": "read"}], "register", "entry 0 has no 'process'"),
        ([{**_inv(0, "read"), "type": "done"}], "register", "entry 0: type 'done' is not one of"),
        ([_ok(0, "read")], "register", "entry 0: process 0 completes \\(ok\\) with no operation"),
        ([_inv(0, "read"), _inv(0, "write", 1)], "register",
         "entry 1: process 0 invokes 'write' while its 'read' from entry 0"),
        ([_inv(0, "read"), _ok(0, "write", 1)], "register",
         "entry 1: process 0 completes 'write' but invoked 'read' at entry 0"),
        ([_inv(0, "cas", [1, 2]), _ok(0, "cas", [1, 2])], "register",
         "entry 0: model 'register' has no operation 'cas'.*use 'cas-register'"),
        ([_inv(0, "cas", 3), _ok(0, "cas", 3)], "cas-register", "entry 0: a cas value is \\[old, new\\]"),
        ([_inv(0, "write", 3), _ok(0, "write", 3)], "kv", "entry 0: a kv operation's value is \\[key, value\\]"),
        ([_inv(0, "read", ["a", None]), _ok(0, "read", ["b", 1])], "kv",
         "entry 1: a read of key 'a' completed with key 'b'"),
        ([_inv(0, "read"), _ok(0, "read", 3)], "set", "entry 1: a set read's ok value is the whole set"),
        ([_inv([0], "read")], "register", "entry 0: process \\[0\\] is unhashable"),
    ],
)
def test_malformed_histories_name_the_entry(history: Any, model: str, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        check.linearizable(history, model)


def test_history_error_is_a_seedloop_value_error() -> None:
    assert issubclass(HistoryError, seedloop.SeedloopError) and issubclass(HistoryError, ValueError)
    assert issubclass(EventuallyError, AssertionError)


# -- recording inside a run -------------------------------------------------------------


def test_history_records_ops_with_virtual_time() -> None:
    async def scenario() -> check.History:
        h = check.History(definite=(KeyError,))
        register: list[Any] = [None]

        async def writer(p: int, v: int) -> None:
            async with h.op(p, "write", v):
                await asyncio.sleep(0.5)
                register[0] = v

        async def reader(p: int) -> None:
            async with h.op(p, "read") as op:
                await asyncio.sleep(0.2)
                op.ok(register[0])

        async def crasher(p: int) -> None:
            with h.op(p, "write", 9):
                raise ConnectionError("lost")

        async def refused(p: int) -> None:
            async with h.op(p, "write", 8):
                raise KeyError("no")

        await asyncio.gather(writer(0, 1), reader(1))
        for task in (crasher(2), refused(3)):
            with pytest.raises((ConnectionError, KeyError)):
                await task
        await reader(1)
        h.invoke(4, "write", 5)
        h.info(4)
        return h

    h = seedloop.run(scenario, 1)
    entries = h.to_jepsen()
    assert [(e["process"], e["type"], e["f"], e["value"]) for e in entries] == [
        (0, "invoke", "write", 1), (1, "invoke", "read", None), (1, "ok", "read", None),
        (0, "ok", "write", 1), (2, "invoke", "write", 9), (2, "info", "write", 9),
        (3, "invoke", "write", 8), (3, "fail", "write", 8),
        (1, "invoke", "read", None), (1, "ok", "read", 1),
        (4, "invoke", "write", 5), (4, "info", "write", 5),
    ]
    assert [e["time"] for e in entries[:4]] == [0.0, 0.0, 0.2, 0.5]
    assert check.linearizable(h, "register").ok
    assert '"type": "invoke"' in h.to_json()
    assert h.to_edn().splitlines()[0] == "{:process 0, :type :invoke, :f :write, :value 1, :time 0.0}"


def test_history_misuse_is_a_history_error() -> None:
    h = check.History()
    with pytest.raises(HistoryError, match="process 0 has no operation in flight"):
        h.ok(0)
    h.invoke(0, "read")
    with pytest.raises(HistoryError, match="process 0 still has 'read' in flight"):
        h.invoke(0, "write", 1)
    rec = h.op(1, "write", 2)
    with rec:
        rec.ok()
        with pytest.raises(HistoryError, match="already recorded as complete"):
            rec.fail()


# -- eventually -------------------------------------------------------------------------


def test_eventually_waits_in_virtual_time() -> None:
    async def scenario() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        state = {"up": False}
        loop.call_later(2.9, lambda: state.update(up=True))

        async def up() -> bool:
            return state["up"]

        got = await seedloop.eventually(up, within=10, interval=0.5)
        return got, loop.time()

    assert seedloop.run(scenario, 0) == (True, 3.0)


def test_eventually_says_how_long_it_waited() -> None:
    async def scenario() -> None:
        calls = []

        def never() -> bool:
            calls.append(1)
            if len(calls) % 2:
                raise ConnectionRefusedError("down")
            return False

        await seedloop.eventually(never, within=2, interval=0.5, ignore=(OSError,))

    with pytest.raises(EventuallyError, match=r"eventually\(.*never\): still not true after 2 s "
                       r"of loop time \(5 checks, every 0.5 s; last raised ConnectionRefused"):
        seedloop.run(scenario, 0)


def test_eventually_rejects_bad_durations() -> None:
    async def scenario() -> None:
        await seedloop.eventually(lambda: True, within=-1)

    with pytest.raises(InvalidDelayError, match="within must be positive"):
        seedloop.run(scenario, 0)


# -- the example: a stale read found by the checker, not by an assert ---------------------

EXAMPLE = runpy.run_path(str(Path(__file__).resolve().parent.parent / "examples" / "kv_linearizable.py"))


def test_example_search_finds_the_stale_read() -> None:
    failure = seedloop.find_failing_seed(EXAMPLE["buggy"], range(20), explain=False, shrink=False)
    assert failure is not None
    message = str(failure.exception)
    assert message.startswith("not linearizable under model 'register': process 'c")
    assert "cannot be placed" in message and "read -> " in message


def test_example_fixed_version_passes_many_seeds() -> None:
    assert seedloop.find_failing_seed(EXAMPLE["fixed"], range(60), explain=False) is None


# -- the benchmark's Python search and history generator ---------------------------------

BENCH = runpy.run_path(str(Path(__file__).resolve().parent.parent / "bench" / "check_bench.py"))


def test_bench_python_search_agrees_with_brute_force() -> None:
    rng = random.Random("bench")
    for i in range(600):
        history = random_history("register", rng, rng.randint(1, 7))
        expected = brute_force(history, "register")
        assert BENCH["python_wgl"](history) == expected, f"history {i}: {history}"
        assert BENCH["python_wgl"](history, True) == expected, f"history {i}: {history}"


def test_bench_histories_are_what_they_claim() -> None:
    good = BENCH["register_history"](10, 1500)
    assert len(good) == 3000 and check.linearizable(good, "register").ok
    bad = BENCH["stale_variant"](good)
    result = check.linearizable(bad, "register")
    assert not result.ok and result.counterexample is not None
    assert result.counterexample.end >= 0.9 * len(bad) - 100


def test_a_budget_makes_a_long_search_undecided_not_wrong() -> None:
    good = BENCH["register_history"](10, 1500)
    result = check.linearizable(good, "register", budget=50)
    assert (result.ok, result.unknown, bool(result)) == (False, True, False)
    assert result.counterexample is None
    assert str(result).startswith("undecided under model 'register': the search explored 50 configurations")
    assert check.linearizable(good, "register", budget=10**9).ok
    assert check.linearizable(good[:400], PyRegister(), budget=5).unknown
    # A part that fails is a failure, whatever another part's budget did.
    h = [_inv(0, "read", ["k", None]), _ok(0, "read", ["k", 1])]
    assert not check.linearizable(h, "kv", budget=1).unknown
    for bad in (0, -1, 1.5, True, "10"):
        with pytest.raises(InvalidOptionError, match="budget must be a positive int"):
            check.linearizable(h, "kv", budget=bad)
