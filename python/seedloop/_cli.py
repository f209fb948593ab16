"""The ``seedloop`` command line: explore a seed range (or every schedule within a bound), replay one.

    seedloop explore examples/lost_update.py:buggy --seeds 0:100000 --strategy pct --jobs 4
    seedloop explore examples/demo.py:scenario --fail-if 'result == "MISSED"'
    seedloop explore examples/lost_update.py:buggy --strategy systematic --bound 2
    seedloop replay examples/lost_update.py:buggy --seed 49 --html report.html
    seedloop replay examples/lost_update.py:buggy --seed 0 --tape 0,1,0,2

Exit status: 0 when every seed passed, 1 when a failing seed was found (or
the replayed seed fails), 2 for a usage error.
"""

from __future__ import annotations

import ast
import asyncio
import bdb
import json
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

try:
    import click
    from rich.console import Console
    from rich.panel import Panel
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table
    from rich.text import Text
except ImportError as exc:  # pragma: no cover - the package declares both
    raise SystemExit(
        f"the seedloop command needs 'click' and 'rich' ({exc}); pip install click rich"
    ) from None

from ._database import Key, database_at, explore_saved_first
from ._guided import GUIDED
from ._html import render_report
from ._investigate import record_timeline
from ._options import (
    DB_DEFAULT_DIR,
    DB_ENV_VAR,
    DEFAULT_BOUND,
    DEFAULT_MAX_RUNS,
    DEFAULT_STRATEGY,
    STRATEGIES,
    SYSTEMATIC,
    RunOptions,
    parse_seeds,
    parse_shard,
)
from ._parallel import describe_exit, resolve_factory
from ._result import Exploration
from ._run import calibrate, execute
from ._search import explore, find_failing_seed
from ._timetravel import time_travel
from ._trace_export import write_trace
from .errors import SeedloopError, WorkerCrashError

