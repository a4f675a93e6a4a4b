"""ManagementClient against the sandbox; faults it cannot make injected around the real transport."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from linking_toolkit import Auth0Error, ManagementClient, Tenant, connect
from linking_toolkit.errors import (
    AlreadyLinked,
    BadRequest,
    Forbidden,
    InvalidToken,
    MalformedToken,
    NotFound,
    RateLimited,
    ServerError,
    TenantError,
)
from linking_toolkit.management import ClientCredentials
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


def user_id_of(sandbox: Sandbox, email: str, connection: str = DATABASE) -> str:
    return sandbox.demo_user(email, connection)["user_id"]


# -- reading users ------------------------------------------------------------------------------


def test_get_user_and_users_by_email(sandbox: Sandbox, admin: ManagementClient) -> None:
    ada = user_id_of(sandbox, "ada@example.com")
    assert admin.get_user(ada)["email"] == "ada@example.com"
    assert set(admin.get_user(ada, fields=["user_id", "email"])) == {"user_id", "email"}
    found = admin.users_by_email("ada@example.com")
    assert ada in {u["user_id"] for u in found} and len(found) >= 2  # database and Google


@pytest.mark.parametrize("odd", ["auth0|a/b", "auth0|100%", "auth0|with space", "auth0|ünï©ødé",
                                 "github|1|2", "auth0|..", "auth0|?x=1#y"])
def test_odd_user_ids_travel_encoded_and_are_simply_not_found(admin: ManagementClient, odd: str) -> None:
    with pytest.raises(NotFound) as caught:
        admin.get_user(odd)
    assert caught.value.status_code == 404 and caught.value.error_code == "inexistent_user"


def test_list_users_pages_through_everyone_and_counts(admin: ManagementClient) -> None:
    total = admin.count_users()
    users = list(admin.list_users(per_page=3))
    assert len(users) == total == len({u["user_id"] for u in users})
    ada = list(admin.list_users(q='email:"ada@example.com"', fields=["user_id", "email"]))
    assert ada and all(u["email"] == "ada@example.com" for u in ada)
    assert admin.count_users('email:"ada@example.com"') == len(ada)


def test_update_user_metadata_merges(sandbox: Sandbox, admin: ManagementClient) -> None:
    ada = user_id_of(sandbox, "ada@example.com")
    before = admin.get_user(ada)["user_metadata"]
    updated = admin.update_user_metadata(ada, {"course": "linking 101"})
    assert updated["user_metadata"] == {**before, "course": "linking 101"}


def test_a_user_session_reads_only_itself(sandbox: Sandbox, login_as) -> None:
    session = login_as("ada@example.com")
    with ManagementClient.from_session(session) as own:
        assert own.get_user(session.user_id)["user_id"] == session.user_id
        with pytest.raises(Forbidden) as caught:
            own.get_user(user_id_of(sandbox, "grace@example.com"))
        assert caught.value.status_code == 403


def test_client_credentials_are_renewed_before_expiry(client_tenant: Tenant) -> None:
    source = ClientCredentials(client_tenant, client_tenant.m2m_client_id or "",
                               client_tenant.m2m_client_secret or "")
    first = source()
    assert source() == first  # cached while far from expiry
    source.renew_before = 10 ** 9  # every token is now "about to expire"
    assert source() != first
    assert client_tenant.m2m_client_secret not in repr(source)


def test_wrong_client_secret_is_the_tenants_error(client_tenant: Tenant) -> None:
    client = ManagementClient.from_client_credentials(client_tenant, client_secret="wrong")
    with pytest.raises(Auth0Error) as caught:
        client.get_user("auth0|x")
    assert caught.value.status_code in (401, 403)
    client.close()


# -- link and unlink by id (update:users) -------------------------------------------------------


@pytest.mark.parametrize("full_id", [True, False])
def test_link_by_provider_and_user_id_then_unlink(sandbox: Sandbox, admin: ManagementClient,
                                                  full_id: bool) -> None:
    primary = user_id_of(sandbox, "grace@example.com")
    github = next(u for u in admin.users_by_email("grace@example.com") if u["user_id"].startswith("github|"))
    bare = github["user_id"].split("|", 1)[1]
    identities = admin.link(primary, provider="github", user_id=github["user_id"] if full_id else bare,
                            connection_id=sandbox.connections["github"])
    assert [i["user_id"] for i in identities][1] == bare
    remaining = admin.unlink(primary, "github", bare)
    assert [f"{i['provider']}|{i['user_id']}" for i in remaining] == [primary]


def test_link_needs_one_body_form(admin: ManagementClient) -> None:
    with pytest.raises(ValueError, match="either"):
        admin.link("auth0|x")
    with pytest.raises(ValueError, match="either"):
        admin.link("auth0|x", link_with="a.b.c", provider="github", user_id="1")


def test_link_with_an_unknown_connection_is_a_bad_request(sandbox: Sandbox, admin: ManagementClient) -> None:
    primary = user_id_of(sandbox, "grace@example.com")
    with pytest.raises(BadRequest) as caught:
        admin.link(primary, provider="github", user_id="1", connection_id="con_nope")
    assert caught.value.status_code == 400
    assert len(admin.get_user(primary)["identities"]) == 1


# -- export jobs --------------------------------------------------------------------------------


def test_export_create_wait_download_and_stream(admin: ManagementClient, tmp_path: Path) -> None:
    job = admin.create_users_export(fields=["user_id", "email", "identities"])
    seen: list[int] = []
    done = admin.wait_for_job(job["id"], progress=seen.append, poll=0.05, timeout=60)
    assert done["status"] == "completed" and seen[-1] == 100
    path = admin.download_export(done, tmp_path / "users.json.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    streamed = list(admin.iter_export(done))
    assert [json.loads(line) for line in lines if line.strip()] == streamed
    assert len(streamed) == admin.count_users()
    assert all("user_id" in u for u in streamed)


@pytest.mark.parametrize("sandbox_options", [{"export_link_seconds": 1}], ids=["one_second_links"])
def test_an_expired_export_link_is_renewed_by_asking_the_job(admin: ManagementClient, tmp_path: Path) -> None:
    """Auth0's link lives 60 s (here 1 s): a download started later asks the job for a fresh one."""
    done = admin.wait_for_job(admin.create_users_export()["id"], poll=0.05, timeout=60)
    time.sleep(1.5)
    path = admin.download_export(done, tmp_path / "users.json.gz")
    assert len(gzip.decompress(path.read_bytes()).decode().splitlines()) == admin.count_users()
    time.sleep(1.5)
    assert len(list(admin.iter_export(done))) == admin.count_users()


