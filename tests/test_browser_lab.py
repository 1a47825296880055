"""The notebook layer end to end: JupyterLab 4 (and Notebook 7) in Debian's Chromium, driven by Playwright.

One JupyterLab server and one headless Chromium serve the module. A notebook loads the langid specialist
and a deliberately weak callable (``guess``), shows the model panel, runs ``%specnb compare`` in its line
form (a DataFrame) and its cell form (one input per line, and hostile HTML), then:

* the model panel lists both models with a device bar; its Unload button unloads ``guess`` from the
  kernel's registry (the row goes at once, and a re-run cell no longer lists it);
* the compare view draws its summary and a plotly chart, pages, filters (model × correctness,
  disagreements only, search) and opens an item's detail, with counts checked against the same
  comparison run in this process;
* hostile inputs show as text in the rows, the detail and the saved static snapshot, and run nothing;
* the saved notebook carries the widget view and a ``text/html`` snapshot and stays small;
* Notebook 7 (``/notebooks/…``, same server) renders the panel and the compare view too.

The screenshots the README uses are written to build/screenshots/; a failing test leaves
failure-<test>.png / .txt (page, console, dialogs, server log) there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_support import (
    SCREENSHOTS,
    TIMEOUT_MS,
    VIEWPORT,
    NotebookPage,
    dump_on_failure,
    expect,
    write_notebook,
)

pytestmark = pytest.mark.browser

GUESS = ('import specnb\n'
         'specnb.load(lambda texts: ["en" if " the " in f" {t} " else "fr" for t in texts], alias="guess", '
         'task="langid")')
SHORT = ["The cat sleeps on the sofa all afternoon.", "Le chat dort sur le canapé tout l'après-midi.",
         "Der Hund schläft den ganzen Tag im Garten."]
SHORT_GOLD = ["en", "fr", "de"]
HOSTILE = ['<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=2</script>",
           '"><svg onload=window.__pwned=3>']
QUERY = "café"

# The notebook, cell by cell (indices used below).
LOAD_EXT, LOAD_LANGID, LOAD_GUESS, PANEL, DATA, COMPARE, COMPARE_CELL, COMPARE_HOSTILE, REGISTRY, PIPE = range(10)
CELLS = [
    "%load_ext specnb",
    "%specnb load langid",
    GUESS,
    "%specnb models",
    "from specnb.datasets import langid_sentences\ndf = langid_sentences()\nmixed = df.sample(40, random_state=1)\n"
    f"gold = {SHORT_GOLD!r}",
    "%specnb compare langid --models langid,guess --data df --text text --label label --out cmp",
    "%%specnb compare langid --models langid,guess --labels gold\n" + "\n".join(SHORT),
    "%%specnb compare langid --models langid,guess\n" + "\n".join(HOSTILE),
    "print(sorted(m.alias for m in specnb.registry))",
    "%%specnb pipe triage --sample mixed\nlang = langid(text)\n"
    "route lang: en -> lang2 = langid(text); fr, de -> skip; * -> skip",
]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# -- fixtures -------------------------------------------------------------------------------------------

# chromium, lab and browser: tests/conftest.py

@pytest.fixture
def notebook(lab, browser, request):
    """A fresh copy of the notebook, a fresh kernel and a fresh page (closed afterwards)."""
    lab.shutdown_kernels()
    path = write_notebook(lab.root_dir / "specnb_browser.ipynb", CELLS)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    nbpage = NotebookPage(page, request.node.name)
    nbpage.path = path
    try:
        yield nbpage
    finally:
        context.close()


@pytest.fixture(scope="module")
def expected():
    """The DataFrame comparison run here, in the test process, with the same two models: the numbers the
    compare view must show."""
    import specnb
    from specnb.datasets import langid_sentences

    df = langid_sentences()
    specnb.load("langid")
    specnb.load(lambda texts: ["en" if " the " in f" {t} " else "fr" for t in texts], alias="guess", task="langid")
    try:
        cmp = specnb.compare("langid", df, "langid,guess", text="text", labels="label", progress=False, store=False)
        short = specnb.compare("langid", SHORT, "langid,guess", labels=SHORT_GOLD, progress=False, store=False)
    finally:
        specnb.registry.clear()
    table = cmp.table
    disagree = cmp.disagreements
    return {
        "df": df,
        "n_items": len(table),
        "n_disagreements": len(disagree),
        "guess_wrong": int((table["guess:correct"] == False).sum()),  # noqa: E712 - a column of bools
        "guess_right": int((table["guess:correct"] == True).sum()),  # noqa: E712
        "langid_wrong": int((table["langid:correct"] == False).sum()),  # noqa: E712
        "query": int(disagree["input"].str.lower().str.contains(QUERY, regex=False).sum()),
        "short": list(short.disagreements["input"]),
    }


# -- helpers ------------------------------------------------------------------------------------------

def _page_info(total: int, page: int = 0, size: int = 20) -> str:
    if total == 0:
        return "0 of 0"
    return f"{page * size + 1:,}–{min(page * size + size, total):,} of {total:,}"


def _expect_text(locator, text: str, timeout: int = TIMEOUT_MS) -> None:
    expect(locator).to_have_text(text, timeout=timeout)


def _rows(view):
    return view.locator('tr[data-testid="row"]')


def _shot(locator, name: str, page, fit: bool = False) -> Path:
    """An element screenshot; the viewport grows while it is taken so a tall element is not cut off.
    ``fit``: cut to the width the element's content uses (plus a margin), not the output area's."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    grow = box is not None and box["height"] + 140 > VIEWPORT["height"]
    if grow:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": int(box["height"]) + 200})
        page.wait_for_timeout(300)  # JupyterLab lays itself out again
        locator.scroll_into_view_if_needed()
    try:
        if fit:  # for the picture only: as wide as the content, with a margin
            locator.evaluate("(el) => { el.dataset.style = el.getAttribute('style') || '';"
                             " el.style.width = 'fit-content'; el.style.padding = '8px'; }")
        locator.screenshot(path=str(path), animations="disabled")
    finally:
        if fit:
            locator.evaluate("(el) => el.setAttribute('style', el.dataset.style)")
        if grow:
            page.set_viewport_size(VIEWPORT)
    return path


