"""The link-and-unlink tutorial in a real browser: JupyterLab (as ``make lab`` starts it), headless
Debian Chromium driven by Python playwright. Run every cell, click a row's Unlink button, confirm,
and check that the row is gone on the page and at the tenant.

The notebook's kernel runs its own sandbox. The test reads its address and client id from the
notebook's output (no secret is printed there) and asks that tenant over HTTP, with a login of
its own, where Ada's Google account now belongs.

Chromium comes from apt (``.ci/run`` installs it); playwright never downloads a browser here. In CI
(``CI=true``) a missing Chromium fails this test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from linking_toolkit import Session, connect, start_login
from linking_toolkit.cache import CACHE_ENV, NOOP
from linking_toolkit.sandbox.driver import approve_device

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "02-link-and-unlink.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP = 90  # seconds: upper bounds for a slow machine, never timings under test
RUN_ALL = 300
ACTION = 60


def chromium_path() -> str:
    """Debian's Chromium, or a failure in CI and a skip elsewhere."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "Debian's chromium is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def api(self, path: str) -> object:
        headers = {"Authorization": f"token {self.token}"}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)  # noqa: S310 - loopback http
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback http
            return json.load(response)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


LAB_OVERRIDES = ROOT / "lab" / "overrides.json"


def lab_overrides_installed() -> Path:
    """lab/overrides.json where JupyterLab reads it (``make lab`` installs it there): the lab
    under test must start with the settings a learner's starts with."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    if not installed.exists() or json.loads(installed.read_text()) != json.loads(LAB_OVERRIDES.read_text()):
        pytest.fail(f"{installed} is not lab/overrides.json: run `make lab-settings` (make test does)")
    return installed


@contextmanager
def running_lab(home: Path, base_url: str = "/") -> Iterator[Lab]:
    """JupyterLab as ``make lab`` starts it (jupyter-server-proxy included), on a copy of the
    tutorials, with settings of its own; ``base_url`` as a hub gives a user's server (``/user/ada/``)."""
    lab_overrides_installed()
    root = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)  # autosave must never touch the committed notebooks
    (home / "settings").mkdir()  # a learner's first start: no user settings, the overrides only
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):
        env.pop(name, None)  # the notebook must run against its own sandbox
    for name in ("JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_PUBLIC_URL", "LINKING_TOOLKIT_PROXY_BASE"):
        env.pop(name, None)  # the kernel finds its server's proxy itself, as under `make lab`
    env[CACHE_ENV] = str(home / "token-cache.json")  # never the developer's own token cache
    # As `make lab` runs it: each notebook's sandbox outlives its kernel, kept in this test's folder.
    env["LINKING_TOOLKIT_KEEP_SANDBOX"] = "1"
    env["LINKING_TOOLKIT_SANDBOX_HOME"] = str(home / "sandboxes")
    log = home / "lab.log"
    jupyter = Path(sys.executable).parent / "jupyter"
    command = [str(jupyter), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={base_url}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home)  # noqa: S603
    server = Lab(f"http://127.0.0.1:{port}{base_url.rstrip('/')}", token, log)
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {STARTUP} s:\n{server.log_tail()}")
                time.sleep(0.2)
        yield server
    finally:
        tree = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
        process.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for child in tree:  # a kernel that outlived its server
            if child.is_running():
                child.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium() as chromium:
        yield chromium


