// specnb model panel: the loaded models and the memory of each device (see ../README.md).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { DASH, h, isNum, kernelLink, NEEDS_KERNEL, show, text } from "./common";

/** A model's numbers as people read them, formatted by Python (`specnb/presentation.py`). */
interface ModelTexts {
  parameters: string; // `22.7 M`
  weights: string; // `86.7 MiB`
  memory: string; // the memory cell's text
  memory_detail: string; // the memory cell's title: `90.1 MiB = 1.2 % of cpu budget (12.0 GiB)`
  loaded: string; // ` · loaded in 0.1 s`, or ""
}

/** A device's bar texts, formatted by Python. */
interface DeviceTexts {
  line: string; // `cpu: 86.7 MiB of 1.0 GiB budget · 24.0 GiB total`
  detail: string; // the bar's title
  budget: string | null; // the budget mark's title: `budget 1.0 GiB`
}

interface ModelInfo {
  alias: string;
  task: string;
  role: string;
  backend: string;
  device: string;
  dtype: string;
  parameters: number | null;
  weight_bytes: number | null;
  memory_bytes: number | null;
  load_seconds: number;
  pinned: boolean;
  source: string;
  memory_share?: number | null; // memory over the device's budget (else its total), 0–1+; null: unknown
  texts?: ModelTexts; // missing in an old saved state
}

interface DeviceInfo {
  device: string;
  used_bytes: number;
  budget_bytes: number | null;
  total_bytes: number | null;
  texts?: DeviceTexts; // missing in an old saved state
}

interface PanelTraits {
  models: ModelInfo[];
  devices: DeviceInfo[];
  error: string;
  notes?: Record<string, string>; // header tooltips by column (`memory`: what it measures)
}

const COLUMNS = ["alias", "task", "role", "backend", "device", "dtype", "parameters", "weights", "memory", "pinned", ""];
const NUMERIC = new Set(["parameters", "weights"]);
/** Headers that read otherwise than their column's name. */
const LABELS: Record<string, string> = { memory: "memory at load" };

const str = (v: unknown): string => (v === null || v === undefined ? DASH : String(v));
const pct = (part: number, whole: number): number => Math.max(0, Math.min(100, (part / whole) * 100));

function deviceBar(d: DeviceInfo): HTMLElement {
  const used = isNum(d.used_bytes) ? d.used_bytes : 0;
  const budget = isNum(d.budget_bytes) ? d.budget_bytes : null;
  const total = isNum(d.total_bytes) ? d.total_bytes : null;
  const scale = total ?? budget;
  const over = budget !== null && used > budget;
  const track = h("div", { class: "specnb-bar-track" });
  let label: HTMLElement | null = null;
  if (scale !== null && scale > 0) {
    const fillEl = h("div", { class: over ? "specnb-bar-fill specnb-over" : "specnb-bar-fill" });
    fillEl.style.width = `${pct(used, scale)}%`;
    if (used > 0) fillEl.style.minWidth = "2px"; // a few MB of 24 GB still shows
    track.appendChild(fillEl);
    if (budget !== null && total !== null && total > 0) {
      const at = pct(budget, total);
      const mark = h("div", { class: "specnb-bar-budget", title: d.texts?.budget ?? null });
      mark.style.left = `${at}%`;
      track.appendChild(mark);
      if (typeof d.texts?.budget === "string") {
        // the tick's label under the bar, centred on it (kept inside the bar near either end)
        label = h("span", { class: "specnb-budget-label", "data-testid": "budget-label" }, `▲ ${d.texts.budget}`);
        label.style.left = `${at}%`;
        label.style.transform = `translateX(-${at < 15 ? 0 : at > 85 ? 100 : 50}%)`;
      }
    }
  } else {
    track.classList.add("specnb-bar-unknown");
  }
  return h(
    "div",
    {
      class: over ? "specnb-device specnb-over" : "specnb-device",
      "data-testid": "device-bar",
      "data-device": d.device,
      "data-used": used,
      "data-budget": budget,
      "data-total": total,
      title: typeof d.texts?.detail === "string" ? d.texts.detail : str(d.device),
    },
    h("div", { class: "specnb-device-text" }, typeof d.texts?.line === "string" ? d.texts.line : `${str(d.device)}: ${DASH}`),
    track,
    label ? h("div", { class: "specnb-bar-labels" }, label) : null,
  );
}

