"""Management API v2 of the sandbox over HTTP: authentication, scopes, users, search, bad input."""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from linking_toolkit.sandbox import Sandbox

NOT_ME = "User to be acted on does not match subject in bearer token."


def enc(user_id: str) -> str:
    return quote(user_id, safe="")


def assert_error(response: httpx2.Response, status: int, message: str | None = None,
                 error_code: str | None = None) -> dict:
    """Auth0's error shape, as JSON, with the expected status (and message, errorCode)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["statusCode"] == status
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    if message is not None:
        assert body["message"] == message
    if error_code is not None:
        assert body["errorCode"] == error_code
    return body


def by_email(api: httpx2.Client, email: str) -> list[dict]:
    response = api.get("/users-by-email", params={"email": email})
    assert response.status_code == 200
    return response.json()


def user_count(api: httpx2.Client) -> int:
    return api.get("/users", params={"include_totals": "true", "per_page": 0}).json()["total"]


# -- authentication ---------------------------------------------------------------------------------

def call(sandbox: Sandbox, headers: dict[str, str]) -> httpx2.Response:
    return httpx2.get(sandbox.base_url + "/api/v2/users", headers=headers)


def test_missing_and_malformed_authorization(sandbox: Sandbox) -> None:
    assert_error(call(sandbox, {}), 401, "Missing authentication")
    assert_error(call(sandbox, {"Authorization": "Basic abc"}), 401, "Bad HTTP authentication header format")
    assert_error(call(sandbox, {"Authorization": "Bearer"}), 401, "Bad HTTP authentication header format")
    assert_error(call(sandbox, {"Authorization": "Bearer not-a-jwt"}), 401, "Invalid token")
    assert_error(call(sandbox, {"Authorization": "Bearer a.b.c"}), 401, "Invalid token")


def test_forged_tokens_are_refused(sandbox: Sandbox, m2m_token: str) -> None:
    ctx = sandbox.context
    assert ctx is not None
    # Same kid, another key: a forger who read the JWKS.
    other = RSAKey.generate_key(2048, parameters={"kid": ctx.keys.current.kid}, private=True)
    claims = {"iss": sandbox.issuer, "sub": "x@clients", "aud": sandbox.management_audience,
              "iat": int(time.time()), "exp": int(time.time()) + 600, "scope": "read:users", "azp": "x"}
    forged = jwt.encode({"alg": "RS256", "kid": ctx.keys.current.kid}, claims, other)
    assert_error(call(sandbox, {"Authorization": f"Bearer {forged}"}), 401,
                 "Invalid signature received for JSON Web Token validation")
    # A real token whose payload was edited.
    head, _, sig = m2m_token.split(".")
    tampered_payload = jwt.encode({"alg": "RS256"}, claims, other).split(".")[1]
    tampered = f"{head}.{tampered_payload}.{sig}"
    assert_error(call(sandbox, {"Authorization": f"Bearer {tampered}"}), 401,
                 "Invalid signature received for JSON Web Token validation")
    # HS256 with a guessed secret, and alg none.
    hs = jwt.encode({"alg": "HS256"}, claims, OctKey.generate_key(256))
    assert_error(call(sandbox, {"Authorization": f"Bearer {hs}"}), 401, "Invalid token")
    none = "eyJhbGciOiJub25lIn0." + tampered_payload + "."
    assert_error(call(sandbox, {"Authorization": f"Bearer {none}"}), 401, "Invalid token")


def test_expired_wrong_audience_and_wrong_issuer(sandbox: Sandbox, mint) -> None:
    expired = mint("read:users", expires_in=-5)
    assert_error(call(sandbox, {"Authorization": f"Bearer {expired}"}), 401,
                 "Expired token received for JSON Web Token validation")
    other_api = mint("read:users", audience="https://api.example.com/")
    assert_error(call(sandbox, {"Authorization": f"Bearer {other_api}"}), 401,
                 "Bad audience: https://api.example.com/")
    ctx = sandbox.context
    assert ctx is not None
    now = int(time.time())
    foreign = ctx.keys.sign({"iss": "https://evil.example.com/", "sub": "x@clients", "azp": "x",
                             "aud": sandbox.management_audience, "iat": now, "exp": now + 600,
                             "scope": "read:users"})
    assert_error(call(sandbox, {"Authorization": f"Bearer {foreign}"}), 401, "Invalid token")


def test_an_id_token_is_not_a_bearer(sandbox: Sandbox, mint_id) -> None:
    ada = sandbox.demo_user("ada@example.com")
    id_token = mint_id(ada["user_id"])
    body = assert_error(call(sandbox, {"Authorization": f"Bearer {id_token}"}), 401)
    assert body["message"] == f"Bad audience: {sandbox.client_id}"
    response = httpx2.get(f"{sandbox.base_url}/api/v2/users/{enc(ada['user_id'])}",
                          headers={"Authorization": f"Bearer {id_token}"})
    assert_error(response, 401, f"Bad audience: {sandbox.client_id}")


def test_user_token_with_userinfo_audience_list_is_accepted(sandbox: Sandbox, mint) -> None:
    ada = sandbox.demo_user("ada@example.com")
    token = mint("openid read:current_user", sub=ada["user_id"], client_id=sandbox.client_id)
    response = httpx2.get(f"{sandbox.base_url}/api/v2/users/{enc(ada['user_id'])}",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user_id"] == ada["user_id"]


# -- scopes -----------------------------------------------------------------------------------------

def client_with(sandbox: Sandbox, token: str) -> httpx2.Client:
    return httpx2.Client(base_url=sandbox.base_url + "/api/v2", headers={"Authorization": f"Bearer {token}"})


def test_scopes_are_enforced(sandbox: Sandbox, mint) -> None:
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    with client_with(sandbox, mint("read:users")) as reader:
        assert reader.get("/users").status_code == 200
        assert_error(reader.delete(f"/users/{enc(ada)}"), 403,
                     "Insufficient scope; expected any of: delete:users,delete:current_user.",
                     "insufficient_scope")
        assert_error(reader.patch(f"/users/{enc(ada)}", json={"name": "x"}), 403,
                     "Insufficient scope; expected any of: "
                     "update:users,update:users_app_metadata,update:current_user_metadata.")
        assert_error(reader.post(f"/users/{enc(ada)}/identities", json={"link_with": "x"}), 403,
                     "Insufficient scope; expected: update:users, update:current_user_identities.")
        assert_error(reader.post("/users", json={"connection": "x"}), 403,
                     "Insufficient scope, expected any of: create:users.")
    with client_with(sandbox, mint("")) as nothing:
        assert_error(nothing.get("/users"), 403, "Insufficient scope, expected any of: read:users.",
                     "insufficient_scope")
        assert_error(nothing.get(f"/users/{enc(ada)}"), 403,
                     "Insufficient scope; expected any of: read:users, read:user_idp_tokens,"
                     " read:current_user.")
        assert_error(nothing.get("/users-by-email", params={"email": "a@b.c"}), 403,
                     "Insufficient scope; expected any of: read:users.")
        assert_error(nothing.post("/jobs/users-exports", json={}), 403,
                     "Insufficient scope; expected any of: read:users.")
        assert_error(nothing.get("/jobs/job_0000000000000000"), 403,
                     "Insufficient scope; expected any of: create:users.")


def test_current_user_scopes_act_only_on_their_own_subject(sandbox: Sandbox, mint) -> None:
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    grace = sandbox.demo_user("grace@example.com")["user_id"]
    token = mint("read:current_user update:current_user_identities update:current_user_metadata",
                 sub=ada, client_id=sandbox.client_id)
    with client_with(sandbox, token) as me:
        assert me.get(f"/users/{enc(ada)}").status_code == 200
        assert_error(me.get(f"/users/{enc(grace)}"), 403, NOT_ME)
        assert_error(me.get("/users"), 403, "Insufficient scope, expected any of: read:users.")
        assert_error(me.post(f"/users/{enc(grace)}/identities", json={"link_with": "x"}), 403, NOT_ME)
        assert_error(me.delete(f"/users/{enc(grace)}/identities/github/1"), 403, NOT_ME)
        # update:current_user_identities links only with a second authenticated account.
        assert_error(me.post(f"/users/{enc(ada)}/identities", json={"provider": "auth0", "user_id": grace}),
                     403, error_code="insufficient_scope")
        patched = me.patch(f"/users/{enc(ada)}", json={"user_metadata": {"lang": "fr"}})
        assert patched.status_code == 200 and patched.json()["user_metadata"]["lang"] == "fr"
        assert_error(me.patch(f"/users/{enc(ada)}", json={"app_metadata": {"role": "admin"}}), 403)
        assert_error(me.patch(f"/users/{enc(grace)}", json={"user_metadata": {"x": 1}}), 403, NOT_ME)
    assert "role" not in (sandbox.context.store.get_user(ada) or {}).get("app_metadata", {})


# -- listing and searching --------------------------------------------------------------------------

def test_list_users_pages_and_totals(api: httpx2.Client) -> None:
    everyone = api.get("/users").json()
    assert isinstance(everyone, list) and len(everyone) == 10
    page = api.get("/users", params={"page": 1, "per_page": 3, "include_totals": "true"}).json()
    assert page["start"] == 3 and page["limit"] == 3 and page["length"] == 3 and page["total"] == 10
    assert [u["user_id"] for u in page["users"]] == [u["user_id"] for u in everyone[3:6]]
    last = api.get("/users", params={"page": 3, "per_page": 3, "include_totals": "true"}).json()
    assert last["length"] == 1


def test_sort_and_fields(api: httpx2.Client) -> None:
    up = api.get("/users", params={"sort": "created_at:1"}).json()
    down = api.get("/users", params={"sort": "created_at:-1"}).json()
    assert [u["created_at"] for u in up] == sorted(u["created_at"] for u in up)
    assert [u["user_id"] for u in down] == [u["user_id"] for u in reversed(up)]
    only = api.get("/users", params={"fields": "user_id,email", "include_fields": "true"}).json()
    assert all(set(u) == {"user_id", "email"} for u in only)
    without = api.get("/users", params={"fields": "identities", "include_fields": "false"}).json()
    assert all("identities" not in u and "user_id" in u for u in without)
    assert_error(api.get("/users", params={"sort": "password:1"}), 400, error_code="invalid_query_string")


def test_search_with_q(api: httpx2.Client, sandbox: Sandbox) -> None:
    def search(q: str) -> list[dict]:
        response = api.get("/users", params={"q": q, "search_engine": "v3"})
        assert response.status_code == 200, response.text
        return response.json()

    ada = search('email:"ada@example.com"')
    assert {u["identities"][0]["connection"] for u in ada} == {"Username-Password-Authentication",
                                                                "google-oauth2"}
    assert len(search('email:"ADA@example.com"')) == 2  # Auth0 stores emails lowercased
    github = search('identities.connection:"github"')
    assert [u["email"] for u in github] == ["grace@example.com"]
    both = search('email:"ada@example.com" AND identities.connection:"google-oauth2"')
    assert len(both) == 1 and both[0]["user_id"].startswith("google-oauth2|")
    db_ada = sandbox.demo_user("ada@example.com")["user_id"]
    assert [u["user_id"] for u in search(f'user_id:"{db_ada}"')] == [db_ada]
    assert search('email:"nobody@example.com"') == []
    assert len(search("email:ada*")) == 2
    assert len(search("email_verified:false")) == 1
    for bad in ('email:"unterminated', "email:a OR email:b", 'password:"x"', "email:a AND"):
        assert_error(api.get("/users", params={"q": bad}), 400, error_code="invalid_query_string")


def test_search_engine_versions(api: httpx2.Client) -> None:
    assert_error(api.get("/users", params={"search_engine": "v1"}), 400,
                 "You are not allowed to use search_engine=v1.")
    assert_error(api.get("/users", params={"search_engine": "v2"}), 400,
                 "You are not allowed to use search_engine=v2. Use search_engine=v3 instead.")
    for value in ("", "v4"):  # outside the document's enum, the empty value too
        assert_error(api.get("/users", params={"search_engine": value}), 400,
                     "Query validation error: 'Invalid value' on property search_engine.")


def test_only_the_first_1000_records_can_be_paged(api: httpx2.Client) -> None:
    message = ("You can only page through the first 1000 records. "
               "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.")
    assert api.get("/users", params={"page": 9, "per_page": 100}).status_code == 200
    assert_error(api.get("/users", params={"page": 10, "per_page": 100}), 400, message,
                 "invalid_query_string")
    assert_error(api.get("/users", params={"page": 20, "per_page": 50}), 400, message)
    assert_error(api.get("/users", params={"page": 5000}), 400, message)
    assert_error(api.get("/users", params={"per_page": 101}), 400, error_code="invalid_query_string")
    assert_error(api.get("/users", params={"page": "one"}), 400, error_code="invalid_query_string")
    assert_error(api.get("/users", params={"page": "-1"}), 400, error_code="invalid_query_string")
    assert_error(api.get("/users", params={"include_totals": "yes"}), 400)


def test_a_tenant_past_1000_users_pages_through_exactly_the_first_1000() -> None:
    with Sandbox(seed=9, users=1100) as big:
        granted = httpx2.post(big.base_url + "/oauth/token", json={
            "grant_type": "client_credentials", "client_id": big.m2m_client_id,
            "client_secret": big.m2m_client_secret, "audience": big.management_audience})
        with client_with(big, granted.json()["access_token"]) as api:
            pages = [api.get("/users", params={"page": p, "per_page": 100, "include_totals": "true"}).json()
                     for p in range(10)]
            assert {page["total"] for page in pages} == {1110}
            seen = [u["user_id"] for page in pages for u in page["users"]]
            assert len(seen) == len(set(seen)) == 1000
            assert_error(api.get("/users", params={"page": 10, "per_page": 100}), 400,
                         "You can only page through the first 1000 records. See https://auth0.com/docs/"
                         "users/search/v3/view-search-results-by-page#limitation.", "invalid_query_string")


def test_users_by_email(api: httpx2.Client) -> None:
    found = by_email(api, "grace@example.com")
    assert len(found) == 2 and {u["email"] for u in found} == {"grace@example.com"}
    assert by_email(api, "GRACE@example.com") == []  # the OAS: "Email address to search for (case-sensitive)"
    assert by_email(api, "nobody@example.com") == []
    slim = api.get("/users-by-email", params={"email": "grace@example.com", "fields": "user_id"}).json()
    assert all(set(u) == {"user_id"} for u in slim)
    assert_error(api.get("/users-by-email"), 400, error_code="invalid_query_string")


# -- one user ---------------------------------------------------------------------------------------

def test_get_user_with_encoded_and_plain_ids(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    plain = api.get(f"/users/{ada}")
    encoded = api.get(f"/users/{enc(ada)}")
    assert plain.status_code == encoded.status_code == 200
    assert plain.json() == encoded.json()
    user = plain.json()
    assert user["user_id"] == ada and user["identities"][0]["user_id"] == ada.split("|")[1]
    assert "profileData" not in user["identities"][0]
    assert_error(api.get("/users/auth0%7Cnope"), 404, "The user does not exist.", "inexistent_user")
    assert set(api.get(f"/users/{enc(ada)}", params={"fields": "email"}).json()) == {"email"}


@pytest.mark.parametrize("raw_id", [
    "auth0%2F..%2Fusers", "auth0|a/b", "a%20b", "%E2%98%83", "caf%C3%A9%7C1", "%FF%FE", "%00",
    "auth0%7C" + "x" * 3000, "..", "%25", "auth0|%", "'; DROP TABLE users; --",
])
def test_odd_ids_never_fail(api: httpx2.Client, raw_id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = api.request(method, f"/users/{raw_id}", json={} if method == "PATCH" else None)
        assert response.status_code in (204, 400, 404), (method, raw_id, response.text)
        if response.status_code != 204:
            assert_error(response, response.status_code)
    linked = api.post(f"/users/{raw_id}/identities", json={"provider": "auth0", "user_id": "x"})
    assert 400 <= linked.status_code < 500
    unlinked = api.delete(f"/users/{raw_id}/identities/auth0/{raw_id}")
    assert unlinked.status_code in (400, 404)
    assert user_count(api) == 10


def test_create_user(api: httpx2.Client, sandbox: Sandbox) -> None:
    body = {"connection": "Username-Password-Authentication", "email": "new@example.com",
            "password": "correct horse battery", "given_name": "New", "user_metadata": {"a": 1},
            "app_metadata": {"plan": "free"}, "email_verified": True}
    created = api.post("/users", json=body)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["user_id"].startswith("auth0|") and user["email"] == "new@example.com"
    assert user["identities"] == [{"connection": "Username-Password-Authentication",
                                   "user_id": user["user_id"].split("|")[1], "provider": "auth0",
                                   "isSocial": False}]
    assert user["user_metadata"] == {"a": 1} and user["app_metadata"] == {"plan": "free"}
    assert api.get(f"/users/{enc(user['user_id'])}").json() == user
    assert_error(api.post("/users", json=body | {"email": "NEW@example.com"}), 409,
                 "The user already exists.")
    assert_error(api.post("/users", json=body | {"connection": "google-oauth2"}), 400,
                 "Connection does not support user creation through the API. It must either be a database"
                 " or passwordless connection.")
    assert_error(api.post("/users", json=body | {"connection": "Nope"}), 400, "Connection does not exist.")
    assert_error(api.post("/users", json={"connection": "Username-Password-Authentication",
                                          "email": "x@example.com"}), 400, error_code="invalid_body")
    assert_error(api.post("/users", json=body | {"bogus": 1}), 400,
                 "Payload validation error: 'Additional properties not allowed: bogus'.", "invalid_body")
    assert_error(api.post("/users", json=body | {"email": 5}), 400, error_code="invalid_body")
    custom = api.post("/users", json=body | {"email": "c@example.com", "user_id": "my-id-1"})
    assert custom.json()["user_id"] == "auth0|my-id-1"
    assert user_count(api) == 12


def test_patch_merges_metadata_one_level_deep(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    first = api.patch(f"/users/{ada}", json={"user_metadata": {"a": 1, "b": {"x": 1}},
                                             "app_metadata": {"plan": "pro", "n": 1}})
    assert first.status_code == 200
    assert first.json()["user_metadata"] == {"theme": first.json()["user_metadata"]["theme"], "a": 1,
                                             "b": {"x": 1}}
    second = api.patch(f"/users/{ada}", json={"user_metadata": {"a": None, "b": {"y": 2}, "c": 3},
                                              "app_metadata": {"n": None}, "name": "Ada L."}).json()
    assert {k: v for k, v in second["user_metadata"].items() if k != "theme"} == {"b": {"y": 2}, "c": 3}
    assert second["app_metadata"] == {"plan": "pro"}
    assert second["name"] == "Ada L." and second["updated_at"] >= first.json()["updated_at"]
    assert api.get(f"/users/{ada}").json() == second
    assert_error(api.patch("/users/auth0%7Cnope", json={"name": "x"}), 404, "The user does not exist.")
    alan = by_email(api, "alan@example.com")[0]["user_id"]
    assert_error(api.patch(f"/users/{enc(alan)}", json={"email": "a@b.example"}), 400,
                 "Cannot update email for non-database user.")
    assert_error(api.patch(f"/users/{ada}", json={"email": "a@b.example", "password": "x"}), 400,
                 "Cannot update password and email simultaneously.")
    katherine = enc(sandbox.demo_user("katherine@example.com")["user_id"])
    assert_error(api.patch(f"/users/{katherine}", json={"email": "Grace@example.com"}), 400,
                 "The specified new email already exists")
    moved = api.patch(f"/users/{katherine}", json={"email": "K.Johnson@Example.com", "email_verified": False})
    assert moved.status_code == 200
    assert moved.json()["email"] == "k.johnson@example.com" and moved.json()["email_verified"] is False
    assert_error(api.patch(f"/users/{ada}", json={"user_metadata": []}), 400, error_code="invalid_body")
    assert_error(api.patch(f"/users/{ada}", json={"favourite": "x"}), 400,
                 "Payload validation error: 'Additional properties not allowed: favourite'.")


def test_delete_user(api: httpx2.Client, sandbox: Sandbox) -> None:
    grace = sandbox.demo_user("grace@example.com")["user_id"]
    assert api.delete(f"/users/{enc(grace)}").status_code == 204
    assert_error(api.get(f"/users/{enc(grace)}"), 404, "The user does not exist.", "inexistent_user")
    assert api.delete(f"/users/{enc(grace)}").status_code == 204  # idempotent, as the recording shows
    assert user_count(api) == 9


# -- bad input --------------------------------------------------------------------------------------

def test_bad_bodies_get_auth0_errors_and_change_nothing(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    before = api.get(f"/users/{ada}").json()
    json_headers = {"Content-Type": "application/json"}
    assert_error(api.patch(f"/users/{ada}", content=b"{not json", headers=json_headers), 400,
                 "Invalid request payload JSON format", "invalid_body")
    assert_error(api.patch(f"/users/{ada}", content=b"\xff\xfe", headers=json_headers), 400,
                 "Invalid request payload JSON format")
    assert_error(api.patch(f"/users/{ada}", content=b"[1, 2]", headers=json_headers), 400,
                 error_code="invalid_body")
    assert_error(api.patch(f"/users/{ada}", content=b"name=x", headers={"Content-Type": "text/plain"}), 415)
    assert_error(api.post(f"/users/{ada}/identities", json={"provider": "auth0", "user_id": "x", "extra": 1}),
                 400, "Payload validation error: 'Additional properties not allowed: extra'.", "invalid_body")
    huge = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    assert_error(api.patch(f"/users/{ada}", content=huge, headers=json_headers), 413,
                 "Payload content length greater than maximum allowed: 1048576")
    assert api.get(f"/users/{ada}").json() == before


def test_form_encoded_bodies_are_accepted(api: httpx2.Client, sandbox: Sandbox) -> None:
    katherine = sandbox.demo_user("katherine@example.com")["user_id"]
    grace_github = next(u for u in by_email(api, "grace@example.com") if u["user_id"].startswith("github|"))
    response = api.post(f"/users/{enc(katherine)}/identities",
                        data={"provider": "github", "user_id": grace_github["user_id"]})
    assert response.status_code == 201, response.text


def test_form_bodies_read_booleans_as_auth0_does(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    patched = api.patch(f"/users/{ada}", data={"blocked": "true", "given_name": "Augusta"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["blocked"] is True and patched.json()["given_name"] == "Augusta"
    assert api.patch(f"/users/{ada}", data={"blocked": "false"}).json().get("blocked", False) is False
    created = api.post("/users", data={"connection": "Username-Password-Authentication",
                                       "email": "form@example.com", "password": "Form-pass-123",
                                       "email_verified": "true"})
    assert created.status_code == 201, created.text
    assert created.json()["email_verified"] is True


def test_bad_form_values_get_auth0_errors_and_change_nothing(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    before = api.get(f"/users/{ada}").json()
    assert_error(api.patch(f"/users/{ada}", data={"blocked": "yes", "name": "Changed"}), 400,
                 "Payload validation error: 'Expected type boolean but found type string'"
                 " on property blocked.", "invalid_body")
    assert_error(api.patch(f"/users/{ada}", data={"user_metadata": '{"a": 1}'}), 400,
                 "Payload validation error: 'Expected type object but found type string' on property"
                 " user_metadata.", "invalid_body")
    assert_error(api.patch(f"/users/{ada}", data={"name": ["one", "two"]}), 400,
                 "Payload validation error: 'Expected type string but found type array' on property name.")
    assert_error(api.patch(f"/users/{ada}", data={"nickname": "x", "extra": "1"}), 400,
                 "Payload validation error: 'Additional properties not allowed: extra'.")
    assert api.get(f"/users/{ada}").json() == before


def test_unknown_routes_answer_json(sandbox: Sandbox, api: httpx2.Client) -> None:
    for method, path in (("GET", "/nope"), ("PUT", "/users"), ("GET", "/"), ("POST", "/users/x/roles"),
                         ("GET", "/users/x/identities"), ("GET", "/jobs/a/b"), ("GET", "//users"),
                         ("POST", "//users"), ("OPTIONS", "/users"), ("OPTIONS", "/users/x"),
                         ("GET", "/users//identities"), ("DELETE", "/users/auth0%7Cx//"), ("GET", "/jobs/"),
                         ("GET", "/jobs//x"), ("HEAD", "/nope")):
        response = api.request(method, path)
        assert response.status_code == 404, (method, path)
        if method != "HEAD":
            assert_error(response, 404)
    assert_error(httpx2.get(sandbox.base_url + "/api/v2"), 404)


NASTY_BODIES = [b"[" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"\x00\xff" * 100, b"null", b"1e999999",
                b'"\\ud800"', b'{"user_id": {"$gt": ""}}', b'{"link_with": "' + b"A" * 500_000 + b'"}',
                b"NaN", b"{}" * 1000]
NASTY_TOKENS = ["x" * 10_000, "a.b", "...", "e30.e30.", "W10.W10.W10", "bnVsbA.bnVsbA.bnVsbA",
                "eyJhbGciOiJSUzI1NiJ9." + "W" * 5000 + ".sig", "\u00e9t\u00e9"]


def everyone(api: httpx2.Client) -> list[dict]:
    """The whole demo tenant as the API shows it, to assert that bad input changed nothing."""
    response = api.get("/users", params={"per_page": 100})
    assert response.status_code == 200
    return response.json()


def test_nasty_input_never_answers_500(sandbox: Sandbox, api: httpx2.Client) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    before = everyone(api)
    routes = [("POST", "/users"), ("PATCH", f"/users/{ada}"), ("POST", f"/users/{ada}/identities"),
              ("POST", "/jobs/users-exports")]
    for method, path in routes:
        for body in NASTY_BODIES:
            response = api.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert 400 <= response.status_code < 500, (method, path, body[:20], response.text)
            assert_error(response, response.status_code)
        for token in NASTY_TOKENS:
            headers = {"Authorization": f"Bearer {token}".encode()}  # raw UTF-8 bytes on the wire
            response = httpx2.request(method, sandbox.base_url + "/api/v2" + path, headers=headers, json={})
            assert_error(response, 401)
            linked = api.post(f"/users/{ada}/identities", json={"link_with": token})
            assert assert_error(linked, 400)["message"] in ("Invalid token (link_with).",
                                                            "JWT (link_with) must have an alg of RS256.")
    assert everyone(api) == before


ODD_PATH_VALUES = ["", " ", "%00", "\u00e9", "a" * 5000, "'", '"', "\\", "*", "|", "auth0|", "-1",
                   "99999999999", "[]", "{}", "(", "<script>"]
QUERY_NAMES = ["page", "per_page", "include_totals", "sort", "q", "fields", "include_fields", "search_engine",
               "primary_order"]


@pytest.mark.parametrize("value", ODD_PATH_VALUES)
def test_odd_query_values_and_segments_never_answer_500(sandbox: Sandbox, api: httpx2.Client,
                                                        value: str) -> None:
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    before = everyone(api)
    answers = [api.get("/users", params={name: value}) for name in QUERY_NAMES]
    answers += [api.get("/users", params={"q": q}) for q in (
        f'email:"{value}"', f'identities.connection:"{value}"', f'user_id:"{value}"', f"{value}:{value}",
        f'email:"a" AND {value}', f"NOT {value}")]
    answers += [api.get("/users-by-email", params={"email": value}),
                api.get("/users-by-email", params={"email": "ada@example.com", "include_fields": value}),
                api.get(f"/users/{ada}", params={"fields": value, "include_fields": value}),
                api.get(f"/jobs/{enc(value)}"),
                api.delete(f"/users/{ada}/identities/{enc(value)}/{enc(value)}"),
                api.delete(f"/users/{ada}/identities/github/{enc(value)}"),
                api.post(f"/users/{ada}/identities", data={"provider": "github", "user_id": value}),
                api.post("/jobs/users-exports", json={"format": value}),
                api.patch(f"/users/{ada}", data={"blocked": value})]
    for response in answers:
        assert response.status_code < 500, (response.request.url, response.text)
        if response.status_code >= 400:
            assert_error(response, response.status_code)
    assert everyone(api) == before


def test_an_auth0_custom_domain_header_out_of_its_bounds_is_refused_and_changes_nothing(
        api: httpx2.Client, sandbox: Sandbox) -> None:
    """The document declares the header as 3 to 255 characters; within them it is accepted (the
    sandbox has no custom domains to use it for)."""
    ada = enc(sandbox.demo_user("ada@example.com")["user_id"])
    before = api.get(f"/users/{ada}").json()
    for value in ("x" * 256, "ab"):
        refused = api.patch(f"/users/{ada}", json={"name": "Changed"}, headers={"auth0-custom-domain": value})
        assert refused.status_code == 400 and refused.json()["errorCode"] == "invalid_headers"
        assert "auth0-custom-domain" in refused.json()["message"]
    assert api.get(f"/users/{ada}").json() == before
    fine = api.patch(f"/users/{ada}", json={"name": before["name"]},
                     headers={"auth0-custom-domain": "login.example.com"})
    assert fine.status_code == 200
