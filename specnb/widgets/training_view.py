"""The training view: a `specialize` run drawn as it goes — loss per step, held-out accuracy and macro-F1 per
epoch, elapsed and remaining time, events, and a Stop button that works while the training cell runs.

`TrainingView` is a `TrainingMonitor` (``specnb._specialize.monitor``) driving a `TrainingWidget`. In a kernel,
`specnb.widgets.display.register` makes it the monitor of every ``specialize(..., progress=None)`` call (API
or ``%specnb specialize``); it shows itself when training starts.

**Stop during the cell.** While a cell trains, the kernel's main thread runs it, so the browser's widget
messages wait until the cell ends (JupyterLab 4.4+ may address them to a subshell, but ipykernel sends a comm's
messages to the shell that last published on it: here, the busy main one). ipykernel 7 reads the shell
channel in a thread of its own and asks each comm where to route a ``comm_msg`` (``Comm._reply_subshell_for``)
before queueing it. The widget's comm
answers as before, and on the way notes a Stop (`_listen_while_busy`): the flag is set at once and the
training loop sees it after the current step; the message itself is still handled after the cell, where
it changes nothing. A kernel without that thread (ipykernel 6) cannot do this: the view then says that an
interrupt (■) stops the run after the current step, which the training loop also honours.

**Syncing** is throttled: a step is sent when ``sync_interval`` seconds passed since the last one sent; the
start, the first step, a stop request, every evaluation, every event and the end are always sent. The loss
curve crosses the comm as at most `MAX_POINTS` points (means of consecutive steps).

**Saved notebooks.** When training ends, the output is redisplayed (same display id) with the widget view
and a static ``text/html`` snapshot of the final state — the charts as inline SVG, the figures as text — so a
notebook saved without widget state reopens with them (specnb's JupyterLab extension shows the snapshot
where the widget's model is gone; nbconvert and GitHub show it as it is).
"""

from __future__ import annotations

import html
import math
import threading
import time

import traitlets as t

from .._specialize.monitor import TrainingMonitor
from ..presentation import format_interval, plural
from ._base import Snapshot, json_value, static_file, widget_base

__all__ = ["TrainingView", "TrainingWidget", "MAX_POINTS", "SYNC_INTERVAL"]

#: Points of the loss curve that cross the comm (and the snapshot's SVG).
MAX_POINTS = 400
#: Seconds between two synced steps (see the module's docstring for what is always sent).
SYNC_INTERVAL = 0.25
#: Events the view and the snapshot list (the last ones).
MAX_EVENTS = 50
#: What a running view's Stop answers to: ``{"type": "stop"}``.
STOP = "stop"
STATUSES = ("pending", "running", "finished", "stopped", "interrupted", "failed")
NO_LIVE_STOP = ("this kernel handles widget messages only after the cell: interrupt the kernel (■) to stop "
                "after the current step")


