"""The engine: length-sorted batches, input order, inference mode, stats."""

import pytest

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
