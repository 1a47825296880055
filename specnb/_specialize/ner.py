"""``specialize(task="ner")``: a token classifier trained from character-span labels.

Data: a text column and a label column whose cells are the entities of their text: a `specnb.Entities`, a list
of `Span`, of ``(start, end, type)`` tuples / lists (character offsets, end exclusive) or of dicts with
``start``, ``end`` and ``label`` (or ``type``); an empty list is a text without entities, None / NaN a missing
label. Everything is checked before any training: out-of-range, empty or overlapping spans and non-str types
are refused naming the row. Entity types are names as specnb's ner task spells them (letters and ``_``), the
same up to case; their space is ``labels=`` or the distinct types of the data, sorted. The tag space (the
model's ``id2label``) is ``O``, then ``B-T``, ``I-T`` for each type T in that order.

Alignment (fast tokenizers, ``return_offsets_mapping``): a token overlapping a span is ``B-T`` when it is the
first token of that span, ``I-T`` after; every other token ``O``; special tokens and padding -100 (no loss).
A span whose edges do not fall on word edges (the specialist answers word by word, as specnb's transformers
backend reads it) or that the token cut (``max_length``) leaves out is counted in ``training["alignment"]``.

Methods: ``finetune`` is `finetune.finetune` with the token-classification `Objective` (each evaluation
predicts the held-out texts as char spans; the best entity F1 is kept, ties broken by token accuracy).
``head`` fits a multinomial logistic regression (`head.fit_linear`) on the frozen encoder's last hidden state
of every non-special training token, written into the token classifier's last layer: quick, and a fair
baseline on a pretrained encoder, where finetune is usually much better. Its features are one row per token
(tokens × hidden size, in float64 during the fit), so on large data use finetune.

Held-out metrics are those of `specnb.compare` on ner: entity-level (exact start, end and type) micro
precision, recall and F1 with seeded bootstrap intervals, on predictions read back to char spans exactly as
the transformers backend reads them.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from dataclasses import dataclass

from ..errors import InputError
from ..tasks.base import is_missing, normalize_input, text_digest
from ..tasks.types import Entities, Span
from .data import TRAINED_TASKS, TrainingData, _columns, _fraction, _no_overlap, _positions
from .head import offsets_encoding, predict_entities, token_rows

__all__ = ["NerData", "prepare_ner", "bio_tags", "align", "encode_items", "fit_ner"]

_TYPE = re.compile(r"[A-Za-z][A-Za-z_]*")
_VALID = ("each entity is (start, end, type): int character offsets with 0 <= start < end <= len(text), a type "
          "named with letters and '_' (PER, LOC, WORK_OF_ART); entities of one text must not overlap; [] is a "
          "text without entities")


@dataclass
class NerData(TrainingData):
    """`TrainingData` for ner: ``labels`` holds each text's entities as sorted ``(start, end, type)`` triples,
    ``label_space`` the entity types."""

    @property
    def tags(self) -> tuple[str, ...]:
        return bio_tags(self.label_space)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for i in self.train:
            h.update(self.texts[i].encode("utf-8") + b"\x00" + json.dumps(self.labels[i]).encode("utf-8") + b"\x01")
        return h.hexdigest()[:16]

    def frame(self, which: str = "held_out"):
        """``train`` or ``held_out`` as a DataFrame: ``text``, and ``label`` holding `Entities`."""
        import pandas as pd

        index = self.held_out if which == "held_out" else self.train
        return pd.DataFrame({"text": [self.texts[i] for i in index],
                             "label": [Entities(tuple(Span(s, e, t, self.texts[i][s:e]) for s, e, t in self.labels[i]))
                                       for i in index]})


def bio_tags(types) -> tuple[str, ...]:
    """``O``, then ``B-T``, ``I-T`` for each entity type, in order."""
    return ("O", *(f"{p}-{t}" for t in types for p in ("B", "I")))


# -- reading the labels -------------------------------------------------------------------------------------
def _one(span):
    """(start, end, type) of one entity as given, or a str saying why it is not one."""
    if isinstance(span, Span):
        return span.start, span.end, span.label
    if isinstance(span, dict):
        kind = next((span[k] for k in ("label", "type", "entity_group") if k in span), None)
        return span.get("start"), span.get("end"), kind
    if hasattr(span, "tolist") and not isinstance(span, str):
        span = span.tolist()
    if isinstance(span, (tuple, list)) and len(span) == 3:
        return tuple(span)
    return f"{span!r:.60} is not (start, end, type), a dict with those keys or a specnb.Span"


def _spans(value, text: str):
    """The sorted (start, end, type) triples of one label cell; a str saying what is wrong; None when missing."""
    if is_missing(value):
        return None
    if isinstance(value, Entities):
        value = value.spans
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return f"the label is {type(value).__name__} {value!r:.60}, not a list of entities"
    out = []
    for span in value:
        got = _one(span)
        if isinstance(got, str):
            return got
        start, end, kind = got
        if not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in (start, end)):
            return f"entity {span!r:.60} has offsets that are not ints"
        start, end = int(start), int(end)
        if not isinstance(kind, str) or not _TYPE.fullmatch(kind.strip()) or kind.strip().upper() == "O":
            return f"entity {span!r:.60} has type {kind!r:.30}, not a name of letters and '_' (and not 'O')"
        if not 0 <= start < end <= len(text):
            return f"entity {span!r:.60} is out of range or empty (the text has {len(text)} characters)"
        if not text[start:end].strip():
            return f"entity {span!r:.60} covers whitespace only"
        out.append((start, end, kind.strip()))
    out.sort()
    for a, b in zip(out, out[1:]):
        if b[0] < a[1]:
            return f"entities {a} and {b} overlap"
    return out


def _read(texts, raw, what: str):
    """(texts, entity triples per text) checked; `InputError` counting and naming every bad row."""
    if len(texts) != len(raw):
        raise InputError(f"{what} has {len(texts)} texts and {len(raw)} labels; give one label (a list of entities) "
                         "per text")
    texts = [normalize_input(t) for t in texts]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise InputError(f"{what}: {len(bad)} text(s) are missing, empty or not str (positions {_positions(bad)}); "
                         "fix or drop those rows first (nothing is dropped silently)")
    spans = [_spans(normalize_input(y), t) for t, y in zip(texts, raw)]
    missing = [i for i, s in enumerate(spans) if s is None]
    if missing:
        raise InputError(f"{what}: {len(missing)} label(s) are missing (None/NaN) at positions {_positions(missing)}; "
                         "give every text its entities ([] for a text without any), or drop those rows first")
    wrong = [(i, s) for i, s in enumerate(spans) if isinstance(s, str)]
    if wrong and all(isinstance(y, str) for y in raw):
        raise InputError(f"{what}: every label is a str ({raw[0]!r:.40}, ...), as a label task's are: for those, "
                         f"task= must be one of {', '.join(TRAINED_TASKS)}; ner labels are each text's entities: {_VALID}")
    if wrong:
        shown = "; ".join(f"row {i}: {s}" for i, s in wrong[:5]) + ("; ..." if len(wrong) > 5 else "")
        raise InputError(f"{what}: {len(wrong)} row(s) have invalid entities ({shown}); {_VALID}")
    return texts, spans


def _types(spans, given) -> tuple[str, ...]:
    """The entity-type space: ``labels=`` as given, or the distinct types of the data sorted (one spelling per
    type up to case)."""
    if given is None:
        folded: dict[str, str] = {}
        for kind in sorted({t for row in spans for _, _, t in row}):
            folded.setdefault(kind.casefold(), kind)
        if not folded:
            raise InputError("the training data holds no entity at all; a ner specialist needs labelled entities")
        return tuple(sorted(folded.values()))
    if isinstance(given, str) or not hasattr(given, "__iter__"):
        raise InputError(f"labels= is the list of entity types, e.g. ['PER', 'LOC']; got {given!r:.60}")
    space = []
    for kind in given:
        if not isinstance(kind, str) or not _TYPE.fullmatch(kind.strip()) or kind.strip().upper() == "O":
            raise InputError(f"labels=: entity type {kind!r:.40} is not a name of letters and '_' (and not 'O'), "
                             "e.g. ['PER', 'LOC']")
        if kind.strip().casefold() in {x.casefold() for x in space}:
            raise InputError(f"labels=: entity type {kind!r:.40} is given twice (types are the same up to case)")
        space.append(kind.strip())
    if not space:
        raise InputError("labels= is empty; a ner specialist needs at least one entity type, e.g. ['PER', 'LOC']")
    return tuple(space)


def _in_space(spans, space, what: str):
    folded = {x.casefold(): x for x in space}
    outside = sorted({t for row in spans for _, _, t in row if t.casefold() not in folded})
    if outside:
        raise InputError(f"{what}: entity types {outside[:10]} are not in labels= {list(space)}; add them to labels= "
                         "or fix the data")
    return [tuple((s, e, folded[t.casefold()]) for s, e, t in row) for row in spans]


def _split(texts: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded shuffle of the distinct texts (copies of a text stay on one side), ``fraction`` of them held out
    (at least one, leaving one)."""
    import numpy as np

    groups: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        groups.setdefault(text_digest(t), []).append(i)
    units = list(groups.values())
    if len(units) < 2:
        raise InputError("eval= holds out a share of the texts, but the data has one distinct text; give more texts "
                         "or eval=None")
    order = [units[j] for j in np.random.default_rng(seed).permutation(len(units))]
    k = min(len(units) - 1, max(1, round(fraction * len(units))))
    return sorted(i for u in order[k:] for i in u), sorted(i for u in order[:k] for i in u)


