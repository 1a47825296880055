"""The error tree: every error specnb raises is a `SpecnbError` subclass that also derives from the built-in
exception callers catch for the same problem; no code path raises a bare built-in exception or the bare base."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

import specnb
from specnb import errors

PACKAGE = Path(specnb.__file__).resolve().parent
#: Built-in exceptions raised on purpose, where Python's own protocols call for them.
PROTOCOL = {
    "NotImplementedError": "an abstract method of a base class",
    "AttributeError": "a module's __getattr__",
    "SystemExit": "the command line's exit status",
}
BUILTIN_ERRORS = {name for name, value in vars(builtins).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def _raised_names(tree: ast.AST):
    """(line, name, enclosing function) of every ``raise Name(...)`` / ``raise Name``."""
    functions = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name):
                functions.append((node.lineno, target.id, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return functions


def test_no_code_path_raises_a_bare_builtin_exception_or_the_bare_base():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, name, function in _raised_names(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} raise {name} (in {function})"
            if name == "SpecnbError":
                found.append(where + ": raise a subclass that says what went wrong")
            elif name in BUILTIN_ERRORS:
                allowed = (name == "NotImplementedError"
                           or (name == "AttributeError" and function == "__getattr__")
                           or (name == "SystemExit" and path.name in ("cli.py", "__main__.py")))
                if not allowed:
                    found.append(where + f": raise a SpecnbError subclass (protocol exceptions allowed: {PROTOCOL})")
    assert not found, "\n".join(found)


def test_the_scan_sees_a_raise_it_would_refuse():
    tree = ast.parse("def f():\n    raise ValueError('x')\n\ndef __getattr__(name):\n    raise AttributeError(name)\n")
    assert _raised_names(tree) == [(2, "ValueError", "f"), (5, "AttributeError", "__getattr__")]


def _defined_exceptions():
    return {name: value for name, value in vars(errors).items()
            if isinstance(value, type) and issubclass(value, (BaseException, Warning)) and value.__module__ == errors.__name__}


def test_every_error_class_is_exported_documented_and_under_the_base():
    defined = _defined_exceptions()
    assert set(defined) == set(errors.__all__)
    for name, cls in defined.items():
        assert name in specnb.__all__ and getattr(specnb, name) is cls
        assert inspect.getdoc(cls), f"{name} has no docstring"
        if issubclass(cls, Warning):
            assert issubclass(cls, specnb.SpecnbWarning)
        else:
            assert issubclass(cls, specnb.SpecnbError)
            assert cls is specnb.SpecnbError or len(cls.__mro__) > 3, f"{name} derives from no built-in exception"


@pytest.mark.parametrize("error, builtin", [
    (specnb.InputError, ValueError), (specnb.ConfigError, ValueError), (specnb.TaskError, ValueError),
    (specnb.PipelineError, ValueError), (specnb.DatasetError, ValueError), (specnb.ModelOutputError, RuntimeError),
    (specnb.AliasError, KeyError), (specnb.RunNotFoundError, KeyError), (specnb.MemoryBudgetError, MemoryError),
])
def test_each_error_is_the_builtin_callers_catch(error, builtin):
    assert issubclass(error, builtin)


def test_an_input_error_is_no_longer_a_type_error():
    assert not issubclass(specnb.InputError, TypeError)  # bad values: `except ValueError` catches them


def test_bad_input_is_caught_as_a_value_error():
    model = specnb.load(lambda texts: ["en"] * len(texts), alias="constant", task="langid")
    with pytest.raises(ValueError, match=r"predict\(\[text\]\)"):
        model.predict("one string")


def test_a_bad_setting_is_a_config_error_naming_the_fix(monkeypatch):
    monkeypatch.setitem(specnb.config.price_per_hour, "cpu", "ten cents")
    with pytest.raises(specnb.ConfigError, match=r"specnb.config.price_per_hour\['cpu'\] = 0.10"):
        specnb.config.price("cpu")
    monkeypatch.setitem(specnb.config.token_budget, "cpu", -1)
    with pytest.raises(specnb.ConfigError, match="token_budget"):
        specnb.config.tokens_per_batch("cpu")
    monkeypatch.setitem(specnb.config.memory_budget, "cpu", "lots")
    with pytest.raises(specnb.ConfigError, match="'4GB' or '512MiB'"):
        specnb.config.budget_bytes("cpu", 2**30)


def test_a_callable_that_answers_wrongly_is_a_model_output_error():
    short = specnb.load(lambda texts: ["en"], alias="short", task="langid")
    with pytest.raises(specnb.ModelOutputError, match="returned 1 outputs for 2 inputs"):
        short.predict(["a", "b"])
    odd = specnb.load(lambda texts: [object() for _ in texts], alias="odd", task="langid")
    with pytest.raises(specnb.ModelOutputError, match="for task 'langid'; it must return a label str"):
        odd.predict(["a"])


def test_an_unreadable_stored_prediction_is_a_store_error():
    from specnb.tasks import prediction_from_dict

    with pytest.raises(specnb.StoreError, match="not a stored prediction"):
        prediction_from_dict({"what": 1})