def _wait_chart(view, timeout: int = TIMEOUT_MS) -> None:
    """plotly.js comes over the comm on first use (a few MB): allow for it."""
    view.locator('.specnb-chart[data-testid^="chart-"] .main-svg').first.wait_for(state="visible", timeout=timeout)


def _assert_not_pwned(nb: NotebookPage, where: str) -> None:
    page = nb.page
    assert page.evaluate("() => window.__pwned") is None, f"{where}: an input ran as code"
    assert nb.dialogs == [], f"{where}: a dialog opened: {nb.dialogs}"
    assert page.locator('img[src="x"]').count() == 0, f"{where}: an <img> was injected"
    assert page.locator("svg[onload]").count() == 0, f"{where}: an <svg onload> was injected"
    assert page.locator(".jp-OutputArea script").count() == 0, f"{where}: a <script> was injected"


# -- JupyterLab ---------------------------------------------------------------------------------------

def test_jupyterlab_panel_compare_view_escaping_and_saved_outputs(lab, notebook, expected):
    nb, page = notebook, notebook.page
    with dump_on_failure(nb, "jupyterlab", lab):
        nb.open(f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}&reset")
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # room for the views (and screenshots)
        for index in range(len(CELLS)):
            nb.run(index)
        assert "['guess', 'langid']" in nb.output(REGISTRY).inner_text()

        # -- the model panel: both models, a device bar ---------------------------------------------
        panel = nb.output(PANEL).locator(".specnb-model-panel")
        panel.wait_for(state="visible")
        for alias in ("langid", "guess"):
            panel.locator(f'tr[data-testid="model-row"][data-alias="{alias}"]').wait_for(state="visible")
        assert panel.locator('tr[data-testid="model-row"]').count() == 2
        bar = panel.locator('[data-testid="device-bar"]').first
        bar.wait_for(state="visible")
        assert bar.get_attribute("data-device"), "the device bar names its device"
        assert "used" in (bar.get_attribute("title") or "")
        _shot(panel, "model_panel.png", page, fit=True)

        # -- the compare view (DataFrame, line magic) -------------------------------------------------
        view = nb.output(COMPARE).locator(".specnb-compare")
        view.wait_for(state="visible")
        n, total_items = expected["n_disagreements"], expected["n_items"]
        summary = view.locator('table[data-testid="summary"]')
        assert summary.locator("tbody tr").count() == 2
        for alias in ("langid", "guess"):  # each row names its model
            expect(summary.locator(f'tr[data-model="{alias}"] td').first).to_have_text(alias)
        assert "langid" in view.locator('[data-testid="title"]').inner_text()
        detail = view.locator('[data-testid="detail"]')
        # Nothing is opened yet: the `detail` trait must start as None (an empty dict draws "item undefined").
        expect(detail, "the detail shows before any row was opened: CompareView.detail must default to None"
               ).to_be_hidden()
        _wait_chart(view)
        stats, info = view.locator('[data-testid="stats"]'), view.locator('[data-testid="page-info"]')
        _expect_text(stats, f"{total_items:,} items · {n:,} disagreements")
        _expect_text(info, _page_info(n))
        assert _rows(view).count() == min(20, n)
        # the README's picture: ten rows keep the whole view (summary, chart, browser) compact
        view.locator('select[data-testid="page-size"]').select_option("10")
        _expect_text(info, _page_info(n, size=10))
        expect(_rows(view)).to_have_count(min(10, n))  # the pager follows at once, the rows after the kernel
        _shot(view, "compare_view.png", page)
        view.locator('select[data-testid="page-size"]').select_option("20")
        _expect_text(info, _page_info(n))
        expect(_rows(view)).to_have_count(min(20, n))

        # paging
        first = _rows(view).first.get_attribute("data-item")
        view.locator('[data-testid="page-next"]').click()
        _expect_text(info, _page_info(n, page=1))
        expect(_rows(view).first).not_to_have_attribute("data-item", first)
        view.locator('[data-testid="page-prev"]').click()
        _expect_text(info, _page_info(n))
        expect(_rows(view).first).to_have_attribute("data-item", first)

        # all items, then guess's wrong answers only: every row shows guess marked wrong
        view.locator('input[data-testid="only-disagreements"]').uncheck()
        _expect_text(info, _page_info(total_items))
        view.locator('select[data-testid="filter-model"]').select_option("guess")
        view.locator('select[data-testid="filter-correct"]').select_option("wrong")
        _expect_text(info, _page_info(expected["guess_wrong"]))
        assert expected["guess_wrong"] < total_items
        rows = _rows(view)
        expect(rows).to_have_count(min(20, expected["guess_wrong"]))
        for i in range(rows.count()):
            cell = rows.nth(i).locator('td.specnb-answer[data-model="guess"]')
            assert cell.locator(".specnb-wrong").count() == 1, f"row {i}: guess not marked wrong"
            assert cell.locator(".specnb-ok").count() == 0
        # … its right answers, and langid's wrong ones
        view.locator('select[data-testid="filter-correct"]').select_option("correct")
        _expect_text(info, _page_info(expected["guess_right"]))
        for i in range(_rows(view).count()):
            assert _rows(view).nth(i).locator('td.specnb-answer[data-model="guess"] .specnb-ok').count() == 1
        view.locator('select[data-testid="filter-model"]').select_option("langid")
        view.locator('select[data-testid="filter-correct"]').select_option("wrong")
        _expect_text(info, _page_info(expected["langid_wrong"]))
        if expected["langid_wrong"] == 0:
            view.locator(".specnb-no-rows").wait_for(state="visible")
        # back to the disagreements, every answer
        view.locator('select[data-testid="filter-correct"]').select_option("all")
        view.locator('input[data-testid="only-disagreements"]').check()
        _expect_text(info, _page_info(n))

        # search (debounced in the view, run in the kernel)
        assert 0 < expected["query"] < n
        view.locator('input[data-testid="search"]').fill(QUERY)
        _expect_text(info, _page_info(expected["query"]))
        rows = _rows(view)
        expect(rows).to_have_count(expected["query"])
        for i in range(rows.count()):
            assert QUERY in rows.nth(i).locator("td.specnb-input").inner_text().lower()

        # the detail of a row: its full input and one answer card per model
        row = rows.first
        item = row.get_attribute("data-item")
        row.click()
        detail.wait_for(state="visible")
        _expect_text(detail.locator('[data-testid="detail-input"]'), expected["df"]["text"][int(item)])
        cards = detail.locator('[data-testid="detail-answer"]')
        assert cards.count() == 2
        assert sorted(cards.nth(i).get_attribute("data-model") for i in range(2)) == ["guess", "langid"]
        assert "specnb-selected" in (row.get_attribute("class") or "")
        _shot(view.locator(".specnb-browser"), "disagreements.png", page)
        detail.locator('[data-testid="detail-close"]').click()
        expect(detail).to_be_hidden()
        expect(row).not_to_have_class("specnb-selected")

        # -- the cell form of the magic -----------------------------------------------------------------
        small = nb.output(COMPARE_CELL).locator(".specnb-compare")
        small.wait_for(state="visible")
        assert expected["short"] == [SHORT[2]]  # guess calls the German sentence French
        _expect_text(small.locator('[data-testid="stats"]'), f"{len(SHORT)} items · 1 disagreement")
        expect(_rows(small)).to_have_count(1)
        expect(_rows(small).locator("td.specnb-input")).to_have_text(SHORT[2])

        # -- hostile inputs: text in the rows and the detail, nothing runs ------------------------------
        hostile = nb.output(COMPARE_HOSTILE).locator(".specnb-compare")
        hostile.wait_for(state="visible")
        _expect_text(hostile.locator('[data-testid="page-info"]'), _page_info(len(HOSTILE)))
        rows_text = "\n".join(_rows(hostile).all_inner_texts())
        assert '<img src=x onerror="window.__pwned=1">' in rows_text
        assert "<script>window.__pwned=2</script>" in rows_text
        assert '"><svg onload=window.__pwned=3>' in rows_text
        _assert_not_pwned(nb, "hostile rows")
        for i, payload in enumerate(HOSTILE):
            _rows(hostile).nth(i).click()
            hostile_input = hostile.locator('[data-testid="detail"] [data-testid="detail-input"]')
            _expect_text(hostile_input, payload)
            _assert_not_pwned(nb, f"hostile detail {i}")

        # -- unload from the panel: the row goes live, and the kernel's registry changed ---------------
        panel.locator('button[data-testid="unload"][data-alias="guess"]').click()
        panel.locator('tr[data-testid="model-row"][data-alias="guess"]').wait_for(state="detached")
        assert panel.locator('tr[data-testid="model-row"]').count() == 1
        assert panel.locator('[data-testid="error"]').is_hidden()
        nb.run(REGISTRY)
        _expect_text(nb.output(REGISTRY).locator(".jp-OutputArea-output"), "['langid']")

        # -- a pipeline cell: the pipeline view draws the stage graph and the sample table --------------
        nb.run(PIPE)
        pipe_view = nb.output(PIPE).locator(".specnb-pipeline")
        pipe_view.wait_for(state="visible")
        stages = pipe_view.locator('[data-testid="stage"]')
        expect(stages).to_have_count(3)  # langid, the route, the langid inside its en branch
        assert pipe_view.locator('[data-testid="branch"]').count() >= 2
        expect(pipe_view.locator('table[data-testid="sample"] tbody tr')).to_have_count(20)
        _shot(pipe_view, "pipeline.png", page, fit=True)

        # -- save: the compare cells keep the widget view and a static snapshot; the file stays small ---
        nb.command("docmanager:save")
        page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        size = nb.path.stat().st_size
        saved = json.loads(nb.path.read_text(encoding="utf-8"))
        assert size < 250_000, f"the saved notebook is {size:,} bytes (about 18 KB expected; plotly.js must not be in it)"
        for index in (PANEL, COMPARE, COMPARE_CELL, COMPARE_HOSTILE):
            data = [o.get("data", {}) for o in saved["cells"][index]["outputs"] if o["output_type"] == "display_data"
                    or o["output_type"] == "execute_result"]
            assert any(WIDGET_VIEW in d and "text/html" in d for d in data), f"cell {index}: {[list(d) for d in data]}"
        snapshot = next("".join(d["text/html"]) if isinstance(d["text/html"], list) else d["text/html"]
                        for d in (o.get("data", {}) for o in saved["cells"][COMPARE_HOSTILE]["outputs"])
                        if "text/html" in d)
        assert "&lt;img src=x onerror=" in snapshot
        assert "<img src=x" not in snapshot and "<script>window" not in snapshot and "<svg onload" not in snapshot

    # The snapshot as GitHub or nbconvert would show it, in a page of its own: text, and nothing runs.
    snap_page = page.context.new_page()
    snap = NotebookPage(snap_page, "snapshot")
    with dump_on_failure(snap, "snapshot"):
        snap_page.set_content(f"<!doctype html><html><body>{snapshot}</body></html>")
        snap_page.wait_for_timeout(100)
        body = snap_page.locator("body").inner_text()
        for payload in HOSTILE:
            assert payload in body, payload
        _assert_not_pwned(snap, "saved snapshot")
        snap_page.close()


