"""Pipeline YAML is checked before anything else: malformed documents are `PipelineError`s naming the line and
the key, the loader is safe and bounded, and loading imports no code unless the caller trusts it."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import uuid

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from properties import counted, seeded

import specnb
from specnb import Pipeline
from specnb.cli import main
from specnb.errors import PipelineError

PYTHON = "stages:\n- kind: python\n  function: {}\n  writes: [n]\n"


@pytest.mark.parametrize(("text", "match"), [
    ("input: {}\nstages: []", r"^line 1: `input` must be a non-empty string, got dict"),
    ("stages:\n- kind: python\n  writes: [n]\n", r"^line 2: `function` is missing"),
    # found by the property suite: a value whose repr holds braces broke the message (IndexError, KeyError)
    ("stages:\n- kind: python\n  function: {kind: null}\n", r"^line 3: function: expected a non-empty string, got dict \{'kind': None\}"),
    ("stages:\n- kind: model\n  field: a\n  model: lang\n", r"^line 2: `input` is missing"),
    ("stages:\n- kind: python\n  function: m:f\n  reads: 0\n", r"^line 4: reads: expected a list of field names"),
    ("stages:\n- kind: model\n  field: 7\n  model: lang\n  input: text\n", r"^line 3: field: expected a non-empty str"),
    ("name: 12\nstages: []\n", r"^line 1: `name` must be a non-empty string, got int"),
    ("stages:\n- kind: loop\n", r"^line 2: kind: unknown stage kind 'loop'"),
    ("stages:\n- field: a\n", r"^line 2: `kind` is missing"),
    ("stages:\n- 3\n", r"^line 2: `stages` item 1: every stage is a mapping"),
    ("stages: {a: 1}\n", r"^line 1: `stages` must be a list of stages, got dict"),
    ("name: p\n", r"^line 1: `stages` is missing"),
    ("- a\n- b\n", r"^line 1: a pipeline file is a mapping"),
    ("stages: []\nextra: 1\n", r"^line 2: unknown key 'extra'"),
    ("stages:\n- kind: model\n  field: a\n  model: lang\n  input: text\n  color: red\n", r"^line 6: unknown key 'color'"),
    ("stages:\n- kind: cascade\n  field: a\n  specialist: x\n  fallback: y\n  input: text\n  threshold: 'hi'\n",
     r"^line 7: threshold: expected a number"),
    ("stages:\n- kind: route\n  field: text\n  branches:\n    a: 5\n", r"^line 5: `branches: a` must be a list"),
    ("stages:\n- kind: route\n  field: text\n  branches: [1]\n", r"^line 4: branches: expected a mapping"),
    ("stages:\n- kind: model\n  field: a\n  model: lang\n  input: text\n  labels: [[1]]\n", r"^line 6: labels:"),
    ("stages: &s\n- kind: route\n  field: text\n  branches:\n    a: *s\n", r"^line \d+: "),
    ("a: 2001-02-30\n", r"not valid YAML"),
    ("[" * 50_000, r"not valid YAML"),
])
def test_malformed_documents_name_the_line_and_key(text, match):
    with pytest.raises(PipelineError, match=match):
        Pipeline.from_yaml(text)


def test_python_tags_are_refused(tmp_path):
    mark = tmp_path / "tag-ran"
    text = f"!!python/object/apply:os.system ['touch {mark}']\n"
    with pytest.raises(PipelineError, match=r"^line 1: not plain YAML: .*python/object/apply.*safe loader"):
        Pipeline.from_yaml(text)
    with pytest.raises(PipelineError, match="not plain YAML"):
        Pipeline.from_yaml("stages:\n- !!python/object:specnb.Pipeline {}\n")
    assert not mark.exists()


def test_size_limit(tmp_path):
    with pytest.raises(PipelineError, match=r"at most 1,000,000"):
        Pipeline.from_yaml("stages: []\n" + "#" * 1_000_000)
    path = tmp_path / "big.yaml"
    path.write_text("stages: []\n" + "#" * 1_000_000)
    with pytest.raises(PipelineError, match=r"big.yaml: .* bytes; a pipeline file is at most 1,000,000"):
        Pipeline.from_yaml(path)


@pytest.fixture
def side_effect_module(tmp_path, monkeypatch):
    """A module on sys.path whose import writes a file; (its name, that file)."""
    name = f"yaml_side_effect_{uuid.uuid4().hex[:8]}"
    mark = tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""\
        import pathlib

        import specnb

        pathlib.Path({str(mark)!r}).write_text("imported")


        @specnb.stage(writes=["n"])
        def count(records):
            for record in records:
                record["n"] = len(record["text"])
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, mark
    sys.modules.pop(name, None)


def test_loading_imports_no_code_unless_trusted(side_effect_module):
    name, mark = side_effect_module
    text = PYTHON.format(f"{name}:count")
    with pytest.raises(PipelineError, match=rf"^line 2: function: .*{name}.*trust_code=True"):
        Pipeline.from_yaml(text)
    assert not mark.exists() and name not in sys.modules
    pipe = Pipeline.from_yaml(text, trust_code=True)
    assert mark.exists()
    assert list(pipe(["abc"])["n"]) == [3]
    mark.unlink()
    again = Pipeline.from_yaml(text)  # imported now: an untrusted load finds it without importing
    assert list(again(["ab"])["n"]) == [2] and not mark.exists()


@specnb.stage
def _real(records):
    return records


@functools.wraps(_real)
def _copied(records):  # carries _real's marker attribute, but was never decorated itself
    return records


@pytest.mark.parametrize("path", ["unittest.mock:sentinel", "unittest.mock:sentinel.anything", "os:system",
                                  f"{__name__}:_copied"])
def test_only_real_stages_pass_the_marker_check(path):
    import unittest.mock  # noqa: F401 - in sys.modules, so only the marker check stands in the way

    with pytest.raises(PipelineError, match="is not decorated with @specnb.stage"):
        Pipeline.from_yaml(PYTHON.format(path), trust_code=True)
    with pytest.raises(PipelineError, match="is not a python stage"):
        Pipeline([unittest.mock.MagicMock()])  # callable, and has every attribute
    assert len(Pipeline.from_yaml(PYTHON.format(f"{__name__}:_real"))) == 1


def test_cli_malformed_yaml_exits_2_without_traceback(tmp_path, capsys, specnb_home):
    path, data = tmp_path / "bad.yaml", tmp_path / "in.csv"
    path.write_text("stages:\n- kind: python\n  reads: 0\n")
    pd.DataFrame({"text": ["a"]}).to_csv(data, index=False)
    assert main(["run", str(path), str(data), "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specnb: PipelineError: line 2: ") and "Traceback" not in err


def test_cli_trust_code_flag(tmp_path, side_effect_module, specnb_home):
    name, mark = side_effect_module
    path, data, out = tmp_path / "p.yaml", tmp_path / "in.csv", tmp_path / "out.csv"
    path.write_text(PYTHON.format(f"{name}:count"))
    pd.DataFrame({"text": ["abcd"]}).to_csv(data, index=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "specnb", "run", str(path), str(data), "-o", str(out)]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)  # hang guards
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("specnb: PipelineError: line 2: ") and "--trust-code" in refused.stderr
    assert "Traceback" not in refused.stderr and not mark.exists() and not out.exists()
    trusted = subprocess.run([*command, "--trust-code"], env=env, capture_output=True, text=True, timeout=600)
    assert trusted.returncode == 0, trusted.stderr
    assert mark.exists() and list(pd.read_csv(out)["n"]) == [4]


_KEYS = ["kind", "field", "model", "input", "function", "reads", "writes", "branches", "default", "labels",
         "threshold", "task", "specialist", "fallback", "name", "stages", "line"]
_words = st.sampled_from(["model", "cascade", "route", "python", "text", "ghost", "a", "", "classify",
                          "os:getcwd", "unittest.mock:sentinel", "ghost_mod:f", "x:", f"{__name__}:_real"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), _words,
                     st.text(alphabet="ab:_ -\n", max_size=6))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(_KEYS), _scalars), inner, max_size=5)),
    max_leaves=12)
_good = st.sampled_from(["text", "a", "b", "ghost", f"{__name__}:_real", "os:getcwd"])
_names = st.one_of(_good, _good, _good, _good, _words, st.lists(_good, max_size=3), _values)  # mostly near-valid
_KIND_KEYS = {"model": ["field", "model", "input", "task", "labels"], "python": ["function", "reads", "writes"],
              "cascade": ["field", "specialist", "fallback", "threshold", "input", "task", "labels"],
              "route": ["field"]}


def _kind_stage(kind):
    return st.fixed_dictionaries({"kind": st.just(kind)}, optional={
        **{key: _names for key in _KIND_KEYS[kind]}, "threshold": st.one_of(st.floats(-1, 2), _values),
        "branches": st.one_of(st.dictionaries(_scalars, st.lists(_stage, max_size=2), max_size=2), _values),
        "default": st.one_of(st.lists(_stage, max_size=2), _values)} if kind == "route" else {
        **{key: _names for key in _KIND_KEYS[kind]}, **({"threshold": st.floats(-1, 2)} if kind == "cascade" else {})})


_stage = st.deferred(lambda: st.one_of(*map(_kind_stage, _KIND_KEYS), st.dictionaries(st.sampled_from(_KEYS), _values)))
_documents = st.fixed_dictionaries({}, optional={"input": _names, "name": _names,
                                                 "stages": st.one_of(st.lists(_stage, max_size=3), _values)})


@seeded(1000)
@given(document=st.one_of(_documents, _documents, _documents, _values), raw=st.booleans())
@counted
def test_random_documents_load_or_raise_pipeline_error(document, raw):
    text = yaml.safe_dump(document) if not raw else str(document)
    try:
        pipe = Pipeline.from_yaml(text)
    except PipelineError:
        return
    assert isinstance(pipe, Pipeline)
