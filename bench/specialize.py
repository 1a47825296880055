"""How long does a head specialist take to train, and how good is it? (issue 15's head target)

BBC News topics (2,225 articles, 5 topics), a fixed stratified split (`eval=0.2`, seed 0: 1,780 train /
445 held-out), MiniLM, first `--max-length` tokens (default 256). Side by side in one run:
  inference  one engine pass of MiniLM over the 1,780 training texts (`predict(task="embed")`)
  head       `specnb.specialize("minilm", ..., method="head")`: features through the engine, the fit,
             the folder written and loaded again — the whole wall time
and the head's held-out accuracy (with its Wilson interval), and whether `transformers.pipeline` on the
saved folder gives the same labels as specnb on every held-out item.

Last line: head_vs_inference=<x> heldout_accuracy=<a> fit_s=<s> reload_same=<n>/<n>
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--items", type=int, default=None, help="articles to use (default: all 2,225)")
    args = parser.parse_args()
    os.environ.setdefault("SPECNB_HOME", tempfile.mkdtemp(prefix="specnb-bench-"))

    import specnb
    from specnb._specialize.data import prepare
    from specnb.datasets import bbc_topics

    data = bbc_topics(args.items, seed=0, max_chars=None)
    split = prepare(data, task="classify", text="text", label="label", labels=None, eval=0.2, seed=0)
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
    print(f"head_vs_inference={head / inference:.2f} heldout_accuracy={accuracy['value']:.4f} "
          f"fit_s={training['fit_seconds']:.2f} reload_same={same}/{len(ours)}")


if __name__ == "__main__":
    main()
