// The compare view's disagreement browser: the filter / sort / search / page-size controls, the page of
// rows, the pager with the comparison's counts, and the opened row's detail (see ../README.md). Every
// control writes its trait back to Python, which answers with the new page.
import type { AnyModel } from "@anywidget/types";
import type { CompareTraits } from "./compare_view";
import { DASH, display, fill, h, int, isNum, plural, pretty, score, show } from "./common";

export type Item = string | number;

export interface Answer {
  answer: unknown;
  score: number | null;
  correct: boolean | null;
  error: string | null;
  raw?: unknown;
}

export interface Row {
  item: Item;
  input: string;
  label: unknown;
  answers: Record<string, Answer>;
}

/** What the browser redraws, one function per part of the view's update table. */
export interface BrowserDraws {
  options(): void;
  controls(): void;
  table(): void;
  pager(): void;
  detail(): void;
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

/** One model's answer in the rows table: the answer (or its error), its score and a ✓ / ✗ mark. */
function answerCell(name: string, a: Answer | undefined, focus: boolean): HTMLTableCellElement {
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
  if (isNum(a.score)) td.append(h("span", { class: "specnb-score" }, score(a.score, 2)));
  if (a.correct === true) td.append(h("span", { class: "specnb-mark specnb-ok", title: "correct" }, "✓"));
  else if (a.correct === false) td.append(h("span", { class: "specnb-mark specnb-wrong", title: "wrong" }, "✗"));
  return td;
}

/**
 * The browser: `el` holds the controls, the rows table, the pager and the detail; `draws` redraws each
 * part from the traits; `dispose` drops a pending search.
 */
export function browserPart(m: AnyModel<CompareTraits>): { el: HTMLElement; draws: BrowserDraws; dispose(): void } {
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

  // --- skeleton ------------------------------------------------------------------------------
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
  const detailEl = h("div", { class: "specnb-detail", "data-testid": "detail", tabindex: -1 }); // a click in it keeps Esc here
  show(detailEl, false);

  const el = h("div", { class: "specnb-browser" }, controls, h("div", { class: "specnb-scroll" }, table), pager, detailEl);

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
  let reveal = false; // a row was opened here: bring its detail into view once it is drawn
  const revealDetail = () => {
    reveal = false;
    // nearest: no scroll when it is in view already; a detail taller than the window shows its head
    const tall = detailEl.getBoundingClientRect().height > window.innerHeight;
    detailEl.scrollIntoView({ block: tall ? "start" : "nearest" });
  };
  const open = (item: Item) => {
    const selected = get("selected");
    if (selected !== null && selected !== undefined && String(selected) === String(item) && get("detail")) {
      revealDetail(); // already open: no change comes back from Python
      return;
    }
    reveal = true;
    commit({ selected: item }, false);
  };
  const closeDetail = () => commit({ selected: null }, false);
  el.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || !get("detail")) return;
    ev.preventDefault();
    ev.stopPropagation();
    closeDetail();
  });

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
    // The rows are new elements: the focused one (a click on it opened it) keeps the focus, so Esc still works.
    const focused = document.activeElement;
    const refocus = focused instanceof HTMLElement && table.contains(focused) ? focused.dataset.item : undefined;
    table.replaceChildren(h("thead", null, head), h("tbody", null, ...body));
    if (refocus !== undefined) body.find((tr) => tr.dataset.item === refocus)?.focus({ preventScroll: true });
  };

  // --- pager -----------------------------------------------------------------------------------
  const drawPager = () => {
    const page = get("page") ?? 0;
    const size = get("page_size") || 20;
    const total = get("total") ?? 0;
    info.textContent = pageInfo(page, size, total);
    prev.disabled = page <= 0;
    next.disabled = (page + 1) * size >= total;
    stats.textContent = `${plural(get("n_items") ?? 0, "item")} · ${plural(get("n_disagreements") ?? 0, "disagreement")}`;
  };

  // --- detail ----------------------------------------------------------------------------------
  const drawDetail = () => {
    const d = get("detail");
    if (!d) {
      reveal = false;
      detailEl.replaceChildren();
      show(detailEl, false);
      return;
    }
    const focus = get("focus_model") ?? "";
    const answers = d.answers ?? {};
    const order = [...(get("models") ?? []).filter((n) => n in answers), ...Object.keys(answers).filter((n) => !(get("models") ?? []).includes(n))];
    const close = h("button", { type: "button", class: "specnb-button", "data-testid": "detail-close", title: "close (Esc)" }, "✕ close");
    close.addEventListener("click", closeDetail);
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
        field("score", score(a?.score, 4)),
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
    if (reveal) revealDetail();
  };

  const dispose = () => {
    disposed = true;
    if (searchTimer !== null) clearTimeout(searchTimer);
    searchTimer = null;
  };

  return {
    el,
    draws: { options: drawOptions, controls: drawControls, table: drawTable, pager: drawPager, detail: drawDetail },
    dispose,
  };
}
