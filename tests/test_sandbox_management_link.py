"""Link and unlink on the sandbox over HTTP: both body forms, every documented error, the effects."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from test_sandbox_management import assert_error, by_email, enc

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


def account(api: httpx2.Client, email: str, provider: str) -> str:
    """The user id of ``email``'s account with ``provider``."""
    return next(u["user_id"] for u in by_email(api, email) if u["user_id"].startswith(provider + "|"))


def as_user(sandbox: Sandbox, mint, user_id: str) -> httpx2.Client:
    """A client acting as ``user_id`` with the notebook client's user scopes."""
    token = mint("openid read:current_user update:current_user_identities", sub=user_id,
                 client_id=sandbox.client_id)
    return httpx2.Client(base_url=sandbox.base_url + "/api/v2", headers={"Authorization": f"Bearer {token}"})


def crafted(sandbox: Sandbox, **claims: Any) -> str:
    """An RS256 token signed by the tenant with exactly ``claims`` (None drops a claim)."""
    now = int(time.time())
    base = {"iss": sandbox.issuer, "aud": sandbox.client_id, "iat": now, "exp": now + 600}
    merged = {k: v for k, v in (base | claims).items() if v is not None}
    ctx = sandbox.context
    assert ctx is not None
    return ctx.keys.sign(merged)


# -- success ------------------------------------------------------------------------------------------

def test_link_by_provider_and_full_user_id_then_unlink(api: httpx2.Client) -> None:
    primary = account(api, "ada@example.com", "auth0")
    secondary = account(api, "ada@example.com", "google-oauth2")
    before = api.get(f"/users/{enc(secondary)}").json()
    assert before["user_metadata"]
    linked = api.post(f"/users/{enc(primary)}/identities",
                      json={"provider": "google-oauth2", "user_id": secondary})
    assert linked.status_code == 201, linked.text
    identities = linked.json()
    assert [i["provider"] for i in identities] == ["auth0", "google-oauth2"]
    assert identities[1]["user_id"] == secondary.split("|")[1]
    assert identities[1]["profileData"]["email"] == "ada@example.com"
    assert identities[1]["profileData"]["name"] == before["name"]
    assert all(set(i) == {"profileData", "connection", "user_id", "provider", "isSocial"} for i in identities)
    assert_error(api.get(f"/users/{enc(secondary)}"), 404, "The user does not exist.", "inexistent_user")
    profile = api.get(f"/users/{enc(primary)}").json()
    assert [i["provider"] for i in profile["identities"]] == ["auth0", "google-oauth2"]
    assert "profileData" not in profile["identities"][0] and "profileData" in profile["identities"][1]
    assert by_email(api, "ada@example.com") == [profile]

    unlinked = api.delete(f"/users/{enc(primary)}/identities/google-oauth2/{secondary.split('|')[1]}")
    assert unlinked.status_code == 200, unlinked.text
    assert [i["provider"] for i in unlinked.json()] == ["auth0"]
    again = api.get(f"/users/{enc(secondary)}")
    assert again.status_code == 200
    restored = again.json()
    assert restored["identities"] == [{"connection": "google-oauth2", "user_id": secondary.split("|")[1],
                                       "provider": "google-oauth2", "isSocial": True}]
    assert restored["name"] == before["name"] and restored["email"] == before["email"]
    assert "user_metadata" not in restored and "app_metadata" not in restored  # discarded by the link


def test_link_by_short_user_id_and_connection_id(api: httpx2.Client, sandbox: Sandbox) -> None:
    primary = account(api, "linus@example.com", "google-oauth2")
    secondary = account(api, "linus@example.com", "auth0")
    response = api.post(f"/users/{primary}/identities",
                        json={"provider": "auth0", "user_id": secondary.split("|")[1],
                              "connection_id": sandbox.connections[DATABASE]})
    assert response.status_code == 201, response.text
    assert [i["connection"] for i in response.json()] == ["google-oauth2", DATABASE]


def test_link_with_the_secondary_id_token(sandbox: Sandbox, api: httpx2.Client, mint, mint_id) -> None:
    primary = account(api, "alan@example.com", "google-oauth2")
    secondary = account(api, "alan@example.com", "facebook")
    with as_user(sandbox, mint, primary) as me:
        response = me.post(f"/users/{enc(primary)}/identities", json={"link_with": mint_id(secondary)})
        assert response.status_code == 201, response.text
        assert [i["provider"] for i in response.json()] == ["google-oauth2", "facebook"]
        # The user token may unlink on its own subject too.
        back = me.delete(f"/users/{enc(primary)}/identities/facebook/{secondary.split('|')[1]}")
        assert back.status_code == 200 and len(back.json()) == 1


