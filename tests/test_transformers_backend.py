"""The transformers backend through the public API: task inference, typed predictions in input order,
length-sorted per-batch padding under inference mode, NER spans, handle sharing and accounting.

Every model is a tiny random checkpoint built locally by `tiny_models`; nothing touches the hub.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import specnb
from specnb.tasks import TASKS, Span
from specnb.tasks.ner import group_entities, words_from_tokens

from tiny_models import LANGID_LABELS, NER_LABELS, TOPIC_LABELS

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


MAX_LENGTH = 128  # tiny_models.MAX_POSITIONS: longer inputs are truncated

# Very different lengths, out of length order; the last one is longer than the model's context.
TEXTS = [
    "Alice lives in Paris.",
    "hi",
    "The film was wonderful, I loved every minute of it! " * 3,
    "",
    "Bob went to London with Alice and visited Grenoble, Zürich and Kraków.",
    "x y z",
    "The service was terrible and the food was cold. " * 20,
]
# Label tasks turn an empty text into an Invalid prediction without running the model.
LABEL_TEXTS = [t for t in TEXTS if t.strip()]


def load_cpu(source, **kwargs) -> specnb.Model:
    """specnb.load pinned to the CPU, so float32 comparisons hold on a GPU machine too."""
    return specnb.load(source, device="cpu", **kwargs)


def one_at_a_time(model: specnb.Model, texts) -> list:
    return [model.predict([text], batch_size=1)[0] for text in texts]


# -- task inference ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fixture, task, kind, role",
    [
        ("tiny_embed_dir", "embed", specnb.Embedding, "specialist"),
        ("tiny_sentiment_dir", "sentiment", specnb.Label, "specialist"),
        ("tiny_topic_dir", "classify", specnb.Label, "specialist"),
        ("tiny_langid_dir", "langid", specnb.Label, "specialist"),
        ("tiny_ner_dir", "ner", specnb.Entities, "specialist"),
        ("tiny_llama_dir", "generate", specnb.Generation, "generalist"),
    ],
)
def test_task_role_and_prediction_type_are_inferred_from_config(request, fixture, task, kind, role):
    specnb.config.max_new_tokens = 2
    model = load_cpu(request.getfixturevalue(fixture))
    assert (model.task, model.role, model.backend) == (task, role, "transformers")
    predictions = model.predict(["Alice lives in Paris.", "hi"])
    assert len(predictions) == 2
    assert all(type(p) is kind for p in predictions)


def test_label_models_predict_labels_from_their_own_label_set(tiny_sentiment_dir, tiny_topic_dir, tiny_langid_dir):
    for folder, labels in [
        (tiny_sentiment_dir, {"negative", "positive"}),
        (tiny_topic_dir, set(TOPIC_LABELS)),
        (tiny_langid_dir, set(LANGID_LABELS)),
    ]:
        predictions = load_cpu(folder).predict(TEXTS)
        assert {p.label for p in predictions if p.valid} <= labels
        assert all(isinstance(p.score, float) and 1 / len(labels) <= p.score <= 1 for p in predictions if p.valid)
        # the empty text has nothing to classify: an explicit invalid prediction, in its place
        assert [p.valid for p in predictions] == [bool(t.strip()) for t in TEXTS]
        assert "empty text" in predictions[TEXTS.index("")].reason


@pytest.mark.parametrize(
    "fixture, task, labels",
    [
        ("tiny_sentiment_dir", "classify", {"negative", "positive"}),
        ("tiny_sentiment_dir", "sentiment", {"negative", "positive"}),
        ("tiny_langid_dir", "classify", set(LANGID_LABELS)),
    ],
)
def test_explicit_task_overrides_inferred_one_within_supported_tasks(request, fixture, task, labels):
    model = load_cpu(request.getfixturevalue(fixture), task=task)
    assert model.task == task
    assert {p.label for p in model.predict(TEXTS[:3])} <= labels


def test_default_and_explicit_task_are_separate_handles(tiny_sentiment_dir):
    inferred = load_cpu(tiny_sentiment_dir)
    explicit = load_cpu(tiny_sentiment_dir, task="classify")
    assert inferred is not explicit
    assert load_cpu(tiny_sentiment_dir, task="sentiment") is inferred  # the inferred task, named
    table = specnb.models()
    assert sorted(table["task"]) == ["classify", "sentiment"]
    assert table["alias"].is_unique


@pytest.mark.parametrize(
    "fixture, task, valid",
    [
        ("tiny_embed_dir", "ner", ["embed", "classify", "sentiment"]),
        ("tiny_ner_dir", "embed", ["ner"]),
        ("tiny_sentiment_dir", "generate", ["sentiment", "classify"]),
    ],
)
def test_task_the_model_cannot_serve_raises_task_error_listing_valid_tasks(request, fixture, task, valid):
    with pytest.raises(specnb.TaskError) as caught:
        load_cpu(request.getfixturevalue(fixture), task=task)
    message = str(caught.value)
    assert repr(task) in message
    for name in valid:
        assert name in message
    assert len(specnb.registry) == 0


def test_unknown_task_name_raises_task_error_listing_every_task(tiny_sentiment_dir):
    with pytest.raises(specnb.TaskError) as caught:
        load_cpu(tiny_sentiment_dir, task="summarize")
    for name in TASKS:
        assert name in str(caught.value)


def test_sentiment_task_on_topic_labels_is_refused_before_loading_weights(tiny_topic_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded for a task the model cannot serve")

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", refuse)
    with pytest.raises(specnb.TaskError) as caught:
        load_cpu(tiny_topic_dir, task="sentiment")
    assert "'sentiment'" in str(caught.value) and "classify" in str(caught.value)
    assert len(specnb.registry) == 0
    assert specnb.models().empty


# -- predictions: typed, in input order, independent of batching -----------------------------------
@pytest.mark.parametrize("fixture", ["tiny_sentiment_dir", "tiny_topic_dir"])
def test_batched_labels_equal_one_at_a_time_labels(request, fixture):
    model = load_cpu(request.getfixturevalue(fixture))
    batched = model.predict(LABEL_TEXTS, batch_size=2)
    alone = one_at_a_time(model, LABEL_TEXTS)
    assert [p.label for p in batched] == [p.label for p in alone]
    np.testing.assert_allclose([p.score for p in batched], [p.score for p in alone], rtol=1e-5, atol=1e-6)


def test_labels_equal_a_direct_transformers_forward_per_text(tiny_topic_dir):
    predictions = load_cpu(tiny_topic_dir).predict(LABEL_TEXTS, batch_size=3)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_topic_dir)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_topic_dir).eval()
    for text, prediction in zip(LABEL_TEXTS, predictions):
        with torch.no_grad():
            probs = model(**tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")).logits.softmax(-1)[0]
        assert prediction.label == TOPIC_LABELS[int(probs.argmax())]
        assert prediction.score == pytest.approx(float(probs.max()), rel=1e-5)
    # Distinct scores, so a permutation of the outputs could not pass the loop above.
    assert len({round(p.score, 6) for p in predictions}) > 1


def test_batched_embeddings_equal_one_at_a_time_and_are_unit_norm(tiny_embed_dir):
    model = load_cpu(tiny_embed_dir)
    batched = model.predict(TEXTS, batch_size=2)
    alone = one_at_a_time(model, TEXTS)
    for a, b in zip(batched, alone):
        assert a.vector.dtype == np.float32 and a.vector.shape == (32,)
        np.testing.assert_allclose(a.vector, b.vector, rtol=1e-5, atol=1e-6)
        assert np.linalg.norm(a.vector) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(batched[0].vector, batched[1].vector)


def test_embeddings_are_mean_pooled_last_hidden_states(tiny_embed_dir, tiny_embed_plain_dir):
    normalized = load_cpu(tiny_embed_dir).predict(TEXTS, batch_size=4)
    plain = load_cpu(tiny_embed_plain_dir).predict(TEXTS, batch_size=4)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_embed_plain_dir)
    model = transformers.AutoModel.from_pretrained(tiny_embed_plain_dir).eval()
    for text, unit, raw in zip(TEXTS, normalized, plain):
        with torch.no_grad():
            hidden = model(**tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")).last_hidden_state[0]
        expected = hidden.mean(dim=0).numpy()
        np.testing.assert_allclose(raw.vector, expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(unit.vector, expected / np.linalg.norm(expected), rtol=1e-4, atol=1e-5)
        # Without a Normalize module the vectors keep their length (LayerNorm makes it about sqrt(32)).
        assert abs(np.linalg.norm(raw.vector) - 1) > 0.1


def test_batched_entities_equal_one_at_a_time_entities(tiny_ner_dir):
    model = load_cpu(tiny_ner_dir)
    batched = model.predict(TEXTS, batch_size=2)
    alone = one_at_a_time(model, TEXTS)
    for a, b in zip(batched, alone):
        assert [(s.start, s.end, s.label, s.text) for s in a.spans] == [(s.start, s.end, s.label, s.text) for s in b.spans]
        np.testing.assert_allclose([s.score for s in a.spans], [s.score for s in b.spans], rtol=1e-5, atol=1e-6)


def test_batched_generations_equal_one_at_a_time_generations(tiny_llama_dir):
    specnb.config.max_new_tokens = 4
    model = load_cpu(tiny_llama_dir)
    batched = model.predict(TEXTS, batch_size=2)
    alone = one_at_a_time(model, TEXTS)
    assert batched == alone
    assert all(isinstance(g, specnb.Generation) and isinstance(g.text, str) for g in batched)
    assert any(g.text for g in batched)


def test_predictions_follow_input_order_not_length_order(tiny_sentiment_dir):
    model = load_cpu(tiny_sentiment_dir)
    forward = model.predict(LABEL_TEXTS, batch_size=2)
    backward = model.predict(LABEL_TEXTS[::-1], batch_size=2)
    assert [p.label for p in backward] == [p.label for p in forward][::-1]
    np.testing.assert_allclose([p.score for p in backward], [p.score for p in forward][::-1], rtol=1e-5)




# -- the engine: sorted by length, padded per batch, inference mode ---------------------------------
def _record_pad(monkeypatch, tokenizer) -> list:
    """Wrap ``tokenizer.pad`` to record each padded batch's input_ids and attention_mask."""
    original = tokenizer.pad
    padded = []

    def pad(features, *args, **kwargs):
        out = original(features, *args, **kwargs)
        padded.append((out["input_ids"].clone(), out["attention_mask"].clone()))
        return out

    monkeypatch.setattr(tokenizer, "pad", pad)
    return padded


