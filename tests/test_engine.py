"""The engine: length-sorted batches, token budgets, input order, inference mode, out-of-memory back-off,
per-item latency, progress bars and stats."""

import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

import specnb
from specnb.engine import RunStats, is_out_of_memory, length_sorted_batches, plan_batches, run_batches
from specnb.tasks import Invalid


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


# -- plan_batches: batch size and token budget ---------------------------------------------------------

def _padded(batch, lengths):
    """Padded tokens of a batch the way the engine counts them (an empty input counts as one token)."""
    return len(batch) * max(max(lengths[i] for i in batch), 1)


def _check_plan(lengths, batch_size, token_budget, batches):
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every input exactly once
    assert all(0 < len(b) <= batch_size for b in batches)
    for b in batches:
        if token_budget is not None and len(b) > 1:
            assert _padded(b, lengths) <= token_budget, (b, [lengths[i] for i in b])
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    for earlier, later in zip(batches, batches[1:]):
        assert min(lengths[i] for i in earlier) >= max(lengths[i] for i in later)  # longest batches first
        # greedy: a batch is cut only when it is full or the next input would break the budget
        full = len(earlier) == batch_size
        over = token_budget is not None and (len(earlier) + 1) * max(lengths[earlier[0]], 1) > token_budget
        assert full or over


def test_plan_without_budget_is_the_old_plan():
    lengths = [5, 1, 9, 3, 9, 2, 7]
    expected = [[2, 4, 6], [0, 3, 5], [1]]
    assert plan_batches(lengths, 3) == expected
    assert plan_batches(lengths, 3, None) == expected
    assert plan_batches(lengths, 3, 10**9) == expected  # a budget nothing reaches changes nothing
    assert length_sorted_batches(lengths, 3) == expected


def test_plan_cuts_long_inputs_into_small_batches_and_short_ones_into_large():
    lengths = [40, 2, 40, 2, 2, 20, 2, 20, 2, 2]
    batches = plan_batches(lengths, 8, 80)
    assert batches == [[0, 2], [5, 7, 1, 3], [4, 6, 8, 9]]  # 4 x 20 fits 80 tokens; 3 x 40 does not
    _check_plan(lengths, 8, 80, batches)


def test_an_input_longer_than_the_budget_goes_alone():
    lengths = [3, 100, 5, 5, 60]
    batches = plan_batches(lengths, 4, 50)
    assert batches == [[1], [4], [2, 3, 0]]
    _check_plan(lengths, 4, 50, batches)
    assert plan_batches([100, 100, 100], 4, 50) == [[0], [1], [2]]
    assert plan_batches([50, 5], 4, 50) == [[0], [1]]  # exactly at the budget: still alone (2 x 50 > 50)


def test_plan_is_stable_for_equal_lengths():
    assert plan_batches([4, 4, 4, 4, 4], 2, 100) == [[0, 1], [2, 3], [4]]
    assert plan_batches([4, 4, 4, 4, 4], 5, 8) == [[0, 1], [2, 3], [4]]


def test_plan_of_nothing_is_empty():
    assert plan_batches([], 4) == [] and plan_batches([], 4, 16) == []


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None, "4"])
def test_bad_batch_size_is_an_input_error_naming_it(bad):
    with pytest.raises(specnb.InputError, match="batch_size"):
        plan_batches([1, 2], bad)
    with pytest.raises(specnb.InputError, match="batch_size"):
        run_batches([1, 2], lambda b: b, batch_size=bad, torch_inference=False)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4"])
def test_bad_token_budget_is_an_input_error_naming_it(bad):
    with pytest.raises(specnb.InputError, match="token_budget"):
        plan_batches([1, 2], 4, bad)
    with pytest.raises(specnb.InputError, match="token_budget"):
        run_batches([1, 2], lambda b: b, batch_size=4, token_budget=bad, torch_inference=False)


