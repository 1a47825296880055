"""An OpenAI-compatible endpoint (vLLM, CPU) as a specnb generalist: concurrency, methods, validity, cache.

Through one real vLLM server serving SmolLM2-135M, on a small sample of the embedded langid sentences
(``--n`` per language, 12 languages) in the task's default label space (24 languages):

* rank, concurrency 8: specnb's rank scoring from prompt log-probabilities, one request per item holding
  every label's continuation, at most 8 requests in flight;
* rank, concurrency 1: the same requests sent one at a time (the naive loop);
* choice: structured output constrained to the labels (concurrency 8, and 1);
* generate: a chat answer parsed back to a label (concurrency 8, and 1); unreadable answers are ``Invalid``;
* re-run: each method run twice with the response cache on (a fresh cache in a temporary folder): the second
  run must send no request.

Timed runs use ``cache=False``, so each really sends its requests; every method is warmed up on one item
first. Seconds are ``RunStats.seconds`` (the whole predict call; the probe at load is not counted).

Prints a table and, last, one line:
``endpoint: concurrent/serial rank <ratio>x (target >= 4x), valid rank <%> choice <%> generate <%>, rerun requests <n>``.
Run: ``python bench/endpoint.py [--url http://127.0.0.1:8000/v1] [--n 2] [--repeat 1]``; without ``--url`` it
starts a vLLM server with ``tests/servers.py`` (needs ``.venv-vllm``: ``make vllm``) and stops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import platform
import sys
import tempfile
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
TASK = "langid"


def sample(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` sentences of each language of the embedded langid set."""
    from specnb.datasets import langid_sentences

    frame = langid_sentences().groupby("label", sort=False).head(n)
    return list(frame["text"]), list(frame["label"])


@contextlib.contextmanager
def server(url: str | None):
    """``url`` as is, else a vLLM server started for the run (stopped after)."""
    if url:
        yield url, None
        return
    sys.path.insert(0, str(ROOT / "tests"))
    import servers

    with tempfile.TemporaryDirectory(prefix="specnb-bench-vllm-") as tmp:
        started = servers.start_vllm(servers.smollm2_folder(), pathlib.Path(tmp))
        try:
            yield started.base_url, started
        finally:
            started.stop()


def vllm_version(url: str) -> str:
    root = url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/version", timeout=5) as response:
            return str(json.load(response).get("version", "?"))
    except (OSError, ValueError):
        return "?"


def run(url: str, texts, *, method: str, concurrency: int, cache: bool, runs: int = 1):
    """Load the endpoint with these options, predict ``runs`` times, unload; the predictions and each RunStats.

    Loaded and unloaded each time: a second `specnb.load` of the same URL and model returns the loaded handle
    whatever its concurrency, method or cache."""
    import specnb

    model = specnb.load(url, concurrency=concurrency, method=method, cache=cache)
    try:
        out = []
        for _ in range(runs):
            predictions = model.predict(texts, task=TASK, progress=False)
            out.append((predictions, model.last_run))
        return out
    finally:
        specnb.unload(model)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base URL of a running server (default: start vLLM for the run)")
    parser.add_argument("--n", type=int, default=2, help="sentences per language (default 2, 12 languages)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repetitions; the best counts (default 1)")
    args = parser.parse_args(argv)

    import specnb

    texts, gold = sample(args.n)
    with server(args.url) as (url, _):
        model = specnb.load(url, cache=False)
        info = model.endpoint
        specnb.unload(model)
        print(f"# {platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cpus | "
              f"vLLM {vllm_version(url)} at {url}")
        print(f"# served {info['model']}; capabilities: {', '.join(info['capabilities'])}")
        from specnb.tasks import get_task

        labels = get_task(TASK).default_labels
        print(f"# {len(texts)} langid sentences ({args.n} per language, {len(set(gold))} languages), "
              f"{len(labels)} labels (the task's default)")

        rows = [("rank", 8), ("rank", 1), ("choice", 8), ("choice", 1), ("generate", 8), ("generate", 1)]
        for method in ("rank", "choice", "generate"):  # warm-up, one item each
            run(url, texts[:1], method=method, concurrency=8, cache=False)
        best: dict = {}
        for repetition in range(args.repeat):
            for method, concurrency in rows if repetition % 2 == 0 else reversed(rows):
                (predictions, stats), = run(url, texts, method=method, concurrency=concurrency, cache=False)
                if (method, concurrency) not in best or stats.seconds < best[method, concurrency][1].seconds:
                    best[method, concurrency] = (predictions, stats)

        # re-run with the response cache on, in a fresh store
        rerun = {}
        home = specnb.config.home
        with tempfile.TemporaryDirectory(prefix="specnb-bench-cache-") as tmp:
            specnb.config.home = tmp
            try:
                for method in ("rank", "choice", "generate"):
                    (first, stats1), (again, stats2) = run(url, texts, method=method, concurrency=8, cache=True, runs=2)
                    same = all(repr(a) == repr(b) for a, b in zip(first, again))
                    rerun[method] = (stats1, stats2, same)
            finally:
                specnb.config.home = home

    print(f"{'method':<10}{'concurrency':>12}{'items':>7}{'requests':>10}{'seconds':>9}{'items/s':>9}"
          f"{'valid %':>9}{'accuracy':>10}")
    valid = {}
    for (method, concurrency), (predictions, stats) in best.items():
        share = sum(p.valid for p in predictions) / len(predictions)
        accuracy = sum(p.valid and p.label == g for p, g in zip(predictions, gold)) / len(gold)
        valid.setdefault(method, share)
        assert stats.method == method, (stats.method, method)
        print(f"{method:<10}{concurrency:>12}{stats.items:>7}{stats.requests:>10}{stats.seconds:>9.2f}"
              f"{stats.items_per_second:>9.3f}{share * 100:>8.0f}%{accuracy:>10.3f}")
    rank8 = best["rank", 8][1]
    print(f"# rank: {rank8.input_tokens / max(rank8.requests, 1):.0f} prompt tokens per request "
          f"({len(labels)} label continuations per item), {rank8.input_tokens / rank8.seconds:.0f} prompt tokens/s "
          "at concurrency 8")
    for method, (stats1, stats2, same) in rerun.items():
        print(f"# cache on, {method}: first run {stats1.requests} requests ({stats1.cached} cached), re-run "
              f"{stats2.requests} requests ({stats2.cached} cached) in {stats2.seconds:.2f} s, "
              f"same predictions: {same}")
    ratio = best["rank", 1][1].seconds / rank8.seconds
    ratios = {m: best[m, 1][1].seconds / best[m, 8][1].seconds for m in ("choice", "generate")}
    rerun_requests = sum(stats2.requests for _, stats2, _ in rerun.values())
    print(f"endpoint: concurrent/serial rank {ratio:.1f}x (target >= 4x), choice {ratios['choice']:.1f}x, "
          f"generate {ratios['generate']:.1f}x; valid rank {valid['rank'] * 100:.0f}% "
          f"choice {valid['choice'] * 100:.0f}% generate {valid['generate'] * 100:.0f}%, "
          f"rerun requests {rerun_requests}")


if __name__ == "__main__":
    main()
