"""Management API routes on the tenant's APIs and connections: ``/resource-servers[/{id}]``,
``/connections``, ``/connections/{id}`` and ``/connections/{id}/clients``, as Auth0's document has
them (``management-api-v2.configuration-subset.oas.json`` in ``tests/reference``).

What is stored is enforced: an API's ``allow_offline_access`` decides whether a login for it gets a
refresh token, and a connection logs in only the clients it is enabled for.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from ..context import current_tenant
from .auth import authorized_caller
from .blueprint import route
from .errors import ApiError, bad_body, bad_query, json_response
from .listing import check_string, checkpoint_of, page_of
from .validation import (
    CONNECTION_ID,
    PROVIDERS,
    json_type,
    path_segments,
    project,
    query_bool,
    read_body,
)

__all__ = ["connection_document", "resource_server_document"]

# What a system API (the Management API) lets change: its access settings, not its name or scopes.
SYSTEM_SETTINGS = frozenset(("allow_offline_access", "skip_consent_for_verifiable_first_party_clients",
                             "token_lifetime"))
# The document's ConnectionStrategyEnum: the providers of an identity, and one more.
STRATEGIES = PROVIDERS | {"auth0-adldap"}
ENABLED_CLIENTS_PER_PATCH = 50  # the document: "the limit per PATCH request is 50 clients"


def resource_server_document(server: dict[str, Any]) -> dict[str, Any]:
    """A resource server (an API) as Auth0 answers it.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> servers = api.get('resource-servers').json()    # doctest: +SKIP
    >>> [server['identifier'] == sandbox.management_audience for server in servers]    # doctest: +SKIP
    [True]
    """
    return {"id": server["id"], "name": server["name"], "is_system": server["is_system"],
            "identifier": server["identifier"], "scopes": server["scopes"], "signing_alg": "RS256",
            "allow_offline_access": server["allow_offline_access"],
            "skip_consent_for_verifiable_first_party_clients": server["skip_consent"],
            "token_lifetime": server["token_lifetime"], "token_lifetime_for_web": 7200,
            "token_dialect": "access_token", "enforce_policies": False}


@route("/resource-servers", methods=["GET"])
def list_resource_servers() -> Response:
    authorized_caller("get_resource_servers", any_user=("read:resource_servers",))
    wanted = request.args.getlist("identifiers")
    if any(not identifier for identifier in wanted):
        bad_query("Query validation error: 'String is too short (0 chars), minimum 1' on property "
                  "identifiers.")
    servers = [s for s in current_tenant().store.resource_servers()
               if not wanted or s["identifier"] in wanted]
    return page_of([resource_server_document(s) for s in servers], "resource_servers", fields=False,
                   min_per_page=1)


PATCH_SERVER_SCHEMA: dict[str, tuple[str, ...]] = {
    "name": ("string",), "scopes": ("array",), "allow_offline_access": ("boolean",),
    "skip_consent_for_verifiable_first_party_clients": ("boolean",), "token_lifetime": ("integer",),
}


@route("/resource-servers/<path:_rest>", methods=["GET", "PATCH"])
def resource_server_routes(_rest: str) -> Response:
    """By id or identifier (an identifier is a URL: percent-encoded, it stays one segment)."""
    segments = path_segments()
    if len(segments) != 2 or not segments[1]:
        raise ApiError(404, "Not Found")
    store = current_tenant().store
    if request.method == "GET":
        authorized_caller("get_resource_server", any_user=("read:resource_servers",))
        query_bool("include_fields", True)
        server = store.resource_server(segments[1])
        if server is None:
            raise ApiError(404, "Resource server not found.", "inexistent_resource_server")
        return json_response(resource_server_document(server))
    authorized_caller("patch_resource_server", any_user=("update:resource_servers",))
    body = read_body(PATCH_SERVER_SCHEMA)
    changes = _server_changes(body)
    server = store.resource_server(segments[1])
    if server is None:
        raise ApiError(404, "Resource server not found.", "inexistent_resource_server")
    if server["is_system"] and set(body) - SYSTEM_SETTINGS:
        raise ApiError(400, "System resource servers cannot be patched.", "invalid_body")
    updated = store.update_resource_server(server["id"], changes) if changes else server
    # 201: the status the document gives this operation's success.
    return json_response(resource_server_document(updated or server), 201)


def _server_changes(body: dict[str, Any]) -> dict[str, Any]:
    """The columns a valid PATCH body changes; Auth0's 400 for an invalid one."""
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = check_string(body["name"], "name", max_length=200, pattern="^[^<>]+$")
    if "token_lifetime" in body:
        lifetime = body["token_lifetime"]
        if not 0 <= lifetime <= 2_592_000:
            bad_body(f"Payload validation error: 'Value {lifetime} is outside 0 to 2592000' on property "
                     "token_lifetime.")
        changes["token_lifetime"] = lifetime
    if "allow_offline_access" in body:
        changes["allow_offline_access"] = body["allow_offline_access"]
    if "skip_consent_for_verifiable_first_party_clients" in body:
        changes["skip_consent"] = body["skip_consent_for_verifiable_first_party_clients"]
    if "scopes" in body:
        scopes = []
        for i, scope in enumerate(body["scopes"]):
            if not isinstance(scope, dict) or "value" not in scope or set(scope) - {"value", "description"}:
                bad_body(f"Payload validation error: 'Expected an object with value and description' on "
                         f"property scopes[{i}].")
            value = check_string(scope["value"], f"scopes[{i}].value", min_length=1, max_length=280)
            description = check_string(scope.get("description", ""), f"scopes[{i}].description",
                                       max_length=500)
            scopes.append({"value": value, "description": description})
        changes["scopes"] = scopes
    return changes


