"""The ``%%specnb pipe`` cell syntax: one stage per line, parsed into plain stage specs (dicts).

::

    lang = langid(text)                                       # model stage: FIELD = MODEL(INPUT, key=value…)
    topic = minilm(text, labels=topics)                       # keyword values: literals or notebook names
    topic = cascade(minilm, smollm2, labels=topics, threshold=0.7)(text)
    route lang: en -> ents = ner(text); fr, de -> skip; * -> skip
    clean_up                                                  # python stage: a @specnb.stage function

Blank lines and lines starting with ``#`` are skipped. A name used as a keyword value is returned as
``{"var": name}``; the caller replaces it by the notebook's value. Every error names the line.
"""

from __future__ import annotations

import ast
import re

from ..errors import PipelineError

__all__ = ["parse", "MODEL_KEYWORDS", "CASCADE_KEYWORDS"]

MODEL_KEYWORDS = ("task", "labels")
CASCADE_KEYWORDS = ("task", "labels", "threshold")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_ROUTE = re.compile(r"route\s+([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$", re.S)


def parse(text: str, *, first_line: int = 1) -> list[dict]:
    """Stage specs, in order, each with its ``line`` number (``first_line`` is the first line's)."""
    stages = []
    for offset, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        number = first_line + offset
        spec = _route(line, number) if line.startswith("route ") or line == "route" else _stage(line, number)
        spec["line"] = number
        stages.append(spec)
    return stages


def _error(number: int, line: str, message: str) -> PipelineError:
    return PipelineError(f"line {number}: `{line}`: {message}")


def _route(line: str, number: int) -> dict:
    match = _ROUTE.match(line)
    if not match:
        raise _error(number, line, "a route reads `route FIELD: VALUE -> STAGE; VALUE, VALUE -> STAGE; * -> skip`")
    field, body = match.group(1), match.group(2)
    branches: dict[str, list] = {}
    default = None
    for part in (p.strip() for p in body.split(";")):
        if not part:
            continue
        if "->" not in part:
            raise _error(number, line, f"branch `{part}` needs `VALUE -> STAGE` (or `VALUE -> skip`)")
        values, target = (x.strip() for x in part.split("->", 1))
        stages = [] if target == "skip" else [{**_stage(target, number, inside=line), "line": number}]
        names = [v.strip() for v in values.split(",") if v.strip()]
        if not names:
            raise _error(number, line, f"branch `{part}` names no value")
        for value in names:
            if value == "*":
                if default is not None:
                    raise _error(number, line, "two `*` branches; keep one default branch")
                default = stages
            elif value in branches:
                raise _error(number, line, f"value {value!r} has two branches")
            else:
                branches[value] = stages
    if not branches and default is None:
        raise _error(number, line, "a route needs at least one branch")
    spec = {"kind": "route", "field": field, "branches": branches}
    if default is not None:
        spec["default"] = default
    return spec


def _stage(line: str, number: int, inside: str | None = None) -> dict:
    shown = inside or line
    try:
        tree = ast.parse(line, mode="exec")
    except SyntaxError:
        raise _error(number, shown, "not a stage; write `FIELD = MODEL(INPUT)`, "
                     "`FIELD = cascade(SPECIALIST, FALLBACK, threshold=T)(INPUT)`, a route, or a @specnb.stage "
                     "function's name") from None
    if len(tree.body) != 1:
        raise _error(number, shown, "one stage per line")
    node = tree.body[0]
    if isinstance(node, ast.Expr):
        call = node.value
        if isinstance(call, ast.Name):
            return {"kind": "python", "function": call.id}
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args and not call.keywords:
            return {"kind": "python", "function": call.func.id}
        raise _error(number, shown, "a stage writes a field: `FIELD = MODEL(INPUT)` (a python stage is its "
                     "function's name alone)")
    if not isinstance(node, ast.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        raise _error(number, shown, "write `FIELD = ...` with one field name on the left")
    field = node.targets[0].id
    call = node.value
    if not isinstance(call, ast.Call):
        raise _error(number, shown, "the right side must call a model: `MODEL(INPUT)`")
    if isinstance(call.func, ast.Call):
        return _cascade(field, call, number, shown)
    if not isinstance(call.func, ast.Name):
        raise _error(number, shown, "call a model by its name or alias: `MODEL(INPUT)`")
    if call.func.id == "cascade":
        raise _error(number, shown, "a cascade reads `cascade(SPECIALIST, FALLBACK, threshold=T)(INPUT)`")
    spec = {"kind": "model", "field": field, "model": call.func.id, "input": _input(call, number, shown)}
    spec.update(_keywords(call, MODEL_KEYWORDS, number, shown))
    return spec


def _cascade(field: str, call: ast.Call, number: int, shown: str) -> dict:
    inner = call.func
    if not (isinstance(inner.func, ast.Name) and inner.func.id == "cascade"):
        raise _error(number, shown, "only cascade(...) may be called twice: `cascade(A, B, threshold=T)(INPUT)`")
    if len(inner.args) != 2 or not all(isinstance(a, ast.Name) for a in inner.args):
        raise _error(number, shown, "cascade needs two models by name: cascade(SPECIALIST, FALLBACK, threshold=T)")
    spec = {"kind": "cascade", "field": field, "specialist": inner.args[0].id, "fallback": inner.args[1].id,
            "input": _input(call, number, shown)}
    spec.update(_keywords(inner, CASCADE_KEYWORDS, number, shown))
    if "threshold" not in spec:
        raise _error(number, shown, "cascade needs threshold=T (the specialist's score under which the fallback "
                     "answers)")
    return spec


def _input(call: ast.Call, number: int, shown: str) -> str:
    if len(call.args) != 1 or not isinstance(call.args[0], ast.Name):
        raise _error(number, shown, "a stage reads one field: MODEL(FIELD), e.g. langid(text)")
    return call.args[0].id


def _keywords(call: ast.Call, allowed: tuple, number: int, shown: str) -> dict:
    out = {}
    for keyword in call.keywords:
        if keyword.arg not in allowed:
            raise _error(number, shown, f"unknown option {keyword.arg!r}; valid: {', '.join(allowed)}")
        if isinstance(keyword.value, ast.Name):
            out[keyword.arg] = {"var": keyword.value.id}
            continue
        try:
            out[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise _error(number, shown, f"{keyword.arg}= takes a literal or a notebook name") from None
    return out
