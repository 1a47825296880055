"""generate: free text, the generalist's own task."""

from __future__ import annotations

from .base import Task
from .types import Generation

__all__ = ["Generate", "GENERATE"]


class Generate(Task):
    name = "generate"
    description = "free text"
    prediction = Generation
    needs_text = False

    def parse(self, raw, text, labels):
        return Generation(raw.strip())


GENERATE = Generate()
