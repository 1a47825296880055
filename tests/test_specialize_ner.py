"""`specialize(task="ner")`: a token classifier trained from character-span labels — the BIO tag space, sub-word
alignment (B at an entity's first token, I after), every label format read the same and bad labels refused
before training, held-out entity metrics equal to `specnb.compare`'s, and a plain transformers folder whose
``pipeline("token-classification", aggregation_strategy="simple")`` finds what specnb finds."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import specnb
from specnb import Entities, Span
from specnb._specialize.ner import align, bio_tags, prepare_ner
from specnb.errors import InputError, TaskError

from fakes import assert_same_weights
from tiny_models import bert_tokenizer

# Alice, Bob, Paris, London are whole tokens of the tiny vocabulary; Zed (z ##e ##d) and Oslo (o ##s ##l ##o)
# are spelt in sub-words.
PEOPLE = ("Alice", "Bob", "Zed")
PLACES = ("Paris", "London", "Oslo")
TEMPLATES = ("{P} lives in {L}.", "{P} works with {Q} in {L}.", "hello {P}, this is {L}.",
             "{P} loved every minute of it.")
FAST = {"method": "finetune", "learning_rate": 5e-3, "batch_size": 8, "task": "ner", "progress": False}


def _item(template: str, person: str, other: str, place: str):
    """The text of ``template`` and its entities, offsets counted as the text is built."""
    text, spans = "", []
    for part in template.replace("{", "\0{").replace("}", "}\0").split("\0"):
        value = {"{P}": person, "{Q}": other, "{L}": place}.get(part)
        if value is None:
            text += part
            continue
        spans.append((len(text), len(text) + len(value), "LOC" if part == "{L}" else "PER"))
        text += value
    return text, spans


def _data() -> pd.DataFrame:
    rows = {}
    for template, person, place in itertools.product(TEMPLATES, PEOPLE, PLACES):
        text, spans = _item(template, person, PEOPLE[(PEOPLE.index(person) + 1) % 3], place)
        rows.setdefault(text, spans)
    rows.update({"the food was cold.": [], "this is a tiny test model.": []})  # texts without entities
    return pd.DataFrame({"text": list(rows), "label": list(rows.values())})


def _triples(entities: Entities):
    return [(s.start, s.end, s.label) for s in entities.spans]


# -- the tag space, alignment and data (no training) ------------------------------------------------------
def test_the_bio_space_is_o_then_b_and_i_per_type_sorted_or_in_labels_order():
    assert bio_tags(("LOC", "PER")) == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")
    assert prepare_ner(_data()).tags == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")
    given = prepare_ner(_data(), labels=["PER", "LOC", "ORG"])
    assert given.label_space == ("PER", "LOC", "ORG") and given.tags[:3] == ("O", "B-PER", "I-PER")


def test_a_word_in_sub_words_gets_b_then_i_and_special_tokens_count_for_nothing():
    tokenizer = bert_tokenizer()
    tags = bio_tags(("LOC", "PER"))
    index = {t: i for i, t in enumerate(tags)}
    text = "Zed lives in Paris."
    encoded = tokenizer(text, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == ["[CLS]", "z", "##e", "##d", "lives", "in", "paris", ".", "[SEP]"]
    ids, counts = align(encoded["offset_mapping"], encoded.word_ids(), [(0, 3, "PER"), (13, 18, "LOC")], index)
    assert [tags[i] if i >= 0 else i for i in ids] == [-100, "B-PER", "I-PER", "I-PER", "O", "O", "B-LOC", "O", -100]
    assert counts == {"inexact": 0, "cut": 0}
    # two entities side by side: each starts with B
    encoded = tokenizer("Alice Bob", return_offsets_mapping=True)
    ids, _ = align(encoded["offset_mapping"], encoded.word_ids(), [(0, 5, "PER"), (6, 9, "PER")], index)
    assert [tags[i] for i in ids[1:-1]] == ["B-PER", "B-PER"]
    # an entity that ends inside a word is counted (the specialist answers word by word); one past the cut too
    ids, counts = align(tokenizer(text, return_offsets_mapping=True)["offset_mapping"],
                        tokenizer(text).word_ids(), [(0, 2, "PER")], index)
    assert counts["inexact"] == 1 and [tags[i] for i in ids[1:4]] == ["B-PER", "I-PER", "O"]
    cut = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=4)
    assert align(cut["offset_mapping"], cut.word_ids(), [(13, 18, "LOC")], index)[1]["cut"] == 1


def test_every_label_format_reads_the_same():
    text = "Alice lives in Oslo."
    triples = [(0, 5, "PER"), (15, 19, "LOC")]
    spans = [Span(0, 5, "PER", "Alice"), Span(15, 19, "LOC", "Oslo")]
    cells = [triples, [list(t) for t in triples], spans, Entities(tuple(spans)),
             [{"start": 0, "end": 5, "label": "PER"}, {"start": 15, "end": 19, "type": "LOC"}],
             [(np.int64(15), np.int64(19), "LOC"), (0, 5, "PER")],  # numpy offsets, out of order
             np.array([[0, 5, "PER"], [15, 19, "LOC"]], dtype=object)]
    other = ("the food was cold.", [])  # [] is a text without entities, not a missing label
    for cell in cells:
        data = prepare_ner(pd.DataFrame({"text": [text, other[0]], "label": [cell, other[1]]}), eval=None)
        assert data.labels == [tuple(triples), ()] and data.label_space == ("LOC", "PER")
    pair = prepare_ner(([text, other[0]], [triples, []]), eval=None)
    assert pair.labels == [tuple(triples), ()]
    lower = prepare_ner(pd.DataFrame({"text": [text], "label": [[(0, 5, "per"), (15, 19, "LOC")]]}),
                        labels=["PER", "LOC"], eval=None)
    assert lower.labels == [((0, 5, "PER"), (15, 19, "LOC"))]  # types match labels= up to case


def test_spans_round_trip_through_the_eval_frame():
    data = prepare_ner(_data(), eval=0.25, seed=3)
    assert len(_data()) == 32  # 27 + 3 texts with entities (one template has no place), 2 without
    assert data.split == {"kind": "shuffled", "fraction": 0.25, "seed": 3, "train": 24, "held_out": 8}
    assert not {data.texts[i] for i in data.train} & {data.texts[i] for i in data.held_out}
    frame = data.frame("held_out")
    assert list(frame.columns) == ["text", "label"] and all(isinstance(x, Entities) for x in frame["label"])
    for text, entities in zip(frame["text"], frame["label"]):
        assert all(text[s.start:s.end] == s.text for s in entities.spans)
    again = prepare_ner(frame, eval=None)
    assert again.labels == [data.labels[i] for i in data.held_out] and again.texts == frame["text"].tolist()
    assert prepare_ner(_data(), eval=0.25, seed=3).held_out == data.held_out  # seeded
    given = prepare_ner(data.frame("train"), eval=frame)
    assert given.split == {"kind": "given", "size": 8, "train": 24, "held_out": 8}


BAD = [
    ([(0, 50, "PER")], "out of range"),
    ([(3, 3, "PER")], "out of range or empty"),
    ([(5, 2, "PER")], "out of range or empty"),
    ([(0, 5, "PER"), (2, 8, "LOC")], "overlap"),
    ([(0, 5, 7)], "has type 7"),
    ([(0, 5, "B-PER")], "not a name of letters"),
    ([(0, 5, "O")], "not 'O'"),
    ([(0.0, 5, "PER")], "not ints"),
    ([(0, 5)], "is not (start, end, type)"),
    ("Alice", "not a list of entities"),
    ([(5, 6, "PER")], "whitespace only"),
]


@pytest.fixture
def no_training(monkeypatch):
    """Fault injection: building the model fails the test, so an error must come before any training."""
    from specnb._specialize import head

    def fail(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(head, "build_token_classifier", fail)


@pytest.mark.parametrize(("cell", "says"), BAD, ids=[says for _, says in BAD])
def test_bad_entities_are_refused_naming_the_row_before_training(specnb_home, tiny_embed_dir, no_training, cell, says):
    data = pd.DataFrame({"text": ["Bob lives in Paris.", "Alice lives in Oslo."], "label": [[(0, 3, "PER")], cell]})
    with pytest.raises(InputError, match=re.escape(says)) as error:
        specnb.specialize(str(tiny_embed_dir), data, eval=None, **FAST)
    assert "row 1:" in str(error.value) and "0 <= start < end <= len(text)" in str(error.value)
    assert not (specnb_home / "specialists").exists()


def test_missing_labels_and_foreign_types_are_refused_before_training(specnb_home, tiny_embed_dir, no_training):
    base = str(tiny_embed_dir)
    texts = ["Bob lives in Paris.", "Alice lives in Oslo.", "hello Zed.", "the food was cold."]
    missing = pd.DataFrame({"text": texts, "label": [[(0, 3, "PER")], None, math.nan, []]})
    with pytest.raises(InputError, match=r"2 label\(s\) are missing .* positions 1, 2"):
        specnb.specialize(base, missing, **FAST)
    data = pd.DataFrame({"text": texts, "label": [[(0, 3, "PER")], [(15, 19, "LOC")], [(6, 9, "PER")], []]})
    with pytest.raises(InputError, match=r"entity types \['LOC'\] are not in labels= \['PER'\]"):
        specnb.specialize(base, data, labels=["PER"], **FAST)
    with pytest.raises(InputError, match="no entity"):
        specnb.specialize(base, data.assign(label=[[]] * 4), **FAST)
    with pytest.raises(InputError, match="also in the training data"):
        specnb.specialize(base, data, eval=data.iloc[:1], **FAST)
    with pytest.raises(InputError, match="no label column 'entities'"):
        specnb.specialize(base, data, label="entities", **FAST)
    with pytest.raises(InputError, match="not available for task='ner'"):
        specnb.specialize(base, data, teacher=base, **FAST)
    with pytest.raises(TaskError, match="classify, sentiment, langid"):
        specnb.learning_curve(base, data, task="ner", sizes=[2], progress=False)


def test_a_slow_tokenizer_is_refused_for_its_missing_offsets():
    from types import SimpleNamespace

    from specnb._specialize.head import check_tokenizer

    check_tokenizer(bert_tokenizer(), "tiny")
    with pytest.raises(TaskError, match="slow .* tokenizer; use a base with a fast"):
        check_tokenizer(SimpleNamespace(is_fast=False), "tiny")


# -- training -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_embed_dir):
    """One finetuned ner specialist (its folder and what specialize returned), trained once for the module."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("ner-home")
        patch.setenv("SPECNB_HOME", str(home))
        model = specnb.specialize(str(tiny_embed_dir), _data(), epochs=12, patience=12, alias="ner-ft", **FAST)
        result = {"out": model.training["out"], "training": model.training, "eval_data": model.eval_data,
                  "home": home}
        specnb.unload("ner-ft")
    return result


