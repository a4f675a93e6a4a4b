"""Management API routes on users: list and search, create, get, update, delete, users-by-email."""

from __future__ import annotations

import re
import secrets

from flask import Response, request

from ..context import current_tenant
from ..passwords import hash_password
from ..store import QueryError, UserExists, parse_user_query
from .auth import Caller, authorized_caller
from .blueprint import route
from .errors import NOT_FOUND_USER, ApiError, bad_body, bad_query, json_response
from .identities import link_identity, unlink_identity
from .validation import path_segments, project, query_bool, query_int, read_body

__all__ = ["PAGING_CAP", "create_user", "delete_user", "get_user", "list_users", "patch_user",
           "users_by_email"]

PAGING_CAP = 1000  # Auth0 serves only the first 1000 results of a search

SORTABLE = {"created_at", "updated_at", "last_login", "logins_count", "email", "name", "nickname",
            "user_id", "username", "given_name", "family_name"}


@route("/users", methods=["GET"])
def list_users() -> Response:
    """``GET /users``: paging (the first 1000 results only), totals, sort, fields and ``q``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> query = {'q': 'email:"ada@example.com"', 'search_engine': 'v3'}    # doctest: +SKIP
    >>> found = api.get('users', params=query).json()    # doctest: +SKIP
    >>> [user['email'] for user in found]    # doctest: +SKIP
    ['ada@example.com', 'ada@example.com']
    """
    authorized_caller("get_users", any_user=("read:users",))
    engine = request.args.get("search_engine")
    if engine == "v1":
        bad_query("You are not allowed to use search_engine=v1.")
    if engine == "v2":
        bad_query("You are not allowed to use search_engine=v2. Use search_engine=v3 instead.")
    if engine not in (None, "v3"):
        bad_query("Query validation error: 'Invalid value' on property search_engine.")
    page = query_int("page", 0)
    per_page = query_int("per_page", 50, maximum=100)
    include_totals = query_bool("include_totals", False)
    include_fields = query_bool("include_fields", True)
    query_bool("primary_order", True)
    sort = None
    if raw_sort := request.args.get("sort"):
        match = re.fullmatch(r"([a-z_]+):(-?1)", raw_sort)
        if match is None or match.group(1) not in SORTABLE:
            bad_query(f"Query validation error: 'Invalid sort' on property sort ({raw_sort[:60]}).")
        sort = (match.group(1), int(match.group(2)))
    try:
        query = parse_user_query(request.args.get("q", ""))
    except QueryError as exc:
        bad_query(f"Invalid query: {exc}")
    start = page * per_page
    if start + per_page > PAGING_CAP:
        bad_query(f"You can only page through the first {PAGING_CAP} records. "
                  "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.")
    try:
        total, users = current_tenant().store.search_users(query, sort=sort, offset=start, limit=per_page)
    except QueryError as exc:
        bad_query(f"Invalid query: {exc}")
    users = [project(u, request.args.get("fields"), include_fields) for u in users]
    if include_totals:
        return json_response({"start": start, "limit": per_page, "length": len(users),
                              "total": total, "users": users})
    return json_response(users)


CREATE_USER_SCHEMA: dict[str, tuple[str, ...]] = {
    "email": ("string",), "phone_number": ("string",), "user_metadata": ("object",),
    "blocked": ("boolean",), "email_verified": ("boolean",), "phone_verified": ("boolean",),
    "app_metadata": ("object",), "given_name": ("string",), "family_name": ("string",),
    "name": ("string",), "nickname": ("string",), "picture": ("string",), "user_id": ("string",),
    "connection": ("string",), "password": ("string",), "verify_email": ("boolean",),
    "username": ("string",),
}


