"""``method="finetune"``: the whole encoder trained with transformers' `Trainer`.

AdamW with linear warm-up (10 % of the steps) and decay, evaluation on the held-out split after each epoch
(accuracy, macro-F1), early stopping after ``patience`` epochs without a better accuracy, and the best
checkpoint restored at the end. Batches are grouped by length (``train_sampling_strategy="group_by_length"``)
and padded to their longest text, so mixed lengths do not pay for padding; bf16 autocast on CUDA; on the CPU
the run is deterministic under ``seed``. Out of memory, the batch halves and training starts again from the
base weights (as the engine halves its batches; Trainer's own ``auto_find_batch_size`` cuts by 10 % and keeps
the half-trained weights); the history records it.

What is trained for is an `Objective`: how items are encoded and batched, what each evaluation computes and
which of its metrics picks the best checkpoint. The default one is sequence classification (accuracy and
macro-F1, the best accuracy kept); ner passes its own (token labels, `DataCollatorForTokenClassification`,
entity-level F1 kept; see `ner`).

A `TrainingMonitor` sees every step and evaluation. Its `stop` (the training view's Stop button, or a first
Ctrl-C / kernel interrupt while training) ends the run after the current step: that step is evaluated and
the best checkpoint so far is kept. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..engine import free_device_cache, is_out_of_memory

__all__ = ["finetune", "DEFAULTS", "Objective"]

#: Defaults for ``epochs``, ``learning_rate`` and ``batch_size`` when they are None.
DEFAULTS = {"epochs": 3, "learning_rate": 5e-5, "batch_size": 16}


@contextmanager
def _stop_on_interrupt(monitor):
    """While training, a first SIGINT asks the monitor to stop after the current step (in the main thread only:
    elsewhere a signal handler cannot be set); a second one raises KeyboardInterrupt as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if monitor.stop_requested:
            signal.default_int_handler(signum, frame)  # the second one: KeyboardInterrupt, as Python's own
        monitor.stop()
        monitor.on_event({"step": monitor.steps[-1]["step"] if monitor.steps else 0, "elapsed": monitor.elapsed,
                          "text": "interrupt: stopping after this step (interrupt again to abandon the run)"})

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _callback(monitor, started: float, n_labels: int, reported: tuple[str, ...] = ()):
    from transformers import TrainerCallback

    class MonitorCallback(TrainerCallback):
        """Trainer → TrainingMonitor: per-step loss, per-epoch metrics, OOM restarts, and Stop."""

        stopped_at = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                monitor.on_step({"step": state.global_step, "epoch": state.epoch, "loss": float(logs["loss"]),
                                 "learning_rate": logs.get("learning_rate"),
                                 "elapsed": time.perf_counter() - started})
                self._stop(args, state, control)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            metrics = metrics or {}
            monitor.on_evaluate({"step": state.global_step, "epoch": state.epoch,
                                 "accuracy": metrics.get("eval_accuracy"), "macro_f1": metrics.get("eval_macro_f1"),
                                 "loss": metrics.get("eval_loss"), "elapsed": time.perf_counter() - started,
                                 **{k: metrics.get(f"eval_{k}") for k in reported}})

        def on_step_end(self, args, state, control, **kwargs):
            self._stop(args, state, control)

        def _stop(self, args, state, control):
            """Asked to stop (before this step's log, or by it): end here. The epoch ends with this step, so
            Trainer's own end-of-epoch evaluation and save see it once; the best so far is restored."""
            if monitor.stop_requested and self.stopped_at is None:
                self.stopped_at = state.global_step
                control.should_training_stop = True

    return MonitorCallback()


def _restart(classifier, initial: Path, size: int, monitor, callback, work: Path) -> int:
    """After an out-of-memory error: the base weights back (from ``initial``, written before training), the
    half-written checkpoints gone, half the batch."""
    import gc

    from safetensors.torch import load_model

    gc.collect()
    free_device_cache()
    load_model(classifier, str(initial), device=str(next(classifier.parameters()).device))
    shutil.rmtree(work, ignore_errors=True)
    smaller = max(1, size // 2)
    monitor.on_event({"step": monitor.steps[-1]["step"] if monitor.steps else 0, "elapsed": monitor.elapsed,
                      "text": f"out of memory: batch {size} → {smaller}, training starts again"})
    callback.stopped_at = None
    return smaller


def _metrics_fn(n_labels: int):
    import numpy as np

    def compute(prediction):
        predicted = np.asarray(prediction.predictions).argmax(-1)
        gold = np.asarray(prediction.label_ids)
        f1 = []
        for c in range(n_labels):
            tp, fp = int(((predicted == c) & (gold == c)).sum()), int(((predicted == c) & (gold != c)).sum())
            fn = int(((predicted != c) & (gold == c)).sum())
            if tp + fp + fn:
                f1.append(2 * tp / (2 * tp + fp + fn))
        return {"accuracy": float((predicted == gold).mean()), "macro_f1": float(np.mean(f1)) if f1 else 0.0}

    return compute


def _encode(tokenizer, texts: list[str], targets: list[int], max_length: int, accepted) -> list[dict]:
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded and k in accepted]
    return [{**{k: encoded[k][i] for k in keys}, "labels": targets[i]} for i in range(len(texts))]


def _padding_collator(tokenizer, multiple: int | None):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)


