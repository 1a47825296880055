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

/**
 * The chart section: a tab per figure of `figures` and its chart, drawn with plotly on first view.
 * `draw` rebuilds the tabs (keeping the chosen one when it is still there); `dispose` drops this
 * view's plotly request and purges its charts.
 */
export function chartsPart(m: AnyModel<CompareTraits>): { el: HTMLElement; draw(): void; dispose(): void } {
  const tabBar = h("div", { class: "specnb-tabs", role: "tablist" });
  const chartArea = h("div", { class: "specnb-charts" });
  const el = h("div", { class: "specnb-chart-section" }, tabBar, chartArea);

  let disposed = false;
  let active: string | null = null;
  let generation = 0;
  const drawn = new Set<string>();
  const chartDivs = new Map<string, HTMLElement>();
  const tabs = new Map<string, HTMLButtonElement>();
  const request = () => m.send({ type: "plotly" });

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
    purge();
    generation++;
    drawn.clear();
    chartDivs.clear();
    tabs.clear();
    const names = Object.keys(m.get("figures") ?? {});
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
    show(el, names.length > 0);
    selectChart(active !== null && names.includes(active) ? active : (names[0] ?? null));
  };

  const dispose = () => {
    disposed = true;
    leavePlotly(request);
    purge();
  };

  return { el, draw: drawCharts, dispose };
}