console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise click.BadParameter(
                f"{pair!r}: write KEY=VALUE, e.g. -o depth=2 -o max_time=60", param_hint="-o"
            )
        try:
            options[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            options[key] = raw
    return options


def _import_target(target: str) -> Any:
    # Like `python -m`: the current directory is importable.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return resolve_factory(target)


def _replay_cli(target: str, seed: int, strategy: str, options: dict[str, Any]) -> str:
    opts = "".join(
        f" -o {shlex.quote(f'{k}={v!r}')}"
        for k, v in sorted(options.items())
        if k not in ("steps", "fail_if")
    )
    if options.get("fail_if") is not None:
        opts += f" --fail-if {shlex.quote(options['fail_if'])}"
    return f"seedloop replay {shlex.quote(target)} --seed {seed} --strategy {strategy}{opts}"


def _replay_tape_cli(target: str, seed: int, tape: Any, options: dict[str, Any]) -> str:
    opts = "".join(
        f" -o {shlex.quote(f'{k}={v!r}')}"
        for k, v in sorted(options.items())
        if k not in ("steps", "depth", "fail_if")
    )
    if options.get("fail_if") is not None:
        opts += f" --fail-if {shlex.quote(options['fail_if'])}"
    choices = ",".join(str(c) for c in tape) or "'[]'"
    return f"seedloop replay {shlex.quote(target)} --seed {seed} --tape {choices}{opts}"


def _parse_bound(value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        bound = int(value)
    except ValueError:
        bound = -1
    if bound < 0:
        raise click.BadParameter(
            f"{value!r}: a number of preemptions >= 0, or 'none'", param_hint="--bound"
        )
    return bound


def _with_fail_if(options: dict[str, Any], fail_if: str | None) -> dict[str, Any]:
    if fail_if is not None:
        options["fail_if"] = fail_if
    return options


def _parse_tape(text: str) -> list[int]:
    try:
        tape = json.loads(text if text.lstrip().startswith("[") else f"[{text}]")
    except ValueError:
        tape = None
    if not isinstance(tape, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in tape
    ):
        raise click.BadParameter(
            f"{text!r}: write the tape as a list of non-negative ints, e.g. --tape '[0, 1, 0]' "
            "(copy it from the failure's minimal schedule)",
            param_hint="--tape",
        )
    return tape


class _SeedloopCommand(click.Command):
    """Shows seedloop's own errors as one line saying what to do, exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeedloopError as exc:
            message = Text("error: ", style="bold red")
            message.append(str(exc))
            err_console.print(message, soft_wrap=True)
            ctx.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seedloop", prog_name="seedloop")
def cli() -> None:
    """Deterministic simulation testing for asyncio: explore seeds, replay one."""


_strategy_option = click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="how each seed orders ready callbacks",
)
#: explore also takes the searches that choose whole schedules, not per-step orders.
_search_strategy_option = click.option(
    "--strategy",
    type=click.Choice((*STRATEGIES, SYSTEMATIC, GUIDED)),
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="how each seed orders ready callbacks; systematic: every schedule within --bound; "
    "guided: a learnt policy that steers towards unseen interleavings, plus a corpus of tapes "
    "that reached new coverage",
)
_fail_if_option = click.option(
    "--fail-if",
    metavar="EXPR",
    default=None,
    help="a Python expression over the scenario's return value `result`; a seed whose "
    "result makes it true fails, e.g. --fail-if 'result == \"MISSED\"'",
)
_option_option = click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="a run option, e.g. -o depth=2 (pct) or -o max_time=60; repeatable",
)


def _write_html(
    path: str, target: str, summary: Exploration, result: Any, replay: str | None
) -> None:
    """The exploration's HTML report (the failure's run drawn from ``result``)."""
    Path(path).write_text(
        render_report(
            target=target,
            failure=summary.failure,
            result=result,
            summary=summary,
            replay_cli=replay,
        ),
        encoding="utf-8",
    )
    console.print(f"report: {path}")


@cli.command(cls=_SeedloopCommand)
@click.argument("target", metavar="MODULE:SCENARIO")
@click.option(
    "--seeds",
    default=None,
    show_default="0:1000",
    help="N (0..N-1), A:B (A..B-1), A:B:STEP or a list 1,5,9 (with --strategy systematic: "
    "world seeds, default 0, each explored in full)",
)
@click.option(
    "--bound",
    default=str(DEFAULT_BOUND),
    show_default=True,
    metavar="B",
    help="systematic: most preemptions (task switches asyncio would not make) per schedule; "
    "'none' for no bound",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_RUNS,
    show_default=True,
    help="systematic: stop (incomplete) after this many runs",
)
@_search_strategy_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=0,
    show_default="0 = one per CPU",
    help="worker processes",
)
@click.option("--stop-on-failure", is_flag=True, help="stop at the first failing seed")
@click.option(
    "--check-determinism",
    is_flag=True,
    help="run every seed twice; stop with an error at the first seed whose runs differ",
)
@click.option(
    "--shard",
    metavar="I/N",
    default=None,
    help="run only shard I of N (seeds at positions p % N == I): one per machine",
)
@_fail_if_option
@_option_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="write an HTML report")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="write the summary as JSON"
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False),
    help="write the failing run as Chrome trace-event JSON (open in ui.perfetto.dev)",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    default=None,
    help="run the seeds on a Dask cluster: its scheduler's address (tcp://HOST:8786), "
    "or 'local' for -j worker processes on this machine (pip install 'seedloop[cluster]')",
)
@click.option("--no-progress", is_flag=True, help="no progress bar")
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    default=None,
    help=f"the failure database: saved failing seeds of this scenario (same strategy and "
    f"options) run before --seeds, new failures are saved there [default: ${DB_ENV_VAR} or "
    f"{DB_DEFAULT_DIR}]",
)
@click.option("--no-db", is_flag=True, help="neither replay nor save failures (no database)")
def explore_cmd(
    target: str,
    seeds: str | None,
    strategy: str,
    bound: str,
    max_runs: int,
    jobs: int,
    stop_on_failure: bool,
    check_determinism: bool,
    shard: str | None,
    fail_if: str | None,
    options: tuple[str, ...],
    html_path: str | None,
    json_path: str | None,
    trace_path: str | None,
    cluster: str | None,
    no_progress: bool,
    db_path: str | None,
    no_db: bool,
) -> None:
    """Run MODULE:SCENARIO under every seed; summarise and show the first failure.

    MODULE:SCENARIO names a zero-argument async function, e.g. examples.demo:scenario
    or path/to/file.py:scenario. Failing seeds are kept in a failure database
    (.seedloop/) and run first the next time; --shard and --no-db use none.
    With --strategy systematic it runs every schedule with at most --bound
    preemptions instead (--seeds are then world seeds; no database).
    """
    if strategy == SYSTEMATIC:
        _explore_systematic_cmd(
            target, seeds, bound, max_runs, fail_if, options, no_progress, html_path, json_path
        )
        return
    seed_list = parse_seeds(seeds if seeds is not None else "0:1000")
    shard_pair = parse_shard(shard) if shard else None
    opts = _with_fail_if(_parse_options(options), fail_if)
    _import_target(target)
    jobs = jobs or os.cpu_count() or 1
    # A shard's seeds are positions in the shared order: saved seeds in front
    # would move them, so a sharded search keeps no database.
    database = None if no_db or shard_pair else database_at(db_path, DB_DEFAULT_DIR)
    db_run = None

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failing"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=no_progress,
        transient=True,
        # No refresh thread: with no thread but the main one, worker
        # processes can fork (fast) instead of spawn; update() redraws.
        auto_refresh=False,
    )
    with progress:
        total = len(seed_list)
        if shard_pair:
            total = len(range(shard_pair[0], total, shard_pair[1]))
        task = progress.add_task(f"{strategy} ×{jobs}", total=total, failed=0, rate="")
        elapsed_start = progress.get_time()

        drawn = [elapsed_start]

        def update(done: int, total: int, failed: int) -> None:
            now = progress.get_time()
            elapsed = now - elapsed_start
            rate = f"{done / elapsed:,.0f} seeds/s" if elapsed > 0 else ""
            progress.update(task, completed=done, total=total or None, failed=failed, rate=rate)
            if now - drawn[0] >= 0.1:  # ten frames a second, as rich's own thread draws
                drawn[0] = now
                progress.refresh()

        try:
            summary, db_run = explore_saved_first(
                database,
                Key.of(target, strategy, opts),
                target,
                seed_list,
                strategy=strategy,
                options=opts,
                jobs=jobs,
                stop_on_failure=stop_on_failure,
                check_determinism=check_determinism,
                shard=shard_pair,
                progress=update,
                # Even one job runs in a worker process: a seed that ends its
                # interpreter is then reported with its seed, not as a silent exit.
                isolate=cluster is None,
                backend="dask" if cluster is not None else None,
                address=cluster,
            )
        except KeyboardInterrupt as exc:
            summary = getattr(exc, "exploration", None)
            if summary is None:
                raise
        except WorkerCrashError as exc:
            crashed = exc
            summary = None
    if summary is None:
        _print_crash(crashed, target, strategy, opts)
        sys.exit(1)
    _print_summary(summary)
    if db_run is not None and (db_run.replayed or db_run.dropped or db_run.saved):
        console.print(Text(db_run.describe()), soft_wrap=True)
    if summary.interrupted:
        _print_interrupted(summary, target)
        sys.exit(130)
    replay = None
    result = None
    if summary.failure is not None:
        failure = summary.failure
        if strategy == GUIDED:
            # A guided failure is a tape, not a seed's own schedule: replay it in Python.
            replay = failure.replay_command
        else:
            replay = _replay_cli(target, failure.seed, failure.strategy, summary.options)
        _print_failure(failure, replay)
        if html_path:
            factory = resolve_factory(target)
            if strategy == GUIDED:
                result = execute(
                    factory, failure.seed, "random", tape=list(failure.tape), clamp_tape=True,
                    keep_steps=True, **summary.options,
                )
            else:
                result = execute(factory, failure.seed, strategy, keep_steps=True, **summary.options)
    if html_path:
        _write_html(html_path, target, summary, result, replay)
    if json_path:
        Path(json_path).write_text(json.dumps(_summary_json(target, summary, replay), indent=2))
    if trace_path:
        if summary.failure is not None and summary.failure.recording is not None:
            summary.failure.save_trace(trace_path)
            console.print(f"trace: {trace_path} (open it in ui.perfetto.dev or chrome://tracing)")
        else:
            console.print("no trace written: no seed failed")
    sys.exit(1 if summary.failures else 0)


def _explore_systematic_cmd(
    target: str,
    seeds: str | None,
    bound: str,
    max_runs: int,
    fail_if: str | None,
    options: tuple[str, ...],
    no_progress: bool,
    html_path: str | None,
    json_path: str | None,
) -> None:
    # Seeds only seed the world here (random, uuid...); each gets every schedule.
    seed_list = parse_seeds(seeds) if seeds is not None else None
    bound_value = _parse_bound(bound)
    opts = _with_fail_if(_parse_options(options), fail_if)
    factory = _import_target(target)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed} runs"),
        TimeElapsedColumn(),
        console=err_console,
        disable=no_progress,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"systematic, bound {bound_value}", total=None)

        def update(done: int, total: int, failed: int) -> None:
            progress.update(task, completed=done)

        summary = explore(
            factory,
            seed_list,
            strategy=SYSTEMATIC,
            bound=bound_value,
            max_runs=max_runs,
            progress=update,
            **opts,
        )
    table = Table(title="seedloop systematic exploration", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("bound", "none" if summary.bound is None else f"{summary.bound} preemption(s)")
    table.add_row("schedules run", str(summary.schedules))
    table.add_row("runs", f"{summary.seeds_run} ({summary.runs_stopped} stopped early)")
    table.add_row("distinct outcomes", str(len(summary.outcomes)))
    table.add_row("time", f"{summary.elapsed:.2f} s")
    console.print(table)
    console.print(Text(str(summary).splitlines()[0]))
    replay = result = None
    if summary.failure is not None:
        failure = summary.failure
        replay = _replay_tape_cli(target, failure.seed, failure.tape, summary.options)
        _print_failure(failure, replay)
        if html_path:
            result = execute(
                factory, failure.seed, tape=list(failure.tape), keep_steps=True, **summary.options
            )
    if html_path:
        _write_html(html_path, target, summary, result, replay)
    if json_path:
        data = _summary_json(target, summary, replay)
        data.update(
            bound=summary.bound,
            complete=summary.complete,
            exhaustive=summary.exhaustive,
            schedules=summary.schedules,
            runs_stopped=summary.runs_stopped,
            tape=list(summary.failure.tape) if summary.failure is not None else None,
        )
        Path(json_path).write_text(json.dumps(data, indent=2))
    sys.exit(1 if summary.failure is not None else 0)


@cli.command(cls=_SeedloopCommand)
@click.argument("target", metavar="MODULE:SCENARIO")
@click.option("--seed", type=int, required=True, help="the seed to run")
@_strategy_option
@_fail_if_option
@_option_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="write an HTML report")
@click.option(
    "--tape",
    "tape_text",
    metavar="TAPE",
    default=None,
    help="replay this decision tape instead of the strategy, e.g. the failure's minimal "
    "schedule --tape '[0, 1, 0]' (the run its report's timeline shows)",
)
@click.option(
    "--break-at",
    "break_at",
    type=click.IntRange(min=0),
    multiple=True,
    metavar="STEP",
    help="stop in pdb before timeline step STEP runs, in the frame of the task it resumes "
    "(c: to the next --break-at, n: this task's next step, s: any task's next step, "
    "q: stop); repeatable",
)
@click.option(
    "--watch",
    "watches",
    multiple=True,
    metavar="EXPR",
    help="print EXPR, evaluated in a task's frame, at every step that changes it: "
    "'step 12 t=0.5 #3 worker x: 1 -> 2' (the step and the task that ran it); repeatable",
)
@click.option(
    "--task",
    "watch_task",
    metavar="NAME",
    default=None,
    help="evaluate --watch in this task's frames (its name, e.g. worker, or #3 as in the "
    "timeline); default: the first task whose frame evaluates EXPR",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False),
    help="write the run as Chrome trace-event JSON (open in ui.perfetto.dev)",
)
def replay(
    target: str,
    seed: int,
    strategy: str,
    fail_if: str | None,
    options: tuple[str, ...],
    html_path: str | None,
    tape_text: str | None,
    break_at: tuple[int, ...],
    watches: tuple[str, ...],
    watch_task: str | None,
    trace_path: str | None,
) -> None:
    """Run MODULE:SCENARIO under one seed and show exactly what happened.

    With --break-at or --watch the same run (same fingerprint) is replayed under
    a debugger: step numbers are those of the failure's timeline.
    """
    factory = _import_target(target)
    opts = _with_fail_if(_parse_options(options), fail_if)
    tape = _parse_tape(tape_text) if tape_text is not None else None
    if break_at or watches:
        api = "seedloop replay"
        run_opts = RunOptions.build(api, strategy, opts)
        if tape is None:
            run_opts = calibrate(factory, run_opts, api)
        try:
            result = time_travel(
                factory,
                seed,
                run_opts,
                breaks=break_at,
                watches=watches,
                task=watch_task,
                tape=tape,
            ).result
        except bdb.BdbQuit as exc:
            console.print(Text(f"seedloop: {exc}; the run did not finish"))
            sys.exit(1)
        if isinstance(result.exception, bdb.BdbQuit):
            console.print(Text(f"seedloop: {result.exception}; the run did not finish"))
            sys.exit(1)
    else:
        result = execute(factory, seed, strategy, tape=tape, keep_steps=True, **opts)
    opts = result.options  # with PCT's measured steps
    failure = None
    table = Table(show_header=False, box=None)
    table.add_row("seed", str(seed))
    table.add_row("strategy", strategy if tape is None else f"none: a tape of {len(tape)} decisions")
    table.add_row("steps", str(result.steps))
    table.add_row("virtual time", f"{result.virtual_time:.6f} s")
    table.add_row("fingerprint", result.fingerprint)
    console.print(table)
    replay_cli = _replay_cli(target, seed, strategy, opts)
    if tape is not None:
        replay_cli += f" --tape {shlex.quote(json.dumps(tape))}"
    if result.exception is None:
        what = f"seed {seed}" if tape is None else f"the tape (seed {seed})"
        console.print(Text(f"{what} passes; the scenario returned {result.value!r}"))
    elif tape is not None:
        console.print(Text(format_user_traceback(result.exception)))
    else:
        failure = find_failing_seed(factory, [seed], strategy=strategy, **opts)
        exc = result.exception
        console.print(Text(format_user_traceback(exc)))
        if failure is not None:
            _print_failure(failure, replay_cli)
    if html_path:
        Path(html_path).write_text(
            render_report(target=target, failure=failure, result=result, replay_cli=replay_cli),
            encoding="utf-8",
        )
        console.print(f"report: {html_path}")
    if trace_path:
        if failure is not None and failure.recording is not None:
            failure.save_trace(trace_path)
        else:
            # A passing seed (or a failure not explained): record the run itself.
            _, recording = record_timeline(
                factory, seed, tape, RunOptions.build("seedloop replay", strategy, opts)
            )
            recording.source = "the seed's run"
            write_trace(recording, trace_path, title=f"{target} seed {seed}")
        console.print(f"trace: {trace_path} (open it in ui.perfetto.dev or chrome://tracing)")
    sys.exit(1 if result.exception is not None else 0)


_HIDDEN_DIRS = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep,
)


def format_user_traceback(exc: BaseException) -> str:
    """The exception's traceback without seedloop's and asyncio's own frames."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not os.path.abspath(f.filename).startswith(_HIDDEN_DIRS)
    ]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _print_summary(summary: Exploration) -> None:
    table = Table(title="seedloop exploration", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rate = f"{summary.seeds_per_second:,.0f} seeds/s"
    table.add_row(
        "seeds run",
        f"{summary.seeds_run}"
        + ("  (stopped at the first failure)" if summary.stopped_early else ""),
    )
    share = 100 * summary.failures / summary.seeds_run if summary.seeds_run else 0.0
    style = "red" if summary.failures else "green"
    table.add_row("failing seeds", Text(f"{summary.failures} ({share:.1f}%)", style=style))
    table.add_row("distinct outcomes", str(len(summary.outcomes)))
    table.add_row("distinct interleavings", str(summary.interleavings))
    table.add_row("time", f"{summary.elapsed:.2f} s, {rate}, {summary.jobs} job(s)")
    if summary.shard:
        table.add_row("shard", f"{summary.shard[0]}/{summary.shard[1]}")
    if summary.failure_index is not None:
        table.add_row("first failure at", f"position {summary.failure_index}")
    console.print(table)
    outcomes = Table("runs", "outcome", title="outcomes", title_justify="left")
    for outcome, count in summary.outcomes.most_common(10):
        outcomes.add_row(str(count), Text(outcome))
    if len(summary.outcomes) > 10:
        outcomes.add_row("…", f"{len(summary.outcomes) - 10} more")
    console.print(outcomes)
    _print_unsatisfied(summary)


def _print_unsatisfied(summary: Exploration) -> None:
    """The sometimes/reachable sites no run satisfied: paths this exploration never tested."""
    never = summary.unsatisfied
    if not never:
        return
    table = Table(
        "kind", "name", "where", "evaluated", title="never satisfied", title_justify="left"
    )
    for site in never:
        table.add_row(site.kind, Text(site.name), site.where, str(site.evaluations))
    console.print(table, style="yellow")


def _print_crash(exc: WorkerCrashError, target: str, strategy: str, opts: dict[str, Any]) -> None:
    body = Text(str(exc))
    if exc.seed is not None:
        body = Text()
        body.append(f"seed {exc.seed}", style="bold")
        status = describe_exit(exc.exitcode)
        body.append(f" (strategy {strategy}) crashed the worker ({status})", style="red")
        body.append("\n\nreplay it alone:  ")
        body.append(_replay_cli(target, exc.seed, strategy, opts), style="bold")
        body.append("\n(python -X faulthandler -m seedloop replay ... shows where it crashes)")
    console.print(Panel(body, title="crash", title_align="left", border_style="red"))


def _print_interrupted(summary: Exploration, target: str) -> None:
    body = Text(f"interrupted: the summary covers the {summary.seeds_run} seed(s) that finished")
    if summary.failing_seeds:
        seed = summary.failing_seeds[0][1]
        body.append(f"\nfirst failing seed found: {seed}; replay:  ")
        body.append(_replay_cli(target, seed, summary.strategy, summary.options), style="bold")
    console.print(body)


def _print_failure(failure: Any, replay_cli: str) -> None:
    exc = failure.exception
    body = Text()
    if failure.strategy == SYSTEMATIC:
        departures = sum(1 for c in failure.tape if c)
        body.append("a systematic schedule", style="bold")
        body.append(f" ({departures} departure(s) from FIFO) fails with ")
    else:
        body.append(f"seed {failure.seed}", style="bold")
        body.append(f" (strategy {failure.strategy}) fails with ")
    body.append(f"{type(exc).__name__}: {exc}", style="red")
    body.append("\n\nreplay:  ")
    body.append(replay_cli, style="bold")
    body.append("\npython:  ")
    body.append(failure.replay_command)
    tape_command = getattr(failure, "replay_tape_command", None)
    if tape_command:
        body.append("\nminimal schedule:  ")
        body.append(tape_command)
    feasibility = getattr(failure, "feasibility", None)
    if feasibility:
        body.append(f"\n\n{feasibility}")
    race = getattr(failure, "race", None)
    if race is not None:
        body.append(f"\n\n{race}")
    console.print(Panel(body, title="failure", title_align="left", border_style="red"))
    timeline = getattr(failure, "timeline", None)
    if timeline:
        console.print(Text("timeline of the failing interleaving:", style="bold"))
        console.print(Text(str(timeline)), soft_wrap=True)


def _summary_json(target: str, summary: Exploration, replay: str | None) -> dict[str, Any]:
    failure = summary.failure
    return {
        "target": target,
        "strategy": summary.strategy,
        "options": {k: v for k, v in summary.options.items() if _jsonable(v)},
        "shard": list(summary.shard) if summary.shard else None,
        "seeds_run": summary.seeds_run,
        "failures": summary.failures,
        "failure_index": summary.failure_index,
        "failure_seed": failure.seed if failure else None,
        "failure": f"{type(failure.exception).__name__}: {failure.exception}" if failure else None,
        "replay": replay,
        "failing_seeds": [seed for _, seed in summary.failing_seeds],
        "distinct_outcomes": len(summary.outcomes),
        "distinct_interleavings": summary.interleavings,
        "elapsed": summary.elapsed,
        "seeds_per_second": summary.seeds_per_second,
        "jobs": summary.jobs,
        "never_satisfied": [
            {"kind": s.kind, "name": s.name, "file": s.file, "line": s.line,
             "evaluations": s.evaluations}
            for s in summary.unsatisfied
        ],
    }


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``seedloop`` console script and ``python -m seedloop``."""
    cli.main(args=argv, prog_name="seedloop")


explore_cmd.name = "explore"
