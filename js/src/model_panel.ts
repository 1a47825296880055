// specnb model panel: the loaded models and the memory of each device (see ../README.md).
import type { AnyModel, RenderProps } from "@anywidget/types";
import { DASH, bytes, count, h, isNum, show } from "./common";

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
}

interface DeviceInfo {
  device: string;
  used_bytes: number;
  budget_bytes: number | null;
  total_bytes: number | null;
}

interface PanelTraits {
  models: ModelInfo[];
  devices: DeviceInfo[];
  error: string;
}

const COLUMNS = ["alias", "task", "role", "backend", "device", "dtype", "parameters", "weights", "memory", "pinned", ""];
const NUMERIC = new Set(["parameters", "weights"]);

const str = (v: unknown): string => (v === null || v === undefined ? DASH : String(v));
const pct = (part: number, whole: number): number => Math.max(0, Math.min(100, (part / whole) * 100));

/** The device entry a model's memory counts against: same name, else same kind (`cuda` ~ `cuda:0`). */
function deviceOf(devices: DeviceInfo[], name: string): DeviceInfo | undefined {
  const kind = (d: string) => String(d).split(":")[0];
  return devices.find((d) => d.device === name) ?? devices.find((d) => kind(d.device) === kind(name));
}

function deviceText(d: DeviceInfo): string {
  let text = `${d.device}: ${bytes(d.used_bytes)}`;
  text += isNum(d.budget_bytes) ? ` of ${bytes(d.budget_bytes)} budget` : " · no budget";
  if (isNum(d.total_bytes)) text += ` · ${bytes(d.total_bytes)} total`;
  return text;
}

function deviceBar(d: DeviceInfo): HTMLElement {
  const used = isNum(d.used_bytes) ? d.used_bytes : 0;
  const budget = isNum(d.budget_bytes) ? d.budget_bytes : null;
  const total = isNum(d.total_bytes) ? d.total_bytes : null;
  const scale = total ?? budget;
  const over = budget !== null && used > budget;
  const title = [
    `${d.device}`,
    `used ${bytes(used)} (${used} bytes)`,
    budget !== null ? `budget ${bytes(budget)} (${budget} bytes)` : "no budget",
    total !== null ? `total ${bytes(total)} (${total} bytes)` : "total unknown",
  ].join(" · ");
  const track = h("div", { class: "specnb-bar-track" });
  if (scale !== null && scale > 0) {
    const fillEl = h("div", { class: over ? "specnb-bar-fill specnb-over" : "specnb-bar-fill" });
    fillEl.style.width = `${pct(used, scale)}%`;
    if (used > 0) fillEl.style.minWidth = "2px"; // a few MB of 24 GB still shows
    track.appendChild(fillEl);
    if (budget !== null && total !== null && total > 0) {
      const mark = h("div", { class: "specnb-bar-budget", title: `budget ${bytes(budget)}` });
      mark.style.left = `${pct(budget, total)}%`;
      track.appendChild(mark);
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
      title,
    },
    h("div", { class: "specnb-device-text" }, deviceText(d)),
    track,
  );
}

function memoryCell(m: ModelInfo, devices: DeviceInfo[]): HTMLElement {
  const mem = isNum(m.memory_bytes) ? m.memory_bytes : isNum(m.weight_bytes) ? m.weight_bytes : null;
  const dev = deviceOf(devices, m.device);
  const scale = dev ? (isNum(dev.budget_bytes) ? dev.budget_bytes : isNum(dev.total_bytes) ? dev.total_bytes : null) : null;
  const cell = h("td", { class: "specnb-mem" });
  if (mem === null) {
    cell.textContent = DASH;
    return cell;
  }
  if (scale !== null && scale > 0) {
    const share = (mem / scale) * 100;
    const track = h("span", { class: "specnb-bar-track specnb-bar-small" });
    const fillEl = h("span", { class: share > 100 ? "specnb-bar-fill specnb-over" : "specnb-bar-fill" });
    fillEl.style.width = `${pct(mem, scale)}%`;
    if (mem > 0) fillEl.style.minWidth = "2px";
    track.appendChild(fillEl);
    cell.append(track);
    cell.title = `${bytes(mem)} = ${share.toFixed(1)} % of ${dev?.device} ${isNum(dev?.budget_bytes) ? "budget" : "total"} (${bytes(scale)})`;
  } else {
    cell.title = bytes(mem);
  }
  cell.append(h("span", { class: "specnb-mem-text" }, bytes(mem)));
  return cell;
}

function render({ model, el }: RenderProps<PanelTraits>): () => void {
  const m: AnyModel<PanelTraits> = model;
  const pending = new Set<string>(); // aliases whose unload was sent and whose row has not changed yet
  const root = h("div", { class: "specnb-model-panel specnb" });
  el.replaceChildren(root);

  const draw = () => {
    const models = m.get("models") ?? [];
    const devices = m.get("devices") ?? [];
    const error = m.get("error") ?? "";

    const errorEl = h("div", { class: "specnb-error", "data-testid": "error", role: "alert" }, error);
    show(errorEl, error !== "");

    const devicesEl = h("div", { class: "specnb-devices" }, ...devices.map(deviceBar));

    let body: HTMLElement;
    if (models.length === 0) {
      body = h("div", { class: "specnb-empty", "data-testid": "empty" }, "No models loaded — %specnb load NAME");
    } else {
      const head = h("tr", null, ...COLUMNS.map((c) => h("th", { class: NUMERIC.has(c) ? "specnb-num" : null }, c)));
      const rows = models.map((info) => {
        const alias = String(info.alias);
        const pin = h("input", { type: "checkbox", "data-testid": "pin", "data-alias": alias, title: "pinned: never evicted" });
        pin.checked = !!info.pinned;
        pin.addEventListener("change", () => m.send({ type: "pin", alias, pinned: pin.checked }));
        const unload = h("button", { type: "button", class: "specnb-button", "data-testid": "unload", "data-alias": alias }, "Unload");
        unload.disabled = pending.has(alias);
        unload.addEventListener("click", () => {
          pending.add(alias);
          unload.disabled = true;
          m.send({ type: "unload", alias });
        });
        const loaded = isNum(info.load_seconds) ? ` · loaded in ${info.load_seconds.toFixed(1)} s` : "";
        return h(
          "tr",
          { "data-testid": "model-row", "data-alias": alias },
          h("td", { class: "specnb-alias", title: `${str(info.source)}${loaded}` }, alias),
          h("td", null, str(info.task)),
          h("td", null, str(info.role)),
          h("td", null, str(info.backend)),
          h("td", null, str(info.device)),
          h("td", null, str(info.dtype)),
          h("td", { class: "specnb-num", title: isNum(info.parameters) ? String(info.parameters) : null }, count(info.parameters)),
          h("td", { class: "specnb-num", title: isNum(info.weight_bytes) ? `${info.weight_bytes} bytes` : null }, bytes(info.weight_bytes)),
          memoryCell(info, devices),
          h("td", { class: "specnb-center" }, pin),
          h("td", null, unload),
        );
      });
      body = h("table", { class: "specnb-table" }, h("thead", null, head), h("tbody", null, ...rows));
    }
    root.replaceChildren(errorEl, devicesEl, body);
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
  draw();

  return () => {
    m.off("change:models", onModels);
    m.off("change:devices", draw);
    m.off("change:error", onError);
  };
}

export default { render };