def prepare_ner(data, *, text: str = "text", label: str = "label", labels=None, eval=0.2, seed: int = 0) -> NerData:
    """`NerData` from ``data`` (see the module docstring); `InputError` naming what is wrong, before training."""
    if type(data).__name__ == "Comparison":
        raise InputError("a Comparison as data= trains on a teacher's answers, which ner does not do yet; give a "
                         "DataFrame with text and label (entities) columns, or a (texts, entities) pair")
    kind = _fraction(eval)
    texts, spans = _read(*_columns(data, text, label, "data"), "data")
    space = _types(spans, labels)
    spans = _in_space(spans, space, "data")
    if kind == "given":
        eval_texts, eval_spans = _read(*_columns(eval, text, label, "eval"), "eval")
        _no_overlap(texts, eval_texts)
        texts, spans, given = texts + eval_texts, spans + _in_space(eval_spans, space, "eval"), len(eval_texts)
        train, held = list(range(len(texts) - given)), list(range(len(texts) - given, len(texts)))
        split = {"kind": "given", "size": given}
    elif kind == "fraction":
        train, held = _split(texts, eval, seed)
        split = {"kind": "shuffled", "fraction": eval, "seed": seed}
    else:
        train, held, split = list(range(len(texts))), [], {"kind": "none"}
    if not any(spans[i] for i in train):
        raise InputError("the training texts hold no entity (after the held-out split); a ner specialist needs "
                         "labelled entities to learn from")
    split.update({"train": len(train), "held_out": len(held)})
    return NerData(texts=texts, labels=spans, label_space=space, train=train, held_out=held, split=split)


