"""Stage specs: the plain dicts a pipeline is made of (exactly what its YAML holds), and what can be read off
them without running anything: the cell-syntax text of a stage, the fields it reads and writes, and the
stage ids.

A stage id names a stage in a profile, a view or a log: its position, ``"0"``, ``"1"``; inside route ``1``'s
branch ``en`` the inner stages are ``"1.en.0"``, ``"1.en.1"``, and in its default branch ``"1.*.0"``
(`stage_id`, `branch_prefix`; `walk_ids` walks a pipeline that way).
"""

from __future__ import annotations

import weakref

from ..errors import PipelineError

__all__ = [
    "STAGE_KINDS",
    "stage",
    "stage_marks",
    "import_path",
    "strip",
    "where",
    "render",
    "stage_id",
    "branch_prefix",
    "branches",
    "walk_ids",
    "walk",
    "reads",
    "writes",
    "stage_field",
    "stage_model_names",
]

STAGE_KINDS = ("model", "cascade", "route", "python")
#: Each kind's keys in the order a spec is written (YAML, `Pipeline.to_dict`).
_ORDER = {
    "model": ("kind", "field", "model", "input", "task", "labels"),
    "cascade": ("kind", "field", "specialist", "fallback", "threshold", "input", "task", "labels"),
    "route": ("kind", "field", "branches", "default"),
    "python": ("kind", "function", "reads", "writes"),
}
#: The branch value of a route's default branch in stage ids.
DEFAULT_BRANCH = "*"


def stage(fn=None, *, reads=(), writes=()):
    """Mark ``fn(records) -> records`` (a list of dicts in, a list of dicts out — or None after changing
    them in place) as a python stage. ``reads`` / ``writes`` name the fields it uses and adds, for
    validation. Usable as ``@specnb.stage`` or ``@specnb.stage(writes=["clean"])``."""

    def mark(function):
        if not callable(function):
            raise PipelineError(f"@specnb.stage decorates a function, got {type(function).__name__}")
        function._specnb_stage = _Marks(function, reads, writes)
        return function

    return mark(fn) if fn is not None else mark


class _Marks:
    """What ``@specnb.stage`` leaves on a function: its reads / writes, and (weakly) the function itself, so
    an object whose attribute lookups answer anything (``unittest.mock.sentinel``) or that copied another
    function's attributes (``functools.wraps``) is no stage."""

    __slots__ = ("reads", "writes", "_ref", "__weakref__")

    def __init__(self, function, reads, writes):
        self.reads, self.writes = list(reads), list(writes)
        try:
            self._ref = weakref.ref(function)
        except TypeError:  # an object without weak references: hold it (it holds us anyway)
            self._ref = lambda: function

    def of(self, function) -> bool:
        return self._ref() is function


def stage_marks(function) -> dict | None:
    """``{"reads": [...], "writes": [...]}`` when ``function`` itself was decorated with ``@specnb.stage``,
    else None: the marker is checked by identity, never trusted for merely being there."""
    try:
        marks = getattr(function, "_specnb_stage", None)
    except Exception:  # an attribute lookup that fails means no marker
        return None
    if type(marks) is not _Marks or not marks.of(function):
        return None
    return {"reads": list(marks.reads), "writes": list(marks.writes)}


def import_path(function) -> str:
    """``module:qualname``, how a python stage is saved."""
    return f"{function.__module__}:{function.__qualname__}"


def strip(spec):
    """A spec without the bookkeeping keys (``line``), keys in a fixed order."""
    if isinstance(spec, list):
        return [strip(s) for s in spec]
    out = {}
    for key in _ORDER.get(spec.get("kind"), tuple(spec)):
        if key not in spec:
            continue
        value = spec[key]
        if key == "branches":
            value = {str(k): strip(v) for k, v in value.items()}
        elif key == "default":
            value = strip(value)
        out[key] = value
    return out


