"""Talking to an OpenAI-compatible server: the connection, its secrets, and many requests at once.

`Connection` holds the base URL, the model name, the API key (never shown: `Connection.scrub` takes it out of
every text that leaves this module) and the limits. `send_all` sends a list of `Call` s with the official
``openai`` client, concurrently (asyncio in a thread of its own, so it works inside a running Jupyter loop):

* at most ``concurrency`` requests in flight; a 429 halves that limit, waits ``Retry-After`` (or a back-off)
  and asks again, and the limit grows back by one after every few successes;
* 5xx answers, timeouts, dropped connections and unreadable JSON are retried with exponential back-off up to
  ``max_retries`` times; a call that still fails gets its reason and the others go on;
* each answer is written to the response cache (the run store's ``answers`` table, keyed by endpoint, model
  and the whole request body) as soon as the main thread sees it, so a re-run, or a run after a crash,
  sends only the calls not yet answered.

Per-call latency is the successful request's own time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ..errors import EndpointError, MissingDependencyError, ModelOutputError

__all__ = ["Connection", "Call", "Reply", "SendStats", "send_all", "openai_module", "backoff", "retry_after"]

#: Back-off of the first retry, in seconds (doubled each time, with jitter, up to `_BACKOFF_CAP`).
_BACKOFF = 0.5
_BACKOFF_CAP = 8.0
#: 429 answers one call may get before it gives up (they are the server pacing us, not failures).
_RATE_LIMIT_TRIES = 12
#: Successes after which a limit lowered by a 429 grows by one again.
_GROW_AFTER = 8


def openai_module():
    try:
        import openai
    except ImportError as exc:
        raise MissingDependencyError("endpoint models need the openai client: pip install 'openai>=1.40' "
                                     "(or pip install 'specnb[endpoint]')") from exc
    return openai


@dataclass
class Connection:
    """Where an endpoint model lives and how it is asked."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 4

    @property
    def host(self) -> str:
        url = urlparse(self.base_url)
        return url.netloc or self.base_url

    def scrub(self, text) -> str:
        """``text`` with the API key (and any long part of it) replaced by ``***``."""
        text = str(text)
        key = self.api_key
        if key and len(key) >= 4:
            text = text.replace(key, "***")
            for size in (16, 8):  # servers echo keys partly: "Incorrect API key provided: sk-abc12***..."
                if len(key) > size:
                    for start in range(0, len(key) - size + 1):
                        text = text.replace(key[start:start + size], "***")
        return text

    def client(self, *, asynchronous: bool):
        openai = openai_module()
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls(base_url=self.base_url, api_key=self.api_key or "EMPTY", max_retries=0, timeout=self.timeout)

    def cache_key(self) -> str:
        """The response cache's key for this endpoint and model (no secret in it)."""
        return f"endpoint:{self.base_url.rstrip('/')}|{self.model}"