# -- tokens -------------------------------------------------------------------------------------------------
def align(offsets, word_ids, spans, index: dict[str, int]) -> tuple[list[int], dict]:
    """Tag ids of one text's tokens (see the module docstring), and counts: ``inexact`` spans whose edges are
    not word edges, ``cut`` spans that no token covers (past the token cut)."""
    tags, seen, covered = [], set(), {}
    j = 0
    for (start, end), word in zip(offsets, word_ids):
        if word is None or end <= start:
            tags.append(-100)
            continue
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        if j < len(spans) and spans[j][0] < end:
            kind = spans[j][2]
            tags.append(index[f"I-{kind}"] if j in seen else index[f"B-{kind}"])
            seen.add(j)
            covered.setdefault(j, set()).add(word)
        else:
            tags.append(index["O"])
    extent: dict = {}
    for (start, end), word in zip(offsets, word_ids):
        if word is not None and end > start:
            low, high = extent.get(word, (start, end))
            extent[word] = (min(low, start), max(high, end))
    inexact = sum(spans[j][0] != min(extent[w][0] for w in words) or spans[j][1] != max(extent[w][1] for w in words)
                  for j, words in covered.items())
    return tags, {"inexact": inexact, "cut": len(spans) - len(covered)}


def encode_items(tags: tuple[str, ...]):
    """`finetune.Objective.encode` for ner: the targets are each text's entity triples."""
    index = {t: i for i, t in enumerate(tags)}

    def encode(tokenizer, texts, targets, max_length, accepted) -> list[dict]:
        if not texts:
            return []
        encoded = offsets_encoding(tokenizer, texts, max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded and k in accepted]
        return [{**{k: encoded[k][i] for k in keys},
                 "labels": align(encoded["offset_mapping"][i], encoded.word_ids(i), targets[i], index)[0]}
                for i in range(len(texts))]

    return encode


