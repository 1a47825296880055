"""The layer rule holds (README "Development"): notebook layer > verbs > machinery > ground, imports inside
functions included; the core imports no notebook library; the import graph has no cycle; no module imports
the package root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_linter_contracts_hold():
    """The contracts in pyproject.toml ([tool.importlinter]): layers (exhaustive: every module of specnb is in
    one), the core without IPython / ipywidgets / anywidget / traitlets, no cycle between siblings."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([command, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)  # a hang guard
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout, result.stdout


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("specnb", cache_dir=None)


def test_the_graph_sees_imports_inside_functions(graph):
    # hf imports the causal-LM code only when a causal model predicts; the checks must see such imports
    assert graph.direct_import_exists(importer="specnb.backends.hf", imported="specnb.backends.causal")
    details = graph.get_import_details(importer="specnb.backends.hf", imported="specnb.backends.causal")
    assert details and all(d["line_contents"].startswith("from .causal") for d in details)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle of imports."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_import_graph_has_no_cycle(graph):
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("specnb")}
             for m in graph.modules if m.startswith("specnb")}
    assert _cycles(edges) == []


def test_no_module_imports_the_package_root(graph):
    """``from .. import load`` in a submodule would make the root a hub every module depends on."""
    assert sorted(graph.find_modules_that_directly_import("specnb")) == []


#: Modules allowed past the size limit, with the reason (none today).
LONG_MODULES: dict[str, str] = {}
LINE_LIMIT = 420


def test_no_module_is_over_about_400_lines():
    """A module that grows past the limit is doing more than one job: split it, or say here why not."""
    sources = [*sorted((ROOT / "specnb").rglob("*.py")), *sorted((ROOT / "js" / "src").glob("*.ts"))]
    long = {str(p.relative_to(ROOT)): n for p in sources
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > LINE_LIMIT}
    assert set(long) <= set(LONG_MODULES), long
