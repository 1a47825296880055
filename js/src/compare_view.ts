// specnb compare view: summary table, plotly charts and the disagreement browser (see ../README.md).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { DASH, bytes, display, fill, fixed, h, int, isNum, pretty, show } from "./common";

type Item = string | number;

interface SummaryColumn {
  key: string;
  label: string;
  kind: string;
  better: "high" | "low" | null;
}

interface Answer {
  answer: unknown;
  score: number | null;
  correct: boolean | null;
  error: string | null;
  raw?: unknown;
}

interface Row {
  item: Item;
  input: string;
  label: unknown;
  answers: Record<string, Answer>;
}

interface Figure {
  data: unknown[];
  layout?: Record<string, unknown>;
}

interface CompareTraits {
  title: string;
  summary_columns: SummaryColumn[];
  summary_rows: Record<string, unknown>[];
  figures: Record<string, Figure | string>;
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

// ---------------------------------------------------------------------------------------------
// plotly.js: taken from the page when there, else asked from Python once per page and loaded from
// a Blob URL. The loader lives on window so that every view on the page shares one load.

interface PlotlyLike {
  newPlot(div: HTMLElement, data: unknown, layout?: unknown, config?: unknown): unknown;
  purge?(div: HTMLElement): void;
  Plots?: { resize?(div: HTMLElement): unknown };
}

interface PlotlyLoader {
  promise: Promise<PlotlyLike>;
  resolve(p: PlotlyLike): void;
  reject(e: Error): void;
  requester: (() => void) | null; // the view whose {type: "plotly"} is outstanding
  waiters: Set<() => void>; // the views waiting, by their request function
  loading: boolean;
}

declare global {
  interface Window {
    Plotly?: PlotlyLike;
    __specnbPlotly?: PlotlyLoader;
    define?: unknown;
  }
}

function loader(): PlotlyLoader {
  let l = window.__specnbPlotly;
  if (!l) {
    let resolve!: (p: PlotlyLike) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<PlotlyLike>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // waiters see the rejection; nobody else has to
    l = { promise, resolve, reject, requester: null, waiters: new Set(), loading: false };
    window.__specnbPlotly = l;
  }
  return l;
}

/** plotly.js, asking Python for it through `request` unless another view already did. */
function needPlotly(request: () => void): Promise<PlotlyLike> {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  const l = loader();
  l.waiters.add(request);
  if (!l.requester && !l.loading) {
    l.requester = request;
    request();
  }
  return l.promise;
}

/** A view goes away: if its request was the outstanding one, another waiting view asks instead. */
function leavePlotly(request: () => void): void {
  const l = window.__specnbPlotly;
  if (!l) return;
  l.waiters.delete(request);
  if (l.requester === request && !l.loading && !window.Plotly) {
    l.requester = null;
    const next = l.waiters.values().next().value;
    if (next) {
      l.requester = next;
      next();
    }
  }
}

/** Runs plotly.min.js received from Python (one binary buffer), once per page. */
function loadPlotly(buffer: ArrayBuffer | DataView | undefined): void {
  const l = loader();
  if (window.Plotly) {
    l.resolve(window.Plotly);
    return;
  }
  if (l.loading || !buffer) return;
  l.loading = true;
  const data = ArrayBuffer.isView(buffer)
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice()
    : new Uint8Array(buffer).slice();
  const url = URL.createObjectURL(new Blob([data], { type: "text/javascript" }));
  const script = document.createElement("script");
  script.src = url;
  // A page with an AMD loader (classic notebook) would get plotly as an anonymous module instead of
  // window.Plotly: hide `define` while the script runs.
  const hadDefine = "define" in window;
  const amd = window.define;
  window.define = undefined;
  const done = () => {
    if (hadDefine) window.define = amd;
    else delete window.define;
    URL.revokeObjectURL(url);
  };
  script.onload = () => {
    done();
    if (window.Plotly) {
      l.requester = null;
      l.waiters.clear();
      l.resolve(window.Plotly);
    } else fail("plotly.js ran but did not define window.Plotly");
  };
  script.onerror = () => {
    done();
    fail("plotly.js could not be loaded");
  };
  const fail = (message: string) => {
    if (window.__specnbPlotly === l) window.__specnbPlotly = undefined; // a later view may try again
    l.reject(new Error(message));
  };
  document.head.appendChild(script);
}

// ---------------------------------------------------------------------------------------------
// Formatting

const NUMERIC_KINDS = new Set(["quality", "interval", "ratio", "ms", "rate", "seconds", "bytes", "usd"]);

function usd(v: number): string {
  if (v === 0) return "$0.00";
  const a = Math.abs(v);
  if (a >= 1) return `${v < 0 ? "-" : ""}$${fixed(a, 2)}`;
  const places = Math.min(Math.max(1 - Math.floor(Math.log10(a)), 2), 12); // two significant digits
  return `${v < 0 ? "-" : ""}$${a.toFixed(places)}`;
}

function significant(v: number): string {
  if (v === 0) return "0";
  const places = Math.min(Math.max(2 - Math.floor(Math.log10(Math.abs(v))), 0), 9);
  return v.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
}

/** A number formatted by kind. */
function formatNumber(kind: string, v: number): string {
  switch (kind) {
    case "quality":
    case "interval":
    case "ratio":
      return fixed(v, 3);
    case "ms":
      return `${fixed(v, 1)} ms`;
    case "rate":
      return Math.abs(v) >= 100 ? `${int(v)}/s` : `${fixed(v, 1)}/s`;
    case "seconds":
      return Math.abs(v) < 1 ? `${fixed(v, 2)} s` : `${fixed(v, 1)} s`;
    case "bytes":
      return bytes(v);
    case "usd":
      return usd(v);
    default:
      return significant(v);
  }
}

/**
 * One summary cell: [shown value, muted extra (an interval's bounds), number used to find the best].
 * An interval is a number with its bounds in `<key>_low` / `<key>_high` of the same row, or
 * `[value, low, high]`, or `{value, low, high}`.
 */
function summaryCell(col: SummaryColumn, row: Record<string, unknown>): [string, string | null, number | null] {
  let value = row[col.key];
  let low: unknown = row[`${col.key}_low`];
  let high: unknown = row[`${col.key}_high`];
  if (col.kind === "interval") {
    if (Array.isArray(value)) [value, low, high] = value;
    else if (value && typeof value === "object") {
      const o = value as Record<string, unknown>;
      [value, low, high] = [o.value ?? o.mid ?? o.estimate, o.low, o.high];
    }
  }
  if (value === null || value === undefined) return [DASH, null, null];
  if (col.kind === "text" || typeof value !== "number") return [display(value), null, null];
  if (!Number.isFinite(value)) return [DASH, null, null];
  const bounds =
    col.kind === "interval" && isNum(low) && isNum(high) ? ` [${fixed(low, 3)}, ${fixed(high, 3)}]` : null;
  return [formatNumber(col.kind, value), bounds, value];
}

/** `21–40 of 183`, `0 of 0`. */
function pageInfo(page: number, size: number, total: number): string {
  if (!(total > 0)) return "0 of 0";
  const start = Math.min(page * size + 1, total);
  const end = Math.min(page * size + size, total);
  return `${int(start)}–${int(end)} of ${int(total)}`;
}

function option(value: string, label: string): HTMLOptionElement {
  const o = h("option", null, label);
  o.value = value;
  return o;
}

function setOptions(select: HTMLSelectElement, options: [string, string][]): void {
  select.replaceChildren(...options.map(([v, l]) => option(v, l)));
}

/** Sets a select's value, adding the value as an option when it is not one yet. */
function setSelect(select: HTMLSelectElement, value: string): void {
  if (!Array.from(select.options).some((o) => o.value === value)) select.appendChild(option(value, value));
  select.value = value;
}

// ---------------------------------------------------------------------------------------------

type Part = "title" | "summary" | "charts" | "options" | "controls" | "table" | "pager" | "detail";
const ORDER: Part[] = ["title", "summary", "charts", "options", "controls", "table", "pager", "detail"];

function render({ model, el }: RenderProps<CompareTraits>): () => void {
  const m: AnyModel<CompareTraits> = model;
  let disposed = false;
  const get = <K extends keyof CompareTraits>(k: K): CompareTraits[K] => m.get(k);
  const modelsOf = (rows: Row[]): string[] => {
    const names = get("models") ?? [];
    return names.length ? names : Object.keys(rows[0]?.answers ?? {});
  };
  const commit = (changes: Partial<CompareTraits>, resetPage: boolean) => {
    for (const [k, v] of Object.entries(changes)) m.set(k as keyof CompareTraits, v as never);
    if (resetPage) m.set("page", 0);
    m.save_changes();
  };

  // --- skeleton -----------------------------------------------------------------------------
  const titleEl = h("div", { class: "specnb-title", "data-testid": "title" });
  const summary = h("table", { class: "specnb-table specnb-summary", "data-testid": "summary" });
  const tabBar = h("div", { class: "specnb-tabs", role: "tablist" });
  const chartArea = h("div", { class: "specnb-charts" });
  const chartSection = h("div", { class: "specnb-chart-section" }, tabBar, chartArea);

  const focusSel = h("select", { "data-testid": "filter-model", title: "whose score and correctness the filters and the sort use" });
  const labelSel = h("select", { "data-testid": "filter-label", title: "gold label" });
  const correctSel = h("select", { "data-testid": "filter-correct", title: "correctness of the focus model" });
  setOptions(correctSel, [["all", "all"], ["correct", "correct"], ["wrong", "wrong"]]);
  const onlyDis = h("input", { type: "checkbox", "data-testid": "only-disagreements" });
  const sortSel = h("select", { "data-testid": "sort", title: "sort by item or by the focus model's score" });
  setOptions(sortSel, [["item", "item"], ["score", "score ↑"], ["-score", "score ↓"]]);
  const search = h("input", { type: "search", "data-testid": "search", placeholder: "search inputs", class: "specnb-search" });
  const sizeSel = h("select", { "data-testid": "page-size", title: "rows per page" });
  setOptions(sizeSel, [10, 20, 50, 100].map((n): [string, string] => [String(n), String(n)]));

  const labelWrap = h("label", { class: "specnb-control" }, "label ", labelSel);
  const correctWrap = h("label", { class: "specnb-control" }, "answers ", correctSel);
  const controls = h(
    "div",
    { class: "specnb-controls" },
    h("label", { class: "specnb-control" }, "model ", focusSel),
    labelWrap,
    correctWrap,
    h("label", { class: "specnb-control" }, onlyDis, " disagreements only"),
    h("label", { class: "specnb-control" }, "sort ", sortSel),
    search,
    h("label", { class: "specnb-control" }, "per page ", sizeSel),
  );

  const table = h("table", { class: "specnb-table specnb-rows" });
  const prev = h("button", { type: "button", class: "specnb-button", "data-testid": "page-prev", title: "previous page" }, "‹ prev");
  const next = h("button", { type: "button", class: "specnb-button", "data-testid": "page-next", title: "next page" }, "next ›");
  const info = h("span", { class: "specnb-page-info", "data-testid": "page-info" });
  const stats = h("span", { class: "specnb-muted specnb-stats", "data-testid": "stats" });
  const pager = h("div", { class: "specnb-pager" }, prev, info, next, stats);
  const detailEl = h("div", { class: "specnb-detail", "data-testid": "detail" });
  show(detailEl, false);

  const root = h(
    "div",
    { class: "specnb-compare specnb" },
    titleEl,
    h("div", { class: "specnb-scroll" }, summary),
    chartSection,
    h("div", { class: "specnb-browser" }, controls, h("div", { class: "specnb-scroll" }, table), pager, detailEl),
  );
  el.replaceChildren(root);

  // --- title and summary -----------------------------------------------------------------------
  const drawTitle = () => {
    titleEl.textContent = get("title") ?? "";
  };

  const drawSummary = () => {
    const cols = get("summary_columns") ?? [];
    const rows = get("summary_rows") ?? [];
    const cells = rows.map((r) => cols.map((c) => summaryCell(c, r ?? {})));
    const best = cols.map((c, j) => {
      const known = rows.map((_, i) => i).filter((i) => cells[i][j][2] !== null);
      if (!c.better || known.length < 2) return new Set<number>();
      const pick = (a: number, b: number) =>
        c.better === "high" ? (cells[b][j][2]! > cells[a][j][2]! ? b : a) : cells[b][j][2]! < cells[a][j][2]! ? b : a;
      const top = cells[known.reduce(pick)][j][0];
      const set = new Set(known.filter((i) => cells[i][j][0] === top)); // ties as shown
      return set.size === known.length ? new Set<number>() : set;
    });
    const numeric = cols.map((c) => NUMERIC_KINDS.has(c.kind));
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
    const body = cells.map((row, i) =>
      h(
        "tr",
        { "data-testid": "summary-row", "data-model": display(rows[i]?.model) },
        nameCol ? h("td", { class: "specnb-model-name" }, display(rows[i]?.model)) : null,
        ...row.map(([text, extra], j) => {
          const isBest = best[j].has(i);
          const cls = [numeric[j] ? "specnb-num" : "", isBest ? "specnb-best" : ""].join(" ").trim();
          const td = h("td", { class: cls || null }, text, extra ? h("span", { class: "specnb-muted" }, extra) : null);
          if (isBest) td.style.fontWeight = "bold";
          return td;
        }),
      ),
    );
    summary.replaceChildren(h("thead", null, head), h("tbody", null, ...body));
    show(summary, cols.length > 0);
  };

  // --- charts ----------------------------------------------------------------------------------
  let active: string | null = null;
  let generation = 0;
  const drawn = new Set<string>();
  const chartDivs = new Map<string, HTMLElement>();
  const tabs = new Map<string, HTMLButtonElement>();
  const request = () => m.send({ type: "plotly" });

  const purgeCharts = () => {
    for (const div of chartDivs.values()) {
      try {
        window.Plotly?.purge?.(div);
      } catch {
        /* a chart that never finished drawing */
      }
    }
  };

  const plot = async (name: string) => {
    if (drawn.has(name)) return;
    const div = chartDivs.get(name);
    let fig = (get("figures") ?? {})[name];
    if (!div || !fig) return;
    drawn.add(name);
    const gen = generation;
    try {
      if (typeof fig === "string") fig = JSON.parse(fig) as Figure;
      const Plotly = await needPlotly(request);
      if (disposed || gen !== generation) return;
      await Plotly.newPlot(div, fig.data ?? [], fig.layout ?? {}, { responsive: true, displaylogo: false });
    } catch (e) {
      if (disposed || gen !== generation) return;
      drawn.delete(name);
      fill(div, h("div", { class: "specnb-error" }, `chart unavailable: ${e instanceof Error ? e.message : String(e)}`));
    }
  };

  const selectChart = (name: string | null) => {
    active = name;
    for (const [n, tab] of tabs) {
      tab.classList.toggle("specnb-active", n === name);
      tab.setAttribute("aria-selected", String(n === name));
    }
    for (const [n, div] of chartDivs) show(div, n === name);
    if (name === null) return;
    if (drawn.has(name)) {
      const div = chartDivs.get(name);
      if (div) window.Plotly?.Plots?.resize?.(div);
    } else void plot(name);
  };

  const drawCharts = () => {
    purgeCharts();
    generation++;
    drawn.clear();
    chartDivs.clear();
    tabs.clear();
    const names = Object.keys(get("figures") ?? {});
    for (const name of names) {
      const tab = h(
        "button",
        { type: "button", class: "specnb-tab", role: "tab", "data-testid": `chart-tab-${name}`, "data-name": name },
        name.replace(/_/g, " "),
      );
      tab.addEventListener("click", () => selectChart(name));
      tabs.set(name, tab);
      chartDivs.set(name, h("div", { class: "specnb-chart", role: "tabpanel", "data-testid": `chart-${name}`, "data-name": name }));
    }
    tabBar.replaceChildren(...tabs.values());
    chartArea.replaceChildren(...chartDivs.values());
    show(chartSection, names.length > 0);
    selectChart(active !== null && names.includes(active) ? active : (names[0] ?? null));
  };

  // --- controls --------------------------------------------------------------------------------
  const drawOptions = () => {
    setOptions(focusSel, (get("models") ?? []).map((n): [string, string] => [n, n]));
    setOptions(labelSel, [["", "all labels"], ...(get("labels") ?? []).map((l): [string, string] => [l, l])]);
  };

  let searchTimer: ReturnType<typeof setTimeout> | null = null;
  const drawControls = () => {
    const hasGold = !!get("has_gold");
    setSelect(focusSel, get("focus_model") ?? "");
    setSelect(labelSel, get("label_filter") ?? "");
    setSelect(correctSel, get("correct_filter") ?? "all");
    setSelect(sortSel, get("sort") ?? "item");
    setSelect(sizeSel, String(get("page_size") ?? 20));
    onlyDis.checked = !!get("only_disagreements");
    show(labelWrap, hasGold && (get("labels") ?? []).length > 0);
    show(labelSel, hasGold && (get("labels") ?? []).length > 0);
    show(correctWrap, hasGold);
    show(correctSel, hasGold);
    if (searchTimer === null && document.activeElement !== search) search.value = get("query") ?? "";
  };

  focusSel.addEventListener("change", () => commit({ focus_model: focusSel.value }, true));
  labelSel.addEventListener("change", () => commit({ label_filter: labelSel.value }, true));
  correctSel.addEventListener("change", () => commit({ correct_filter: correctSel.value }, true));
  onlyDis.addEventListener("change", () => commit({ only_disagreements: onlyDis.checked }, true));
  sortSel.addEventListener("change", () => commit({ sort: sortSel.value }, true));
  sizeSel.addEventListener("change", () => commit({ page_size: parseInt(sizeSel.value, 10) }, true));
  search.addEventListener("input", () => {
    if (searchTimer !== null) clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      searchTimer = null;
      if (!disposed && search.value !== (get("query") ?? "")) commit({ query: search.value }, true);
    }, 250);
  });
  prev.addEventListener("click", () => commit({ page: Math.max(0, (get("page") ?? 0) - 1) }, false));
  next.addEventListener("click", () => commit({ page: (get("page") ?? 0) + 1 }, false));

  // --- rows ------------------------------------------------------------------------------------
  const answerCell = (name: string, a: Answer | undefined, focus: boolean): HTMLTableCellElement => {
    const td = h("td", { class: focus ? "specnb-answer specnb-focus" : "specnb-answer", "data-model": name });
    if (!a) {
      td.textContent = DASH;
      return td;
    }
    if (a.answer === null || a.answer === undefined) {
      td.append(h("span", { class: "specnb-muted specnb-answer-error", title: a.error ?? null }, a.error || DASH));
      return td;
    }
    const text = display(a.answer);
    td.append(h("span", { class: "specnb-answer-text", title: text }, text));
    if (isNum(a.score)) td.append(h("span", { class: "specnb-score" }, a.score.toFixed(2)));
    if (a.correct === true) td.append(h("span", { class: "specnb-mark specnb-ok", title: "correct" }, "✓"));
    else if (a.correct === false) td.append(h("span", { class: "specnb-mark specnb-wrong", title: "wrong" }, "✗"));
    return td;
  };

  const open = (item: Item) => commit({ selected: item }, false);

  const drawTable = () => {
    const rows = get("rows") ?? [];
    const hasGold = !!get("has_gold");
    const names = modelsOf(rows);
    const focus = get("focus_model") ?? "";
    const selected = get("selected");
    const head = h(
      "tr",
      null,
      h("th", { class: "specnb-item" }, "item"),
      h("th", null, "input"),
      hasGold ? h("th", null, "label") : null,
      ...names.map((n) => h("th", { class: n === focus ? "specnb-focus" : null, "data-model": n }, n)),
    );
    const body = rows.map((r) => {
      const item = String(r.item);
      const isSelected = selected !== null && selected !== undefined && String(selected) === item;
      const tr = h(
        "tr",
        { "data-testid": "row", "data-item": item, tabindex: 0, class: isSelected ? "specnb-row specnb-selected" : "specnb-row" },
        h("td", { class: "specnb-item" }, item),
        h("td", { class: "specnb-input", title: r.input ?? "" }, h("div", { class: "specnb-clip" }, r.input ?? "")),
        hasGold ? h("td", { class: "specnb-label" }, display(r.label)) : null,
        ...names.map((n) => answerCell(n, r.answers?.[n], n === focus)),
      );
      tr.addEventListener("click", () => open(r.item));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          open(r.item);
        }
      });
      return tr;
    });
    if (body.length === 0) {
      body.push(
        h("tr", { class: "specnb-no-rows" }, h("td", { colspan: 2 + (hasGold ? 1 : 0) + names.length, class: "specnb-muted" }, "No items match the filters.")),
      );
    }
    table.replaceChildren(h("thead", null, head), h("tbody", null, ...body));
  };

  const drawPager = () => {
    const page = get("page") ?? 0;
    const size = get("page_size") || 20;
    const total = get("total") ?? 0;
    info.textContent = pageInfo(page, size, total);
    prev.disabled = page <= 0;
    next.disabled = (page + 1) * size >= total;
    const items = get("n_items") ?? 0;
    const disagreements = get("n_disagreements") ?? 0;
    stats.textContent = `${int(items)} item${items === 1 ? "" : "s"} · ${int(disagreements)} disagreement${disagreements === 1 ? "" : "s"}`;
  };

  // --- detail ----------------------------------------------------------------------------------
  const drawDetail = () => {
    const d = get("detail");
    if (!d) {
      detailEl.replaceChildren();
      show(detailEl, false);
      return;
    }
    const focus = get("focus_model") ?? "";
    const answers = d.answers ?? {};
    const order = [...(get("models") ?? []).filter((n) => n in answers), ...Object.keys(answers).filter((n) => !(get("models") ?? []).includes(n))];
    const close = h("button", { type: "button", class: "specnb-button", "data-testid": "detail-close", title: "close" }, "✕ close");
    close.addEventListener("click", () => commit({ selected: null }, false));
    const input = h("pre", { class: "specnb-pre", "data-testid": "detail-input" }, d.input ?? "");
    input.style.whiteSpace = "pre-wrap";
    const field = (name: string, value: Node | string, cls?: string) =>
      h("div", { class: "specnb-field" }, h("span", { class: "specnb-muted" }, `${name} `), h("span", { class: cls ?? null }, value));
    const cards = order.map((n) => {
      const a = answers[n];
      const raw = h("pre", { class: "specnb-pre specnb-raw", "data-testid": "detail-raw" }, pretty(a?.raw));
      raw.style.whiteSpace = "pre-wrap";
      return h(
        "div",
        { class: n === focus ? "specnb-card specnb-focus" : "specnb-card", "data-testid": "detail-answer", "data-model": n },
        h("div", { class: "specnb-card-title" }, n),
        field("answer", display(a?.answer)),
        field("score", isNum(a?.score) ? a.score.toFixed(4) : DASH),
        field("correct", a?.correct === true ? "✓ correct" : a?.correct === false ? "✗ wrong" : DASH,
          a?.correct === true ? "specnb-ok" : a?.correct === false ? "specnb-wrong" : undefined),
        a?.error ? field("error", a.error, "specnb-error-text") : null,
        raw,
      );
    });
    fill(
      detailEl,
      h("div", { class: "specnb-detail-head" }, h("strong", null, `item ${String(d.item)}`), close),
      input,
      get("has_gold") || (d.label !== null && d.label !== undefined)
        ? h("div", { class: "specnb-field", "data-testid": "detail-label" }, h("span", { class: "specnb-muted" }, "gold label "), display(d.label))
        : null,
      h("div", { class: "specnb-cards" }, ...cards),
    );
    show(detailEl, true);
  };

  // --- updates, coalesced per task -------------------------------------------------------------
  const draws: Record<Part, () => void> = {
    title: drawTitle,
    summary: drawSummary,
    charts: drawCharts,
    options: drawOptions,
    controls: drawControls,
    table: drawTable,
    pager: drawPager,
    detail: drawDetail,
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

  const deps: [keyof CompareTraits, Part[]][] = [
    ["title", ["title"]],
    ["summary_columns", ["summary"]],
    ["summary_rows", ["summary"]],
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
  const handlers = deps.map(([trait, parts]): [string, () => void] => [`change:${trait}`, () => schedule(...parts)]);
  for (const [event, fn] of handlers) m.on(event, fn);
  const onMsg = (msg: unknown, buffers?: (ArrayBuffer | DataView)[]) => {
    if (msg && typeof msg === "object" && (msg as { type?: unknown }).type === "plotly_js") loadPlotly(buffers?.[0]);
  };
  m.on("msg:custom", onMsg);

  for (const p of ORDER) draws[p]();

  return () => {
    disposed = true;
    for (const [event, fn] of handlers) m.off(event as `change:${keyof CompareTraits & string}`, fn);
    m.off("msg:custom", onMsg);
    if (searchTimer !== null) clearTimeout(searchTimer);
    leavePlotly(request);
    purgeCharts();
  };
}

export default { render };
