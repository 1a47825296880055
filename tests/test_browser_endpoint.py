"""An endpoint model in the model panel, in JupyterLab in Chromium: a row that says where the model runs and
what its server can do (no memory bar), next to an in-kernel model with its bar. Served by `transformers
serve` (tests/servers.py), the lighter of the two real servers."""

from __future__ import annotations

import pytest
from lab_support import SCREENSHOTS, TIMEOUT_MS, VIEWPORT, NotebookPage, dump_on_failure, write_notebook

pytestmark = pytest.mark.browser


def test_the_model_panel_shows_an_endpoint_by_host_and_capabilities(lab, browser, hf_serve, request):
    lab.shutdown_kernels()
    cells = ["%load_ext specnb", "%specnb load langid", f"%specnb load {hf_serve.base_url} --as served",
             "%specnb models"]
    path = write_notebook(lab.root_dir / "endpoint_panel.ipynb", cells)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    nb = NotebookPage(context.new_page(), request.node.name)
    nb.path = path
    try:
        with dump_on_failure(nb, "endpoint-panel", lab):
            nb.open(f"{lab.url}/lab/tree/{path.name}?token={lab.token}&reset")
            nb.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            for index in range(len(cells)):
                nb.run(index)
            panel = nb.output(3).locator(".specnb-model-panel")
            row = panel.locator('tr[data-testid="model-row"][data-alias="served"]')
            row.wait_for(state="visible")
            text = row.inner_text()
            assert "endpoint" in text and "remote" in text and f"127.0.0.1:{hf_serve.port}" in text
            assert "capabilities: chat" in (row.locator("td.specnb-mem").get_attribute("title") or "")
            assert panel.locator('tr[data-testid="model-row"]').count() == 2
            devices = [panel.locator('[data-testid="device-bar"]').nth(i).get_attribute("data-device")
                       for i in range(panel.locator('[data-testid="device-bar"]').count())]
            assert devices == ["cpu"]  # the endpoint holds no memory here: no bar of its own
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            panel.screenshot(path=str(SCREENSHOTS / "model_panel_endpoint.png"))
    finally:
        context.close()
