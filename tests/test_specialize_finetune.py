"""`specialize(method="finetune")`: the whole encoder trained with transformers' Trainer — per-step loss and
per-epoch held-out metrics reported to a monitor, the best epoch restored, deterministic on the CPU, Stop and
a first Ctrl-C ending the run after the current step, and out-of-memory halving the batch."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from test_specialize import _data

import specnb
from specnb import TrainingMonitor
from specnb.errors import InputError

from fakes import assert_same_weights

FAST = {"method": "finetune", "learning_rate": 1e-3, "batch_size": 4, "task": "sentiment", "eval": 0.25}


@pytest.fixture
def home(specnb_home):
    return specnb_home


def test_finetune_reports_every_step_and_epoch_and_restores_the_best(home, tiny_embed_dir):
    monitor = TrainingMonitor()
    model = specnb.specialize(str(tiny_embed_dir), _data(), epochs=4, progress=monitor, **FAST)
    training = model.training
    assert monitor.status == "finished" and monitor.plan["total_steps"] == 4 * 5  # 18 train texts / 4, 4 epochs
    assert [row["step"] for row in monitor.steps] == list(range(1, training["steps"] + 1))
    assert all(row["loss"] > 0 and math_finite(row["loss"]) for row in monitor.steps)
    assert [row["epoch"] for row in monitor.evals] == [float(e) for e in range(1, len(monitor.evals) + 1)]
    best = max(monitor.evals, key=lambda row: row["accuracy"])  # the first of the best, as Trainer keeps it
    assert training["best_epoch"] == best["epoch"] and training["best_accuracy"] == best["accuracy"]
    # the restored checkpoint is the best one: its held-out accuracy is what the saved model scores
    assert training["metrics"]["accuracy"]["value"] == pytest.approx(best["accuracy"])
    saved = json.loads((home / "specialists" / model.alias / "training.json").read_text())
    assert saved["method"] == "finetune" and saved["settings"]["epochs"] == 4 and saved["history"]["evals"]
    assert not any(p.name.startswith(".") for p in (home / "specialists").iterdir())  # checkpoints removed


def test_without_a_held_out_split_every_epoch_runs_and_the_last_is_kept(home, tiny_embed_dir):
    monitor = TrainingMonitor()
    model = specnb.specialize(str(tiny_embed_dir), _data(), epochs=2, progress=monitor, **{**FAST, "eval": None})
    assert monitor.status == "finished" and monitor.evals == [] and model.training["metrics"] == {}
    assert model.training["steps"] == 2 * 6 and model.eval_data.empty  # 24 texts / 4, 2 epochs
    assert model.predict(["great lovely superb"])[0].label in ("positive", "negative")


def math_finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def test_finetune_is_deterministic_on_the_cpu_under_its_seed(home, tiny_embed_dir, tmp_path):
    for run in range(2):
        specnb.specialize(str(tiny_embed_dir), _data(), epochs=2, out=tmp_path / f"run{run}", alias=f"det{run}",
                          progress=False, **FAST)
    assert_same_weights(tmp_path / "run0" / "model.safetensors", tmp_path / "run1" / "model.safetensors")


def test_the_finetuned_folder_answers_in_transformers_as_in_specnb(home, tiny_embed_dir):
    from transformers import pipeline

    model = specnb.specialize(str(tiny_embed_dir), _data(), epochs=2, progress=False, **FAST)
    texts = model.eval_data["text"].tolist()
    theirs = pipeline("text-classification", model=model.training["out"], device="cpu")(texts)
    assert [x["label"] for x in theirs] == [x.label for x in model.predict(texts, task="sentiment")]


class StopAfter(TrainingMonitor):
    """Asks to stop after ``n`` steps (what the training view's Stop button does)."""

    def __init__(self, n: int, *, interrupt: bool = False):
        super().__init__()
        self.n, self.interrupt = n, interrupt

    def on_step(self, row):
        super().on_step(row)
        if row["step"] == self.n:
            if self.interrupt:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C / kernel interrupt
            else:
                self.stop()


@pytest.mark.parametrize("interrupt", [False, True], ids=["stop", "ctrl-c"])
def test_stop_ends_after_the_current_step_and_keeps_the_best_checkpoint(home, tiny_embed_dir, interrupt):
    monitor = StopAfter(7, interrupt=interrupt)
    model = specnb.specialize(str(tiny_embed_dir), _data(), epochs=50, progress=monitor, **FAST)
    assert monitor.status == "stopped" and model.training["stopped"] is True
    assert model.training["steps"] == 7 and monitor.steps[-1]["step"] == 7
    assert [row["step"] for row in monitor.evals] == [5, 7]  # epoch 1, then the step it stopped at
    assert model.training["best_accuracy"] == max(row["accuracy"] for row in monitor.evals)
    assert model.predict(["great lovely superb"], task="sentiment")[0].label in ("positive", "negative")
    if interrupt:
        assert any("interrupt" in row["text"] for row in monitor.events)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_out_of_memory_halves_the_batch_and_training_goes_on(home, tiny_embed_dir, monkeypatch):
    from specnb._specialize import head

    build = head.build_classifier

    def fragile(*args, **kwargs):  # fault injection: a device that fits 2 texts per training batch
        model = build(*args, **kwargs)

        def check(module, args, kwargs):
            if module.training and kwargs["input_ids"].shape[0] > 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        model.register_forward_pre_hook(check, with_kwargs=True)
        return model

    monkeypatch.setattr(head, "build_classifier", fragile)
    monitor = TrainingMonitor()
    model = specnb.specialize(str(tiny_embed_dir), _data(), epochs=1, progress=monitor, **FAST)
    assert model.training["batch_size"] == 2
    assert [row["text"] for row in monitor.events] == ["out of memory: batch 4 → 2, training starts again"]
    assert model.training["history"]["events"] == monitor.events and monitor.status == "finished"
    assert not list(Path(model.training["out"]).parent.glob(".*initial.safetensors"))  # the restart copy is gone


def test_out_of_memory_restart_trains_from_the_base_weights(home, tiny_embed_dir, monkeypatch, tmp_path):
    """A step taken at the larger batch is undone: the restarted run ends where a run at the smaller batch does."""
    from specnb._specialize import head

    build = head.build_classifier
    calls = []

    def fragile(*args, **kwargs):  # fault injection: the third training batch of 4 runs out of memory (two steps taken, the first at a learning rate of 0 in warm-up)
        model = build(*args, **kwargs)

        def check(module, args, kwargs):
            if module.training and kwargs["input_ids"].shape[0] > 2:
                calls.append(1)
                if len(calls) == 3:
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        model.register_forward_pre_hook(check, with_kwargs=True)
        return model

    settings = {**FAST, "eval": None, "seed": 0}
    reference = specnb.specialize(str(tiny_embed_dir), _data(), epochs=1, alias="small-batch", out=tmp_path / "a",
                                  **{**settings, "batch_size": 2})
    monkeypatch.setattr(head, "build_classifier", fragile)
    restarted = specnb.specialize(str(tiny_embed_dir), _data(), epochs=1, alias="restarted", out=tmp_path / "b",
                                  **settings)
    assert len(calls) == 3 and restarted.training["batch_size"] == reference.training["batch_size"] == 2
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kwargs, words", [
    ({"method": "finetune", "epochs": 0}, "epochs= must be a positive int"),
    ({"method": "finetune", "learning_rate": -1.0}, "learning_rate= must be a number > 0"),
    ({"method": "finetune", "patience": 0}, "patience= is how many epochs"),
    ({"method": "finetune", "dtype": "float8"}, "valid: 'auto', 'float32', 'bfloat16'"),
    ({"method": "head", "epochs": 3}, "epochs= is a setting of method='finetune'"),
    ({"method": "lora"}, "valid: 'head', 'finetune'"),
    ({"progress": "yes"}, "progress= is True, False, None or a specnb TrainingMonitor"),
])
def test_bad_finetune_settings_are_refused_before_training(home, tiny_embed_dir, kwargs, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace("'", "'")):
        specnb.specialize(str(tiny_embed_dir), _data(), **kwargs)
    assert not (home / "specialists").exists()


def test_a_real_minilm_finetune_learns_bbc_topics(home):
    from specnb.datasets import bbc_topics

    data = bbc_topics(100, seed=3, max_chars=400)
    monitor = TrainingMonitor()
    model = specnb.specialize("minilm", data, method="finetune", epochs=3, learning_rate=2e-4, batch_size=16,
                              eval=0.3, max_length=64, progress=monitor)
    accuracy = model.training["metrics"]["accuracy"]
    assert accuracy["value"] >= 0.7  # chance is 0.2; the head reaches ~0.8 on this sample
    assert len(monitor.evals) == 3 and monitor.steps[0]["loss"] > monitor.steps[-1]["loss"]
