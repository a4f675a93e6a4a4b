"""The documentation site in Chromium: the home page, a tutorial with its table, a reference page.

The site is built as ``make docs`` builds it (tests/test_docs.py checks the build itself), served
from a local http.server thread, and read as a reader would: what is on the page, not the HTML
files. Screenshots go to test-artifacts/docs/.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_browser import ARTIFACTS, headless_chromium
from test_docs import DOCS, sphinx_build

SHOTS = ARTIFACTS / "docs"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("site")
    done = sphinx_build(DOCS, out)
    assert done.returncode == 0, done.stderr[-6000:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page(site_url) -> Iterator[object]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with headless_chromium() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()


def shot(page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def test_the_home_page_leads_to_each_part_of_the_site(page, site_url) -> None:
    page.goto(f"{site_url}/index.html")
    assert page.locator("h1").first.inner_text().startswith("linking_toolkit")
    main = page.locator("main").inner_text()
    for part in ("Get started", "Tutorials", "How-to guides", "Reference", "Troubleshooting", "Explanations"):
        assert part in main
    page.get_by_role("link", name="Get started").first.click()
    assert "make lab" in page.locator("main").inner_text()
    assert shot(page, "get-started").stat().st_size > 0


def test_a_tutorial_shows_its_committed_identities_table(page, site_url) -> None:
    page.goto(f"{site_url}/tutorials/02-link-and-unlink.html")
    assert "Link and unlink" in page.locator("h1").first.inner_text()
    tables = page.locator("main .output table.dataframe")
    assert tables.count() >= 1
    identities = next(tables.nth(i) for i in range(tables.count())
                      if "google-oauth2" in tables.nth(i).inner_text())
    headers = identities.locator("thead th").all_inner_texts()
    assert {"connection", "provider", "user_id", "is_primary"} <= {h.strip() for h in headers}
    assert identities.is_visible()
    identities.scroll_into_view_if_needed()
    identities.screenshot(path=str(SHOTS / "identity-table.png"))
    assert "Identity table of ada@example.com: run this cell" in page.locator("main").inner_text()
    assert shot(page, "tutorial-02").stat().st_size > 0


def test_the_reference_page_of_link_candidates_reads_its_docstring(page, site_url) -> None:
    page.goto(f"{site_url}/reference/api/linking_toolkit.link_candidates.html")
    signature = page.locator("dl.py.function > dt").first.inner_text()
    assert "link_candidates" in signature and "tiers" in signature
    body = page.locator("main").inner_text()
    assert "exact" in body and "probable" in body and "primary_id" in body
    assert "Examples" in body
    assert shot(page, "reference-link-candidates").stat().st_size > 0
