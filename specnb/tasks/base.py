"""What every task defines: its label space, prediction type, input checks, prompt and parser."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from ..errors import InputError, TaskError
from .prompts import Prompt
from .types import Invalid, Label, Prediction

__all__ = ["Task", "LabelTask", "normalize_answer", "normalize_input", "is_missing", "text_list", "text_digest", "only_named"]

# Texts longer than this are refused per item: no model here reads a megabyte at once.
MAX_CHARS = 1_000_000


_LEAD_IN = re.compile(
    r"^(?:the\s+)?(?:answer|label|topic|language|category|sentiment)(?:\s*:|\s+-\s+|\s+is\b\s*:?)\s*", re.IGNORECASE
)


# A lone surrogate (U+D800..U+DFFF) cannot be encoded: spaCy, fastText and tokenizers would raise on it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_input(value):
    """An input as every backend may be given it: a str subclass (``numpy.str_``) becomes a plain `str`
    and each lone surrogate (``'Bonjour\\ud83b'``) becomes U+FFFD, one character for one, so offsets
    into the text stay the same and the item still runs. Other values are returned as they are (the
    task's `Task.problem` answers them with `Invalid`)."""
    if not isinstance(value, str):
        return value
    if type(value) is not str:
        value = str.__str__(value)
    return _SURROGATE.sub("\ufffd", value)


def text_list(texts, *, call: str, arg: str = "texts", error=InputError, wrap: str | None = None) -> list:
    """``texts`` as a list, checked: a list, tuple, pandas Series, 1-D numpy array or other ordered iterable
    in, a list out (its items are checked one by one later: a bad one is answered `Invalid`). A value that
    is not a sequence of texts (one str or bytes, a dict, a DataFrame, a set, a scalar, a 2-D array) is
    ``error`` naming ``call`` and ``arg``, what it got and what is valid (``wrap``: how to pass one text),
    and is never iterated as if it were a list of texts."""
    got = type(texts).__name__
    head = f"{call} takes a list of texts ({arg}=)"
    wrap = wrap or f"{call}([text])"
    if isinstance(texts, str):
        raise error(f"{head}, not one string; wrap it: {wrap}")
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise error(f"{head}, got {got}; decode it and wrap it: {call}([data.decode()])")
    if got == "DataFrame" or hasattr(texts, "columns"):
        raise error(f"{head}, got a {got}; pass one column, {call}(df['text']), or a list of str")
    if isinstance(texts, Mapping):
        raise error(f"{head}, got a {got} (its keys would be read as texts); pass list(d.values()) or a list of str")
    if isinstance(texts, (set, frozenset)):
        raise error(f"{head}, got a {got}, which has no order to answer in; pass a list")
    if getattr(texts, "ndim", 1) != 1:
        raise error(f"{head}, one dimension; got a {got} of shape {getattr(texts, 'shape', '?')}; "
                    "pass one column or a list of str")
    if not hasattr(texts, "__iter__"):
        raise error(f"{head}: a list, tuple, pandas Series or 1-D numpy array; got {got} {texts!r:.60}; "
                    f"wrap it: {wrap}")
    try:
        items = texts.tolist() if hasattr(texts, "tolist") else list(texts)
    except TypeError:
        raise error(f"{head}: a list, tuple, pandas Series or 1-D numpy array; got {got}") from None
    if not isinstance(items, list):
        raise error(f"{head}, got {got} {items!r:.60}; wrap it: {wrap}")
    return items


def text_digest(text: str) -> str:
    """The digest that identifies a text across training and comparison (whitespace-trimmed, UTF-8, 16 hex
    digits of SHA-256): how `compare` finds items a specialist was trained on."""
    import hashlib

    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def is_missing(value) -> bool:
    """None, NaN or ``pd.NA``: a value that is not there (a missing input, label or cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType"


def normalize_answer(text: str) -> str:
    """``' "Business." '`` -> ``'business'``: case, quotes, trailing punctuation and a lead-in such as
    ``Answer:`` or ``The topic is`` gone (a lead-in word alone, e.g. a label ``language``, stays)."""
    text = _LEAD_IN.sub("", text.strip())
    text = text.strip().strip("\"'`*_ ").rstrip(".!,;:").strip("\"'`*_ ")
    return re.sub(r"\s+", " ", text).casefold()


class Task:
    """One task: a name, the prediction type it returns, and how a generalist is asked it.

    Subclasses override `label_space`, `parse` and `default_prompt` where they need to.
    """

    name: str = ""
    description: str = ""
    prediction: type = Prediction
    #: whether a generalist answers it by rank scoring over labels
    ranked: bool = False
    #: whether empty inputs are refused (per item, as `Invalid`)
    needs_text: bool = True

    def label_space(self, labels: Sequence[str] | None) -> tuple[str, ...] | None:
        """Check and normalise the labels of one run; None for tasks without labels."""
        if labels is not None:
            raise TaskError(f"task {self.name!r} takes no labels; labels apply to classify, sentiment, langid and ner")
        return None

    def default_prompt(self) -> Prompt | None:
        """The zero-shot prompt a generalist gets, or None when the task needs none."""
        return None

    def answer(self, label: str) -> str:
        """What a generalist writes for ``label`` (rank scoring scores this text)."""
        return label

    def synonyms(self, label: str) -> tuple[str, ...]:
        """Other spellings of ``label`` a generated answer may use."""
        return ()

    def normalize(self, text):
        """The input as backends get it (see `normalize_input`); checked with `problem` after this."""
        return normalize_input(text)

    def problem(self, text) -> str | None:
        """Why the input ``text`` cannot be run (it becomes an `Invalid` prediction), or None.

        Missing values (None, NaN, ``pd.NA``) and non-strings are problems of their item only."""
        if is_missing(text):
            return f"missing input ({text}): there is no text to predict from"
        if not isinstance(text, str):
            return f"not a string: {type(text).__name__} {text!r:.60}; every input must be a str"
        if self.needs_text and not text.strip():
            return "empty text: there is nothing to predict from"
        if len(text) > MAX_CHARS:
            return f"text of {len(text):,} characters is over the {MAX_CHARS:,} a model is given; split it"
        return None

    def parse(self, raw: str, text: str, labels: tuple[str, ...] | None) -> Prediction:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<specnb task {self.name!r}: {self.description}>"


class LabelTask(Task):
    """A task whose answer is one label of a label space, with a probability."""

    prediction = Label
    ranked = True
    default_labels: tuple[str, ...] | None = None

    #: what valid labels look like, for errors (tasks with a `canonical` spelling set it)
    label_kind: str = ""
    #: what two labels with one `canonical` spelling share, for errors
    same_kind: str = "label"

    def canonical(self, label: str) -> str | None:
        """The task's spelling of ``label`` (``'POS'`` -> ``'positive'``), None if it is no label of
        the task; classify takes any label as written."""
        return label

    def label_space(self, labels):
        if labels is None:
            if self.default_labels is None:
                raise TaskError(
                    f"task {self.name!r} needs labels: pass labels=[...] with at least two candidate labels, "
                    "e.g. labels=['business', 'sport', 'tech']"
                )
            return self.default_labels
        checked = _check_labels(self.name, labels)
        mapped = [self.canonical(x) for x in checked]
        bad = [x for x, m in zip(checked, mapped) if m is None]
        if bad:
            raise TaskError(f"{self.name} labels must be {self.label_kind}; {bad} are not")
        if len(set(mapped)) < len(mapped):
            raise TaskError(
                f"{self.name} labels {list(checked)} name the same {self.same_kind} twice ({mapped}); give each once"
            )
        return tuple(mapped)

    def parse(self, raw, text, labels):
        """Read a generated answer as one of ``labels``: the whole answer, or its first words."""
        answer = normalize_answer(raw)
        by_answer = {}
        for label in labels:
            for spelling in (label, self.answer(label), *self.synonyms(label)):
                by_answer.setdefault(normalize_answer(spelling), label)
        by_answer.pop("", None)
        if answer in by_answer:
            return Label(by_answer[answer], None)
        for spelling in sorted(by_answer, key=len, reverse=True):  # the longest label that starts the answer
            if re.match(re.escape(spelling) + r"(?!\w)", answer):
                return Label(by_answer[spelling], None)
        named = only_named(answer, [(k, v) for k, v in by_answer.items() if len(k) > 2])
        if named is not None:  # "This article is about sport."
            return Label(named, None)
        shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
        return Invalid(raw, f"the answer is not one of the labels ({shown})")


def only_named(answer: str, spellings) -> str | None:
    """The one label whose spelling appears in ``answer`` as a whole word (or words), None when no label or
    more than one does (``"English, not French"`` names two: no answer is read from it)."""
    found = {label for spelling, label in spellings if re.search(r"(?<!\w)" + re.escape(spelling) + r"(?!\w)", answer)}
    return found.pop() if len(found) == 1 else None


def _check_labels(task: str, labels) -> tuple[str, ...]:
    if isinstance(labels, (str, bytes, bytearray)) or not hasattr(labels, "__iter__") or getattr(labels, "ndim", 1) != 1:
        raise TaskError(f"labels for {task!r} must be a list of strings, got {type(labels).__name__} {labels!r:.80}")
    out = []
    for label in list(labels):
        if not isinstance(label, str) or not label.strip():
            raise TaskError(f"labels for {task!r} must be non-empty strings; got {label!r:.80}")
        out.append(label.strip())
    folded = [x.casefold() for x in out]
    duplicates = sorted({x for x in out if folded.count(x.casefold()) > 1})
    if duplicates:
        raise TaskError(f"labels for {task!r} repeat {duplicates} (labels are compared without case); give each once")
    if len(out) < 2:
        raise TaskError(f"task {task!r} needs at least two labels to choose from, got {out}")
    return tuple(out)
