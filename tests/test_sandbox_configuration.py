"""The tenant's configuration through the sandbox's Management API: clients, client grants, resource
servers and connections, each answer checked against Auth0's own document
(``tests/reference/management-api-v2.configuration-subset.oas.json``), each scope and each bad input
answered as Auth0 answers them, and a refused change changing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from test_sandbox_management import enc
from test_sandbox_schemas import Oas

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE

CONFIG_SCOPES = ("read:clients update:clients read:client_grants create:client_grants update:client_grants "
                 "read:resource_servers update:resource_servers read:connections update:connections")


@pytest.fixture(scope="session")
def config_oas(auth0_reference: Path) -> Oas:
    return Oas(auth0_reference / "management-api-v2.configuration-subset.oas.json")


@pytest.fixture
def admin_api(sandbox: Sandbox, mint) -> httpx2.Client:
    """A Management API client holding every configuration scope (as a tenant admin's token)."""
    with httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                       headers={"Authorization": f"Bearer {mint(CONFIG_SCOPES)}"}) as client:
        yield client


def assert_error(response: httpx2.Response, status: int, message: str, code: str | None = None) -> None:
    body = response.json()
    assert response.status_code == status, body
    assert body["statusCode"] == status and body["message"] == message, body
    assert body.get("errorCode") == code, body


def test_the_seeded_m2m_client_holds_what_doctor_needs(sandbox: Sandbox, api: httpx2.Client,
                                                       config_oas: Oas) -> None:
    grants = config_oas.check(api.get("/client-grants", params={"client_id": sandbox.m2m_client_id}),
                              "/client-grants")
    assert len(grants) == 1 and grants[0]["audience"] == sandbox.management_audience
    assert grants[0]["id"].startswith("cgr_")
    assert {"read:clients", "update:clients", "read:resource_servers", "update:resource_servers",
            "read:client_grants", "read:connections", "read:users", "update:users"} <= set(grants[0]["scope"])


def test_clients_list_and_get(sandbox: Sandbox, api: httpx2.Client, config_oas: Oas) -> None:
    clients = config_oas.check(api.get("/clients"), "/clients")
    by_id = {c["client_id"]: c for c in clients}
    assert set(by_id) == {sandbox.client_id, sandbox.m2m_client_id, sandbox.spa_client_id}
    native = by_id[sandbox.client_id]
    assert native["app_type"] == "native" and "urn:ietf:params:oauth:grant-type:device_code" in \
        native["grant_types"]
    assert native["callbacks"] == ["http://127.0.0.1/callback", "http://localhost/callback"]
    assert native["refresh_token"]["rotation_type"] == "rotating"
    spa = by_id[sandbox.spa_client_id]
    assert spa["web_origins"] == list(sandbox.spa_web_origins)
    assert spa["allowed_logout_urls"] == list(sandbox.spa_logout_urls)
    # read:clients does not show a secret: that takes read:client_keys.
    assert all("client_secret" not in c for c in clients)
    page = config_oas.check(api.get("/clients", params={"include_totals": "true", "per_page": 2, "page": 1}),
                            "/clients")
    assert (page["start"], page["limit"], page["total"], len(page["clients"])) == (2, 2, 3, 1)
    only = config_oas.check(api.get("/clients", params={"app_type": "non_interactive",
                                                        "fields": "client_id,name"}), "/clients")
    assert only == [{"client_id": sandbox.m2m_client_id, "name": "Audit (machine to machine)"}]
    one = config_oas.check(api.get(f"/clients/{sandbox.client_id}"), "/clients/{id}")
    assert one == native
    assert_error(api.get("/clients/nope"), 404, "Client not found.", "inexistent_client")


def test_the_secret_needs_read_client_keys(sandbox: Sandbox, mint) -> None:
    with httpx2.Client(base_url=sandbox.base_url + "/api/v2",
                       headers={"Authorization": f"Bearer {mint('read:client_keys')}"}) as keys:
        m2m = keys.get(f"/clients/{sandbox.m2m_client_id}").json()
    assert m2m["client_secret"] == sandbox.m2m_client_secret
    with httpx2.Client(base_url=sandbox.base_url + "/api/v2",
                       headers={"Authorization": f"Bearer {mint('read:client_summary')}"}) as summary:
        assert set(summary.get(f"/clients/{sandbox.m2m_client_id}").json()) == {
            "client_id", "app_type", "name", "description"}


