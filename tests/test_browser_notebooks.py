"""Every tutorial as a learner runs it: JupyterLab (as ``make lab`` starts it, its settings
overrides included) in headless Debian Chromium, **Kernel > Restart Kernel and Run All Cells**, then
what a person sees is checked: no cell left busy (``[*]``), no error or stderr output, every widget
rendered (no "Loading widget...", no widget's plain repr, no HTML shown as text), the notebook's key
outputs there, and no first-run dialog or news prompt over the page. Then **Run > Run All Cells**
again in the same kernel, and the same checks.

One JupyterLab and one Chromium for the module; one page per notebook. Screenshots of each
notebook's main outputs go to test-artifacts/ (``notebook-0N-*.png``); the AuditTable and the
IdentityTable are also shot at 1000 and 1600 px wide, where no cell may cut its value short.
How long each notebook took is written to test-artifacts/browser-notebooks-times.txt (a report,
never asserted).

Chromium as in test_browser.py: in CI (``CI=true``) a missing Chromium fails this test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_browser import (
    ARTIFACTS,
    ROOT,
    RUN_ALL,
    STARTUP,
    Lab,
    headless_chromium,
    kernel_idle,
    running_lab,
    wait_until,
)

NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("0*.ipynb"))
TIMES = ARTIFACTS / "browser-notebooks-times.txt"
WIDGET_PROBLEMS = ("Loading widget", "Error displaying widget", "model not found")
# A widget's plain-text repr on the page means its view never rendered.
WIDGET_REPR = re.compile(r"^(Audit table|Identity table of .*|Login prompt): run this cell\b")
HTML_AS_TEXT = re.compile(r"</?(b|i|span|div|table|tr|td|code|p|br|img)\b[^>]*>")
FIRST_RUN_TEXT = ("official Jupyter news", "Would you like", "newer version")
SETTLE = 20  # seconds a cell may stay busy once the kernel is idle and the last cell has run


@pytest.fixture(scope="module")
def nb_browser() -> Iterator[object]:
    with headless_chromium() as chromium:  # first: without a browser, no lab is started for nothing
        yield chromium


@pytest.fixture(scope="module")
def nb_lab(nb_browser: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    TIMES.parent.mkdir(exist_ok=True)
    TIMES.write_text("")
    with running_lab(tmp_path_factory.mktemp("notebooks")) as server:
        yield server


# -- what a person does ---------------------------------------------------------------------------

def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}")).click()


def prompts(page) -> list[str]:
    """Each code cell's prompt as shown: ``[3]:``, ``[*]:`` or ``[ ]:``."""
    # textContent, not innerText: JupyterLab skips rendering the cells out of view
    # (content-visibility), and those have no innerText.
    return [text.strip() for text in page.locator(".jp-CodeCell .jp-InputPrompt").evaluate_all(
        "prompts => prompts.map(p => p.textContent)")]


def done(prompt: str) -> bool:
    return re.fullmatch(r"\[\d+\]:", prompt) is not None


def wait_for_run_all(page, lab: Lab) -> None:
    """Wait until the last cell is queued, then until it ran and the kernel is idle; then every
    cell must show its count within SETTLE seconds: a ``[*]`` left behind is what a learner sees
    as a cell that never finished."""
    wait_until(lambda: not done(prompts(page)[-1]), STARTUP, "Run All to queue the last cell")
    wait_until(lambda: done(prompts(page)[-1]) and kernel_idle(lab), RUN_ALL, "the last cell to run")
    deadline = time.monotonic() + SETTLE
    while (busy := [i for i, p in enumerate(prompts(page)) if not done(p)]):
        if time.monotonic() > deadline:
            shown = {i: prompts(page)[i] for i in busy}
            raise AssertionError(f"code cells {shown} still busy though the kernel is idle and the "
                                 f"last cell ran")
        time.sleep(0.25)


# -- what a person sees ---------------------------------------------------------------------------

def texts(page, selector: str) -> list[str]:
    """The text of each element, rendered or not (cells out of view are not: content-visibility)."""
    return page.locator(selector).evaluate_all("found => found.map(e => e.textContent)")


def outputs_text(page) -> str:
    return "\n".join(texts(page, ".jp-OutputArea"))


def check_no_prompt_over_the_page(page, name: str) -> None:
    """No dialog, no notification (JupyterLab's "official Jupyter news?" is one), no first-run text."""
    assert page.locator(".jp-Dialog").count() == 0, f"{name}: a dialog is open"
    assert page.locator(".Toastify__toast").count() == 0, (
        f"{name}: a notification: {page.locator('.Toastify__toast').all_inner_texts()}")
    body = page.locator("body").text_content()
    assert not [t for t in FIRST_RUN_TEXT if t in body], f"{name}: a first-run prompt is shown"