def test_a_download_refused_with_a_fresh_link_too_is_an_error(sandbox: Sandbox,
                                                              admin: ManagementClient) -> None:
    done = admin.wait_for_job(admin.create_users_export()["id"], poll=0.05, timeout=60)
    spoiled = {**done, "location": done["location"].replace("signature=", "signature=0")}
    assert len(list(admin.iter_export(spoiled))) == admin.count_users()  # renewed once, like an expired one
    assert sandbox.context is not None and sandbox.context.exports is not None
    for name in os.listdir(sandbox.context.exports.directory):  # the tenant lost the file
        os.remove(os.path.join(sandbox.context.exports.directory, name))
    with pytest.raises(NotFound):
        list(admin.iter_export(done))


# -- faults the sandbox cannot make -------------------------------------------------------------

Fault = Callable[[httpx2.Request, Callable[[], httpx2.Response]], httpx2.Response]


def answer(status: int, body: str = "<html><body>Bad gateway</body></html>") -> Fault:
    return lambda request, forward: httpx2.Response(status, text=body, headers={"content-type": "text/html"})


def drop(request: httpx2.Request, forward: Callable[[], httpx2.Response]) -> httpx2.Response:
    raise httpx2.ConnectError("connection refused", request=request)


def drop_after_forwarding(request: httpx2.Request, forward: Callable[[], httpx2.Response]) -> httpx2.Response:
    forward()  # the tenant did it; the answer is lost on the way back
    raise httpx2.ReadError("connection reset by peer", request=request)


def bad_gateway_after_forwarding(request: httpx2.Request, forward) -> httpx2.Response:
    forward()
    return answer(502)(request, forward)


