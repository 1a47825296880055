"""What a generalist reads, in token ids: shared by the in-kernel causal LM (`specnb.backends.causal`) and the
endpoint models (`specnb.backends.endpoint`), so that the same model scored in the kernel and through a server
reads the same prompts and scores the same label tokens.

Only a tokenizer is needed here, never the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..tasks import Invalid, Label, Prompt, get_task

__all__ = ["end_token", "fit", "candidate_tokens", "RankInputs", "rank_inputs", "no_room", "label_from_scores"]


def end_token(tokenizer) -> int | None:
    """The token that closes an answer: the chat template's end of turn, else EOS."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, str):
        vocab = tokenizer.get_vocab()
        for text in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
            if text in template and text in vocab:
                return vocab[text]
    return tokenizer.eos_token_id


def candidate_tokens(tokenizer, answers: Sequence[str], end: int | None) -> list[list[int]]:
    """Token ids of each candidate answer. When one candidate's tokens begin another's (``sport`` /
    ``sports``), the end-of-answer token is appended to all, so the shorter one has to *end* there."""
    tokens = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    for i, t in enumerate(tokens):
        if not t:
            raise InputError(f"label {answers[i]!r} has no tokens for this model's tokenizer, so it cannot be scored; "
                             "give every label some visible text")
    clash = any(i != j and b[: len(a)] == a for i, a in enumerate(tokens) for j, b in enumerate(tokens))
    if clash and end is not None:
        tokens = [t + [end] for t in tokens]
    return tokens


def fit(tokenizer, texts, suffix: str, room: int) -> list[list[int] | None]:
    """Token ids of ``text + suffix`` per text, the text cut so the whole takes at most ``room`` tokens (None
    when even the suffix does not fit). Texts that fit are tokenized whole, exactly as a plain call would."""
    ids = tokenizer([t + suffix for t in texts], add_special_tokens=False)["input_ids"]
    suffix_ids = None
    for i, row in enumerate(ids):
        if len(row) <= room:
            continue
        if suffix_ids is None:
            suffix_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"]
        keep = room - len(suffix_ids)
        ids[i] = tokenizer(texts[i], add_special_tokens=False)["input_ids"][:keep] + suffix_ids if keep > 0 else None
    return ids


def no_room(used: int, context: int) -> Invalid:
    return Invalid("", f"the prompt alone takes {used} of the model's {context} tokens; no room is left for the "
                       "text (shorten the prompt or its examples)")


@dataclass
class RankInputs:
    """Rank scoring of one run in token ids: ``prefix`` (shared by every item), per item its tokens after the
    prefix (None: no room), and each label's candidate tokens."""

    prefix: list[int]
    items: list[list[int] | None]
    candidates: list[list[int]]


def rank_inputs(tokenizer, task: str, prompt: Prompt | None, labels: tuple[str, ...], texts,
                context_length: int) -> RankInputs:
    """The token ids rank scoring reads: the prompt's shared part, each text (cut to fit ``context_length``
    with the longest candidate) with the part after it, and every label's answer tokens."""
    spec = get_task(task)
    prompt = prompt or spec.default_prompt()
    prefix_text, suffix = prompt.parts(tokenizer, labels, spec.answer)
    prefix = tokenizer(prefix_text, add_special_tokens=False)["input_ids"]
    candidates = candidate_tokens(tokenizer, [prompt.continuation(spec.answer(label)) for label in labels],
                                  end_token(tokenizer))
    room = context_length - len(prefix) - max(len(c) for c in candidates)
    return RankInputs(prefix, fit(tokenizer, texts, suffix, room), candidates)


def label_from_scores(row: list[float], labels: tuple[str, ...]) -> Label:
    """The best label of one item's log-likelihoods, its score the probability over the labels."""
    import math

    top = max(row)
    weights = [math.exp(s - top) for s in row]
    best = max(range(len(row)), key=row.__getitem__)
    return Label(labels[best], weights[best] / sum(weights))
