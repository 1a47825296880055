"""Loading an endpoint model: ``openai:NAME``, ``openai:NAME@URL`` or a base URL, and its options."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlparse

from ..errors import EndpointError, InputError
from .plan import Plan
from .plan import slug as _slug

__all__ = ["endpoint_plan", "ENDPOINT_OPTIONS"]

#: Options of `specnb.load` that only endpoint sources take, with their defaults.
ENDPOINT_OPTIONS = {"model": None, "api_key": None, "tokenizer": None, "method": None, "concurrency": 8,
                    "timeout": 60.0, "max_retries": 4, "cache": True}
_OPENAI_URL = "https://api.openai.com/v1"


def _check_options(options: dict) -> dict:
    unknown = sorted(set(options) - set(ENDPOINT_OPTIONS))
    if unknown:
        raise InputError(f"unknown endpoint options {unknown}; they are {', '.join(ENDPOINT_OPTIONS)}")
    merged = {**ENDPOINT_OPTIONS, **{k: v for k, v in options.items() if v is not None}}
    for name in ("concurrency", "max_retries"):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "concurrency" else 0):
            raise InputError(f"{name}= must be an int >= {1 if name == 'concurrency' else 0}, got {value!r}")
    timeout = merged["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InputError(f"timeout= must be seconds > 0, got {timeout!r}")
    if merged["method"] is not None:
        from .endpoint import LABEL_METHODS

        if merged["method"] not in LABEL_METHODS:
            raise InputError(f"method= must be one of {', '.join(LABEL_METHODS)} (how label tasks are answered), "
                             f"got {merged['method']!r}")
    for name in ("model", "api_key"):
        if merged[name] is not None and (not isinstance(merged[name], str) or not merged[name].strip()):
            raise InputError(f"{name}= must be a non-empty str")
    return merged


def endpoint_plan(text: str, options: dict) -> Plan:
    """``openai:NAME`` (``$OPENAI_BASE_URL``, else OpenAI's API, with ``$OPENAI_API_KEY``), ``openai:NAME@URL``,
    or a base URL with ``model=`` (or none when the server serves one model). ``$OPENAI_API_KEY`` only ever goes
    to ``$OPENAI_BASE_URL`` or OpenAI's API; any other server gets ``api_key=`` or no key."""
    from .endpoint import EndpointBackend
    from .endpoint_client import Connection
    from .endpoint_probe import served_models
    from .folder import GENERALIST_TASKS

    options = _check_options(options)
    model = options["model"]
    env_url = os.environ.get("OPENAI_BASE_URL") or _OPENAI_URL
    if text.startswith("openai:"):
        name, _, url = text[len("openai:"):].partition("@")
        if url and not url.startswith(("http://", "https://")):
            name, url = text[len("openai:"):], ""  # an '@' inside the model name
        if model is not None and model != name:
            raise InputError(f"{text!r} names model {name!r} but model={model!r}; give it once")
        model, url = name.strip(), (url or env_url).strip()
        if not model:
            raise InputError("openai: needs a model name, e.g. specnb.load('openai:gpt-4o-mini')")
    else:
        url = text
    url = url.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"{url!r} is not an http(s) base URL such as 'http://127.0.0.1:8000/v1'")
    key = options["api_key"]
    if key is None and url in (env_url.rstrip("/"), _OPENAI_URL):
        key = os.environ.get("OPENAI_API_KEY")
    conn = Connection(url, model or "", key or "", options["concurrency"], float(options["timeout"]),
                      options["max_retries"])
    if not model:
        served, _ = served_models(conn)
        if len(served) != 1:
            listed = ", ".join(served[:20]) or "none listed"
            raise EndpointError(conn.scrub(f"endpoint {url} serves {len(served)} models ({listed}); name one with "
                                           "model='...'"))
        conn.model = model = served[0]
    alias = _slug(model.rstrip("/").rsplit("/", 1)[-1])

    def make(task, device, dtype):
        return EndpointBackend(task, device, dtype, conn, tokenizer=options["tokenizer"], method=options["method"],
                               cache=options["cache"])

    # settings that change the answers or how they are asked make another handle (a second load with another
    # concurrency= is not silently the first one)
    variant = "".join(f"|{k}={getattr(options[k], 'name_or_path', options[k])}"
                      for k in ("method", "tokenizer", "concurrency", "cache", "timeout", "max_retries")
                      if options[k] is not None and options[k] != ENDPOINT_OPTIONS[k])
    if key:  # another key is another handle (a digest of it, held in memory only)
        variant += "|key=" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    plan = Plan(f"endpoint:{url}|{model}{variant}", f"openai:{model}@{url}", "endpoint", alias, GENERALIST_TASKS, "generate",
                "generalist", True, make, lambda dtype: 0)
    plan.device = "remote"
    return plan
