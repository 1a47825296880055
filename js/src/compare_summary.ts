// The compare view's summary table: one row per model, one column per summary column, with the cells
// as Python formatted them (see ../README.md).
import type { AnyModel } from "@anywidget/types";
import type { CompareTraits } from "./compare_view";
import { DASH, display, h, show, text } from "./common";

export interface SummaryColumn {
  key: string;
  label: string;
  kind: string;
  better: "high" | "low" | null;
}

/** One cell, ready to show: the value, its muted note (an interval's bounds, a cost's rate), best of its column. */
export interface SummaryCell {
  text: string;
  note: string | null;
  best: boolean;
}

const UNKNOWN: SummaryCell = { text: DASH, note: null, best: false };

/** The cell of model `i`, column `j`; a dash where an old saved state has no cells. */
function cellAt(cells: SummaryCell[][] | null | undefined, i: number, j: number): SummaryCell {
  const c = Array.isArray(cells) && Array.isArray(cells[i]) ? cells[i][j] : undefined;
  return c && typeof c === "object" ? c : UNKNOWN;
}

function td(c: SummaryCell, numeric: boolean): HTMLTableCellElement {
  const best = c.best === true;
  const cls = [numeric ? "specnb-num" : "", best ? "specnb-best" : ""].join(" ").trim();
  const note = typeof c.note === "string" && c.note !== "" ? h("span", { class: "specnb-muted" }, c.note) : null;
  const cell = h("td", { class: cls || null }, text(c.text), note);
  if (best) cell.style.fontWeight = "bold";
  return cell;
}

/** The summary table; `draw` rebuilds it from `summary_columns`, `summary_rows` and `summary_cells`. */
export function summaryPart(m: AnyModel<CompareTraits>): { el: HTMLTableElement; draw(): void } {
  const el = h("table", { class: "specnb-table specnb-summary", "data-testid": "summary" });

  const draw = () => {
    const cols = m.get("summary_columns") ?? [];
    const rows = m.get("summary_rows") ?? [];
    const cells = m.get("summary_cells");
    const numeric = cols.map((c) => c.kind !== "text");
    // Each row is one model: its name leads the row unless a column already shows it.
    const nameCol = !cols.some((c) => c.key === "model");
    const head = h(
      "tr",
      null,
      nameCol ? h("th", { "data-key": "model" }, "model") : null,
      ...cols.map((c, j) =>
        h(
          "th",
          {
            class: numeric[j] ? "specnb-num" : null,
            "data-key": c.key,
            title: c.better ? `${c.better === "high" ? "higher" : "lower"} is better` : null,
          },
          c.label ?? c.key,
        ),
      ),
    );
    const body = rows.map((row, i) => {
      const name = display(row?.model);
      return h(
        "tr",
        { "data-testid": "summary-row", "data-model": name },
        nameCol ? h("td", { class: "specnb-model-name" }, name) : null,
        ...cols.map((_, j) => td(cellAt(cells, i, j), numeric[j])),
      );
    });
    el.replaceChildren(h("thead", null, head), h("tbody", null, ...body));
    show(el, cols.length > 0);
  };

  return { el, draw };
}
