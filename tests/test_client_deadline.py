"""Every Management call ends within its deadline, with an error naming the request and the wait.

Two tenants no client can wait out: one that takes the connection and never answers (a raw
loopback socket that accepts and keeps silent) and one that answers 429 forever (the sandbox's own
rate limiter, its bucket kept empty). The times are measured in ``bench/deadline.py``, not here.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from linking_toolkit import ManagementClient, Tenant, connect
from linking_toolkit.audit import apply_plan, audit_tenant, link_candidates, plan_links
from linking_toolkit.errors import ConnectionFailed, RateLimited, ServerError
from linking_toolkit.sandbox import Sandbox


@pytest.fixture
def silent_tenant() -> Iterator[Tenant]:
    """A tenant whose server accepts every connection and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # kept open, never answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    yield Tenant(domain=base.split("://")[1], issuer=base + "/", base_url=base,
                 management_audience=base + "/api/v2/", client_id="silent")
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def test_a_tenant_that_never_answers_ends_the_call_at_its_deadline(silent_tenant: Tenant) -> None:
    with ManagementClient(silent_tenant, lambda: "token", deadline=1.5,
                          timeout=httpx2.Timeout(0.5, connect=0.5), backoff=0.05) as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.get_user("auth0|someone")
    message = str(caught.value)
    assert message.startswith("GET /users/auth0%7Csomeone: no answer (ReadTimeout)")
    assert "gave up after" in message and "deadline 1.5 s" in message
    assert client.stats.requests >= 2  # retried (a GET is safe to repeat) until the deadline said no


def test_a_link_that_gets_no_answer_names_the_link_not_the_check_that_followed(silent_tenant: Tenant) -> None:
    with ManagementClient(silent_tenant, lambda: "token", deadline=1.5,
                          timeout=httpx2.Timeout(0.4, connect=0.4), backoff=0.05) as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.link("auth0|primary", provider="github", user_id="123")
    assert str(caught.value).startswith("POST /users/auth0%7Cprimary/identities: no answer")
    assert "deadline 1.5 s" in str(caught.value)


def test_a_tenant_that_rate_limits_forever_ends_the_call_at_its_deadline() -> None:
    # a bucket of one token refilled every 60 s, emptied by another client first
    with Sandbox(seed=7, rate_limit=(1, 1 / 60)) as limited, connect(sandbox=limited) as tenant:
        ada = limited.demo_user("ada@example.com")["user_id"]
        with ManagementClient.from_client_credentials(tenant) as other, \
                ManagementClient.from_client_credentials(tenant, deadline=2.0) as client:
            other.get_user(ada)
            with pytest.raises(RateLimited) as caught:
                client.get_user(ada)
    message = str(caught.value)
    assert message.startswith(f"GET /users/{ada.replace('|', '%7C')}: ")
    assert "the wait until the rate limit's reset" in message and "would end past the deadline" in message
    assert "deadline 2 s" in message
    assert caught.value.status_code == 429 and client.stats.rate_limited >= 1


def test_a_503_retry_after_is_waited_out_and_one_past_the_deadline_is_not() -> None:
    asked = {"seconds": "1"}
    sent: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.method)
        if len(sent) == 1 or asked["seconds"] == "600":
            return httpx2.Response(503, headers={"retry-after": asked["seconds"]},
                                   json={"statusCode": 503, "error": "Service Unavailable",
                                         "message": "The service is unavailable."})
        return httpx2.Response(200, json={"user_id": "auth0|1", "identities": []})

    with Sandbox(seed=7) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient(tenant, lambda: "token", transport=httpx2.MockTransport(handle),
                             deadline=30) as client:
        assert client.get_user("auth0|1")["user_id"] == "auth0|1"
        assert client.stats.waited_seconds == 1.0  # what the tenant asked, not the client's backoff
        asked["seconds"] = "600"
        with pytest.raises(ServerError, match=r"^GET /users/auth0%7C1: The service is unavailable\. "
                                              r"\(the tenant's Retry-After \(600\.0 s\) would end past"):
            client.get_user("auth0|1")
    assert client.stats.waited_seconds == 1.0  # nothing waited in vain


def test_apply_plan_stops_at_the_deadline_and_resumes_from_its_journal(tmp_path: Path) -> None:
    with Sandbox(seed=8, users=60) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient.from_client_credentials(tenant) as admin:
        result = audit_tenant(admin, progress=False)
        plan = plan_links(link_candidates(result, tiers="exact"), result)
        plan = plan[plan["risk"] == "safe"]
        assert len(plan) >= 2
        real = httpx2.HTTPTransport()
        links = {"sent": 0}

        def handle(request: httpx2.Request) -> httpx2.Response:
            if request.method == "POST" and request.url.path.endswith("/identities"):
                links["sent"] += 1
                if links["sent"] >= 2:  # from the second link on, the tenant is stuck
                    raise httpx2.ReadTimeout("no answer", request=request)
            return real.handle_request(request)

        journal = tmp_path / "links.jsonl"
        with ManagementClient.from_client_credentials(tenant, transport=httpx2.MockTransport(handle),
                                                      deadline=1.0, backoff=0.05) as stuck:
            with pytest.raises(ConnectionFailed) as caught:
                apply_plan(stuck, plan, dry_run=False, journal=journal)
        assert "/identities: no answer" in str(caught.value)
        assert any("run it again with the journal" in note for note in caught.value.__notes__)
        done = apply_plan(admin, plan, dry_run=False, journal=journal)
        assert done["status"].tolist() == ["already done (journal)"] + ["linked"] * (len(plan) - 1)
