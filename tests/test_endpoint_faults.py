"""Endpoint models against a real vLLM behind a fault-injecting proxy (tests/fault_proxy.py).

The proxy picks each fault by the request body (here: by which text a rank request scores, decoded with the
served model's tokenizer), so what is injected, and what the client must count, does not depend on timing or
concurrency. Checked: 429s, 5xx, timeouts, dropped connections and unreadable JSON are retried and counted in
``last_run``; a call that always fails is `Invalid` with its reason and the others are answered; nothing is
paid for twice; a run killed mid-way resumes from the response cache and asks only for what is missing; a
finished run asked again sends nothing. Every wait is on the proxy's events or counters, with guards of
minutes against hangs only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import specnb
from specnb.backends.endpoint_client import Call, Connection
from specnb.store import default_store

from fault_proxy import FaultProxy

LABELS = ["sports", "food", "film"]
TEXTS = [
    "The striker scored twice in the final.",
    "This pasta sauce tastes wonderful.",
    "The actor gave a moving performance.",
    "Our team lost the match on penalties.",
    "The soup was cold and far too salty.",
    "The film has a brilliant cast.",
    "She won the marathon in record time.",
    "We baked fresh bread this morning.",
]
#: Guards against hangs only (a stuck server or client); never a speed requirement.
GUARD_S = 600


@pytest.fixture(scope="module")
def reference(vllm):
    """The served model's tokenizer and the labels the same model gives TEXTS when asked directly (no
    proxy, no cache). Loading it first also warms the server up before any test uses a short timeout."""
    model = specnb.load(vllm.base_url, cache=False)
    predictions = model.predict(TEXTS, task="classify", labels=LABELS, progress=False)
    assert model.last_run.method == "rank"
    assert all(isinstance(p, specnb.Label) for p in predictions), predictions
    # clear winners only (of three labels), so no label can flip between two runs on float noise
    assert min(p.score for p in predictions) > 0.6, predictions
    tokenizer = model.tokenizer
    specnb.unload(model)
    return {"tokenizer": tokenizer, "labels": [p.label for p in predictions]}


def item_of(body, tokenizer) -> int | None:
    """Which of TEXTS a rank request (its JSON body) scores; None for any other request (the probe's)."""
    prompts = body.get("prompt") if isinstance(body, dict) else None
    if not (isinstance(prompts, list) and prompts and isinstance(prompts[0], list)):
        return None
    prompt = tokenizer.decode(prompts[0])
    found = [i for i, text in enumerate(TEXTS) if text in prompt]
    assert len(found) == 1, f"a rank request names {len(found)} of the texts: {prompt!r}"
    return found[0]


def items(proxy: FaultProxy, tokenizer) -> dict:
    """{text index: body digest} of the rank requests the proxy has seen."""
    with proxy.lock:
        bodies = dict(proxy.bodies)
    out = {}
    for digest, body in bodies.items():
        i = item_of(body, tokenizer)
        if i is not None:
            assert i not in out, f"text {i} was sent as two different bodies"
            out[i] = digest
    return out


def item_posts(proxy: FaultProxy, tokenizer) -> int:
    """How many rank requests reached the proxy (retries included)."""
    seen = items(proxy, tokenizer)
    with proxy.lock:
        return sum(proxy.seen[d] for d in seen.values())


def wait_until(condition, what: str, process: subprocess.Popen | None = None, log=None) -> None:
    """Wait for ``condition()`` (a hang guard, not a timing assumption); fail at once if ``process`` dies."""
    deadline = time.monotonic() + GUARD_S
    while not condition():
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log is not None else ""
            pytest.fail(f"the run exited ({process.returncode}) before {what}:\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {GUARD_S} s")
        time.sleep(0.05)


# -- a. every fault, each on one body's first attempt, and one body that always fails ------------------------
FIRST_FAULTS = {0: "429", 1: "500", 2: "slow", 3: "malformed", 4: "drop"}
ALWAYS_500 = 5
MAX_RETRIES = 3
#: The client's per-request timeout in the faults test: what the slow fault costs once. Requests take well under a
#: second on an idle server; a real request timing out would be paid twice and fail the test, so the margin is
#: wide (over 100x) for a loaded, shared machine (the probe runs under it too).
TIMEOUT_S = 60


def test_faults_are_retried_counted_and_never_paid_twice(vllm, reference, specnb_home):
    tokenizer = reference["tokenizer"]

    def rule(body: bytes, attempt: int) -> str | None:
        i = item_of(json.loads(body), tokenizer)
        if i == ALWAYS_500:
            return "500"
        return FIRST_FAULTS.get(i) if attempt == 1 else None

    # The slow fault holds its connection until the client gives up after TIMEOUT_S (the proxy's cap is far
    # longer); the real requests, the probe's included, are tiny and come nowhere near it.
    with FaultProxy(vllm.base_url, rule, hold_cap=GUARD_S) as proxy:
        model = specnb.load(proxy.base_url, concurrency=2, timeout=TIMEOUT_S, max_retries=MAX_RETRIES)
        predictions = model.predict(TEXTS, task="classify", labels=LABELS, progress=False)
        run = model.last_run
        seen = items(proxy, tokenizer)

    assert len(predictions) == len(TEXTS)
    assert sorted(seen) == list(range(len(TEXTS)))
    failed = predictions[ALWAYS_500]
    assert isinstance(failed, specnb.Invalid), failed
    assert "500" in failed.reason and f"after {MAX_RETRIES + 1} tries" in failed.reason, failed.reason
    assert proxy.seen[seen[ALWAYS_500]] == MAX_RETRIES + 1
    assert proxy.paid[seen[ALWAYS_500]] == 0
    for i, prediction in enumerate(predictions):
        if i == ALWAYS_500:
            continue
        assert isinstance(prediction, specnb.Label), (i, prediction)
        assert proxy.paid[seen[i]] == 1, f"text {i} was paid for {proxy.paid[seen[i]]} times"
        assert proxy.seen[seen[i]] == (2 if i in FIRST_FAULTS else 1)
    assert [p.label for i, p in enumerate(predictions) if i != ALWAYS_500] == \
        [y for i, y in enumerate(reference["labels"]) if i != ALWAYS_500]

    # what the proxy injected, and what the client counted
    assert dict(proxy.faults) == {"429": 1, "500": 1 + MAX_RETRIES + 1, "slow": 1, "malformed": 1, "drop": 1}
    assert run.method == "rank"
    assert run.rate_limited == proxy.faults["429"] == 1
    failures = sum(n for kind, n in proxy.faults.items() if kind != "429")
    assert run.retries == failures - 1 == 4 + MAX_RETRIES  # the last try of the failing body is not retried
    assert run.retries > 0 and run.rate_limited > 0
    assert run.failed == 1
    assert run.requests == item_posts(proxy, tokenizer) == len(TEXTS) + len(FIRST_FAULTS) + MAX_RETRIES
    assert run.cached == 0
    assert run.input_tokens > 0


# -- b. killed mid-run, then run again: only the missing answers are asked for -------------------------------
KILL_AFTER = 3
_SCRIPT = """
import json, sys
import specnb
args = json.loads(sys.argv[1])
model = specnb.load(args["url"], concurrency=1)
specnb.compare("classify", args["texts"], [model], label_space=args["labels"], progress=False)
print("the run finished; it should have been killed")
"""


def test_killed_run_resumes_from_the_cache(vllm, reference, specnb_home, tmp_path):
    tokenizer = reference["tokenizer"]
    is_item = lambda body: item_of(body, tokenizer) is not None  # noqa: E731
    with FaultProxy(vllm.base_url, pause_after=KILL_AFTER, counts=is_item) as proxy:
        args = json.dumps({"url": proxy.base_url, "texts": TEXTS, "labels": LABELS})
        env = dict(os.environ, SPECNB_HOME=str(specnb_home))
        log = tmp_path / "killed-run.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-c", _SCRIPT, args], env=env, cwd=tmp_path, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            # KILL_AFTER answers delivered, the next request held by the proxy (concurrency=1)
            wait_until(proxy.paused.is_set, "request held by the proxy", process, log)
            delivered = items(proxy, tokenizer)
            answered = [d for d in delivered.values() if proxy.paid[d]]
            assert len(answered) == KILL_AFTER
            model_name = proxy.bodies[answered[0]]["model"]
            key = Connection(proxy.base_url, model_name).cache_key()
            calls = [Call("completions", proxy.bodies[d]).digest() for d in answered]
            store = default_store()
            # the client writes an answer to the cache just after it gets it: wait for those it has
            wait_until(lambda: len(store.cached_answers(key, calls)) == KILL_AFTER, "answers in the cache", process,
                       log)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(GUARD_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == -signal.SIGKILL
        proxy.release(forward=False)  # the held request is never forwarded
        assert sum(proxy.paid[d] for d in items(proxy, tokenizer).values()) == KILL_AFTER

        model = specnb.load(proxy.base_url, concurrency=1)
        comparison = specnb.compare("classify", TEXTS, [model], label_space=LABELS, progress=False)
        stats = comparison.model_stats[model.alias]
        seen = items(proxy, tokenizer)

    assert stats["cached"] == KILL_AFTER
    assert stats["requests"] == len(TEXTS) - KILL_AFTER
    assert stats["failed"] == stats["retries"] == stats["rate_limited"] == 0
    assert sorted(seen) == list(range(len(TEXTS)))
    paid = {i: proxy.paid[d] for i, d in seen.items()}
    assert paid == dict.fromkeys(range(len(TEXTS)), 1), paid
    assert proxy.faults == {}
    predictions = comparison.predictions[model.alias]
    assert all(isinstance(p, specnb.Label) for p in predictions), predictions
    assert [p.label for p in predictions] == reference["labels"]


# -- c. a finished run asked again sends nothing ------------------------------------------------------------
def test_finished_runs_send_no_request_again(vllm, reference, specnb_home):
    tokenizer = reference["tokenizer"]
    n = len(TEXTS)
    with FaultProxy(vllm.base_url) as proxy:
        model = specnb.load(proxy.base_url, concurrency=2)
        first = model.predict(TEXTS, task="classify", labels=LABELS, progress=False)
        assert (model.last_run.requests, model.last_run.cached) == (n, 0)
        assert [p.label for p in first] == reference["labels"]

        posts = proxy.posts
        again = model.predict(TEXTS, task="classify", labels=LABELS, progress=False)
        assert (model.last_run.requests, model.last_run.cached) == (0, n)
        assert proxy.posts == posts
        assert again == first

        comparison = specnb.compare("classify", TEXTS, [model], label_space=LABELS, progress=False)
        posts = proxy.posts
        repeat = specnb.compare("classify", TEXTS, [model], label_space=LABELS, progress=False)
        stats = repeat.model_stats[model.alias]
        assert (stats["requests"], stats["cached"]) == (0, n)
        assert proxy.posts == posts
        assert repeat.predictions[model.alias] == comparison.predictions[model.alias]
        assert [p.label for p in repeat.predictions[model.alias]] == reference["labels"]

        # a new handle on the same endpoint probes the server again, but asks nothing it has answered
        specnb.unload(model)
        asked = item_posts(proxy, tokenizer)
        model = specnb.load(proxy.base_url, concurrency=2)
        fresh = model.predict(TEXTS, task="classify", labels=LABELS, progress=False)
        assert (model.last_run.requests, model.last_run.cached) == (0, n)
        assert item_posts(proxy, tokenizer) == asked
        assert fresh == first
        paid = {i: proxy.paid[d] for i, d in items(proxy, tokenizer).items()}
        assert paid == dict.fromkeys(range(n), 1), paid