@route("/users", methods=["POST"])
def create_user() -> Response:
    """``POST /users`` on a database connection (Auth0 creates no social users through the API).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> body = {'connection': 'Username-Password-Authentication', 'email': 'new@example.com',
    ...         'password': 'a-Str0ng-password!'}    # doctest: +SKIP
    >>> api.post('users', json=body).json()['email']    # doctest: +SKIP
    'new@example.com'
    """
    authorized_caller("post_users", any_user=("create:users",))
    body = read_body(CREATE_USER_SCHEMA)
    if "connection" not in body:
        bad_body("Payload validation error: 'Missing required property: connection'.")
    if "phone_number" in body or "phone_verified" in body:
        bad_body("Payload validation error: 'Additional properties not allowed: phone_number'.")
    store = current_tenant().store
    connection = store.connection_by_name(body["connection"])
    if connection is None:
        raise ApiError(400, "Connection does not exist.", "inexistent_connection")
    if connection["is_social"]:
        raise ApiError(400, "Connection does not support user creation through the API. It must either "
                            "be a database or passwordless connection.", "operation_not_supported")
    for required in ("email", "password"):
        if not body.get(required):
            bad_body(f"Payload validation error: 'Missing required property: {required}'.")
    email = body["email"].strip().lower()  # Auth0 stores database emails lowercased
    if "@" not in email or len(email) > 320:
        bad_body("Payload validation error: 'Object didn't pass validation for format email:"
                 f" {body['email'][:80]}' on property email (The user's email).")
    short_id = body.get("user_id") or secrets.token_hex(12)
    if not re.fullmatch(r"[A-Za-z0-9_.@+-]{1,255}", short_id):
        bad_body("Payload validation error: 'String does not match pattern' on property user_id.")
    profile = {k: body.get(k) for k in ("email_verified", "username", "given_name", "family_name",
                                         "nickname", "picture")}
    profile.update(email=email, name=body.get("name") or email,
                   nickname=body.get("nickname") or email.split("@")[0],
                   email_verified=bool(body.get("email_verified", False)))
    try:
        doc = store.create_database_user(
            provider=connection["strategy"], user_id=short_id, connection=connection["name"],
            profile=profile, password_hash=hash_password(body["password"]), name_given="name" in body,
            blocked=bool(body.get("blocked")), user_metadata=body.get("user_metadata"),
            app_metadata=body.get("app_metadata"))
    except UserExists:
        raise ApiError(409, "The user already exists.", "auth0_idp_error") from None
    return json_response(doc, 201)


@route("/users-by-email", methods=["GET"])
def users_by_email() -> Response:
    """``GET /users-by-email``: immediately consistent; the OAS calls the match case-sensitive.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> found = api.get('users-by-email', params={'email': 'ada@example.com'}).json()    # doctest: +SKIP
    >>> [(user['user_id'] == ada, user['identities'][0]['connection']) for user in found]    # doctest: +SKIP
    [(True, 'Username-Password-Authentication'), (False, 'google-oauth2')]
    """
    authorized_caller("users_by_email", any_user=("read:users",))
    email = request.args.get("email")
    if not email:
        bad_query("Query validation error: 'Missing required property: email'.")
    include_fields = query_bool("include_fields", True)
    users = current_tenant().store.users_by_email(email)
    return json_response([project(u, request.args.get("fields"), include_fields) for u in users])


@route("/users/<path:_rest>", methods=["GET", "PATCH", "DELETE", "POST"])
def user_routes(_rest: str) -> Response:
    """Dispatch on the raw path segments (see the module docstring about ``%2F``)."""
    segments = path_segments()
    method = request.method
    if len(segments) == 2 and segments[1] and method in ("GET", "PATCH", "DELETE"):
        return {"GET": get_user, "PATCH": patch_user, "DELETE": delete_user}[method](segments[1])
    if len(segments) == 3 and segments[1] and segments[2] == "identities" and method == "POST":
        return link_identity(segments[1])
    if (len(segments) == 5 and segments[1] and segments[2] == "identities" and method == "DELETE"
            and segments[3] and segments[4]):
        return unlink_identity(segments[1], segments[3], segments[4])
    raise ApiError(404, "Not Found")


def get_user(user_id: str) -> Response:
    """``GET /users/{id}``: the user in Auth0's shape (``fields``/``include_fields`` apply); 404 for none.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.get(f'users/{ada}').json()['email']    # doctest: +SKIP
    'ada@example.com'
    >>> api.get('users/auth0|nobody').json()['message']    # doctest: +SKIP
    'The user does not exist.'
    """
    authorized_caller("get_user", any_user=("read:users", "read:user_idp_tokens"),
                      own_user=("read:current_user",), target=user_id)
    include_fields = query_bool("include_fields", True)
    doc = current_tenant().store.get_user(user_id)
    if doc is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    return json_response(project(doc, request.args.get("fields"), include_fields))


