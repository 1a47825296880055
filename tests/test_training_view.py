"""The training view: its state after monitor calls, Stop from the front end (simulated, then through a real
kernel while a cell is busy), escaping, and the static snapshot a saved notebook keeps."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from specnb.widgets.training_view import MAX_POINTS, NO_LIVE_STOP, TrainingView, clock, loss_points

from fakes import record_comms

PLAN = {"alias": "sent", "base": "minilm", "method": "finetune", "task": "sentiment", "epochs": 2, "total_steps": 10,
        "train": 40, "held_out": 10, "batch_size": 8, "metric": "accuracy"}


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch):
    record_comms(monkeypatch)


def view(**kwargs) -> TrainingView:
    return TrainingView(display=False, **kwargs)


def updates(widget) -> list[dict]:
    sent, widget.comm.sent = widget.comm.sent, []
    return [data["state"] for kind, data in sent if kind == "comm_msg" and data.get("method") == "update"]


def from_browser(widget, content: dict) -> None:
    """What the front end's ``model.send(content)`` delivers."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def run(v: TrainingView, steps: int = 10, *, stop_at: int | None = None) -> None:
    """Drives ``v`` as `specialize` does: start, steps with an evaluation per epoch of 5 steps, an event, end."""
    v.on_start(PLAN)
    for step in range(1, steps + 1):
        v.on_step({"step": step, "epoch": step / 5, "loss": 1.0 / step, "learning_rate": 1e-4, "elapsed": step * 0.5})
        if step == 3:
            v.on_event({"step": 3, "elapsed": 1.5, "text": "out of memory: batch 8 → 4, training starts again"})
        if step % 5 == 0 or step == stop_at:
            v.on_evaluate({"step": step, "epoch": step / 5, "accuracy": 0.5 + step / 40, "macro_f1": 0.4 + step / 40,
                           "loss": 0.7, "elapsed": step * 0.5})
        if v.stop_requested:
            break
    stopped = v.stop_requested
    v.on_end("stopped" if stopped else "finished",
             {"metrics": {"accuracy": {"value": 0.75, "low": 0.6, "high": 0.86},
                          "macro_f1": {"value": 0.7, "low": 0.55, "high": 0.82}},
              "seconds": 5.0, "out": "/tmp/specialists/sent", "alias": "sent",
              "stopped_at": v.steps[-1]["step"] if stopped else None})


# -- state --------------------------------------------------------------------------------------------
def test_the_widget_holds_the_run_after_the_monitor_calls():
    v = view()
    w = v.widget
    assert w.status == "pending" and w.loss == [] and w.live_stop is False  # no kernel here
    run(v)
    assert w.status == "finished" and not w.stopping
    assert w.title == "sent · finetune of minilm · sentiment"
    assert w.step == 10 and w.total_steps == 10
    assert w.loss == [[s, 1.0 / s] for s in range(1, 11)]
    assert [(r["step"], r["accuracy"]) for r in w.evals] == [(5, 0.625), (10, 0.75)]
    assert w.events == [{"step": 3, "text": "out of memory: batch 8 → 4, training starts again"}]
    texts = w.texts
    assert texts["status"] == "finished"
    assert texts["progress"] == "step 10 of 10 · epoch 2 of 2"
    assert texts["loss"] == "loss 0.1000"
    assert texts["best"] == "best held-out accuracy 0.750 (epoch 2)"
    assert texts["elapsed"] == "elapsed 5.0 s" and texts["remaining"] == ""
    assert texts["result"] == ("held-out accuracy 0.750 [0.600, 0.860] · macro-F1 0.700 [0.550, 0.820] · in 5.0 s · "
                               "saved to /tmp/specialists/sent")
    assert texts["stop_note"] == NO_LIVE_STOP
    # what the view keeps is the monitor's own record
    assert len(v.steps) == 10 and len(v.evals) == 2 and v.status == "finished"


def test_a_ner_run_draws_entity_f1_and_token_accuracy():
    v = view()
    v.on_start({**PLAN, "task": "ner", "metric": "f1"})
    for step in (1, 2):
        v.on_step({"step": step, "epoch": step / 2, "loss": 1.0 / step, "elapsed": step * 0.5})
    v.on_evaluate({"step": 2, "epoch": 1.0, "accuracy": None, "macro_f1": None, "f1": 0.5, "precision": 0.6,
                   "recall": 0.4, "token_accuracy": 0.9, "loss": 0.3, "elapsed": 1.0})
    v.on_end("finished", {"metrics": {"f1": {"value": 0.5, "low": 0.3, "high": 0.7},
                                      "precision": {"value": 0.6, "low": 0.4, "high": 0.8}}, "seconds": 1.0})
    w = v.widget
    assert [m[0] for m in w.metrics] == ["f1", "token_accuracy"]
    assert w.evals == [{"step": 2, "epoch": 1.0, "loss": 0.3, "f1": 0.5, "token_accuracy": 0.9}]
    assert w.texts["best"] == "best held-out entity F1 0.500 (epoch 1)"
    assert w.texts["result"].startswith("held-out entity F1 0.500 [0.300, 0.700] · precision 0.600 [0.400, 0.800]")
    snapshot = w.snapshot_html()
    assert "held-out entity F1" in snapshot and "token accuracy" in snapshot and "macro-F1" not in snapshot


