"""Auth0's own Python SDK (auth0-python, unchanged) as a client of the sandbox's Management API.

``ManagementClient(domain=...)`` builds ``https://{domain}/api/v2``; the sandbox speaks plain
HTTP on loopback, so the test uses the SDK's underlying Fern client with ``base_url`` instead,
which is the SDK's documented way to point it elsewhere.
"""

from __future__ import annotations

import pytest
from auth0.management.client import Auth0
from auth0.management.errors import BadRequestError, NotFoundError, UnauthorizedError

from linking_toolkit.sandbox import Sandbox


def sdk(sandbox: Sandbox, token: str) -> Auth0:
    return Auth0(base_url=sandbox.base_url + "/api/v2", token=token, max_retries=0, timeout=30)


def test_list_search_and_get_users(sandbox: Sandbox, m2m_token: str) -> None:
    client = sdk(sandbox, m2m_token)
    everyone = list(client.users.list(per_page=4))  # the pager walks pages 0, 1, 2
    assert len(everyone) == 10 and len({u.user_id for u in everyone}) == 10
    found = client.users.list(q='identities.connection:"github"', search_engine="v3")
    assert [u.email for u in found] == ["grace@example.com"]
    by_email = client.users.list_users_by_email(email="ada@example.com")
    assert {u.identities[0].provider for u in by_email} == {"auth0", "google-oauth2"}
    one = client.users.get(by_email[0].user_id)
    assert one.user_id == by_email[0].user_id
    with pytest.raises(NotFoundError):
        client.users.get("auth0|nobody")


def test_link_and_unlink_through_the_sdk(sandbox: Sandbox, m2m_token: str) -> None:
    client = sdk(sandbox, m2m_token)
    ada = {u.identities[0].provider: u for u in client.users.list_users_by_email(email="ada@example.com")}
    primary, secondary = ada["auth0"], ada["google-oauth2"]
    identities = client.users.identities.link(primary.user_id, provider="google-oauth2",
                                              user_id=secondary.user_id)
    assert [i.provider for i in identities] == ["auth0", "google-oauth2"]
    assert identities[1].profile_data is not None and identities[1].profile_data.email == "ada@example.com"
    with pytest.raises(NotFoundError):
        client.users.get(secondary.user_id)
    remaining = client.users.identities.delete(primary.user_id, "google-oauth2",
                                               secondary.user_id.split("|", 1)[1])
    assert [i.provider for i in remaining] == ["auth0"]
    assert client.users.get(secondary.user_id).identities[0].provider == "google-oauth2"
    with pytest.raises(BadRequestError) as refused:
        client.users.identities.delete(primary.user_id, "auth0", primary.user_id.split("|", 1)[1])
    assert refused.value.body["message"] == "Main identity cannot be removed."


def test_link_with_a_user_token_through_the_sdk(sandbox: Sandbox, mint, mint_id) -> None:
    alan = {u["user_id"].split("|")[0]: u["user_id"] for u in sandbox.context.store.users_by_email(
        "alan@example.com")}
    token = mint("openid update:current_user_identities", sub=alan["google-oauth2"],
                 client_id=sandbox.client_id)
    identities = sdk(sandbox, token).users.identities.link(alan["google-oauth2"],
                                                           link_with=mint_id(alan["facebook"]))
    assert [i.provider for i in identities] == ["google-oauth2", "facebook"]


def test_an_id_token_as_bearer_is_refused_to_the_sdk(sandbox: Sandbox, mint_id) -> None:
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    with pytest.raises(UnauthorizedError) as refused:
        sdk(sandbox, mint_id(ada)).users.get(ada)
    assert refused.value.body["message"].startswith("Bad audience:")
