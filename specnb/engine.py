"""The one place that batches.

Inputs are ordered by length (longest first, so the largest batch runs first), cut into batches,
each padded only to its own longest member by the backend's step, run under
``torch.inference_mode()`` when the backend uses torch, and returned in input order with timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

__all__ = ["RunStats", "run_batches", "length_sorted_batches"]


@dataclass
class RunStats:
    """What one batched run did."""

    items: int = 0
    batches: int = 0
    batch_size: int = 0
    seconds: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)
    batch_items: list[int] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Input indices grouped into batches of similar length, longest batch first.

    The sort is stable, so equal lengths keep input order.
    """
    if batch_size < 1:
        from .errors import SpecnbError

        raise SpecnbError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def run_batches(
    lengths: Sequence[int],
    step: Callable[[list[int]], list],
    *,
    batch_size: int,
    torch_inference: bool = True,
) -> tuple[list, RunStats]:
    """Run ``step`` over length-sorted batches of input indices; results come back in input order.

    Parameters
    ----------
    lengths : sequence of int
        One length per input (tokens where known, else characters).
    step : callable
        Takes a batch as a list of input indices and returns one output per index, in that order.
    batch_size : int
        Items per batch.
    torch_inference : bool
        Run under ``torch.inference_mode()`` (imports torch).
    """
    n = len(lengths)
    results: list = [None] * n
    stats = RunStats(items=n, batch_size=batch_size)
    if n == 0:
        return results, stats
    if torch_inference:
        import torch

        context = torch.inference_mode()
    else:
        context = nullcontext()
    start = time.perf_counter()
    with context:
        for batch in length_sorted_batches(lengths, batch_size):
            t0 = time.perf_counter()
            outputs = step(batch)
            if len(outputs) != len(batch):
                raise RuntimeError(f"backend step returned {len(outputs)} outputs for a batch of {len(batch)}")
            for index, output in zip(batch, outputs):
                results[index] = output
            stats.batch_seconds.append(time.perf_counter() - t0)
            stats.batch_items.append(len(batch))
    stats.batches = len(stats.batch_seconds)
    stats.seconds = time.perf_counter() - start
    return results, stats
