"""`Plan`: how one source is loaded (decided by `specnb.backends.resolve` or, for endpoints, `endpoint_load`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .._catalog import CatalogEntry
from .base import Backend

__all__ = ["Plan", "slug"]


@dataclass
class Plan:
    """How to load one source."""

    key: str  # identity: the same key and settings give the same handle
    source: str  # shown to the user
    backend: str
    alias: str  # default alias
    tasks: tuple[str, ...]  # tasks it can serve
    task: str  # default task
    role: str
    cpu_only: bool
    make: Callable[[str, str, str | None], Backend]
    estimate: Callable[[str | None], int | None]  # weight bytes for a dtype, before loading
    entry: CatalogEntry | None = None
    device: str | None = None  # where it must run, whatever was asked (an endpoint: "remote")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", text).strip("-").lower() or "model"