@dataclass
class Call:
    """One request: ``kind`` is ``completions``, ``chat`` or ``embeddings``; ``body`` its JSON body (the
    model included); ``extra`` the keys the server takes beyond OpenAI's (sent as ``extra_body``)."""

    kind: str
    body: dict
    extra: dict = field(default_factory=dict)

    def digest(self) -> str:
        payload = json.dumps({"kind": self.kind, "body": self.body, "extra": self.extra}, sort_keys=True,
                             ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass
class Reply:
    """What one call got: the response as plain JSON, or why there is none."""

    data: dict | None
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False
    attempts: int = 0


@dataclass
class SendStats:
    """What `send_all` did: requests sent (retries included), answers from the cache, retries, 429s,
    calls that failed for good, the lowest concurrency limit reached."""

    requests: int = 0
    cached: int = 0
    retries: int = 0
    rate_limited: int = 0
    failed: int = 0
    lowest_limit: int = 0


class _Limit:
    """An adaptive concurrency limit: halved on 429, grown back by one every `_GROW_AFTER` successes."""

    def __init__(self, limit: int):
        self.ceiling = self.value = max(1, int(limit))
        self.active = 0
        self.streak = 0
        self.pause_until = 0.0
        self.changed = asyncio.Condition()

    async def acquire(self):
        async with self.changed:
            while self.active >= self.value or time.monotonic() < self.pause_until:
                wait = self.pause_until - time.monotonic()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), timeout=wait if wait > 0 else None)
            self.active += 1

    async def release(self, *, success: bool):
        async with self.changed:
            self.active -= 1
            if success and self.value < self.ceiling:
                self.streak += 1
                if self.streak >= _GROW_AFTER:
                    self.value, self.streak = self.value + 1, 0
            self.changed.notify_all()

    async def slow_down(self, wait: float):
        async with self.changed:
            self.value = max(1, self.value // 2)
            self.streak = 0
            self.pause_until = max(self.pause_until, time.monotonic() + wait)
            self.changed.notify_all()


def retry_after(error) -> float | None:
    response = getattr(error, "response", None)
    value = None if response is None else response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff(attempt: int) -> float:
    return min(_BACKOFF_CAP, _BACKOFF * 2 ** attempt) * (0.5 + random.random() / 2)


async def _request(client, call: Call):
    extra = {"extra_body": call.extra} if call.extra else {}
    if call.kind == "completions":
        response = await client.completions.create(**call.body, **extra)
    elif call.kind == "chat":
        response = await client.chat.completions.create(**call.body, **extra)
    elif call.kind == "embeddings":
        response = await client.embeddings.create(**call.body, **extra)
    else:
        raise EndpointError(f"unknown call kind {call.kind!r}")
    data = response.model_dump() if hasattr(response, "model_dump") else response
    if not isinstance(data, dict):
        raise ModelOutputError(f"the server answered {type(data).__name__}, not a JSON object")
    if call.kind == "completions" and call.body.get("echo"):  # keep what scoring reads: the cache stays small
        data["choices"] = [{"index": c.get("index", 0),
                            "logprobs": {"token_logprobs": (c.get("logprobs") or {}).get("token_logprobs")}}
                           for c in data.get("choices") or [] if isinstance(c, dict)]
    return data


async def _one(client, call: Call, limit: _Limit, conn: Connection, stats: SendStats) -> Reply:
    openai = openai_module()
    attempt = failures = limited = 0
    while True:
        await limit.acquire()
        attempt += 1
        stats.requests += 1
        started = time.perf_counter()
        try:
            data = await _request(client, call)
        except openai.RateLimitError as error:
            await limit.release(success=False)
            stats.rate_limited += 1
            limited += 1
            if limited >= _RATE_LIMIT_TRIES:
                return Reply(None, conn.scrub(f"rate limited {limited} times (429): {error}"), attempts=attempt)
            await limit.slow_down(retry_after(error) or backoff(limited - 1))
            stats.lowest_limit = min(stats.lowest_limit, limit.value)
            continue
        except (openai.InternalServerError, openai.APITimeoutError, openai.APIConnectionError,
                openai.APIResponseValidationError, ValueError, ModelOutputError) as error:
            await limit.release(success=False)
            failures += 1
            why = _why(error)
            if failures > conn.max_retries:
                return Reply(None, conn.scrub(f"{why} (after {failures} tries)"), attempts=attempt)
            stats.retries += 1
            await asyncio.sleep(backoff(failures - 1))
            continue
        except openai.APIStatusError as error:  # 4xx other than 429: asking again would get the same answer
            await limit.release(success=False)
            return Reply(None, conn.scrub(f"the server refused the request: {_why(error)}"), attempts=attempt)
        seconds = time.perf_counter() - started
        await limit.release(success=True)
        return Reply(data, seconds=seconds, attempts=attempt)


def _why(error) -> str:
    status = getattr(error, "status_code", None)
    name = type(error).__name__
    text = str(error).strip() or name
    return f"{status} {text}" if status else f"{name}: {text}"


def send_all(conn: Connection, calls: list[Call], *, store=None, progress: Callable[[int], None] | None = None,
             on_reply: Callable[[int, Reply], None] | None = None) -> tuple[list[Reply], SendStats]:
    """Answer every call, in order: from the response cache (``store``: a `specnb.store.RunStore`, None: no
    cache) where it holds the same request, else from the server, concurrently. ``progress(n)`` is called in
    the calling thread as answers arrive; so is ``on_reply(index, reply)``."""
    stats = SendStats(lowest_limit=conn.concurrency)
    replies: list[Reply | None] = [None] * len(calls)
    digests = [call.digest() for call in calls]
    key = conn.cache_key()
    if store is not None:
        found = store.cached_answers(key, digests)
        for i, digest in enumerate(digests):
            hit = found.get(digest)
            if isinstance(hit, dict) and isinstance(hit.get("response"), dict):
                replies[i] = Reply(hit["response"], seconds=float(hit.get("seconds") or 0.0), cached=True)
                stats.cached += 1
        if stats.cached and progress is not None:
            progress(stats.cached)
    todo = [i for i, r in enumerate(replies) if r is None]
    if not todo:
        return replies, stats
    done: queue.Queue = queue.Queue()
    state: dict = {}

    async def main():
        client = conn.client(asynchronous=True)
        limit = _Limit(conn.concurrency)
        state["loop"] = asyncio.get_running_loop()

        async def worker(i):
            reply = await _one(client, calls[i], limit, conn, stats)
            done.put((i, reply))

        tasks = [asyncio.ensure_future(worker(i)) for i in todo]
        state["tasks"] = tasks
        try:
            await asyncio.gather(*tasks)
        finally:
            await client.close()

    def target():
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported in the calling thread
            state["error"] = exc
        finally:
            done.put(None)

    thread = threading.Thread(target=target, name="specnb-endpoint", daemon=True)
    thread.start()
    finished = False
    try:
        while not finished:
            batch = [done.get()]
            while True:  # take whatever else has arrived, to write it in one transaction
                try:
                    batch.append(done.get_nowait())
                except queue.Empty:
                    break
            rows = []
            for entry in batch:
                if entry is None:
                    finished = True
                    continue
                i, reply = entry
                replies[i] = reply
                if reply.data is not None:
                    rows.append((digests[i], {"response": reply.data, "seconds": reply.seconds}))
                else:
                    stats.failed += 1
                if on_reply is not None:
                    on_reply(i, reply)
            if rows and store is not None:
                store.add_answers(key, rows)
            answered = sum(entry is not None for entry in batch)
            if progress is not None and answered:
                progress(answered)
    except BaseException:  # Ctrl-C: stop the requests in flight; what was answered is cached already
        loop, tasks = state.get("loop"), state.get("tasks") or []
        if loop is not None:
            for task in tasks:
                loop.call_soon_threadsafe(task.cancel)
        thread.join(5)
        raise
    thread.join()
    if "error" in state:
        error = state["error"]
        raise EndpointError(conn.scrub(f"requests to {conn.base_url} stopped: {_why(error)}")) from None
    for i in todo:
        if replies[i] is None:
            replies[i] = Reply(None, "no answer came back")
    return replies, stats