def delete_user(user_id: str) -> Response:
    """204 whether or not the user existed, as the recordings show Auth0 doing.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.delete('users/auth0|nobody').status_code    # doctest: +SKIP
    204
    """
    authorized_caller("delete_user", any_user=("delete:users",), own_user=("delete:current_user",),
                      target=user_id)
    current_tenant().store.delete_user(user_id)
    return Response(status=204)


PATCH_SCHEMA: dict[str, tuple[str, ...]] = {
    "blocked": ("boolean",), "email_verified": ("boolean",), "email": ("string", "null"),
    "user_metadata": ("object",), "app_metadata": ("object",), "given_name": ("string", "null"),
    "family_name": ("string", "null"), "name": ("string", "null"), "nickname": ("string", "null"),
    "picture": ("string", "null"), "verify_email": ("boolean",), "password": ("string", "null"),
    "connection": ("string",), "client_id": ("string",), "username": ("string", "null"),
}


def patch_user(user_id: str) -> Response:
    """``PATCH /users/{id}``: root attributes replaced, metadata merged one level deep.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> answer = api.patch(f'users/{ada}', json={'user_metadata': {'team': 'docs'}})    # doctest: +SKIP
    >>> answer.json()['user_metadata']    # doctest: +SKIP
    {'theme': 'light', 'team': 'docs'}
    """
    caller = authorized_caller("patch_user", any_user=("update:users", "update:users_app_metadata"),
                               own_user=("update:current_user_metadata",), target=user_id)
    body = read_body(PATCH_SCHEMA)
    _check_patch_scopes(caller, user_id, body)
    for a, b in (("password", "email"), ("password", "email_verified"), ("username", "email"),
                 ("username", "email_verified"), ("username", "password")):
        if a in body and b in body:
            bad_body(f"Cannot update {a} and {b} simultaneously.")
    store = current_tenant().store
    main = store.main_identity(user_id)
    if main is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    _check_patch_values(main["connection"], bool(main["is_social"]), body)
    # verify_email sends nothing here; connection and client_id only select; password is hashed.
    changes = {k: v for k, v in body.items()
               if k not in ("verify_email", "connection", "client_id", "password")}
    if isinstance(changes.get("email"), str):
        changes["email"] = changes["email"].strip().lower()
        other = store.database_identity_by_email(main["connection"], changes["email"])
        if other is not None and other["owner"] != user_id:
            # Two database accounts with one email would make the password login ambiguous.
            bad_body("The specified new email already exists")
    password_hash = hash_password(body["password"]) if body.get("password") else None
    doc = store.update_user(user_id, changes, password_hash)
    if doc is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    return json_response(doc)


def _check_patch_scopes(caller: Caller, user_id: str, body: dict[str, object]) -> None:
    """Without update:users, only the metadata the caller's scopes allow may change."""
    if caller.may("update:users"):
        return
    allowed = {"app_metadata"} if caller.may("update:users_app_metadata") else set()
    if caller.may("update:current_user_metadata") and user_id == caller.sub:
        allowed.add("user_metadata")
    refused = sorted(set(body) - allowed)
    if refused:
        raise ApiError(403, "Some fields cannot be updated with the permissions granted by the bearer"
                            f" token scopes: {', '.join(refused)}.", "insufficient_scope")


def _check_patch_values(connection: str, is_social: bool, body: dict[str, object]) -> None:
    """What the user's connection allows to change, and no empty names."""
    if "connection" in body and body["connection"] != connection:
        raise ApiError(400, "Connection is not supported for this operation.", "invalid_body")
    if is_social and ("email" in body or "password" in body or "username" in body):
        bad_body("Cannot update email for non-database user." if "email" in body
                 else "Connection is not supported for this operation.")
    for key in ("name", "nickname", "given_name", "family_name", "email"):
        value = body.get(key)
        if isinstance(value, str) and not value:
            bad_body("Payload validation error: 'String is too short (0 chars), minimum 1'"
                     f" on property {key}.")
