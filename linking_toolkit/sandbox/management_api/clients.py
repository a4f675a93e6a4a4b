"""Management API routes on applications and their grants: ``/clients``, ``/clients/{id}``,
``/client-grants`` and ``/client-grants/{id}``, as Auth0's document has them (its
``management-api-v2.configuration-subset.oas.json`` in the repository's ``tests/reference``).

What the sandbox stores of a client it enforces: ``grant_types`` at the token and device endpoints,
``callbacks`` at ``/authorize``, ``allowed_logout_urls`` and ``web_origins`` for a single-page app.
Settings it does not model are refused as unknown properties (``tests/reference/DEVIATIONS.md``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from ..browser_apps import check_origin, check_url
from ..context import current_tenant
from ..store import ClientGrantExists, new_grant_id
from .auth import Caller, authorized_caller
from .blueprint import route
from .errors import ApiError, bad_body, json_response
from .listing import check_enum, check_string, check_strings, page_of, query_enum
from .validation import json_type, path_segments, project, query_bool, read_body

__all__ = ["APP_TYPES", "DEFAULT_REFRESH_TOKEN", "client_document", "get_client", "patch_client"]

APP_TYPES = ("native", "spa", "regular_web", "non_interactive", "resource_server", "express_configuration",
             "rms", "box", "cloudbees", "concur", "dropbox", "mscrm", "echosign", "egnyte", "newrelic",
             "office365", "salesforce", "sentry", "sharepoint", "slack", "springcm", "zendesk", "zoom",
             "sso_integration", "oag")
# What the sandbox does with refresh tokens (it rotates them, each family expiring), in Auth0's terms.
DEFAULT_REFRESH_TOKEN = {"rotation_type": "rotating", "expiration_type": "expiring", "leeway": 0,
                         "token_lifetime": 2_592_000, "infinite_token_lifetime": False,
                         "idle_token_lifetime": 1_296_000, "infinite_idle_token_lifetime": False}
# Read with any of the operation's scopes; everything else needs read:clients or read:client_keys,
# and the secret read:client_keys or read:client_credentials (the operation's description).
SUMMARY_FIELDS = ("client_id", "app_type", "name", "description")
READ_CLIENTS = ("read:clients", "read:client_keys", "read:client_credentials", "read:client_summary")


def client_document(row: dict[str, Any], caller: Caller, tenant_name: str) -> dict[str, Any]:
    """A client as Auth0 answers it to ``caller``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> sorted(api.get(f'clients/{sandbox.client_id}').json())[:4]    # doctest: +SKIP
    ['allowed_logout_urls', 'allowed_origins', 'app_type', 'callbacks']
    """
    public = not row["client_secret"]
    doc: dict[str, Any] = {
        "client_id": row["client_id"], "tenant": tenant_name, "name": row["name"],
        "description": row["description"], "global": False, "app_type": row["app_type"],
        "is_first_party": True, "oidc_conformant": row["oidc_conformant"],
        "callbacks": row["redirect_uris"], "allowed_origins": row["allowed_origins"],
        "web_origins": row["web_origins"], "allowed_logout_urls": row["allowed_logout_urls"],
        "grant_types": row["grant_types"],
        "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 36_000, "secret_encoded": False},
        "sso_disabled": False, "cross_origin_authentication": False, "custom_login_page_on": True,
        "token_endpoint_auth_method": "none" if public else "client_secret_post",
        "refresh_token": row["refresh_token"] or DEFAULT_REFRESH_TOKEN,
    }
    if not (caller.may("read:clients") or caller.may("read:client_keys")):
        doc = {k: v for k, v in doc.items() if k in SUMMARY_FIELDS}
    if not public and (caller.may("read:client_keys") or caller.may("read:client_credentials")):
        doc["client_secret"] = row["client_secret"]
    return doc


@route("/clients", methods=["GET"])
def list_clients() -> Response:
    caller = authorized_caller("get_clients", any_user=READ_CLIENTS)
    tenant = current_tenant()
    for flag in ("is_global", "is_first_party"):
        query_bool(flag, False)
    app_types = [t for t in (request.args.get("app_type") or "").split(",") if t]
    external = request.args.get("external_client_id")
    if external is not None:
        check_string(external, "external_client_id", min_length=1, max_length=120, query=True)
    rows = [r for r in tenant.store.clients() if not app_types or r["app_type"] in app_types]
    if request.args.get("is_global") == "true" or request.args.get("is_first_party") == "false" \
            or external is not None:
        rows = []  # the sandbox's clients are first-party, none global, none registered by CIMD
    return page_of([client_document(r, caller, tenant.domain) for r in rows], "clients", id_key="client_id")


PATCH_CLIENT_SCHEMA: dict[str, tuple[str, ...]] = {
    "name": ("string",), "description": ("string",), "callbacks": ("array",),
    "allowed_logout_urls": ("array",), "web_origins": ("array",), "allowed_origins": ("array",),
    "grant_types": ("array",), "app_type": ("string",), "oidc_conformant": ("boolean",),
    "refresh_token": ("object", "null"),
}
REFRESH_TOKEN_SCHEMA: dict[str, tuple[str, ...]] = {
    "rotation_type": ("string",), "expiration_type": ("string",), "leeway": ("integer",),
    "token_lifetime": ("integer",), "infinite_token_lifetime": ("boolean",),
    "idle_token_lifetime": ("integer",), "infinite_idle_token_lifetime": ("boolean",),
}


@route("/clients/<path:_rest>", methods=["GET", "PATCH"])
def client_routes(_rest: str) -> Response:
    segments = path_segments()
    if len(segments) != 2 or not segments[1]:
        raise ApiError(404, "Not Found")
    return get_client(segments[1]) if request.method == "GET" else patch_client(segments[1])


def get_client(client_id: str) -> Response:
    """``GET /clients/{id}``: the client as :func:`client_document` shows it to the caller; 404 for none.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.get(f'clients/{sandbox.client_id}').json()['name']    # doctest: +SKIP
    'Notebook (native)'
    >>> api.get('clients/nobody').status_code    # doctest: +SKIP
    404
    """
    caller = authorized_caller("get_client", any_user=READ_CLIENTS)
    include_fields = query_bool("include_fields", True)
    tenant = current_tenant()
    row = tenant.store.client(client_id)
    if row is None:
        raise ApiError(404, "Client not found.", "inexistent_client")
    return json_response(project(client_document(row, caller, tenant.domain), request.args.get("fields"),
                                 include_fields))


def patch_client(client_id: str) -> Response:
    """``PATCH /clients/{id}``: the settings given replace the stored ones; nothing changes on a 400.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> answer = api.patch(f'clients/{sandbox.client_id}', json={'grant_types': 'none'})  # doctest: +SKIP
    >>> answer.json()['errorCode']    # doctest: +SKIP
    'invalid_body'
    """
    caller = authorized_caller("patch_client", any_user=("update:clients", "update:client_keys"))
    body = read_body(PATCH_CLIENT_SCHEMA)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = check_string(body["name"], "name", min_length=1, pattern="^[^<>]+$")
    if "description" in body:
        changes["description"] = check_string(body["description"], "description", max_length=140)
    for name, column, check in (("callbacks", "redirect_uris", check_url),
                                ("allowed_logout_urls", "allowed_logout_urls", check_url),
                                ("web_origins", "web_origins", check_origin),
                                ("allowed_origins", "allowed_origins", check_origin)):
        if name in body:
            changes[column] = [_url(check, value, f"{name}[{i}]") for i, value in enumerate(body[name])]
    if "grant_types" in body:
        changes["grant_types"] = list(dict.fromkeys(check_strings(body["grant_types"], "grant_types")))
    check_enum(body, "app_type", APP_TYPES)
    for key in ("app_type", "oidc_conformant"):
        if key in body:
            changes[key] = body[key]
    if "refresh_token" in body:
        changes["refresh_token"] = _refresh_token(body["refresh_token"])
    store = current_tenant().store
    if store.client(client_id) is None:
        raise ApiError(404, "Client not found.", "inexistent_client")
    row = store.update_client(client_id, changes) if changes else store.client(client_id)
    if row is None:
        raise ApiError(404, "Client not found.", "inexistent_client")
    return json_response(client_document(row, caller, current_tenant().domain))


def _url(check: Any, value: Any, where: str) -> str:
    try:
        return str(check(value))
    except ValueError:
        fmt = "callback-url" if check is check_url else "url-with-placeholders"
        bad_body(f"Payload validation error: 'Object didn't pass validation for format {fmt}: "
                 f"{str(value)[:100]}' on property {where}.")


def _refresh_token(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    unknown = [k for k in value if k not in REFRESH_TOKEN_SCHEMA]
    if unknown:
        bad_body(f"Payload validation error: 'Additional properties not allowed: {','.join(unknown)}'"
                 " on property refresh_token.")
    for required in ("rotation_type", "expiration_type"):
        if required not in value:
            bad_body(f"Payload validation error: 'Missing required property: {required}' on property "
                     "refresh_token.")
    check_enum(value, "rotation_type", ("rotating", "non-rotating"), "refresh_token.")
    check_enum(value, "expiration_type", ("expiring", "non-expiring"), "refresh_token.")
    for key, types in REFRESH_TOKEN_SCHEMA.items():
        if key in value and json_type(value[key]) != types[0]:
            bad_body(f"Payload validation error: 'Expected type {types[0]} but found type "
                     f"{json_type(value[key])}' on property refresh_token.{key}.")
        if types[0] == "integer" and key in value and value[key] < (0 if key == "leeway" else 1):
            bad_body(f"Payload validation error: 'Value {value[key]} is less than minimum' on property "
                     f"refresh_token.{key}.")
    return {**DEFAULT_REFRESH_TOKEN, **value}


# -- client grants ----------------------------------------------------------------------------------

def _grant_document(grant: dict[str, Any]) -> dict[str, Any]:
    return {"id": grant["id"], "client_id": grant["client_id"], "audience": grant["audience"],
            "scope": grant["scope"], "subject_type": "client"}


@route("/client-grants", methods=["GET"])
def list_client_grants() -> Response:
    authorized_caller("get_client_grants", any_user=("read:client_grants",))
    query_enum("allow_any_organization", ("true",))
    subject = query_enum("subject_type", ("client", "user"))
    query_enum("default_for", ("third_party_clients",))
    grants = current_tenant().store.client_grants(client_id=request.args.get("client_id"),
                                                  audience=request.args.get("audience"))
    if subject == "user" or request.args.get("allow_any_organization") or request.args.get("default_for"):
        grants = []  # the sandbox's grants are for clients, none for any organization nor a default
    return page_of([_grant_document(g) for g in grants], "client_grants", fields=False, min_per_page=1)


CREATE_GRANT_SCHEMA: dict[str, tuple[str, ...]] = {
    "client_id": ("string",), "audience": ("string",), "scope": ("array",)}


@route("/client-grants", methods=["POST"])
def create_client_grant() -> Response:
    authorized_caller("post_client_grants", any_user=("create:client_grants",))
    body = read_body(CREATE_GRANT_SCHEMA)
    for required in ("client_id", "audience"):
        if required not in body:
            bad_body(f"Payload validation error: 'Missing required property: {required}'.")
    check_string(body["audience"], "audience", min_length=1)
    scope = check_strings(body.get("scope", []), "scope", max_length=280)
    store = current_tenant().store
    server = store.resource_server(body["audience"])
    if server is None:
        raise ApiError(404, "Resource server not found", "inexistent_resource_server")
    if store.client(body["client_id"]) is None:
        raise ApiError(404, "Client not found", "inexistent_client")
    try:
        grant = store.create_client_grant(new_grant_id(), client_id=body["client_id"],
                                          audience=server["identifier"], scope=list(dict.fromkeys(scope)))
    except ClientGrantExists:
        # The document's words for this 409.
        raise ApiError(409, "A resource server with the same identifier already exists.",
                       "conflict") from None
    return json_response(_grant_document(grant), 201)


@route("/client-grants/<path:_rest>", methods=["GET", "PATCH"])
def client_grant_routes(_rest: str) -> Response:
    segments = path_segments()
    if len(segments) != 2 or not segments[1]:
        raise ApiError(404, "Not Found")
    store = current_tenant().store
    if request.method == "GET":
        authorized_caller("get_client_grant", any_user=("read:client_grants",))
        grant = store.client_grant_by_id(segments[1])
        if grant is None:
            raise ApiError(404, "The grant does not exist.", "inexistent_grant")
        return json_response(_grant_document(grant))
    authorized_caller("patch_client_grant", any_user=("update:client_grants",))
    body = read_body({"scope": ("array", "null")})
    scope = check_strings(body.get("scope") or [], "scope", max_length=280)
    grant = store.client_grant_by_id(segments[1])
    if grant is None:
        raise ApiError(404, "The client grant does not exist.", "inexistent_grant")
    if "scope" in body:
        grant = store.update_client_grant(segments[1], list(dict.fromkeys(scope))) or grant
    return json_response(_grant_document(grant))