@dataclass(frozen=True)
class Objective:
    """What `finetune` trains for.

    ``encode(tokenizer, texts, targets, max_length, accepted)``: one training item (a dict of lists, with
    ``labels``) per text; ``collator(tokenizer, pad_to_multiple_of)``: the batch collator;
    ``compute_metrics``: Trainer's, on each evaluation (None: accuracy and macro-F1 over ``n_labels``);
    ``preprocess``: Trainer's ``preprocess_logits_for_metrics``; ``metric``: the one that picks the best
    checkpoint (higher is better) and ends training after ``patience`` evaluations without a better one;
    ``reported``: metrics beyond accuracy and macro-F1 that each evaluation row carries to the monitor (and
    the result, as ``best_scores``, at the best checkpoint)."""

    encode: Callable = _encode
    collator: Callable = _padding_collator
    compute_metrics: Callable | None = None
    preprocess: Callable | None = None
    metric: str = "accuracy"
    reported: tuple[str, ...] = ()


def _peak_memory(device: str) -> int | None:
    import resource

    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def finetune(classifier, tokenizer, texts: list[str], targets: list, *, train: list[int], held: list[int],
             n_labels: int, epochs: int, learning_rate: float, batch_size: int, max_length: int, seed: int,
             patience: int, device: str, dtype: str, monitor, work: Path, objective: Objective | None = None) -> dict:
    """Train ``classifier`` in place (the best checkpoint restored); checkpoints live under ``work`` (removed
    after); ``targets`` are what ``objective.encode`` reads (class ids by default). What happened: steps, best
    epoch, its score (``best_accuracy``, or ``best_<metric>`` of another `Objective`), seconds, items/s, peak
    memory, the batch size that fitted."""
    import inspect

    import torch
    from safetensors.torch import save_model
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils import logging as hf_logging

    cuda = str(device).startswith("cuda")
    bf16 = cuda and dtype in ("auto", "bfloat16") and torch.cuda.is_bf16_supported()
    objective = objective or Objective()
    accepted = inspect.signature(classifier.forward).parameters
    train_set = objective.encode(tokenizer, [texts[i] for i in train], [targets[i] for i in train], max_length,
                                 accepted)
    held_set = (objective.encode(tokenizer, [texts[i] for i in held], [targets[i] for i in held], max_length, accepted)
                if held else [])  # eval=None: no evaluation, the last epoch is kept
    evaluate = "epoch" if held_set else "no"

    def arguments(size: int):
        return TrainingArguments(
            output_dir=str(work), num_train_epochs=epochs, learning_rate=learning_rate,
            per_device_train_batch_size=size, per_device_eval_batch_size=size * 2, weight_decay=0.01,
            warmup_steps=0.1, lr_scheduler_type="linear", eval_strategy=evaluate, save_strategy=evaluate,
            save_total_limit=1, save_only_model=True, load_best_model_at_end=bool(held_set),
            metric_for_best_model=objective.metric if held_set else None, greater_is_better=True if held_set else None,
            logging_strategy="steps", logging_steps=1, seed=seed, data_seed=seed,
            train_sampling_strategy="group_by_length", bf16=bf16, use_cpu=not cuda, report_to="none",
            disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        )

    callback = _callback(monitor, time.perf_counter() - monitor.elapsed, n_labels, objective.reported)
    collator = objective.collator(tokenizer, 8 if cuda else None)
    compute_metrics = objective.compute_metrics or _metrics_fn(n_labels)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    # The base weights for a restart after an out-of-memory error, on disk: a copy in memory would add the model's
    # size to the training's peak (on the CPU, the very memory the training runs short of).
    initial = work.with_name(f"{work.name}-initial.safetensors")
    initial.parent.mkdir(parents=True, exist_ok=True)
    save_model(classifier, str(initial))
    size = batch_size
    try:
        started = time.perf_counter()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        while True:
            trainer = Trainer(model=classifier, args=arguments(size), train_dataset=train_set,
                              eval_dataset=held_set or None, data_collator=collator,
                              compute_metrics=compute_metrics,
                              preprocess_logits_for_metrics=objective.preprocess,
                              callbacks=[callback, *([EarlyStoppingCallback(patience)] if held_set else [])])
            for quiet in (PrinterCallback, ProgressCallback):
                trainer.remove_callback(quiet)
            try:
                with _stop_on_interrupt(monitor):
                    output = trainer.train()
                break
            except Exception as exc:
                if not is_out_of_memory(exc) or size == 1:
                    raise
                del trainer
                size = _restart(classifier, initial, size, monitor, callback, work)
        seconds = time.perf_counter() - started
    finally:
        hf_logging.set_verbosity(verbosity)
        shutil.rmtree(work, ignore_errors=True)
        initial.unlink(missing_ok=True)
    state = trainer.state
    best = state.best_model_checkpoint
    best_epoch, best_log = None, {}
    if best is not None:
        step = int(os.path.basename(best).rsplit("-", 1)[-1])
        best_log = next((e for e in state.log_history if f"eval_{objective.metric}" in e and e.get("step") == step), {})
        best_epoch = round(best_log["epoch"], 3) if best_log else None
    steps = state.global_step
    scores = {"best_scores": {k: best_log.get(f"eval_{k}") for k in objective.reported}} if objective.reported else {}
    return {**scores,
        "steps": steps, "epochs_run": round(state.epoch or 0.0, 3), "best_epoch": best_epoch,
        f"best_{objective.metric}": state.best_metric, "stopped": callback.stopped_at is not None, "stopped_at": callback.stopped_at,
        "train_seconds": seconds, "items_per_s": float(output.metrics.get("train_samples_per_second") or 0.0),
        "batch_size": size, "bf16": bf16, "peak_memory_bytes": _peak_memory(device),
    }
