// specnb training view: a specialize run as it goes — loss per step, held-out metrics per evaluation,
// times, events and a Stop button (see ../README.md).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { h, isNum, kernelLink, NEEDS_KERNEL, show } from "./common";

/** One evaluation: step, epoch, loss and the run's metrics (keys named by the `metrics` trait). */
interface EvalRow {
  step: number | null;
  epoch: number | null;
  loss: number | null;
  [metric: string]: number | null;
}

/** A metric drawn per evaluation: [key in the eval rows, name, colour]. */
type MetricSpec = [string, string, string];

interface EventRow {
  step: number | null;
  text: string;
}

/** What people read, formatted by Python (`specnb/widgets/training_view.py`). */
interface Texts {
  status?: string;
  progress?: string;
  elapsed?: string;
  remaining?: string;
  loss?: string;
  best?: string;
  result?: string;
  stop_note?: string;
}

interface TrainingTraits {
  title: string;
  status: string; // pending, running, finished, stopped, interrupted, failed
  stopping: boolean;
  live_stop: boolean;
  step: number;
  total_steps: number | null;
  loss: [number, number][];
  evals: EvalRow[];
  metrics: MetricSpec[];
  events: EventRow[];
  texts: Texts;
}

const SVG = "http://www.w3.org/2000/svg";
const W = 380;
const H = 170;
const PAD = { left: 44, right: 10, bottom: 26 };

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

interface Series {
  name: string;
  colour: string;
  points: [number, number][];
  dots: boolean;
}

/** A small line chart (the snapshot's `_svg` draws the same in Python). */
function chart(testid: string, title: string, xMax: number, yMin: number, yMax: number, series: Series[]): SVGElement {
  const top = series.length > 1 ? 34 : 22; // a legend row under the title
  const spanY = yMax - yMin || 1;
  const x = (v: number) => PAD.left + (W - PAD.left - PAD.right) * (xMax ? v / xMax : 0);
  const y = (v: number) => H - PAD.bottom - (H - top - PAD.bottom) * ((v - yMin) / spanY);
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title,
                            class: "specnb-train-chart", "data-testid": testid });
  root.append(
    svg("text", { x: PAD.left, y: 13, class: "specnb-chart-title" }, title),
    svg("line", { x1: PAD.left, y1: y(yMin), x2: W - PAD.right, y2: y(yMin), class: "specnb-axis" }),
    svg("line", { x1: PAD.left, y1: top, x2: PAD.left, y2: y(yMin), class: "specnb-axis" }),
  );
  for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
    root.append(svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", class: "specnb-tick" }, v.toFixed(2)));
  }
  root.append(
    svg("text", { x: PAD.left, y: H - 8, class: "specnb-tick" }, "0"),
    svg("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end", class: "specnb-tick" },
        `step ${Math.round(xMax).toLocaleString("en-US")}`),
  );
  let legend = PAD.left;
  for (const s of series) {
    const coords = s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { points: coords, fill: "none", stroke: s.colour, "stroke-width": 1.5,
                                  "data-series": s.name }));
    if (s.dots) for (const [a, b] of s.points) root.append(svg("circle", { cx: x(a), cy: y(b), r: 2.5, fill: s.colour }));
    if (series.length > 1) {
      root.append(svg("text", { x: legend, y: 27, fill: s.colour }, `■ ${s.name}`));
      legend += 20 + 6 * s.name.length;
    }
  }
  return root;
}

