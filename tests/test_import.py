"""``import specnb`` stays light, the public API is what __all__ says, and every public module path imports."""

import functools
import importlib
import json
import pkgutil
import struct
import subprocess
import sys
from types import ModuleType

import pytest

import specnb


def test_import_specnb_imports_no_torch_ipython_widgets_or_pandas():
    code = (
        "import sys, json, specnb; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers', 'IPython', 'ipywidgets', 'anywidget', 'traitlets', 'pandas', 'plotly'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_name_in_all_exists_and_errors_share_one_base():
    for name in specnb.__all__:
        assert hasattr(specnb, name), name
    errors = [getattr(specnb, n) for n in specnb.__all__ if n.endswith("Error") and n != "SpecnbError"]
    assert errors and all(issubclass(e, specnb.SpecnbError) for e in errors)


# -- the public / private line ----------------------------------------------------------------------------
#: Public-looking names of the package that are not API: IPython's extension hook.
HOOKS = {"load_ipython_extension"}


def _public_names(module) -> set[str]:
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, ModuleType)} - HOOKS


def test_all_is_exactly_the_public_names_both_ways():
    assert len(specnb.__all__) == len(set(specnb.__all__))
    assert set(specnb.__all__) - {"__version__"} == _public_names(specnb)


def _modules():
    """Every module of specnb (but ``__main__``, which runs the command line) by dotted path."""
    return sorted(info.name for info in pkgutil.walk_packages(specnb.__path__, "specnb.") if
                  not info.name.endswith("__main__"))


def test_every_public_module_path_imports_and_is_reached_by_attribute():
    """No public name hides a module: ``specnb.compose.ray_engine`` is the module whichever way it is reached,
    and the private modules are the ones whose names public functions take (``_compare``, ``_catalog``)."""
    public = [name for name in _modules() if not any(part.startswith("_") for part in name.split("."))]
    assert {"specnb.compose.ray_engine", "specnb.tasks.ner", "specnb.widgets.display", "specnb.datasets",
            "specnb.presentation", "specnb.backends.folder"} <= set(public)
    for name in public:
        module = importlib.import_module(name)
        assert functools.reduce(getattr, name.split(".")[1:], specnb) is module, name
        for exported in getattr(module, "__all__", ()):
            assert hasattr(module, exported), f"{name}.__all__ names {exported!r}, which it does not define"


def test_no_public_function_takes_a_module_name():
    for name in specnb.__all__:
        assert importlib.util.find_spec(f"specnb.{name}") is None, f"specnb.{name} is both a name and a module"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("specnb.compare")


def test_the_registry_is_public_and_the_one_the_functions_use():
    from specnb.backends.model_registry import ModelRegistry

    assert isinstance(specnb.registry, ModelRegistry) and specnb.backends.registry is specnb.registry
    model = specnb.load(lambda texts: ["en"] * len(texts), alias="constant", task="langid")
    assert "constant" in specnb.registry and specnb.registry.get("constant") is model is specnb.get("constant")


def test_the_folder_metadata_reads_a_model_folder_without_torch(tmp_path):
    """`specnb.backends.folder` plans a load before any backend (or torch) is imported."""
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForTokenClassification"]}))
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")  # a valid, empty file
    code = (
        "import sys, json\n"
        "from specnb.backends.folder import inspect_folder, infer_tasks\n"
        f"info = inspect_folder(__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "print(json.dumps([infer_tasks(info.config)[0], sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers'})]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["ner", []]