class Faults:
    """The real transport to the sandbox, with planned faults for (method, path fragment)."""

    def __init__(self) -> None:
        self.real = httpx2.HTTPTransport()
        self.plan: list[tuple[str, str, Fault]] = []
        self.forwarded: list[tuple[str, str]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        def forward() -> httpx2.Response:
            self.forwarded.append((request.method, request.url.path))
            response = self.real.handle_request(request)
            response.read()
            return response

        for i, (method, fragment, fault) in enumerate(self.plan):
            if request.method == method and fragment in request.url.path:
                del self.plan[i]
                return fault(request, forward)
        return forward()

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def faulty(client_tenant: Tenant, faults: Faults) -> Iterator[ManagementClient]:
    transport = faults.transport()
    with ManagementClient.from_client_credentials(client_tenant, transport=transport, backoff=0) as client:
        yield client


@pytest.mark.parametrize("fault", [answer(503), answer(500), drop])
def test_a_get_is_retried_after_a_5xx_or_a_dropped_connection(
    sandbox: Sandbox, faults: Faults, faulty: ManagementClient, fault: Fault
) -> None:
    faults.plan.append(("GET", "/users/", fault))
    assert faulty.get_user(user_id_of(sandbox, "ada@example.com"))["email"] == "ada@example.com"
    assert faulty.stats.retries == 1


def test_a_get_gives_up_after_its_retries(sandbox: Sandbox, faults: Faults, faulty: ManagementClient) -> None:
    faults.plan.extend([("GET", "/users/", answer(503))] * 4)
    with pytest.raises(ServerError) as caught:
        faulty.get_user(user_id_of(sandbox, "ada@example.com"))
    assert caught.value.status_code == 503 and faulty.stats.retries == 3


def test_an_html_answer_is_a_tenant_error(sandbox: Sandbox, faults: Faults, faulty: ManagementClient) -> None:
    faults.plan.append(("GET", "/users-by-email", answer(200, "<html>login</html>")))
    with pytest.raises(TenantError, match="not JSON"):
        faulty.users_by_email("ada@example.com")
    faults.plan.append(("GET", "/users-by-email", answer(200, "{garbage")))
    with pytest.raises(TenantError):
        faulty.users_by_email("ada@example.com")
    faults.plan.append(("GET", "/users/", answer(200, '"a JSON string, not a user"')))
    with pytest.raises(TenantError, match="not a JSON object"):
        faulty.get_user("auth0|x")
    faults.plan.append(("GET", "/users-by-email", answer(200, '{"users": []}')))
    with pytest.raises(TenantError, match="not a JSON array"):
        faulty.users_by_email("ada@example.com")
    faults.plan.append(("PATCH", "/users/", answer(404, "<html>nope</html>")))
    with pytest.raises(TenantError):
        faulty.update_user_metadata("auth0|x", {"a": 1})
    assert faulty.stats.retries == 0


def test_a_post_that_may_have_happened_is_not_resent(faults: Faults, faulty: ManagementClient) -> None:
    faults.plan.append(("POST", "/users", answer(503)))
    before = faulty.count_users()
    with pytest.raises(ServerError):
        faulty.create_user({"connection": DATABASE, "email": "new@example.com", "password": "Pass-w0rd!x"})
    assert ("POST", "/api/v2/users") not in faults.forwarded
    assert faulty.count_users() == before


def grace_and_github(sandbox: Sandbox, admin: ManagementClient) -> tuple[str, str]:
    github = next(u for u in admin.users_by_email("grace@example.com") if u["user_id"].startswith("github|"))
    return user_id_of(sandbox, "grace@example.com"), github["user_id"].split("|", 1)[1]


def test_a_link_whose_answer_was_lost_is_found_done(sandbox: Sandbox, faults: Faults,
                                                    faulty: ManagementClient) -> None:
    primary, github = grace_and_github(sandbox, faulty)
    faults.plan.append(("POST", "/identities", bad_gateway_after_forwarding))
    identities = faulty.link(primary, provider="github", user_id=github)
    assert [i["user_id"] for i in identities] == [primary.split("|", 1)[1], github]
    assert [p for m, p in faults.forwarded if m == "POST"] == [f"/api/v2/users/{primary}/identities"]


def test_a_link_that_never_arrived_is_sent_again_after_checking(sandbox: Sandbox, faults: Faults,
                                                                faulty: ManagementClient) -> None:
    primary, github = grace_and_github(sandbox, faulty)
    faults.plan.append(("POST", "/identities", drop))
    identities = faulty.link(primary, provider="github", user_id=github)
    assert len(identities) == 2
    methods = [m for m, p in faults.forwarded if "/identities" in p or p.endswith(primary)]
    assert methods == ["GET", "POST"]  # looked first, then sent once


def test_an_unlink_retry_that_finds_it_done_counts_as_done(sandbox: Sandbox, faults: Faults,
                                                           faulty: ManagementClient) -> None:
    primary, github = grace_and_github(sandbox, faulty)
    faulty.link(primary, provider="github", user_id=github)
    faults.plan.append(("DELETE", "/identities/", drop_after_forwarding))
    remaining = faulty.unlink(primary, "github", github)
    assert [i["provider"] for i in remaining] == ["auth0"]
    assert faulty.stats.retries == 1
    assert faulty.get_user(f"github|{github}")["user_id"] == f"github|{github}"


# -- rate limits --------------------------------------------------------------------------------


def test_pacing_keeps_a_run_inside_the_bucket() -> None:
    with Sandbox(seed=7, rate_limit=(3, 5.0)) as limited, connect(sandbox=limited) as tenant:
        ada = limited.demo_user("ada@example.com")["user_id"]
        with ManagementClient.from_client_credentials(tenant) as client:
            for _ in range(12):
                assert client.get_user(ada)["user_id"] == ada
            assert client.stats.rate_limited == 0
            assert client.stats.requests == 12
            assert client.stats.waited_seconds > 0


def test_a_429_is_waited_out_until_the_reset() -> None:
    with Sandbox(seed=7, rate_limit=(2, 2.0)) as limited, connect(sandbox=limited) as tenant:
        ada = limited.demo_user("ada@example.com")["user_id"]
        with ManagementClient.from_client_credentials(tenant) as client, \
                ManagementClient.from_client_credentials(tenant) as other:
            other.get_user(ada)
            other.get_user(ada)  # another client emptied the bucket; this one does not know
            assert client.get_user(ada)["user_id"] == ada
            assert client.stats.rate_limited >= 1 and client.stats.waited_seconds > 0


# -- bad input ----------------------------------------------------------------------------------


def test_an_unknown_provider_is_a_bad_request_and_changes_nothing(sandbox: Sandbox,
                                                                  admin: ManagementClient) -> None:
    primary = user_id_of(sandbox, "ada@example.com")
    with pytest.raises(BadRequest) as caught:
        admin.unlink(primary, "no-such-provider", "1")
    assert caught.value.error_code == "invalid_uri" and "provider" in str(caught.value)
    with pytest.raises(BadRequest) as caught:
        admin.link(primary, provider="no-such-provider", user_id="1")
    assert caught.value.error_code == "invalid_body"
    assert len(admin.get_user(primary)["identities"]) == 1


@pytest.mark.parametrize(("token", "status"), [("garbage", 401), ("a.b.c", 401), ("", None), ("a\nb", None)])
def test_a_malformed_bearer_token_is_invalid_token(sandbox: Sandbox, client_tenant: Tenant,
                                                   token: str, status: int | None) -> None:
    """The tenant refuses a malformed token; an empty or unprintable one is refused before sending."""
    with ManagementClient(client_tenant, lambda: token) as client, pytest.raises(InvalidToken) as caught:
        client.get_user(user_id_of(sandbox, "ada@example.com"))
    assert caught.value.status_code == status and str(caught.value)
    assert client.stats.requests == (1 if status else 0)


def test_a_token_of_another_tenant_is_invalid_token(sandbox: Sandbox, client_tenant: Tenant) -> None:
    with Sandbox(seed=7) as other, connect(sandbox=other) as other_tenant:
        foreign = ClientCredentials(other_tenant, other.m2m_client_id, other.m2m_client_secret)()
    with ManagementClient(client_tenant, lambda: foreign) as client, pytest.raises(InvalidToken):
        client.get_user(user_id_of(sandbox, "ada@example.com"))


class RevokedFirst(ClientCredentials):
    """Machine credentials whose first token the tenant no longer accepts (revoked since)."""

    fetched = 0

    def request_token(self) -> tuple[str, float]:
        self.fetched += 1
        token, expires_at = super().request_token()
        return ("revoked" if self.fetched == 1 else token), expires_at


def test_a_revoked_machine_token_is_renewed_once(sandbox: Sandbox, client_tenant: Tenant) -> None:
    source = RevokedFirst(client_tenant, sandbox.m2m_client_id, sandbox.m2m_client_secret)
    assert source() == "revoked"  # the tenant no longer accepts the cached token
    with ManagementClient(client_tenant, source) as client:
        assert client.get_user(user_id_of(sandbox, "ada@example.com"))["email"] == "ada@example.com"
        assert client.stats.requests == 2  # the 401, then the same call with a fresh token


def test_list_users_stops_at_the_paging_cap_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with Sandbox(seed=3, users=1100) as big, connect(sandbox=big) as tenant, \
            ManagementClient.from_client_credentials(tenant) as client:
        total = client.count_users()
        assert total > 1000  # counting goes past the cap; paging cannot
        users = list(client.list_users())
        assert len(users) == 1000 == len({u["user_id"] for u in users})
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any("create_users_export" in message for message in warnings)


def test_rate_limited_when_the_waits_run_out() -> None:
    with Sandbox(seed=7, rate_limit=(1, 0.5)) as limited, connect(sandbox=limited) as tenant:
        ada = limited.demo_user("ada@example.com")["user_id"]
        with ManagementClient.from_client_credentials(tenant, max_rate_limit_waits=0) as client, \
                ManagementClient.from_client_credentials(tenant) as other:
            other.get_user(ada)  # the only token of the bucket
            with pytest.raises(RateLimited) as caught:
                client.get_user(ada)
            assert caught.value.status_code == 429 and caught.value.error_code == "too_many_requests"
            assert caught.value.reset_at is not None and client.stats.rate_limited == 1


def test_a_429_with_only_retry_after_waits_that_long() -> None:
    """A proxy in front of a tenant may answer 429 with Retry-After and no x-ratelimit-* headers:
    the client waits exactly what it was told, not a guess of its own."""
    sent: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.method)
        if len(sent) == 1:
            return httpx2.Response(429, json={"statusCode": 429, "error": "Too Many Requests",
                                              "message": "Global limit has been reached",
                                              "errorCode": "too_many_requests"}, headers={"retry-after": "1"})
        return httpx2.Response(200, json={"user_id": "auth0|1", "identities": []})

    with Sandbox(seed=7) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient(tenant, lambda: "token", transport=httpx2.MockTransport(handle)) as client:
        assert client.get_user("auth0|1")["user_id"] == "auth0|1"
    assert sent == ["GET", "GET"]
    assert client.stats.rate_limited == 1 and client.stats.waited_seconds == 1.0


