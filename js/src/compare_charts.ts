// The compare view's charts: plotly.js loaded once per page, and one tab per figure with one chart
// shown at a time (see ../README.md).
import type { AnyModel } from "@anywidget/types";
import type { CompareTraits } from "./compare_view";
import { fill, h, show } from "./common";

/** A plotly figure as Python sends it (or as its JSON text). */
export interface Figure {
  data: unknown[];
  layout?: Record<string, unknown>;
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
    __specnbLab?: { version: number; loadPlotly(): Promise<unknown> }; // js/lab/src/index.ts
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

/** plotly.js: the page's, else the one specnb's JupyterLab / Notebook 7 extension offers (no kernel
 * needed, so a notebook reopened with its widget state draws its charts), else asked from Python
 * through `request` unless another view already did. */
function needPlotly(request: () => void): Promise<PlotlyLike> {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  const lab = window.__specnbLab;
  if (lab && lab.version === 1) {
    return lab.loadPlotly().then(
      (p) => (window.Plotly ??= p as PlotlyLike), // the rest of the view finds it there
      () => needPython(request),
    );
  }
  return needPython(request);
}

function needPython(request: () => void): Promise<PlotlyLike> {
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
export function loadPlotly(buffer: ArrayBuffer | DataView | undefined): void {
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

// Fit and theme. A chart is as wide as the chart area from its first draw (plotly's own default is 700 px, and
// an output not yet on the page measures 0) and follows it: a ResizeObserver sees the output area change width
// when a side panel opens, where plotly's `responsive` only sees the window. Its paper, font and grid colours
// are the widget's own (JupyterLab's CSS variables), again after a theme change (JupyterLab marks it on <body>).

/** The part of plotly's API the charts use beyond the loader's. */
type PlotlyApi = PlotlyLike & { relayout?(div: HTMLElement, update: Record<string, unknown>): unknown };

const TRANSPARENT = new Set(["", "transparent", "rgba(0, 0, 0, 0)"]);

/** `Plotly.relayout`, its failure dropped (a chart purged or redrawn meanwhile is drawn again from scratch). */
function relayout(div: HTMLElement, update: Record<string, unknown>): void {
  const Plotly = window.Plotly as PlotlyApi | undefined;
  Promise.resolve()
    .then(() => Plotly?.relayout?.(div, update))
    .catch(() => undefined);
}

/** A CSS variable as the page defines it, or null (outside JupyterLab). */
function cssVar(style: CSSStyleDeclaration, name: string): string | null {
  return style.getPropertyValue(name).trim() || null;
}

/** Layout updates (plotly's "a.b" paths) colouring a figure like the widget around `area`. */
function themeUpdate(area: HTMLElement, layout: Record<string, unknown>): Record<string, unknown> {
  const root = area.closest(".specnb") ?? area;
  const style = getComputedStyle(root);
  const out: Record<string, unknown> = {};
  if (style.color) out["font.color"] = style.color;
  if (!TRANSPARENT.has(style.backgroundColor)) {
    out.paper_bgcolor = style.backgroundColor;
    out.plot_bgcolor = style.backgroundColor;
    out["legend.bgcolor"] = style.backgroundColor;
  }
  const grid = cssVar(style, "--jp-border-color2");
  const line = cssVar(style, "--jp-border-color1") ?? grid;
  const axes = new Set(["xaxis", "yaxis", ...Object.keys(layout).filter((k) => /^[xy]axis\d*$/.test(k))]);
  for (const axis of axes) {
    if (grid) out[`${axis}.gridcolor`] = out[`${axis}.zerolinecolor`] = grid;
    if (line) out[`${axis}.linecolor`] = line;
  }
  return out;
}

/** `layout` (copied) with `update`'s "a.b" paths set in it. */
function withUpdate(layout: Record<string, unknown>, update: Record<string, unknown>): Record<string, unknown> {
  const out = JSON.parse(JSON.stringify(layout)) as Record<string, unknown>;
  for (const [path, value] of Object.entries(update)) {
    const keys = path.split(".");
    let at = out;
    for (const key of keys.slice(0, -1)) {
      const next = at[key];
      at = at[key] = next && typeof next === "object" ? (next as Record<string, unknown>) : {};
    }
    at[keys[keys.length - 1]] = value;
  }
  return out;
}

/**
 * The chart section: a tab per figure of `figures` and its chart, drawn with plotly on first view.
 * `draw` rebuilds the tabs (keeping the chosen one when it is still there); `dispose` drops this
 * view's plotly request, its observers and its charts.
 */
export function chartsPart(m: AnyModel<CompareTraits>): { el: HTMLElement; draw(): void; dispose(): void } {
  const tabBar = h("div", { class: "specnb-tabs", role: "tablist" });
  const chartArea = h("div", { class: "specnb-charts" });
  const el = h("div", { class: "specnb-chart-section" }, tabBar, chartArea);

  let disposed = false;
  let active: string | null = null;
  let generation = 0;
  const drawn = new Set<string>(); // drawing or drawn
  const widths = new Map<string, number>(); // the width each drawn chart was laid out at
  const layouts = new Map<string, Record<string, unknown>>(); // each drawn chart's figure layout
  const chartDivs = new Map<string, HTMLElement>();
  const tabs = new Map<string, HTMLButtonElement>();
  const request = () => m.send({ type: "plotly" });
  const areaWidth = () => chartArea.clientWidth; // 0 while the output is not on the page, or hidden

  const purge = () => {
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
    let fig = (m.get("figures") ?? {})[name];
    if (!div || !fig) return;
    drawn.add(name);
    const gen = generation;
    try {
      if (typeof fig === "string") fig = JSON.parse(fig) as Figure;
      const Plotly = await needPlotly(request);
      if (disposed || gen !== generation) return;
      const width = areaWidth();
      if (width === 0) {
        drawn.delete(name); // not on the page: the resize observer draws it once it has a width
        return;
      }
      const layout = fig.layout ?? {};
      layouts.set(name, layout);
      widths.set(name, width);
      const full = withUpdate(layout, { ...themeUpdate(chartArea, layout), width });
      await Plotly.newPlot(div, fig.data ?? [], full, { displaylogo: false });
    } catch (e) {
      if (disposed || gen !== generation) return;
      drawn.delete(name);
      fill(div, h("div", { class: "specnb-error" }, `chart unavailable: ${e instanceof Error ? e.message : String(e)}`));
    }
  };

  /** The active chart: drawn once the area has a width, laid out again when the width changed. */
  const fit = () => {
    const width = areaWidth();
    if (active === null || width === 0) return;
    const div = chartDivs.get(active);
    if (!drawn.has(active)) void plot(active);
    else if (div && widths.has(active) && widths.get(active) !== width) {
      widths.set(active, width);
      relayout(div, { width });
    }
  };

  const retheme = () => {
    for (const [name, layout] of layouts) {
      const div = chartDivs.get(name);
      if (div) relayout(div, themeUpdate(chartArea, layout));
    }
  };

  const resizes = new ResizeObserver(() => {
    if (!disposed) fit();
  });
  resizes.observe(chartArea);
  const themes = new MutationObserver(() => {
    if (!disposed) retheme();
  });
  themes.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  const selectChart = (name: string | null) => {
    active = name;
    for (const [n, tab] of tabs) {
      tab.classList.toggle("specnb-active", n === name);
      tab.setAttribute("aria-selected", String(n === name));
    }
    for (const [n, div] of chartDivs) show(div, n === name);
    fit();
  };

  const drawCharts = () => {
    purge();
    generation++;
    drawn.clear();
    widths.clear();
    layouts.clear();
    chartDivs.clear();
    tabs.clear();
    const figures = m.get("figures") ?? {};
    const order = (m.get("chart_order") ?? []).filter((n) => n in figures);
    const names = order.length > 0 ? order : Object.keys(figures);
    for (const name of names) {
      const tab = h(
        "button",
        { type: "button", class: "specnb-tab", role: "tab", "data-testid": `chart-tab-${name}`, "data-name": name },
        name.replace(/_/g, " "),
      );
      tab.addEventListener("click", () => {
        selectChart(name);
        m.set("chart", name);
        m.save_changes();
      });
      tabs.set(name, tab);
      chartDivs.set(name, h("div", { class: "specnb-chart", role: "tabpanel", "data-testid": `chart-${name}`, "data-name": name }));
    }
    tabBar.replaceChildren(...tabs.values());
    chartArea.replaceChildren(...chartDivs.values());
    show(el, names.length > 0);
    const chosen = active ?? m.get("chart") ?? null;
    selectChart(chosen !== null && names.includes(chosen) ? chosen : (names[0] ?? null));
  };

  const dispose = () => {
    disposed = true;
    resizes.disconnect();
    themes.disconnect();
    leavePlotly(request);
    purge();
  };

  return { el, draw: drawCharts, dispose };
}
