"""ner: entity spans with character offsets.

A generalist writes one entity per line (``TYPE: entity text``); `parse_entities` maps each back to
character offsets in the input. An answer that cannot be read that way is an `Invalid` prediction
with the reason, never an exception and never silently shortened.
"""

from __future__ import annotations

import re

from ..errors import TaskError
from .base import Task
from .prompts import Prompt
from .types import Entities, Invalid, Span

__all__ = ["ENTITY_TYPES", "TYPE_SYNONYMS", "Ner", "NER", "parse_entities", "entity_type"]

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
_NONE = {"none", "no entities", "no entity", "n/a", "nothing", "-", "none found", "no named entities"}
_LINE = re.compile(r"^(?:[-*\u2022]|\d+[.)])?\s*\**\s*([A-Za-z][A-Za-z _/-]{0,40}?)\s*\**\s*[:|=\t]\s*(.*?)\s*$")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019*"


def entity_type(name: str, types: tuple[str, ...]) -> str | None:
    """``'Organization'`` -> ``'ORG'`` when ORG is in ``types``; LOC and GPE stand in for each other
    when only one is asked for. None when the name is no type of ``types``."""
    canonical = TYPE_SYNONYMS.get(re.sub(r"[\s/-]+", "_", name.strip()).upper(), name.strip().upper())
    if canonical in types:
        return canonical
    if canonical in ("LOC", "GPE"):
        other = "GPE" if canonical == "LOC" else "LOC"
        if other in types:
            return other
    return None


def _occurrences(value: str, text: str):
    """Where ``value`` occurs in ``text``: word-bounded exact matches first, then any exact, then
    the same two ignoring case. Whitespace in ``value`` matches any run of whitespace."""
    body = r"\s+".join(re.escape(part) for part in value.split())
    if not body:
        return []
    found: list[tuple[int, int]] = []
    for flags in (0, re.IGNORECASE):
        for pattern in (r"(?<!\w)" + body + r"(?!\w)", body):
            for m in re.finditer(pattern, text, flags):
                if (m.start(), m.end()) not in found:
                    found.append((m.start(), m.end()))
    return found


def _place(value: str, kind: str, text: str, spans: list[Span]) -> tuple[Span | None, bool]:
    """(the span for this entity, whether it occurs at all); None span for a duplicate."""
    places = _occurrences(value, text)
    if not places:
        return None, False
    taken = {(s.start, s.end) for s in spans}
    free = [p for p in places if p not in taken and not any(p[0] < s.end and s.start < p[1] for s in spans)]
    unused = [p for p in places if p not in taken]
    chosen = (free or unused or [None])[0]
    if chosen is None:
        return None, True  # every occurrence already holds an entity: the model repeated itself
    return Span(chosen[0], chosen[1], kind, text[chosen[0] : chosen[1]]), True


def parse_entities(raw: str, text: str, types: tuple[str, ...] = ENTITY_TYPES, *, complete: bool = True):
    """Read a generalist's ``TYPE: entity`` lines as `Entities` with character offsets in ``text``.

    Tolerated: bullets and numbering, bold markers, quotes around entities, code fences, a header
    line with no value (``Entities:``), ``NONE`` (for the whole answer or one type), several
    entities of one type separated by commas, entity types spelt as synonyms (``PER``,
    ``Organization``), different case or whitespace than the text. Anything else (a line that is
    not ``TYPE: entity``, an unknown type, an entity that does not occur in the text, an answer cut
    off by the token limit) makes the whole answer `Invalid`, naming the line.

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
    spans: list[Span] = []
    lines = [line.strip() for line in raw.strip().splitlines()]
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("```") or line.strip(_QUOTES + " .").casefold() in _NONE:
            continue
        match = _LINE.match(line)
        if match is None:
            return Invalid(raw, f"line {number} ({line[:80]!r}) is not 'TYPE: entity'")
        name, value = match.group(1), match.group(2).strip().strip(_QUOTES).strip()
        if not value or value.rstrip(".").casefold() in _NONE:
            continue  # a header ("Entities:") or "PERSON: none"
        kind = entity_type(name, types)
        if kind is None:
            return Invalid(raw, f"line {number}: {name.strip()!r} is not one of the entity types {', '.join(types)}")
        values = [value]
        if not _occurrences(value, text) and re.search(r"[,;]\s", value):
            values = [v.strip().strip(_QUOTES).strip() for v in re.split(r"[,;]\s+", value) if v.strip()]
        for entity in values:
            span, occurs = _place(entity, kind, text, spans)
            if not occurs:
                return Invalid(raw, f"line {number}: {entity[:80]!r} does not occur in the text")
            if span is not None:
                spans.append(span)
    return Entities(tuple(sorted(spans, key=lambda s: (s.start, s.end))))


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