@given(
    st.lists(st.integers(min_value=0, max_value=500), max_size=60),
    st.integers(min_value=1, max_value=9),
    st.one_of(st.none(), st.integers(min_value=1, max_value=3000)),
)
def test_budgeted_batching_invariants_hold_for_any_lengths(lengths, batch_size, token_budget):
    batches = plan_batches(lengths, batch_size, token_budget)
    _check_plan(lengths, batch_size, token_budget, batches)
    if token_budget is None:
        assert batches == length_sorted_batches(lengths, batch_size)
    seen = []

    def step(b):
        seen.append(list(b))
        return [lengths[i] * 10 + 1 for i in b]

    results, stats = run_batches(lengths, step, batch_size=batch_size, token_budget=token_budget,
                                 torch_inference=False, progress=False)
    assert results == [n * 10 + 1 for n in lengths]  # back in input order
    assert seen == batches  # the engine runs the plan as planned
    assert stats.batch_items == [len(b) for b in batches]
    assert stats.batch_tokens == [_padded(b, lengths) for b in batches]
    assert stats.token_budget == token_budget and stats.batch_size == batch_size
    assert stats.oom_retries == 0 and stats.oom_failures == 0


# -- out-of-memory back-off ------------------------------------------------------------------------------

def _oom_step(lengths, limit, seen, error=None):
    """A step that runs out of memory whenever its batch holds more than ``limit`` padded tokens."""
    import torch

    def step(batch):
        seen.append(list(batch))
        if _padded(batch, lengths) > limit:
            if error is not None:
                raise error
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total)")
        return [f"out{i}" for i in batch]

    return step


def test_out_of_memory_halves_the_batch_and_lowers_the_budget_for_the_rest_of_the_run():
    lengths = [10] * 12
    seen = []
    results, stats = run_batches(lengths, _oom_step(lengths, 25, seen), batch_size=4, progress=False)
    assert results == [f"out{i}" for i in range(12)]
    # the first batch of 4 (40 tokens) fails and is halved; the budget drops to 20 tokens, so the two
    # planned batches of 4 that follow are cut to 2 before they run, without another failure
    assert [len(b) for b in seen] == [4, 2, 2, 2, 2, 2, 2]
    assert stats.oom_retries == 1 and stats.oom_failures == 0
    assert stats.batch_items == [2] * 6 and stats.batches == 6  # only completed batches
    assert stats.batch_tokens == [20] * 6
    assert stats.token_budget is None  # the budget the run started with
    assert len(stats.batch_seconds) == 6 and len(stats.item_seconds) == 12


def test_repeated_out_of_memory_keeps_halving():
    lengths = [10] * 16
    seen = []
    results, stats = run_batches(lengths, _oom_step(lengths, 45, seen), batch_size=16, progress=False)
    assert results == [f"out{i}" for i in range(16)]
    assert [len(b) for b in seen] == [16, 8, 4, 4, 4, 4]
    assert stats.oom_retries == 2
    assert stats.batch_items == [4, 4, 4, 4] and sum(stats.batch_items) == 16
    last_failure = max(k for k, b in enumerate(seen) if _padded(b, lengths) > 45)
    assert all(_padded(b, lengths) <= 40 for b in seen[last_failure + 1:])  # later batches keep the lowered budget


def test_out_of_memory_results_match_a_run_without_it():
    lengths = [7, 120, 3, 3, 64, 0, 33, 18, 18, 5, 90, 2, 1, 47]
    clean, clean_stats = run_batches(lengths, lambda b: [f"out{i}" for i in b], batch_size=6, token_budget=400,
                                     progress=False)
    seen = []
    results, stats = run_batches(lengths, _oom_step(lengths, 130, seen), batch_size=6, token_budget=400,
                                 progress=False)
    assert results == clean == [f"out{i}" for i in range(len(lengths))]
    assert stats.oom_retries > 0 and stats.oom_failures == 0 and clean_stats.oom_retries == 0
    assert sum(stats.batch_items) == len(lengths) and stats.batches == len(stats.batch_items)
    assert all(t <= 130 for t in stats.batch_tokens)
    assert stats.batches == len(seen) - stats.oom_retries  # every failed attempt was a halving


