"""The generalist adapter on a tiny random Llama: rank scoring (checked against a brute-force
per-label computation), NER by generation, embeddings, prompts, and specialists in a label space."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import specnb
from specnb.backends.causal import CausalTasks, candidate_tokens, rank_brute_force, rank_scores
from specnb.tasks import Invalid, Prompt, get_task

TEXTS = [
    "Alice lives in Paris and works with Bob in London.",
    "hello world",
    "The film was wonderful, I loved every minute of it! " * 4,
    "the food was cold",
    "Numbers like 1, 2, 3 and 42 appear in text too.",
]
# single-token words of the tiny vocabulary, a multi-token one and two sharing their first tokens
LABELS = ["film", "food", "service", "sport", "sports"]


def load_cpu(folder, **kwargs):
    return specnb.load(folder, device="cpu", **kwargs)


def brute_force_probabilities(model, text, labels, task="classify", prompt=None):
    """Per-label log-likelihoods computed one label at a time, turned into probabilities."""
    backend = model._backend
    tok = backend.tokenizer
    spec = get_task(task)
    space = spec.label_space(labels)
    prompt = prompt or spec.default_prompt()
    prefix_text, suffix = prompt.parts(tok, space, spec.answer)
    prefix = tok(prefix_text, add_special_tokens=False)["input_ids"]
    item = tok(text + suffix, add_special_tokens=False)["input_ids"]
    tasks = CausalTasks(backend.model, tok, "cpu")
    candidates = candidate_tokens(tok, [prompt.continuation(spec.answer(x)) for x in space], tasks.end_token)
    scores = rank_brute_force(backend.model, prefix, item, candidates)
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return space, [w / sum(weights) for w in weights]


# -- rank scoring ---------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_rank_scoring_equals_brute_force_per_label(tiny_llama_dir, batch_size):
    model = load_cpu(tiny_llama_dir)
    predictions = model.predict(TEXTS, task="classify", labels=LABELS, batch_size=batch_size)
    for text, prediction in zip(TEXTS, predictions):
        space, probs = brute_force_probabilities(model, text, LABELS)
        best = int(np.argmax(probs))
        assert prediction.label == space[best]
        assert prediction.score == pytest.approx(probs[best], rel=1e-4, abs=1e-6)
    # the tiny random model must not answer the same everywhere, or the check above proves little
    assert len({round(p.score, 5) for p in predictions}) > 1


def test_rank_scores_match_brute_force_log_likelihoods_exactly(tiny_llama_dir):
    """All candidates' log-likelihoods, not only the winner's probability, with padding and a budget."""
    model = load_cpu(tiny_llama_dir)
    backend = model._backend
    tok = backend.tokenizer
    prefix = tok("<s><|user|>\nclassify this:", add_special_tokens=False)["input_ids"]
    items = [tok(t + "</s>\n<|assistant|>\n", add_special_tokens=False)["input_ids"] for t in TEXTS]
    candidates = [tok(x, add_special_tokens=False)["input_ids"] for x in ["film", "sports", "the food", "2 3 42"]]
    assert sorted(len(c) for c in candidates) == [1, 2, 3, 6]
    scores, stats = rank_scores(backend.model, prefix, items, candidates, device="cpu", pad_id=tok.pad_token_id,
                                batch_size=3, token_budget=150, progress=False)
    for item, row in zip(items, scores):
        np.testing.assert_allclose(row, rank_brute_force(backend.model, prefix, item, candidates), rtol=1e-4, atol=1e-4)
    assert stats.items == len(TEXTS) and len(stats.item_seconds) == len(TEXTS)
    assert all(s > 0 for s in stats.item_seconds)


def test_candidates_sharing_first_tokens_end_with_the_end_token(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    tok = model._backend.tokenizer
    end = tok.eos_token_id
    with_clash = candidate_tokens(tok, ["sport", "sports"], end)
    assert all(c[-1] == end for c in with_clash)
    without = candidate_tokens(tok, ["film", "food"], end)
    assert all(end not in c for c in without)


def test_every_generalist_label_prediction_lies_in_the_label_space(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    for task, labels, space in [
        ("classify", LABELS, set(LABELS)),
        ("sentiment", None, {"positive", "negative", "neutral"}),
        ("langid", None, set(specnb.tasks.langid.DEFAULT_LANGUAGES)),
        ("langid", ["en", "fr", "de"], {"en", "fr", "de"}),
    ]:
        predictions = model.predict(TEXTS, task=task, labels=labels)
        assert all(p.valid for p in predictions)
        assert {p.label for p in predictions} <= space
        assert all(1 / len(space) - 1e-9 <= p.score <= 1 for p in predictions)


def test_classify_on_a_generalist_needs_labels(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    with pytest.raises(specnb.TaskError, match="needs labels"):
        model.predict(TEXTS, task="classify")


def test_empty_texts_become_invalid_in_place_and_the_rest_still_runs(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    predictions = model.predict(["hello world", "", "   ", "the food"], task="classify", labels=LABELS)
    assert [p.valid for p in predictions] == [True, False, False, True]
    assert isinstance(predictions[1], Invalid) and "empty" in predictions[1].reason
    assert len(model.last_run.item_seconds) == 4


def test_out_of_memory_halves_the_batch_and_the_run_completes(tiny_llama_dir, monkeypatch):
    model = load_cpu(tiny_llama_dir)
    expected = model.predict(TEXTS, task="classify", labels=LABELS, batch_size=8)
    module = model._backend.model
    original = module.forward
    seen = []

    @functools.wraps(original)  # keeps the signature, from which the cache keyword is read
    def forward(*args, **kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        seen.append(None if ids is None else ids.shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)
    predictions = model.predict(TEXTS, task="classify", labels=LABELS, batch_size=8)
    assert [p.label for p in predictions] == [p.label for p in expected]
    np.testing.assert_allclose([p.score for p in predictions], [p.score for p in expected], rtol=1e-4)
    assert model.last_run.oom_retries >= 1
    assert max(model.last_run.batch_items) <= 2


# -- prompts --------------------------------------------------------------------------------------
def test_prompts_are_visible_and_overridable(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    default = model.prompt_for("classify")
    assert isinstance(default, Prompt) and default.answer == "The category of this text is"
    rendered = model.render_prompt("the food was cold", task="classify", labels=LABELS)
    assert rendered.startswith("<s><|user|>\n") and rendered.endswith("<|assistant|>\nThe category of this text is")
    assert "the food was cold" in rendered and "film, food" not in rendered  # labels are ranked, not listed

    few_shot = model.prompt_for("classify", examples=[("a great film", "film"), ("cold soup", "food")])
    shown = model.render_prompt("the food was cold", task="classify", labels=LABELS, prompt=few_shot)
    assert shown.index("a great film") < shown.index("cold soup") < shown.index("the food was cold")

    model.set_prompt("classify", "Pick one of {labels}.")
    assert model.prompt_for("classify").instruction == "Pick one of {labels}."
    assert "Pick one of film, food" in model.render_prompt("x", task="classify", labels=LABELS)
    model.set_prompt("classify", None)
    assert model.prompt_for("classify") == default


def test_the_prompt_changes_the_scores_and_matches_brute_force(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    few_shot = model.prompt_for("classify", examples=[("a great film", "film"), ("cold soup", "food")])
    zero = model.predict(TEXTS, task="classify", labels=LABELS)
    few = model.predict(TEXTS, task="classify", labels=LABELS, prompt=few_shot)
    assert [p.score for p in zero] != [p.score for p in few]
    for text, prediction in zip(TEXTS, few):
        space, probs = brute_force_probabilities(model, text, LABELS, prompt=few_shot)
        assert prediction.score == pytest.approx(max(probs), rel=1e-4)


def test_langid_ranks_language_names_and_answers_codes(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    listing = model.prompt_for("langid").replace(instruction="Which language? One of: {labels}.")
    rendered = model.render_prompt("bonjour", task="langid", labels=["en", "fr"], prompt=listing)
    assert "English, French" in rendered
    for text, prediction in zip(TEXTS, model.predict(TEXTS, task="langid", labels=["en", "fr", "de"])):
        space, probs = brute_force_probabilities(model, text, ["en", "fr", "de"], task="langid")
        assert prediction.label == space[int(np.argmax(probs))]


def test_prompt_errors_are_clear(tiny_llama_dir, tiny_topic_dir):
    model = load_cpu(tiny_llama_dir)
    with pytest.raises(specnb.TaskError, match="takes no prompt"):
        model.prompt_for("embed")
    with pytest.raises(specnb.InputError, match="Prompt"):
        model.predict(TEXTS, task="classify", labels=LABELS, prompt=42)
    specialist = load_cpu(tiny_topic_dir)
    with pytest.raises(specnb.TaskError, match="generalists"):
        specialist.predict(TEXTS, prompt="Classify.")


# -- ner by generation ------------------------------------------------------------------------------
def _fake_generate(model, monkeypatch, answers):
    """Make the LM 'write' an answer per prompt: ``answers`` holds (keyword, answer) pairs and a
    prompt gets the first answer whose keyword its text holds. generate appends tokens (ending with
    EOS unless the answer ends in '...'), and decoding those rows gives the answer text back (the
    tiny WordPiece tokenizer cannot spell newlines)."""
    tok = model._backend.tokenizer
    module = model._backend.model
    script = []
    original_decode = tok.decode

    def generate(input_ids, attention_mask=None, max_new_tokens=None, **kwargs):
        rows = []
        for i in range(input_ids.shape[0]):
            prompt = original_decode(input_ids[i], skip_special_tokens=True).split("text:")[-1]
            answer = next(a for key, a in answers if key in prompt)
            script.append(answer)
            filler = tok.convert_tokens_to_ids("a")
            new = [filler] * max_new_tokens if answer.endswith("...") else [filler, tok.eos_token_id]
            rows.append(input_ids[i].tolist() + new)
        width = max(len(r) for r in rows)
        return torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])

    decoded = iter(range(10**6))

    def decode(ids, skip_special_tokens=False, **kwargs):
        return script[next(decoded)].removesuffix("...")

    monkeypatch.setattr(module, "generate", generate)
    monkeypatch.setattr(tok, "decode", decode)
    return script


def test_ner_answers_are_parsed_to_offsets_or_invalid(tiny_llama_dir, monkeypatch):
    model = load_cpu(tiny_llama_dir)
    texts = ["alice lives in paris with bob.", "hello world", "alice and bob"]
    _fake_generate(model, monkeypatch, [
        ("paris", "person: alice\nloc: paris\nperson: bob"), ("hello", "none"), ("bob", "alice is a person"),
    ])
    predictions = model.predict(texts, task="ner", batch_size=1)
    first = predictions[0]
    assert [(s.label, s.text) for s in first.spans] == [("PERSON", "alice"), ("LOC", "paris"), ("PERSON", "bob")]
    assert all(texts[0][s.start : s.end] == s.text for s in first.spans)
    assert predictions[1] == specnb.Entities(())
    assert isinstance(predictions[2], Invalid) and "line 1" in predictions[2].reason


def test_ner_answer_cut_by_the_token_limit_is_invalid(tiny_llama_dir, monkeypatch):
    model = load_cpu(tiny_llama_dir)
    _fake_generate(model, monkeypatch, [("alice", "person: alice\nperson: bo...")])
    [prediction] = model.predict(["alice and bob"], task="ner")
    assert isinstance(prediction, Invalid) and "token limit" in prediction.reason


def test_ner_with_the_real_tiny_model_never_raises(tiny_llama_dir):
    specnb.config.max_new_tokens = 8
    predictions = load_cpu(tiny_llama_dir).predict(TEXTS, task="ner", labels=["PERSON", "LOC"])
    assert len(predictions) == len(TEXTS)
    assert all(isinstance(p, (specnb.Entities, Invalid)) for p in predictions)
    for p in predictions:
        if isinstance(p, Invalid):
            assert p.reason and isinstance(p.raw, str)


def test_ner_prompt_lists_the_entity_types_with_descriptions(tiny_llama_dir):
    rendered = load_cpu(tiny_llama_dir).render_prompt("alice", task="ner", labels=["per", "org"])
    assert "PERSON (people), ORG (companies, agencies, institutions)" in rendered


# -- embeddings -----------------------------------------------------------------------------------
def test_generalist_embeddings_are_mean_pooled_and_batch_independent(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    batched = model.predict(TEXTS, task="embed", batch_size=3)
    alone = [model.predict([t], task="embed")[0] for t in TEXTS]
    backend = model._backend
    for text, a, b in zip(TEXTS, batched, alone):
        np.testing.assert_allclose(a.vector, b.vector, rtol=1e-4, atol=1e-5)
        ids = backend.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            hidden = backend.model.base_model(input_ids=ids).last_hidden_state[0]
        np.testing.assert_allclose(a.vector, hidden.mean(0).numpy(), rtol=1e-4, atol=1e-5)
        assert a.vector.shape == (backend.model.config.hidden_size,)


# -- specialists in a label space -----------------------------------------------------------------
def test_a_specialist_answers_within_a_narrower_label_space(tiny_topic_dir):
    from tiny_models import TOPIC_LABELS

    model = load_cpu(tiny_topic_dir)
    full = model.predict(TEXTS)
    narrow = model.predict(TEXTS, labels=[TOPIC_LABELS[0].upper(), TOPIC_LABELS[1]])
    assert {p.label for p in narrow} <= {TOPIC_LABELS[0].upper(), TOPIC_LABELS[1]}
    for a, b in zip(full, narrow):
        if a.label in TOPIC_LABELS[:2]:
            assert b.label.casefold() == a.label and b.score >= a.score - 1e-6
    with pytest.raises(specnb.TaskError, match="none of this model's labels"):
        model.predict(TEXTS, labels=["cooking", "gardening"])


def test_fasttext_langid_answers_within_the_label_space():
    model = specnb.load("langid")
    text = "Bom dia, como vai você? Tudo bem por aqui."
    assert model.predict([text])[0].label == "pt"
    narrowed = model.predict([text], labels=["es", "fr", "en"])[0]
    assert narrowed.label in {"es", "fr", "en"}


# -- texts longer than the context ----------------------------------------------------------------
def test_a_text_longer_than_the_context_is_cut_to_fit(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    long_text = "the food was cold and the service was terrible " * 400  # far over 1024 tokens
    assert len(model.tokenizer(long_text)["input_ids"]) > 2 * model.native.config.max_position_embeddings
    predictions = model.predict([long_text, "hello world"], task="classify", labels=LABELS)
    assert all(p.valid and p.label in LABELS for p in predictions)
    generated = model.predict([long_text], task="generate")
    assert isinstance(generated[0], specnb.Generation)


def test_a_prompt_that_leaves_no_room_gives_invalid_predictions_not_an_error(tiny_llama_dir):
    model = load_cpu(tiny_llama_dir)
    huge = model.prompt_for("classify", examples=[("the food was cold " * 400, "food")])
    predictions = model.predict(["hello world", "the film"], task="classify", labels=LABELS, prompt=huge)
    assert all(isinstance(p, Invalid) and "no room" in p.reason for p in predictions)
    assert len(model.last_run.item_seconds) == 2


def test_a_specialist_ner_keeps_only_the_asked_entity_types():
    model = specnb.load("ner")
    text = "Angela Merkel met Emmanuel Macron in Paris on Monday."
    everything = model.predict([text])[0]
    assert {"PERSON", "GPE"} <= {s.label for s in everything.spans}
    people = model.predict([text], labels=["PER"])[0]
    assert [s.text for s in people.spans] == [s.text for s in everything.spans if s.label == "PERSON"]
    places = model.predict([text], labels=["LOC"])[0]  # spaCy's GPE stands in for LOC
    assert [(s.text, s.label) for s in places.spans] == [("Paris", "LOC")]
