"""The one place that batches.

Every backend hands the engine one length per input and a ``step`` that runs a batch of input
indices. The engine

* orders inputs by length (longest first, so the largest batch runs first) and cuts batches that
  hold at most ``batch_size`` items and at most ``token_budget`` padded tokens, so long inputs go
  in small batches and short ones in large batches;
* runs them under ``torch.inference_mode()`` when the backend uses torch;
* on an out-of-memory error halves the batch, lowers the token budget for the rest of the run
  and carries on; an input that does not fit even alone becomes an `Invalid` prediction instead
  of ending the run;
* shares each batch's time among its items by tokens (per-item latency) and shows a
  progress bar (``specnb.progress.bar``: tqdm) once a run has taken longer than ``config.progress_delay`` seconds.

Results come back in input order with a `RunStats`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

from .errors import InputError, ModelOutputError

#: What an endpoint model's run counts (`RunStats` fields; `specnb.backends.endpoint_client.SendStats` has the first five).
ENDPOINT_COUNTS = ("requests", "cached", "retries", "rate_limited", "failed", "input_tokens", "output_tokens")

__all__ = ["ENDPOINT_COUNTS", "RunStats", "PeakMemory", "run_batches", "scatter", "length_sorted_batches", "plan_batches", "is_out_of_memory"]


@dataclass
class RunStats:
    """What one batched run did.

    Attributes
    ----------
    items : int
        Inputs in the run.
    batches : int
        Batches that completed (out-of-memory attempts not counted).
    batch_size : int
        The largest number of items per batch allowed.
    token_budget : int or None
        Padded tokens per batch allowed at the start of the run (None: no limit).
    final_token_budget : int or None
        The budget at the end: lower than ``token_budget`` after out-of-memory errors.
    seconds : float
        Wall time of the whole run, failed attempts included.
    batch_seconds, batch_items, batch_tokens : list
        Per completed batch: its time, its item count and its padded token count.
    item_seconds : list of float
        Per input, in input order: its batch's time shared by tokens (0 for inputs that failed).
    oom_retries : int
        Out-of-memory errors that made the engine halve a batch.
    oom_failures : int
        Inputs that ran out of memory even alone (they hold `Invalid` predictions).
    method : str or None
        How an endpoint model answered (``rank``, ``choice``, ``generate``, ...); None in the kernel.
    requests, cached, retries, rate_limited, failed : int
        An endpoint model's requests sent (retries included), answers taken from the response cache,
        retries, 429 answers, and items whose request failed for good (they hold `Invalid`).
    input_tokens, output_tokens : int
        Prompt and completion tokens of an endpoint model's answers (the server's ``usage``), cached ones
        included.
    """

    items: int = 0
    batches: int = 0
    batch_size: int = 0
    token_budget: int | None = None
    final_token_budget: int | None = None
    seconds: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)
    batch_items: list[int] = field(default_factory=list)
    batch_tokens: list[int] = field(default_factory=list)
    item_seconds: list[float] = field(default_factory=list)
    oom_retries: int = 0
    oom_failures: int = 0
    method: str | None = None
    requests: int = 0
    cached: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add_shared(self, seconds: float) -> None:
        """Count time spent once for the whole run (tokenizing, a shared prompt prefix) in
        ``seconds`` and, shared equally, in every input's latency."""
        self.seconds += seconds
        ran = [i for i, s in enumerate(self.item_seconds) if s > 0]
        for i in ran:
            self.item_seconds[i] += seconds / len(ran)

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")

    def latency(self, quantile: float) -> float:
        """Per-item latency (seconds) at ``quantile`` in [0, 1], over the inputs that ran (inputs
        refused before the model or lost to out-of-memory hold 0.0 and are left out); NaN if none ran."""
        ordered = sorted(s for s in self.item_seconds if s > 0)
        if not ordered:
            return float("nan")
        position = quantile * (len(ordered) - 1)
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    @property
    def p50(self) -> float:
        return self.latency(0.50)

    @property
    def p95(self) -> float:
        return self.latency(0.95)

    @property
    def p99(self) -> float:
        return self.latency(0.99)

    def to_dict(self) -> dict:
        """The figures people compare, as plain numbers."""
        return {
            "items": self.items,
            "batches": self.batches,
            "seconds": self.seconds,
            "items_per_second": self.items_per_second,
            "p50_seconds": self.p50,
            "p95_seconds": self.p95,
            "p99_seconds": self.p99,
            "oom_retries": self.oom_retries,
            "oom_failures": self.oom_failures,
        }