def test_an_input_that_runs_out_of_memory_alone_becomes_invalid():
    lengths = [100, 3, 3, 3]
    seen = []
    results, stats = run_batches(lengths, _oom_step(lengths, 50, seen), batch_size=4, progress=False)
    assert isinstance(results[0], Invalid) and not results[0].valid
    assert "out of memory" in results[0].reason and "100 tokens" in results[0].reason
    assert "CUDA out of memory" in results[0].reason  # the device's own words are kept
    assert results[1:] == ["out1", "out2", "out3"]
    assert stats.oom_failures == 1 and stats.oom_retries == 2
    assert stats.batch_items == [1, 2] and stats.batches == 2
    assert stats.item_seconds[0] == 0.0 and len(stats.item_seconds) == 4


@given(
    st.lists(st.integers(min_value=0, max_value=80), max_size=40),
    st.integers(min_value=1, max_value=9),
    st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
    st.integers(min_value=1, max_value=120),
)
def test_out_of_memory_back_off_invariants(lengths, batch_size, token_budget, limit):
    seen = []
    results, stats = run_batches(lengths, _oom_step(lengths, limit, seen), batch_size=batch_size,
                                 token_budget=token_budget, progress=False)
    too_long = [max(n, 1) > limit for n in lengths]
    for i, result in enumerate(results):
        if too_long[i]:
            assert isinstance(result, Invalid) and f"({lengths[i]} tokens)" in result.reason
        else:
            assert result == f"out{i}"
    assert stats.oom_failures == sum(too_long)
    assert sum(stats.batch_items) == len(lengths) - sum(too_long)
    assert stats.batches == len(stats.batch_items) == len(stats.batch_tokens) == len(stats.batch_seconds)
    assert len(seen) == stats.batches + stats.oom_retries + stats.oom_failures
    assert all(t <= limit for t in stats.batch_tokens)
    assert len(stats.item_seconds) == len(lengths)
    assert all(s == 0.0 for s, bad in zip(stats.item_seconds, too_long) if bad)


def test_a_non_memory_error_propagates_unchanged():
    error = ValueError("bad input 3")
    seen = []
    with pytest.raises(ValueError) as caught:
        run_batches([10, 10, 10], _oom_step([10, 10, 10], 0, seen, error=error), batch_size=4, progress=False)
    assert caught.value is error
    assert len(seen) == 1  # no retry


def test_a_runtime_error_saying_out_of_memory_counts_as_one():
    lengths = [10] * 8
    error = RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB, other allocations: 1.2 GB)")
    seen = []
    results, stats = run_batches(lengths, _oom_step(lengths, 25, seen, error=error), batch_size=8, progress=False)
    assert results == [f"out{i}" for i in range(8)]
    assert stats.oom_retries == 2 and stats.batch_items == [2, 2, 2, 2]


def test_is_out_of_memory():
    import torch

    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError())
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert is_out_of_memory(RuntimeError("XPU out of memory."))
    assert not is_out_of_memory(ValueError())
    assert not is_out_of_memory(ValueError("out of memory"))  # only runtime errors are read
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(MemoryError())


def test_out_of_memory_is_not_caught_without_torch_inference():
    import torch

    lengths = [10] * 4
    seen = []
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_batches(lengths, _oom_step(lengths, 25, seen), batch_size=4, torch_inference=False, progress=False)
    assert len(seen) == 1


# -- per-item latency ------------------------------------------------------------------------------------

def _sleepy_step(batch):
    time.sleep(0.002)
    return list(batch)


