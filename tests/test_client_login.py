"""The login flows, both directions each, against the sandbox's own pages over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from linking_toolkit import LoginError, ManagementClient, Session, Tenant, connect, login, start_login
from linking_toolkit.errors import (
    AccessDenied,
    InvalidState,
    LoginCancelled,
    LoginExpired,
    LoginTimeout,
    TenantError,
)
from linking_toolkit.login_flows import SCOPE, PendingLogin
from linking_toolkit.sandbox import Sandbox

GOOGLE = "google-oauth2"


def quiet(text: str, url: str | None) -> None:
    """Tests drive the pages themselves: nothing to show."""


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    return {"device_poll_interval": 1}  # keep device tests short


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def assert_logged_in(session: Session, email: str, purpose: str) -> None:
    assert session.purpose == purpose
    assert session.profile["email"] == email
    assert session.profile["user_id"] == session.user_id
    assert session.identities and not session.expired


# -- password ---------------------------------------------------------------------------------


def test_password_login(sandbox: Sandbox, client_tenant: Tenant) -> None:
    user = sandbox.demo_users[0]
    session = login(client_tenant, method="password", email=user["email"], password=user["password"])
    assert_logged_in(session, user["email"], "login")
    assert session.user_id == user["user_id"]
    assert set(SCOPE.split()) <= set(session.scope.split())


def test_password_login_with_a_wrong_password(sandbox: Sandbox, client_tenant: Tenant) -> None:
    user = sandbox.demo_users[0]
    with pytest.raises(LoginError) as caught:
        login(client_tenant, method="password", email=user["email"], password="not-" + user["password"])
    assert caught.value.error == "invalid_grant"
    assert "Wrong email or password" in str(caught.value)


def test_login_refuses_an_unknown_purpose(client_tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="purpose"):
        login(client_tenant, method="password", email="a@b.c", password="x", purpose="admin")  # type: ignore[arg-type]


# -- paste ------------------------------------------------------------------------------------


def test_paste_login_sends_state_nonce_pkce_audience_and_scope(sandbox: Sandbox,
                                                              client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="paste", purpose="linking", connection=GOOGLE, show=quiet)
    assert pending.authorize_url is not None
    sent = query(pending.authorize_url)
    assert sent["state"].startswith("linking.")
    assert sent["nonce"] and sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["audience"] == client_tenant.management_audience and sent["scope"] == SCOPE
    assert sent["connection"] == GOOGLE
    # the login page even where the browser holds a session: the other account is the point
    assert sent["prompt"] == "login"
    first = start_login(client_tenant, method="paste", purpose="login", show=quiet)
    assert first.authorize_url is not None and "prompt" not in query(first.authorize_url)
    first.cancel()
    redirect = sandbox.approve_browser(pending.authorize_url, connection=GOOGLE, email="alan@example.com")
    session = pending.complete(redirect)
    assert_logged_in(session, "alan@example.com", "linking")
    assert session.user_id.startswith("google-oauth2|")
    assert session.claims["nonce"] == sent["nonce"]
    assert pending.status == "done" and pending.result(0) is session


def test_paste_login_refuses_another_state(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="paste", connection=GOOGLE, show=quiet)
    assert pending.authorize_url is not None
    redirect = sandbox.approve_browser(pending.authorize_url, connection=GOOGLE, email="alan@example.com")
    forged = redirect.replace("state=login.", "state=linking.")
    with pytest.raises(InvalidState):
        pending.complete(forged)
    assert pending.status == "failed"


def test_paste_login_denied(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="paste", connection=GOOGLE, show=quiet)
    assert pending.authorize_url is not None
    redirect = sandbox.approve_browser(pending.authorize_url, connection=GOOGLE, email="alan@example.com",
                                       deny=True)
    with pytest.raises(AccessDenied):
        pending.complete(redirect)
    with pytest.raises(AccessDenied):
        pending.result(0)


def test_paste_login_with_a_code_for_another_login(sandbox: Sandbox, client_tenant: Tenant) -> None:
    """A code obtained by another login (another verifier) is refused by the tenant (PKCE)."""
    victim = start_login(client_tenant, method="paste", connection=GOOGLE, show=quiet)
    attacker = start_login(client_tenant, method="paste", connection=GOOGLE, show=quiet)
    assert victim.authorize_url and attacker.authorize_url
    redirect = sandbox.approve_browser(attacker.authorize_url, connection=GOOGLE, email="alan@example.com")
    # Replay the attacker's code with the victim's state: the verifier does not match the challenge.
    swapped = redirect.replace(query(redirect)["state"], query(victim.authorize_url)["state"])
    with pytest.raises(LoginError):
        victim.complete(swapped)


# -- browser ----------------------------------------------------------------------------------


def test_browser_login_through_the_loopback_redirect(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="browser", connection=GOOGLE, open_browser=False, show=quiet,
                          timeout=30)
    assert pending.authorize_url is not None
    redirect_uri = query(pending.authorize_url)["redirect_uri"]
    assert redirect_uri.startswith("http://127.0.0.1:") and redirect_uri.endswith("/callback")
    redirect = sandbox.approve_browser(pending.authorize_url, connection=GOOGLE, email="ada@example.com")
    assert redirect.startswith(redirect_uri)
    page = httpx2.get(redirect, timeout=10)  # what the person's browser does with the redirect
    assert page.status_code == 200 and "close this tab" in page.text
    session = pending.result(timeout=30)
    assert_logged_in(session, "ada@example.com", "login")


def test_browser_login_denied(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="browser", connection=GOOGLE, open_browser=False, show=quiet,
                          timeout=30)
    assert pending.authorize_url is not None
    redirect = sandbox.approve_browser(pending.authorize_url, connection=GOOGLE, email="ada@example.com",
                                       deny=True)
    httpx2.get(redirect, timeout=10)
    with pytest.raises(AccessDenied):
        pending.result(timeout=30)
    assert pending.status == "failed"


def test_browser_login_with_a_forged_state(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="browser", connection=GOOGLE, open_browser=False, show=quiet,
                          timeout=30)
    assert pending.authorize_url is not None
    redirect_uri = query(pending.authorize_url)["redirect_uri"]
    httpx2.get(f"{redirect_uri}?code=stolen&state=login.forged", timeout=10)
    with pytest.raises(InvalidState):
        pending.result(timeout=30)


def test_browser_login_times_out(client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="browser", open_browser=False, show=quiet, timeout=0.5)
    with pytest.raises(LoginTimeout):
        pending.result(timeout=30)


def test_browser_login_shows_the_link_when_no_browser_opens(client_tenant: Tenant) -> None:
    shown: list[tuple[str, str | None]] = []
    pending = start_login(client_tenant, method="browser", open_browser=False, timeout=30,
                          show=lambda text, url: shown.append((text, url)))
    assert shown and shown[0][1] == pending.authorize_url
    pending.cancel()
    with pytest.raises(LoginCancelled):
        pending.result(timeout=30)
    assert pending.status == "cancelled"
    assert pending.thread is not None
    pending.thread.join(timeout=10)
    assert not pending.thread.is_alive()
    with pytest.raises(httpx2.ConnectError):  # the loopback server is closed, nothing listens
        httpx2.get(query(pending.authorize_url or "")["redirect_uri"], timeout=5)


# -- device -----------------------------------------------------------------------------------


def test_device_login(sandbox: Sandbox, client_tenant: Tenant) -> None:
    shown: list[tuple[str, str | None]] = []
    pending = start_login(client_tenant, method="device", purpose="linking",
                          show=lambda text, url: shown.append((text, url)))
    assert pending.user_code and pending.verification_uri_complete
    assert shown[0][1] == pending.verification_uri_complete and pending.user_code in shown[0][0]
    assert not pending.done() and pending.status == "pending"
    called: list[str] = []
    pending.add_done_callback(lambda p: called.append(p.status))
    sandbox.approve_device(pending.user_code, connection=GOOGLE, email="alan@example.com")
    session = pending.result(timeout=60)
    assert_logged_in(session, "alan@example.com", "linking")
    assert called == ["done"]
    pending.add_done_callback(lambda p: called.append("late"))
    assert called == ["done", "late"]


def test_a_linking_login_on_another_connection_than_asked_fails_naming_both(
        sandbox: Sandbox, client_tenant: Tenant) -> None:
    """The device page offers every account (Auth0's /oauth/device/code takes no connection):
    choosing Ada's database account for a google-oauth2 linking login fails at the login."""
    pending = start_login(client_tenant, method="device", purpose="linking", connection=GOOGLE, show=quiet)
    assert pending.user_code
    sandbox.approve_device(pending.user_code, connection="Username-Password-Authentication",
                           email="ada@example.com")
    with pytest.raises(LoginError) as caught:
        pending.result(timeout=60)
    assert str(caught.value) == (
        "this login asked for google-oauth2, but you logged in with Username-Password-Authentication as "
        "ada@example.com: log in again and choose google-oauth2 on the login page")
    assert pending.status == "failed"
    again = start_login(client_tenant, method="device", purpose="linking", connection=GOOGLE, show=quiet)
    assert again.user_code
    sandbox.approve_device(again.user_code, connection=GOOGLE, email="ada@example.com")
    assert again.result(timeout=60).user_id.startswith("google-oauth2|")


def test_a_password_login_on_its_connection_passes_the_check(sandbox: Sandbox, client_tenant: Tenant) -> None:
    user = sandbox.demo_users[0]
    session = login(client_tenant, method="password", email=user["email"], password=user["password"],
                    connection=user["connection"], purpose="linking")
    assert session.user_id == user["user_id"]


def test_device_login_denied(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="device", show=quiet)
    assert pending.user_code
    sandbox.approve_device(pending.user_code, connection=GOOGLE, email="alan@example.com", deny=True)
    with pytest.raises(AccessDenied):
        pending.result(timeout=60)


@pytest.mark.parametrize("sandbox_options", [{"device_poll_interval": 1, "device_code_seconds": 1}],
                         ids=["code_expires_in_1s"])
def test_device_login_expired(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="device", show=quiet)
    with pytest.raises(LoginExpired):
        pending.result(timeout=60)


def test_device_login_cancelled(client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="device", show=quiet)
    pending.cancel()
    with pytest.raises(LoginCancelled):
        pending.result(timeout=10)
    assert pending.status == "cancelled" and isinstance(pending.error, LoginCancelled)


def test_device_login_honours_slow_down(sandbox: Sandbox, client_tenant: Tenant) -> None:
    assert sandbox.context is not None
    pending = start_login(client_tenant, method="device", show=quiet)  # told to poll every second
    assert pending.user_code and pending.interval == 1.0
    # The tenant now wants 3 s between polls: the client's second poll is too early, the tenant
    # answers slow_down, and the client must add 5 s to its interval.
    with sandbox.context.store.transaction() as db:
        db.execute("UPDATE device_codes SET interval = 3")
    deadline = time.monotonic() + 30
    while pending.interval == 1.0 and time.monotonic() < deadline and not pending.done():
        time.sleep(0.1)
    assert pending.interval == 6.0
    sandbox.approve_device(pending.user_code, connection=GOOGLE, email="alan@example.com")
    session = pending.result(timeout=60)
    assert session.profile["email"] == "alan@example.com"


# -- the event loop stays free ----------------------------------------------------------------


def test_awaiting_a_device_login_leaves_the_event_loop_running(sandbox: Sandbox,
                                                               client_tenant: Tenant) -> None:
    """As in a notebook cell with top-level await: the approval below runs on the same loop, so if
    awaiting the login blocked the loop the login could only end by timing out."""

    async def cell() -> Session:
        pending = start_login(client_tenant, method="device", show=quiet, timeout=20)
        assert pending.user_code

        async def person_approves() -> None:
            await asyncio.to_thread(sandbox.approve_device, pending.user_code or "", connection=GOOGLE,
                                    email="alan@example.com")

        approval = asyncio.create_task(person_approves())
        session = await pending
        await approval
        return session

    session = asyncio.run(cell())
    assert_logged_in(session, "alan@example.com", "login")


def test_cancelling_the_awaiting_task_cancels_the_login(client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="device", show=quiet, timeout=20)

    async def cell() -> None:
        waiting = asyncio.create_task(_wait(pending))
        await asyncio.sleep(0)  # let the task start waiting
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(cell())
    with pytest.raises(LoginCancelled):
        pending.result(timeout=10)
    assert pending.status == "cancelled"


async def _wait(pending: PendingLogin) -> Session:
    return await pending


def test_awaiting_a_failed_login_raises_its_error(sandbox: Sandbox, client_tenant: Tenant) -> None:
    pending = start_login(client_tenant, method="device", show=quiet, timeout=20)
    sandbox.approve_device(pending.user_code or "", connection=GOOGLE, email="alan@example.com", deny=True)
    with pytest.raises(AccessDenied):
        asyncio.run(_wait(pending))


# -- closing ----------------------------------------------------------------------------------


def test_tenant_close_closes_the_sessions_connection_pools(sandbox: Sandbox) -> None:
    user = sandbox.demo_users[0]
    tenant = connect(sandbox=sandbox)
    session = login(tenant, method="password", email=user["email"], password=user["password"])
    with ManagementClient.from_client_credentials(tenant) as admin:
        assert not session.management.closed and not admin.closed
        tenant.close()
        assert session.management.closed and admin.closed
        with pytest.raises(TenantError, match="closed"):
            admin.get_user(session.user_id)


def test_a_session_closes_its_own_pool(sandbox: Sandbox, client_tenant: Tenant) -> None:
    user = sandbox.demo_users[0]
    with login(client_tenant, method="password", email=user["email"], password=user["password"]) as session:
        client = session.management
        assert not client.closed
    assert client.closed


# -- a tenant that answers garbage or drops the connection ------------------------------------


@pytest.mark.parametrize("fault", ["html", "garbage", "drop", "expires_in"])
def test_a_token_endpoint_answering_garbage_is_a_tenant_error(sandbox: Sandbox, fault: str) -> None:
    real = httpx2.HTTPTransport()

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path != "/oauth/token" or fault == "expires_in":
            response = real.handle_request(request)
            response.read()
            if request.url.path == "/oauth/token":
                return httpx2.Response(200, json=response.json() | {"expires_in": "a day"})
            return response
        if fault == "drop":
            raise httpx2.ReadError("connection reset by peer", request=request)
        body = "<html><body>Service unavailable</body></html>" if fault == "html" else "{not json"
        return httpx2.Response(200 if fault == "garbage" else 503, text=body)

    user = sandbox.demo_users[0]
    with Tenant.from_sandbox(sandbox, transport=httpx2.MockTransport(handle)) as tenant:
        with pytest.raises(TenantError) as caught:
            login(tenant, method="password", email=user["email"], password=user["password"])
    assert "token_endpoint" in str(caught.value) and user["password"] not in repr(caught.value)


def test_outside_a_notebook_the_device_prompt_is_one_line_of_text(client_tenant: Tenant,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pending = start_login(client_tenant, method="device", purpose="linking")
    pending.cancel()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the account to link" in err
    assert pending.user_code and pending.user_code in err
    assert pending.verification_uri_complete and pending.verification_uri_complete in err


class Kernel:
    """A real Jupyter kernel (as a notebook runs), with the messages its cells produced."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")
        self.messages: list[dict] = []

    def run(self, code: str) -> str:
        """Run a cell; return what it printed."""
        self.messages.clear()
        reply = self.client.execute_interactive(code, timeout=60, output_hook=self.messages.append)
        assert reply["content"]["status"] == "ok", self.messages[-1:]
        return "".join(m["content"]["text"] for m in self.messages if m["msg_type"] == "stream")

    def click(self, model_id: str) -> None:
        """What the browser sends when a person clicks a Button widget."""
        self.client.shell_channel.send(self.client.session.msg("comm_msg", {
            "comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}))

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel(sandbox: Sandbox) -> Iterator[Kernel]:
    k = Kernel()
    try:
        k.run(f"from linking_toolkit import Tenant, login, start_login\n"
              f"tenant = Tenant.discover({sandbox.base_url!r}, client_id={sandbox.client_id!r})")
        yield k
    finally:
        k.close()


def test_in_a_notebook_kernel_start_login_shows_a_login_prompt_widget_and_returns(kernel: Kernel) -> None:
    """The prompt is a widget (no text on stderr), and the next cell runs while the login is still
    pending, so the widget's Cancel reaches the kernel."""
    assert kernel.run("pending = start_login(tenant, purpose='linking')") == ""
    shown = [m["content"]["data"] for m in kernel.messages if m["msg_type"] == "display_data"]
    assert len(shown) == 1 and "application/vnd.jupyter.widget-view+json" in shown[0]
    assert shown[0]["text/plain"].startswith("Login prompt: run this cell to log in")
    printed = kernel.run("print(pending.status); pending.cancel(); print(pending.status)")
    assert printed.split() == ["pending", "cancelled"]


def count_device_codes(sandbox: Sandbox) -> int:
    assert sandbox.context is not None
    with sandbox.context.store.read() as db:
        return int(db.execute("SELECT COUNT(*) FROM device_codes").fetchone()[0])


def test_login_in_a_widget_callback_is_refused_at_once(sandbox: Sandbox, kernel: Kernel) -> None:
    """A blocking login in a button's callback would freeze every widget for minutes: it is
    refused with a LoginError that says what to use, before any request to the tenant."""
    model_id = kernel.run("import ipywidgets\n"
                          "caught = []\n"
                          "def on_click(_button):\n"
                          "    try:\n"
                          "        login(tenant, method='device')\n"
                          "    except Exception as exc:\n"
                          "        caught.append(exc)\n"
                          "button = ipywidgets.Button()\n"
                          "button.on_click(on_click)\n"
                          "print(button.model_id)").strip()
    before = count_device_codes(sandbox)
    kernel.click(model_id)
    printed = kernel.run("print(type(caught[0]).__name__, len(caught), 'start_login' in str(caught[0]))")
    assert printed.split() == ["LoginError", "1", "True"]
    assert count_device_codes(sandbox) == before


DEVICE_ANSWER = {"device_code": "d", "user_code": "ABCD-EFGH", "verification_uri": "https://x/activate"}


@pytest.mark.parametrize("answer", [{"device_code": "d"}, DEVICE_ANSWER | {"interval": "soon"},
                                    DEVICE_ANSWER | {"expires_in": "ten minutes"}])
def test_a_device_answer_without_its_required_fields_is_a_tenant_error(sandbox: Sandbox,
                                                                       answer: dict) -> None:
    real = httpx2.HTTPTransport()

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth/device/code":
            return httpx2.Response(200, json=answer)
        response = real.handle_request(request)
        response.read()
        return response

    shown: list[str] = []
    with Tenant.from_sandbox(sandbox, transport=httpx2.MockTransport(handle)) as tenant:
        with pytest.raises(TenantError, match="device_authorization_endpoint"):
            start_login(tenant, method="device", show=lambda text, url: shown.append(text))
    assert shown == []


def device_polls_dropping(sandbox: Sandbox, drops: int) -> tuple[Tenant, list[str]]:
    """The sandbox as a tenant whose first ``drops`` device polls lose their connection."""
    real = httpx2.HTTPTransport()  # the sandbox polls every second (sandbox_options)
    seen: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth/token" and b"device_code" in request.read():
            seen.append("poll")
            if len(seen) <= drops:
                raise httpx2.ConnectError("network is unreachable", request=request)
        response = real.handle_request(request)
        response.read()
        return response

    return Tenant.from_sandbox(sandbox, transport=httpx2.MockTransport(handle)), seen


def test_a_device_login_survives_a_few_dropped_polls(sandbox: Sandbox) -> None:
    tenant, polls = device_polls_dropping(sandbox, drops=2)
    with tenant:
        pending = start_login(tenant, method="device", show=quiet, timeout=30)
        while len(polls) < 2 and not pending.done():  # both drops happened before the approval
            time.sleep(0.1)
        sandbox.approve_device(pending.user_code or "", connection=GOOGLE, email="alan@example.com")
        assert_logged_in(pending.result(timeout=30), "alan@example.com", "login")


def test_a_device_login_ends_when_the_tenant_stays_unreachable(sandbox: Sandbox) -> None:
    tenant, polls = device_polls_dropping(sandbox, drops=100)
    with tenant:
        pending = start_login(tenant, method="device", show=quiet, timeout=30)
        with pytest.raises(TenantError, match="could not be reached"):
            pending.result(timeout=30)
    assert len(polls) == 4  # three failures in a row are polled again, the fourth ends it


class HostileVerificationUri(httpx2.HTTPTransport):
    """The real sandbox, whose device authorization answer a hostile tenant (or a proxy) rewrites:
    the sandbox itself always answers an http loopback link, so the fault is injected here."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        if request.url.path != "/oauth/device/code":
            return response
        body = json.loads(response.read())
        body["verification_uri_complete"] = self.uri
        return httpx2.Response(response.status_code, json=body)


@pytest.mark.parametrize("uri", ["javascript:alert(document.cookie)", "data:text/html,<b>hi</b>",
                                 "http://tenant.example/activate", "https://evil@tenant.example/activate"])
def test_a_device_login_never_shows_a_link_that_is_not_https(sandbox: Sandbox, uri: str) -> None:
    tenant = Tenant.from_sandbox(sandbox, transport=HostileVerificationUri(uri))
    shown: list[object] = []
    try:
        with pytest.raises(TenantError, match="not an https link"):
            start_login(tenant, method="device", show=lambda text, url: shown.append(url)).result(timeout=30)
        assert shown == []
    finally:
        tenant.close()
