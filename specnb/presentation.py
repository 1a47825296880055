"""How results read for people: number formats, and the layout of a comparison's summary.

One place for the rules every output follows: the offline report and the notebook HTML, the text
tables of the demo and the command line, and the widgets, whose Python side formats here and sends
the texts to the browser (the front ends restate none of these rules). Pure Python: importing it
imports neither numpy, pandas nor plotly.

Every formatter takes a number (or None, NaN, inf) and returns text; an unknown value reads
`MISSING`. ``compact=True`` is the terminal style: no space before ``%``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError

__all__ = [
    "MISSING",
    "KINDS",
    "finite_or_nan",
    "significant",
    "format_bytes",
    "format_count",
    "plural",
    "format_rate",
    "format_duration",
    "format_share",
    "format_value",
    "format_interval",
    "SummaryColumn",
    "summary_columns",
    "PRICE_COLUMN",
    "best_positions",
    "summary_cells",
    "stage_texts",
    "stage_stats",
    "MEMORY_NOTE",
]

#: What an unknown value reads.
MISSING = "-"

#: The kinds of number `format_value` knows, and how each reads.
KINDS = {
    "score": "3 decimals: 0.779",
    "delta": "a signed difference with 3 decimals: +0.031, -0.120",
    "percent": "a 0-1 share as a percentage with one decimal: 66.7 % (compact: 66.7%)",
    "number": "3 significant digits, thousands separated, never scientific: 0.145, 42.6, 9,394",
    "seconds": "2 decimals under 10 s, else 1: 3.41, 12.3",
    "bytes": "binary units with one decimal: 512 B, 86.7 MiB",
    "usd": "dollars, cents from $1 up, else 3 significant digits: $1.28, $0.00296",
    "price": "dollars with cents, 2 significant digits under a cent: $0.10, $0.0012",
    "count": "thousands, millions, billions with one decimal: 950, 22.7 M",
    "text": "as it is",
}


def finite_or_nan(value) -> float:
    """``value`` as a finite float, NaN when it is missing, infinite or not a number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return value if math.isfinite(value) else float("nan")


def significant(value: float, digits: int = 3) -> str:
    """``value`` with about ``digits`` significant digits, thousands separated, never in scientific notation."""
    if value == 0:
        return "0"
    places = min(max(digits - 1 - math.floor(math.log10(abs(value))), 0), 9)
    return f"{value:,.{places}f}"


def format_bytes(n) -> str:
    """``1536`` -> ``'1.5 KiB'``; `MISSING` for None or NaN."""
    n = finite_or_nan(n)
    if math.isnan(n):
        return MISSING
    sign = "-" if n < 0 else ""
    n = abs(n)
    unit = "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            break
        n /= 1024
    return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"


def format_count(n) -> str:
    """A count of things (parameters): ``950``, ``1.5 k``, ``22.7 M``, ``1.1 B``."""
    n = finite_or_nan(n)
    if math.isnan(n):
        return MISSING
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def plural(n: int, noun: str) -> str:
    """A count and its noun, thousands separated: ``1 item``, ``0 items``, ``1,234 stages``."""
    n = int(n)
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def format_rate(per_second) -> str:
    """Items per second: ``12,345/s``, ``48.2/s``."""
    value = finite_or_nan(per_second)
    if math.isnan(value):
        return MISSING
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def format_duration(seconds) -> str:
    """A duration with its unit: ``830 µs``, ``12.4 ms``, ``3.21 s``."""
    value = finite_or_nan(seconds)
    if math.isnan(value):
        return MISSING
    if value < 1e-3:
        return f"{value * 1e6:,.0f} µs"
    if value < 1:
        return f"{value * 1e3:,.1f} ms"
    return f"{value:,.2f} s"


def format_share(share, digits: int = 0) -> str:
    """A 0-1 share of a whole as a percentage without a space: ``42%``, ``42.0%``."""
    value = finite_or_nan(share)
    if math.isnan(value):
        return MISSING
    return f"{value * 100:.{digits}f}%"


def format_value(value, kind: str, *, compact: bool = False) -> str:
    """``value`` as people read it, by ``kind`` (one of `KINDS`); `MISSING` when it is unknown."""
    if kind == "text":
        return MISSING if value is None or value == "" else str(value)
    number = finite_or_nan(value)
    if math.isnan(number):
        return MISSING
    if kind == "score":
        return f"{number:.3f}"
    if kind == "delta":
        return f"{number:+.3f}".replace("+0.000", "0.000").replace("-0.000", "0.000")
    if kind == "percent":
        return f"{number * 100:.1f}{'' if compact else ' '}%"
    if kind == "usd":
        return f"${number:,.2f}" if number >= 1 else f"${significant(number)}"
    if kind == "price":
        return f"${number:,.2f}" if number >= 0.01 or number == 0 else f"${significant(number, 2)}"
    if kind == "bytes":
        return format_bytes(number)
    if kind == "seconds":
        return f"{number:,.1f}" if number >= 10 else f"{number:.2f}"
    if kind == "count":
        return format_count(number)
    if kind == "number":
        return significant(number)
    raise InputError(f"unknown number kind {kind!r}; kinds: {', '.join(KINDS)}")