def test_item_seconds_share_each_batch_by_length():
    lengths = [4, 1, 12, 6, 0, 3, 9]
    results, stats = run_batches(lengths, _sleepy_step, batch_size=3, torch_inference=False, progress=False)
    assert results == list(range(7))
    assert len(stats.item_seconds) == len(lengths)
    assert math.isclose(sum(stats.item_seconds), sum(stats.batch_seconds), rel_tol=1e-9)
    assert all(s > 0 for s in stats.item_seconds)
    for batch, seconds in zip(plan_batches(lengths, 3), stats.batch_seconds):
        weights = [max(lengths[i], 1) for i in batch]
        for i, w in zip(batch, weights):
            assert math.isclose(stats.item_seconds[i], seconds * w / sum(weights), rel_tol=1e-9)
    assert stats.p50 <= stats.p95 <= stats.p99 <= max(stats.item_seconds)
    assert stats.p50 >= min(stats.item_seconds)
    assert stats.seconds >= sum(stats.batch_seconds) and stats.items_per_second > 0


def test_latency_quantiles_interpolate():
    stats = RunStats(items=5, item_seconds=[5.0, 1.0, 4.0, 2.0, 3.0])
    assert stats.latency(0) == 1.0 and stats.latency(1) == 5.0 and stats.p50 == 3.0
    assert stats.p95 == pytest.approx(4.8) and stats.p99 == pytest.approx(4.96)
    assert RunStats(item_seconds=[0.25]).p99 == 0.25


def test_empty_run_stats_are_nan():
    stats = RunStats()
    assert math.isnan(stats.p50) and math.isnan(stats.p95) and math.isnan(stats.p99)
    assert math.isnan(stats.items_per_second)
    _, run = run_batches([], lambda b: b, batch_size=2, torch_inference=False)
    assert run.item_seconds == [] and math.isnan(run.p50)


def test_to_dict_keys():
    _, stats = run_batches([3, 1, 2], _sleepy_step, batch_size=2, torch_inference=False, progress=False)
    figures = stats.to_dict()
    assert list(figures) == ["items", "batches", "seconds", "items_per_second", "p50_seconds", "p95_seconds",
                             "p99_seconds", "oom_retries", "oom_failures"]
    assert figures["items"] == 3 and figures["batches"] == 2 and figures["oom_retries"] == 0
    assert figures["p50_seconds"] == stats.p50 and all(isinstance(v, (int, float)) for v in figures.values())
    empty = RunStats().to_dict()
    assert empty["items"] == 0 and math.isnan(empty["p50_seconds"]) and math.isnan(empty["items_per_second"])


# -- progress bar ------------------------------------------------------------------------------------------

def test_progress_bar_shows_once_the_delay_passes(capsys, monkeypatch):
    monkeypatch.setattr(specnb.config, "progress_delay", 0)
    results, _ = run_batches([3, 1, 2, 5], _sleepy_step, batch_size=1, torch_inference=False, desc="scoring reviews")
    assert sorted(results) == [0, 1, 2, 3]
    captured = capsys.readouterr()
    assert "scoring reviews" in captured.err and "item" in captured.err
    assert captured.out == ""


def test_progress_false_writes_nothing(capsys, monkeypatch):
    monkeypatch.setattr(specnb.config, "progress_delay", 0)
    run_batches([3, 1, 2], _sleepy_step, batch_size=1, torch_inference=False, progress=False, desc="quiet")
    monkeypatch.setattr(specnb.config, "progress", False)
    run_batches([3, 1, 2], _sleepy_step, batch_size=1, torch_inference=False, desc="quiet")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_true_overrides_config(capsys, monkeypatch):
    monkeypatch.setattr(specnb.config, "progress_delay", 0)
    monkeypatch.setattr(specnb.config, "progress", False)
    run_batches([3, 1], _sleepy_step, batch_size=1, torch_inference=False, progress=True, desc="asked for")
    assert "asked for" in capsys.readouterr().err


def test_a_run_shorter_than_the_delay_shows_no_bar(capsys, monkeypatch):
    from specnb.settings import Settings

    defaults = Settings()
    assert defaults.progress is True and defaults.progress_delay == 2.0
    monkeypatch.setattr(specnb.config, "progress", defaults.progress)
    # A delay no run here reaches, however loaded the machine (the default, 2 s, could be passed by a slow one).
    monkeypatch.setattr(specnb.config, "progress_delay", 3600.0)
    run_batches(list(range(20)), lambda b: list(b), batch_size=3, torch_inference=False, desc="fast")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# -- through a real model ------------------------------------------------------------------------------------