/** A model's memory: a bar of its share of its device's budget (or total) when known, and the text. */
function memoryCell(m: ModelInfo): HTMLElement {
  const share = isNum(m.memory_share) ? m.memory_share : null;
  const detail = m.texts?.memory_detail;
  const cell = h("td", { class: "specnb-mem", title: detail || null });
  if (share !== null) {
    const track = h("span", { class: "specnb-bar-track specnb-bar-small" });
    const fillEl = h("span", { class: share > 1 ? "specnb-bar-fill specnb-over" : "specnb-bar-fill" });
    fillEl.style.width = `${Math.max(0, Math.min(100, share * 100))}%`;
    if (share > 0) fillEl.style.minWidth = "2px";
    track.appendChild(fillEl);
    cell.append(track);
  }
  cell.append(h("span", { class: "specnb-mem-text" }, text(m.texts?.memory)));
  return cell;
}

function render({ model, el }: RenderProps<PanelTraits>): () => void {
  const m: AnyModel<PanelTraits> = model;
  const pending = new Set<string>(); // aliases whose unload was sent and whose row has not changed yet
  const root = h("div", { class: "specnb-model-panel specnb" });
  el.replaceChildren(root);
  const link = kernelLink(m, el, () => draw());

  const draw = () => {
    const models = m.get("models") ?? [];
    const devices = m.get("devices") ?? [];
    const error = m.get("error") ?? "";

    const errorEl = h("div", { class: "specnb-error", "data-testid": "error", role: "alert" }, error);
    show(errorEl, error !== "");

    const devicesEl = h("div", { class: "specnb-devices" }, ...devices.map(deviceBar));
    const live = link.live();
    const offline = h("div", { class: "specnb-muted", "data-testid": "offline" },
                      "Not connected to a kernel: re-run this cell to unload or pin models.");
    show(offline, !live && models.length > 0);

    let body: HTMLElement;
    if (models.length === 0) {
      body = h("div", { class: "specnb-empty", "data-testid": "empty" }, "No models loaded — %specnb load NAME");
    } else {
      const notes = m.get("notes") ?? {};
      const head = h(
        "tr",
        null,
        ...COLUMNS.map((c) => {
          const note = typeof notes[c] === "string" && notes[c] ? notes[c] : null;
          const cls = [NUMERIC.has(c) ? "specnb-num" : "", note ? "specnb-noted" : ""].join(" ").trim();
          return h("th", { class: cls || null, "data-key": c || null, title: note }, LABELS[c] ?? c);
        }),
      );
      const rows = models.map((info) => {
        const alias = String(info.alias);
        const pin = h("input", { type: "checkbox", "data-testid": "pin", "data-alias": alias, title: "pinned: never evicted" });
        pin.checked = !!info.pinned;
        pin.disabled = !live;
        if (!live) pin.title = NEEDS_KERNEL;
        pin.addEventListener("change", () => m.send({ type: "pin", alias, pinned: pin.checked }));
        const unload = h("button", { type: "button", class: "specnb-button", "data-testid": "unload", "data-alias": alias }, "Unload");
        unload.disabled = pending.has(alias) || !live;
        if (!live) unload.title = NEEDS_KERNEL;
        unload.addEventListener("click", () => {
          pending.add(alias);
          unload.disabled = true;
          m.send({ type: "unload", alias });
        });
        const t = info.texts;
        return h(
          "tr",
          { "data-testid": "model-row", "data-alias": alias },
          h("td", { class: "specnb-alias", title: `${str(info.source)}${t?.loaded ?? ""}` }, alias),
          h("td", null, str(info.task)),
          h("td", null, str(info.role)),
          h("td", null, str(info.backend)),
          h("td", null, str(info.device)),
          h("td", null, str(info.dtype)),
          h("td", { class: "specnb-num", title: isNum(info.parameters) ? String(info.parameters) : null }, text(t?.parameters)),
          h("td", { class: "specnb-num", title: isNum(info.weight_bytes) ? `${info.weight_bytes} bytes` : null }, text(t?.weights)),
          memoryCell(info),
          h("td", { class: "specnb-center" }, pin),
          h("td", null, unload),
        );
      });
      body = h("table", { class: "specnb-table" }, h("thead", null, head), h("tbody", null, ...rows));
    }
    root.replaceChildren(errorEl, offline, devicesEl, body);
  };

  const onModels = () => {
    pending.clear();
    draw();
  };
  const onError = () => {
    if (m.get("error")) pending.clear(); // a failed unload: let the user try again
    draw();
  };
  m.on("change:models", onModels);
  m.on("change:devices", draw);
  m.on("change:error", onError);
  m.on("change:notes", draw);
  draw();

  return () => {
    m.off("change:models", onModels);
    m.off("change:devices", draw);
    m.off("change:error", onError);
    m.off("change:notes", draw);
    link.dispose();
  };
}

export default { render };