def test_the_held_out_split_holds_words_in_sub_words(trained):
    texts = trained["eval_data"]["text"].tolist()
    assert len(texts) == 6 and any("Zed" in t or "Oslo" in t for t in texts)


def test_transformers_pipeline_finds_the_entities_specnb_finds(trained):
    from transformers import pipeline

    model = specnb.load(trained["out"], alias="ner-ft", task="ner")
    texts = trained["eval_data"]["text"].tolist()
    ours = model.predict(texts, task="ner")
    assert all(isinstance(p, Entities) for p in ours) and any(p.spans for p in ours)
    theirs = pipeline("token-classification", model=trained["out"], aggregation_strategy="simple", device="cpu")(texts)
    assert [_triples(p) for p in ours] == [[(x["start"], x["end"], x["entity_group"]) for x in found]
                                           for found in theirs]


def test_held_out_metrics_are_what_compare_scores(trained, specnb_home):
    training = trained["training"]
    metrics = training["metrics"]
    assert list(metrics) == ["f1", "precision", "recall"]
    assert all(m["low"] <= m["value"] <= m["high"] for m in metrics.values())
    model = specnb.load(trained["out"], alias="ner-ft", task="ner")
    comparison = specnb.compare("ner", trained["eval_data"], [model], progress=False)
    scores = comparison.summary.loc[model.alias]
    for name in ("f1", "precision", "recall"):
        assert scores[name] == pytest.approx(metrics[name]["value"], abs=1e-12)
        assert scores[f"{name}_low"] == pytest.approx(metrics[name]["low"], abs=1e-12)
        assert scores[f"{name}_high"] == pytest.approx(metrics[name]["high"], abs=1e-12)
    # the restored checkpoint is the best evaluation's: its held-out F1 is what the saved model scores
    assert training["best_f1"] == pytest.approx(metrics["f1"]["value"], abs=1e-12)
    assert max(e["f1"] for e in training["history"]["evals"]) == pytest.approx(training["best_f1"])


