"""How heavy is a large comparison in the notebook: the summary's bootstrap, the compare view, its messages?

A synthetic langid comparison of `--items` (default 100,000) texts between two Python callables (so
the models cost nothing and only specnb's side is measured), gold labels over three languages.
Side by side in one run:
  items     the summary's bootstrap item by item (`metrics.label_metrics` per model: 1,000 resamples
            of every item)
  patterns  the same resamples drawn as multinomial counts over the distinct (gold, answers)
            patterns (`metrics.paired_label_metrics`, what `Comparison.summary` uses from 20,000 items)
Then the compare view over that comparison: the time to build it, the bytes of its whole widget state
(bundle and figures included), of its output (widget view + static HTML snapshot), and of the message
one page change sends, plus the time a page change, a search and a sort take in Python.

Last line: patterns_vs_items=<x> view_build_s=<s> state_kb=<KB> output_kb=<KB> page_kb=<KB> page_ms=<ms>
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("SPECNB_HOME", tempfile.mkdtemp(prefix="specnb-bench-"))

    import comm
    from comm.base_comm import BaseComm

    class Recording(BaseComm):
        def __init__(self, **kwargs):
            self.sent = []
            super().__init__(**kwargs)

        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            self.sent.append(data or {})

    comm.create_comm = lambda **kwargs: Recording(**kwargs)  # no kernel here: keep what would be sent

    import specnb
    from specnb._compare import metrics
    from specnb.widgets import CompareView

    n = args.items
    texts = [f"item {i} " + "x" * (i % 500) for i in range(n)]
    gold = [("en", "fr", "de")[i % 3] for i in range(n)]
    a = specnb.load(lambda ts: ["en"] * len(ts), alias="always_en", task="langid")
    b = specnb.load(lambda ts: ["fr" if len(t) % 3 else "de" for t in ts], alias="by_length", task="langid")
    cmp = specnb.compare("langid", texts, [a, b], labels=gold, store=False, progress=False)
    answers = {m: [p.label for p in cmp.predictions[m]] for m in cmp.models}

    started = time.perf_counter()
    for predicted in answers.values():
        metrics.label_metrics(gold, predicted, seed=0)
    items_s = time.perf_counter() - started
    started = time.perf_counter()
    metrics.paired_label_metrics(gold, answers, seed=0)
    patterns_s = time.perf_counter() - started
    print(f"summary bootstrap, {n:,} items, 2 models: items {items_s:.2f} s, patterns {patterns_s:.3f} s")

    started = time.perf_counter()
    view = CompareView(cmp)
    build_s = time.perf_counter() - started
    state_kb = len(json.dumps(view.get_state())) / 1024
    data, metadata = view._repr_mimebundle_()
    output_kb = len(json.dumps({"data": data, "metadata": metadata})) / 1024

    def front_end(**state) -> tuple[float, float]:
        view.comm.sent = []
        started = time.perf_counter()
        view._handle_msg({"content": {"data": {"method": "update", "state": state}}, "buffers": []})
        seconds = time.perf_counter() - started
        return seconds * 1000, sum(len(json.dumps(m)) for m in view.comm.sent) / 1024

    page_ms, page_kb = front_end(page=n // 100)
    search_ms, _ = front_end(query="item 99")
    sort_ms, _ = front_end(query="", sort="-score", only_disagreements=False)
    print(f"compare view: built in {build_s:.2f} s; state {state_kb:.1f} KB; output {output_kb:.1f} KB; "
          f"page change {page_ms:.1f} ms / {page_kb:.1f} KB; search {search_ms:.0f} ms; sort {sort_ms:.0f} ms")
    print(f"patterns_vs_items={items_s / patterns_s:.1f} view_build_s={build_s:.2f} state_kb={state_kb:.1f} "
          f"output_kb={output_kb:.1f} page_kb={page_kb:.1f} page_ms={page_ms:.1f}")


if __name__ == "__main__":
    main()
