"""Prompts a generalist answers a task with: visible, overridable, zero- or few-shot.

A `Prompt` is a template, not a string: the instruction (which may name ``{labels}``), how the
input is shown (``{text}``), optional worked examples, and the text the answer starts with. The
instruction and examples come *before* the input, so every item of a run shares them and a
generalist computes them once (see `specnb.backends.causal`).

    >>> p = Prompt("Classify the text as one of: {labels}. Answer with the label only.")
    >>> p.message("Great match!", ["sport", "tech"])
    'Classify the text as one of: sport, tech. Answer with the label only.\\n\\nText:\\nGreat match!'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from ..errors import InputError

__all__ = ["Prompt", "SENTINEL"]

# Stands for the input while a chat template is rendered, so the rendered text can be cut into the
# part every item shares and the part around the input.
SENTINEL = "<<specnb:text>>"


@dataclass(frozen=True)
class Prompt:
    """How a generalist is asked one task.

    Attributes
    ----------
    instruction : str
        What to do. ``{labels}`` is replaced by the label space, comma-separated.
    input : str
        How each input is shown; must contain ``{text}``.
    answer : str
        Text the assistant's answer starts with (rank scoring scores the label after it).
    system : str or None
        A system message, for chat templates that take one.
    examples : tuple of (text, answer) pairs
        Few-shot examples, shown after the instruction and before the input.
    """

    instruction: str
    input: str = "Text:\n{text}"
    answer: str = ""
    system: str | None = None
    examples: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise InputError("a Prompt needs a non-empty instruction string")
        if not isinstance(self.input, str) or self.input.count("{text}") != 1:
            raise InputError(f"Prompt.input must contain '{{text}}' exactly once, got {self.input!r}")
        object.__setattr__(self, "examples", _check_examples(self.examples))

    def with_examples(self, examples) -> Prompt:
        """A copy with these few-shot examples: (text, answer) pairs, dicts with ``text`` and
        ``label`` (or ``answer``), or a DataFrame with those columns."""
        return replace(self, examples=_check_examples(examples))

    def replace(self, **changes) -> Prompt:
        """A copy with some fields changed, e.g. ``prompt.replace(instruction="...")``."""
        return replace(self, **changes)

    # -- rendering --------------------------------------------------------------------------------
    def message(self, text: str, labels: Sequence[str] | None = None, answer_of: Callable[[str], str] | None = None) -> str:
        """The user message for one input."""
        answer_of = answer_of or (lambda label: label)
        instruction = self.instruction.replace("{labels}", ", ".join(answer_of(x) for x in labels or ()))
        parts = [instruction.strip()]
        if self.examples:
            shown = [f"{self.input.replace('{text}', t)}\nAnswer: {answer_of(a)}" for t, a in self.examples]
            parts.append("Examples:\n\n" + "\n\n".join(shown))
        parts.append(self.input.replace("{text}", text))
        return "\n\n".join(parts)

    def render(self, tokenizer, text: str, labels: Sequence[str] | None = None, answer_of=None) -> str:
        """The whole prompt as the model reads it, chat template applied, ending where the answer starts."""
        prefix, suffix = self.parts(tokenizer, labels, answer_of)
        return prefix + text + suffix

    def parts(self, tokenizer, labels: Sequence[str] | None = None, answer_of=None) -> tuple[str, str]:
        """(text before the input, text after it): the first is the same for every input."""
        message = self.message(SENTINEL, labels, answer_of)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            turns = [{"role": "user", "content": message}]
            if self.system:
                turns.insert(0, {"role": "system", "content": self.system})
            rendered = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        else:  # a base model: plain text
            rendered = (f"{self.system}\n\n" if self.system else "") + message + "\nAnswer: "
        if rendered.count(SENTINEL) != 1:
            raise InputError("the chat template dropped or repeated the input; this prompt cannot be used with it")
        prefix, suffix = rendered.split(SENTINEL)
        return prefix, suffix + self.answer

    def continuation(self, answer: str) -> str:
        """The text a label's answer adds after the prompt: after a lead-in such as ``The text is
        written in`` the answer is the next word (``' French'``); with no lead-in, the answer itself."""
        return " " + answer if self.answer and not self.answer[-1].isspace() else answer

    def __str__(self) -> str:
        return self.message("{text}", ["{labels}"]) + (f"\n[answer starts: {self.answer!r}]" if self.answer else "")


def _check_examples(examples) -> tuple[tuple[str, str], ...]:
    if examples is None:
        return ()
    if hasattr(examples, "to_dict") and hasattr(examples, "columns"):  # a DataFrame
        answer = "answer" if "answer" in examples.columns and "label" not in examples.columns else "label"
        missing = {"text", answer} - set(examples.columns)
        if missing:
            raise InputError(f"examples DataFrame needs columns 'text' and 'label' (or 'answer'); missing {sorted(missing)}")
        examples = list(zip(examples["text"], examples[answer]))
    if isinstance(examples, (str, bytes)) or not isinstance(examples, Iterable):
        raise InputError(f"examples must be (text, answer) pairs, got {type(examples).__name__}")
    out = []
    for i, example in enumerate(examples):
        if isinstance(example, dict):
            example = (example.get("text"), example.get("label", example.get("answer")))
        if not (isinstance(example, (tuple, list)) and len(example) == 2 and all(isinstance(x, str) for x in example)):
            raise InputError(f"example {i} is {example!r:.80}; each example must be a (text, answer) pair of strings")
        out.append((example[0], example[1]))
    return tuple(out)
