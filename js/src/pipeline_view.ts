// specnb pipeline view: the stage graph with each stage's share of the time, and the sample table
// (see ../README.md).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { DASH, display, h, int, isNum, plural } from "./common";

interface Branch {
  branch: string; // the routed value, or "*" for the default branch
  stages: Stage[];
}

/** A stage's numbers as people read them, formatted by Python (`specnb/presentation.py`). */
interface StageTexts {
  items: string | null; // `12 items`; null: did not run
  rate: string | null; // `340/s`; null: unknown
  share: string | null; // `42%`; null: did not run
  share_detail: string; // the share bar's title
  fallback: string | null; // `25% to the fallback` (cascades that ran)
  weights: string | null; // `1.2 MiB`; null: no weights
}

interface Stage {
  id: string;
  text: string;
  kind: string;
  field: string | null;
  models: string;
  items: number | null;
  seconds: number | null;
  items_per_s: number | null;
  share: number | null;
  weight_bytes: number | null;
  fallback_share: number | null;
  texts?: StageTexts; // missing in an old saved state
  children: Branch[];
}

interface PipelineTraits {
  name: string;
  stages: Stage[];
  input: string;
  columns: string[];
  rows: unknown[][];
  n_rows: number;
  summary: string; // the title's stats: `3 stages · 40 items · last run 1.23 s`
}

const KINDS = new Set(["model", "cascade", "route", "python"]);

/** A stage's share of the run's time as a bar (`data-share` holds the 0–1 value, "" when it did not run). */
function shareBar(stage: Stage): HTMLElement {
  const share = isNum(stage.share) ? stage.share : null;
  const track = h("span", { class: "specnb-bar-track specnb-share-track" });
  if (share !== null) {
    const fillEl = h("span", { class: "specnb-bar-fill" });
    fillEl.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;
    if (share > 0) fillEl.style.minWidth = "2px";
    track.appendChild(fillEl);
  } else {
    track.classList.add("specnb-bar-unknown");
  }
  const t = stage.texts;
  return h(
    "div",
    {
      class: "specnb-share",
      "data-testid": "stage-share",
      "data-share": share ?? "",
      title: typeof t?.share_detail === "string" ? t.share_detail : share !== null ? DASH : "did not run",
    },
    track,
    h("span", { class: "specnb-share-text" }, typeof t?.share === "string" ? `${t.share} of the time` : DASH),
  );
}

/** `12 items · 340/s · 25% to the fallback`, models and weights, or `did not run`. */
function statsLine(stage: Stage): HTMLElement {
  const t = stage.texts;
  const parts: string[] = [];
  if (!isNum(stage.items)) {
    parts.push("did not run");
  } else {
    parts.push(typeof t?.items === "string" ? t.items : DASH);
    if (typeof t?.rate === "string") parts.push(t.rate);
    if (typeof t?.fallback === "string") parts.push(t.fallback);
  }
  const line = h("div", { class: "specnb-stage-stats", "data-testid": "stage-stats" }, parts.join(" · "));
  if (stage.models) line.append(h("span", { class: "specnb-stage-models" }, stage.models));
  if (typeof t?.weights === "string") {
    const title = isNum(stage.weight_bytes) ? `${stage.weight_bytes} bytes of weights` : null;
    line.append(h("span", { class: "specnb-muted", title }, t.weights));
  }
  return line;
}

/** The arrow between two boxes of a flow. */
const link = (): HTMLElement => h("div", { class: "specnb-link", "aria-hidden": "true" });

function badge(kind: string): HTMLElement {
  return h("span", { class: `specnb-kind specnb-kind-${KINDS.has(kind) ? kind : "other"}` }, kind);
}

function stageBox(stage: Stage): HTMLElement {
  const ran = isNum(stage.items);
  const classes = ["specnb-stage", `specnb-stage-${KINDS.has(stage.kind) ? stage.kind : "other"}`];
  if (!ran) classes.push("specnb-idle");
  const route = stage.kind === "route";
  // A route's one-line text repeats its branches, which the box draws: the box shows `route FIELD`.
  const label = route && stage.field ? `route ${stage.field}` : stage.text;
  const head = h(
    "div",
    { class: "specnb-stage-head" },
    badge(stage.kind),
    h("code", { class: "specnb-stage-text", "data-testid": "stage-text", title: stage.text }, label),
  );
  const box = h(
    "div",
    { class: classes.join(" "), "data-testid": "stage", "data-stage-id": stage.id, "data-kind": stage.kind },
    head,
    shareBar(stage),
    statsLine(stage),
  );
  if (route) {
    const branches = h("div", { class: "specnb-branches" });
    for (const b of stage.children ?? []) {
      const value = String(b.branch);
      const column = h(
        "div",
        { class: "specnb-branch", "data-testid": "branch", "data-branch": value },
        h("div", { class: "specnb-link specnb-link-short", "aria-hidden": "true" }),
        h("div", { class: "specnb-branch-label", title: value === "*" ? "every other value" : `${stage.field ?? ""} = ${value}` }, value === "*" ? "* (default)" : value),
      );
      if (b.stages.length === 0) {
        column.append(link(), h("div", { class: "specnb-skip", "data-testid": "skip" }, "skip"));
      } else {
        column.append(link(), flow(b.stages));
      }
      branches.append(column);
    }
    if (branches.childElementCount === 0) branches.append(h("div", { class: "specnb-skip" }, "no branches"));
    box.append(branches);
  }
  return box;
}

