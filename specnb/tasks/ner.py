"""ner: entity spans with character offsets.

A generalist writes one entity per line (``TYPE: entity text``); `parse_entities` maps each back to
character offsets in the input. An answer that cannot be read that way is an `Invalid` prediction
with the reason, never an exception and never silently shortened. A token classifier's BIO tags become
spans through `words_from_tokens` and `group_entities`.
"""

from __future__ import annotations

import re

from ..errors import TaskError
from .base import Task
from .prompts import Prompt
from .types import Entities, Invalid, Span

__all__ = ["ENTITY_TYPES", "TYPE_SYNONYMS", "Ner", "NER", "parse_entities", "entity_type", "group_entities",
           "words_from_tokens"]

ENTITY_TYPES = ("PERSON", "ORG", "GPE", "LOC")
TYPE_DESCRIPTIONS = {
    "PERSON": "people",
    "ORG": "companies, agencies, institutions",
    "GPE": "countries, cities, states",
    "LOC": "other places: mountains, rivers, regions",
    "MISC": "other names",
    "NORP": "nationalities, religious or political groups",
    "DATE": "dates",
}
# How models and datasets spell entity types, mapped to the types above.
TYPE_SYNONYMS = {
    "PER": "PERSON", "PERSON": "PERSON", "PEOPLE": "PERSON", "NAME": "PERSON", "PERSONS": "PERSON",
    "ORG": "ORG", "ORGANIZATION": "ORG", "ORGANISATION": "ORG", "ORGANIZATIONS": "ORG", "COMPANY": "ORG",
    "LOC": "LOC", "LOCATION": "LOC", "LOCATIONS": "LOC", "PLACE": "LOC",
    "GPE": "GPE", "COUNTRY": "GPE", "CITY": "GPE", "STATE": "GPE",
    "MISC": "MISC", "MISCELLANEOUS": "MISC", "NORP": "NORP", "DATE": "DATE",
}
_NONE = re.compile(
    r"(?:none|nothing|n/?a|-+|no(?:\s+named)?\s+entit(?:y|ies)(?:\s+(?:were\s+)?found)?|none\s+found|not\s+found)",
    re.IGNORECASE,
)
# "- **PERSON** (people): Alice" -> type "PERSON", value "Alice"
_LINE = re.compile(
    r"^(?:[-*\u2022]|\d+[.)])?\s*(?:\*\*)?\s*([A-Za-z][A-Za-z _/-]{0,40}?)\s*(?:\*\*)?\s*(?:\([^)]{0,80}\))?\s*(?:\*\*)?"
    r"\s*[:|=\t]\s*(.*?)\s*$"
)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


def entity_type(name: str, types: tuple[str, ...]) -> str | None:
    """``'Organization'`` -> ``'ORG'`` when ORG is in ``types``; ``'work of art'`` -> ``'WORK_OF_ART'``;
    LOC and GPE stand in for each other when only one is asked for. None when the name is no type of
    ``types``."""
    key = re.sub(r"[\s/-]+", "_", name.strip()).upper()
    canonical = TYPE_SYNONYMS.get(key, key)
    if canonical in types:
        return canonical
    if canonical in ("LOC", "GPE"):
        other = "GPE" if canonical == "LOC" else "LOC"
        if other in types:
            return other
    return None


def _clean(value: str) -> str:
    """Quotes and markdown bold (``**``, at either end) off an entity; a single ``*`` stays (``*NSYNC``)."""
    value = value.strip().strip(_QUOTES).strip()
    value = re.sub(r"^\*\*|\*\*$", "", value).strip()
    return value.strip(_QUOTES).strip()


class _Finder:
    """Finds where entity strings occur in one text, remembering what earlier lines took."""

    def __init__(self, text: str):
        self.text = text
        self.covered = bytearray(len(text))  # characters inside a span already
        self.found: dict[str, list[tuple[int, int]]] = {}
        self.next: dict[str, int] = {}

    def occurrences(self, value: str) -> list[tuple[int, int]]:
        """Word-bounded exact matches; if none, any exact match; if none, the same ignoring case.
        Whitespace in ``value`` matches any run of whitespace."""
        if value not in self.found:
            body = r"\s+".join(re.escape(part) for part in value.split())
            places: list[tuple[int, int]] = []
            if body:
                for flags in (0, re.IGNORECASE):
                    for pattern in (r"(?<!\w)" + body + r"(?!\w)", body):
                        places = [(m.start(), m.end()) for m in re.finditer(pattern, self.text, flags)]
                        if places:
                            break
                    if places:
                        break
            self.found[value] = places
        return self.found[value]

    def place(self, value: str, kind: str) -> tuple[Span | None, bool]:
        """(the span for this entity, whether it occurs at all). The span is the next occurrence
        that overlaps no earlier span; None when every occurrence is taken or lies inside an earlier
        span (a repeated line, or ``York`` after ``New York``)."""
        places = self.occurrences(value)
        if not places:
            return None, False
        for index in range(self.next.get(value, 0), len(places)):
            start, end = places[index]
            if not any(self.covered[start:end]):
                self.next[value] = index + 1
                self.covered[start:end] = b"\x01" * (end - start)
                return Span(start, end, kind, self.text[start:end]), True
        return None, True


