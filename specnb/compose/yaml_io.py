"""Pipelines as YAML: a plain mapping (name, input, stages) written in a fixed key order.

Reading is a safe loader (plain YAML: no Python tags) with a size limit, and checks the document's shape
(`check`: the keys each stage kind takes and their types) before anything else looks at it; every error is
a `PipelineError` naming the YAML line and the key. Each stage keeps its line so validation errors can
name it."""

from __future__ import annotations

from pathlib import Path

from ..errors import PipelineError

__all__ = ["dump", "load", "read", "MAX_BYTES"]

#: The largest pipeline file read (a pipeline is a few hundred lines).
MAX_BYTES = 1_000_000
#: The most stages a document may hold, routes' branches and YAML aliases expanded.
MAX_STAGES = 10_000


def dump(spec: dict) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value: str):
        # Plain and single-quoted YAML fold line breaks (\n, \x85, \u2028...) and tabs; double quotes
        # escape them, so every string reads back exactly.
        style = None if value.isprintable() else '"'
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(spec, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def read(path: Path) -> str:
    """A pipeline file's text, refused when missing or over `MAX_BYTES`."""
    if not path.is_file():
        raise PipelineError(f"no pipeline file {path}")
    if path.stat().st_size > MAX_BYTES:
        raise PipelineError(f"{path}: {path.stat().st_size:,} bytes; a pipeline file is at most {MAX_BYTES:,}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path}: cannot read it as UTF-8 text ({error})") from None


def load(text) -> dict:
    """The pipeline mapping in ``text``, its shape checked (`check`); each stage spec gets its ``line``."""
    import yaml

    if not isinstance(text, str):
        raise PipelineError(f"a pipeline is YAML text or a path to a .yaml file, got {type(text).__name__}")
    if len(text) > MAX_BYTES:
        raise PipelineError(f"the pipeline YAML is {len(text):,} characters; at most {MAX_BYTES:,}")
    lines: dict[int, tuple] = {}  # id(mapping or list) -> (the object, its line, {key or index: line})

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        value = loader.construct_mapping(node, deep=True)
        keys = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            keys.setdefault(key, key_node.start_mark.line + 1)
        lines[id(value)] = (value, node.start_mark.line + 1, keys)
        return value

    def sequence(loader, node):
        value = loader.construct_sequence(node, deep=True)
        lines[id(value)] = (value, node.start_mark.line + 1, {i: n.start_mark.line + 1 for i, n in enumerate(node.value)})
        return value

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, sequence)
    try:
        spec = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as error:
        raise PipelineError(f"{_mark(error)}not plain YAML: {error.problem}; pipeline files are read with a safe "
                            "loader (no Python tags)") from None
    except yaml.YAMLError as error:
        raise PipelineError(f"{_mark(error)}not valid YAML: {getattr(error, 'problem', None) or error}") from None
    except RecursionError:
        raise PipelineError("not valid YAML for a pipeline: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as error:  # a scalar PyYAML cannot build (2001-02-30)
        raise PipelineError(f"not valid YAML: {error}") from None
    check(spec, lines)
    return spec


def _mark(error) -> str:
    mark = getattr(error, "problem_mark", None)
    return f"line {mark.line + 1}: " if mark is not None else ""


#: Each stage kind's keys: required ones, then optional ones; what each key's value is.
_KEYS = {
    "model": (("field", "model", "input"), ("task", "labels")),
    "cascade": (("field", "specialist", "fallback", "threshold", "input"), ("task", "labels")),
    "route": (("field", "branches"), ("default",)),
    "python": (("function",), ("reads", "writes")),
}
_NAMES = ("field", "model", "input", "specialist", "fallback", "function")  # non-empty strings
_TOP = ("name", "input", "stages")


def _type(value) -> str:
    return "null" if value is None else type(value).__name__


def check(spec, lines: dict) -> None:
    """Raise `PipelineError` naming the line and the key for anything a pipeline document cannot hold: a
    missing or unknown key, a value of the wrong type, an unknown stage kind. ``lines`` is what `load`
    recorded; each stage spec gets its ``line``."""

    def line_of(value, key=None, default=1):
        entry = lines.get(id(value))
        if entry is None or entry[0] is not value:
            return default
        return entry[2].get(key, entry[1]) if key is not None else entry[1]

    def fail(line, message):
        raise PipelineError(f"line {line}: {message}")

    if not isinstance(spec, dict):
        fail(line_of(spec), f"a pipeline file is a mapping with `name`, `input` and a list of `stages`, "
                            f"got {_type(spec)}")
    for key in spec:
        if key not in _TOP:
            fail(line_of(spec, key), f"unknown key {key!r}; a pipeline file has {', '.join(_TOP)}")
    if "stages" not in spec:
        fail(line_of(spec), "`stages` is missing: a pipeline file has a list of `stages`")
    for key in ("name", "input"):
        if key in spec and not (isinstance(spec[key], str) and spec[key]):
            fail(line_of(spec, key), f"`{key}` must be a non-empty string, got {_type(spec[key])} {spec[key]!r}")
    count = [0, set()]  # stages seen (aliases counted each time), ids of those already checked
    _stages(spec["stages"], "stages", line_of(spec, "stages"), line_of, fail, count, set())


def _stages(value, key, line, line_of, fail, count, path):
    if not isinstance(value, list):
        fail(line, f"`{key}` must be a list of stages, got {_type(value)}")
    if id(value) in path:
        fail(line, f"`{key}`: a YAML alias makes the stages contain themselves")
    path = path | {id(value)}
    for position, stage in enumerate(value):
        count[0] += 1
        if count[0] > MAX_STAGES:
            fail(line, f"more than {MAX_STAGES:,} stages (YAML aliases expanded)")
        at = line_of(value, position, line)
        if not isinstance(stage, dict):
            fail(at, f"`{key}` item {position + 1}: every stage is a mapping with a `kind`, got {_type(stage)}")
        if id(stage) not in count[1]:  # an aliased stage is checked once (it then holds its `line`)
            _stage(stage, at, line_of, fail, count, path)
            count[1].add(id(stage))


def _stage(stage, line, line_of, fail, count, path):
    kind = stage.get("kind")
    if "kind" not in stage:
        fail(line, f"`kind` is missing; every stage has one of: {', '.join(_KEYS)}")
    if not isinstance(kind, str) or kind not in _KEYS:
        fail(line_of(stage, "kind", line), f"kind: unknown stage kind {kind!r}; valid: {', '.join(_KEYS)}")
    required, optional = _KEYS[kind]
    for key in stage:
        if key != "kind" and key not in required and key not in optional:
            fail(line_of(stage, key, line), f"unknown key {key!r} in a {kind} stage; it takes "
                                             f"{', '.join(required + optional)}")
    for key in required:
        if key not in stage:
            fail(line, f"`{key}` is missing: a {kind} stage needs {', '.join(required)}")
    for key, value in stage.items():
        at = line_of(stage, key, line)
        got = f"{_type(value)} {value!r}"[:160]

        def what(expected: str, key=key, got=got) -> str:  # not str.format: the value's repr may hold braces
            return f"{key}: expected {expected}, got {got}"

        if key in _NAMES and not (isinstance(value, str) and value):
            fail(at, what("a non-empty string"))
        elif key == "task" and not (value is None or isinstance(value, str)):
            fail(at, what("a task name (a string)"))
        elif key == "threshold" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fail(at, what("a number in [0, 1]"))
        elif key in ("reads", "writes") and not (isinstance(value, list) and all(
                isinstance(v, str) and v for v in value)):
            fail(at, what("a list of field names (strings)"))
        elif key == "labels" and not (value is None or _labels(value)):
            fail(at, what("a list of labels or a mapping of label: description (strings)"))
        elif key == "branches":
            if not isinstance(value, dict):
                fail(at, what("a mapping of routed value: list of stages"))
            for branch, inner in value.items():
                if not isinstance(branch, (str, int, float)):
                    fail(line_of(value, branch, at), f"branches: a routed value is a string or number, "
                                                     f"got {_type(branch)}")
                _stages(inner, f"branches: {branch}", line_of(value, branch, at), line_of, fail, count, path)
        elif key == "default":
            _stages(value, "default", at, line_of, fail, count, path)
    stage["line"] = line


def _labels(value) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