# -- the charts fit their place, follow the theme; the detail comes into view ------------------------------

# The shown chart's SVG and its container, in px ([svg, container]; null before plotly drew it).
_CHART_WIDTHS = """(view) => {
  const div = [...view.querySelectorAll('.specnb-chart')].find((d) => !d.hidden);
  const svg = div && div.querySelector('.main-svg');
  return svg ? [svg.getBoundingClientRect().width, div.getBoundingClientRect().width] : null;
}"""
_CHART_FITS = f"(view) => {{ const w = ({_CHART_WIDTHS})(view); return !!w && w[1] > 0 && Math.abs(w[0] - w[1]) <= 1; }}"

# The shown chart's paper and font colours against the widget's own, all as the browser writes colours.
_CHART_COLOURS = """(view) => {
  const norm = (c) => { const s = document.createElement('span'); s.style.color = c; document.body.appendChild(s);
                        const out = getComputedStyle(s).color; s.remove(); return out; };
  const div = [...view.querySelectorAll('.specnb-chart')].find((d) => !d.hidden);
  const layout = div && div._fullLayout;
  if (!layout) return null;
  const own = getComputedStyle(view);
  return { paper: norm(layout.paper_bgcolor), font: norm(layout.font.color),
           background: norm(own.backgroundColor), color: norm(own.color) };
}"""

