"""The engine: length-sorted batches, input order, inference mode, stats."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specnb.engine import length_sorted_batches, run_batches


def test_batches_group_similar_lengths_longest_first_and_cover_every_index_once():
    lengths = [5, 1, 9, 3, 9, 2, 7]
    batches = length_sorted_batches(lengths, 3)
    assert batches == [[2, 4, 6], [0, 3, 5], [1]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_results_come_back_in_input_order():
    lengths = [3, 10, 1, 7, 7, 2]
    seen = []

    def step(batch):
        seen.append(list(batch))
        return [f"item{i}" for i in batch]

    results, stats = run_batches(lengths, step, batch_size=2, torch_inference=False)
    assert results == [f"item{i}" for i in range(6)]
    assert seen[0] == [1, 3]  # the longest items run first
    assert stats.items == 6 and stats.batches == 3 and stats.batch_items == [2, 2, 2]
    assert stats.seconds >= sum(stats.batch_seconds) * 0.99


def test_steps_run_under_torch_inference_mode():
    import torch

    flags = []
    run_batches([1, 2], lambda b: [flags.append(torch.is_inference_mode_enabled()) for _ in b], batch_size=1)
    assert flags == [True, True]
    assert not torch.is_inference_mode_enabled()


def test_empty_input_and_bad_batch_size():
    results, stats = run_batches([], lambda b: b, batch_size=4, torch_inference=False)
    assert results == [] and stats.items == 0
    from specnb import SpecnbError

    with pytest.raises(SpecnbError, match="positive integer"):
        run_batches([1], lambda b: b, batch_size=0, torch_inference=False)


def test_a_step_returning_the_wrong_count_is_an_error():
    with pytest.raises(RuntimeError, match="returned 1 outputs for a batch of 2"):
        run_batches([1, 1], lambda b: [None], batch_size=2, torch_inference=False)


@given(st.lists(st.integers(min_value=0, max_value=500), max_size=60), st.integers(min_value=1, max_value=9))
def test_batching_invariants_hold_for_any_lengths(lengths, batch_size):
    batches = length_sorted_batches(lengths, batch_size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every input exactly once
    assert all(len(b) == batch_size for b in batches[:-1]) and all(0 < len(b) <= batch_size for b in batches)
    for earlier, later in zip(batches, batches[1:]):
        assert min(lengths[i] for i in earlier) >= max(lengths[i] for i in later)  # longest batches first
    results, _ = run_batches(lengths, lambda b: [lengths[i] * 10 + 1 for i in b], batch_size=batch_size,
                             torch_inference=False)
    assert results == [n * 10 + 1 for n in lengths]  # back in input order
