"""The report opened in a real headless browser (Debian chromium): sections and figures render, no network."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fake_results import build_results
from phb_eval.plan import load_plan
from phb_eval.report import write_outputs
from phb_eval.report.html import SECTION_TITLES

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium)")
def test_report_renders_offline_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    out = write_outputs(build_results(), tmp_path / "run", plan=load_plan(), disclosure=False)
    url = (out / "report.html").as_uri()
    requests = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            headings = page.eval_on_selector_all("section > h2", "els => els.map(e => e.textContent.trim())")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({src: e.src.slice(0, 22), w: e.naturalWidth, done: e.complete}))")
            visible = page.eval_on_selector_all("section > h2", "els => els.every(e => e.offsetHeight > 0)")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    for title in SECTION_TITLES.values():
        assert title in headings, title
    assert visible
    assert len(images) == 7
    for img in images:
        assert img["done"] and img["w"] > 0 and img["src"] == "data:image/png;base64,"
    assert requests and all(u.startswith(("file://", "data:")) for u in requests), requests
    assert (tmp_path / "report.png").stat().st_size > 10_000
