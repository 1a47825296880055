"""compose: pipelines of model, route, cascade and python stages (`Pipeline`, `stage`, the cell syntax)."""

from __future__ import annotations

from .pipeline import STAGE_KINDS, Pipeline, stage
from .syntax import parse

__all__ = ["Pipeline", "stage", "parse", "STAGE_KINDS"]