ODD_IDS = ["auth0|a/b", "auth0|100%", "auth0|with space", "auth0|ünï©ødé", "github|1|2", "auth0|.."]


@pytest.mark.parametrize("odd", ODD_IDS)
def test_writes_to_odd_user_ids_are_not_found_and_change_nothing(sandbox: Sandbox, admin: ManagementClient,
                                                                 odd: str) -> None:
    primary, github = grace_and_github(sandbox, admin)
    before = admin.get_user(primary)
    with pytest.raises(NotFound):
        admin.link(odd, provider="github", user_id=github)
    with pytest.raises(NotFound):
        admin.update_user_metadata(odd, {"plan": "gold"})
    with pytest.raises((NotFound, BadRequest)):
        admin.unlink(odd, "github", github)
    # The ids travelled encoded: no other user was touched.
    assert admin.get_user(f"github|{github}")["user_id"] == f"github|{github}"
    assert admin.get_user(primary) == before


def test_a_malformed_link_with_token_is_refused_before_any_request(sandbox: Sandbox,
                                                                   admin: ManagementClient) -> None:
    primary = user_id_of(sandbox, "ada@example.com")
    admin.get_user(primary)
    before = admin.stats.requests
    for token in ["garbage", "a.b", "e30.W10.sig"]:
        with pytest.raises(MalformedToken):
            admin.link(primary, link_with=token)
    assert admin.stats.requests == before


