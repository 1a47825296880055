"""The offline report in a real browser (Debian's Chromium, headless): every chart draws, and hostile
text shows literally without running."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import specnb

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAYLOADS = ['<img src=x onerror="document.title=\'pwned\'">', "<script>document.title='pwned'</script>"]


def _rendered_dom(path, profile) -> str:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
            "--virtual-time-budget=15000", "--dump-dom", path.as_uri()]
    env = dict(os.environ, HOME=str(profile), XDG_CONFIG_HOME=str(profile / "config"),
               XDG_CACHE_HOME=str(profile / "cache"))
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)  # a hang guard
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: .ci/run installs chromium")
        pytest.skip("no chromium found (apt-get install chromium); the report's browser test did not run")
    return CHROMIUM


def test_the_report_draws_every_chart_and_runs_no_input(browser, specnb_home, tmp_path):
    def sentiment(texts):
        return [("pos", 0.8) if "good" in t else ("neg", 0.6) for t in texts]

    texts = ["good " + p for p in PAYLOADS] + ["bad film", "good film"]
    cmp = specnb.compare("classify", texts, [sentiment], labels=["neg", "neg", "neg", "pos"],  # payloads wrong: shown
                         label_space=["pos", "neg"], progress=False)
    path = cmp.to_html(tmp_path / "report.html")
    dom = _rendered_dom(path, tmp_path / "profile")
    assert "<title>" in dom and "pwned" not in dom.split("</title>")[0]
    # plotly drew each figure into its own SVG root
    assert dom.count('class="main-svg"') >= 2 * len(cmp.figures())
    assert "<img src=\"x\"" not in dom and "<img src=x" not in dom
    assert "&lt;img src=x onerror=" in dom  # shown as text
