"""How fast and how good are specialists trained by `specnb.specialize`? (issue 15's targets)

Three parts on BBC News topics (2,225 articles, 5 topics), each side by side in one run:

head       (all articles by default, `--items`; first `--max-length` tokens, default 256; `eval=0.2` seed 0)
  inference  one engine pass of MiniLM over the training texts (`predict(task="embed")`)
  head       `specialize("minilm", ..., method="head")`: features through the engine, the fit, the folder
             written and loaded again — the whole wall time
  and the head's held-out accuracy (Wilson interval), and whether `transformers.pipeline` on the saved
  folder gives the same labels as specnb on every held-out item.

finetune   (`--finetune-items` articles, default 750: 601 train / 149 held-out; `--finetune-max-length`
           tokens, default 128; `--epochs`, default 2; batch size 16)
  specnb     `specialize("minilm", method="finetune")`: length-grouped batches, AdamW with warm-up and
             decay, evaluation and a checkpoint each epoch, the best one restored
  Trainer    plain `transformers.Trainer` with its defaults (random batches, no warm-up, no weight decay,
             no evaluation), MiniLM loaded as `AutoModelForSequenceClassification` from the same base folder,
             the same split, epochs, per-device batch size and max_length
  training items/s (Trainer's `train_samples_per_second`), both held-out accuracies, and the padding
  share of the training batches (padded slots / real tokens, counted in each training batch).

distil     (`--distil-items` articles, default 300, cut to `--distil-chars` characters, default 600)
  a MiniLM head specialist trained on SmolLM2's answers (`teacher="smollm2"`; the gold labels are kept
  for evaluation only), against SmolLM2 itself on the same held-out items: gold accuracy, items/s of
  `predict` on the held-out items (best of `--repeat`, at least 2, interleaved), and their agreement.

Last line (one line of ratios; `skipped` for a part left out with `--parts`, `failed` for one that failed):
head_vs_inference=<x> heldout_accuracy=<a> fit_s=<s> reload_same=<n>/<n> finetune_vs_trainer=<x>
finetune_accuracy=<a> trainer_accuracy=<a> distilled_gold_vs_teacher=<points> distilled_speedup=<x>
distilled_agreement=<a>
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback

PARTS = ("head", "finetune", "distil")


def _split(data):
    from specnb._specialize.data import prepare

    return prepare(data, task="classify", text="text", label="label", labels=None, eval=0.2, seed=0)


# -- head --------------------------------------------------------------------------------------------
def part_head(args) -> dict:
    import specnb
    from specnb.datasets import bbc_topics

    data = bbc_topics(args.items, seed=0, max_chars=None)
    split = _split(data)
    train_texts = [split.texts[i] for i in split.train]
    print(f"BBC: {len(split.train):,} train / {len(split.held_out):,} held-out, max_length {args.max_length}")

    base = specnb.load("minilm")
    base.predict(train_texts[:32], task="embed", progress=False)  # warm-up
    started = time.perf_counter()
    base.predict(train_texts, task="embed", progress=False)
    inference = time.perf_counter() - started
    print(f"inference pass over the training texts: {inference:.1f} s ({len(train_texts) / inference:.1f} items/s)")

    started = time.perf_counter()
    model = specnb.specialize(base, data, eval=0.2, max_length=args.max_length, progress=False, overwrite=True)
    head = time.perf_counter() - started
    training = model.training
    accuracy = training["metrics"]["accuracy"]
    print(f"head: {head:.1f} s in all (features {training['feature_seconds']:.1f} s, fit {training['fit_seconds']:.2f} s)")
    print(f"held-out accuracy {accuracy['value']:.4f} [{accuracy['low']:.4f}, {accuracy['high']:.4f}], "
          f"macro-F1 {training['metrics']['macro_f1']['value']:.4f}")

    from transformers import pipeline

    held = model.eval_data
    ours = [p.label for p in model.predict(held["text"], progress=False)]
    theirs = [x["label"] for x in pipeline("text-classification", model=training["out"], truncation=True)(
        list(held["text"]), batch_size=32)]
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"transformers.pipeline on the folder: {same}/{len(ours)} held-out labels the same as specnb's")
    specnb.unload(model.alias)
    return {"head_vs_inference": f"{head / inference:.2f}", "heldout_accuracy": f"{accuracy['value']:.4f}",
            "fit_s": f"{training['fit_seconds']:.2f}", "reload_same": f"{same}/{len(ours)}"}


# -- finetune ----------------------------------------------------------------------------------------
class Padding:
    """Counts real tokens and padded slots of every *training* batch of every Trainer in this process (the
    train dataloader's collate function is wrapped; evaluation batches are not counted)."""

    def __init__(self) -> None:
        self.real = self.padded = self.batches = 0

    def install(self) -> None:
        from transformers import Trainer

        original, counter = Trainer._get_dataloader, self

        def _get_dataloader(trainer, *args, is_training: bool = False, **kwargs):
            if not is_training:
                return original(trainer, *args, is_training=is_training, **kwargs)
            collate = trainer.data_collator

            def counted(features):
                batch = collate(features)
                mask = batch["attention_mask"]
                real = int(mask.sum())
                counter.real += real
                counter.padded += int(mask.numel()) - real
                counter.batches += 1
                return batch

            trainer.data_collator = counted
            try:
                return original(trainer, *args, is_training=is_training, **kwargs)
            finally:
                trainer.data_collator = collate

        Trainer._get_dataloader = _get_dataloader

    def take(self) -> tuple[float, int]:
        """(padded slots / real tokens, batches) since the last call; the counts start again."""
        share = self.padded / self.real if self.real else float("nan")
        batches = self.batches
        self.real = self.padded = self.batches = 0
        return share, batches


def _plain_trainer(source: str, split, args, work: str) -> dict:
    """transformers' Trainer with its defaults on the same split: (items/s, seconds, held-out accuracy)."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    space = list(split.label_space)
    index = {x: i for i, x in enumerate(space)}
    tokenizer = AutoTokenizer.from_pretrained(source)

    def encoded(which):
        texts = [split.texts[i] for i in which]
        enc = tokenizer(texts, truncation=True, max_length=args.finetune_max_length)
        return [{"input_ids": enc["input_ids"][k], "attention_mask": enc["attention_mask"][k],
                 "token_type_ids": enc["token_type_ids"][k], "labels": index[split.labels[i]]}
                for k, i in enumerate(which)]

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(space), id2label=dict(enumerate(space)), label2id=index)
        training_args = TrainingArguments(output_dir=work, num_train_epochs=args.epochs, per_device_train_batch_size=16,
                                          seed=0, use_cpu=not torch.cuda.is_available(), disable_tqdm=True)
        trainer = Trainer(model=model, args=training_args, train_dataset=encoded(split.train), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)  # its log lines only
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
        predicted = np.asarray(trainer.predict(encoded(split.held_out)).predictions).argmax(-1)
    finally:
        hf_logging.set_verbosity(verbosity)
    gold = np.asarray([index[split.labels[i]] for i in split.held_out])
    return {"items_per_s": float(output.metrics["train_samples_per_second"]), "seconds": seconds,
            "accuracy": float((predicted == gold).mean())}


def _specnb_finetune(data, args) -> dict:
    import specnb

    started = time.perf_counter()
    model = specnb.specialize("minilm", data, method="finetune", eval=0.2, seed=0, epochs=args.epochs, batch_size=16,
                              max_length=args.finetune_max_length, progress=False, alias="minilm-bbc-finetune",
                              overwrite=True)
    seconds = time.perf_counter() - started
    training = model.training
    specnb.unload(model.alias)
    return {"items_per_s": training["items_per_s"], "seconds": training["train_seconds"], "wall": seconds,
            "accuracy": training["metrics"]["accuracy"]["value"], "best_epoch": training.get("best_epoch"),
            "epochs_run": training.get("epochs_run")}


def part_finetune(args) -> dict:
    import torch
    from transformers import AutoTokenizer

    from specnb._catalog import ENTRIES
    from specnb.datasets import bbc_topics

    source = str(ENTRIES["minilm"].local_path())
    data = bbc_topics(args.finetune_items, seed=0, max_chars=None)
    split = _split(data)
    tokenizer = AutoTokenizer.from_pretrained(source)
    lengths = [len(x) for x in tokenizer([split.texts[i] for i in split.train], truncation=True,
                                         max_length=args.finetune_max_length)["input_ids"]]
    cut = sum(n >= args.finetune_max_length for n in lengths)
    print(f"\nfine-tune: {len(split.train)} train / {len(split.held_out)} held-out BBC articles (seed 0), max_length "
          f"{args.finetune_max_length}, {args.epochs} epochs, batch size 16, {torch.get_num_threads()} torch threads; "
          f"training texts: {sum(lengths) / len(lengths):.0f} tokens on average, {cut} of {len(lengths)} cut at "
          f"{args.finetune_max_length}")
    padding = Padding()
    padding.install()
    runs: dict[str, list[dict]] = {"specnb": [], "trainer": []}
    with tempfile.TemporaryDirectory(prefix="specnb-bench-trainer-") as work:
        for repetition in range(args.repeat):
            order = ("trainer", "specnb") if repetition % 2 == 0 else ("specnb", "trainer")
            for name in order:
                result = _plain_trainer(source, split, args, work) if name == "trainer" else _specnb_finetune(data, args)
                result["padding"], result["batches"] = padding.take()
                runs[name].append(result)
                print(f"  {name}: {result['items_per_s']:.2f} items/s ({result['seconds']:.1f} s of training), "
                      f"held-out accuracy {result['accuracy']:.4f}, padding {result['padding']:.1%} of real tokens "
                      f"over {result['batches']} training batches")
    best = {name: max(rows, key=lambda r: r["items_per_s"]) for name, rows in runs.items()}
    ours, theirs = best["specnb"], best["trainer"]
    print("| contender | items/s | training s | held-out accuracy | padding / real tokens |")
    print("|---|---|---|---|---|")
    print(f"| specnb `specialize(method=\"finetune\")` | {ours['items_per_s']:.2f} | {ours['seconds']:.1f} | "
          f"{ours['accuracy']:.4f} | {ours['padding']:.1%} |")
    print(f"| `transformers.Trainer` defaults | {theirs['items_per_s']:.2f} | {theirs['seconds']:.1f} | "
          f"{theirs['accuracy']:.4f} | {theirs['padding']:.1%} |")
    print(f"best of {args.repeat} (Trainer first in odd repetitions); specnb's time includes its per-epoch evaluation "
          f"and checkpoint (best epoch {ours['best_epoch']} of {ours['epochs_run']}); Trainer's includes neither")
    return {"finetune_vs_trainer": f"{ours['items_per_s'] / theirs['items_per_s']:.2f}",
            "finetune_accuracy": f"{ours['accuracy']:.4f}", "trainer_accuracy": f"{theirs['accuracy']:.4f}"}


# -- distil ------------------------------------------------------------------------------------------
def part_distil(args) -> dict:
    import specnb
    from specnb.datasets import bbc_topics

    data = bbc_topics(args.distil_items, seed=0, max_chars=args.distil_chars)
    print(f"\ndistillation: {len(data)} BBC articles cut to {args.distil_chars} characters; SmolLM2 labels them all, "
          "a MiniLM head is fitted on its answers (gold labels for evaluation only)")
    started = time.perf_counter()
    model = specnb.specialize("minilm", data, teacher="smollm2", eval=0.2, seed=0, progress=False,
                              alias="minilm-bbc-distilled", overwrite=True)
    wall = time.perf_counter() - started
    training = model.training
    report = training["data"]["teacher"]
    print(f"  teacher: asked {report['asked']}, cached {report['cached']}, kept {report['kept']}, invalid "
          f"{report['invalid']}, {report['seconds']:.1f} s; distillation {wall:.1f} s in all")
    teacher = specnb.load("smollm2")
    held = model.eval_data
    texts, gold, space = list(held["text"]), list(held["gold"]), model.training["label_space"]
    model.predict(texts[:8], progress=False)
    teacher.predict(texts[:2], task="classify", labels=space, progress=False)
    best = {"specialist": float("inf"), "teacher": float("inf")}
    answers = {}
    repeat = max(args.repeat, 2)
    for repetition in range(repeat):
        order = ("specialist", "teacher") if repetition % 2 == 0 else ("teacher", "specialist")
        for name in order:
            begin = time.perf_counter()
            if name == "teacher":
                out = teacher.predict(texts, task="classify", labels=space, progress=False)
            else:
                out = model.predict(texts, progress=False)
            best[name] = min(best[name], time.perf_counter() - begin)
            answers[name] = [getattr(p, "label", None) for p in out]
    ips = {name: len(texts) / seconds for name, seconds in best.items()}
    accuracy = {name: sum(a == g for a, g in zip(labels, gold)) / len(gold) for name, labels in answers.items()}
    agree = sum(a == b for a, b in zip(answers["specialist"], answers["teacher"])) / len(texts)
    cached_same = sum(a == b for a, b in zip(answers["teacher"], held["label"]))
    print("| model | gold accuracy | items/s (predict on the held-out items) |")
    print("|---|---|---|")
    print(f"| MiniLM head distilled from SmolLM2 | {accuracy['specialist']:.4f} | {ips['specialist']:.1f} |")
    print(f"| SmolLM2 (the teacher, rank scoring) | {accuracy['teacher']:.4f} | {ips['teacher']:.2f} |")
    print(f"{len(texts)} held-out items, best of {repeat} interleaved; agreement {agree:.4f}; the teacher's "
          f"answers now equal its training-time answers on {cached_same}/{len(texts)}")
    specnb.unload(model.alias)
    return {"distilled_gold_vs_teacher": f"{(accuracy['specialist'] - accuracy['teacher']) * 100:+.1f}",
            "distilled_speedup": f"{ips['specialist'] / ips['teacher']:.1f}", "distilled_agreement": f"{agree:.4f}"}


KEYS = {"head": ("head_vs_inference", "heldout_accuracy", "fit_s", "reload_same"),
        "finetune": ("finetune_vs_trainer", "finetune_accuracy", "trainer_accuracy"),
        "distil": ("distilled_gold_vs_teacher", "distilled_speedup", "distilled_agreement")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which parts to run (default {','.join(PARTS)})")
    parser.add_argument("--max-length", type=int, default=256, help="head: tokens per text (default 256)")
    parser.add_argument("--items", type=int, default=None, help="head: articles to use (default: all 2,225)")
    parser.add_argument("--finetune-items", type=int, default=750, help="finetune: articles (default 750: 600 train)")
    parser.add_argument("--finetune-max-length", type=int, default=128, help="finetune: tokens per text (default 128)")
    parser.add_argument("--epochs", type=int, default=2, help="finetune: epochs (default 2)")
    parser.add_argument("--distil-items", type=int, default=300, help="distil: articles (default 300)")
    parser.add_argument("--distil-chars", type=int, default=600, help="distil: characters per article (default 600)")
    parser.add_argument("--repeat", type=int, default=1, help="finetune and distil: repetitions, interleaved; the best "
                        "counts (default 1; distil predicts at least twice)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    os.environ.setdefault("SPECNB_HOME", tempfile.mkdtemp(prefix="specnb-bench-"))
    import specnb

    specnb.config.progress = False
    fields = {key: "skipped" for keys in KEYS.values() for key in keys}
    started = time.perf_counter()
    for name, fn in (("head", part_head), ("finetune", part_finetune), ("distil", part_distil)):
        if name in parts:
            try:
                fields.update(fn(args))
            except Exception as exc:  # one part failing keeps the others' figures
                traceback.print_exc()
                print(f"{name}: FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
                fields.update(dict.fromkeys(KEYS[name], "failed"))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print(" ".join(f"{key}={value}" for key, value in fields.items()))


if __name__ == "__main__":
    main()