def test_a_link_with_token_of_another_tenant_is_refused_and_changes_nothing(
    sandbox: Sandbox, admin: ManagementClient
) -> None:
    primary = user_id_of(sandbox, "ada@example.com")
    with Sandbox(seed=7) as other:
        assert other.context is not None
        from linking_toolkit.sandbox.authentication_api.tokens import mint_id_token

        with other.context.store.read() as db:
            row = other.context.store.get_user_row(db, user_id_of(other, "grace@example.com"))
        foreign = mint_id_token(other.context, user=row, client_id=other.client_id,
                                scope="openid profile email", auth_time=0)
    with pytest.raises(BadRequest) as caught:
        admin.link(primary, link_with=foreign)
    assert caught.value.status_code == 400 and caught.value.error_code
    assert len(admin.get_user(primary)["identities"]) == 1


def test_linking_an_identity_twice_is_already_linked_in_the_tenants_words(sandbox: Sandbox,
                                                                          admin: ManagementClient) -> None:
    primary, github = grace_and_github(sandbox, admin)
    identities = admin.link(primary, provider="github", user_id=github)
    requests = admin.stats.requests
    with pytest.raises(AlreadyLinked) as caught:
        admin.link(primary, provider="github", user_id=github)
    error = caught.value
    assert (error.status_code, error.error, error.error_code) == (409, "Conflict", "identity_conflict")
    assert str(error) == "Specified identity already exists."
    assert admin.stats.requests == requests + 1  # refused by the tenant: not checked, not re-sent
    def ids(items: list[dict]) -> list[str]:
        return [f"{i['provider']}|{i['user_id']}" for i in items]

    assert ids(admin.get_user(primary)["identities"]) == ids(identities)


