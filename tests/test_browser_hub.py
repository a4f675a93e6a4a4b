"""A login by hand through the notebook server's proxy, in a real browser: JupyterLab as ``make lab``
starts it (jupyter-server-proxy included) under a user's prefix as on a hub (``/user/ada/``), and
headless Debian Chromium driven by Python playwright.

The learner runs notebook 2's login cells (not its **Sandbox only** cell), clicks the link in the
prompt, which goes through the lab's server (``/user/ada/proxy/{port}/activate...``) and not to the
kernel's loopback address, confirms the code, chooses Ada on the sandbox's login page, and runs the
next cell: the notebook's session is Ada's. Screenshots go to test-artifacts/ (``hub-*.png``).

Chromium as in test_browser.py: in CI (``CI=true``) a missing Chromium fails this test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from test_browser import (
    ACTION,
    ARTIFACTS,
    NOTEBOOK,
    ROOT,
    STARTUP,
    Lab,
    headless_chromium,
    kernel_idle,
    running_lab,
    sandbox_of_notebook,
    wait_until,
)

PREFIX = "/user/ada/"
# Notebook 2's cells up to its LoginPrompt are run as they are; the Sandbox-only approval after it,
# which the learner's click replaces, is not; then the cell that waits for the session. Found by
# their code, so a cell added to the notebook does not move the test onto another one.
_CELLS = ["".join(c["source"]) for c in json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())["cells"]]
LOGIN_CELLS = next(i for i, c in enumerate(_CELLS) if c.startswith("prompt = LoginPrompt.start(tenant)"))
RESULT_CELL = next(i for i, c in enumerate(_CELLS) if c.startswith("primary = prompt.result("))


@pytest.fixture(scope="module")
def hub_browser() -> Iterator[object]:
    with headless_chromium() as chromium:  # first: without a browser, no lab is started for nothing
        yield chromium


@pytest.fixture(scope="module")
def hub_lab(hub_browser: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("hub"), base_url=PREFIX) as server:
        yield server


def run_cell(page, index: int) -> None:
    """Select a cell as a learner does (a click on its input) and run it with Shift+Enter."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea").click()
    page.keyboard.press("Shift+Enter")


def test_the_prompts_link_through_the_proxy_logs_ada_in(hub_browser, hub_lab: Lab) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "hub-failure.png").unlink(missing_ok=True)
    page = hub_browser.new_page(viewport={"width": 1400, "height": 1000})
    activation = None
    try:
        page.goto(f"{hub_lab.url}/lab/tree/{NOTEBOOK}?token={hub_lab.token}")
        page.wait_for_selector(".jp-Notebook", timeout=STARTUP * 1000)
        wait_until(lambda: kernel_idle(hub_lab), STARTUP, "the notebook's kernel to start")
        for index in range(1, LOGIN_CELLS + 1):
            run_cell(page, index)
            wait_until(lambda: kernel_idle(hub_lab), ACTION, f"cell {index} to finish")

        prompt = page.locator(".widget-vbox", has=page.get_by_text("Log in to your account")).first
        link = prompt.locator("a").first
        link.wait_for(timeout=ACTION * 1000)
        href = link.get_attribute("href") or ""
        sandbox_url, _ = sandbox_of_notebook(page.locator(".jp-Notebook").text_content())
        port = sandbox_url.rsplit(":", 1)[1]
        # The lab server's proxy, under the user's prefix; never the kernel's loopback address.
        assert re.fullmatch(rf"{PREFIX}proxy/{port}/activate\?user_code=[B-Z]{{4}}-[B-Z]{{4}}", href), href
        assert "127.0.0.1" not in prompt.inner_text()
        user_code = href.rsplit("=", 1)[1]
        prompt.screenshot(path=str(ARTIFACTS / "hub-login-prompt.png"))

        with page.context.expect_page() as opened:
            link.click()
        activation = opened.value
        activation.wait_for_load_state()
        assert activation.url.startswith(f"{hub_lab.url}/proxy/{port}/activate?")
        assert activation.locator("#user_code").input_value() == user_code
        activation.get_by_role("button", name="Continue").click()
        assert activation.locator("#user-code").inner_text() == user_code
        activation.screenshot(path=str(ARTIFACTS / "hub-confirm.png"))
        activation.get_by_role("button", name="Confirm").click()
        ada = activation.get_by_role("button", name="Ada Lovelace <ada@example.com>")
        ada.wait_for(timeout=ACTION * 1000)
        assert activation.url.startswith(f"{hub_lab.url}/proxy/{port}/u/login?")
        assert activation.locator("#password").input_value() == ""  # nothing filled in, nothing shown
        activation.screenshot(path=str(ARTIFACTS / "hub-choose-ada.png"), full_page=True)
        ada.click()
        activation.locator("#result[data-result='approved']").wait_for(timeout=ACTION * 1000)
        activation.screenshot(path=str(ARTIFACTS / "hub-approved.png"))

        # Back in the notebook: the prompt says so, and the next cell's session is Ada's.
        prompt.get_by_text("Logged in as ada@example.com.").wait_for(timeout=ACTION * 1000)
        run_cell(page, RESULT_CELL)
        output = page.locator(".jp-Notebook .jp-Cell").nth(RESULT_CELL).locator(".jp-OutputArea")
        output.get_by_text("auth0|", exact=False).first.wait_for(timeout=ACTION * 1000)
        assert "ada@example.com" in output.inner_text()
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        assert errors == [], errors
        page.locator(".jp-Notebook .jp-Cell").nth(LOGIN_CELLS).screenshot(
            path=str(ARTIFACTS / "hub-logged-in.png"))
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "hub-failure.png"), full_page=True)
        if activation is not None:
            activation.screenshot(path=str(ARTIFACTS / "hub-failure-sandbox-page.png"), full_page=True)
        raise
    finally:
        if activation is not None:
            activation.close()
        page.close()
