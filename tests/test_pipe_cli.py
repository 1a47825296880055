"""A pipeline built in three notebook cells, saved as YAML, runs from `specnb run` on a CSV."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from specnb.cli import main

TEXTS = ["I love this wonderful little café.", "The service was slow and rude.",
         "Le service était lent.", "Der Kaffee war wunderbar.", "What a fantastic film, truly great!"]
CELLS = [
    "lang = langid(text)\n",
    "route lang: en -> mood = cascade(vader, minilm, threshold=0.6)(text); * -> skip\n",
    "add_length\n",
]


@pytest.fixture
def built(specnb_home, tmp_path):
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    shell.run_line_magic("load_ext", "specnb")
    shell.run_cell("from compose_stages import add_length")
    for cell in CELLS:
        shell.run_cell_magic("specnb", "pipe mood", cell)
    pipe = shell.user_ns["mood"]
    path = tmp_path / "mood.yaml"
    pipe.to_yaml(path)
    data = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(TEXTS)), "body": TEXTS}).to_csv(data, index=False)
    return pipe, path, data


def test_three_cells_make_one_pipeline(built):
    pipe, path, _ = built
    assert [s["kind"] for s in pipe.stages] == ["model", "route", "python"]
    assert "function: compose_stages:add_length" in path.read_text()


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_cli_run_writes_what_the_notebook_pipeline_gives(built, tmp_path, suffix, capsys):
    pipe, path, data = built
    out = tmp_path / f"out{suffix}"
    assert main(["run", str(path), str(data), "-o", str(out), "--text", "body"]) == 0
    assert "5 records" in capsys.readouterr().out
    expected = pipe(pd.read_csv(data, dtype=str, keep_default_na=False), text="body")
    if suffix == ".parquet":
        got = pd.read_parquet(out)
    elif suffix == ".csv":
        got = pd.read_csv(out, dtype={"id": str})
    else:
        got = pd.read_json(out, lines=True, dtype={"id": str})
    assert list(got.columns) == list(expected.columns)
    assert list(got["mood"].fillna("-")) == list(expected["mood"].fillna("-"))
    assert list(got["mood:by"].fillna("-")) == list(expected["mood:by"].fillna("-"))
    assert list(got["lang"]) == ["en", "en", "fr", "de", "en"] and list(got["length"]) == [len(t) for t in TEXTS]


def test_cli_run_errors_are_one_line(built, tmp_path, capsys):
    _, path, data = built
    assert main(["run", str(path), str(data), "-o", str(tmp_path / "x.txt"), "--text", "body"]) == 2
    assert "write .parquet, .csv or .jsonl" in capsys.readouterr().err
    assert main(["run", str(path), str(data), "-o", str(tmp_path / "x.csv")]) == 2
    assert "PipelineError: the data has no 'text' column; columns: id, body" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("specialist: vader", "specialist: nobody"))
    assert main(["run", str(bad), str(data), "-o", str(tmp_path / "x.csv"), "--text", "body"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specnb: PipelineError: line ") and "unknown model 'nobody'" in err


@pytest.mark.real
def test_cli_ray_engine_writes_the_local_engines_output(built, tmp_path):
    """The issue's bar: a pipeline built in three cells runs from the CLI with --engine local and
    --engine ray, with identical output (MiniLM's float scores may differ in the last digits: batches)."""
    pytest.importorskip("ray")
    import ray

    _, path, data = built
    local, remote = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    try:
        assert main(["run", str(path), str(data), "-o", str(local), "--text", "body"]) == 0
        assert main(["run", str(path), str(data), "-o", str(remote), "--text", "body", "--engine", "ray",
                     "--batch-size", "2"]) == 0
    finally:
        ray.shutdown()
    expected, got = pd.read_parquet(local), pd.read_parquet(remote)
    assert list(got["mood:by"].fillna("-")) == list(expected["mood:by"].fillna("-"))
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-6)
