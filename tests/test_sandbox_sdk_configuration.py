"""Auth0's own Python SDK (auth0-python, unchanged) reading and changing the tenant's configuration
on the sandbox: applications, their grants, APIs and connections, with the demo M2M client's token
(what ``doctor`` holds) and, for what that token may not do, a tenant admin's.

As in ``test_sandbox_sdk_management.py``, the SDK's Fern client is given ``base_url`` (the sandbox
speaks plain HTTP on loopback)."""

from __future__ import annotations

import pytest
from auth0.management.client import Auth0
from auth0.management.errors import BadRequestError, ForbiddenError, NotFoundError
from test_sandbox_configuration import CONFIG_SCOPES

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


def sdk(sandbox: Sandbox, token: str) -> Auth0:
    return Auth0(base_url=sandbox.base_url + "/api/v2", token=token, max_retries=0, timeout=30)


def test_clients_through_the_sdk(sandbox: Sandbox, m2m_token: str) -> None:
    client = sdk(sandbox, m2m_token)
    apps = {c.client_id: c for c in client.clients.list(per_page=2)}  # the pager walks two pages
    assert set(apps) == {sandbox.client_id, sandbox.m2m_client_id, sandbox.spa_client_id}
    native = client.clients.get(sandbox.client_id)
    assert native.app_type == "native" and native.callbacks == apps[sandbox.client_id].callbacks
    assert native.refresh_token is not None and native.refresh_token.rotation_type == "rotating"
    assert native.client_secret is None and client.clients.get(sandbox.m2m_client_id).client_secret is None
    changed = client.clients.update(sandbox.spa_client_id, web_origins=["https://app.example.com"],
                                    allowed_logout_urls=["https://app.example.com/bye"])
    assert changed.web_origins == ["https://app.example.com"]
    assert client.clients.get(sandbox.spa_client_id).allowed_logout_urls == ["https://app.example.com/bye"]
    with pytest.raises(BadRequestError) as refused:
        client.clients.update(sandbox.spa_client_id, callbacks=["javascript:alert(1)"])
    assert refused.value.body["message"].startswith("Payload validation error: 'Object didn't pass")
    with pytest.raises(NotFoundError):
        client.clients.get("nobody")


def test_grants_and_apis_through_the_sdk(sandbox: Sandbox, m2m_token: str, mint) -> None:
    doctor = sdk(sandbox, m2m_token)
    grants = list(doctor.client_grants.list(client_id=sandbox.m2m_client_id))
    assert [g.audience for g in grants] == [sandbox.management_audience]
    assert "read:connections" in (grants[0].scope or [])
    with pytest.raises(ForbiddenError) as refused:  # doctor reads grants, it does not make them
        doctor.client_grants.create(client_id=sandbox.client_id, audience=sandbox.management_audience)
    assert refused.value.body["message"] == "Insufficient scope; expected any of: create:client_grants."
    admin = sdk(sandbox, mint(CONFIG_SCOPES))
    made = admin.client_grants.create(client_id=sandbox.client_id, audience=sandbox.management_audience,
                                      scope=["read:current_user"])
    updated = admin.client_grants.update(made.id, scope=["read:current_user", "read:users"])
    assert updated.scope == ["read:current_user", "read:users"]
    assert len(list(doctor.client_grants.list(audience=sandbox.management_audience))) == 3

    servers = list(doctor.resource_servers.list())
    assert [s.identifier for s in servers] == [sandbox.management_audience]
    assert doctor.resource_servers.get(servers[0].id).allow_offline_access is True
    off = doctor.resource_servers.update(servers[0].id, allow_offline_access=False)
    assert off.allow_offline_access is False
    assert doctor.resource_servers.get(servers[0].id).allow_offline_access is False


def test_connections_through_the_sdk(sandbox: Sandbox, m2m_token: str, mint) -> None:
    doctor = sdk(sandbox, m2m_token)
    connections = list(doctor.connections.list(take=2))  # checkpoint paging: two pages
    assert [c.name for c in connections] == [DATABASE, "google-oauth2", "facebook", "github"]
    github = doctor.connections.get(sandbox.connections["github"])
    assert github.strategy == "github" and sandbox.client_id in (github.enabled_clients or [])
    enabled = {c.client_id for c in doctor.connections.clients.get(github.id, take=1)}
    assert enabled == {sandbox.client_id, sandbox.m2m_client_id, sandbox.spa_client_id}
    with pytest.raises(ForbiddenError):  # enabling is update:connections, which doctor does not hold
        doctor.connections.clients.update(github.id, request=[{"client_id": sandbox.client_id,
                                                               "status": False}])
    sdk(sandbox, mint(CONFIG_SCOPES)).connections.clients.update(
        github.id, request=[{"client_id": sandbox.client_id, "status": False}])
    assert sandbox.client_id not in {c.client_id for c in doctor.connections.clients.get(github.id)}
