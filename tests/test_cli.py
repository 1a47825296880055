"""The command line (`specnb demo`, `catalog`, `compare`, `runs`) and the demo."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from test_notebooks import EVIDENCE, check_offline_page, check_outputs

import specnb
from specnb.cli import main
from specnb.datasets import langid_sentences
from specnb.demo_notebook import NOTEBOOK_EXECUTED, NOTEBOOK_HTML

# The cache the test session shares (conftest sets it before this module is imported): it holds the
# dequantized SmolLM2, which the demo test reuses through a link instead of converting it again.
SHARED_HOME = Path(os.environ["SPECNB_HOME"])

SENTIMENT = pd.DataFrame({
    "body": ["I love this, it is wonderful!", "This is awful and I hate it.", "What a great day.",
             "The food was terrible.", "It is a table.", "NA"],
    "y": ["positive", "negative", "positive", "negative", "neutral", "neutral"],
})


@pytest.fixture
def langid_csv(tmp_path):
    """Ten sentences in ten languages, with their gold label."""
    path = tmp_path / "langid.csv"
    langid_sentences().iloc[::24].to_csv(path, index=False)
    return path


def one_error_line(err: str, kind: str) -> str:
    assert err.startswith(f"specnb: {kind}: ") and err.count("\n") == 1, err
    return err


def run_ids(out: str) -> list[str]:
    return re.findall(r"^run (\d{8}-\d{6}-[0-9a-f]{6})", out, flags=re.M)


# -- catalog, usage errors -------------------------------------------------------------------------
def test_catalog_command_prints_every_name(capsys):
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    for name in ["minilm", "langid", "ner", "vader", "smollm2", "qwen2.5-0.5b"]:
        assert name in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["compare", "--data", "x.csv", "--models", "langid"], "--task"),
    (["compare", "--task", "embed", "--data", "x.csv", "--models", "minilm"], "invalid choice: 'embed'"),
    (["compare", "--task", "langid", "--data", "x.csv", "--models", "langid", "--sample", "0"], "must be at least 1"),
    (["compare", "--task", "langid", "--data", "x.csv", "--models", "langid", "--price-per-hour", "-1"], ">= 0"),
    (["runs", "show"], "id"),
])
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_library_errors_print_one_line_and_exit_2(capsys, tmp_path, specnb_home):
    assert main(["demo", "--device", "tpu", "--out", str(tmp_path / "demo")]) == 2
    assert "unknown device 'tpu'" in one_error_line(capsys.readouterr().err, "DeviceError")
    assert not (tmp_path / "demo").exists()


# -- compare -----------------------------------------------------------------------------------------
def test_compare_prints_the_run_and_its_summary_and_writes_every_output(langid_csv, tmp_path, specnb_home, capsys):
    out_dir = tmp_path / "out"
    outputs = [out_dir / f"r.{ext}" for ext in ("html", "csv", "json", "parquet")]
    argv = ["compare", "--task", "langid", "--data", str(langid_csv), "--label", "label", "--models", "langid",
            "--name", "ten languages", *[x for path in outputs for x in ("-o", str(path))]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (run_id,) = run_ids(out)
    assert specnb.runs()["id"].tolist() == [run_id]
    header = next(line for line in out.splitlines() if "accuracy" in line)
    for column in ["valid", "accuracy [95% CI]", "macro F1 [95% CI]", "p50 ms", "items/s", "weights", "$/1M items"]:
        assert column in header
    row = next(line for line in out.splitlines() if line.startswith("langid "))
    assert "100.0% [100.0%, 100.0%]" in row and "KiB" in row
    html, csv, js, parquet = outputs
    assert run_id in html.read_text(encoding="utf-8")
    table = pd.read_csv(csv)
    assert len(table) == 10 and (table["langid"] == table["label"]).all()
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["run"]["id"] == run_id and data["run"]["name"] == "ten languages" and len(data["items"]) == 10
    assert pd.read_parquet(parquet)["langid"].tolist() == table["langid"].tolist()
    for path in outputs:
        assert f"wrote {path}" in out


def test_compare_reads_json_lines_with_named_columns(tmp_path, specnb_home, capsys):
    data = tmp_path / "reviews.jsonl"
    SENTIMENT.to_json(data, orient="records", lines=True)
    assert main(["compare", "--task", "sentiment", "--data", str(data), "--text", "body", "--label", "y",
                 "--models", "vader"]) == 0
    out = capsys.readouterr().out
    assert "sentiment, 6 items, models vader" in out and "accuracy [95% CI]" in out
    run = specnb.get_run(run_ids(out)[0])
    assert run.inputs == SENTIMENT["body"].tolist() and run.labels == SENTIMENT["y"].tolist()


def test_compare_keeps_csv_cells_as_text(tmp_path, specnb_home, capsys):
    data = tmp_path / "reviews.csv"
    SENTIMENT.to_csv(data, index=False)
    assert main(["compare", "--task", "sentiment", "--data", str(data), "--text", "body", "--label", "y",
                 "--models", "vader"]) == 0
    run = specnb.get_run(run_ids(capsys.readouterr().out)[0])
    assert run.inputs[-1] == "NA" and run.predictions["vader"][-1].valid


def test_compare_without_label_has_no_quality_columns_and_samples(tmp_path, specnb_home, capsys):
    data = tmp_path / "langid.parquet"
    langid_sentences().iloc[::24].to_parquet(data)  # it has a label column, but --label is not given
    assert main(["compare", "--task", "langid", "--data", str(data), "--models", "langid", "--sample", "4",
                 "--seed", "1", "-o", str(tmp_path / "items.csv")]) == 0
    out = capsys.readouterr().out
    assert "langid, 4 items" in out and "accuracy" not in out and "valid" in out
    table = pd.read_csv(tmp_path / "items.csv")
    assert len(table) == 4 and "label" not in table.columns


@pytest.mark.parametrize("setup, argv, kind, expected", [
    ("data.txt", ["--text", "text"], "InputError", ".csv, .jsonl, .ndjson, .parquet"),
    ("missing.csv", ["--text", "text"], "InputError", "no such file"),
    ("data.csv", ["--text", "body"], "InputError", "no column 'body' (--text); its columns: text, label"),
    ("data.csv", ["--label", "gold"], "InputError", "no column 'gold' (--label); its columns: text, label"),
    ("data.csv", ["-o", "report.pdf"], "InputError", ".html, .csv, .parquet, .json"),
    ("broken.parquet", [], "InputError", "cannot read"),
    ("data.csv", ["--label-space", "fi,sv"], "InputError", "not in the label space"),
])
def test_compare_bad_input_prints_one_line_and_stores_nothing(setup, argv, kind, expected, tmp_path, specnb_home,
                                                              capsys):
    path = tmp_path / setup
    if setup.startswith("data"):
        langid_sentences().iloc[:3].to_csv(path, index=False)
    elif setup.startswith("broken"):
        path.write_bytes(b"not a parquet file")
    code = main(["compare", "--task", "langid", "--data", str(path), "--models", "langid", "--label", "label",
                 *argv])
    assert code == 2
    assert expected in one_error_line(capsys.readouterr().err, kind)
    assert specnb.runs().empty


# -- runs --------------------------------------------------------------------------------------------
def test_runs_lists_shows_and_deletes_stored_runs(langid_csv, tmp_path, specnb_home, capsys):
    assert main(["runs"]) == 0
    assert "no stored runs" in capsys.readouterr().out
    ids = []
    for name in ["first", "second"]:
        assert main(["compare", "--task", "langid", "--data", str(langid_csv), "--label", "label",
                     "--models", "langid", "--name", name]) == 0
        ids += run_ids(capsys.readouterr().out)
        time.sleep(0.01)
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "created", "status", "task", "name", "items", "models"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]  # newest first
    assert all(" finished " in line and " langid " in line and " 10 " in line for line in lines[1:])

    assert main(["runs", "show", ids[0], "-o", str(tmp_path / "first.html")]) == 0
    out = capsys.readouterr().out
    assert run_ids(out) == [ids[0]] and "'first'" in out and "accuracy [95% CI]" in out
    assert ids[0] in (tmp_path / "first.html").read_text(encoding="utf-8")

    assert main(["runs", "delete", ids[0]]) == 0
    assert f"deleted run {ids[0]}" in capsys.readouterr().out
    assert specnb.runs()["id"].tolist() == [ids[1]]
    assert main(["runs", "show", ids[0]]) == 2
    assert ids[1] in one_error_line(capsys.readouterr().err, "RunNotFoundError")
    assert main(["runs", "delete", ids[0]]) == 2
    one_error_line(capsys.readouterr().err, "RunNotFoundError")


# -- the demo ----------------------------------------------------------------------------------------
@pytest.mark.real
def test_demo_compares_on_both_sets_trains_specialists_and_writes_the_report(tmp_path):
    home = tmp_path / "specnb-home"
    home.mkdir()
    (SHARED_HOME / "gguf").mkdir(parents=True, exist_ok=True)
    (home / "gguf").symlink_to(SHARED_HOME / "gguf")  # reuse the dequantized SmolLM2; keep the runs here
    env = dict(os.environ, HF_HUB_OFFLINE="1", SPECNB_HOME=str(home))
    out_dir = tmp_path / "demo"
    out = subprocess.run([sys.executable, "-m", "specnb", "demo", "--out", str(out_dir)], capture_output=True,
                         text=True, env=env, timeout=3600)  # a hang guard: the demo takes ~15 min on 2 cores
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Language ID" in out.stdout and "BBC News topics" in out.stdout
    headers = [line for line in out.stdout.splitlines() if "accuracy [95% CI]" in line]
    assert len(headers) == 3  # the two comparisons and the specialists' short table
    langid_accuracy = float(re.search(r"^langid +specialist +\S+ +240 +\S+ +(\d+\.\d)%", out.stdout,
                                      flags=re.M).group(1))
    minilm_accuracy = float(re.search(r"^minilm +specialist +\S+ +100 +\S+ +(\d+\.\d)%", out.stdout,
                                      flags=re.M).group(1))
    assert langid_accuracy >= 95 and minilm_accuracy >= 70
    assert "items where the models differ or one is wrong" in out.stdout
    report = (out_dir / "report.html").read_text(encoding="utf-8")
    assert "BBC News topics" in report and "Language ID" in report
    for page in ["langid.html", "bbc.html"]:
        assert f'href="{page}"' in report and (out_dir / page).stat().st_size > 100_000
    stored = specnb.store.RunStore(home / "runs.sqlite").runs()
    compared = stored[stored["kind"] == "compare"]
    # the demo's own comparisons, then the evidence notebook's (it runs in the same SPECNB_HOME: every run is kept)
    assert sorted(compared["name"]) == ["demo: bbc topics", "demo: langid", "demo: specialize", "evidence: bbc topics",
                                        "evidence: langid", "evidence: ner", "evidence: ner, spaCy alone",
                                        "evidence: trained specialists"]
    trained = {alias for models in stored[stored["kind"] == "train"]["models"] for alias in models}
    assert {"minilm-bbc", "minilm-bbc-distilled", "bbc-head", "bbc-distilled"} <= trained, trained
    # the pipeline: language ID, then English texts through the topic cascade, its profile and a sweep
    assert "== Pipeline" in out.stdout and "threshold sweep" in out.stdout
    assert re.search(r"80 texts; 40 English; topic accuracy 0\.\d+ on 40 BBC articles", out.stdout)
    assert re.search(r"\[1\.en\.0\] topic = cascade\(minilm, smollm2.*% to the fallback", out.stdout)
    # the specialists: a head on gold labels, one distilled from SmolLM2's answers, and the learning curve,
    # compared with MiniLM zero-shot and SmolLM2 on the same held-out articles
    assert "== Specialize" in out.stdout and "240 train / 60 held-out articles" in out.stdout
    for model in ["minilm-bbc", "minilm-bbc-distilled", "minilm", "smollm2"]:
        assert re.search(rf"^{re.escape(model)} +.*\d+\.\d% \[\d+\.\d%, \d+\.\d%\]", out.stdout, flags=re.M), model
    assert re.search(r"distilled from smollm2: 80 training texts labelled by smollm2 \(asked (80|0), (0|80) from the "
                     r"run store.*no gold label in training; on the 60 held-out articles it agrees with smollm2 on "
                     r"\d+\.\d% and is right on \d+\.\d% \(smollm2: \d+\.\d%\)", out.stdout)
    assert re.search(r"learning curve .*: 1/class 0\.\d+, 2/class", out.stdout)
    crossings = re.findall(r"^crossover vs (MiniLM zero-shot|SmolLM2): (minilm|smollm2) \(\d\.\d+\): "
                           r"(beaten from \d+ examples per class on|not beaten within 32 examples per class)",
                           out.stdout, flags=re.M)
    assert [c[:2] for c in crossings] == [("MiniLM zero-shot", "minilm"), ("SmolLM2", "smollm2")], crossings
    section = report[report.index("<h2>Specialize"):]
    assert 'href="specialize.html"' in section and (out_dir / "specialize.html").stat().st_size > 100_000
    assert "minilm-bbc-distilled" in section and "distilled from smollm2" in section
    assert "learning curve · minilm" in section and "Crossover vs MiniLM zero-shot" in section
    assert section.count("Plotly.newPlot(") == 1 and "Learning curve" in section  # the figure, drawn offline:
    assert report.count("<script>") > 1 and "<script src" not in report  # plotly.js inlined, no CDN
    pipe = specnb.Pipeline.from_yaml(out_dir / "pipeline.yaml")
    assert [s["kind"] for s in pipe.stages] == ["model", "route"]
    from specnb.datasets import BBC_DESCRIPTIONS

    assert pipe.stages[1]["branches"]["en"][0]["labels"] == BBC_DESCRIPTIONS
    # the evidence notebook, executed headless: its outputs show every section, and its page works offline
    executed = nbformat.read(out_dir / NOTEBOOK_EXECUTED, as_version=4)
    check_outputs(executed, EVIDENCE)
    check_offline_page(executed, (out_dir / NOTEBOOK_HTML).read_text(encoding="utf-8"))
    # the closing block: what ran, where the pages are, and one verdict per model against its reference
    closing = out.stdout[out.stdout.rindex("\n== Done\n"):].splitlines()
    for name in ["demo: langid (240 items: ", "demo: bbc topics (100 items: ", "demo: specialize (60 items: "]:
        assert any(line.startswith(f"  {name}") for line in closing), name
    assert f"report:   {out_dir / 'report.html'}" in closing and f"notebook: {out_dir / NOTEBOOK_HTML}" in closing
    verdicts = [line.strip() for line in closing[closing.index(next(x for x in closing if x.startswith("verdicts"))) + 1:]]
    heads = [v.split(" — ")[0] for v in verdicts]
    assert heads[:2] == ["demo: langid: smollm2 vs langid", "demo: bbc topics: smollm2 vs minilm"], verdicts
    assert len(heads) == 5 and all(h.startswith("demo: specialize: ") for h in heads[2:]), verdicts  # 4 models
    assert all(re.search(r" — (better at 95 %|worse at 95 %|no difference at 95 %) \(accuracy [+-]\d\.\d{3} "
                         r"\[[+-]\d\.\d{3}, [+-]\d\.\d{3}\], McNemar p", v) for v in verdicts), verdicts