def where(spec) -> str:
    """``line N: `` for a spec read from a cell or a file, else ``""`` (error messages start with it)."""
    return f"line {spec['line']}: " if spec.get("line") is not None else ""


def _short(value) -> str:
    """An option's value for display: label lists and {label: description} maps shortened."""
    if isinstance(value, dict):
        return "{" + ", ".join(map(repr, list(value)[:4])) + (", …" if len(value) > 4 else "") + ": descriptions}"
    text = repr(value)
    if isinstance(value, list) and len(text) > 60:
        return "[" + ", ".join(map(repr, value[:4])) + f", … {len(value)} labels]"
    return text


def render(spec) -> str:
    """A stage in the cell syntax (`lang = langid(text)`)."""
    kind = spec["kind"]
    if kind == "python":
        return spec["function"].rsplit(":", 1)[-1]
    if kind == "route":
        parts = [f"{value} -> {render(s[0]) if s else 'skip'}" for value, s in spec["branches"].items()]
        if "default" in spec:
            parts.append(f"* -> {render(spec['default'][0]) if spec['default'] else 'skip'}")
        return f"route {spec['field']}: " + "; ".join(parts)
    options = "".join(f", {k}={_short(spec[k])}" for k in ("task", "labels", "threshold") if k in spec)
    if kind == "cascade":
        return f"{spec['field']} = cascade({spec['specialist']}, {spec['fallback']}{options})({spec['input']})"
    return f"{spec['field']} = {spec['model']}({spec['input']}{options})"


# -- stage ids ------------------------------------------------------------------------------------------------
def stage_id(prefix: str, position: int) -> str:
    """The id of the stage at ``position`` among the stages under ``prefix`` (``""`` at the top)."""
    return f"{prefix}{position}"


def branch_prefix(route_id: str, branch: str) -> str:
    """The prefix of the stage ids inside a route's branch (``branch`` the routed value, or ``*``)."""
    return f"{route_id}.{branch}."


def branches(spec) -> list[tuple[str, list]]:
    """A route's branches in order, as (routed value, stages), its default branch last as (``*``, stages)
    when it has one; empty for other kinds."""
    if spec["kind"] != "route":
        return []
    out = [(str(value), inner) for value, inner in spec["branches"].items()]
    if "default" in spec:
        out.append((DEFAULT_BRANCH, spec["default"]))
    return out


def walk_ids(stages, prefix: str = ""):
    """(stage id, spec) for every stage, routes' branches included, in order."""
    for position, spec in enumerate(stages):
        key = stage_id(prefix, position)
        yield key, spec
        for branch, inner in branches(spec):
            yield from walk_ids(inner, branch_prefix(key, branch))


def walk(stages):
    """Every stage spec, routes' branches included, in order."""
    return (spec for _, spec in walk_ids(stages))


# -- fields and models ----------------------------------------------------------------------------------------
def reads(spec) -> list[str]:
    """The fields a stage reads (a route: the field it routes on)."""
    kind = spec["kind"]
    if kind in ("model", "cascade"):
        return [spec["input"]]
    if kind == "route":
        return [spec["field"]]
    return list(spec.get("reads", []))


def writes(spec) -> list[str]:
    """The fields a stage writes (a route writes none itself)."""
    kind = spec["kind"]
    if kind in ("model", "cascade"):
        return [spec["field"]]
    if kind == "python":
        return list(spec.get("writes", []))
    return []


def stage_field(spec) -> str | None:
    """The field a stage is about, for display: what it writes, or the field a route routes on."""
    if spec["kind"] == "python":
        return ", ".join(spec.get("writes", [])) or None
    return spec.get("field")


def stage_model_names(spec) -> str:
    """The models a stage names, for display: ``lid``, ``spec → big``; ``""`` for routes and python stages."""
    if spec["kind"] == "model":
        return str(spec["model"])
    if spec["kind"] == "cascade":
        return f"{spec['specialist']} → {spec['fallback']}"
    return ""
