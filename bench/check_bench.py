"""Linearizability checking speed: seedloop.check (Rust) against the same search in plain Python.

The history comes from a real linearizable execution: 10 clients run
reads and writes on one register, each operation taking effect at a random
moment between its invoke and its completion (so many overlap). The
non-linearizable variant changes one late read to return a value
overwritten long before (a stale read).

    python bench/check_bench.py                 # 10 clients, 10,000 operations
    python bench/check_bench.py --ops 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from typing import Any

from seedloop import check


def register_history(clients: int, ops: int, seed: int = 1) -> list[dict[str, Any]]:
    """Jepsen entries of a linearizable run: each op's effect at a random point inside it."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str, dict[str, Any]]] = []
    effects: list[tuple[float, int]] = []  # (linearization time, op number)
    specs: list[dict[str, Any]] = []
    clock = [rng.random() for _ in range(clients)]
    for n in range(ops):
        c = min(range(clients), key=lambda i: clock[i])
        start = clock[c]
        length = rng.uniform(0.5, 3.0)
        point = start + rng.uniform(0.0, length)
        f = "write" if rng.random() < 0.5 else "read"
        specs.append({"process": c, "f": f, "value": n if f == "write" else None})
        events.append((start, 0, "invoke", {"n": n}))
        events.append((start + length, 1, "ok", {"n": n}))
        effects.append((point, n))
        clock[c] = start + length + rng.uniform(0.0, 0.5)
    # Apply the effects in time order to a real register: what each read saw.
    value = None
    seen: dict[int, Any] = {}
    for _, n in sorted(effects):
        if specs[n]["f"] == "write":
            value = specs[n]["value"]
        else:
            seen[n] = value
    history = []
    for _, _, kind, data in sorted(events, key=lambda e: (e[0], e[1])):
        n = data["n"]
        spec = specs[n]
        out = seen[n] if kind == "ok" and spec["f"] == "read" else spec["value"]
        history.append({"process": spec["process"], "type": kind, "f": spec["f"], "value": out})
    return history


def stale_variant(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One read at 90% of the history returns the first value ever written."""
    bad = [dict(e) for e in history]
    first = next(e["value"] for e in bad if e["f"] == "write" and e["type"] == "ok")
    for i in range(int(len(bad) * 0.9), len(bad)):
        e = bad[i]
        if e["f"] == "read" and e["type"] == "ok" and e["value"] != first:
            e["value"] = first
            return bad
    raise SystemExit("no read to corrupt")


def python_wgl(history: list[dict[str, Any]], reads_first: bool = False) -> bool:
    """A straightforward Python Wing-Gong/Lowe search with Lowe's cache (register only).

    ``reads_first``: also the Rust checker's rule, a read that can be placed
    now is placed with no alternative tried.
    """
    ops = check.parse(history)
    # entries: [time, is_return, op index]; a doubly linked list over them
    events = sorted(
        [(op.invoked, 0, i) for i, op in enumerate(ops)]
        + [(op.completed, 1, i) for i, op in enumerate(ops) if not op.unknown]
    )
    n = len(events) + 1
    prev, nxt = list(range(-1, n - 1)), list(range(1, n + 1))
    nxt[n - 1] = -1
    node_op, is_call = [-1] + [e[2] for e in events], [False] + [e[1] == 0 for e in events]
    ret_node = [-1] * len(ops)
    for k, (_, is_ret, i) in enumerate(events, 1):
        if is_ret:
            ret_node[i] = k
    call_node = {}
    for k, (_, is_ret, i) in enumerate(events, 1):
        if not is_ret:
            call_node[i] = k

    def unlink(k: int) -> None:
        nxt[prev[k]] = nxt[k]
        if nxt[k] != -1:
            prev[nxt[k]] = prev[k]

    def relink(k: int) -> None:
        nxt[prev[k]] = k
        if nxt[k] != -1:
            prev[nxt[k]] = k

    remaining = sum(1 for op in ops if not op.unknown)
    state: Any = None
    placed = 0  # a Python int as the bitset
    seen: set[tuple[int, Any]] = set()
    stack: list[tuple[int, Any, bool]] = []
    entry = nxt[0]
    fresh = True
    while remaining:
        forced = False
        if fresh and reads_first:
            fresh = False
            e = nxt[0]
            while e != -1 and is_call[e]:
                op = ops[node_op[e]]
                if op.f == "read" and op.value == state:
                    entry, forced = e, True
                    break
                e = nxt[e]
        if entry == -1 or not is_call[entry]:
            if not stack:
                return False
            k, state, was_forced = stack.pop()
            i = node_op[k]
            placed &= ~(1 << i)
            remaining += not ops[i].unknown
            if ret_node[i] != -1:
                relink(ret_node[i])
            relink(k)
            entry = -1 if was_forced else nxt[k]
            continue
        i = node_op[entry]
        op = ops[i]
        if op.f == "write":
            ok, new = True, op.value
        else:
            ok, new = op.unknown or op.value == state, state
        if ok and (placed | (1 << i), new) not in seen:
            seen.add((placed | (1 << i), new))
            stack.append((entry, state, forced))
            state, placed = new, placed | (1 << i)
            remaining -= not op.unknown
            unlink(entry)
            if ret_node[i] != -1:
                unlink(ret_node[i])
            entry = nxt[0]
            fresh = True
            continue
        if forced:
            entry = -1
            continue
        entry = nxt[entry]
    return True


def best(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """(best wall time, best CPU time of this process, result): on a shared machine the
    CPU time is the steadier figure."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--python-repeat", type=int, default=1)
    args = parser.parse_args()
    good = register_history(args.clients, args.ops)
    bad = stale_variant(good)
    print(
        f"Python {platform.python_version()} on {platform.machine()}; {args.clients} clients, "
        f"{args.ops:,} operations ({len(good):,} entries); min of {args.repeat} runs "
        f"(Python search: {args.python_repeat})"
    )
    rows = [
        ("linearizable", "seedloop.check (Rust)", lambda: check.linearizable(good, "register").ok, args.repeat),
        ("linearizable", "Python WGL", lambda: python_wgl(good), args.python_repeat),
        ("linearizable", "Python WGL, reads first", lambda: python_wgl(good, True), args.python_repeat),
        ("stale read", "seedloop.check (Rust), verdict only",
         lambda: check.linearizable(bad, "register", counterexample=False).ok, args.repeat),
        ("stale read", "seedloop.check (Rust) + counterexample",
         lambda: check.linearizable(bad, "register").ok, args.repeat),
        ("stale read", "Python WGL", lambda: python_wgl(bad), args.python_repeat),
        ("stale read", "Python WGL, reads first", lambda: python_wgl(bad, True), args.python_repeat),
    ]
    print("| history | checker | verdict | best wall time | best CPU time |")
    print("|---|---|---|---:|---:|")
    for history, name, fn, repeat in rows:
        wall, cpu, verdict = best(fn, repeat)
        print(
            f"| {history} | {name} | {'ok' if verdict else 'not linearizable'} "
            f"| {wall * 1000:,.1f} ms | {cpu * 1000:,.1f} ms |"
        )
        sys.stdout.flush()
    c = check.linearizable(bad, "register").counterexample
    assert c is not None
    print(f"\ncounterexample: {c.op} after {len(c.linearization)} placed operations")


if __name__ == "__main__":
    main()
