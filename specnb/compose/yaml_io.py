"""Pipelines as YAML: a plain mapping (name, input, stages) written in a fixed key order; reading keeps
each stage's line so validation errors can name it."""

from __future__ import annotations

from ..errors import PipelineError

__all__ = ["dump", "load"]


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


def load(text: str) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        value = loader.construct_mapping(node, deep=True)
        if "kind" in value:
            value["line"] = node.start_mark.line + 1
        return value

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        spec = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PipelineError(f"{where}not valid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("stages"), list):
        raise PipelineError("a pipeline file is a mapping with `name`, `input` and a list of `stages`")
    for stage in spec["stages"]:
        if not isinstance(stage, dict):
            raise PipelineError(f"every stage is a mapping with a `kind`, got {stage!r}")
    return spec
