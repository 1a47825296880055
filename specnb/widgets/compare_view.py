"""The compare view: summary table, plotly charts and a paginated disagreement browser.

Only the visible page of items crosses the comm; filters, sort and paging run here on the
`Comparison`'s table, so a 100,000-item comparison sends what one page holds.
"""

from __future__ import annotations

import math

import numpy as np
import traitlets as t

from .._compare.comparison import Comparison
from .._compare.report import snapshot_html
from ..errors import InputError
from ..presentation import SummaryColumn, finite_or_nan, plural, summary_cells, summary_columns
from ..tasks.base import is_missing
from ._base import Snapshot, json_value, static_file, widget_base

__all__ = ["CompareView"]

#: Characters of an input a table row carries; the opened row carries up to DETAIL_CHARS.
ROW_CHARS = 300
DETAIL_CHARS = 20_000
PAGE_SIZES = (10, 20, 50, 100)
#: The summary's text columns, before the numbers (`specnb.presentation.summary_columns`).
_TEXT_COLUMNS = (SummaryColumn("role", "role", "text", None, "role"),
                 SummaryColumn("device", "device", "text", None, "device"))


def _prediction_json(prediction):
    if prediction is None:
        return None
    to_dict = getattr(prediction, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    return {"value": repr(prediction)}


class CompareView(Snapshot, widget_base()):
    """A `Comparison` in the notebook: summary, charts and every item, a page at a time.

    Parameters
    ----------
    comparison : Comparison
        From `specnb.compare` or `specnb.get_run`.
    page_size : int
        Rows per page: 10, 20, 50 or 100.
    """

    title = t.Unicode("").tag(sync=True)
    summary_columns = t.List(t.Dict()).tag(sync=True)
    summary_rows = t.List(t.Dict(), help="One per model: the summary's values by column key (NaN as null).").tag(
        sync=True)
    summary_cells = t.List(t.List(t.Dict()), help="Per model, per summary column: {text, note, best} as people read "
                           "them (specnb.presentation).").tag(sync=True)
    figures = t.Dict().tag(sync=True)
    chart_order = t.List(t.Unicode(), help="The chart tabs, in order (a saved widget state keeps no dict order)."
                         ).tag(sync=True)
    chart = t.Unicode("", help="The chart tab shown ('' = the first); the view sets it.").tag(sync=True)
    models = t.List(t.Unicode()).tag(sync=True)
    labels = t.List(t.Unicode()).tag(sync=True)
    has_gold = t.Bool(False).tag(sync=True)
    rows = t.List(t.Dict(), help="The visible page only.").tag(sync=True)
    total = t.Int(0, help="Items matching the filters.").tag(sync=True)
    n_items = t.Int(0).tag(sync=True)
    n_disagreements = t.Int(0).tag(sync=True)
    detail = t.Dict(default_value=None, allow_none=True, help="The opened row, in full.").tag(sync=True)

    page = t.Int(0, help="0-based page; clamped to the pages there are.").tag(sync=True)
    page_size = t.Int(20, help="Rows per page: 10, 20, 50 or 100.").tag(sync=True)
    focus_model = t.Unicode("", help="Whose score and correctness the filters and sort use.").tag(sync=True)
    label_filter = t.Unicode("", help="Only items with this gold label ('' = all).").tag(sync=True)
    correct_filter = t.Enum(("all", "correct", "wrong"), "all").tag(sync=True)
    only_disagreements = t.Bool(True, help="Only items where models differ, any is invalid or wrong.").tag(sync=True)
    sort = t.Enum(("item", "score", "-score"), "item", help="By position, or the focus model's score.").tag(sync=True)
    query = t.Unicode("", help="Case-insensitive substring of the input.").tag(sync=True)
    selected = t.Any(None, allow_none=True, help="The item to open (its index in the table).").tag(sync=True)

    def __init__(self, comparison: Comparison, *, page_size: int = 20, **kwargs):
        if not isinstance(comparison, Comparison):
            raise InputError(f"CompareView needs a specnb.Comparison, got {type(comparison).__name__}")
        self._esm = static_file("compare_view.js")
        self._css = static_file("widgets.css")
        self.comparison = comparison
        self._refreshing = False
        self._frame = self._build_frame(comparison)
        super().__init__(page_size=page_size, **kwargs)
        self._fill_static()
        self.observe(self._on_filter, names=["focus_model", "label_filter", "correct_filter", "only_disagreements",
                                            "sort", "query", "page_size"])
        self.observe(self._on_page, names=["page"])
        self.observe(self._on_selected, names=["selected"])
        self.on_msg(self._on_message)
        self._refresh()

    # -- validation ---------------------------------------------------------------------------------
    @t.validate("page_size")
    def _valid_page_size(self, proposal):
        if proposal["value"] not in PAGE_SIZES:
            raise t.TraitError(f"page_size must be one of {', '.join(map(str, PAGE_SIZES))}, got {proposal['value']!r}")
        return proposal["value"]

    @t.validate("focus_model")
    def _valid_focus(self, proposal):
        value = proposal["value"]
        if value and value not in self.comparison.models:
            raise t.TraitError(f"focus_model must be one of {', '.join(self.comparison.models)}, got {value!r}")
        return value

    @t.validate("label_filter")
    def _valid_label(self, proposal):
        value = proposal["value"]
        if value and value not in self.labels:
            raise t.TraitError(f"label_filter must be '' or one of {', '.join(self.labels)}, got {value!r}")
        return value

    @t.validate("page")
    def _valid_page(self, proposal):
        return max(0, int(proposal["value"]))

    # -- data -------------------------------------------------------------------------------------------
    @staticmethod
    def _build_frame(comparison: Comparison):
        frame = comparison.table.reset_index()
        flags = np.zeros(len(frame), dtype=bool)
        disagreeing = comparison.disagreements.index
        flags[frame.index[frame["item"].isin(disagreeing)]] = True
        frame["_disagree"] = flags
        frame["_haystack"] = frame["input"].fillna("").astype(str).str.lower()
        return frame

    def _fill_static(self) -> None:
        c = self.comparison
        summary = c.summary
        columns = [*_TEXT_COLUMNS, *summary_columns(c.quality_column)]
        kept = {col.key for col in columns} | {"price_per_hour", "dtype"}
        rows = []
        for m in c.models:
            record = summary.loc[m].to_dict()
            row = {"model": m}
            for key, value in record.items():
                base = key[:-4] if key.endswith("_low") else key[:-5] if key.endswith("_high") else key
                if base in kept or key.startswith("agree:"):
                    row[key] = json_value(value)
            dtype = row.get("dtype")
            if dtype and dtype != "-":
                row["device"] = f"{row.get('device')} {dtype}"
            rows.append(row)
        cells = summary_cells(rows, columns)
        try:
            figures = {name: fig.to_plotly_json() for name, fig in c.figures().items()}
            figures = json_value(figures)
        except ImportError:  # plotly missing: the view shows no charts
            figures = {}
        parts = [c.run_id or "not stored", c.task, plural(len(c.inputs), "item")]
        if c.name:  # the run's name leads: it is what people gave it to find it again
            parts.insert(0, c.name)
        if c.status != "finished":
            parts.append(f"{c.status}: {len(c.done):,} done")
        with self.hold_sync():
            self.title = " · ".join(parts)
            self.summary_columns = [{"key": col.key, "label": col.label, "kind": col.kind, "better": col.better}
                                    for col in columns]
            self.summary_rows = rows
            self.summary_cells = cells
            self.figures = figures
            self.chart_order = list(figures)
            self.models = list(c.models)
            self.labels = [] if c.ner else list(c.label_space)
            self.has_gold = c.labels is not None
            self.n_items = len(c.inputs)
            self.n_disagreements = int(self._frame["_disagree"].sum())
            if not self.focus_model:
                self.focus_model = c.models[0]

    def filtered(self):
        """The table rows the current filters keep, in the current order (a DataFrame)."""
        frame = self._frame
        mask = np.ones(len(frame), dtype=bool)
        model = self.focus_model or self.comparison.models[0]
        if self.only_disagreements:
            mask &= frame["_disagree"].to_numpy()
        if self.label_filter and "label" in frame:
            mask &= (frame["label"] == self.label_filter).to_numpy()
        if self.correct_filter != "all" and f"{model}:correct" in frame:
            correct = frame[f"{model}:correct"]
            want = self.correct_filter == "correct"
            mask &= correct.map(lambda v: v is not None and not is_missing(v) and bool(v) == want).to_numpy(dtype=bool)
        if self.query:
            mask &= frame["_haystack"].str.contains(self.query.lower(), regex=False).to_numpy()
        kept = frame[mask]
        if self.sort != "item":
            kept = kept.sort_values(f"{model}:score", ascending=self.sort == "score", na_position="last",
                                    kind="stable")
        return kept

    def _row(self, row, limit: int, raw: bool = False) -> dict:
        c = self.comparison
        out = {"item": json_value(row["item"]), "input": json_value(row["input"], cut=limit),
               "label": json_value(row["label"]) if "label" in row else None, "answers": {}}
        position = None
        if raw:
            position = int(np.flatnonzero(self._frame["item"].to_numpy() == row["item"])[0])
        for m in c.models:
            answer = {"answer": json_value(row[m]), "score": json_value(finite_or_nan(row[f"{m}:score"])),
                      "correct": json_value(row[f"{m}:correct"]) if f"{m}:correct" in row else None,
                      "error": json_value(row[f"{m}:error"])}
            if answer["correct"] is not None:
                answer["correct"] = bool(answer["correct"])
            if raw:
                answer["raw"] = _prediction_json(c.predictions[m][position])
            out["answers"][m] = answer
        return out

    def _refresh(self) -> None:
        kept = self.filtered()
        pages = max(1, math.ceil(len(kept) / self.page_size))
        page = min(self.page, pages - 1)
        start = page * self.page_size
        rows = [self._row(r, ROW_CHARS) for _, r in kept.iloc[start:start + self.page_size].iterrows()]
        self._refreshing = True
        try:
            with self.hold_sync():
                self.total = len(kept)
                self.page = page
                self.rows = rows
        finally:
            self._refreshing = False

    # -- observers ----------------------------------------------------------------------------------------
    def _on_filter(self, change) -> None:
        if self.page:
            self.page = 0  # _on_page refreshes
        else:
            self._refresh()

    def _on_page(self, change) -> None:
        if not self._refreshing:
            self._refresh()

    def _on_selected(self, change) -> None:
        item = change["new"]
        if item is None:
            self.detail = None
            return
        matches = self._frame[self._frame["item"].astype(str) == str(item)]
        if matches.empty:
            self.detail = None
            return
        self.detail = self._row(matches.iloc[0], DETAIL_CHARS, raw=True)

    def _on_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "plotly":
            from .._compare.charts import plotly_js

            self.send({"type": "plotly_js"}, buffers=[plotly_js().encode("utf-8")])

    def __repr__(self) -> str:
        return f"<specnb CompareView of {self.comparison!r}>"

    # -- without a kernel -----------------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        return snapshot_html(self.comparison)
