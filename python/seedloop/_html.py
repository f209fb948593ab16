"""A self-contained HTML report of a run: one file, inline CSS and SVG, no scripts or assets."""

from __future__ import annotations

import datetime
import html
import os
import traceback
from collections.abc import Sequence
from typing import Any

from ._result import Failure, RunResult
from ._timeline import Event, Lane, Recording, Step

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
.svg-wrap { overflow-x: auto; border: 1px solid #e3e3e3; margin: .5em 0; }
svg.lanes text { font: 11px system-ui, sans-serif; fill: #333; }
svg.lanes .host-label { font-weight: 600; fill: #555; }
svg.lanes .host-rule { stroke: #888; stroke-width: 1; }
svg.lanes .tick { stroke: #d7dbe0; stroke-width: 1; }
svg.lanes .tick-label, svg.lanes .axis-label { fill: #666; font-size: 10px; }
svg.lanes .star { fill: #c62828; font-weight: 700; font-size: 13px; }
svg.lanes a.reordered rect { stroke: #c62828; stroke-width: 2.5; }
svg.lanes a:hover rect, svg.lanes a:hover circle { stroke: #000; stroke-width: 2; }
.legend { color: #444; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: middle; }
.reordered-swatch { background: #3b7dd8; outline: 2.5px solid #c62828; }
table.steps tr:target td { background: #fff1a8; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


#: Steps drawn in the SVG lanes (the last ones; the table lists them all).
MAX_DRAWN_STEPS = 400

#: Lane colours (a task's steps); the loop's own callbacks are grey.
LANE_COLOURS = ("#3b7dd8", "#2e9e5b", "#8e5bd0", "#d08a1f", "#1aa3a3", "#c2477a", "#6b8e23",
                "#5a6bd6")
CALLBACK_COLOUR = "#9a9a9a"

_SLOT, _LANE, _LEFT, _TOP = 16, 28, 230, 46


def _colour(ordinal: int) -> str:
    return LANE_COLOURS[(ordinal - 1) % len(LANE_COLOURS)] if ordinal else CALLBACK_COLOUR


def _lane_order(rec: Recording) -> list[Lane]:
    """Lanes grouped per host (in order of appearance), tasks first, then the host's callbacks."""
    hosts: list[str] = []
    for lane in rec.lanes:
        if lane.host not in hosts:
            hosts.append(lane.host)
    ordered: list[Lane] = []
    for host in hosts:
        ordered += [lane for lane in rec.lanes if lane.host == host and lane.ordinal]
        ordered += [lane for lane in rec.lanes if lane.host == host and not lane.ordinal]
    return ordered


def _step_title(rec: Recording, step: Step, labels: dict[tuple[int, str], str]) -> str:
    lane = labels.get((step.task, "" if step.task else step.host), "")
    where = f"\n{step.file}:{step.line}" if step.file else ""
    code = f"\n{step.source}" if step.source else ""
    choice = (
        f"\nreordered: ready callback #{step.choice} ran, not asyncio's next" if step.choice else ""
    )
    return f"step {step.step}  t={step.time:.6f}  {lane}\n{step.what}{where}{code}{choice}"


def timeline_svg(rec: Recording) -> str:
    """The failing interleaving as inline SVG: a lane per task, steps left to right."""
    lanes = _lane_order(rec)
    row = {(lane.ordinal, "" if lane.ordinal else lane.host): i for i, lane in enumerate(lanes)}
    labels = {(lane.ordinal, "" if lane.ordinal else lane.host): lane.label for lane in lanes}
    steps = rec.steps[-MAX_DRAWN_STEPS:]
    slot = {s.step: i for i, s in enumerate(steps)}

    def lane_of(step: Step) -> int:
        return row.get((step.task, "" if step.task else step.host), 0)

    def xy(step_no: int) -> tuple[float, float] | None:
        step = rec.step_at(step_no)
        if step is None or step_no not in slot:
            return None
        return (_LEFT + slot[step_no] * _SLOT + _SLOT / 2, _TOP + lane_of(step) * _LANE + _LANE / 2)

    width = _LEFT + max(len(steps), 1) * _SLOT + 20
    height = _TOP + len(lanes) * _LANE + 10
    out = [
        f'<svg class="lanes" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline: one lane per task">',
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f5fbf"/></marker>'
        '<marker id="cut" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c62828"/></marker>'
        '<marker id="wake" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a8f98"/></marker>'
        "</defs>",
    ]
    # Host bands and lanes.
    previous_host: str | None = None
    for i, lane in enumerate(lanes):
        y = _TOP + i * _LANE
        colour = _colour(lane.ordinal)
        band = "#f6f8fb" if i % 2 else "#ffffff"
        out.append(
            f'<g class="lane" data-task="{lane.ordinal}" data-host="{_e(lane.host)}">'
            f'<rect x="0" y="{y}" width="{width}" height="{_LANE}" fill="{band}"/>'
            f'<rect x="{_LEFT - 8}" y="{y + 4}" width="4" height="{_LANE - 8}" fill="{colour}"/>'
            f'<text x="{_LEFT - 14}" y="{y + _LANE / 2 + 4}" text-anchor="end" class="lane-label">'
            f"{_e(lane.label)}</text></g>"
        )
        if lane.host != previous_host and lane.host:
            out.append(
                f'<line x1="0" x2="{width}" y1="{y}" y2="{y}" class="host-rule"/>'
                f'<text x="4" y="{y + 11}" class="host-label">host {_e(lane.host)}</text>'
            )
        previous_host = lane.host
    # The time axis: virtual time where it moves, step order where it stands still.
    last_time: float | None = None
    last_label_x = -1e9
    for i, step in enumerate(steps):
        x = _LEFT + i * _SLOT
        if last_time is None or step.time != last_time:
            out.append(f'<line x1="{x}" x2="{x}" y1="{_TOP - 8}" y2="{height - 10}" class="tick"/>')
            if x - last_label_x >= 70:
                out.append(f'<text x="{x + 2}" y="{_TOP - 12}" class="tick-label">'
                           f"t={step.time:.6g}</text>")
                last_label_x = x
            last_time = step.time
    shown = (f"the last {len(steps)} of {len(rec.steps)} steps" if len(rec.steps) > len(steps)
             else "steps")
    out.append(f'<text x="{_LEFT}" y="14" class="axis-label">{shown} in order, left to right; '
               "a tick where virtual time moves on</text>")
    # Steps.
    for i, step in enumerate(steps):
        x = _LEFT + i * _SLOT
        y = _TOP + lane_of(step) * _LANE
        colour = _colour(step.task)
        cls = "step reordered" if step.choice else "step"
        title = f"<title>{_e(_step_title(rec, step, labels))}</title>"
        if step.kind == "timer":
            shape = (f'<circle cx="{x + _SLOT / 2}" cy="{y + _LANE / 2}" r="5.5" fill="#fff" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<path d="M{x + _SLOT / 2},{y + _LANE / 2 - 3.5} v3.5 h2.5" '
                     f'stroke="{colour}" '
                     'fill="none" stroke-width="1.4"/>')
            cls += " timer"
        else:
            shape = (f'<rect x="{x + 2}" y="{y + 5}" width="{_SLOT - 4}" height="{_LANE - 10}" '
                     f'rx="2" fill="{colour}"/>')
        mark = (f'<text x="{x + _SLOT / 2}" y="{y + 4}" text-anchor="middle" class="star">*</text>'
                if step.choice else "")
        out.append(f'<a href="#step-{step.step}" class="{cls}" data-step="{step.step}">'
                   f"{shape}{mark}{title}</a>")
    # Events: cancellations, network messages.
    recvs = {(e.step, e.conn): e for e in rec.events if e.kind == "recv"}
    landings: dict[int, list[int]] = {}
    for e in rec.events:
        if e.kind == "cancelled":
            landings.setdefault(e.task, []).append(e.step)
    for event in rec.events:
        if event.kind == "cancel":
            start = xy(event.step)
            landing = next((at for at in landings.get(event.target, ()) if at > event.step), None)
            end = xy(landing) if landing is not None else None
            if start is not None:
                out.append(f'<g class="cancel"><title>{_e(event.text)}</title>'
                           f'<path d="M{start[0] - 5},{start[1] - 5} l10,10 m0,-10 l-10,10" '
                           'stroke="#c62828" stroke-width="2.2"/>')
                if end is not None:
                    out.append(f'<line x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}" '
                               'stroke="#c62828" stroke-dasharray="4 3" stroke-width="1.6" '
                               'marker-end="url(#cut)"/>')
                out.append("</g>")
        elif event.kind == "cancelled":
            at = xy(event.step)
            if at is not None:
                out.append(f'<g class="cancelled"><title>{_e(event.text)}</title>'
                           f'<circle cx="{at[0]}" cy="{at[1]}" r="8" fill="none" stroke="#c62828" '
                           'stroke-width="2"/></g>')
        elif event.kind == "send" and event.to_step is not None:
            recv = recvs.get((event.to_step, event.conn))
            target = event.to_step
            if recv is not None and recv.to_step is not None:
                target = recv.to_step  # the task step that read the bytes
            start, end = xy(event.step), xy(target)
            if start is not None and end is not None:
                out.append(f'<g class="message"><title>{_e(event.text)}</title>'
                           f'<line x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}" '
                           'stroke="#1f5fbf" stroke-width="1.6" marker-end="url(#arrow)"/></g>')
        elif event.kind == "wake" and event.from_step is not None:
            waker = rec.step_at(event.from_step)
            start, end = xy(event.from_step), xy(event.step)
            if waker is not None and waker.task and start is not None and end is not None:
                out.append(f'<g class="wake"><title>{_e(event.text)}</title>'
                           f'<line x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}" '
                           'stroke="#8a8f98" stroke-width="1.2" stroke-dasharray="2 2" '
                           'marker-end="url(#wake)"/></g>')
        elif event.kind in ("reset", "partition", "crash"):
            at = xy(event.step)
            if at is not None:
                out.append(f'<g class="fault"><title>{_e(event.text)}</title>'
                           f'<rect x="{at[0] - 4}" y="{at[1] - 12}" width="8" height="8" '
                           'fill="#c62828"/></g>')
    out.append("</svg>")
    return "".join(out)


def _legend() -> str:
    return (
        '<p class="legend">Each row is a task (grouped by host on the simulated network; '
        '"callbacks" rows hold timers and network deliveries). '
        '<span class="swatch reordered-swatch"></span> outlined, with <b>*</b>: a decisive '
        "reordering (the strategy ran another ready callback than asyncio's next); "
        "circle with hands: a timer firing; red cross and dashed arrow: a cancellation, "
        "ringed where its CancelledError landed; blue arrows: bytes sent on a connection, to "
        "the step that read them; grey dotted arrows: a task's step that completed a future "
        "(released a lock, put in a queue, set an event, finished) and the step it woke. "
        "Hover a step for its source line; click it for its row below.</p>"
    )


def _recording_html(rec: Recording) -> str:
    labels = {(lane.ordinal, "" if lane.ordinal else lane.host): lane.label for lane in rec.lanes}
    events: dict[int, list[Event]] = {}
    for event in rec.events:
        events.setdefault(event.step, []).append(event)
    rows = []
    for step in rec.steps:
        if not step.task and step.kind != "timer" and step.step not in events:
            continue
        cls = ' class="reordered"' if step.choice else ""
        lane = labels.get((step.task, "" if step.task else step.host), step.kind)
        where = f"{os.path.basename(step.file)}:{step.line}" if step.file else ""
        happened = "<br>".join(_e(e.text) for e in events.get(step.step, ()))
        rows.append(
            f'<tr id="step-{step.step}"{cls}><td>{step.step}</td><td>{step.time:.6f}</td>'
            f"<td>{_e(lane)}</td><td>{_e(step.choice)}</td><td>{_e(step.what)}</td>"
            f'<td title="{_e(step.file)}"><code>{_e(where)}</code></td>'
            f"<td><code>{_e(step.source)}</code></td><td>{happened}</td></tr>"
        )
    conns = "".join(f"<li>conn {n}: {_e(d)}</li>" for n, d in rec.connections.items())
    return (
        _legend()
        + '<div class="svg-wrap">' + timeline_svg(rec) + "</div>"
        + (f"<p>Connections:</p><ul>{conns}</ul>" if conns else "")
        + "<table class=\"steps\"><tr><th>step</th><th>virtual time (s)</th><th>task</th>"
        "<th>choice</th><th>what</th><th>source</th><th>line</th><th>events</th></tr>"
        + "".join(rows) + "</table>"
    )




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
        if summary.strategy == "systematic":
            # What the enumeration covered: complete within the bound, or not.
            rows.append(("verdict", _e(str(summary).splitlines()[0])))
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
            compared = getattr(failure, "timeline_outcome", "")
            if compared:
                rows.append(("timeline's run", _e(compared)))
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
        recording = getattr(failure, "recording", None)
        if recording is not None and recording.steps:
            parts.append("<h2>The failing interleaving</h2>")
            parts.append(_recording_html(recording))
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