# Words of the rows table split across two lines (each word's boxes on more than one line).
_SPLIT_WORDS = """(table) => {
  const split = [];
  const walker = document.createTreeWalker(table.tBodies[0], NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (tops.size > 1) split.push(m[0]);
    }
  }
  return split;
}"""

_IN_VIEWPORT = """(el) => { const r = el.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth; }"""


def _wait_fit(view, where: str) -> None:
    """The shown chart is as wide as its container (plotly redraws it after the container changed)."""
    handle = view.element_handle()
    try:
        view.page.wait_for_function(_CHART_FITS, arg=handle, timeout=TIMEOUT_MS, polling=100)
    except Exception as error:
        raise AssertionError(f"{where}: chart [svg, container] widths {view.evaluate(_CHART_WIDTHS)}") from error


def _chart_area_width(view) -> float:
    return view.locator(".specnb-charts").evaluate("(el) => el.getBoundingClientRect().width")


def _wait_theme(view, dark: bool, where: str) -> dict:
    """The shown chart's paper and font colours are the widget's own, dark or light."""
    check = (f"(view) => {{ const c = ({_CHART_COLOURS})(view); if (!c) return false;"
             " const lum = (s) => { const [r, g, b] = s.match(/[\\d.]+/g).map(Number); return (r + g + b) / 765; };"
             f" return c.paper === c.background && c.font === c.color && (lum(c.paper) < 0.5) === {str(dark).lower()}; }}")
    try:
        view.page.wait_for_function(check, arg=view.element_handle(), timeout=TIMEOUT_MS, polling=100)
    except Exception as error:
        raise AssertionError(f"{where}: chart colours {view.evaluate(_CHART_COLOURS)}") from error
    return view.evaluate(_CHART_COLOURS)


