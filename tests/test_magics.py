"""The %specnb magics on a fresh InteractiveShell: parsing, dispatch, results and UsageError."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import specnb
from specnb.magics import HELP, SpecnbMagics

SENTENCES = ["The cat sat on the mat and looked out of the window.",
             "Le chat est assis sur le tapis et regarde par la fenêtre.",
             "Der Hund läuft schnell durch den großen grünen Park."]
GOLD = ["en", "fr", "de"]


@pytest.fixture
def shell(specnb_home):
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    shell.run_line_magic("load_ext", "specnb")
    yield shell
    shell.configurables.clear()


def always(label):
    def predict(texts):
        return [label for _ in texts]

    return predict


def test_load_ext_registers_line_and_cell_magic_once(shell):
    assert "specnb" in shell.magics_manager.magics["line"]
    assert "specnb" in shell.magics_manager.magics["cell"]
    first = shell._specnb_magics
    shell.run_line_magic("load_ext", "specnb")
    shell.run_line_magic("reload_ext", "specnb")
    assert shell._specnb_magics is first
    assert sum(isinstance(c, SpecnbMagics) for c in shell.configurables) == 1


def test_help_prints_the_whole_reference(shell, capsys):
    assert shell.run_line_magic("specnb", "help") is None
    out = capsys.readouterr().out
    assert out.strip() == HELP.strip()
    for command in ("load", "unload", "models", "catalog", "compare", "runs", "show", "help"):
        assert f"%specnb {command}" in out or f"%%specnb {command}" in out


@pytest.mark.parametrize("line, message", [
    ("", "needs a command"),
    ("lod langid", "unknown command 'lod'"),
    ("load", "the following arguments are required: source"),
    ("load langid --bogus 1", "unrecognized arguments: --bogus 1"),
    ("load 'langid", "cannot parse"),
    ("unload", "needs an alias"),
    ("show", "required: run_id"),
    ("compare langid --models langid", "takes its inputs from the cell"),
])
def test_bad_arguments_raise_usage_error(shell, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("specnb", line)


def test_usage_error_shows_as_one_line_without_traceback(shell, capsys):
    result = shell.run_cell("%specnb load langid --task nonsense")
    err = capsys.readouterr().err
    assert not result.success
    assert isinstance(result.error_in_exec, UsageError)
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("UsageError: TaskError: ")
    assert "Traceback" not in err


def test_load_returns_the_handle_and_underscore_holds_it(shell):
    shell.run_cell("%specnb load langid --as lid", store_history=True)
    model = specnb.get("lid")
    assert shell.user_ns["_"] is model
    assert model.task == "langid" and model.device == "cpu"
    assert shell.run_line_magic("specnb", "load langid --as lid") is model  # same source: same handle


def test_load_library_error_is_a_one_line_usage_error_naming_the_type(shell):
    with pytest.raises(UsageError, match=r"^UnknownModelError: .*no-such-model"):
        shell.run_line_magic("specnb", "load no-such-model")


def test_unload_one_many_and_all(shell, capsys):
    specnb.load(always("en"), alias="a", task="langid")
    specnb.load(always("fr"), alias="b", task="langid")
    specnb.load(always("de"), alias="c", task="langid")
    shell.run_line_magic("specnb", "unload a")
    assert [m.alias for m in specnb.registry] == ["b", "c"]
    with pytest.raises(UsageError, match="AliasError: .*'zz'.*loaded: b, c"):
        shell.run_line_magic("specnb", "unload b zz")
    assert [m.alias for m in specnb.registry] == ["b", "c"]  # checked before anything is unloaded
    with pytest.raises(UsageError, match="not both"):
        shell.run_line_magic("specnb", "unload b --all")
    shell.run_line_magic("specnb", "unload --all")
    assert len(specnb.registry) == 0
    assert "unloaded b, c" in capsys.readouterr().out


def test_models_and_catalog_return_dataframes_outside_a_kernel(shell):
    specnb.load(always("en"), alias="a", task="langid")
    frame = shell.run_line_magic("specnb", "models")
    assert isinstance(frame, pd.DataFrame) and list(frame["alias"]) == ["a"]
    assert list(shell.run_line_magic("specnb", "models --table")["alias"]) == ["a"]
    catalog = shell.run_line_magic("specnb", "catalog")
    assert {"langid", "smollm2", "minilm"} <= set(catalog["name"])


def test_line_commands_refuse_a_cell_body(shell):
    with pytest.raises(UsageError, match="takes no cell body"):
        shell.run_cell_magic("specnb", "models", "x\n")


def test_compare_cell_one_input_per_line_with_interpolation_and_out(shell):
    specnb.load(always("en"), alias="english", task="langid")
    specnb.load(always("fr"), alias="french", task="langid")
    shell.user_ns.update(word="mat", gold=GOLD)
    body = "The cat sat on the {word} and looked out of the window.\n\n" + "\n".join(SENTENCES[1:]) + "\n"
    result = shell.run_cell_magic("specnb", "compare langid --models english,french --labels gold --out cmp", body)
    assert isinstance(result, specnb.Comparison)
    assert shell.user_ns["cmp"] is result
    assert result.inputs == SENTENCES  # blank lines dropped, {word} replaced
    assert result.labels == GOLD
    assert result.summary.loc["english", "accuracy"] == pytest.approx(1 / 3)
    assert result.run_id in set(specnb.runs()["id"])


def test_compare_cell_literal_braces_and_bad_expressions(shell):
    specnb.load(always("en"), alias="english", task="langid")
    result = shell.run_cell_magic("specnb", "compare langid --models english", "a {{b}} c\n")
    assert result.inputs == ["a {b} c"]
    with pytest.raises(UsageError, match=r"\{missing\} in the cell: NameError"):
        shell.run_cell_magic("specnb", "compare langid --models english", "text {missing}\n")


def test_compare_with_a_dataframe(shell):
    specnb.load(always("en"), alias="english", task="langid")
    shell.user_ns["df"] = pd.DataFrame({"sentence": SENTENCES, "lang": GOLD})
    line = "compare langid --models english --data df --text sentence --label lang"
    result = shell.run_line_magic("specnb", line)  # IPython refuses %%magic with an empty body
    assert result.inputs == SENTENCES and result.labels == GOLD
    assert shell.run_cell_magic("specnb", line, "\n").inputs == SENTENCES  # a blank body is fine too
    assert result.summary.loc["english", "accuracy"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("line, body, message", [
    ("compare langid --models english --data nope", "\n", "no variable called 'nope'"),
    ("compare langid --models english --data df", "more text\n", "leave the cell body empty"),
    ("compare langid --models english --text sentence", "x\n", "give --data VAR too"),
    ("compare langid --models english", "\n  \n", "no inputs"),
    ("compare langid --models english --labels gold", "one\n", "holds 3 labels for 1 input lines"),
    ("compare langid --models english --sample 0", "x\n", "expected a number >= 1"),
    ("compare langid --models english --out 1x", "x\n", "needs a Python name"),
    ("compare", "x\n", "required: task"),
    ("compare langid --models nobody", "x\n", "UnknownModelError"),
    ("compare topics --models english", "x\n", "TaskError"),
])
def test_compare_bad_arguments(shell, line, body, message):
    specnb.load(always("en"), alias="english", task="langid")
    shell.user_ns.update(df=pd.DataFrame({"sentence": SENTENCES}), gold=GOLD)
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("specnb", line, body)


@pytest.mark.real
def test_compare_on_a_set_device_loads_each_model_with_its_own_default_task(shell):
    shell.run_line_magic("config", "SpecnbMagics.device = 'cpu'")  # the magic loads the models itself
    result = shell.run_cell_magic("specnb", "compare sentiment --models vader,minilm", "I love this film!\n")
    assert result.models == ["vader", "minilm"]
    assert specnb.get("minilm").task == "embed"  # answered sentiment zero-shot, per call
    assert isinstance(specnb.get("minilm").predict(["a text"])[0], specnb.Embedding)


def test_runs_and_show_round_trip(shell):
    specnb.load(always("en"), alias="english", task="langid")
    shell.user_ns["gold"] = GOLD
    first = shell.run_cell_magic("specnb", "compare langid --models english --labels gold --name mine",
                                 "\n".join(SENTENCES))
    runs = shell.run_line_magic("specnb", "runs")
    assert first.run_id in set(runs["id"])
    again = shell.run_line_magic("specnb", f"show {first.run_id}")
    assert again.run_id == first.run_id and again.inputs == first.inputs and again.name == "mine"
    with pytest.raises(UsageError, match="RunNotFoundError"):
        shell.run_line_magic("specnb", "show no-such-run")


def test_defaults_are_configurable_traitlets(specnb_home):
    config = Config()
    config.HistoryManager.enabled = False
    config.SpecnbMagics.generalist = "english"
    config.SpecnbMagics.price_per_hour = 7.5
    shell = InteractiveShell(config=config)
    shell.run_line_magic("load_ext", "specnb")
    magics = shell._specnb_magics
    assert magics.generalist == "english" and magics.price_per_hour == 7.5
    specnb.load(always("en"), alias="english", task="langid")
    # --models omitted: the catalog's langid specialist plus the configured generalist
    result = shell.run_cell_magic("specnb", "compare langid", "\n".join(SENTENCES))
    assert result.models == ["langid", "english"]
    assert set(result.summary["price_per_hour"]) == {7.5}
    shell.run_line_magic("config", "SpecnbMagics.device = 'cpu'")
    assert magics.device == "cpu"
    shell.run_line_magic("specnb", "unload --all")
    shell.run_line_magic("specnb", "load langid")
    assert specnb.get("langid").device == "cpu"


def test_load_takes_a_quoted_path_with_spaces(shell, tiny_langid_dir, tmp_path):
    import shutil

    folder = tmp_path / "my models" / "lang id"
    shutil.copytree(tiny_langid_dir, folder)
    model = shell.run_line_magic("specnb", f'load "{folder}" --as spaced --task langid')
    assert model.alias == "spaced" and specnb.get("spaced") is model


# -- %%specnb pipe -----------------------------------------------------------------------------------------------
def test_pipe_cells_append_preview_and_replace(shell):
    specnb.load(always("en"), alias="english", task="langid")
    specnb.load(lambda texts: [("pos", 0.9)] * len(texts), alias="pos", task="classify")
    shell.user_ns.update(sample=SENTENCES, kinds=["pos", "neg"])
    first = shell.run_cell_magic("specnb", "pipe triage --sample sample", "lang = english(text)\n")
    assert isinstance(first, specnb.Pipeline) and shell.user_ns["triage"] is first
    assert list(first.last_preview["lang"]) == ["en"] * 3  # every cell previews on the sample
    second = shell.run_cell_magic("specnb", "pipe triage --sample 2",
                                  "route lang: en -> kind = pos(text, labels=kinds); * -> skip\n")
    assert second is first and len(first) == 2 and len(first.last_preview) == 2
    assert first.stages[1]["branches"]["en"][0]["labels"] == ["pos", "neg"]  # notebook names resolved
    out = shell.run_cell("triage(['The dog sleeps.'])").result
    assert list(out.columns) == ["text", "lang", "lang:score", "kind", "kind:score"]
    replaced = shell.run_cell_magic("specnb", "pipe triage --replace", "lang = english(text)\n")
    assert replaced is not first and len(replaced) == 1 and shell.user_ns["triage"] is replaced


def test_pipe_errors_are_usage_errors_naming_the_line_and_change_nothing(shell):
    specnb.load(always("en"), alias="english", task="langid")
    pipe = shell.run_cell_magic("specnb", "pipe p", "lang = english(text)\n")
    with pytest.raises(UsageError, match=r"PipelineError: line 2: unknown field 'nope'"):
        shell.run_cell_magic("specnb", "pipe p", "x = english(text)\ny = english(nope)\n")
    assert len(shell.user_ns["p"]) == 1 and shell.user_ns["p"] is pipe
    with pytest.raises(UsageError, match="pipe is a cell magic"):
        shell.run_line_magic("specnb", "pipe p")
    with pytest.raises(UsageError, match="must be a Python name"):
        shell.run_cell_magic("specnb", "pipe 1p", "lang = english(text)\n")
    with pytest.raises(UsageError, match=r"labels=kinds: no variable called 'kinds'"):
        shell.run_cell_magic("specnb", "pipe p", "k = english(text, labels=kinds)\n")


def test_running_a_pipe_cell_again_replaces_its_stages(shell):
    specnb.load(always("en"), alias="english", task="langid")
    shell.run_cell_magic("specnb", "pipe p", "lang = english(text)\n")
    shell.run_cell_magic("specnb", "pipe p", "x = english(text)\n")
    shell.run_cell_magic("specnb", "pipe p", "lang = english(text)\n")  # the first cell, run again
    assert [s["field"] for s in shell.user_ns["p"].stages] == ["lang", "x"]


# -- errors: one line, and the closest names ------------------------------------------------------------------------
def _one_line_error(shell, capsys, cell: str) -> str:
    result = shell.run_cell(cell)
    err = capsys.readouterr().err
    assert not result.success and isinstance(result.error_in_exec, UsageError)
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_task_typo_names_the_closest_task_on_one_line(shell, capsys):
    line = _one_line_error(shell, capsys, "%specnb load vader --task sentimnt")
    assert line.startswith("UsageError: TaskError: unknown task 'sentimnt'; did you mean 'sentiment'? ")
    assert "positive / negative" not in line  # the task names, not what each one predicts
    assert len(specnb.registry) == 0


def test_a_pipeline_naming_an_unknown_model_names_the_line_and_the_closest_names_once(shell, capsys):
    specnb.load(always("en"), alias="english", task="langid")
    line = _one_line_error(shell, capsys, "%%specnb pipe p\nlang = english(text)\ns = vadr(text)\n")
    assert line == ("UsageError: PipelineError: line 2: unknown model 'vadr'; did you mean 'vader'? loaded: english; "
                    "specnb.catalog() lists the models specnb knows by name")
    line = _one_line_error(shell, capsys, "%%specnb pipe p\nlang = englsh(text)\n")
    assert "did you mean 'english'?" in line  # loaded aliases count too
    assert "p" not in shell.user_ns


def test_a_pipeline_feeding_entities_to_a_text_model_is_refused_when_built(shell, capsys):
    line = _one_line_error(shell, capsys, "%%specnb pipe p\nner = ner(text)\nt = vader(ner)\n")
    assert line.startswith("UsageError: PipelineError: line 2: `t = vader(ner)` reads 'ner', which holds entities")
    assert "written by `ner = ner(text)`, line 1" in line and "vader (sentiment) reads text" in line
    assert "p" not in shell.user_ns and len(specnb.registry) == 0  # refused before any model loaded


def test_labels_take_the_expressions_a_cell_body_takes(shell):
    specnb.load(always("en"), alias="english", task="langid")
    shell.user_ns["gold"] = GOLD
    body = "\n".join(SENTENCES[:2]) + "\n"
    result = shell.run_cell_magic("specnb", "compare langid --models english --labels gold[:2]", body)
    assert result.labels == GOLD[:2] and result.summary.loc["english", "accuracy"] == pytest.approx(1 / 2)
    shell.user_ns["df"] = pd.DataFrame({"sentence": SENTENCES, "lang": GOLD})
    frame = shell.run_line_magic("specnb", "compare langid --models english --data df.head(2) --text sentence "
                                           "--label lang")
    assert frame.inputs == SENTENCES[:2]
    with pytest.raises(UsageError, match=r"^--labels gold\[7\]: IndexError: list index out of range$"):
        shell.run_cell_magic("specnb", "compare langid --models english --labels gold[7]", body)


# -- %specnb specialize ---------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, message", [
    ("--method lora", "argument --method: invalid choice: 'lora'"),
    ("--epochs 0", "expected a number >= 1, got 0"),
    ("--epochs two", "expected a whole number, got 'two'"),
    ("--learning-rate 0", "expected a number > 0, got '0'"),
    ("--learning-rate nan", "expected a number > 0, got 'nan'"),
    ("--batch-size -4", "expected a number >= 1, got -4"),
    ("--min-confidence 1.5", "expected a number between 0 and 1, got '1.5'"),
    ("--eval 1", "expected a held-out share from 0 \\(none\\) up to 1, got '1'"),
    ("--eval -0.1", "expected a held-out share"),
    ("--max-length 0", "expected a number >= 1"),
    ("--patience 0", "expected a number >= 1"),
    ("--teacher", "argument --teacher: expected one argument"),
])
def test_specialize_refuses_bad_settings_before_training(shell, monkeypatch, flags, message):
    monkeypatch.setattr("specnb.magics.specialize", lambda *a, **k: pytest.fail("trained"))
    shell.user_ns["df"] = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("specnb", f"specialize minilm --data df {flags}")


def test_specialize_passes_only_the_settings_given(shell, monkeypatch):
    calls = []
    monkeypatch.setattr("specnb.magics.specialize", lambda base, data, **kwargs: calls.append(kwargs) or "model")
    shell.user_ns["df"] = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    assert shell.run_line_magic("specnb", "specialize minilm --data df") == "model"
    assert shell.run_line_magic("specnb", "specialize minilm --data df --method finetune --epochs 3 "
                                "--learning-rate 2e-4 --batch-size 8 --teacher smollm2 --min-confidence 0.7 "
                                "--max-length 64 --patience 4 --eval 0 --as topics --out /tmp/x --overwrite") == "model"
    plain, full = calls
    assert plain == {"task": "classify", "text": "text", "label": "label", "method": "head", "eval": 0.2,
                     "device": "auto", "out": None, "alias": None, "overwrite": False}
    assert full == {**plain, "method": "finetune", "eval": None, "out": "/tmp/x", "alias": "topics", "overwrite": True,
                    "epochs": 3, "learning_rate": 2e-4, "batch_size": 8, "teacher": "smollm2", "min_confidence": 0.7,
                    "max_length": 64, "patience": 4}


def test_specialize_finetunes_from_the_magic(shell, tiny_embed_dir):
    from test_specialize import _data

    shell.user_ns["reviews"] = _data()
    model = shell.run_line_magic("specnb", f"specialize {tiny_embed_dir} --data reviews --task sentiment --as tuned "
                                           "--method finetune --epochs 1 --learning-rate 1e-3 --batch-size 4")
    assert model is specnb.get("tuned")
    settings = model.training["settings"]
    assert model.training["method"] == "finetune" and settings["epochs"] == 1 and settings["batch_size"] == 4
    assert settings["learning_rate"] == 1e-3