/** Stage boxes top to bottom with an arrow between each two. */
function flow(stages: Stage[]): HTMLElement {
  const column = h("div", { class: "specnb-flow" });
  stages.forEach((stage, i) => {
    if (i > 0) column.append(link());
    column.append(stageBox(stage));
  });
  return column;
}

function cell(v: unknown): HTMLElement {
  if (v === null || v === undefined) return h("td", { class: "specnb-muted" }, DASH);
  if (typeof v === "number") {
    const text = Number.isInteger(v) ? int(v) : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? String(Number(v.toFixed(4))) : v.toPrecision(4);
    return h("td", { class: "specnb-num", title: String(v) }, text);
  }
  const text = display(v);
  return h("td", { class: typeof v === "object" ? "specnb-json" : null }, h("div", { class: "specnb-clip", title: text.length > 80 ? text : null }, text));
}

function sampleTable(columns: string[], rows: unknown[][], total: number): HTMLElement {
  const section = h("div", { class: "specnb-sample" });
  if (rows.length === 0 || columns.length === 0) {
    section.append(
      h("div", { class: "specnb-empty", "data-testid": "sample-empty" }, "No sample output yet — set pipe.sample and call pipe.preview() (or %%specnb pipe NAME --sample VAR)."),
    );
    return section;
  }
  const shown = rows.length < total ? `first ${int(rows.length)} of ${int(total)} rows` : plural(rows.length, "row");
  section.append(h("div", { class: "specnb-section-title" }, "Sample ", h("span", { class: "specnb-muted" }, shown)));
  const head = h("tr", null, h("th", { class: "specnb-num" }, "#"), ...columns.map((c) => h("th", { "data-column": c }, c)));
  const body = rows.map((row, i) =>
    h("tr", { "data-testid": "sample-row", "data-row": i }, h("td", { class: "specnb-num specnb-muted" }, i), ...columns.map((_, j) => cell(row[j]))),
  );
  section.append(
    h("div", { class: "specnb-scroll" }, h("table", { class: "specnb-table specnb-sample-table", "data-testid": "sample" }, h("thead", null, head), h("tbody", null, ...body))),
  );
  return section;
}

function render({ model, el }: RenderProps<PipelineTraits>): () => void {
  const m: AnyModel<PipelineTraits> = model;
  const root = h("div", { class: "specnb-pipeline specnb" });
  el.replaceChildren(root);

  const draw = () => {
    const stages = m.get("stages") ?? [];
    const columns = m.get("columns") ?? [];
    const rows = m.get("rows") ?? [];
    const title = h(
      "div",
      { class: "specnb-title", "data-testid": "title" },
      m.get("name") || "pipeline",
      h("span", { class: "specnb-muted specnb-title-stats" }, m.get("summary") ?? ""),
    );
    const graph =
      stages.length === 0
        ? h("div", { class: "specnb-empty", "data-testid": "empty" }, "No stages yet — %%specnb pipe NAME, then one stage per line")
        : h("div", { class: "specnb-graph", "data-testid": "graph" }, h("div", { class: "specnb-flow-input", title: "each input's record starts with this field" }, h("code", null, m.get("input") || "text")), link(), flow(stages));
    root.replaceChildren(title, graph, sampleTable(columns, rows, m.get("n_rows") ?? rows.length));
  };

  // One redraw for the several traits a refresh changes together.
  let queued = false;
  const schedule = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      draw();
    });
  };
  const names = ["name", "input", "stages", "columns", "rows", "n_rows", "summary"] as const;
  for (const n of names) m.on(`change:${n}`, schedule);
  draw();

  return () => {
    for (const n of names) m.off(`change:${n}`, schedule);
  };
}

export default { render };