def test_the_folder_is_a_plain_token_classifier_with_its_card(trained):
    from pathlib import Path

    out = Path(trained["out"])
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert list(config["id2label"].values()) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    card = (out / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and "| f1 |" in card and "`B-PER`" in card
    saved = json.loads((out / "training.json").read_text())
    assert saved["task"] == "ner" and saved["label_space"] == ["LOC", "PER"] and saved["tags"][0] == "O"
    entities = sum(len(x) for x in _data()["label"])
    assert saved["alignment"] == {"entities": entities, "inexact": 0, "cut": 0}
    assert saved["data"]["split"]["kind"] == "shuffled" and saved["metrics"] == trained["training"]["metrics"]
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no partial or checkpoint folder left
    loaded = specnb.load(str(out), alias="found")  # the task is read from the config
    assert loaded.tasks == ("ner",)
    frame = trained["eval_data"]
    assert list(frame.columns) == ["text", "label"] and all(isinstance(x, Entities) for x in frame["label"])


def test_finetune_is_deterministic_on_the_cpu_under_its_seed(specnb_home, tiny_embed_dir, tmp_path):
    for run in range(2):
        specnb.specialize(str(tiny_embed_dir), _data(), epochs=2, out=tmp_path / f"run{run}", alias=f"det{run}",
                          store=False, **FAST)
    assert_same_weights(tmp_path / "run0" / "model.safetensors", tmp_path / "run1" / "model.safetensors")


def test_the_head_method_fits_a_per_token_head_on_frozen_features(specnb_home, tiny_embed_dir):
    model = specnb.specialize(str(tiny_embed_dir), _data(), task="ner", progress=False, store=False)
    training = model.training
    data = prepare_ner(_data())
    tokens = sum(len(bert_tokenizer()(data.texts[i])["input_ids"]) - 2 for i in data.train)
    assert training["method"] == "head" and training["tokens"] == tokens and training["history"]["loss"]
    assert set(training["metrics"]) == {"f1", "precision", "recall"}
    frozen = load_file(tiny_embed_dir / "model.safetensors")
    saved = load_file(f"{training['out']}/model.safetensors")
    assert torch.equal(saved["bert.encoder.layer.0.attention.self.query.weight"],
                       frozen["encoder.layer.0.attention.self.query.weight"])
    found = specnb.compare("ner", model.eval_data, [model], label_space=["LOC", "PER"], store=False, progress=False)
    assert found is not None
    with pytest.raises(InputError, match="setting of method='finetune'"):
        specnb.specialize(str(tiny_embed_dir), _data(), task="ner", epochs=2, progress=False)
