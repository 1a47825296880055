// specnb compare view: summary table, plotly charts and the disagreement browser (see ../README.md).
// This entry builds the skeleton from the parts (compare_summary, compare_charts, compare_browser),
// redraws each part once per microtask when its traits change, and cleans up.
import type { AnyModel, RenderProps } from "@anywidget/types";
import { browserPart, type Item, type Row } from "./compare_browser";
import { chartsPart, loadPlotly, type Figure } from "./compare_charts";
import { summaryPart, type SummaryCell, type SummaryColumn } from "./compare_summary";
import { h, kernelLink, show } from "./common";

export interface CompareTraits {
  title: string;
  summary_columns: SummaryColumn[];
  summary_rows: Record<string, unknown>[];
  summary_cells: SummaryCell[][]; // per model (as summary_rows), per column (as summary_columns)
  figures: Record<string, Figure | string>;
  chart_order: string[]; // the tabs, in order
  chart: string; // the tab shown ("" = the first), kept in the model so a saved widget state keeps it
  models: string[];
  labels: string[];
  has_gold: boolean;
  rows: Row[];
  total: number;
  n_items: number;
  n_disagreements: number;
  detail: Row | null;
  page: number;
  page_size: number;
  focus_model: string;
  label_filter: string;
  correct_filter: string;
  only_disagreements: boolean;
  sort: string;
  query: string;
  selected: Item | null;
}

type Part = "title" | "summary" | "charts" | "options" | "controls" | "table" | "pager" | "detail";
const ORDER: Part[] = ["title", "summary", "charts", "options", "controls", "table", "pager", "detail"];

/** The parts each trait's change redraws. */
const deps: [keyof CompareTraits, Part[]][] = [
  ["title", ["title"]],
  ["summary_columns", ["summary"]],
  ["summary_rows", ["summary"]],
  ["summary_cells", ["summary"]],
  ["figures", ["charts"]],
  ["models", ["options", "controls", "table", "detail"]],
  ["labels", ["options", "controls"]],
  ["has_gold", ["controls", "table", "detail"]],
  ["rows", ["table"]],
  ["focus_model", ["controls", "table", "detail"]],
  ["selected", ["table"]],
  ["detail", ["detail"]],
  ["label_filter", ["controls"]],
  ["correct_filter", ["controls"]],
  ["only_disagreements", ["controls"]],
  ["sort", ["controls"]],
  ["query", ["controls"]],
  ["page", ["pager"]],
  ["page_size", ["controls", "pager"]],
  ["total", ["pager"]],
  ["n_items", ["pager"]],
  ["n_disagreements", ["pager"]],
];

function render({ model, el }: RenderProps<CompareTraits>): () => void {
  const m: AnyModel<CompareTraits> = model;
  let disposed = false;

  // --- skeleton -----------------------------------------------------------------------------
  const titleEl = h("div", { class: "specnb-title", "data-testid": "title" });
  // Without a kernel (reopened with its saved widget state) the charts still draw, but filters, pages and
  // the detail are answered by Python: say so.
  const offline = h("div", { class: "specnb-muted", "data-testid": "offline" },
                    "Not connected to a kernel: filters, pages and the detail need it — re-run this cell.");
  const link = kernelLink(m, el, () => show(offline, !link.live()));
  show(offline, !link.live());
  const summary = summaryPart(m);
  const charts = chartsPart(m);
  const browser = browserPart(m);
  const root = h(
    "div",
    { class: "specnb-compare specnb" },
    titleEl,
    offline,
    h("div", { class: "specnb-scroll" }, summary.el),
    charts.el,
    browser.el,
  );
  el.replaceChildren(root);

  const drawTitle = () => {
    titleEl.textContent = m.get("title") ?? "";
  };

  // --- updates, coalesced per task -------------------------------------------------------------
  const draws: Record<Part, () => void> = {
    title: drawTitle,
    summary: summary.draw,
    charts: charts.draw,
    ...browser.draws,
  };
  const dirty = new Set<Part>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (disposed) return;
    for (const p of ORDER) {
      if (dirty.delete(p)) draws[p]();
    }
  };
  const schedule = (...parts: Part[]) => {
    parts.forEach((p) => dirty.add(p));
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };

  const handlers = deps.map(([trait, parts]): [string, () => void] => [`change:${trait}`, () => schedule(...parts)]);
  for (const [event, fn] of handlers) m.on(event, fn);
  const onMsg = (msg: unknown, buffers?: (ArrayBuffer | DataView)[]) => {
    if (msg && typeof msg === "object" && (msg as { type?: unknown }).type === "plotly_js") loadPlotly(buffers?.[0]);
  };
  m.on("msg:custom", onMsg);

  for (const p of ORDER) draws[p]();

  // --- cleanup ---------------------------------------------------------------------------------
  return () => {
    disposed = true;
    for (const [event, fn] of handlers) m.off(event as `change:${keyof CompareTraits & string}`, fn);
    m.off("msg:custom", onMsg);
    browser.dispose(); // the pending search
    charts.dispose(); // this view's plotly request, its charts
    link.dispose();
  };
}

export default { render };