def check_page(page, name: str) -> None:
    check_no_prompt_over_the_page(page, name)
    errors = texts(page, "[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors == [], f"{name}: error or stderr output: {errors}"
    wait_until(lambda: not any(p in outputs_text(page) for p in WIDGET_PROBLEMS), 30,
               f"{name}'s widgets to render")
    plain = texts(page, ".jp-OutputArea-output[data-mime-type='text/plain']")
    reprs = [t for t in plain if WIDGET_REPR.match(t.strip())]
    assert reprs == [], f"{name}: a widget shows as its repr: {reprs}"
    markup = [t for t in plain if HTML_AS_TEXT.search(t)]
    assert markup == [], f"{name}: HTML shown as text: {markup}"


def shoot(page, element, path: str) -> None:
    """A screenshot of a whole widget: the window made as tall as it, for as long as it takes."""
    size = page.viewport_size
    height = int(element.evaluate("e => e.getBoundingClientRect().height"))
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 300)})
    try:
        element.scroll_into_view_if_needed()
        element.screenshot(path=path)
    finally:
        page.set_viewport_size(size)


def login_prompt(page, email: str):
    prompt = page.locator(".widget-vbox", has=page.get_by_text("Log in to your account")).first
    prompt.get_by_text(f"Logged in as {email}.").wait_for(timeout=30_000)
    return prompt


def audit_table(page):
    table = page.locator(".widget-vbox", has=page.locator(".widget-gridbox",
                                                          has=page.get_by_text("primary_id"))).last
    table.locator("button", has_text="Why?").first.wait_for(timeout=30_000)
    return table


def identity_table(page):
    return page.locator(".widget-vbox", has=page.get_by_text("Identities of", exact=False)).last


WIDTHS = (1000, 1600)  # a laptop with the file browser open, a wide screen
# Every element of a table's cells whose content is wider or taller than its box: a value cut short.
CLIPPED = """cells => cells.flatMap(cell => [cell, ...cell.querySelectorAll('*')])
    .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1)
    .filter(e => e.clientWidth > 0)
    .map(e => e.closest('.widget-gridbox > *').textContent.trim())"""


def readable_at_every_width(page, table, prefix: str, name: str, values: list[str]) -> None:
    """At each width no cell clips its value and each of ``values`` is shown whole in one cell,
    inside the grid's box once scrolled to; at the widest the grid needs no sideways scroll."""
    size = page.viewport_size
    grid = table.locator(".widget-gridbox")
    problems = []
    try:
        for width in WIDTHS:  # every width shot first, so a failure still leaves all the pictures
            page.set_viewport_size({"width": width, "height": size["height"]})
            page.wait_for_timeout(300)  # the notebook's layout follows the window
            shoot(page, table, f"{prefix}-{name}-{width}px.png")
            clipped = sorted(set(grid.locator(":scope > *").evaluate_all(CLIPPED)))
            if clipped:
                problems.append(f"at {width} px, cells cut short: {clipped}")
            if width == max(WIDTHS) and not grid.evaluate("g => g.scrollWidth <= g.clientWidth + 1"):
                problems.append(f"at {width} px the grid scrolls sideways")
            area = table.evaluate("t => t.closest('.jp-OutputArea-output').getBoundingClientRect().right")
            if grid.bounding_box()["x"] + grid.bounding_box()["width"] > area + 1:
                problems.append(f"at {width} px the grid is wider than the output area")
            for value in values:
                cell = grid.locator(":scope > *", has_text=value).first
                cell.scroll_into_view_if_needed()  # the grid's own sideways scroll, if it has one
                inside = cell.evaluate("""c => { const r = c.getBoundingClientRect(),
                    g = c.parentElement.getBoundingClientRect();
                    return r.left >= g.left - 1 && r.right <= g.right + 1; }""")
                if cell.text_content().strip() != value or not cell.is_visible() or not inside:
                    problems.append(f"at {width} px, {value!r} is not shown whole in its own cell")
    finally:
        page.set_viewport_size(size)
    assert problems == [], f"{name}: {problems}"


def shots_01(page, prefix: str) -> None:
    shoot(page, login_prompt(page, "ada@example.com"), f"{prefix}-login-prompt.png")


def shots_02(page, prefix: str) -> None:
    shoot(page, login_prompt(page, "ada@example.com"), f"{prefix}-login-prompt.png")
    table = identity_table(page)
    table.get_by_text("Linked the google-oauth2 account", exact=False).wait_for(timeout=30_000)
    assert table.locator("button", has_text="Unlink").count() == 1  # Google's row; the main row has none
    assert "google-oauth2" in table.locator(".widget-gridbox").text_content()
    shoot(page, table, f"{prefix}-identity-table.png")
    label = table.locator(".widget-dropdown label")  # "Link another account"'s list: its label whole
    assert label.inner_text().strip() == "Connection:"
    assert label.evaluate("l => l.scrollWidth <= l.clientWidth + 1"), "the Connection label is cut short"
    held = {"Username-Password-Authentication", "google-oauth2"}  # the list offers one Ada can link
    assert table.locator(".widget-dropdown select").input_value() not in held
    readable_at_every_width(page, table, prefix, "identity-table",
                            ["Username-Password-Authentication", "ada@example.com"])


