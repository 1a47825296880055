"""Runs one notebook the way a Binder user does, and measures the kernel's peak resident memory.

tests/test_binder.py starts this script with the python of the virtual environment built from
binder/requirements.txt alone (it imports nothing from the test environment), once per notebook:

    python binder_run.py NOTEBOOK WORKDIR RESULT_JSON EXECUTED_IPYNB

nbclient starts the ``python3`` kernel, i.e. this python's ipykernel, with its cwd set to WORKDIR (Binder's
kernel runs in the notebook's folder), and executes every cell. The result JSON holds:

- ``peak_rss_bytes``: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the kernel has exited and been reaped.
  The kernel is this process's only child and this process runs a single notebook, so the figure is the
  kernel's lifetime peak resident set (or that of a process the kernel started and reaped, if larger).
- ``kernel_vmhwm_bytes``: the kernel's own ``VmHWM`` (/proc/<pid>/status) after its last cell: the same
  high-water mark seen from the other side, a cross-check.
- ``peak_anon_bytes`` / ``peak_file_bytes``: the largest ``RssAnon`` (heap, tensors) and ``RssFile``
  (mapped files: libraries, memory-mapped weights) seen by sampling every 0.1 s. Only the anonymous part
  must stay resident; the kernel cannot give clean file pages back, but a memory cgroup can.
- ``cells``: per code cell, the kernel's VmHWM / VmRSS / RssAnon after it, and the largest VmRSS / RssAnon /
  RssFile sampled while it ran, in bytes (where the peak comes from).
- ``kernel_argv0``: the kernel's executable as launched (this python, or the run did not test the Binder env).
- ``error``: the cell error (ANSI colours removed), or None.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import threading
import time
import traceback
from pathlib import Path

#: Hang guard only: the slowest cell (fine-tuning on 2 CPUs) takes minutes, not half an hour.
CELL_TIMEOUT_S = 1800
SAMPLE_S = 0.1
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status that matter here, in bytes ({} once the process is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {}
    return out


class _Sampler(threading.Thread):
    """Polls the kernel's RssAnon / RssFile until stopped, keeping the largest of each."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_anon = 0
        self.peak_file = 0
        self.cell = {}  # the largest readings since the current cell started
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(SAMPLE_S):
            status = _status(self.pid)
            self.peak_anon = max(self.peak_anon, status.get("RssAnon", 0))
            self.peak_file = max(self.peak_file, status.get("RssFile", 0))
            cell = dict(self.cell)
            for key in ("VmRSS", "RssAnon", "RssFile"):
                cell[key] = max(cell.get(key, 0), status.get(key, 0))
            self.cell = cell

    def cell_peaks(self) -> dict:
        """The sampled peaks since the last call (one cell), in bytes."""
        cell, self.cell = self.cell, {}
        return {"sampled_rss": cell.get("VmRSS", 0), "sampled_anon": cell.get("RssAnon", 0),
                "sampled_file": cell.get("RssFile", 0)}


def main(notebook: str, workdir: str, result_json: str, executed: str) -> int:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    seen: dict = {"cells": []}
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": workdir}})

    def kernel_pid() -> int:
        return client.km.provisioner.process.pid

    def on_cell_start(**_):
        # The kernel is up by the first cell (it is not yet when on_notebook_start runs).
        if "sampler" not in seen:
            pid = kernel_pid()
            try:
                seen["argv0"] = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                seen["argv0"] = None
            seen["sampler"] = _Sampler(pid)
            seen["sampler"].start()

    def on_cell_executed(cell_index, **_):
        # While the kernel is alive (nbclient calls on_notebook_complete after the shutdown). VmHWM only grows,
        # so the last reading is the peak over every cell.
        status = _status(kernel_pid())
        if status:
            seen["vmhwm"] = status["VmHWM"]
            seen["cells"].append({"cell": cell_index, "vmhwm": status["VmHWM"], "vmrss": status["VmRSS"],
                                  "rss_anon": status.get("RssAnon", 0), **seen["sampler"].cell_peaks()})

    client.on_cell_start = on_cell_start
    client.on_cell_executed = on_cell_executed
    error = None
    start = time.monotonic()
    try:
        client.execute()
    except Exception as exc:  # a cell failed (CellExecutionError) or the kernel died: report it, with the memory
        error = _ANSI.sub("", "".join(traceback.format_exception_only(type(exc), exc)))[-4000:]
    wall_s = time.monotonic() - start
    sampler = seen.get("sampler")
    if sampler is not None:
        sampler.halt.set()
        sampler.join()
    nbformat.write(nb, executed)
    # ru_maxrss is in KiB on Linux.
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    vmhwm = seen.get("vmhwm", 0)
    result = {
        "notebook": Path(notebook).name,
        "peak_rss_bytes": max(maxrss, vmhwm),
        "children_maxrss_bytes": maxrss,
        "kernel_vmhwm_bytes": vmhwm,
        "peak_anon_bytes": sampler.peak_anon if sampler else 0,
        "peak_file_bytes": sampler.peak_file if sampler else 0,
        "kernel_argv0": seen.get("argv0"),
        "python": sys.executable,
        "wall_s": round(wall_s, 1),
        "cells": seen["cells"],
        "error": error,
    }
    Path(result_json).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "cells"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