def test_a_three_way_link_keeps_order(api: httpx2.Client, sandbox: Sandbox) -> None:
    grace = account(api, "grace@example.com", "auth0")
    grace_github = account(api, "grace@example.com", "github")
    katherine = account(api, "katherine@example.com", "auth0")
    assert api.post(f"/users/{enc(grace)}/identities", json={"provider": "github", "user_id": grace_github}
                    ).status_code == 201
    third = api.post(f"/users/{enc(grace)}/identities", json={"provider": "auth0", "user_id": katherine})
    assert [i["user_id"] for i in third.json()] == [grace.split("|")[1], grace_github.split("|")[1],
                                                    katherine.split("|")[1]]
    middle = api.delete(f"/users/{enc(grace)}/identities/github/{grace_github.split('|')[1]}")
    assert [i["provider"] for i in middle.json()] == ["auth0", "auth0"]


# -- every documented error ------------------------------------------------------------------------

LINK_ERRORS = {
    "The provider/connection is not configured.",
    "Main identity and the new one are the same.",
    "Invalid token (link_with).",
    "JWT (link_with) contains an invalid aud claim.",
    "JWT (link_with) must contains sub claim.",
    "JWT (link_with) contains an invalid sub claim.",
    "JWT (link_with) must have an alg of RS256.",
    "JWT (link_with) must have the same issuer as the calling user.",
    "JWT (link_with) must have an aud claim that matches that of the calling token's azp.",
    "Linking to an inexistent identity requires a connection.",
    "Linking to an inexistent identity is not allowed.",
    "Unable to link with the secondary account.",
    "Provided secondary account not found.",
}


def test_the_link_errors_are_the_ones_the_oas_documents(auth0_reference: Path) -> None:
    oas = json.loads((auth0_reference / "management-api-v2.linking-subset.oas.json").read_text())
    responses = oas["paths"]["/users/{id}/identities"]["post"]["responses"]
    documented = {v for k, v in responses["400"].items() if k.startswith("x-description-")}
    documented.discard("Invalid request body. The message will vary depending on the cause.")
    assert documented == LINK_ERRORS
    assert responses["409"]["description"] == "Specified identity already exists."
    unlink = oas["paths"]["/users/{id}/identities/{provider}/{user_id}"]["delete"]["responses"]
    assert unlink["400"]["x-description-1"] == "Main identity cannot be removed."


