"""Rate limiting of the sandbox's Management API: Auth0's headers and its 429 body."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx2
import pytest

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.authentication_api.tokens import mint_access_token

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


@pytest.fixture
def limited() -> Iterator[tuple[Sandbox, httpx2.Client]]:
    """A tenant whose bucket holds 3 tokens and refills one every 100 seconds: nothing refills
    during the test, so the counts are exact."""
    with Sandbox(seed=7, rate_limit=(3, 0.01)) as sandbox:
        ctx = sandbox.context
        assert ctx is not None
        token = mint_access_token(ctx, sub="x@clients", client_id=sandbox.m2m_client_id,
                                  scope="read:users", audience=sandbox.management_audience)
        with httpx2.Client(base_url=sandbox.base_url + "/api/v2",
                           headers={"Authorization": f"Bearer {token}"}) as client:
            yield sandbox, client


def test_every_response_carries_the_headers_until_the_bucket_is_empty(
        limited: tuple[Sandbox, httpx2.Client]) -> None:
    sandbox, api = limited
    answers = [api.get("/users"), api.get("/users/auth0%7Cnobody"),
               httpx2.get(sandbox.base_url + "/api/v2/users")]  # a 200, a 404 and a 401 all count
    assert [r.status_code for r in answers] == [200, 404, 401]
    assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
    for response in answers:
        assert response.headers["x-ratelimit-limit"] == "3"
        assert int(response.headers["x-ratelimit-reset"]) >= int(time.time())
    refused = api.get("/users")
    assert refused.status_code == 429
    assert refused.json() == {"statusCode": 429, "error": "Too Many Requests",
                              "message": "Global limit has been reached", "errorCode": "too_many_requests"}
    assert all(name in refused.headers for name in RATE_HEADERS)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    # Unknown routes are throttled like the rest, and the OAuth endpoints are not this bucket's.
    assert api.get("/nope").status_code == 429
    unrouted = api.get("//users")  # matches no rule at all, still the API's answer
    assert unrouted.status_code == 429 and unrouted.headers["x-ratelimit-limit"] == "3"


def test_a_refused_request_changes_nothing(limited: tuple[Sandbox, httpx2.Client]) -> None:
    sandbox, api = limited
    ctx = sandbox.context
    assert ctx is not None
    for _ in range(3):
        api.get("/users")
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    response = api.delete(f"/users/{ada}")
    assert response.status_code == 429
    assert ctx.store.get_user(ada) is not None


def test_no_headers_when_rate_limiting_is_off(api: httpx2.Client) -> None:
    response = api.get("/users")
    assert response.status_code == 200
    assert not any(name in response.headers for name in RATE_HEADERS)


def test_the_bucket_refills() -> None:
    """After an empty bucket the tenant answers again once a token is added (no timing asserted)."""
    with Sandbox(seed=7, rate_limit=(1, 5.0)) as fast:
        ctx = fast.context
        assert ctx is not None
        token = mint_access_token(ctx, sub="x@clients", client_id=fast.m2m_client_id, scope="read:users",
                                  audience=fast.management_audience)
        with httpx2.Client(base_url=fast.base_url + "/api/v2",
                           headers={"Authorization": f"Bearer {token}"}) as client:
            statuses = [client.get("/users").status_code for _ in range(50)]
            assert 429 in statuses
            after = statuses[statuses.index(429):]
            while 200 not in after:
                time.sleep(0.05)
                after.append(client.get("/users").status_code)
        assert set(after) <= {200, 429}


def test_every_route_family_and_every_kind_of_answer_carries_the_headers() -> None:
    """Success, 4xx of every kind and each Management route: one token each, headers on each."""
    with Sandbox(seed=7, rate_limit=(100, 0.01)) as sandbox:
        ctx = sandbox.context
        assert ctx is not None
        token = mint_access_token(ctx, sub="x@clients", client_id=sandbox.m2m_client_id,
                                  scope="read:users update:users create:users delete:users",
                                  audience=sandbox.management_audience)
        ada = quote(sandbox.demo_user("ada@example.com")["user_id"], safe="")
        json_type = {"Content-Type": "application/json"}
        with httpx2.Client(base_url=sandbox.base_url + "/api/v2",
                           headers={"Authorization": f"Bearer {token}"}) as api:
            answers = [
                api.get("/users"), api.get("/users", params={"per_page": 101}), api.get(f"/users/{ada}"),
                api.get("/users-by-email", params={"email": "ada@example.com"}),
                api.patch(f"/users/{ada}", json={"user_metadata": {"a": 1}}),
                api.patch(f"/users/{ada}", content=b"{nope", headers=json_type),
                api.post("/users", content=b"x" * (2 << 20), headers=json_type),
                api.post("/users", content=b"x", headers={"Content-Type": "text/plain"}),
                api.post(f"/users/{ada}/identities", json={"provider": "github", "user_id": "1"}),
                api.delete(f"/users/{ada}/identities/github/1"),
                api.delete("/users/auth0%7Cnobody"), api.get("/users/%FF"),
                api.post("/jobs/users-exports", json={"format": "xml"}), api.get("/jobs/job_nope"),
                api.request("OPTIONS", "/users"), api.put("/users"),
                httpx2.get(sandbox.base_url + "/api/v2/users", headers={"Authorization": "Bearer x.y.z"}),
            ]
        statuses = {r.status_code for r in answers}
        assert {200, 204, 400, 401, 404, 413, 415} <= statuses
        for response in answers:
            assert all(name in response.headers for name in RATE_HEADERS), response.request.url
            assert response.headers["x-ratelimit-limit"] == "100"
        remaining = [int(r.headers["x-ratelimit-remaining"]) for r in answers]
        assert remaining == list(range(99, 99 - len(answers), -1))  # each answer took one token
