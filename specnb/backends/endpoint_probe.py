"""What an OpenAI-compatible server can do, asked at load: a few tiny requests whose answers show it."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

from ..errors import EndpointError
from .endpoint_client import Connection, backoff, openai_module, retry_after

__all__ = ["Capabilities", "probe", "served_models", "choice_body", "read_choice"]

_PROBE_LABELS = ["alpha", "beta"]


@dataclass
class Capabilities:
    """What the server answered to the probe; ``notes`` says why a capability is missing."""

    served: list = field(default_factory=list)
    context_length: int | None = None
    prompt_logprobs: bool = False
    zero_max_tokens: bool = False
    chat: bool = False
    chat_logprobs: bool = False
    structured: bool = False
    #: how a choice is constrained: ``choice`` (vLLM's ``structured_outputs``) or ``json_schema``
    structured_via: str | None = None
    embeddings: bool = False
    notes: dict = field(default_factory=dict)

    def names(self) -> list[str]:
        """The capabilities present, as short words."""
        words = {"prompt_logprobs": "prompt logprobs", "chat": "chat", "chat_logprobs": "chat logprobs",
                 "structured": "structured outputs", "embeddings": "embeddings"}
        return [word for key, word in words.items() if getattr(self, key)]


def _load_error(conn: Connection, error) -> EndpointError:
    openai = openai_module()
    status = getattr(error, "status_code", None)
    body = getattr(error, "message", None) or str(error)
    if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
        why = (f"refused the API key ({status}: {body}); set OPENAI_API_KEY or pass api_key= (specnb never "
               "stores or shows it)")
    elif isinstance(error, openai.APITimeoutError):
        why = f"did not answer within {conn.timeout:g} s; is it up? (timeout= waits longer)"
    elif isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        why = f"cannot be reached ({type(cause).__name__}: {cause}); is the server running at that address?"
    else:
        why = f"answered {status}: {body}"
    return EndpointError(conn.scrub(f"endpoint {conn.base_url} (model {conn.model!r}) {why}"))


def served_models(conn: Connection) -> tuple[list, int | None]:
    """(ids of the models the server lists, the context length it gives for ``conn.model``). A server that
    cannot be reached, or refuses the key, is an `EndpointError` naming the URL and its answer."""
    openai = openai_module()
    client = conn.client(asynchronous=False)
    try:
        listed = client.models.list().model_dump().get("data") or []
    except openai.NotFoundError:
        return [], None  # no /models route: the first real request decides
    except openai.OpenAIError as error:
        raise _load_error(conn, error) from None
    finally:
        client.close()
    ids = [str(m.get("id")) for m in listed if isinstance(m, dict)]
    context = next((m.get("max_model_len") for m in listed if isinstance(m, dict) and m.get("id") == conn.model), None)
    return ids, context if isinstance(context, int) else None


def probe(conn: Connection) -> Capabilities:
    """Ask the server a few tiny questions; what it answers correctly is what it supports."""
    openai = openai_module()
    caps = Capabilities()
    caps.served, caps.context_length = served_models(conn)
    if caps.served and conn.model not in caps.served:
        shown = ", ".join(caps.served[:20]) + (", ..." if len(caps.served) > 20 else "")
        raise EndpointError(conn.scrub(f"endpoint {conn.base_url} serves no model {conn.model!r}; it serves: {shown}"))
    client = conn.client(asynchronous=False)

    def ask(kind, note, **body):
        """The answer, or None (with a note) when the server cannot do this. Transient errors are asked again:
        one 429 or 500 must not switch the scoring method. A 5xx or unreadable answer every time means the
        server cannot do it; rate limits, timeouts and lost connections every time fail the load."""
        create = client.completions.create if kind == "completions" else client.chat.completions.create
        for attempt in range(conn.max_retries + 1):
            try:
                return create(model=conn.model, temperature=0, **body).model_dump()
            except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
                raise _load_error(conn, error) from None
            except openai.NotFoundError as error:
                if "model" in str(error).lower() and not caps.served:
                    raise _load_error(conn, error) from None
                caps.notes[note] = conn.scrub(f"{error.status_code}: {error.message}")
                return None
            except (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError,
                    openai.APIResponseValidationError, ValueError) as error:
                if attempt < conn.max_retries:
                    time.sleep(retry_after(error) or backoff(attempt))
                    continue
                if isinstance(error, (openai.RateLimitError, openai.APIConnectionError)):
                    raise _load_error(conn, error) from None
                caps.notes[note] = conn.scrub(f"{type(error).__name__}: {error}")[:300]
            except openai.OpenAIError as error:  # a definite 4xx: the server does not take this request
                caps.notes[note] = conn.scrub(f"{type(error).__name__}: {error}")[:300]
            return None
        return None

    try:
        out = ask("completions", "prompt_logprobs", prompt="Hello there", echo=True, logprobs=1, max_tokens=1)
        caps.prompt_logprobs = _echoes(out, min_tokens=2)
        if out is not None and not caps.prompt_logprobs:
            caps.notes["prompt_logprobs"] = "the server ignores echo/logprobs (no prompt log-probabilities came back)"
        if caps.prompt_logprobs:
            caps.zero_max_tokens = _echoes(ask("completions", "zero_max_tokens", prompt="Hello there", echo=True,
                                               logprobs=1, max_tokens=0), min_tokens=2)
        out = ask("chat", "chat_logprobs", messages=[{"role": "user", "content": "Say yes."}], max_tokens=2,
                  logprobs=True, top_logprobs=2)
        caps.chat = out is not None and bool(out.get("choices"))
        content = ((out or {}).get("choices") or [{}])[0].get("logprobs") or {}
        caps.chat_logprobs = bool(content.get("content"))
        if caps.chat and not caps.chat_logprobs:
            caps.notes["chat_logprobs"] = "the server ignores logprobs on chat (none came back)"
        if caps.chat:
            question = [{"role": "user", "content": "Reply with the word hello."}]
            for via in ("choice", "json_schema"):
                out = ask("chat", "structured", messages=question, max_tokens=64, **choice_body(via, _PROBE_LABELS))
                if read_choice(out, _PROBE_LABELS, via)[0] is not None:
                    caps.structured, caps.structured_via = True, via
                    caps.notes.pop("structured", None)
                    break
                if out is not None:
                    caps.notes["structured"] = ("the server ignores structured_outputs and response_format (its "
                                                "answers are not constrained)")
        try:
            vectors = client.embeddings.create(model=conn.model, input=["hello"]).model_dump().get("data") or []
            caps.embeddings = bool(vectors) and bool(vectors[0].get("embedding"))
        except (openai.OpenAIError, ValueError) as error:
            caps.notes["embeddings"] = conn.scrub(f"{type(error).__name__}: {error}")[:300]
    finally:
        client.close()
    if not (caps.chat or caps.prompt_logprobs):
        raise EndpointError(conn.scrub(f"endpoint {conn.base_url} (model {conn.model!r}) answered neither chat nor "
                                       f"completions requests: {caps.notes}"))
    return caps


def _echoes(out, *, min_tokens: int) -> bool:
    """Whether a completions answer carries the prompt's token log-probabilities (``echo``)."""
    choices = (out or {}).get("choices") or []
    values = ((choices[0].get("logprobs") or {}).get("token_logprobs") or []) if choices else []
    return len(values) >= min_tokens and all(isinstance(v, (int, float)) for v in values[1:])