def test_link_errors_by_body(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = account(api, "ada@example.com", "auth0")
    ada_google = account(api, "ada@example.com", "google-oauth2")
    grace = account(api, "grace@example.com", "auth0")
    grace_github = account(api, "grace@example.com", "github")
    path = f"/users/{enc(ada)}/identities"
    con = sandbox.connections
    assert_error(api.post(path, json={"provider": "twitter", "user_id": "1"}), 400,
                 "The provider/connection is not configured.", "invalid_body")
    assert_error(api.post(path, json={"provider": "auth0", "user_id": grace, "connection_id": con["github"]}),
                 400, "The provider/connection is not configured.", "invalid_body")
    assert_error(api.post(path, json={"provider": "auth0", "user_id": "con_0000000000000000",
                                      "connection_id": "con_0000000000000000"}), 400,
                 "The provider/connection is not configured.", "invalid_body")
    assert_error(api.post(path, json={"provider": "auth0", "user_id": ada}), 400,
                 "Main identity and the new one are the same.", "invalid_body")
    assert_error(api.post(path, json={"provider": "auth0", "user_id": "f" * 24}), 400,
                 "Linking to an inexistent identity requires a connection.", "invalid_body")
    assert_error(api.post(path, json={"provider": "auth0", "user_id": "f" * 24,
                                      "connection_id": con[DATABASE]}),
                 400, "Linking to an inexistent identity is not allowed.", "invalid_body")
    # Grace's github identity joins Grace; then Ada cannot take it, and Grace cannot take it twice.
    assert api.post(f"/users/{enc(grace)}/identities", json={"provider": "github", "user_id": grace_github}
                    ).status_code == 201
    assert_error(api.post(path, json={"provider": "github", "user_id": grace_github}), 400,
                 "Unable to link with the secondary account.", "invalid_body")
    assert_error(api.post(f"/users/{enc(grace)}/identities",
                          json={"provider": "github", "user_id": grace_github}),
                 409, "Specified identity already exists.", "identity_conflict")
    # A user who already holds linked identities cannot become a secondary.
    assert_error(api.post(path, json={"provider": "auth0", "user_id": grace}), 400,
                 "Unable to link with the secondary account.", "invalid_body")
    assert_error(api.post(f"/users/{enc('auth0|' + 'e' * 24)}/identities",
                          json={"provider": "google-oauth2", "user_id": ada_google}), 404,
                 "The user does not exist.", "inexistent_user")
    for bad in ({}, {"provider": "auth0"}, {"user_id": "x"}, {"provider": "nope", "user_id": "x"},
                {"provider": "auth0", "user_id": ""},
                {"provider": "auth0", "user_id": "x", "connection_id": "x"},
                {"link_with": "x", "provider": "auth0"}, {"link_with": 5},
                {"provider": ["auth0"], "user_id": "x"}):
        assert_error(api.post(path, json=bad), 400, error_code="invalid_body")
    # Nothing moved.
    assert [i["provider"] for i in api.get(f"/users/{enc(ada)}").json()["identities"]] == ["auth0"]
    assert api.get(f"/users/{enc(ada_google)}").status_code == 200


def test_link_with_token_errors(sandbox: Sandbox, api: httpx2.Client, mint, mint_id) -> None:
    ada = account(api, "ada@example.com", "auth0")
    ada_google = account(api, "ada@example.com", "google-oauth2")
    path = f"/users/{enc(ada)}/identities"
    good = mint_id(ada_google)
    head, payload, sig = good.split(".")
    hs256 = jwt.encode({"alg": "HS256"}, {"sub": ada_google, "iss": sandbox.issuer, "aud": sandbox.client_id},
                       OctKey.generate_key(256))
    cases = [
        ("not a jwt", "Invalid token (link_with)."),
        (f"{head}.{payload}.{sig[:-4]}AAAA", "Invalid token (link_with)."),
        (crafted(sandbox, sub=ada_google, exp=int(time.time()) - 5), "Invalid token (link_with)."),
        (hs256, "JWT (link_with) must have an alg of RS256."),
        (crafted(sandbox, sub=ada_google, iss="https://other.example.com/"),
         "JWT (link_with) must have the same issuer as the calling user."),
        (crafted(sandbox), "JWT (link_with) must contains sub claim."),
        (crafted(sandbox, sub=12), "JWT (link_with) contains an invalid sub claim."),
        (crafted(sandbox, sub="no-provider"), "JWT (link_with) contains an invalid sub claim."),
        (crafted(sandbox, sub=ada_google, aud=None), "JWT (link_with) contains an invalid aud claim."),
        (crafted(sandbox, sub=ada_google, aud=7), "JWT (link_with) contains an invalid aud claim."),
        (mint_id(ada_google, client_id=sandbox.m2m_client_id),
         "JWT (link_with) must have an aud claim that matches that of the calling token's azp."),
        (mint_id(ada), "Main identity and the new one are the same."),
        (crafted(sandbox, sub="auth0|" + "0" * 24), "Provided secondary account not found."),
    ]
    with as_user(sandbox, mint, ada) as me:
        for token, message in cases:
            assert_error(me.post(path, json={"link_with": token}), 400, message, "invalid_body")
        assert api.get(f"/users/{enc(ada_google)}").status_code == 200  # nothing moved
        assert me.post(path, json={"link_with": good}).status_code == 201
        assert_error(me.post(path, json={"link_with": good}), 409, "Specified identity already exists.",
                     "identity_conflict")


def test_unlink_errors(api: httpx2.Client, sandbox: Sandbox) -> None:
    ada = account(api, "ada@example.com", "auth0")
    short = ada.split("|")[1]
    assert_error(api.delete(f"/users/{enc(ada)}/identities/auth0/{short}"), 400,
                 "Main identity cannot be removed.")
    assert_error(api.delete(f"/users/{enc(ada)}/identities/nope/{short}"), 400, error_code="invalid_uri")
    assert_error(api.delete(f"/users/{enc('auth0|' + 'e' * 24)}/identities/github/1"), 404,
                 "The user does not exist.")
    # An identity the user does not hold: nothing changes, the identities come back as they are.
    unchanged = api.delete(f"/users/{enc(ada)}/identities/github/123")
    assert unchanged.status_code == 200
    assert [i["user_id"] for i in unchanged.json()] == [short]
    grace = account(api, "grace@example.com", "auth0")
    other = api.delete(f"/users/{enc(ada)}/identities/auth0/{grace.split('|')[1]}")
    assert other.status_code == 200 and api.get(f"/users/{enc(grace)}").status_code == 200


@pytest.mark.parametrize("form", ["plain", "encoded"])
def test_unlink_with_odd_identity_ids(api: httpx2.Client, sandbox: Sandbox, form: str) -> None:
    """An identity id with a slash, a space and a pipe survives link and unlink."""
    ctx = sandbox.context
    assert ctx is not None
    odd = "a/b c|d é"
    with ctx.store.transaction() as db:
        ctx.store.insert_user(db, provider="github", user_id=odd, connection="github", is_social=True,
                              profile={"email": "odd@example.com", "email_verified": True},
                              created_at="2026-01-01T00:00:00.000Z")
    ada = account(api, "ada@example.com", "auth0")
    linked = api.post(f"/users/{enc(ada)}/identities", json={"provider": "github", "user_id": odd})
    assert linked.status_code == 201, linked.text
    assert api.get(f"/users/{enc('github|' + odd)}").status_code == 404
    segment = enc(odd) if form == "encoded" else odd.replace("/", "%2F")
    unlinked = api.delete(f"/users/{enc(ada)}/identities/github/{segment}")
    assert unlinked.status_code == 200, unlinked.text
    assert api.get(f"/users/{enc('github|' + odd)}").json()["identities"][0]["user_id"] == odd
