// Helpers shared by the widgets. Every text reaches the DOM through textContent, text nodes or
// setAttribute; nothing here (or anywhere in src/) parses HTML. The numbers people read (bytes, rates,
// durations, shares, summary values) come from Python as ready-made texts (specnb/presentation.py); the
// formatters here only write counts, pages and scores.

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

const INT = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Integer with thousands separators: `1,234`. */
export function int(n: number): string {
  return INT.format(n);
}

/** `1 item`, `1,234 items`: a count with its noun. */
export function plural(n: number, noun: string): string {
  return `${int(n)} ${noun}${n === 1 ? "" : "s"}`;
}

/** A score with `digits` decimals (`0.93`, `0.9312`), or a dash when it is not a number. */
export function score(v: unknown, digits: number): string {
  return isNum(v) ? v.toFixed(digits) : DASH;
}

/** A text sent ready-made by Python (`specnb/presentation.py`), or a dash when it is missing. */
export function text(v: unknown): string {
  return typeof v === "string" ? v : DASH;
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

/** The class jupyter-widgets puts on a view whose model has no live kernel connection (a notebook
 * reopened with its saved widget state, a kernel shut down or restarted). */
const DISCONNECTED = "jupyter-widgets-disconnected";

/** What a control that needs the kernel says when there is none. */
export const NEEDS_KERNEL = "needs a running kernel: re-run this cell";

/**
 * Whether the view's model talks to a live kernel, and `onChange` called when that changes (the
 * model's `comm_live_update` event). Front ends that do not mark disconnected views count as live.
 */
export function kernelLink(model: { on(name: string, cb: () => void): void; off(name?: string | null, cb?: (() => void) | null): void },
                           el: HTMLElement, onChange: () => void): { live(): boolean; dispose(): void } {
  const live = () => !el.classList.contains(DISCONNECTED) && !el.closest(`.${DISCONNECTED}`);
  // jupyter-widgets updates the class in its own comm_live_update handler; look after it has run.
  const changed = () => queueMicrotask(onChange);
  model.on("comm_live_update", changed);
  return { live, dispose: () => model.off("comm_live_update", changed) };
}