def choice_body(via: str, answers) -> dict:
    """The request keys that constrain a chat answer to one of ``answers``: vLLM's ``structured_outputs``
    choice (the answer alone), or a ``response_format`` json_schema allowing only ``{"answer": <one of them>}``
    (OpenAI and most servers)."""
    if via == "choice":
        return {"extra_body": {"structured_outputs": {"choice": list(answers)}}}
    schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": list(answers)}},
              "required": ["answer"], "additionalProperties": False}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                        "strict": True}}}


def read_choice(out, answers, via: str) -> tuple[str | None, float | None, str]:
    """(the chosen answer or None, its probability from the answer tokens' log-probabilities or None, the raw
    text) of a constrained chat answer."""
    choices = (out or {}).get("choices") or []
    if not choices:
        return None, None, ""
    raw = (choices[0].get("message") or {}).get("content") or ""
    if via == "choice":
        value = raw if raw in answers else None
    else:
        try:
            value = json.loads(raw).get("answer")
        except (ValueError, AttributeError):
            return None, None, raw
    if value not in answers:
        return None, None, raw
    tokens = (choices[0].get("logprobs") or {}).get("content") or []
    start = 0 if via == "choice" else raw.find(json.dumps(value)[1:-1], raw.find(":") + 1)
    end = start + len(value)
    total, offset, seen = 0.0, 0, False
    for token in tokens:
        text, logprob = token.get("token") or "", token.get("logprob")
        if offset < end and offset + len(text) > start and isinstance(logprob, (int, float)):
            total, seen = total + logprob, True
        offset += len(text)
    score = min(1.0, math.exp(total)) if seen and offset >= end else None  # (an end-of-turn token may follow)
    return value, score, raw