def shots_03(page, prefix: str) -> None:
    shoot(page, login_prompt(page, "linus@example.com"), f"{prefix}-login-prompt.png")


def progress_bars(page, count: int) -> None:
    bars = page.locator(".widget-hprogress")
    assert bars.count() >= count, f"{bars.count()} progress bars, expected {count}"


def chart(page, index: int):
    """The ``index``-th matplotlib figure among the cells' outputs."""
    image = page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img").nth(index)
    image.wait_for(timeout=30_000)
    assert image.evaluate("img => img.naturalWidth") > 100
    return image


def shots_04(page, prefix: str) -> None:
    progress_bars(page, 2)  # the export job and the users read
    bars = chart(page, 0)
    shoot(page, bars, f"{prefix}-audit-chart.png")
    table = audit_table(page)
    assert "ada@example.com" in table.text_content()
    shoot(page, table, f"{prefix}-audit-table.png")
    grid = table.locator(".widget-gridbox")
    longest = max((t.strip() for t in grid.locator(":scope > *").all_text_contents()), key=len)
    readable_at_every_width(page, table, prefix, "audit-table",
                            ["amara.jaindard.1450@example.org", "auth0|76e73d7ffeae657458218e99", longest])


def shots_05(page, prefix: str) -> None:
    evidence = chart(page, 0)
    shoot(page, evidence, f"{prefix}-evidence-chart.png")
    table = audit_table(page)
    assert "probable" in table.locator(".widget-gridbox").text_content()
    why = table.get_by_text("Why probable", exact=False)
    why.wait_for(timeout=30_000)
    assert table.locator("img").count() == 1  # the group's chart, above the rows
    grid = table.locator(".widget-gridbox")
    assert why.bounding_box()["y"] < grid.bounding_box()["y"], "the Why panel is not above the rows"
    shoot(page, table, f"{prefix}-audit-table.png")


def shots_06(page, prefix: str) -> None:
    report = page.locator(".jp-OutputArea-output", has=page.locator("table"),
                          has_text="Device Code grant").first
    report.wait_for(timeout=30_000)
    assert "device login" in report.text_content() and "token cache" in report.text_content()
    shoot(page, report, f"{prefix}-doctor.png")
    shoot(page, login_prompt(page, "ada@example.com"), f"{prefix}-login-prompt.png")


KEY_OUTPUTS: dict[str, Callable[[object, str], None]] = {
    "01-log-in.ipynb": shots_01, "02-link-and-unlink.ipynb": shots_02,
    "03-safe-linking.ipynb": shots_03, "04-audit-a-tenant.ipynb": shots_04,
    "05-beyond-one-email.ipynb": shots_05, "06-your-own-tenant.ipynb": shots_06,
}


def test_every_tutorial_has_its_browser_check() -> None:
    assert sorted(KEY_OUTPUTS) == NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_restart_and_run_all_then_run_all_again_shows_every_output(nb_browser, nb_lab: Lab,
                                                                  notebook: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    stem = notebook.split("-")[0]
    prefix = str(ARTIFACTS / f"notebook-{stem}")
    failure = Path(f"{prefix}-failure.png")
    failure.unlink(missing_ok=True)
    page = nb_browser.new_page(viewport={"width": 1400, "height": 1000})
    times = []
    try:
        # ?reset: a workspace of its own, not the tabs the previous notebook left
        page.goto(f"{nb_lab.url}/lab/tree/{notebook}?reset&token={nb_lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=STARTUP * 1000)
        wait_until(lambda: kernel_idle(nb_lab), STARTUP, "the notebook's kernel to start")
        for run, (top, item) in enumerate([("Kernel", "Restart Kernel and Run All Cells"),
                                           ("Run", "Run All Cells")]):
            started = time.monotonic()
            menu(page, top, item)
            if run == 0:
                page.locator(".jp-Dialog button.jp-mod-accept").click()  # "Restart"
            wait_for_run_all(page, nb_lab)
            check_page(page, f"{notebook} (run {run + 1})")
            KEY_OUTPUTS[notebook](page, prefix if run == 0 else f"{prefix}-again")
            times.append(time.monotonic() - started)
        with TIMES.open("a") as out:
            out.write(f"{notebook}: restart and run all {times[0]:.1f} s, run all again {times[1]:.1f} s\n")
    except BaseException:
        page.screenshot(path=str(failure), full_page=True)
        raise
    finally:
        close_and_shut_down(page, nb_lab)
        page.close()


def close_and_shut_down(page, lab: Lab) -> None:
    """File > Close and Shut Down Notebook: the next notebook's page opens it alone, and its
    kernel (with its sandbox) no longer runs beside the next one."""
    try:
        menu(page, "File", "Close and Shut Down Notebook")
        page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=10_000)
        wait_until(lambda: lab.api("/api/sessions") == [], 30, "the notebook's kernel to shut down")
    except Exception as exc:
        print(f"could not close the notebook: {exc}")