def test_steps_are_throttled_but_the_first_evaluations_events_and_the_end_always_go():
    v = view(sync_interval=3600)  # no step is due by time: only what is always sent
    v.widget.comm.sent = []
    run(v)
    steps = [u["step"] for u in updates(v.widget) if "step" in u]
    # step 1 (the first), 3 (an event), 5 and 10 (evaluations); the end changes no step
    assert steps == [1, 3, 5, 10]
    assert v.widget.loss == [[s, 1.0 / s] for s in range(1, 11)]  # the end sends everything


def test_every_step_is_sent_without_a_throttle():
    v = view(sync_interval=0)
    v.on_start(PLAN)
    v.widget.comm.sent = []
    for step in range(1, 4):
        v.on_step({"step": step, "epoch": 0.1 * step, "loss": 0.5, "elapsed": step})
    assert [u["step"] for u in updates(v.widget) if "step" in u] == [1, 2, 3]
    assert v.widget.texts["remaining"] == "about 7.0 s left"  # 1 s a step, 7 steps to go


def test_a_long_loss_curve_crosses_the_comm_as_at_most_max_points_means():
    steps = [{"step": s, "loss": float(s % 7)} for s in range(1, 10_001)]
    points = loss_points(steps)
    assert len(points) <= MAX_POINTS and points[-1][0] == 10_000
    mean = sum(r["loss"] for r in steps) / len(steps)
    assert abs(sum(v for _, v in points) / len(points) - mean) < 0.05
    assert loss_points([{"step": 1, "loss": float("nan")}, {"step": 2, "loss": None}, {"step": 3, "loss": 2}]) == [[3, 2]]


@pytest.mark.parametrize("seconds, text", [(None, "–"), (3.25, "3.2 s"), (42, "42 s"), (187, "3 min 07 s"),
                                           (3725, "1 h 02 min")])
def test_times_read_as_a_timer(seconds, text):
    assert clock(seconds) == text


def test_the_head_method_has_no_steps_and_ends_with_its_metrics():
    v = view()
    v.on_start({**PLAN, "method": "head", "epochs": None, "total_steps": None})
    assert v.widget.texts["progress"] == "features through the engine, then one fit of the head"
    v.on_end("finished", {"metrics": {"accuracy": {"value": 0.9, "low": 0.8, "high": 0.95}}, "seconds": 2.0})
    assert v.widget.loss == [] and v.widget.total_steps is None
    assert v.widget.texts["result"] == "held-out accuracy 0.900 [0.800, 0.950] · in 2.0 s"
    assert "<svg" not in v.widget.snapshot_html()  # no curve to draw


def test_a_failed_run_says_why():
    v = view()
    v.on_start(PLAN)
    v.on_end("failed", {"seconds": 1.0, "error": "RuntimeError: boom"})
    assert v.widget.status == "failed" and v.widget.texts["result"] == "failed: RuntimeError: boom"


# -- stop ---------------------------------------------------------------------------------------------
def test_stop_from_the_front_end_stops_after_the_current_step():
    v = view(sync_interval=3600)
    v.on_start(PLAN)
    v.on_step({"step": 1, "epoch": 0.2, "loss": 1.0, "elapsed": 0.5})
    v.widget.comm.sent = []
    from_browser(v.widget, {"type": "stop"})
    assert v.stop_requested and v.widget.stopping
    assert v.widget.texts["status"] == "stopping after this step"
    assert any(u.get("stopping") is True for u in updates(v.widget))  # sent at once, throttle or not
    v.on_step({"step": 2, "epoch": 0.4, "loss": 0.9, "elapsed": 1.0})
    v.on_end("stopped", {"seconds": 1.0, "stopped_at": 2, "metrics": {}})
    assert v.widget.status == "stopped" and not v.widget.stopping
    assert v.widget.texts["status"] == "stopped at step 2"
    from_browser(v.widget, {"type": "stop"})  # a late click changes nothing
    from_browser(v.widget, {"type": "something else"})
    assert v.widget.status == "stopped"


def test_the_stop_is_noted_in_the_shell_channel_thread_when_the_kernel_routes_comms():
    """ipykernel 7 asks a comm where its message goes before queueing it; the view's comm notes a Stop there."""
    from specnb.widgets.training_view import _listen_while_busy

    routed = []

    class Comm:
        kernel = type("Kernel", (), {"shell_channel_thread": object()})()

        def _reply_subshell_for(self, data, default):
            routed.append(data)
            return default

    stops = []
    c = Comm()
    assert _listen_while_busy(c, lambda: stops.append(1)) is True
    assert c._reply_subshell_for({"method": "custom", "content": {"type": "stop"}}, None) is None
    assert c._reply_subshell_for({"method": "update", "state": {"type": "stop"}}, "sub") == "sub"
    assert c._reply_subshell_for("not a dict", None) is None
    assert stops == [1] and len(routed) == 3  # routed as before, every time
    assert _listen_while_busy(object(), lambda: None) is False  # ipykernel 6: no such hook