@contextmanager
def headless_chromium() -> Iterator[object]:
    """Debian's Chromium through playwright (a failure in CI, a skip elsewhere, when it is missing)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def kernel_idle(lab: Lab) -> bool:
    sessions = lab.api("/api/sessions")
    return bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)  # type: ignore[index, union-attr]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def google_login_as_ada(base_url: str, client_id: str) -> Session:
    """Log in to Ada's Google account at the notebook's sandbox, approving on its own pages."""
    with connect(domain=base_url, client_id=client_id, env_file=None, quiet=True) as tenant:
        # A login of its own every time: the test asks where Google logs Ada in now.
        pending = start_login(tenant, show=lambda _text, _url: None, cache=NOOP)
        approve_device(base_url, pending.user_code, connection="google-oauth2", email="ada@example.com")
        session = pending.result(ACTION)
        session.close()  # its Management API pool; the session itself is still used
        return session


def sandbox_of_notebook(text: str) -> tuple[str, str]:
    """The kernel's sandbox address and (public) client id, as the notebook's ``tenant`` shows them."""
    found = re.search(r"<Tenant sandbox issuer='(http://127\.0\.0\.1:\d+)/' client_id='([^']+)'>", text)
    assert found, "the notebook shows no sandbox tenant"
    return found.group(1), found.group(2)


def test_in_ci_a_missing_chromium_fails_the_test_instead_of_skipping_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without chromium
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test"):
        chromium_path()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        chromium_path()


# The browser first: without it the test fails (or skips) before JupyterLab is started for nothing.
def test_unlink_in_the_browser_removes_the_row_on_the_page_and_at_the_tenant(browser, lab: Lab) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-failure.png").unlink(missing_ok=True)  # artifacts describe the last run only
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
        page.wait_for_selector(".jp-Notebook", timeout=STARTUP * 1000)
        wait_until(lambda: kernel_idle(lab), STARTUP, "the notebook's kernel to start")

        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        # The last cells press "Link another account" and wait for it: the table ends with Google linked.
        linked = page.get_by_text("Linked the google-oauth2 account", exact=False).first
        linked.wait_for(timeout=RUN_ALL * 1000)
        wait_until(lambda: kernel_idle(lab), RUN_ALL, "every cell to finish")
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        assert errors == [], errors

        prompt = page.locator(".widget-vbox", has=page.get_by_text("Log in to your account")).first
        prompt.scroll_into_view_if_needed()  # JupyterLab renders only the cells in view
        prompt.get_by_text("Logged in as ada@example.com.").wait_for(timeout=ACTION * 1000)
        prompt.screenshot(path=str(ARTIFACTS / "login-prompt.png"))

        base_url, client_id = sandbox_of_notebook(page.locator(".jp-Notebook").text_content())
        ada = google_login_as_ada(base_url, client_id)
        assert ada.user_id.startswith("auth0|"), "before the click, Google logs Ada in to her main account"

        table = page.locator(".widget-vbox", has=page.locator(".widget-gridbox")).last
        grid = table.locator(".widget-gridbox")
        table.scroll_into_view_if_needed()
        grid.get_by_text("google-oauth2").first.wait_for(timeout=ACTION * 1000)  # rendered once in view
        table.screenshot(path=str(ARTIFACTS / "identity-table-linked.png"))

        unlink_buttons = table.locator("button", has_text="Unlink")
        assert unlink_buttons.count() == 1  # the Google row; the main row has none
        unlink_buttons.click()
        question = table.get_by_text("Unlink the google-oauth2 account ada@example.com?")
        question.wait_for(timeout=ACTION * 1000)
        table.screenshot(path=str(ARTIFACTS / "identity-table-confirm.png"))
        table.locator("button", has_text="Confirm").click()

        table.get_by_text("Unlinked google-oauth2").wait_for(timeout=ACTION * 1000)
        assert "google-oauth2" not in grid.text_content()  # not on the page at all, seen or not
        assert table.locator("button", has_text="Unlink").count() == 0
        table.screenshot(path=str(ARTIFACTS / "identity-table-unlinked.png"))

        # At the tenant: Google is a user of its own again, holding only its own identity.
        google = google_login_as_ada(base_url, client_id)
        assert google.user_id.startswith("google-oauth2|")
        assert [i.connection for i in google.identities] == ["google-oauth2"]
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
        raise
    finally:
        page.close()


def test_the_lab_serves_the_widget_extension(lab: Lab) -> None:
    """``make lab`` renders widgets only if JupyterLab loads the ipywidgets extension."""
    extensions = json.dumps(lab.api("/lab/api/settings/@jupyter-widgets/jupyterlab-manager:plugin"))
    assert "jupyterlab-manager" in extensions
