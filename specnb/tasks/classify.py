"""classify: one label from any label set the user gives (e.g. the five BBC topics)."""

from __future__ import annotations

from .base import LabelTask
from .prompts import Prompt

__all__ = ["Classify", "CLASSIFY"]


class Classify(LabelTask):
    name = "classify"
    description = "a label from a label set, with a score"

    def default_prompt(self) -> Prompt:
        return Prompt(
            "Classify the text into exactly one of these categories: {labels}.\n"
            "Answer with the category only.",
        )


CLASSIFY = Classify()
