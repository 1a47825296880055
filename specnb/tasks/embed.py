"""embed: one vector per text (a generalist mean-pools its last hidden states)."""

from __future__ import annotations

from .base import Task
from .types import Embedding

__all__ = ["Embed", "EMBED"]


class Embed(Task):
    name = "embed"
    description = "a vector"
    prediction = Embedding
    needs_text = False


EMBED = Embed()