def test_jupyterlab_charts_fit_follow_the_theme_and_the_detail_comes_into_view(lab, notebook):
    nb, page = notebook, notebook.page
    with dump_on_failure(nb, "jupyterlab-charts", lab):
        nb.open(f"{lab.url}/lab/tree/{nb.path.name}?token={lab.token}&reset")
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        for index in (LOAD_EXT, LOAD_LANGID, LOAD_GUESS, PANEL, DATA, COMPARE):
            nb.run(index)
        first = nb.output(COMPARE).locator(".specnb-compare")
        _wait_chart(first)
        nb.run(COMPARE_CELL)  # a view rendered once plotly is on the page draws before it is on the page itself
        second = nb.output(COMPARE_CELL).locator(".specnb-compare")
        _wait_chart(second)

        # the model panel's memory column says what it measures; the budget tick has a label
        panel = nb.output(PANEL).locator(".specnb-model-panel")
        memory = panel.locator('th[data-key="memory"]')
        expect(memory).to_have_text("memory at load")
        assert "below the weights" in (memory.get_attribute("title") or "")
        budget = panel.locator('[data-testid="budget-label"]').first
        expect(budget).to_be_visible()
        assert budget.inner_text().endswith(panel.locator('.specnb-bar-budget').first.get_attribute("title"))

        # -- as wide as the output, from the first draw, for every view of the page ---------------------
        _wait_fit(first, "first view")
        _wait_fit(second, "second view (plotly already loaded: it drew at once)")
        wide = _chart_area_width(first)
        nb.command("application:toggle-left-area")  # the file browser opens: the outputs narrow
        page.wait_for_function("(w) => document.querySelector('.specnb-charts').getBoundingClientRect().width < w - 50",
                               arg=wide)
        _wait_fit(first, "first view, left area open")
        _wait_fit(second, "second view, left area open")
        first.locator('[data-testid="chart-tab-memory"]').click()
        _wait_fit(first, "memory tab, left area open")
        nb.command("application:toggle-left-area")
        page.wait_for_function("(w) => document.querySelector('.specnb-charts').getBoundingClientRect().width > w - 2",
                               arg=wide)
        _wait_fit(first, "memory tab, left area closed again")
        _wait_fit(second, "second view, left area closed again")

        # the memory chart's legend shows the models in the colours of their bars
        chart = first.locator('[data-testid="chart-memory"]')
        legend = chart.locator(".legend .traces").evaluate_all(
            "(ts) => ts.map((t) => [t.textContent, getComputedStyle(t.querySelector('.legendpoints path')).fill])")
        bars = chart.locator(".barlayer .trace").evaluate_all(
            "(ts) => ts.map((t) => getComputedStyle(t.querySelector('.point path')).fill)")
        assert [name for name, _ in legend] == ["langid", "guess"], legend
        solid = [fill for fill in bars if not fill.startswith("url(")]
        assert [fill for _, fill in legend] == solid, f"legend {legend}, bars {bars}"

        # -- JupyterLab's dark theme, and back ---------------------------------------------------------
        light = _wait_theme(first, dark=False, where="light theme")
        try:
            nb.command("apputils:change-theme", {"theme": "JupyterLab Dark"})
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            dark = _wait_theme(first, dark=True, where="dark theme, first view")
            _wait_theme(second, dark=True, where="dark theme, second view")
            assert dark["paper"] != light["paper"] and dark["font"] != light["font"]
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            first.locator(".specnb-chart-section").screenshot(path=str(SCREENSHOTS / "chart_dark.png"))
        finally:  # the theme is a user setting of this server: the other tests see the light one
            nb.command("apputils:change-theme", {"theme": "JupyterLab Light"})
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
        _wait_theme(first, dark=False, where="light theme again")

        # -- rows wrap between words, even when the table is squeezed ------------------------------------
        table = first.locator("table.specnb-rows")
        _rows(first).first.wait_for(state="visible")
        table.evaluate("(t) => { t.style.width = '1px'; }")
        try:
            assert table.evaluate(_SPLIT_WORDS) == [], "words split across lines in a squeezed rows table"
        finally:
            table.evaluate("(t) => { t.style.width = ''; }")

        # -- a row's detail comes into view; Esc closes it ------------------------------------------------
        detail = first.locator('[data-testid="detail"]')
        row = _rows(first).last
        row.evaluate("(r) => r.scrollIntoView({ block: 'end' })")  # the detail opens below the fold
        row.click()
        detail.wait_for(state="visible")
        try:
            page.wait_for_function(_IN_VIEWPORT, arg=detail.element_handle(), timeout=TIMEOUT_MS, polling=100)
        except Exception as error:
            box = detail.bounding_box()
            raise AssertionError(f"the opened detail is not in view: {box}, window {page.viewport_size}") from error
        page.keyboard.press("Escape")
        expect(detail).to_be_hidden()
        expect(row).not_to_have_class("specnb-selected")