def test_batches_run_longest_first_each_padded_to_its_own_longest_item(tiny_sentiment_dir, monkeypatch):
    model = load_cpu(tiny_sentiment_dir)
    padded = _record_pad(monkeypatch, model._backend.tokenizer)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_sentiment_dir)
    lengths = [len(ids) for ids in tokenizer(LABEL_TEXTS, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    assert len(set(lengths)) == len(lengths), "LABEL_TEXTS should have distinct token lengths"

    model.predict(LABEL_TEXTS, batch_size=2)

    by_length = sorted(lengths, reverse=True)
    expected = [by_length[i : i + 2] for i in range(0, len(by_length), 2)]
    assert [tuple(ids.shape) for ids, _ in padded] == [(len(batch), max(batch)) for batch in expected]
    for (_, mask), batch in zip(padded, expected):
        # Right padding for encoders: each row's real tokens first, as many as its own length.
        assert sorted(mask.sum(dim=1).tolist(), reverse=True) == batch
        for row in mask:
            n = int(row.sum())
            assert row[:n].all() and not row[n:].any()
    assert model.last_run.batches == math.ceil(len(LABEL_TEXTS) / 2)
    assert model.last_run.batch_items == [len(b) for b in expected]


def test_generation_batches_run_longest_first_left_padded_to_their_own_longest_prompt(tiny_llama_dir, monkeypatch):
    specnb.config.max_new_tokens = 2
    model = load_cpu(tiny_llama_dir)
    padded = _record_pad(monkeypatch, model._backend.tokenizer)
    # Shortest first in input order, so batches taken in input order would come out shortest first.
    texts = ["x", "x y z", "Alice lives in Paris and works with Bob in London.", "a b c d e f"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llama_dir)
    lengths = [
        len(tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, return_dict=True)["input_ids"])
        for t in texts
    ]
    assert len(set(lengths)) == len(lengths)

    model.predict(texts, batch_size=2)

    by_length = sorted(lengths, reverse=True)
    expected = [by_length[i : i + 2] for i in range(0, len(by_length), 2)]
    assert [tuple(ids.shape) for ids, _ in padded] == [(2, max(batch)) for batch in expected]
    for (_, mask), batch in zip(padded, expected):
        assert sorted(mask.sum(dim=1).tolist(), reverse=True) == batch
        for row in mask:  # left padding: each prompt ends at the right edge
            n = int(row.sum())
            assert row[-n:].all() and not row[:-n].any()


@pytest.mark.parametrize("fixture", ["tiny_sentiment_dir", "tiny_ner_dir", "tiny_embed_dir", "tiny_llama_dir"])
def test_forward_runs_under_inference_mode(request, fixture, monkeypatch):
    specnb.config.max_new_tokens = 2
    model = load_cpu(request.getfixturevalue(fixture))
    network = model._backend.model
    original = network.forward
    seen = []

    def forward(*args, **kwargs):
        seen.append(torch.is_inference_mode_enabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(network, "forward", forward)
    model.predict(TEXTS[:3], batch_size=2)
    assert seen and all(seen)
    assert not torch.is_inference_mode_enabled()


# -- NER spans ----------------------------------------------------------------------------------------
NER_TEXTS = [
    "Alice lives in Paris and works with Bob in London.",
    "  Grenoble,  Zürich   and Kraków are far from  Reykjavík!  ",
    "ÉMILE ZOLA wrote in Médan; naïve café owners read him.",
    "",
]


def test_entity_spans_slice_the_input_and_carry_bare_labels(tiny_ner_dir):
    predictions = load_cpu(tiny_ner_dir).predict(NER_TEXTS, batch_size=2)
    assert all(type(p) is specnb.Entities for p in predictions)
    assert sum(len(p.spans) for p in predictions) > 0, "the tiny model should tag something"
    bare = {label.split("-", 1)[-1] for label in NER_LABELS if label != "O"}
    for text, prediction in zip(NER_TEXTS, predictions):
        previous_end = 0
        for span in prediction.spans:
            assert text[span.start : span.end] == span.text
            assert span.label in bare
            assert 0 <= span.score <= 1
            assert previous_end <= span.start < span.end  # in text order, not overlapping
            previous_end = span.end
            # Spans cover whole words: sub-word pieces (zürich -> z ##u ##r ...) never split a word.
            assert span.start == 0 or not (text[span.start - 1].isalnum() and text[span.start].isalnum())
            assert span.end == len(text) or not (text[span.end - 1].isalnum() and text[span.end].isalnum())


def test_entities_of_empty_text_are_empty(tiny_ner_dir):
    assert load_cpu(tiny_ner_dir).predict([""]) == [specnb.Entities(())]


TEXT = "John Smith visited Paris"
JOHN, SMITH, VISITED, PARIS = (0, 4), (5, 10), (11, 18), (19, 24)


def words(*tagged):
    return [(start, end, tag, score) for (start, end), tag, score in tagged]


def test_group_entities_merges_b_i_and_ends_at_o():
    spans = group_entities(words((JOHN, "B-PER", 0.9), (SMITH, "I-PER", 0.7), (VISITED, "O", 0.99), (PARIS, "B-LOC", 0.6)), TEXT)
    assert [(s.start, s.end, s.label, s.text) for s in spans] == [(0, 10, "PER", "John Smith"), (19, 24, "LOC", "Paris")]
    assert spans[0].score == pytest.approx(0.8) and spans[1].score == pytest.approx(0.6)


def test_group_entities_i_after_o_starts_an_entity():
    spans = group_entities(words((JOHN, "O", 0.9), (SMITH, "I-PER", 0.5)), TEXT)
    assert spans == [Span(5, 10, "PER", "Smith", 0.5)]


def test_group_entities_b_after_b_of_same_type_gives_two_spans():
    spans = group_entities(words((JOHN, "B-PER", 0.9), (SMITH, "B-PER", 0.5)), TEXT)
    assert [(s.text, s.label) for s in spans] == [("John", "PER"), ("Smith", "PER")]


def test_group_entities_i_of_another_type_starts_a_new_span():
    spans = group_entities(words((JOHN, "B-PER", 0.9), (SMITH, "I-LOC", 0.5)), TEXT)
    assert [(s.text, s.label) for s in spans] == [("John", "PER"), ("Smith", "LOC")]


def test_group_entities_closes_an_entity_at_the_end_of_text():
    spans = group_entities(words((VISITED, "O", 0.9), (PARIS, "I-LOC", 0.4)), TEXT)
    assert spans == [Span(19, 24, "LOC", "Paris", 0.4)]


def test_group_entities_bare_labels_of_one_type_merge():
    spans = group_entities(words((JOHN, "PER", 0.9), (SMITH, "PER", 0.5), (VISITED, "O", 1.0)), TEXT)
    assert [(s.text, s.label) for s in spans] == [("John Smith", "PER")]


def test_group_entities_of_no_words_is_empty():
    assert group_entities([], TEXT) == []
    assert group_entities(words((JOHN, "O", 1.0)), TEXT) == []


def test_words_from_tokens_takes_first_subword_tag_and_spans_all_subwords():
    text = "Grenoble is big"
    # [CLS] gre ##no ##ble is big [SEP]
    word_ids = [None, 0, 0, 0, 1, 2, None]
    offsets = [(0, 0), (0, 3), (3, 5), (5, 8), (9, 11), (12, 15), (0, 0)]
    tags = ["O", "B-LOC", "I-PER", "O", "O", "B-PER", "B-LOC"]
    scores = [0.1, 0.8, 0.2, 0.3, 0.9, 0.7, 0.5]
    assert words_from_tokens(word_ids, offsets, tags, scores) == [
        (0, 8, "B-LOC", 0.8),
        (9, 11, "O", 0.9),
        (12, 15, "B-PER", 0.7),
    ]
    spans = group_entities(words_from_tokens(word_ids, offsets, tags, scores), text)
    assert spans == [Span(0, 8, "LOC", "Grenoble", 0.8), Span(12, 15, "PER", "big", 0.7)]


def test_words_from_tokens_skips_special_and_empty_tokens():
    word_ids = [None, 0, 0, None]
    offsets = [(0, 0), (0, 2), (2, 2), (0, 0)]
    assert words_from_tokens(word_ids, offsets, ["B-PER", "B-LOC", "I-PER", "B-PER"], [1.0, 0.6, 0.5, 1.0]) == [
        (0, 2, "B-LOC", 0.6)
    ]


# -- the registry: one handle per source, accounting ---------------------------------------------------
def test_same_source_loaded_twice_is_the_same_handle_listed_once(tiny_sentiment_dir):
    first = specnb.load(tiny_sentiment_dir)
    assert specnb.load(str(tiny_sentiment_dir)) is first
    assert specnb.load(str(tiny_sentiment_dir) + "/") is first
    assert specnb.load(tiny_sentiment_dir, task="sentiment") is first
    assert specnb.get(first.alias) is first
    table = specnb.models()
    assert len(table) == 1
    assert table.loc[0, "alias"] == first.alias


def test_models_table_reports_parameters_weights_dtype_and_backend(tiny_embed_dir, tiny_ner_dir, tiny_llama_dir):
    from safetensors import safe_open

    loaded = [load_cpu(folder) for folder in (tiny_embed_dir, tiny_ner_dir, tiny_llama_dir)]
    table = specnb.models()
    assert list(table.columns) == [
        "alias", "task", "role", "backend", "device", "dtype", "parameters", "weight_bytes", "shared_bytes",
        "memory_bytes", "load_seconds", "last_used", "pinned", "source", "host", "capabilities",
    ]
    assert list(table["alias"]) == [m.alias for m in loaded]
    assert list(table["task"]) == ["embed", "ner", "generate"]
    for (_, row), model, folder in zip(table.iterrows(), loaded, (tiny_embed_dir, tiny_ner_dir, tiny_llama_dir)):
        network = model._backend.model
        assert row["parameters"] == sum(p.numel() for p in network.parameters())
        with safe_open(folder / "model.safetensors", "pt") as weights:
            on_disk = sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())  # noqa: SIM118 (safe_open is not a dict)
        assert row["parameters"] == on_disk
        assert row["weight_bytes"] >= 4 * row["parameters"] > 0
        assert (row["backend"], row["device"], row["dtype"], row["pinned"]) == ("transformers", "cpu", "float32", False)
        assert row["source"] == str(folder)
        assert row["load_seconds"] >= 0
        assert row["shared_bytes"] == 0  # three unrelated checkpoints: nothing in common
        assert next(network.parameters()).dtype == torch.float32


def test_generate_returns_generation_within_max_new_tokens(tiny_llama_dir, monkeypatch):
    specnb.config.max_new_tokens = 3
    model = load_cpu(tiny_llama_dir)
    network = model._backend.model
    original = network.generate
    new_tokens = []

    def generate(**kwargs):
        out = original(**kwargs)
        new_tokens.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    monkeypatch.setattr(network, "generate", generate)
    predictions = model.predict(["hello world", "Alice lives in Paris."], batch_size=1)
    assert all(type(p) is specnb.Generation and isinstance(p.text, str) for p in predictions)
    assert new_tokens and all(1 <= n <= 3 for n in new_tokens)


def test_generation_equals_direct_greedy_generation_after_chat_template(tiny_llama_dir):
    specnb.config.max_new_tokens = 5
    predictions = load_cpu(tiny_llama_dir).predict(TEXTS[:3], batch_size=1)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    for text, prediction in zip(TEXTS, predictions):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        out = model.generate(ids, max_new_tokens=5, do_sample=False)
        assert prediction.text == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


# -- regressions found in review ------------------------------------------------------------------------
def test_max_new_tokens_set_after_load_applies_to_the_loaded_model(tiny_llama_dir, monkeypatch):
    specnb.config.max_new_tokens = 8
    model = load_cpu(tiny_llama_dir)
    network = model._backend.model
    original = network.generate
    limits = []

    def generate(**kwargs):
        limits.append(kwargs.get("max_new_tokens"))
        return original(**kwargs)

    monkeypatch.setattr(network, "generate", generate)
    model.predict(["hello world"])
    specnb.config.max_new_tokens = 2
    model.predict(["hello world"])
    assert limits == [8, 2]


def test_short_word_labels_are_not_taken_for_language_codes(tmp_path):
    import tiny_models

    folder = tiny_models.tiny_bert_classifier(tmp_path / "animals", labels=("cat", "dog", "cow"))
    assert load_cpu(folder).task == "classify"


@pytest.mark.parametrize("labels", [("NEGATIVE", "POSITIVE"), ("neg", "pos")])
def test_sentiment_predictions_use_the_sentiment_label_space(tmp_path, labels):
    import tiny_models

    folder = tiny_models.tiny_bert_classifier(tmp_path / "sst2-style", labels=labels)
    model = load_cpu(folder)
    assert model.task == "sentiment"
    assert {p.label for p in model.predict(LABEL_TEXTS)} <= set(specnb.tasks.SENTIMENT_LABELS)


@pytest.mark.parametrize("fixture", ["tiny_sentiment_dir", "tiny_ner_dir", "tiny_embed_dir", "tiny_llama_dir"])
def test_empty_input_list_gives_empty_predictions(request, fixture):
    model = load_cpu(request.getfixturevalue(fixture))
    assert model.predict([]) == []
    assert model.last_run.items == 0 and model.last_run.batches == 0