def _finite(value) -> float | None:
    value = json_value(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def clock(seconds) -> str:
    """A duration as people read a timer: ``42 s``, ``3 min 07 s``, ``1 h 02 min``; a dash when unknown."""
    value = _finite(seconds)
    if value is None:
        return "–"
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def loss_points(steps: list[dict], limit: int = MAX_POINTS) -> list[list[float]]:
    """``[step, loss]`` per step with a finite loss; past ``limit`` points, means of consecutive steps (each
    at its last step), at most ``limit`` of them."""
    points = [(row["step"], loss) for row in steps if (loss := _finite(row.get("loss"))) is not None]
    if len(points) <= limit:
        return [[s, v] for s, v in points]
    size = math.ceil(len(points) / limit)
    return [[points[min(i + size, len(points)) - 1][0], sum(v for _, v in points[i:i + size]) / len(points[i:i + size])]
            for i in range(0, len(points), size)]


#: The metrics drawn per evaluation, [key, name, colour]: label tasks, and ner (``plan["metric"] == "f1"``).
LABEL_METRICS = (("accuracy", "held-out accuracy", "#388e3c"), ("macro_f1", "macro-F1", "#f57c00"))
NER_METRICS = (("f1", "held-out entity F1", "#388e3c"), ("token_accuracy", "token accuracy", "#f57c00"))


def _metrics_of(plan: dict) -> tuple:
    return NER_METRICS if plan.get("metric") == "f1" else LABEL_METRICS


def _epoch(value) -> str:
    number = _finite(value)
    return "–" if number is None else f"{number:.2f}".rstrip("0").rstrip(".")


def _metric(metrics: dict, key: str, name: str) -> str | None:
    entry = metrics.get(key)
    if not isinstance(entry, dict):
        return None
    text, bounds = format_interval(entry.get("value"), entry.get("low"), entry.get("high"))
    return None if text == "-" else f"{name} {text}{bounds or ''}"


class TrainingWidget(Snapshot, widget_base()):
    """The front end of a `TrainingView` (its traits are what the browser draws; see js/README.md)."""

    title = t.Unicode("", help="alias · method of base · task").tag(sync=True)
    status = t.Enum(STATUSES, "pending").tag(sync=True)
    stopping = t.Bool(False, help="Stop was asked; the run ends after the current step.").tag(sync=True)
    live_stop = t.Bool(False, help="Whether Stop reaches the kernel while the training cell runs.").tag(sync=True)
    step = t.Int(0).tag(sync=True)
    total_steps = t.Int(None, allow_none=True).tag(sync=True)
    loss = t.List(t.List(), help=f"[step, loss], at most {MAX_POINTS} points.").tag(sync=True)
    evals = t.List(t.Dict(), help="Per evaluation: step, epoch, loss and the metrics.").tag(sync=True)
    metrics = t.List(t.List(), default_value=[list(m) for m in LABEL_METRICS],
                     help="The metrics drawn per evaluation: [key in evals, name, colour].").tag(sync=True)
    events = t.List(t.Dict(), help=f"The last {MAX_EVENTS} events: step, text (and elapsed).").tag(sync=True)
    texts = t.Dict(help="What people read, formatted here: status, progress, elapsed, remaining, loss, best, "
                   "result, stop_note.").tag(sync=True)

    def __init__(self, view: TrainingView, **kwargs):
        self._esm = static_file("training_view.js")
        self._css = static_file("widgets.css")
        super().__init__(**kwargs)
        self._view = view
        self.on_msg(self._on_message)

    def _on_message(self, _widget, content, _buffers) -> None:
        # With a live stop the flag is set already (in the shell channel's thread); this is the message itself,
        # handled when the kernel is free: after the cell, or at once when no cell runs.
        if isinstance(content, dict) and content.get("type") == STOP:
            self._view.request_stop()

    def __repr__(self) -> str:
        return f"<specnb TrainingWidget: {self.title or 'training'} · {self.status}>"

    # -- without a kernel ---------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        e = html.escape
        texts = {k: str(v) for k, v in self.texts.items() if v}
        line = " · ".join(e(texts[k]) for k in ("progress", "elapsed", "loss", "best") if k in texts)
        parts = [f'<div><strong>{e(self.title or "training")}</strong> · '
                 f'<span data-status="{e(self.status)}">{e(texts.get("status", self.status))}</span></div>']
        if line:
            parts.append(f"<div>{line}</div>")
        charts = [svg for svg in (self._loss_svg(), self._eval_svg()) if svg]
        if charts:
            parts.append(f'<div style="display:flex;flex-wrap:wrap;gap:16px;margin:4px 0">{"".join(charts)}</div>')
        if "result" in texts:
            parts.append(f"<div>{e(texts['result'])}</div>")
        if self.events:
            items = "".join(f"<li>step {e(str(ev.get('step', '')))}: {e(str(ev.get('text', '')))}</li>"
                            for ev in self.events)
            parts.append(f'<ul style="margin:2px 0;padding-left:18px">{items}</ul>')
        return f'<div class="specnb-training-snapshot">{"".join(parts)}</div>'

    def _x_max(self) -> float:
        """The steps run so far (the progress line and bar say how many are planned)."""
        return float(max([p[0] for p in self.loss] + [r.get("step") or 0 for r in self.evals] + [1]))

    def _loss_svg(self) -> str:
        if not self.loss:
            return ""
        top = max(v for _, v in self.loss) or 1.0
        return _svg("training loss per step", self._x_max(), 0.0, top,
                    [("loss", "#1976d2", [(s, v) for s, v in self.loss], False)])

    def _eval_svg(self) -> str:
        series = []
        for key, name, colour in self.metrics:
            points = [(r.get("step") or 0, r[key]) for r in self.evals if _finite(r.get(key)) is not None]
            if points:
                series.append((name, colour, points, True))
        return _svg("held-out metrics per evaluation", self._x_max(), 0.0, 1.0, series) if series else ""


def _svg(title: str, x_max: float, y_min: float, y_max: float, series: list, width: int = 380,
         height: int = 170) -> str:
    """A small line chart as inline SVG (every text escaped): ``series`` of (name, colour, points, dots)."""
    e = html.escape
    left, right, top, bottom = 44, 10, 34 if len(series) > 1 else 22, 26
    span_y = (y_max - y_min) or 1.0

    def x(v: float) -> float:
        return left + (width - left - right) * (v / x_max if x_max else 0.0)

    def y(v: float) -> float:
        return height - bottom - (height - top - bottom) * (v - y_min) / span_y

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}" style="font:11px sans-serif">',
           f'<text x="{left}" y="13" fill="#444">{e(title)}</text>',
           f'<line x1="{left}" y1="{y(y_min):.1f}" x2="{width - right}" y2="{y(y_min):.1f}" stroke="#999"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y(y_min):.1f}" stroke="#999"/>']
    for value in (y_min, (y_min + y_max) / 2, y_max):
        out.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" fill="#666">{value:.2f}</text>')
    out.append(f'<text x="{left}" y="{height - 8}" fill="#666">0</text>')
    out.append(f'<text x="{width - right}" y="{height - 8}" text-anchor="end" fill="#666">step {x_max:,.0f}</text>')
    legend = left
    for name, colour, points, dots in series:
        coords = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        if dots:
            out.extend(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>' for s, v in points)
        if len(series) > 1:
            out.append(f'<text x="{legend}" y="27" fill="{colour}">■ {e(name)}</text>')
            legend += 20 + 6 * len(name)
    out.append("</svg>")
    return "".join(out)


class TrainingView(TrainingMonitor):
    """A training run in the notebook: a `TrainingMonitor` that draws the run in a `TrainingWidget`.

    ``specnb.specialize(..., progress=TrainingView())`` (in a kernel, ``progress=None`` makes one). It shows
    itself when training starts (``display=False``: only where it is displayed explicitly).

    Parameters
    ----------
    sync_interval : float
        Seconds between two synced steps (the first step, evaluations, events and the end always go).
    display : bool
        Show the view when training starts, unless it is shown already.
    """

    def __init__(self, *, sync_interval: float = SYNC_INTERVAL, display: bool = True):
        super().__init__()
        self.sync_interval = float(sync_interval)
        self._display = display
        self._handles: list = []
        self._last_sync: float | None = None
        self._synced_stop = False
        self._lock = threading.RLock()  # a comm message may be handled in a subshell's thread
        self.widget = TrainingWidget(self)
        self.widget.live_stop = _listen_while_busy(self.widget.comm, self._stop_now)
        self._sync()

    # -- stop -------------------------------------------------------------------------------------
    def _stop_now(self) -> None:
        """Called in the shell channel's thread: set the flag only (the main thread syncs it)."""
        if self.status in ("pending", "running"):
            TrainingMonitor.stop(self)

    def request_stop(self) -> None:
        """What the Stop button does (on the main thread): stop after the current step, and say so."""
        if self.status not in ("pending", "running"):
            return
        self.stop()
        self._sync()

    # -- the monitor ------------------------------------------------------------------------------
    def on_start(self, plan: dict) -> None:
        super().on_start(plan)
        self._sync()
        if self._display and not self._handles:
            self._show()

    def on_step(self, row: dict) -> None:
        super().on_step(row)
        now = time.perf_counter()
        due = self._last_sync is None or now - self._last_sync >= self.sync_interval
        if due or len(self.steps) == 1 or self.stop_requested != self._synced_stop:
            self._sync()

    def on_evaluate(self, row: dict) -> None:
        super().on_evaluate(row)
        self._sync()

    def on_event(self, row: dict) -> None:
        super().on_event(row)
        self._sync()

    def on_end(self, status: str, summary: dict) -> None:
        super().on_end(status, summary)
        self._sync()
        for handle in self._handles:  # the final snapshot goes into the saved output
            handle.update(self.widget)

    # -- display ----------------------------------------------------------------------------------
    def _show(self) -> None:
        from IPython.display import display

        self._handles.append(display(self.widget, display_id=True))

    def _ipython_display_(self) -> None:
        self._show()

    def __repr__(self) -> str:
        return f"<specnb TrainingView: {self.widget.title or 'training'} · {self.status}>"

    # -- the widget's state -----------------------------------------------------------------------
    def _sync(self) -> None:
        with self._lock:
            self._set_state()

    def _set_state(self) -> None:
        self._last_sync = time.perf_counter()
        self._synced_stop = self.stop_requested
        plan, last = self.plan, self.steps[-1] if self.steps else None
        w = self.widget
        with w.hold_sync():
            w.title = " · ".join(str(p) for p in (plan.get("alias"), _method(plan), plan.get("task")) if p)
            w.status = self.status if self.status in STATUSES else "failed"
            w.stopping = self.stop_requested and self.status == "running"
            w.step = int(last["step"]) if last else 0
            w.total_steps = plan.get("total_steps") or None
            w.loss = loss_points(self.steps)
            drawn = _metrics_of(plan)
            w.metrics = [list(m) for m in drawn]
            w.evals = [{k: json_value(r.get(k)) for k in ("step", "epoch", "loss", *(m[0] for m in drawn))}
                       for r in self.evals]
            w.events = [{"step": json_value(r.get("step")), "text": str(r.get("text", ""))}
                        for r in self.events[-MAX_EVENTS:]]
            w.texts = self._texts()

    def _texts(self) -> dict:
        plan, summary, last = self.plan, self.summary, self.steps[-1] if self.steps else None
        status = {"pending": "waiting to start", "running": "training", "finished": "finished",
                  "stopped": "stopped", "interrupted": "interrupted", "failed": "failed"}.get(self.status, self.status)
        if self.status == "running" and self.stop_requested:
            status = "stopping after this step"
        elif self.status == "stopped" and summary.get("stopped_at"):
            status = f"stopped at step {summary['stopped_at']:,}"
        progress = ""
        if last is not None:
            total = plan.get("total_steps")
            progress = f"step {last['step']:,}" + (f" of {total:,}" if total else "")
            if last.get("epoch") is not None:
                progress += f" · epoch {_epoch(last['epoch'])}" + (f" of {plan['epochs']}" if plan.get("epochs")
                                                                   else "")
        elif self.status == "running" and plan.get("method") == "head":
            progress = "features through the engine, then one fit of the head"
        elif plan:
            progress = f"{plural(plan.get('train') or 0, 'training text')}, {plan.get('held_out') or 0:,} held out"
        seconds = summary.get("seconds") if self.status not in ("pending", "running") else None
        remaining = self.remaining if self.status == "running" else None
        best = ""
        key, name, _ = _metrics_of(plan)[0]
        scored = [r for r in self.evals if _finite(r.get(key)) is not None]
        if scored:
            top = max(scored, key=lambda r: r[key])
            best = f"best {name} {top[key]:.3f} (epoch {_epoch(top.get('epoch'))})"
        loss = _finite(last.get("loss")) if last else None
        return {
            "status": status,
            "progress": progress,
            "elapsed": f"elapsed {clock(seconds if seconds is not None else self.elapsed)}" if plan else "",
            "remaining": f"about {clock(remaining)} left" if remaining is not None else "",
            "loss": f"loss {loss:.4f}" if loss is not None else "",
            "best": best,
            "result": _result(self.status, summary),
            "stop_note": "" if self.widget.live_stop else NO_LIVE_STOP,
        }


def _method(plan: dict) -> str:
    method, base = plan.get("method"), plan.get("base")
    return f"{method} of {base}" if method and base else str(method or base or "")


def _result(status: str, summary: dict) -> str:
    """The end of the run in one line: held-out metrics with intervals, agreement with a teacher, where it went."""
    if status == "failed":
        return f"failed: {summary.get('error', '')}".strip()
    if status == "interrupted":
        return "interrupted: nothing was saved"
    metrics = summary.get("metrics") or {}
    named = (("accuracy", "held-out accuracy"), ("macro_f1", "macro-F1"), ("f1", "held-out entity F1"),
             ("precision", "precision"), ("recall", "recall"))
    parts = [p for p in (_metric(metrics, key, name) for key, name in named) if p]
    agreement = _finite(metrics.get("agreement"))
    if agreement is None and isinstance(metrics.get("agreement"), dict):
        agreement = _finite(metrics["agreement"].get("value"))
    if agreement is not None:
        parts.append(f"agreement with the teacher {agreement:.3f}")
    if summary.get("seconds") is not None:
        parts.append(f"in {clock(summary['seconds'])}")
    if summary.get("out"):
        parts.append(f"saved to {summary['out']}")
    return " · ".join(parts)


def _listen_while_busy(comm, on_stop) -> bool:
    """Make ``comm`` note a Stop from the browser while the kernel's main thread is busy (ipykernel 7's shell
    channel thread asks the comm where to route each message first). Returns whether that is possible."""
    route = getattr(comm, "_reply_subshell_for", None)
    kernel = getattr(comm, "kernel", None)
    if route is None or kernel is None or getattr(kernel, "shell_channel_thread", None) is None:
        return False

    def peek(data, default):
        try:
            content = data.get("content") if isinstance(data, dict) and data.get("method") == "custom" else None
            if isinstance(content, dict) and content.get("type") == STOP:
                on_stop()
        except Exception:  # noqa: BLE001 - never break the kernel's routing
            pass
        return route(data, default)

    comm._reply_subshell_for = peek
    return True
