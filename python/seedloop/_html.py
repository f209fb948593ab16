"""A self-contained HTML report of a run: one file, inline CSS, no scripts or assets."""

from __future__ import annotations

import datetime
import html
import traceback
from collections.abc import Sequence
from typing import Any

from ._result import Failure, RunResult

#: Steps of the decision tape shown in the step log (the rest is summarised).
MAX_LOG_STEPS = 5000

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #1d1f21; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; }
.fail { color: #b00020; } .pass { color: #1b5e20; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
pre, code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; border: 1px solid #e3e3e3; }
tr.reordered td { background: #fff4e5; }
.muted { color: #666; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _kv_table(rows: Sequence[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _code(text: str) -> str:
    return f"<code>{_e(text)}</code>"


def _timeline_html(timeline: Any) -> str:
    if timeline is None or timeline == "" or timeline == []:
        return (
            '<p class="muted">No timeline: this version of seedloop does not record one '
            "for the run.</p>"
        )
    if isinstance(timeline, str):
        return f"<pre>{_e(timeline)}</pre>"
    rows = list(timeline)
    if rows and isinstance(rows[0], dict):
        keys = list(rows[0])
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{_e(r.get(k, ''))}</td>" for k in keys) + "</tr>" for r in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"
    if rows and isinstance(rows[0], (tuple, list)):
        body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table>{body}</table>"
    return "<pre>" + "\n".join(_e(r) for r in rows) + "</pre>"


def _step_log_html(result: RunResult | None) -> str:
    if result is None:
        return '<p class="muted">No run recorded.</p>'
    log = getattr(result, "step_log", None)
    if log:
        return _step_table(log)
    tape = list(result.tape)
    reordered = sum(1 for choice in tape if choice)
    intro = (
        f"<p>{len(tape)} scheduling decisions; at each, the index chosen among the ready "
        "callbacks, oldest first (0 is what stock asyncio runs next). "
        f"{reordered} decision(s) departed from asyncio's order (highlighted).</p>"
    )
    shown = tape[:MAX_LOG_STEPS]
    rows = []
    for step, choice in enumerate(shown):
        cls = ' class="reordered"' if choice else ""
        meaning = "asyncio's next" if choice == 0 else f"ready callback #{choice} (reordered)"
        rows.append(f"<tr{cls}><td>{step}</td><td>{choice}</td><td>{meaning}</td></tr>")
    more = (
        f'<p class="muted">… {len(tape) - len(shown)} more steps not shown.</p>'
        if len(tape) > len(shown)
        else ""
    )
    return (
        intro
        + "<table><tr><th>step</th><th>choice</th><th>meaning</th></tr>"
        + "".join(rows)
        + "</table>"
        + more
    )


def _step_table(log: Sequence[Sequence[Any]]) -> str:
    """``(seq, task ordinal, choice, virtual time)`` per step, as RunResult.step_log has it."""
    shown = list(log[:MAX_LOG_STEPS])
    departures = sum(1 for row in log if len(row) > 2 and row[2])
    rows = []
    for row in shown:
        seq, task, choice, when = (list(row) + [None] * 4)[:4]
        cls = ' class="reordered"' if choice else ""
        when_text = f"{when:.6f}" if isinstance(when, float) else _e(when)
        rows.append(
            f"<tr{cls}><td>{_e(seq)}</td><td>{when_text}</td><td>#{_e(task)}</td>"
            f"<td>{_e(choice)}</td></tr>"
        )
    more = (
        f'<p class="muted">… {len(log) - len(shown)} more steps not shown.</p>'
        if len(log) > len(shown)
        else ""
    )
    return (
        f"<p>{len(log)} steps; the choice is the index run among the ready callbacks, oldest "
        f"first (0 is what stock asyncio runs next). {departures} step(s) departed from "
        "asyncio's order (highlighted).</p>"
        "<table><tr><th>step</th><th>virtual time (s)</th><th>task</th><th>choice</th></tr>"
        + "".join(rows)
        + "</table>"
        + more
    )


def _unsatisfied_html(summary: Any) -> str:
    """The sometimes/reachable sites no run satisfied ('' when every one was)."""
    never = getattr(summary, "unsatisfied", [])
    if not never:
        return ""
    rows = "".join(
        f"<tr><td>{_e(s.kind)}</td><td><code>{_e(s.name)}</code></td><td>{_e(s.where)}</td>"
        f"<td>{_e(s.evaluations)}</td></tr>"
        for s in never
    )
    return (
        '<h2 class="fail">Never satisfied</h2>'
        "<p>These sometimes/reachable sites held in no run: the paths behind them were "
        "never tested.</p>"
        "<table><tr><th>kind</th><th>name</th><th>where</th><th>evaluated</th></tr>"
        + rows
        + "</table>"
    )


def render_report(
    *,
    target: str,
    failure: Failure | None = None,
    result: RunResult | None = None,
    summary: Any = None,
    replay_cli: str | None = None,
) -> str:
    """The whole report as one HTML document (no external CSS, scripts or images)."""
    title = f"seedloop report: {target}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>seedloop: {_e(target)}</h1>",
    ]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    if summary is not None:
        parts.append("<h2>Exploration</h2>")
        rows: list[tuple[str, object]] = [
            ("strategy", _e(summary.strategy)),
            ("seeds run", _e(summary.seeds_run)),
            ("failing seeds", _e(summary.failures)),
            ("distinct outcomes", _e(len(summary.outcomes))),
            ("distinct interleavings", _e(summary.interleavings)),
            ("time", _e(f"{summary.elapsed:.2f} s ({summary.seeds_per_second:,.0f} seeds/s)")),
            ("jobs", _e(summary.jobs)),
        ]
        if summary.shard:
            rows.append(("shard", _e(f"{summary.shard[0]}/{summary.shard[1]}")))
        if summary.options:
            rows.append(("options", _code(repr(summary.options))))
        parts.append(_kv_table(rows))
        outcome_rows = "".join(
            f"<tr><td>{count}</td><td><code>{_e(outcome)}</code></td></tr>"
            for outcome, count in summary.outcomes.most_common(50)
        )
        parts.append(f"<table><tr><th>runs</th><th>outcome</th></tr>{outcome_rows}</table>")
        parts.append(_unsatisfied_html(summary))

    if failure is None and (result is None or result.exception is None):
        parts.append('<h2 class="pass">No failure</h2>')
        if result is not None:
            parts.append(
                _kv_table(
                    [
                        ("seed", _e(result.seed)),
                        ("strategy", _e(result.strategy)),
                        ("returned", _code(repr(result.value))),
                    ]
                )
            )
    else:
        exc = failure.exception if failure is not None else result.exception  # type: ignore[union-attr]
        seed = failure.seed if failure is not None else result.seed  # type: ignore[union-attr]
        strategy = failure.strategy if failure is not None else result.strategy  # type: ignore[union-attr]
        parts.append(f'<h2 class="fail">Failing run: seed {_e(seed)}</h2>')
        rows = [
            ("seed", _e(seed)),
            ("strategy", _e(strategy)),
            ("exception", _code(f"{type(exc).__name__}: {exc}")),
        ]
        if replay_cli:
            rows.append(("replay (shell)", _code(replay_cli)))
        if failure is not None:
            rows.append(("replay (Python)", _code(failure.replay_command)))
            tape_command = getattr(failure, "replay_tape_command", None)
            if tape_command:
                rows.append(("minimal schedule", _code(tape_command)))
            feasibility = getattr(failure, "feasibility", None)
            if feasibility:
                rows.append(("on a real loop?", _e(feasibility)))
            race = getattr(failure, "race", None)
            if race is not None:
                rows.append(("race", f"<pre>{_e(race)}</pre>"))
        if result is not None:
            rows += [
                ("steps", _e(result.steps)),
                ("virtual time", _e(f"{result.virtual_time:.6f} s")),
                ("trace fingerprint", _code(result.fingerprint)),
            ]
        parts.append(_kv_table(rows))
        parts.append("<h2>Timeline</h2>")
        parts.append(_timeline_html(getattr(failure, "timeline", None)))
        parts.append("<h2>Traceback</h2>")
        parts.append(
            "<pre>"
            + _e("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            + "</pre>"
        )
    parts.append("<h2>Step log</h2>")
    parts.append(_step_log_html(result))
    parts.append(f'<p class="muted">Written by seedloop on {_e(now)}.</p></body></html>')
    return "\n".join(parts)