class PeakMemory:
    """Measures how far memory rises above its starting level while a block runs.

    On CUDA: the allocator's peak (``torch.cuda.max_memory_allocated``) minus the allocation at the
    start. Elsewhere: the process's resident memory, sampled every ``interval`` seconds by a
    background thread. ``peak_bytes`` holds the result after the block (never below 0)::

        with PeakMemory("cpu") as meter:
            model.predict(texts)
        meter.peak_bytes
    """

    def __init__(self, device: str = "cpu", interval: float = 0.005):
        self.device = device
        self.interval = interval
        self.peak_bytes = 0
        self._thread = None

    def _cuda(self) -> bool:
        return self.device.startswith("cuda")

    def __enter__(self) -> PeakMemory:
        if self._cuda():
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        import threading

        import psutil

        process = psutil.Process()
        self._start = self._high = process.memory_info().rss
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                self._high = max(self._high, process.memory_info().rss)

        self._thread = threading.Thread(target=sample, name="specnb-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda():
            import torch

            torch.cuda.synchronize(self.device)
            high = torch.cuda.max_memory_allocated(self.device)
        else:
            import psutil

            self._stop.set()
            self._thread.join()
            high = max(self._high, psutil.Process().memory_info().rss)
        self.peak_bytes = max(0, int(high - self._start))


def _check_positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def plan_batches(lengths: Sequence[int], batch_size: int, token_budget: int | None = None) -> list[list[int]]:
    """Input indices grouped into batches of similar length, longest batch first.

    A batch holds at most ``batch_size`` items and, when ``token_budget`` is set, at most
    ``token_budget`` padded tokens (items x its longest length); an input longer than the budget
    goes alone. The sort is stable, so equal lengths keep input order.
    """
    _check_positive("batch_size", batch_size)
    if token_budget is not None:
        _check_positive("token_budget", token_budget)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current:
            longest = max(lengths[current[0]], 1)  # the first item of a batch is its longest
            full = len(current) >= batch_size
            over = token_budget is not None and (len(current) + 1) * longest > token_budget
            if full or over:
                batches.append(current)
                current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """`plan_batches` without a token budget."""
    return plan_batches(lengths, batch_size)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device out-of-memory error (CUDA, MPS or XPU)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if k)
        if kinds and isinstance(exc, kinds):
            return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_device_cache() -> None:
    """Release the cached blocks of the CUDA allocator (after an out-of-memory error)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _oom_prediction(length: int, message: str):
    from .tasks.types import Invalid

    first = message.strip().splitlines()[0] if message.strip() else "out of memory"
    return Invalid(
        raw="",
        reason=f"out of memory on this input alone ({length} tokens): {first[:200]}; "
        "truncate it, free device memory or use a smaller dtype",
    )


def run_batches(
    lengths: Sequence[int],
    step: Callable[[list[int]], list],
    *,
    batch_size: int,
    token_budget: int | None = None,
    torch_inference: bool = True,
    progress: bool | None = None,
    desc: str | None = None,
) -> tuple[list, RunStats]:
    """Run ``step`` over length-sorted batches of input indices; results come back in input order.

    Parameters
    ----------
    lengths : sequence of int
        One length per input (tokens where known, else characters).
    step : callable
        Takes a batch as a list of input indices and returns one output per index, in that order.
    batch_size : int
        Items per batch at most.
    token_budget : int, optional
        Padded tokens per batch at most (see `plan_batches`).
    torch_inference : bool
        Run under ``torch.inference_mode()`` (imports torch) and back off on out-of-memory errors.
    progress : bool, optional
        Show a progress bar once the run passes ``config.progress_delay`` seconds; default
        ``config.progress``.
    desc : str, optional
        The progress bar's label.
    """
    from .settings import config

    n = len(lengths)
    results: list = [None] * n
    stats = RunStats(items=n, batch_size=batch_size, token_budget=token_budget, item_seconds=[0.0] * n)
    queue = deque(plan_batches(lengths, batch_size, token_budget))
    if n == 0:
        return results, stats
    if torch_inference:
        import torch

        context = torch.inference_mode()
    else:
        context = nullcontext()
    show = config.progress if progress is None else progress
    bar = None
    if show:
        from .progress import bar as progress_bar

        bar = progress_bar(total=n, desc=desc, unit="item", delay=config.progress_delay, leave=False)
    budget = token_budget  # lowered after an out-of-memory error
    start = time.perf_counter()
    try:
        with context:
            while queue:
                batch = queue.popleft()
                padded = len(batch) * max(max(lengths[i] for i in batch), 1)
                if budget is not None and padded > budget and len(batch) > 1:
                    # An earlier batch ran out of memory: cut this one down to the lowered budget.
                    parts = plan_batches([lengths[i] for i in batch], len(batch), budget)
                    queue.extendleft(reversed([[batch[j] for j in part] for part in parts]))
                    continue
                t0 = time.perf_counter()
                failure = None
                try:
                    outputs = step(batch)
                except Exception as exc:
                    if not (torch_inference and is_out_of_memory(exc)):
                        raise
                    failure = str(exc) or type(exc).__name__  # keep the words, not the traceback's tensors
                if failure is not None:
                    free_device_cache()
                    if len(batch) == 1:
                        results[batch[0]] = _oom_prediction(lengths[batch[0]], failure)
                        stats.oom_failures += 1
                        if bar is not None:
                            bar.update(1)
                        continue
                    stats.oom_retries += 1
                    half = len(batch) // 2
                    budget = max(1, padded // 2)
                    queue.appendleft(batch[half:])
                    queue.appendleft(batch[:half])
                    continue
                seconds = time.perf_counter() - t0
                if len(outputs) != len(batch):
                    raise ModelOutputError(f"backend step returned {len(outputs)} outputs for a batch of {len(batch)}; "
                                           "a backend must answer every item of its batch, in order")
                tokens = sum(max(lengths[i], 1) for i in batch)
                for index, output in zip(batch, outputs):
                    results[index] = output
                    stats.item_seconds[index] = seconds * max(lengths[index], 1) / tokens
                stats.batch_seconds.append(seconds)
                stats.batch_items.append(len(batch))
                stats.batch_tokens.append(padded)
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    stats.batches = len(stats.batch_seconds)
    stats.final_token_budget = budget
    stats.seconds = time.perf_counter() - start
    return results, stats


def scatter(n: int, indices: Sequence[int], outputs: list, stats: RunStats, fill: Callable[[int], object]):
    """Put a run over some of ``n`` inputs (those at ``indices``, in order) back in place.

    Returns (one result per input, ``stats``): the others get ``fill(i)``, and ``stats`` is made to
    cover all ``n`` inputs (``items``, and 0.0 s in ``item_seconds`` for inputs that never ran).
    """
    results: list = [None] * n
    seconds = [0.0] * n
    for i, output, spent in zip(indices, outputs, stats.item_seconds):
        results[i], seconds[i] = output, spent
    ran = set(indices)
    for i in range(n):
        if i not in ran:
            results[i] = fill(i)
    stats.items, stats.item_seconds = n, seconds
    return results, stats
