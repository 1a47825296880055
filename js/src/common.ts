// Helpers shared by the two widgets. Every text reaches the DOM through textContent, text nodes or
// setAttribute; nothing here (or anywhere in src/) parses HTML.

export type Attr = string | number | boolean | null | undefined;
export type Child = Node | string | number | null | undefined | false;

/**
 * `h("td", { class: "specnb-num", "data-alias": alias }, text)`: an element with attributes set by
 * setAttribute (`true` → empty attribute, `false` / null / undefined → left out) and children appended
 * as nodes; strings become text (textContent for a single one, text nodes otherwise).
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Record<string, Attr> | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  const kept = children.filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false);
  if (kept.length === 1 && typeof kept[0] !== "object") {
    el.textContent = String(kept[0]);
  } else {
    for (const c of kept) el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Shows or hides an element without depending on the stylesheet (inline display + hidden). */
export function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
  el.style.display = visible ? "" : "none";
}

/** Replaces an element's children by `children` (text as text nodes). */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren(
    ...children
      .filter((c): c is Node | string | number => c !== null && c !== undefined && c !== false)
      .map((c) => (typeof c === "object" ? c : document.createTextNode(String(c)))),
  );
}

export const DASH = "–";

const en = (digits: number) =>
  new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const FMT = [en(0), en(1), en(2), en(3), en(4)];

export function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** `n` with `digits` decimals (0–4 use a cached en-US format with thousands separators). */
export function fixed(n: number, digits: number): string {
  const f = FMT[digits];
  return f ? f.format(n) : n.toFixed(digits);
}

/** Integer with thousands separators: `1,234`. */
export function int(n: number): string {
  return FMT[0].format(n);
}

/** Bytes as the Python side writes them (`specnb.settings.format_bytes`): `512 B`, `86.7 MiB`, `4.0 GiB`. */
export function bytes(n: number | null | undefined): string {
  if (!isNum(n)) return DASH;
  const sign = n < 0 ? "-" : "";
  let v = Math.abs(n);
  if (v < 1024) return `${sign}${Math.round(v)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${sign}${v.toFixed(1)} ${units[i]}`;
}

/** A count in K / M / B: `22.7 M`, `950`, `1.1 B`. */
export function count(n: number | null | undefined): string {
  if (!isNum(n)) return DASH;
  const v = Math.abs(n);
  if (v < 1000) return String(Math.round(n));
  const [div, unit] = v < 999_950 ? [1e3, "K"] : v < 999_950_000 ? [1e6, "M"] : [1e9, "B"];
  return `${(n / div).toFixed(1)} ${unit}`;
}

/** A value of unknown shape as one line: strings as they are, null as a dash, the rest as JSON. */
export function display(v: unknown): string {
  if (v === null || v === undefined) return DASH;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Pretty JSON for a <pre>. */
export function pretty(v: unknown): string {
  if (v === undefined) return "null";
  try {
    return JSON.stringify(v, null, 2) ?? String(v);
  } catch {
    return String(v);
  }
}
