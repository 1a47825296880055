"""``import specnb`` stays light, and the public API is what __all__ says."""

import json
import subprocess
import sys

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