function render({ model, el }: RenderProps<TrainingTraits>): () => void {
  const m: AnyModel<TrainingTraits> = model;
  let disposed = false;
  let asked = false; // Stop clicked here; the status follows from Python

  const title = h("span", { class: "specnb-title", "data-testid": "title" });
  const status = h("span", { class: "specnb-status", "data-testid": "status" });
  const stop = h("button", { type: "button", class: "specnb-button", "data-testid": "stop" }, "Stop");
  const track = h("div", { class: "specnb-bar-track specnb-train-bar" });
  const fillEl = h("div", { class: "specnb-bar-fill" });
  track.append(fillEl);
  const progress = h("div", { class: "specnb-train-line", "data-testid": "progress" });
  const times = h("div", { class: "specnb-train-line specnb-muted", "data-testid": "times" });
  const charts = h("div", { class: "specnb-train-charts", "data-testid": "charts" });
  const result = h("div", { class: "specnb-train-line", "data-testid": "result" });
  const note = h("div", { class: "specnb-muted specnb-train-note", "data-testid": "stop-note" });
  const events = h("ul", { class: "specnb-train-events", "data-testid": "events" });
  const root = h("div", { class: "specnb-training specnb" },
                 h("div", { class: "specnb-train-head" }, title, status, stop), track, progress, times, charts, result,
                 note, events);
  el.replaceChildren(root);
  const link = kernelLink(m, el, () => schedule());

  stop.addEventListener("click", () => {
    asked = true;
    stop.disabled = true;
    m.send({ type: "stop" });
  });

  const draw = () => {
    const state = m.get("status") ?? "pending";
    const texts = m.get("texts") ?? {};
    const running = state === "running" || state === "pending";
    const stopping = !!m.get("stopping") || (asked && running);
    title.textContent = m.get("title") || "training";
    status.textContent = texts.status ?? state;
    status.setAttribute("data-status", stopping && running ? "stopping" : state);
    const live = link.live();
    const liveStop = !!m.get("live_stop");
    stop.disabled = !running || stopping || !live || !liveStop;
    stop.title = !live ? NEEDS_KERNEL : !liveStop ? texts.stop_note ?? "" : "end training after the current step";
    show(stop, running);
    const total = m.get("total_steps");
    const step = m.get("step") ?? 0;
    const share = isNum(total) && total > 0 ? Math.min(1, step / total) : state === "finished" ? 1 : 0;
    fillEl.style.width = `${share * 100}%`;
    show(track, isNum(total) && total > 0);
    progress.textContent = [texts.progress, texts.loss, texts.best].filter((t) => t).join(" · ");
    times.textContent = [texts.elapsed, texts.remaining].filter((t) => t).join(" · ");
    result.textContent = texts.result ?? "";
    show(result, !!texts.result);
    note.textContent = running && live && !liveStop ? texts.stop_note ?? "" : "";
    show(note, note.textContent !== "");

    const loss = (m.get("loss") ?? []).filter(([a, b]) => isNum(a) && isNum(b));
    const evals = m.get("evals") ?? [];
    // the steps run so far (the bar and the progress line say how many are planned)
    const xMax = Math.max(1, ...loss.map(([a]) => a), ...evals.map((r) => r.step ?? 0));
    const drawn: SVGElement[] = [];
    if (loss.length) {
      const top = Math.max(...loss.map(([, b]) => b)) || 1;
      drawn.push(chart("loss-chart", "training loss per step", xMax, 0, top,
                       [{ name: "loss", colour: "#1976d2", points: loss, dots: false }]));
    }
    const metric = (key: string): [number, number][] =>
      evals.filter((r) => isNum(r[key])).map((r) => [r.step ?? 0, r[key] as number]);
    const series: Series[] = (m.get("metrics") ?? [])
      .map(([key, name, colour]) => ({ name, colour, points: metric(key), dots: true }))
      .filter((s) => s.points.length > 0);
    if (series.length) drawn.push(chart("eval-chart", "held-out metrics per evaluation", xMax, 0, 1, series));
    charts.replaceChildren(...drawn);
    show(charts, drawn.length > 0);

    const rows = m.get("events") ?? [];
    events.replaceChildren(...rows.map((r) => h("li", { "data-testid": "event" },
                                                 `step ${isNum(r.step) ? r.step : "–"}: ${String(r.text ?? "")}`)));
    show(events, rows.length > 0);
  };

  let scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      if (!disposed) draw();
    });
  }
  const traits: (keyof TrainingTraits)[] = ["title", "status", "stopping", "live_stop", "step", "total_steps", "loss",
                                            "evals", "metrics", "events", "texts"];
  for (const name of traits) m.on(`change:${name}`, schedule);
  draw();

  return () => {
    disposed = true;
    for (const name of traits) m.off(`change:${name}`, schedule);
    link.dispose();
  };
}

export default { render };