def test_a_429_reset_is_read_on_the_tenants_clock_when_ours_is_off() -> None:
    """Our clock 10 s ahead of the tenant's: its reset, 2 s ahead by its own Date, is already past
    by ours; the client still waits the 2 s instead of hammering the tenant."""
    from email.utils import formatdate

    sent: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.method)
        tenant_now = int(time.time()) - 10
        if len(sent) == 1:
            return httpx2.Response(429, json={"statusCode": 429, "error": "Too Many Requests",
                                              "message": "Global limit has been reached",
                                              "errorCode": "too_many_requests"},
                                   headers={"date": formatdate(tenant_now, usegmt=True),
                                            "x-ratelimit-limit": "50", "x-ratelimit-remaining": "0",
                                            "x-ratelimit-reset": str(tenant_now + 2)})
        return httpx2.Response(200, json={"user_id": "auth0|1", "identities": []})

    with Sandbox(seed=7) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient(tenant, lambda: "token", transport=httpx2.MockTransport(handle)) as client:
        assert client.get_user("auth0|1")["user_id"] == "auth0|1"
    assert sent == ["GET", "GET"] and client.stats.rate_limited == 1
    assert 1.0 < client.stats.waited_seconds < 3.0


def test_pacing_reads_the_reset_on_the_tenants_clock_when_ours_is_behind() -> None:
    """Our clock 10 s behind the tenant's: an empty bucket refilling in 1 s by the tenant's clock
    is a 1 s wait, not 11."""
    from email.utils import formatdate

    def handle(request: httpx2.Request) -> httpx2.Response:
        tenant_now = int(time.time()) + 10
        headers = {"date": formatdate(tenant_now, usegmt=True), "x-ratelimit-limit": "50",
                   "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(tenant_now + 1)}
        return httpx2.Response(200, json={"user_id": "auth0|1", "identities": []}, headers=headers)

    with Sandbox(seed=7) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient(tenant, lambda: "token", transport=httpx2.MockTransport(handle)) as client:
        client.get_user("auth0|1")
        client.get_user("auth0|1")  # waits for the bucket's refill
    assert 0.0 < client.stats.waited_seconds < 3.0


def test_pages_and_counts_of_the_wrong_shape_are_tenant_errors(faults: Faults,
                                                               faulty: ManagementClient) -> None:
    for body in ['{"users": "everyone", "total": 3}', '{"users": [1, 2], "total": 2}',
                 '{"users": [], "total": "many"}']:
        faults.plan.append(("GET", "/users", answer(200, body)))
        with pytest.raises(TenantError, match="page of users"):
            list(faulty.list_users())
    faults.plan.append(("GET", "/users", answer(200, '{"users": []}')))
    with pytest.raises(TenantError, match="total"):
        faulty.count_users()


def test_a_machine_token_with_a_garbage_expiry_is_a_tenant_error(sandbox: Sandbox) -> None:
    real = httpx2.HTTPTransport()

    def handle(request: httpx2.Request) -> httpx2.Response:
        response = real.handle_request(request)
        response.read()
        if request.url.path == "/oauth/token":
            return httpx2.Response(200, json=response.json() | {"expires_in": "a day"})
        return response

    with Tenant.from_sandbox(sandbox, transport=httpx2.MockTransport(handle)) as tenant, \
            ManagementClient.from_client_credentials(tenant) as client:
        with pytest.raises(TenantError, match="expires_in"):
            client.get_user("auth0|x")
        assert client.stats.requests == 0
