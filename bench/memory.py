"""Shared weights: the memory of MiniLM with heads trained on it, with ``config.share_weights`` on and off.

Trains two heads on MiniLM (BBC topics, 240 articles each, ``method="head"``), then, in a fresh
process per setting, loads MiniLM and both heads, runs each on 100 articles and reports the process's
resident memory (VmRSS) and its high-water mark (VmHWM), side by side in one run, with the load time of
the heads. Prints one line of ratios at the end (``shared_vs_copies``: resident memory with sharing
over without; the goal is below 0.85).

    python bench/memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
import specnb
from specnb.datasets import BBC_DESCRIPTIONS, bbc_topics

def status():
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields

specnb.config.share_weights = sys.argv[1] == "on"
texts = bbc_topics(100, seed=5, max_chars=400)["text"].tolist()
base = specnb.load("minilm")
base.predict(texts, task="classify", labels=BBC_DESCRIPTIONS, progress=False)
started = time.perf_counter()
heads = [specnb.load(folder, task="classify", alias=f"head-{i}") for i, folder in enumerate(sys.argv[2:])]
load_s = time.perf_counter() - started
for head in heads:
    head.predict(texts, progress=False)
frame = specnb.models()
print(json.dumps({**status(), "load_s": load_s, "shared_bytes": int(frame["shared_bytes"].sum()),
                  "weight_bytes": int(frame["weight_bytes"].sum())}))
"""


def main() -> int:
    import specnb
    from specnb.datasets import bbc_topics

    work = Path(tempfile.mkdtemp(prefix="specnb-bench-memory-"))
    folders = []
    for seed in (0, 1):
        data = bbc_topics(300, seed=seed, max_chars=400)
        specnb.specialize("minilm", data, eval=0.2, seed=seed, alias=f"h{seed}", out=work / f"h{seed}", progress=False)
        folders.append(str(work / f"h{seed}"))
    specnb.registry.clear()
    rows = {}
    for setting in ("off", "on"):
        out = subprocess.run([sys.executable, "-c", CHILD, setting, *folders], capture_output=True, text=True,
                             check=True)
        rows[setting] = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 2**20
    print("| share_weights | VmRSS MiB | VmHWM MiB | RssAnon MiB | RssFile MiB | shared MiB | heads load s |")
    print("|---|---|---|---|---|---|---|")
    for setting, row in rows.items():
        print(f"| {setting} | {row['VmRSS'] / mib:,.0f} | {row['VmHWM'] / mib:,.0f} | {row['RssAnon'] / mib:,.0f} | "
              f"{row['RssFile'] / mib:,.0f} | {row['shared_bytes'] / mib:,.0f} | {row['load_s']:.2f} |")
    ratio = rows["on"]["VmRSS"] / rows["off"]["VmRSS"]
    peak = rows["on"]["VmHWM"] / rows["off"]["VmHWM"]
    saved = (rows["off"]["VmRSS"] - rows["on"]["VmRSS"]) / mib
    print(f"\nshared_vs_copies={ratio:.3f} peak_shared_vs_copies={peak:.3f} saved_mib={saved:.0f} "
          f"(goal: shared_vs_copies < 0.85)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