def format_interval(value, low, high, kind: str = "score", *, compact: bool = False) -> tuple[str, str | None]:
    """(``value`` as text, its 95 % bounds as `` [low, high]`` or None when they are unknown)."""
    text = format_value(value, kind, compact=compact)
    low, high = finite_or_nan(low), finite_or_nan(high)
    if text == MISSING or math.isnan(low) or math.isnan(high):
        return text, None
    return text, f" [{format_value(low, kind, compact=compact)}, {format_value(high, kind, compact=compact)}]"


# -- a comparison's summary ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SummaryColumn:
    """One column of a comparison's summary as people see it.

    Attributes
    ----------
    key : str
        The column of `Comparison.summary` (an interval column also reads ``<key>_low`` / ``<key>_high``).
    label : str
        Its header in HTML and in the compare view.
    kind : str
        How its values read (`KINDS`), or ``interval``: a score with its 95 % bootstrap bounds, or
        ``delta_interval``: a difference with its bounds.
    better : str or None
        ``high`` or ``low``: which end is best (that cell is marked); None for text.
    short : str
        Its header in text tables (terminals are narrow).
    short_kind : str or None
        The kind in text tables when it differs (there accuracy reads as a percentage).
    price_key : str or None
        The summary column holding the price per hour a value is computed at, noted behind it
        (`` at $0.10/h``).
    """

    key: str
    label: str
    kind: str
    better: str | None
    short: str
    short_kind: str | None = None
    price_key: str | None = None

    @property
    def interval(self) -> bool:
        return self.kind in ("interval", "delta_interval")


_QUALITY = {
    "f1": (SummaryColumn("f1", "F1", "interval", "high", "F1"),
           SummaryColumn("precision", "precision", "interval", "high", "precision"),
           SummaryColumn("recall", "recall", "interval", "high", "recall")),
    "accuracy": (SummaryColumn("accuracy", "accuracy", "interval", "high", "accuracy", short_kind="percent"),
                 SummaryColumn("macro_f1", "macro-F1", "interval", "high", "macro F1")),
}
#: Against the reference model (`Comparison.reference`): the headline metric's paired difference, the
#: verdict at 95 %, and how well the scores are calibrated.
_VERDICT = {
    "f1": SummaryColumn("delta", "Δ F1 vs reference", "delta_interval", None, "Δ F1"),
    "accuracy": SummaryColumn("delta", "Δ accuracy vs reference", "delta_interval", None, "Δ acc"),
}
_VERDICT_COLUMNS = (SummaryColumn("verdict", "verdict", "text", None, "verdict"),
                    SummaryColumn("ece", "ECE", "score", "low", "ECE"))
_MEASURES = (
    SummaryColumn("valid", "valid", "percent", "high", "valid"),
    SummaryColumn("p50_ms", "p50 ms", "number", "low", "p50 ms"),
    SummaryColumn("p95_ms", "p95 ms", "number", "low", "p95 ms"),
    SummaryColumn("items_per_s", "items/s", "number", "high", "items/s"),
    SummaryColumn("load_s", "load s", "seconds", "low", "load s"),
    SummaryColumn("weight_bytes", "weights", "bytes", "low", "weights"),
    SummaryColumn("run_peak_bytes", "run peak", "bytes", "low", "run peak"),
    SummaryColumn("usd_per_1m", "$ per 1M items", "usd", "low", "$/1M items", price_key="price_per_hour"),
)
#: The price per device-hour a cost is computed at: a note behind the cost in HTML, a column in text tables.
PRICE_COLUMN = SummaryColumn("price_per_hour", "$ per hour", "price", None, "$/h")


def summary_columns(quality_column: str | None) -> list[SummaryColumn]:
    """The summary's numeric columns in the order HTML shows them: quality first (with gold labels:
    accuracy and macro-F1, or for ner F1, precision and recall), then validity, latency, throughput,
    load time, memory and cost; with gold labels also the difference from the reference model, the
    verdict and the calibration error. ``quality_column`` is `Comparison.quality_column`."""
    if quality_column not in _QUALITY:
        return list(_MEASURES)
    return [*_QUALITY[quality_column], _VERDICT[quality_column], *_VERDICT_COLUMNS, *_MEASURES]


