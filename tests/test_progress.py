"""specnb's progress bars outside a notebook: on a terminal, tqdm's as they are; on a stream that is not one (a
log file, a pipe) one line per bar, written when it closes, so a log reads each bar's final state once.

The bars run in a child process with stdout and stderr piped, as ``make demo > log`` runs. ``mininterval=0``
makes tqdm redraw on every update (what a slow run does), so the last update draws the final state and the
close would draw it again: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import specnb
from specnb import progress


def _piped(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="100")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=600)  # a hang guard only
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_a_bar_on_a_pipe_writes_its_final_line_once():
    done = _piped("""
        import sys
        from specnb import progress
        assert "tqdm" not in sys.modules  # importing specnb.progress stays light
        bar = progress.bar(total=3, desc="scoring", unit="item", mininterval=0)
        for _ in range(3):
            bar.update(1)
        bar.close()
        print("after the bar", flush=True)
    """)
    assert done.stdout == "after the bar\n"
    assert "\r" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("scoring: 100%") and "3/3" in lines[0] and "item/s" in lines[0]
    assert done.stderr.count("scoring") == 1 and done.stderr.endswith("\n")


def test_on_a_pipe_each_bar_is_one_line_whatever_it_ends_as():
    done = _piped("""
        from specnb import progress
        with progress.bar(total=2, desc="as a context", mininterval=0) as bar:
            bar.update(2)
            bar.write("a message while it runs")
        bar = progress.bar(total=3, desc="left out", leave=False, mininterval=0)
        bar.update(3)
        bar.close()
        bar = progress.bar(total=4, desc="stopped short", mininterval=0)
        bar.update(1)
        bar.close()
        bar = progress.bar(total=4, desc="disabled", disable=True)
        bar.update(4)
        bar.close()
        bar = progress.bar(total=4, desc="not yet shown", delay=3600, mininterval=0)  # closed before its delay
        bar.update(4)
        bar.close()
        for _ in progress.bar(iterable=range(5), desc="iterated", mininterval=0):
            pass
    """)
    assert done.stdout == "a message while it runs\n"  # tqdm.write: stdout, with no bar to clear around it
    assert "\r" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 4, done.stderr
    assert lines[0].startswith("as a context: 100%") and "2/2" in lines[0]
    assert lines[1].startswith("left out: 100%") and "3/3" in lines[1]  # a log keeps it, leave=False or not
    assert lines[2].startswith("stopped short:  25%") and "1/4" in lines[2]
    assert lines[3].startswith("iterated: 100%") and "5/5" in lines[3]


def test_a_comparison_on_a_pipe_writes_each_models_bar_once():
    """The demo's path: `specnb.compare` with a bar per model (``progress_delay = 0``: bars from the start)."""
    done = _piped("""
        import specnb
        specnb.config.progress_delay = 0
        texts = [f"text {i}" for i in range(50)]
        cmp = specnb.compare("langid", texts, [lambda t: ["en"] * len(t), lambda t: ["fr"] * len(t)],
                             labels=["en"] * 50, store=False)
        print(cmp.models)
    """)
    assert "\r" not in done.stderr
    bars = [line for line in done.stderr.splitlines() if " langid: " in line]
    assert len(bars) == 2 and len(done.stderr.splitlines()) == 2, done.stderr
    models = json.loads(done.stdout.strip().replace("'", '"'))
    for model, line in zip(models, bars):
        assert line.startswith(f"{model} langid: 100%") and "50/50" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_tqdms_own():
    from tqdm.auto import tqdm

    screen = _Terminal()
    bar = progress.bar(total=2, desc="live", file=screen, mininterval=0)
    assert type(bar) is tqdm
    bar.update(2)
    bar.close()
    assert screen.getvalue().startswith("\rlive:") and screen.getvalue().count("\r") >= 2  # redrawn in place


def test_the_notebook_layers_factory_is_used_as_it_is():
    made = []

    def factory(**kwargs):
        made.append(kwargs)
        return "a bar"

    progress.use(factory)
    try:
        assert progress.bar(total=3, desc="x") == "a bar"
    finally:
        progress.use(None)
    assert made == [{"total": 3, "desc": "x"}]
    assert type(progress.bar(total=1, file=io.StringIO(), disable=True)).__name__ == "LogBar"
    assert specnb.progress is progress