def _alignment(tokenizer, texts, spans, tags, max_length: int) -> dict:
    encoded = offsets_encoding(tokenizer, texts, max_length)
    index = {t: i for i, t in enumerate(tags)}
    counts = [align(encoded["offset_mapping"][i], encoded.word_ids(i), spans[i], index)[1] for i in range(len(texts))]
    return {"entities": sum(len(s) for s in spans), "inexact": sum(c["inexact"] for c in counts),
            "cut": sum(c["cut"] for c in counts)}


def _keys(predicted) -> list[set]:
    """(start, end, type) sets; an `Invalid` answer (out of memory) finds nothing, as in `specnb.compare`."""
    return [{(s.start, s.end, s.label) for s in p.spans} if isinstance(p, Entities) else set() for p in predicted]


def _scores(gold, predicted, seed: int) -> dict:
    """Entity-level micro precision / recall / F1 with bootstrap intervals, as `specnb.compare` scores ner."""
    from .._compare.metrics import entity_metrics

    if not gold:
        return {}
    found = entity_metrics([set(g) for g in gold], _keys(predicted), seed=seed)
    return {k: {"value": found[k], "low": found[f"{k}_low"], "high": found[f"{k}_high"]}
            for k in ("f1", "precision", "recall")}


# -- training -----------------------------------------------------------------------------------------------
def _fit_head(classifier, tokenizer, prepared, tags, *, device, settings, budget, bar) -> dict:
    """Features of every training token (what the last linear layer reads), a logistic regression on them, the
    regression written into that layer."""
    import time

    import torch

    from .head import final_linear, fit_linear, set_head

    started = time.perf_counter()
    index = {t: i for i, t in enumerate(tags)}
    texts = [prepared.texts[i] for i in prepared.train]
    final = final_linear(classifier, len(tags))
    captured: list = []
    hook = final.register_forward_pre_hook(lambda module, args: captured.append(args[0]))

    def output(model, inputs, batch, encoded):
        captured.clear()
        model(**inputs)
        hidden = captured[0].float().cpu()
        return [hidden[row, :len(encoded["input_ids"][i])] for row, i in enumerate(batch)]

    try:
        rows, encoded = token_rows(classifier, tokenizer, texts, output, device=device,
                                   batch_size=settings["batch_size"], token_budget=budget,
                                   max_length=settings["max_length"], progress=bar, desc="features", kind=torch.Tensor)
    finally:
        hook.remove()
    features, targets = [], []
    for k, i in enumerate(prepared.train):
        tagged = align(encoded["offset_mapping"][k], encoded.word_ids(k), prepared.labels[i], index)[0]
        keep = [p for p, t in enumerate(tagged) if t != -100]
        features.append(rows[k][keep])
        targets.extend(tagged[p] for p in keep)
    seconds = time.perf_counter() - started
    fit_started = time.perf_counter()
    weight, bias, losses = fit_linear(torch.cat(features).clone(), targets, len(tags), c=settings["c"])
    set_head(classifier, weight, bias, len(tags))
    return {"feature_seconds": seconds, "fit_seconds": time.perf_counter() - fit_started, "tokens": len(targets),
            "items_per_s": len(texts) / seconds if seconds else None, "history": {"loss": losses}}