# -- Notebook 7 ---------------------------------------------------------------------------------------

def test_notebook7_renders_panel_and_compare_view(lab, notebook, expected):
    nb = notebook
    with dump_on_failure(nb, "notebook7", lab):
        nb.open(f"{lab.url}/notebooks/{nb.path.name}?token={lab.token}")
        assert nb.page.evaluate("() => window.jupyterapp.name") == "Jupyter Notebook"
        for index in (LOAD_EXT, LOAD_LANGID, LOAD_GUESS, PANEL, DATA, COMPARE):
            nb.run(index)
        panel = nb.output(PANEL).locator(".specnb-model-panel")
        panel.wait_for(state="visible")
        for alias in ("langid", "guess"):
            panel.locator(f'tr[data-testid="model-row"][data-alias="{alias}"]').wait_for(state="visible")
        view = nb.output(COMPARE).locator(".specnb-compare")
        view.wait_for(state="visible")
        _expect_text(view.locator('[data-testid="page-info"]'), _page_info(expected["n_disagreements"]))
        assert _rows(view).count() == min(20, expected["n_disagreements"])
        assert "guess" in view.locator('table[data-testid="summary"]').inner_text()
        _wait_chart(view)
        _wait_fit(view, "notebook 7")
        # a row's detail comes into view; Esc closes it (Notebook 7's page scrolls, not a lab panel)
        detail, row = view.locator('[data-testid="detail"]'), _rows(view).last
        row.evaluate("(r) => r.scrollIntoView({ block: 'end' })")
        row.click()
        detail.wait_for(state="visible")
        nb.page.wait_for_function(_IN_VIEWPORT, arg=detail.element_handle(), polling=100)
        nb.page.keyboard.press("Escape")
        expect(detail).to_be_hidden()