def test_in_a_kernel_specialize_reports_to_the_training_view_unless_progress_is_off(specnb_home):
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    import specnb
    from specnb._specialize.monitor import BarMonitor, TrainingMonitor, monitor_for
    from specnb.widgets import display

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    try:
        assert display.register(shell) is False and isinstance(monitor_for(None), BarMonitor)  # not a kernel
        shell.kernel = object()  # what a Jupyter kernel's shell has
        assert display.register(shell) is True
        assert isinstance(monitor_for(None), TrainingView)
        assert isinstance(monitor_for(True), BarMonitor) and type(monitor_for(False)) is TrainingMonitor
        specnb.config.progress = False
        assert type(monitor_for(None)) is TrainingMonitor
        display.unregister(shell)
        assert isinstance(monitor_for(None), BarMonitor)
    finally:
        display.unregister(shell)
        shell.configurables.clear()


# -- escaping and the snapshot ------------------------------------------------------------------------
def test_texts_reach_the_snapshot_escaped():
    v = view()
    v.on_start({**PLAN, "alias": "<b>x</b>", "base": '"><img src=x onerror=alert(1)>'})
    v.on_event({"step": 0, "elapsed": 0.0, "text": "<script>alert(2)</script>"})
    v.on_end("failed", {"error": "ValueError: <i>bad</i>"})
    html = v.widget.snapshot_html()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<img" not in html and "<script" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html and "&lt;i&gt;bad&lt;/i&gt;" in html
    assert v.widget.title.startswith("<b>x</b>")  # the trait is text: the front end writes it as text


def test_the_snapshot_keeps_the_final_charts_and_figures():
    v = view()
    run(v)
    data, _ = v.widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and "text/plain" in data
    html = data["text/html"]
    assert 'data-specnb-snapshot="TrainingWidget"' in html and "Saved snapshot" in html
    assert html.count("<svg") == 2 and html.count("<polyline") == 3  # loss; accuracy and macro-F1
    assert "training loss per step" in html and "held-out metrics per evaluation" in html
    for text in ("sent · finetune of minilm · sentiment", "finished", "step 10 of 10 · epoch 2 of 2",
                 "best held-out accuracy 0.750 (epoch 2)", "held-out accuracy 0.750 [0.600, 0.860]",
                 "out of memory: batch 8 → 4"):
        assert text in html, text


# -- a real kernel ------------------------------------------------------------------------------------
BUSY_CELL = textwrap.dedent("""
    import time
    import specnb
    from specnb._specialize.monitor import monitor_for
    from specnb.widgets.training_view import TrainingView
    print("DEFAULT", type(monitor_for(None)).__name__, flush=True)  # import specnb in a kernel: the view
    view = TrainingView(sync_interval=0.05)
    view.on_start({"alias": "busy", "base": "tiny", "method": "finetune", "task": "sentiment", "epochs": 1,
                   "total_steps": 10**9, "train": 10, "held_out": 2})
    print("COMM", view.widget.comm.comm_id, view.widget.live_stop, flush=True)
    step, deadline = 0, time.monotonic() + 600  # a hang guard: the Stop ends it, however long it takes to arrive
    while time.monotonic() < deadline:  # at least one step, however soon the Stop arrives
        step += 1
        view.on_step({"step": step, "epoch": 0.0, "loss": 1.0, "elapsed": view.elapsed})
        sum(range(20_000))
        if view.stop_requested:
            break
    view.on_end("stopped" if view.stop_requested else "finished", {"seconds": view.elapsed, "stopped_at": step})
    print("END", view.status, step, flush=True)
""")


def test_stop_reaches_a_kernel_busy_running_the_training_cell():
    """A real ipykernel runs a cell that trains until it is asked to stop; a Stop sent on the shell channel while
    the cell runs (as the browser sends it) ends it."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=dict(os.environ), startup_timeout=600)  # hang guards only
    try:
        msg_id = kc.execute(BUSY_CELL)
        comm_id = live = None
        lines, shown = [], []
        while True:
            msg = kc.get_iopub_msg(timeout=600)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                lines.append(content["text"])
                if comm_id is None and content["text"].startswith("COMM"):
                    _, comm_id, live = content["text"].split()
                    kc.shell_channel.send(kc.session.msg("comm_msg", {
                        "comm_id": comm_id, "data": {"method": "custom", "content": {"type": "stop"}}}))
            elif kind in ("display_data", "update_display_data"):
                shown.append((kind, content["data"]))
            elif kind == "error":
                pytest.fail("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        assert "DEFAULT TrainingView\n" in lines
        assert live == "True", "ipykernel 7 routes comm messages in its shell channel thread"
        assert any(line.startswith("END stopped") for line in lines), lines
        # shown when training started, redisplayed at the end with the final snapshot
        assert [kind for kind, _ in shown] == ["display_data", "update_display_data"]
        final = shown[-1][1]
        assert "application/vnd.jupyter.widget-view+json" in final
        assert "stopped at step" in final["text/html"]
        json.dumps(final)  # the bundle is plain JSON
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
