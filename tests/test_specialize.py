"""`specialize` (method "head"): a frozen encoder and a fitted linear head, saved as a plain transformers folder
that transformers loads without specnb and that answers as specnb does; bad data is refused before training."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

import specnb
from specnb._specialize.head import build_classifier, final_linear, head_features
from specnb.errors import InputError, TaskError

WORDS = {"pos": ["great", "lovely", "superb", "happy", "fine"], "neg": ["awful", "bad", "sad", "poor", "ugly"]}


def _data(n: int = 24) -> pd.DataFrame:
    import itertools

    orders = {k: list(itertools.permutations(v, 3)) for k, v in WORDS.items()}  # distinct texts, no digits
    rows = []
    for i in range(n):
        kind = "positive" if i % 2 == 0 else "negative"
        rows.append({"text": " ".join(orders["pos" if kind == "positive" else "neg"][i // 2]), "label": kind})
    return pd.DataFrame(rows)


def _roberta(path):
    from transformers import RobertaConfig, RobertaModel

    from tiny_models import _save, bert_tokenizer

    torch.manual_seed(0)
    tokenizer = bert_tokenizer()
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=80, pad_token_id=tokenizer.pad_token_id)
    return _save(RobertaModel(config).eval(), tokenizer, path)


def _distilbert(path):
    from transformers import DistilBertConfig, DistilBertModel

    from tiny_models import _save, bert_tokenizer

    torch.manual_seed(0)
    tokenizer = bert_tokenizer()
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # as DistilBERT's own tokenizer: no token types
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                              max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    return _save(DistilBertModel(config).eval(), tokenizer, path)


@pytest.fixture
def home(specnb_home):
    return specnb_home


def test_a_head_specialist_is_a_plain_transformers_folder_that_answers_as_specnb_does(home, tiny_embed_dir):
    from transformers import pipeline

    model = specnb.specialize(str(tiny_embed_dir), _data(), task="sentiment", eval=0.25, progress=False)
    out = home / "specialists" / model.alias
    assert model.alias in specnb.registry and model.task == "sentiment" and model.training["out"] == str(out)
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "training.json"} <= files
    assert not list(home.glob("specialists/.*"))  # no partial folder left
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"} and config["label2id"]["positive"] == 1
    training = json.loads((out / "training.json").read_text())
    assert training["data"]["split"] == {"kind": "stratified", "fraction": 0.25, "seed": 0, "train": 18, "held_out": 6}
    assert training["history"]["loss"][0] > training["history"]["loss"][-1]
    card = (out / "README.md").read_text()
    assert "| accuracy |" in card and training["data"]["digest"] in card and "`negative`, `positive`" in card
    held = model.eval_data
    assert len(held) == 6 and sorted(held["label"]) == ["negative"] * 3 + ["positive"] * 3
    ours = [p.label for p in model.predict(held["text"])]
    theirs = [x["label"] for x in pipeline("text-classification", model=str(out))(list(held["text"]))]
    assert ours == theirs
    specnb.unload(model.alias)
    again = specnb.load(str(out), alias="again")
    assert [p.label for p in again.predict(held["text"])] == ours


@pytest.mark.parametrize("builder", [None, _roberta, _distilbert], ids=["bert", "roberta", "distilbert"])
def test_the_saved_forward_reproduces_the_fitted_head_exactly(home, tiny_embed_dir, tmp_path, builder):
    base = tiny_embed_dir if builder is None else builder(tmp_path / "base")
    model = specnb.specialize(str(base), _data(), eval=None, progress=False)
    classifier = model.native
    features, _ = head_features(classifier, model.tokenizer, list(_data()["text"]), n_labels=2, device="cpu",
                                batch_size=24, token_budget=None, max_length=64, progress=False)  # one batch
    head = final_linear(classifier, 2)
    with torch.no_grad():
        encoded = model.tokenizer(list(_data()["text"]), padding=True, return_tensors="pt", return_token_type_ids=False)
        logits = classifier(**encoded).logits
    torch.testing.assert_close(logits, features @ head.weight.T + head.bias, rtol=1e-5, atol=1e-5)
    # the head is what the fit gave: trained on separable words, it gets every training text right
    assert (logits.argmax(-1).tolist() == [0 if y == "negative" else 1 for y in _data()["label"]])


def test_new_square_head_layers_start_as_the_identity(tmp_path):
    classifier = build_classifier(str(_roberta(tmp_path / "r")), ("a", "b"), device="cpu")
    torch.testing.assert_close(classifier.classifier.dense.weight, torch.eye(32))


def test_a_real_minilm_head_learns_bbc_topics(home):
    from specnb.datasets import bbc_topics

    data = bbc_topics(150, seed=3, max_chars=600)
    model = specnb.specialize("minilm", data, eval=0.3, max_length=128, progress=False)
    accuracy = model.training["metrics"]["accuracy"]
    assert accuracy["value"] >= 0.8 and accuracy["low"] < accuracy["value"] < accuracy["high"]  # chance is 0.2
    assert model.tasks == ("classify",) and set(model.training["label_space"]) == set(data["label"])
    assert json.loads((home / "specialists" / "minilm-classify" / "tokenizer_config.json").read_text())[
        "model_max_length"] == 128
    card = (home / "specialists" / "minilm-classify" / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2\n" in card  # the catalog name's hub id
    assert "stratified 30% held out, seed 0" in card
    run = specnb.get_run(model.training["run_id"])  # the training run in the store
    assert run.alias == "minilm-classify" and run.status == "finished"


def test_an_existing_out_is_refused_unless_overwrite(home, tiny_embed_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists; pass overwrite=True"):
        specnb.specialize(str(tiny_embed_dir), _data(), out=out, progress=False)
    assert (out / "keep.txt").exists()
    model = specnb.specialize(str(tiny_embed_dir), _data(), out=out, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists() and model.loaded


def test_a_rerun_cell_replaces_the_loaded_model_only_with_overwrite(home, tiny_embed_dir, monkeypatch):
    import specnb._specialize.train as train

    first = specnb.specialize(str(tiny_embed_dir), _data(), alias="again", progress=False)
    with pytest.raises(InputError, match="'again' is already loaded; pass overwrite=True"):
        specnb.specialize(str(tiny_embed_dir), _data(), alias="again", progress=False)
    monkeypatch.setattr(train, "model_card", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):  # a failed re-run keeps the loaded model and its folder
        specnb.specialize(str(tiny_embed_dir), _data(), alias="again", overwrite=True, progress=False)
    assert specnb.get("again") is first and first.loaded and (home / "specialists" / "again" / "config.json").exists()
    monkeypatch.undo()
    second = specnb.specialize(str(tiny_embed_dir), _data(), alias="again", overwrite=True, seed=1, progress=False)
    assert specnb.get("again") is second and second is not first and not first.loaded
    assert second.training["settings"]["seed"] == 1 and "base_model:" not in (
        home / "specialists" / "again" / "README.md").read_text()  # a local base is no hub id


def test_a_failed_run_leaves_no_folder(home, tiny_embed_dir, monkeypatch):
    import specnb._specialize.train as train

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(train, "model_card", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        specnb.specialize(str(tiny_embed_dir), _data(), alias="nope", progress=False)
    assert not (home / "specialists" / "nope").exists() and "nope" not in specnb.registry


def test_repeated_texts_stay_on_one_side_of_the_split():
    from specnb._specialize.data import prepare

    texts = ["good", "good", "nice", "fine", "great", "bad", "bad", "poor", "ugly", "awful"]
    labels = ["p"] * 5 + ["n"] * 5
    for seed in range(10):
        data = prepare((texts, labels), task="classify", text="text", label="label", labels=None, eval=0.5, seed=seed)
        assert not {texts[i] for i in data.train} & {texts[i] for i in data.held_out}
        assert {labels[i] for i in data.held_out} == {"p", "n"}


def test_a_held_out_dataframe_of_its_own(home, tiny_embed_dir):
    data = _data(24)
    model = specnb.specialize(str(tiny_embed_dir), data.iloc[:16], eval=data.iloc[16:], progress=False)
    assert model.training["data"]["split"]["kind"] == "given" and len(model.eval_data) == 8
    with pytest.raises(InputError, match="2 held-out text"):
        specnb.specialize(str(tiny_embed_dir), data.iloc[:16], eval=data.iloc[14:], alias="x", progress=False)


@pytest.mark.parametrize(("data", "kwargs", "words"), [
    (pd.DataFrame({"text": ["a b", "c d"], "label": ["x", "x"]}), {}, "one class only"),
    (pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "x", "x", "y"]}), {"eval": None},
     r"fewer than 2 training examples: \{'y': 1\}"),
    ((["a", "b"], ["x"]), {}, "2 texts and 1 labels"),
    (pd.DataFrame({"text": ["a", None, "", "d"], "label": ["x", "y", "x", "y"]}), {},
     r"2 text\(s\) are missing, empty or not str \(positions 1, 2\)"),
    (pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", math.nan, None, "y"]}), {},
     r"2 label\(s\) are missing or empty .* positions 1, 2"),
    (_data(), {"labels": ["positive", "neutral"], "task": "sentiment"}, r"labels \['negative'\] are not in labels="),
    (_data(), {"text": "body"}, "data has no text column 'body'"),
    (_data(), {"eval": 1.5}, "eval= is the held-out share"),
    (_data(), {"task": "ner"}, "ner labels are each text's entities"),
    (_data(), {"method": "magic"}, "method='magic' is not a training method; valid: 'head'"),
    (_data(), {"batch_size": 0}, "batch_size= must be a positive int"),
    ("texts.csv", {}, "a DataFrame with 'text' and 'label' columns"),
])
def test_bad_training_data_is_refused_before_any_training(home, tiny_embed_dir, data, kwargs, words):
    with pytest.raises((InputError, TaskError), match=words):
        specnb.specialize(str(tiny_embed_dir), data, progress=False, **kwargs)
    assert not (home / "specialists").exists() and not specnb.models().shape[0] > 1


@pytest.mark.parametrize("base", ["vader", "langid", "ner", "tiny_llama", "callable"])
def test_a_base_that_is_not_an_encoder_is_a_task_error(home, base, request):
    if base == "tiny_llama":
        base = str(request.getfixturevalue("tiny_llama_dir"))
    elif base == "callable":
        base = specnb.load(lambda xs: ["positive"] * len(xs), alias="fn", task="sentiment")
    with pytest.raises(TaskError, match="specialize trains on a transformers encoder"):
        specnb.specialize(base, _data(), progress=False)


def test_compare_warns_when_inputs_were_in_the_training_data(home, tiny_embed_dir):
    import warnings

    from specnb.errors import InputWarning

    data = _data()
    model = specnb.specialize(str(tiny_embed_dir), data, task="sentiment", eval=0.25, progress=False)
    with pytest.warns(InputWarning, match="18 of the 24 inputs were in the training data of 'tiny-embed0-sentiment'"):
        leaky = specnb.compare("sentiment", data, [model, "vader"], progress=False)
    assert leaky.model_info[model.alias]["trained_on_inputs"] == 18
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        honest = specnb.compare("sentiment", model.eval_data, [model, "vader"], progress=False)  # held-out: silent
    assert len(honest.inputs) == 6
    specnb.unload(model.alias)  # loaded again from its folder, it still knows: training.json
    again = specnb.load(model.training["out"], alias="again")
    with pytest.warns(InputWarning, match="18 of the 24 inputs were in the training data of 'again'"):
        specnb.compare("sentiment", data, [again], progress=False)


def test_the_magic_trains_and_returns_the_model(home, tiny_embed_dir):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell(config=config)
    try:
        shell.run_line_magic("load_ext", "specnb")
        shell.user_ns["reviews"] = _data().rename(columns={"text": "body"})
        model = shell.run_line_magic("specnb", f"specialize {tiny_embed_dir} --data reviews --text body "
                                               "--task sentiment --as mood --eval 0.25")
        assert model is specnb.get("mood") and model.task == "sentiment" and len(model.eval_data) == 6
        with pytest.raises(UsageError, match="InputError: data has no label column 'stars'"):
            shell.run_line_magic("specnb", f"specialize {tiny_embed_dir} --data reviews --text body --label stars")
        with pytest.raises(UsageError, match="no variable called 'nothing'"):
            shell.run_line_magic("specnb", f"specialize {tiny_embed_dir} --data nothing")
    finally:
        shell.configurables.clear()