# -- connections ------------------------------------------------------------------------------------

def connection_document(connection: dict[str, Any], *, enabled_clients: list[str] | None = None
                        ) -> dict[str, Any]:
    """A connection as Auth0 lists it; with ``enabled_clients`` as ``GET /connections/{id}`` has it.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> sorted(api.get('connections').json()[0])    # doctest: +SKIP
    ['display_name', 'id', 'is_domain_connection', 'name', 'realms', 'strategy']
    """
    doc: dict[str, Any] = {"id": connection["id"], "name": connection["name"],
                           "display_name": connection["name"], "strategy": connection["strategy"],
                           "is_domain_connection": False}
    if not connection["is_social"]:
        doc["realms"] = [connection["name"]]
    if enabled_clients is not None:
        doc["enabled_clients"] = enabled_clients
    return doc


@route("/connections", methods=["GET"])
def list_connections() -> Response:
    authorized_caller("get_connections", any_user=("read:connections",))
    strategies = request.args.getlist("strategy")
    for strategy in strategies:
        if strategy not in STRATEGIES:
            bad_query(f"Query validation error: 'No enum match for: \"{strategy[:60]}\"' on property "
                      "strategy.")
    name = request.args.get("name")
    found = [c for c in current_tenant().store.connections()
             if (not strategies or c["strategy"] in strategies) and (name is None or c["name"] == name)]
    return page_of([connection_document(c) for c in found], "connections", min_per_page=1)


@route("/connections/<path:_rest>", methods=["GET", "PATCH"])
def connection_routes(_rest: str) -> Response:
    segments = path_segments()
    if len(segments) == 2 and segments[1] and request.method == "GET":
        authorized_caller("get_connection", any_user=("read:connections",))
        include_fields = query_bool("include_fields", True)
        connection = _connection(segments[1])
        doc = connection_document(connection,
                                  enabled_clients=current_tenant().store.enabled_clients(connection["id"]))
        return json_response(project(doc, request.args.get("fields"), include_fields))
    if len(segments) == 3 and segments[1] and segments[2] == "clients":
        if request.method == "GET":
            return _enabled_clients(segments[1])
        return _patch_enabled_clients(segments[1])
    raise ApiError(404, "Not Found")


def _connection(connection_id: str) -> dict[str, Any]:
    connection = current_tenant().store.connection_by_id(connection_id)
    if connection is None or not CONNECTION_ID.fullmatch(connection_id):
        raise ApiError(404, "The connection does not exist.", "inexistent_connection")
    return connection


def _enabled_clients(connection_id: str) -> Response:
    """``GET /connections/{id}/clients``: checkpoint paging, ``from`` the ``next`` of the page before."""
    authorized_caller("get_connection_clients", any_user=("read:connections",))
    clients = current_tenant().store.enabled_clients(_connection(connection_id)["id"])
    return checkpoint_of([{"client_id": c} for c in clients], "clients", id_key="client_id", fields=False,
                         max_take=1000)


def _patch_enabled_clients(connection_id: str) -> Response:
    """``PATCH /connections/{id}/clients``: ``[{client_id, status}]``, all applied or none; 204."""
    authorized_caller("patch_connection_clients", any_user=("update:connections",))
    data = request.get_data()
    if request.mimetype == "application/x-www-form-urlencoded":  # a form holds no array of objects
        bad_body("Payload validation error: 'Expected type array but found type object'.")
    if data and request.mimetype not in ("application/json", ""):
        raise ApiError(415, "Unsupported Media Type")
    try:
        body = json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "Invalid request payload JSON format", "invalid_body") from None
    if not isinstance(body, list):
        bad_body(f"Payload validation error: 'Expected type array but found type {json_type(body)}'.")
    if len(body) > ENABLED_CLIENTS_PER_PATCH:
        bad_body(f"Payload validation error: 'Array is too long ({len(body)}), maximum "
                 f"{ENABLED_CLIENTS_PER_PATCH}'.")
    statuses = []
    for i, item in enumerate(body):
        if not isinstance(item, dict) or set(item) != {"client_id", "status"} \
                or not isinstance(item["client_id"], str) or not isinstance(item["status"], bool):
            bad_body(f"Payload validation error: 'Expected {{client_id: string, status: boolean}}' on "
                     f"property [{i}].")
        statuses.append((item["client_id"], item["status"]))
    connection = _connection(connection_id)
    store = current_tenant().store
    if any(store.client(client_id) is None for client_id, _ in statuses):
        raise ApiError(404, "The client does not exist", "inexistent_client")
    store.set_enabled_clients(connection["id"], statuses)
    return Response(status=204)
