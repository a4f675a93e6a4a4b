"""Link then unlink gives back the secondary user field by field, for each connection kind, over HTTP.

Auth0 deletes the secondary user on link (its metadata is not merged into the primary) and, on
unlink, creates a new user from the identity's ``profileData``. So the recreated user is new
(``created_at``, ``updated_at``, no logins yet) and has no metadata; every other field must come back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from test_sandbox_management import enc

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE

# What Auth0 itself does not give back: the user is recreated (new timestamps, no login history)
# from profileData, which holds no metadata and no ``blocked`` flag.
RECREATED = {"created_at", "updated_at", "last_login", "logins_count", "user_metadata", "app_metadata",
             "blocked"}
KINDS = ("auth0", "google-oauth2", "facebook", "github")


@pytest.fixture(scope="module")
def tenant() -> Iterator[Sandbox]:
    """Demo and synthetic users: the synthetic ones carry phones, usernames and names on every kind."""
    with Sandbox(seed=7, users=300) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def api(tenant: Sandbox) -> Iterator[httpx2.Client]:
    token = httpx2.post(tenant.base_url + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": tenant.m2m_client_id,
        "client_secret": tenant.m2m_client_secret, "audience": tenant.management_audience,
    }).json()["access_token"]
    with httpx2.Client(base_url=tenant.base_url + "/api/v2", timeout=30,
                       headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def every_user(api: httpx2.Client) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    for page in range(10):
        batch = api.get("/users", params={"per_page": 100, "page": page}).json()
        users += batch
        if len(batch) < 100:
            return users
    return users


@pytest.fixture(scope="module")
def standalone(api: httpx2.Client) -> dict[str, list[dict[str, Any]]]:
    """The users with one identity, by provider, those with the most root fields first."""
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for user in every_user(api):
        if len(user["identities"]) == 1:
            by_kind[user["identities"][0]["provider"]].append(user)
    for users in by_kind.values():
        users.sort(key=lambda u: (-len(u), u["user_id"]))
    return by_kind


def link_and_unlink(api: httpx2.Client, primary: dict[str, Any], secondary: dict[str, Any]
                    ) -> dict[str, Any]:
    """Link ``secondary`` into ``primary``, check the link, unlink it; the recreated secondary."""
    ident = secondary["identities"][0]
    linked = api.post(f"/users/{enc(primary['user_id'])}/identities",
                      json={"provider": ident["provider"], "user_id": secondary["user_id"]})
    assert linked.status_code == 201, linked.text
    profile = linked.json()[-1]["profileData"]
    # profileData carries the secondary's profile (a database user's defaulted name excepted).
    for key, value in profile.items():
        assert secondary[key] == value, key
    assert api.get(f"/users/{enc(secondary['user_id'])}").status_code == 404
    unlinked = api.delete(f"/users/{enc(primary['user_id'])}/identities/{ident['provider']}/"
                          f"{enc(ident['user_id'])}")
    assert unlinked.status_code == 200, unlinked.text
    after = api.get(f"/users/{enc(secondary['user_id'])}")
    assert after.status_code == 200, after.text
    return after.json()


def assert_round_trip(before: dict[str, Any], after: dict[str, Any]) -> None:
    kept = {k: v for k, v in before.items() if k not in RECREATED}
    assert {k: v for k, v in after.items() if k not in RECREATED} == kept
    assert "user_metadata" not in after and "app_metadata" not in after and "blocked" not in after
    assert after["created_at"] >= before["created_at"]


@pytest.mark.parametrize("kind", KINDS)
def test_link_then_unlink_gives_back_every_field(api: httpx2.Client,
                                                 standalone: dict[str, list[dict[str, Any]]],
                                                 kind: str) -> None:
    secondary = next(u for u in standalone[kind] if "phone_number" in u)
    assert {"phone_number", "phone_verified", "given_name", "family_name", "nickname", "picture",
            "email", "email_verified", "name"} <= set(secondary)
    assert kind != "auth0" or "username" in secondary
    primary = next(u for u in standalone["auth0" if kind != "auth0" else "github"]
                   if u["user_id"] != secondary["user_id"] and "phone_number" not in u)
    primary_before = api.get(f"/users/{enc(primary['user_id'])}").json()
    after = link_and_unlink(api, primary, secondary)
    assert_round_trip(secondary, after)
    assert after["phone_number"] == secondary["phone_number"]
    # The primary is as it was, but for its updated_at.
    primary_after = api.get(f"/users/{enc(primary['user_id'])}").json()
    assert primary_after.pop("updated_at") >= primary_before.pop("updated_at")
    assert primary_after == primary_before


def test_a_database_user_created_without_a_name_round_trips(api: httpx2.Client, tenant: Sandbox,
                                                            standalone: dict[str, list[dict[str, Any]]]
                                                            ) -> None:
    """The recordings' body: no ``name``, so the email stands in for it at the root (not in
    profileData); the recreated user gets the same root name, and a blocked flag is dropped."""
    created = api.post("/users", json={
        "connection": DATABASE, "email": "chuck249@example.com", "given_name": "Chuck",
        "family_name": "Sanchez", "username": "test-user734", "nickname": "Chucky",
        "password": "Passwords hide their chuck", "user_metadata": {"favourite_attack": "roundhouse_kick"},
        "app_metadata": {"facts": ["count_to_infinity_twice"]}, "picture": "https://example-picture-url.jpg",
        "blocked": True, "email_verified": True})
    assert created.status_code == 201, created.text
    secondary = created.json()
    assert secondary["name"] == "chuck249@example.com"
    primary = standalone["google-oauth2"][0]
    after = link_and_unlink(api, primary, secondary)
    assert_round_trip(secondary, after)
    assert after["name"] == "chuck249@example.com"
    # The recreated user logs in with the password it had.
    login = httpx2.post(tenant.base_url + "/oauth/token", json={
        "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "realm": DATABASE,
        "username": "chuck249@example.com", "password": "Passwords hide their chuck",
        "client_id": tenant.client_id, "scope": "openid"})
    assert login.status_code == 200, login.text


def test_profile_data_twice_linked_is_the_same(api: httpx2.Client,
                                              standalone: dict[str, list[dict[str, Any]]]) -> None:
    """A second link after an unlink shows the identity's profileData as the first one did."""
    secondary = next(u for u in standalone["facebook"] if "phone_number" in u)
    primary = standalone["auth0"][-1]
    path = f"/users/{enc(primary['user_id'])}/identities"
    body = {"provider": "facebook", "user_id": secondary["user_id"]}
    first = api.post(path, json=body).json()[-1]
    short = secondary["identities"][0]["user_id"]
    assert api.delete(f"{path}/facebook/{enc(short)}").status_code == 200
    second = api.post(path, json=body).json()[-1]
    assert second == first
    assert first["profileData"]["phone_number"] == secondary["phone_number"]