def best_positions(texts: list[str], values: list[float], better: str | None) -> set[int]:
    """Positions showing the best value, when there is a choice: the known values whose shown text is the
    top one. Nothing is marked when fewer than two values are known or all show the same."""
    known = [i for i, v in enumerate(values) if not math.isnan(v)]
    if better is None or len(known) < 2:
        return set()
    pick = max if better == "high" else min
    top = texts[pick(known, key=lambda i: values[i])]
    best = {i for i in known if texts[i] == top}
    return set() if len(best) == len(known) else best


def summary_cells(rows: list[dict], columns: list[SummaryColumn], *, compact: bool = False,
                  price_note: bool = True) -> list[list[dict]]:
    """Each summary row's cells as people read them: per row (a dict of summary values), per column,
    ``{"text", "note", "best"}``. ``note`` holds an interval's bounds (`` [0.729, 0.829]``) or, behind a
    cost, the price per hour it assumes (`` at $0.10/h``; ``price_note=False`` leaves it off); ``best``
    marks the best value of a column (see `best_positions`)."""
    cells: list[list[dict]] = [[] for _ in rows]
    for column in columns:
        kind = (column.short_kind if compact else None) or column.kind
        values = [finite_or_nan(row.get(column.key)) if column.kind != "text" else float("nan") for row in rows]
        shown = []
        for row in rows:
            if column.interval:
                number_kind = {"interval": "score", "delta_interval": "delta"}.get(kind, kind)
                shown.append(format_interval(row.get(column.key), row.get(f"{column.key}_low"),
                                             row.get(f"{column.key}_high"), number_kind, compact=compact))
            else:
                shown.append((format_value(row.get(column.key), kind, compact=compact), None))
        best = best_positions([text for text, _ in shown], values, column.better)
        for i, (row, (text, note)) in enumerate(zip(rows, shown)):
            if column.price_key and price_note:
                price = format_value(row.get(column.price_key), "price")
                note = None if price == MISSING else f" at {price}/h"
            cells[i].append({"text": text, "note": note, "best": i in best})
    return cells


# -- the model panel ---------------------------------------------------------------------------------------
#: What the model panel's memory column measures (its header's tooltip).
MEMORY_NOTE = ("Memory measured while the model loaded: how much the device's allocated memory grew on a GPU, "
               "the process's resident memory (RSS) on the CPU. The bar is its share of the device's budget "
               "(of its total without a budget). "
               "It can be below the weights: memory-mapped weights count only once their pages are read, "
               "and memory the process already held (freed by an earlier model) is reused without growing it.")


# -- a pipeline stage's last run -----------------------------------------------------------------------------
def stage_texts(items, items_per_s, seconds, share, fallback_share, weight_bytes) -> dict:
    """A stage's last-run statistics as texts (None where there is nothing to say): ``items`` (``12 items``),
    ``rate`` (``340/s``), ``share`` (``42%``), ``share_detail`` (``42.0% of the last run's time (1.2 ms)``),
    ``fallback`` (``25% to the fallback``) and ``weights`` (``1.2 MiB``)."""
    ran = items is not None
    share = finite_or_nan(share)
    rate = finite_or_nan(items_per_s)
    detail = "did not run"
    if not math.isnan(share):
        took = finite_or_nan(seconds)
        detail = f"{format_share(share, 1)} of the last run's time" + (
            "" if math.isnan(took) else f" ({format_duration(took)})")
    fallback = finite_or_nan(fallback_share)
    weights = finite_or_nan(weight_bytes)
    return {
        "items": plural(items, "item") if ran else None,
        "rate": format_rate(rate) if ran and not math.isnan(rate) else None,
        "share": format_share(share) if not math.isnan(share) else None,
        "share_detail": detail,
        "fallback": f"{format_share(fallback)} to the fallback" if ran and not math.isnan(fallback) else None,
        "weights": format_bytes(weights) if weights > 0 else None,
    }


def stage_stats(texts: dict) -> str:
    """One line from `stage_texts`: ``12 items · 340/s · 42% of the time · 25% to the fallback · weights 1.2 MiB``
    (or ``did not run``)."""
    if texts["items"] is None:
        return "did not run"
    parts = [texts["items"] + (f" · {texts['rate']}" if texts["rate"] else "")]
    if texts["share"]:
        parts.append(f"{texts['share']} of the time")
    if texts["fallback"]:
        parts.append(texts["fallback"])
    if texts["weights"]:
        parts.append(f"weights {texts['weights']}")
    return " · ".join(parts)