def _objective(classifier, tokenizer, prepared, tags, *, device, settings, budget):
    """The token-classification `finetune.Objective`: each evaluation predicts the held-out texts as char spans;
    the best checkpoint is the best entity F1, ties (frequent on a small held-out set) broken by token accuracy."""
    import numpy as np

    from .._compare.metrics import entity_counts, entity_scores
    from .finetune import Objective

    held_texts = [prepared.texts[i] for i in prepared.held_out]
    gold = [set(prepared.labels[i]) for i in prepared.held_out]

    def compute(prediction):
        predicted = predict_entities(classifier, tokenizer, held_texts, device=device,
                                     batch_size=settings["batch_size"] * 2, token_budget=budget,
                                     max_length=settings["max_length"])
        precision, recall, f1 = entity_scores(entity_counts(gold, _keys(predicted)).sum(axis=0))
        labels, guesses = np.asarray(prediction.label_ids), np.asarray(prediction.predictions)
        mask = labels != -100
        accuracy = float((guesses[mask] == labels[mask]).mean()) if mask.any() else float("nan")
        return {"f1": float(f1), "precision": float(precision), "recall": float(recall), "token_accuracy": accuracy,
                "selection": float(f1) + 1e-9 * (accuracy if accuracy == accuracy else 0.0)}

    def collator(tokenizer, multiple):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=multiple)

    return Objective(encode=encode_items(tags), collator=collator, compute_metrics=compute,
                     preprocess=lambda logits, labels: logits.argmax(-1), metric="selection",
                     reported=("f1", "precision", "recall", "token_accuracy"))


def fit_ner(model, backend, prepared: NerData, *, settings: dict, monitor, out, bar, budget):
    """Build the token classifier, train it (``settings["method"]``) and score it on the held-out texts:
    ``(classifier, details, metrics)``."""
    import os

    from . import head

    tags = prepared.tags
    device, max_length, held = model.device, settings["max_length"], prepared.held_out
    alignment = _alignment(backend.tokenizer, prepared.texts, prepared.labels, tags, max_length)
    if alignment["inexact"] or alignment["cut"]:
        monitor.on_event({"step": 0, "elapsed": monitor.elapsed, "text": (
            f"{alignment['inexact']} of {alignment['entities']} entities do not start and end on word edges and "
            f"{alignment['cut']} lie past max_length={max_length}; the specialist answers word by word")})
    classifier = head.build_token_classifier(backend.source, tags, device=device, allow_pickle=backend.allow_pickle)
    if settings["method"] == "head":
        from ..backends.weights import share_frozen_base

        share_frozen_base(classifier, backend)  # the encoder stays frozen: the loaded base's, not a second copy
        details = _fit_head(classifier, backend.tokenizer, prepared, tags, device=device, settings=settings,
                            budget=budget, bar=bar)
    else:
        from .finetune import finetune

        work = out.parent / f".{out.name}.checkpoints-{os.getpid()}"
        details = finetune(classifier, backend.tokenizer, prepared.texts, prepared.labels, train=prepared.train,
                           held=held, n_labels=len(tags), epochs=settings["epochs"],
                           learning_rate=settings["learning_rate"], batch_size=settings["batch_size"],
                           max_length=max_length, seed=settings["seed"], patience=settings["patience"], device=device,
                           dtype=settings["dtype"], monitor=monitor, work=work,
                           objective=_objective(classifier, backend.tokenizer, prepared, tags, device=device,
                                                settings=settings, budget=budget))
        details.pop("best_selection", None)
        details["best_f1"] = details.pop("best_scores", {}).get("f1")
        details["history"] = {"steps": list(monitor.steps), "evals": list(monitor.evals),
                              "events": list(monitor.events)}
    predicted = predict_entities(classifier, backend.tokenizer, [prepared.texts[i] for i in held], device=device,
                                 batch_size=settings["batch_size"] * 2, token_budget=budget, max_length=max_length,
                                 progress=bar)
    details["alignment"] = alignment
    return classifier, details, _scores([prepared.labels[i] for i in held], predicted, settings["seed"])