def parse_entities(raw: str, text: str, types: tuple[str, ...] = ENTITY_TYPES, *, complete: bool = True):
    """Read a generalist's ``TYPE: entity`` lines as `Entities` with character offsets in ``text``.

    Tolerated: bullets and numbering, bold markers, a parenthesised description after the type
    (``PERSON (people): Ann``), quotes around entities, code fences, a header line with no value
    (``Entities:``), ``NONE`` / ``No entities found`` (for the whole answer or one type), several
    entities of one type separated by commas, entity types spelt as synonyms (``PER``,
    ``Organization``) or with spaces (``work of art``), a trailing period, different case or
    whitespace than the text. A repeated entity maps to its next occurrence; one whose every
    occurrence is already inside a span adds nothing (spans never overlap). Anything else (a line
    that is not ``TYPE: entity``, an unknown type, an entity that does not occur in the text, an
    answer cut off by the token limit) makes the whole answer `Invalid`, naming the line (counted
    in ``raw``, from 1).

    Parameters
    ----------
    raw : str
        The generated answer.
    text : str
        The input it answers.
    types : tuple of str
        The entity types asked for.
    complete : bool
        False when generation stopped at the token limit rather than by itself.
    """
    if not complete:
        return Invalid(raw, "the answer was cut off by the token limit; raise specnb.config.max_new_tokens")
    finder = _Finder(text)
    spans: list[Span] = []
    for number, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("```") or _NONE.fullmatch(line.strip(_QUOTES + " .*")):
            continue
        match = _LINE.match(line)
        if match is None:
            return Invalid(raw, f"line {number} ({line[:80]!r}) is not 'TYPE: entity'")
        name, value = match.group(1), _clean(match.group(2))
        if not value or _NONE.fullmatch(value.rstrip(".")):
            continue  # a header ("Entities:") or "PERSON: none"
        kind = entity_type(name, types)
        if kind is None:
            return Invalid(raw, f"line {number}: {name.strip()!r} is not one of the entity types {', '.join(types)}")
        for entity in _entities_in(value, finder):
            span, occurs = finder.place(entity, kind)
            if not occurs:
                return Invalid(raw, f"line {number}: {entity[:80]!r} does not occur in the text")
            if span is not None:
                spans.append(span)
    return Entities(tuple(sorted(spans, key=lambda s: (s.start, s.end))))


def _entities_in(value: str, finder: _Finder) -> list[str]:
    """The entity strings one line's value names: itself, itself without a trailing period, or its
    comma-separated parts (when the whole does not occur in the text)."""
    if finder.occurrences(value):
        return [value]
    if value.endswith(".") and finder.occurrences(value.rstrip(".").strip()):
        return [value.rstrip(".").strip()]
    if re.search(r"[,;]\s", value):
        parts = [_clean(v).rstrip(".") for v in re.split(r"[,;]\s+", value)]
        return [p for p in parts if p]
    return [value]


class Ner(Task):
    name = "ner"
    description = "entity spans with character offsets"
    prediction = Entities
    needs_text = False

    def label_space(self, labels):
        if labels is None:
            return ENTITY_TYPES
        if isinstance(labels, str) or not hasattr(labels, "__iter__"):
            raise TaskError(f"entity types must be a list of strings such as {list(ENTITY_TYPES)}, got {labels!r:.80}")
        out = []
        for label in labels:
            if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z][A-Za-z_]*", label.strip()):
                raise TaskError(f"entity type {label!r:.40} is not a name such as PERSON or ORG (letters and _ only)")
            canonical = TYPE_SYNONYMS.get(label.strip().upper(), label.strip().upper())
            if canonical not in out:
                out.append(canonical)
        if not out:
            raise TaskError(f"ner needs at least one entity type, e.g. {list(ENTITY_TYPES)}")
        return tuple(out)

    def answer(self, label: str) -> str:
        description = TYPE_DESCRIPTIONS.get(label)
        return f"{label} ({description})" if description else label

    def default_prompt(self) -> Prompt:
        return Prompt(
            "List the named entities in the text. Entity types: {labels}.\n"
            "Write one entity per line as TYPE: entity, copying each entity exactly as it is written in the text.\n"
            "Write NONE if there are no entities.",
        )

    def parse(self, raw, text, labels, complete: bool = True):
        return parse_entities(raw, text, labels or ENTITY_TYPES, complete=complete)


NER = Ner()


# -- BIO tags to spans (token classifiers) ---------------------------------------------------------------
def group_entities(words: list[tuple[int, int, str, float]], text: str) -> list[Span]:
    """Merge BIO-tagged words into entity spans with character offsets.

    ``I-X`` (or a bare ``X``) continues an entity of type X; ``B-X`` starts one; ``O`` ends it.
    """
    spans: list[Span] = []
    current = None  # [start, end, type, scores]
    for start, end, tag, score in words:
        prefix, _, kind = tag.partition("-") if "-" in tag else ("", "", tag)
        if kind == "O":
            current = _close(current, spans, text)
        elif current is not None and kind == current[2] and prefix in ("I", ""):
            current[1] = end
            current[3].append(score)
        else:
            _close(current, spans, text)
            current = [start, end, kind, [score]]
    _close(current, spans, text)
    return spans


def words_from_tokens(word_ids: list, offsets: list, tags: list[str], scores: list[float]):
    """One (start, end, tag, score) per word: the tag of its first sub-word, offsets of them all."""
    words: dict[int, list] = {}
    for word, (start, end), tag, score in zip(word_ids, offsets, tags, scores):
        if word is None or end <= start:
            continue
        if word not in words:
            words[word] = [start, end, tag, score]
        else:
            words[word][1] = end
    return [tuple(w) for _, w in sorted(words.items())]


def _close(current, spans: list[Span], text: str):
    if current is not None:
        start, end, kind, scores = current
        spans.append(Span(start, end, kind, text[start:end], sum(scores) / len(scores)))
