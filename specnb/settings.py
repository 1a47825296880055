"""Settings that live for the kernel's lifetime: cache directory, memory budgets, defaults.

``specnb.config`` is the one `Settings` instance; change its attributes at any time::

    specnb.config.memory_budget["cpu"] = "4GB"     # bytes, "512MiB", "4GB", or a fraction 0.5
    specnb.config.home = "/scratch/specnb"          # else $SPECNB_HOME, else ~/.cache/specnb
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

__all__ = ["Settings", "config", "parse_size"]

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
# Share of a device's total memory a budget takes when none is set.
DEFAULT_BUDGET_FRACTION = {"cuda": 0.9, "mps": 0.5, "cpu": 0.5}


def parse_size(value: int | float | str, *, total: int | None = None) -> int:
    """Turn ``4GB``, ``512MiB``, ``1_000_000`` or a fraction of ``total`` into bytes."""
    if isinstance(value, bool):
        raise ConfigError(f"memory size {value!r} is not a size; use bytes, '4GB', '512MiB' or a fraction like 0.5")
    if isinstance(value, float) and 0 < value <= 1:
        if total is None:
            raise ConfigError(f"memory size {value!r} is a fraction but the device's total memory is unknown; give bytes")
        return int(value * total)
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", value.replace("_", ""))
        if m and m.group(2).lower() in _UNITS:
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    raise ConfigError(
        f"memory size {value!r} is not understood; use a positive number of bytes, a string such as "
        f"'4GB' or '512MiB' (units: {', '.join(u for u in _UNITS if u)}), or a fraction in (0, 1]"
    )


@dataclass
class Settings:
    """specnb's kernel-wide settings.

    Attributes
    ----------
    home : path or None
        Cache directory (GGUF conversions, later the run store). None means ``$SPECNB_HOME``,
        else ``~/.cache/specnb``; read each time, so setting the variable later works.
    memory_budget : dict
        Per device kind (``cuda``, ``mps``, ``cpu``): bytes, a size string, a fraction of the
        device's total memory, or None for the default share (cuda 0.9, mps and cpu 0.5).
    batch_size : int
        Default batch size for transformer predictions.
    max_new_tokens : int
        Most tokens a generalist writes per answer (``generate`` and ``ner``).
    token_budget : dict
        Per device kind: most padded tokens in one batch (items x longest item). Long inputs run
        in small batches and short ones in large batches, up to ``batch_size``. On the CPU, 2048: measured
        against 4096 on 2 cores, the same speed (bench/engine.py's classifier, SmolLM2 rank scoring) and a
        SmolLM2 batch's transient memory about 260 MB lower; 1024 lowers it further (the Binder notebooks
        set it).
    progress : bool
        Show a progress bar on runs that last longer than ``progress_delay`` seconds.
    progress_delay : float
        Seconds a run must last before its progress bar appears.
    price_per_hour : dict
        US dollars per device-hour, per device kind, for a comparison's cost per million items.
        Rough on-demand cloud prices (a 2-vCPU VM, one datacenter GPU); set your own.
    store_chunk : int
        Items a model predicts between two writes to the run store (what an interrupted
        comparison keeps).
    price_per_1m_tokens : dict
        US dollars per million tokens of endpoint models, by alias or served model name:
        ``{"gpt-4o-mini": {"input": 0.15, "output": 0.60}}``. An endpoint model without a price
        has no cost figure.
    share_weights : bool
        A model loaded beside others on the same device reuses their tensors wherever a parameter is
        identical (a head trained on a loaded encoder holds only its head). True by default; models run
        in inference mode. Set False before loading a model whose ``native`` module you will train.
    """

    home: str | os.PathLike | None = None
    memory_budget: dict = field(default_factory=lambda: {"cuda": None, "mps": None, "cpu": None})
    batch_size: int = 32
    max_new_tokens: int = 128
    token_budget: dict = field(default_factory=lambda: {"cuda": 65536, "mps": 16384, "cpu": 2048})
    progress: bool = True
    progress_delay: float = 2.0
    price_per_hour: dict = field(default_factory=lambda: {"cpu": 0.10, "cuda": 2.50, "mps": 0.10})
    store_chunk: int = 256
    price_per_1m_tokens: dict = field(default_factory=dict)
    share_weights: bool = True

    @property
    def cache_dir(self) -> Path:
        """The resolved cache directory (not created)."""
        if self.home is not None:
            return Path(self.home).expanduser()
        env = os.environ.get("SPECNB_HOME")
        return Path(env).expanduser() if env else Path.home() / ".cache" / "specnb"

    def tokens_per_batch(self, kind: str) -> int | None:
        """The token budget for a device kind (None: no limit)."""
        value = self.token_budget.get(kind)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"specnb.config.token_budget[{kind!r}] must be a positive int (padded tokens per batch) or "
                              f"None (no limit), got {value!r}; e.g. specnb.config.token_budget[{kind!r}] = 4096")
        return value

    def price(self, kind: str) -> float:
        """Dollars per hour of a device kind."""
        value = self.price_per_hour.get(kind)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ConfigError(
                f"specnb.config.price_per_hour[{kind!r}] must be a number of dollars per hour >= 0, got {value!r}; "
                f"e.g. specnb.config.price_per_hour[{kind!r}] = 0.10 (kinds set: {', '.join(self.price_per_hour)})"
            )
        return float(value)

    def price_for(self, kind: str, *, alias: str | None = None, override=None) -> float:
        """Dollars per hour of a model (``alias``) on a device kind: what ``override`` says when it says
        something (a number, or a mapping by model alias or device kind, the alias first), else `price`."""
        if isinstance(override, Mapping):
            value = override.get(alias, override.get(kind)) if alias is not None else override.get(kind)
        else:
            value = override
        return self.price(kind) if value is None else float(value)

    @staticmethod
    def check_token_price(value, where: str = "price_per_1m_tokens") -> dict:
        """``value`` as ``{"input": float, "output": float}`` (dollars per million tokens), or a ConfigError."""
        ok = isinstance(value, Mapping) and set(value) <= {"input", "output"} and "input" in value
        numbers = [value.get("input"), value.get("output", 0.0)] if ok else []
        if not ok or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not x >= 0 for x in numbers):
            raise ConfigError(f"{where} must be {{'input': dollars, 'output': dollars}} per million tokens (numbers "
                              f">= 0), got {value!r:.80}; e.g. {{'input': 0.15, 'output': 0.60}}")
        return {"input": float(numbers[0]), "output": float(numbers[1])}

    def token_price(self, *names) -> dict | None:
        """The dollars per million tokens set in `price_per_1m_tokens` for the first of ``names`` found."""
        if not isinstance(self.price_per_1m_tokens, Mapping):
            raise ConfigError("specnb.config.price_per_1m_tokens must be a dict by model alias or served model name, "
                              f"got {type(self.price_per_1m_tokens).__name__}")
        for name in names:
            if name is not None and name in self.price_per_1m_tokens:
                return self.check_token_price(self.price_per_1m_tokens[name],
                                              f"specnb.config.price_per_1m_tokens[{name!r}]")
        return None

    def budget_bytes(self, kind: str, total: int | None) -> int | None:
        """The budget in bytes for a device kind, given that device's total memory."""
        if kind not in DEFAULT_BUDGET_FRACTION:
            raise ConfigError(f"no memory budget for device kind {kind!r}; valid kinds: {', '.join(DEFAULT_BUDGET_FRACTION)}")
        value = self.memory_budget.get(kind)
        if value is None:
            return None if total is None else int(DEFAULT_BUDGET_FRACTION[kind] * total)
        return parse_size(value, total=total)


config = Settings()