LONG = "the film was wonderful and i loved every minute of it " * 4
SHORT = ["good", "bad", "fine", "ok", "meh", "great", "awful", "nice", "cold", "warm"]


def test_token_budget_shapes_a_real_models_batches(tiny_sentiment_dir, monkeypatch):
    texts = [LONG, *SHORT[:5], LONG + LONG, *SHORT[5:], LONG]
    model = specnb.load(tiny_sentiment_dir, device="cpu")
    monkeypatch.setitem(specnb.config.token_budget, "cpu", None)
    unlimited = model.predict(texts, progress=False)
    assert model.last_run.token_budget is None and model.last_run.batch_items == [len(texts)]

    monkeypatch.setitem(specnb.config.token_budget, "cpu", 64)
    predictions = model.predict(texts, progress=False)
    run = model.last_run
    assert run.token_budget == 64 and run.items == len(texts)
    assert all(tokens <= 64 for tokens, items in zip(run.batch_tokens, run.batch_items) if items > 1)
    assert len(set(run.batch_items)) > 1 and sum(run.batch_items) == len(texts)
    assert run.batch_items[:3] == [1, 1, 1]  # the three long texts run alone, longest first
    assert max(run.batch_items) > 2  # the short ones share batches
    assert [p.label for p in predictions] == [p.label for p in unlimited]
    assert [p.score for p in predictions] == pytest.approx([p.score for p in unlimited], abs=1e-4)
    assert len(run.item_seconds) == len(texts)


def test_a_real_models_item_seconds_cover_every_input_including_empty_ones(tiny_sentiment_dir, monkeypatch):
    monkeypatch.setitem(specnb.config.token_budget, "cpu", 32)
    texts = ["good film", "", LONG, "bad"]
    model = specnb.load(tiny_sentiment_dir, device="cpu")
    predictions = model.predict(texts, progress=False)
    run = model.last_run
    assert run.items == 4 and len(run.item_seconds) == 4
    assert isinstance(predictions[1], Invalid) and run.item_seconds[1] == 0.0
    assert all(run.item_seconds[i] > 0 for i in (0, 2, 3))
    assert all(p.valid for i, p in enumerate(predictions) if i != 1)
    # batch times plus the tokenizing, which the backend shares over the inputs it ran
    assert sum(run.batch_seconds) < sum(run.item_seconds) <= run.seconds + 1e-9
    assert run.p50 <= run.p95 <= run.p99


def test_a_real_model_shows_its_progress_bar(tiny_sentiment_dir, capsys, monkeypatch):
    monkeypatch.setattr(specnb.config, "progress_delay", 0)
    model = specnb.load(tiny_sentiment_dir, device="cpu")
    capsys.readouterr()
    model.predict(["good", "bad"])
    assert f"{model.alias} sentiment" in capsys.readouterr().err
    model.predict(["good", "bad"], progress=False)
    assert capsys.readouterr().err == ""


def test_a_bad_configured_token_budget_is_reported(tiny_sentiment_dir, monkeypatch):
    model = specnb.load(tiny_sentiment_dir, device="cpu")
    monkeypatch.setitem(specnb.config.token_budget, "cpu", 0)
    with pytest.raises(specnb.SpecnbError, match="token_budget"):
        model.predict(["good"])


def test_the_lowered_budget_is_recorded_after_out_of_memory():
    import torch

    lengths = [10] * 8

    def step(batch):
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return list(batch)

    results, stats = run_batches(lengths, step, batch_size=8, token_budget=80, progress=False)
    assert results == list(range(8))
    assert stats.token_budget == 80 and stats.final_token_budget == 20
    _, calm = run_batches(lengths, lambda batch: list(batch), batch_size=8, token_budget=80, progress=False)
    assert calm.final_token_budget == 80