def test_patch_client(sandbox: Sandbox, api: httpx2.Client, config_oas: Oas) -> None:
    changed = config_oas.check(api.patch(f"/clients/{sandbox.spa_client_id}", json={
        "callbacks": ["https://app.example.com/callback"], "allowed_logout_urls": ["https://app.example.com"],
        "web_origins": ["https://App.example.com"], "name": "Renamed",
        "refresh_token": {"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 5}}),
        "/clients/{id}")
    assert changed["callbacks"] == ["https://app.example.com/callback"]
    assert changed["web_origins"] == ["https://app.example.com"] and changed["name"] == "Renamed"
    assert changed["refresh_token"]["leeway"] == 5
    assert api.get(f"/clients/{sandbox.spa_client_id}").json() == changed


@pytest.mark.parametrize(("body", "message"), [
    ({"callbacks": ["not a url"]}, "Payload validation error: 'Object didn't pass validation for format "
                                   "callback-url: not a url' on property callbacks[0]."),
    ({"web_origins": ["https://a.example.com/path"]}, "Payload validation error: 'Object didn't pass "
     "validation for format url-with-placeholders: https://a.example.com/path' on property web_origins[0]."),
    ({"grant_types": "implicit"}, "Payload validation error: 'Expected type array but found type string' "
                                  "on property grant_types."),
    ({"grant_types": [""]}, "Payload validation error: 'String is too short (0 chars), minimum 1' on "
                            "property grant_types[0]."),
    ({"app_type": "robot"}, "Payload validation error: 'No enum match for: \"robot\"' on property app_type."),
    ({"name": "<b>"}, "Payload validation error: 'String does not match pattern ^[^<>]+$' on property name."),
    ({"refresh_token": {"rotation_type": "rotating"}}, "Payload validation error: 'Missing required "
     "property: expiration_type' on property refresh_token."),
    ({"sso": True}, "Payload validation error: 'Additional properties not allowed: sso'."),
])
def test_patch_client_refuses_bad_input_and_changes_nothing(sandbox: Sandbox, api: httpx2.Client,
                                                            body: dict[str, Any], message: str) -> None:
    before = api.get(f"/clients/{sandbox.client_id}").json()
    # A valid setting beside the bad one is not applied either.
    assert_error(api.patch(f"/clients/{sandbox.client_id}", json={"oidc_conformant": False, **body}), 400,
                 message, "invalid_body")
    assert api.get(f"/clients/{sandbox.client_id}").json() == before


def test_client_grants(sandbox: Sandbox, admin_api: httpx2.Client, config_oas: Oas) -> None:
    api = admin_api
    created = config_oas.check(api.post("/client-grants", json={
        "client_id": sandbox.client_id, "audience": sandbox.management_audience,
        "scope": ["read:current_user"]}), "/client-grants")
    assert created["scope"] == ["read:current_user"] and created["client_id"] == sandbox.client_id
    assert config_oas.check(api.get(f"/client-grants/{created['id']}"), "/client-grants/{id}") == created
    assert_error(api.post("/client-grants", json={"client_id": sandbox.client_id,
                                                  "audience": sandbox.management_audience}),
                 409, "A resource server with the same identifier already exists.", "conflict")
    patched = config_oas.check(api.patch(f"/client-grants/{created['id']}",
                                         json={"scope": ["read:current_user", "read:users"]}),
                               "/client-grants/{id}")
    assert patched["scope"] == ["read:current_user", "read:users"]
    listed = config_oas.check(api.get("/client-grants", params={"audience": sandbox.management_audience,
                                                                "include_totals": "true"}),
                              "/client-grants")
    assert listed["total"] == 3 and patched in listed["client_grants"]
    assert_error(api.post("/client-grants", json={"client_id": sandbox.client_id, "audience": "https://x/"}),
                 404, "Resource server not found", "inexistent_resource_server")
    assert_error(api.post("/client-grants", json={"client_id": "nobody",
                                                  "audience": sandbox.management_audience}),
                 404, "Client not found", "inexistent_client")
    assert_error(api.post("/client-grants", json={"audience": sandbox.management_audience}),
                 400, "Payload validation error: 'Missing required property: client_id'.", "invalid_body")
    assert_error(api.patch(f"/client-grants/{created['id']}", json={"scope": "read:users"}), 400,
                 "Payload validation error: 'Expected type array but found type string' on property scope.",
                 "invalid_body")
    assert api.get(f"/client-grants/{created['id']}").json() == patched
    assert_error(api.patch("/client-grants/cgr_nope", json={"scope": []}), 404,
                 "The client grant does not exist.", "inexistent_grant")
    assert_error(api.get("/client-grants/cgr_nope"), 404, "The grant does not exist.", "inexistent_grant")


def test_resource_servers(sandbox: Sandbox, api: httpx2.Client, config_oas: Oas) -> None:
    servers = config_oas.check(api.get("/resource-servers"), "/resource-servers")
    assert len(servers) == 1
    management = servers[0]
    assert management["identifier"] == sandbox.management_audience and management["is_system"] is True
    assert management["allow_offline_access"] is True
    assert {"read:users", "update:current_user_identities"} <= {s["value"] for s in management["scopes"]}
    by_identifier = config_oas.check(api.get(f"/resource-servers/{enc(sandbox.management_audience)}"),
                                     "/resource-servers/{id}")
    assert by_identifier == management == api.get(f"/resource-servers/{management['id']}").json()
    assert config_oas.check(api.get("/resource-servers", params={"identifiers": "https://other/"}),
                            "/resource-servers") == []
    changed = config_oas.check(api.patch(f"/resource-servers/{management['id']}",
                                         json={"allow_offline_access": False, "token_lifetime": 3600}),
                               "/resource-servers/{id}")
    assert changed["allow_offline_access"] is False and changed["token_lifetime"] == 3600
    assert_error(api.patch(f"/resource-servers/{management['id']}",
                           json={"allow_offline_access": True, "name": "Mine"}),
                 400, "System resource servers cannot be patched.", "invalid_body")
    assert_error(api.patch(f"/resource-servers/{management['id']}", json={"allow_offline_access": "yes"}),
                 400, "Payload validation error: 'Expected type boolean but found type string' on property "
                      "allow_offline_access.", "invalid_body")
    assert api.get(f"/resource-servers/{management['id']}").json() == changed
    assert_error(api.get("/resource-servers/nope"), 404, "Resource server not found.",
                 "inexistent_resource_server")


def test_connections_and_their_clients(sandbox: Sandbox, admin_api: httpx2.Client, config_oas: Oas) -> None:
    api = admin_api
    connections = config_oas.check(api.get("/connections"), "/connections")
    assert [c["name"] for c in connections] == [DATABASE, "google-oauth2", "facebook", "github"]
    assert config_oas.check(api.get("/connections", params={"strategy": "github"}), "/connections")[0][
        "id"] == sandbox.connections["github"]
    page = config_oas.check(api.get("/connections", params={"include_totals": "true", "per_page": 1}),
                            "/connections")
    assert page["total"] == 4 and len(page["connections"]) == 1
    github = sandbox.connections["github"]
    one = config_oas.check(api.get(f"/connections/{github}"), "/connections/{id}")
    every = {sandbox.client_id, sandbox.m2m_client_id, sandbox.spa_client_id}
    assert set(one["enabled_clients"]) == every
    first = config_oas.check(api.get(f"/connections/{github}/clients", params={"take": 2}),
                             "/connections/{id}/clients")
    rest = config_oas.check(api.get(f"/connections/{github}/clients", params={"from": first["next"]}),
                            "/connections/{id}/clients")
    assert "next" not in rest and {c["client_id"] for c in first["clients"] + rest["clients"]} == every
    disabled = api.patch(f"/connections/{github}/clients", json=[{"client_id": sandbox.client_id,
                                                                  "status": False}])
    config_oas.check(disabled, "/connections/{id}/clients")
    assert disabled.status_code == 204
    assert set(api.get(f"/connections/{github}").json()["enabled_clients"]) == every - {sandbox.client_id}
    # All or nothing: one unknown client refuses the whole change.
    assert_error(api.patch(f"/connections/{github}/clients", json=[
        {"client_id": sandbox.client_id, "status": True}, {"client_id": "nobody", "status": True}]),
        404, "The client does not exist", "inexistent_client")
    assert_error(api.patch(f"/connections/{github}/clients", json={"client_id": sandbox.client_id}), 400,
                 "Payload validation error: 'Expected type array but found type object'.", "invalid_body")
    assert set(api.get(f"/connections/{github}").json()["enabled_clients"]) == every - {sandbox.client_id}
    assert_error(api.get("/connections/con_0000000000000001"), 404, "The connection does not exist.",
                 "inexistent_connection")
    assert_error(api.get("/connections/nope"), 404, "The connection does not exist.", "inexistent_connection")


@pytest.mark.parametrize(("method", "path", "template"), [
    ("GET", "/clients", "/clients"),
    ("GET", "/clients/{client}", "/clients/{id}"),
    ("PATCH", "/clients/{client}", "/clients/{id}"),
    ("GET", "/client-grants", "/client-grants"),
    ("POST", "/client-grants", "/client-grants"),
    ("GET", "/client-grants/cgr_x", "/client-grants/{id}"),
    ("PATCH", "/client-grants/cgr_x", "/client-grants/{id}"),
    ("GET", "/resource-servers", "/resource-servers"),
    ("GET", "/resource-servers/x", "/resource-servers/{id}"),
    ("PATCH", "/resource-servers/x", "/resource-servers/{id}"),
    ("GET", "/connections", "/connections"),
    ("GET", "/connections/{connection}", "/connections/{id}"),
    ("GET", "/connections/{connection}/clients", "/connections/{id}/clients"),
    ("PATCH", "/connections/{connection}/clients", "/connections/{id}/clients"),
])
def test_each_operation_wants_its_scope(sandbox: Sandbox, mint, config_oas: Oas, method: str, path: str,
                                        template: str) -> None:
    """A token without the operation's scope gets the document's 403, and nothing changes."""
    url = sandbox.base_url + "/api/v2" + path.format(client=sandbox.client_id,
                                                     connection=sandbox.connections["github"])
    token = mint("read:users update:users")
    before = {p: httpx2.get(sandbox.base_url + "/api/v2" + p, headers={
        "Authorization": f"Bearer {mint(CONFIG_SCOPES)}"}).json() for p in ("/clients", "/client-grants")}
    body: Any = [] if template.endswith("/clients") and method == "PATCH" else {}
    response = httpx2.request(method, url, headers={"Authorization": f"Bearer {token}"},
                              json=body if method != "GET" else None)
    assert_error(response, 403, config_oas.insufficient_scope_message(method, template), "insufficient_scope")
    after = {p: httpx2.get(sandbox.base_url + "/api/v2" + p, headers={
        "Authorization": f"Bearer {mint(CONFIG_SCOPES)}"}).json() for p in ("/clients", "/client-grants")}
    assert after == before
    assert httpx2.request(method, url).status_code == 401


def test_changed_settings_survive_a_restart_and_the_api_follows_the_port(tmp_path: Path) -> None:
    db = str(tmp_path / "tenant.db")
    with Sandbox(db=db, seed=7, quiet=True) as first:
        token = httpx2.post(first.base_url + "/oauth/token", json={
            "grant_type": "client_credentials", "client_id": first.m2m_client_id,
            "client_secret": first.m2m_client_secret, "audience": first.management_audience}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        server = httpx2.get(first.base_url + "/api/v2/resource-servers", headers=headers).json()[0]
        assert httpx2.patch(f"{first.base_url}/api/v2/resource-servers/{server['id']}", headers=headers,
                            json={"allow_offline_access": False}).status_code == 201
        assert httpx2.patch(f"{first.base_url}/api/v2/clients/{first.client_id}", headers=headers,
                            json={"callbacks": ["http://127.0.0.1/mine"]}).status_code == 200
        first_audience = first.management_audience
    with Sandbox(db=db, quiet=True) as again:
        token = httpx2.post(again.base_url + "/oauth/token", json={
            "grant_type": "client_credentials", "client_id": again.m2m_client_id,
            "client_secret": again.m2m_client_secret, "audience": again.management_audience}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        servers = httpx2.get(again.base_url + "/api/v2/resource-servers", headers=headers).json()
        assert [(s["id"], s["identifier"], s["allow_offline_access"]) for s in servers] == [
            (server["id"], again.management_audience, False)]
        assert again.management_audience != first_audience  # another port: the API moved with it
        native = httpx2.get(f"{again.base_url}/api/v2/clients/{again.client_id}", headers=headers).json()
        assert native["callbacks"] == ["http://127.0.0.1/mine"]
