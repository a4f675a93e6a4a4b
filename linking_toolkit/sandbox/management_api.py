"""Management API v2 of the sandbox: users, link, unlink, users-by-email and users-export jobs.

Faithful to Auth0's ``management-api-v2.linking-subset.oas.json`` and its recorded exchanges
(kept in the repository's ``tests/reference``): the same status codes, bodies and error messages,
every error in Auth0's shape ``{statusCode, error, message, errorCode}``. Nothing under
``/api/v2`` ever answers HTML or a 500 for bad input: the blueprint handles its own errors, and a
catch-all route answers 404 for unknown paths.

Path ids are read from the raw request URI, because werkzeug decodes ``%2F`` into ``/`` before
routing, and an id like ``samlp|a/b`` must stay one segment.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Blueprint, Response, current_app, g, request, send_file
from flask.typing import ResponseReturnValue
from joserfc.errors import BadSignatureError, JoseError
from werkzeug.exceptions import HTTPException

from .context import TenantContext, tenant_of
from .jobs import EXPORT_FORMATS, download_path, start_export
from .store import LinkRefused, QueryError, full_user_id, now_iso, parse_user_query, split_user_id

__all__ = ["ApiError", "management"]

management = Blueprint("management", __name__)

STATUS_NAMES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
                415: "Unsupported Media Type", 429: "Too Many Requests",
                500: "Internal Server Error"}

# The providers the OAS's UserIdentityProviderEnum allows in a path or body.
PROVIDERS = frozenset((
    "ad adfs amazon apple dropbox bitbucket auth0-oidc auth0 baidu bitly box custom daccount dwolla "
    "email evernote-sandbox evernote exact facebook fitbit github google-apps google-oauth2 instagram "
    "ip line linkedin oauth1 oauth2 office365 oidc okta paypal paypal-sandbox pingfederate "
    "planningcenter salesforce-community salesforce-sandbox salesforce samlp sharepoint shopify shop "
    "sms soundcloud thirtysevensignals twitter untappd vkontakte waad weibo windowslive wordpress "
    "yahoo yandex"
).split())

ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
CONNECTION_ID = re.compile(r"^con_[A-Za-z0-9]{16}$")
PAGING_CAP = 1000
NOT_FOUND_USER = "The user does not exist."
NOT_ME = "User to be acted on does not match subject in bearer token."

# Insufficient-scope messages, word for word as the OAS lists them for each operation.
SCOPE_MESSAGES = {
    "get_users": "Insufficient scope, expected any of: read:users.",
    "post_users": "Insufficient scope, expected any of: create:users.",
    "get_user": "Insufficient scope; expected any of: read:users, read:user_idp_tokens, read:current_user.",
    "delete_user": "Insufficient scope; expected any of: delete:users,delete:current_user.",
    "patch_user": "Insufficient scope; expected any of: "
                  "update:users,update:users_app_metadata,update:current_user_metadata.",
    "identities": "Insufficient scope; expected: update:users, update:current_user_identities.",
    "users_by_email": "Insufficient scope; expected any of: read:users.",
    "post_export": "Insufficient scope; expected any of: read:users.",
    "get_job": "Insufficient scope; expected any of: create:users.",
}

# Link and unlink errors, word for word from the OAS's x-description-N entries.
LINK_MESSAGES = {
    "not_configured": "The provider/connection is not configured.",
    "same": "Main identity and the new one are the same.",
    "invalid_token": "Invalid token (link_with).",
    "invalid_aud": "JWT (link_with) contains an invalid aud claim.",
    "missing_sub": "JWT (link_with) must contains sub claim.",
    "invalid_sub": "JWT (link_with) contains an invalid sub claim.",
    "alg": "JWT (link_with) must have an alg of RS256.",
    "issuer": "JWT (link_with) must have the same issuer as the calling user.",
    "aud_azp": "JWT (link_with) must have an aud claim that matches that of the calling token's azp.",
    "needs_connection": "Linking to an inexistent identity requires a connection.",
    "inexistent": "Linking to an inexistent identity is not allowed.",
    "unable": "Unable to link with the secondary account.",
    "secondary_missing": "Provided secondary account not found.",
    "already_linked": "Specified identity already exists.",
    "main_identity": "Main identity cannot be removed.",
}


class ApiError(Exception):
    """An answer in Auth0's error shape; raised anywhere in a handler, rendered by the blueprint."""

    def __init__(self, status: int, message: str, error_code: str | None = None,
                 *, attributes: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.attributes = attributes

    def response(self) -> Response:
        body: dict[str, Any] = {"statusCode": self.status, "error": STATUS_NAMES.get(self.status, "Error"),
                                "message": self.message}
        if self.error_code:
            body["errorCode"] = self.error_code
        if self.attributes:  # Auth0's 401s repeat the message under attributes.error
            body["attributes"] = {"error": self.message}
        return json_response(body, self.status)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json",
                    headers={"Content-Type": "application/json; charset=utf-8"})


def unauthorized(message: str) -> NoReturn:
    raise ApiError(401, message, attributes=True)


def bad_body(message: str) -> NoReturn:
    raise ApiError(400, message, "invalid_body")


def bad_query(message: str) -> NoReturn:
    raise ApiError(400, message, "invalid_query_string")


def tenant() -> TenantContext:
    return tenant_of(current_app)


def route(rule: str, **options: Any) -> Any:
    """A blueprint route that never answers werkzeug's HTML: no redirect merging ``//`` (and no
    trailing-slash redirect on the catch-all), no automatic OPTIONS page; those go to the JSON 404."""
    return management.route(rule, merge_slashes=False, provide_automatic_options=False, **options)


# -- rate limiting and errors ---------------------------------------------------------------------

@management.before_request
def take_rate_limit_token() -> ResponseReturnValue | None:
    limiter = tenant().rate_limiter
    if limiter is None:
        return None
    allowed, headers = limiter.take()
    g.rate_limit_headers = headers
    if not allowed:
        return ApiError(429, "Global limit has been reached", "too_many_requests").response()
    return None


@management.after_request
def add_rate_limit_headers(response: Response) -> Response:
    for name, value in getattr(g, "rate_limit_headers", {}).items():
        response.headers[name] = value
    return response


@management.errorhandler(ApiError)
def render_api_error(error: ApiError) -> Response:
    return error.response()


@management.errorhandler(HTTPException)
def render_http_error(error: HTTPException) -> Response:
    status = error.code or 400
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return ApiError(413, f"Payload content length greater than maximum allowed: {limit}").response()
    if status == 400:
        return ApiError(400, "Invalid request payload JSON format", "invalid_body").response()
    return ApiError(status, STATUS_NAMES.get(status, error.name)).response()


@management.app_errorhandler(404)
@management.app_errorhandler(405)
def render_unrouted(error: HTTPException) -> ResponseReturnValue:
    """A path under /api/v2 that matched no rule at all (e.g. ``//users``): JSON, throttled like
    the rest. Any other path keeps Flask's own answer."""
    if not (request.path == "/api/v2" or request.path.startswith("/api/v2/")):
        return error
    refused = take_rate_limit_token()
    response = refused if isinstance(refused, Response) else ApiError(404, "Not Found").response()
    return add_rate_limit_headers(response)


@management.errorhandler(Exception)
def render_unexpected(error: Exception) -> Response:
    # A bug, not bad input: still Auth0's shape, never werkzeug's HTML page.
    current_app.logger.exception("management API error")
    return ApiError(500, "Internal Server Error").response()


# -- who is calling ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    """The bearer of a verified Management API access token."""

    sub: str
    azp: str | None
    scopes: frozenset[str]
    issuer: str

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def token_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWT, or ValueError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWT")
    raw = parts[0] + "=" * (-len(parts[0]) % 4)
    header = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header


def authenticate() -> Caller:
    """Check the bearer token as Auth0 does: an RS256 JWT signed by this tenant, not expired,
    from this issuer, for the Management API audience. An ID token (aud = a client id) fails the
    audience check: Auth0 no longer accepts ID tokens as bearer."""
    ctx = tenant()
    header = request.headers.get("Authorization")
    if not header:
        unauthorized("Missing authentication")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        unauthorized("Bad HTTP authentication header format")
    try:
        if token_header(token).get("alg") != "RS256":
            unauthorized("Invalid token")
        claims = ctx.keys.decode(token)
    except BadSignatureError:
        unauthorized("Invalid signature received for JSON Web Token validation")
    except (JoseError, ValueError, UnicodeError, RecursionError):
        unauthorized("Invalid token")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        unauthorized("Expired token received for JSON Web Token validation")
    if claims.get("iss") != ctx.issuer:
        unauthorized("Invalid token")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if ctx.management_audience not in audiences:
        unauthorized(f"Bad audience: {' '.join(str(a) for a in audiences)}")
    sub = claims.get("sub")
    scope = claims.get("scope", "")
    if not isinstance(sub, str) or not sub or not isinstance(scope, str):
        unauthorized("Invalid token")
    azp = claims.get("azp")
    return Caller(sub=sub, azp=azp if isinstance(azp, str) else None,
                  scopes=frozenset(scope.split()), issuer=ctx.issuer)


def authorize(operation: str, *, any_user: tuple[str, ...], own_user: tuple[str, ...] = (),
              target: str | None = None) -> Caller:
    """The caller, if one of ``any_user`` scopes is held, or one of ``own_user`` and ``target``
    is the caller's own ``sub``. 403 otherwise, with Auth0's messages."""
    caller = authenticate()
    if any(caller.may(s) for s in any_user):
        return caller
    if any(caller.may(s) for s in own_user):
        if target is not None and target != caller.sub:
            raise ApiError(403, NOT_ME)
        return caller
    raise ApiError(403, SCOPE_MESSAGES[operation], "insufficient_scope")


# -- request parsing --------------------------------------------------------------------------------

def path_segments() -> list[str]:
    """The segments after ``/api/v2/``, percent-decoded one by one from the raw URI, so that an
    encoded ``/`` stays inside its segment. Invalid UTF-8 is a 400, not a 500."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        path_bytes = urlsplit(raw).path.encode("latin-1", "replace")
    else:  # a WSGI server that keeps no raw URI: werkzeug's decoded path is the best there is
        path_bytes = request.path.encode("utf-8")
    prefix = b"/api/v2/"
    if not path_bytes.startswith(prefix):
        raise ApiError(404, "Not Found")
    try:
        return [unquote_to_bytes(seg).decode("utf-8") for seg in path_bytes[len(prefix):].split(b"/")]
    except UnicodeDecodeError:
        raise ApiError(400, "Path validation error: the path is not valid UTF-8.", "invalid_uri") from None


def read_body(*, form_allowed: bool = True) -> dict[str, Any]:
    """The JSON (or form-encoded, as the OAS allows) body as a dict; Auth0's errors otherwise."""
    mimetype = request.mimetype
    data = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if mimetype == "application/json" or (not mimetype and data):
        if not data.strip():
            return {}
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ApiError(400, "Invalid request payload JSON format", "invalid_body") from None
        if not isinstance(body, dict):
            bad_body(f"Payload validation error: 'Expected type object but found type {json_type(body)}'.")
        return body
    if mimetype == "application/x-www-form-urlencoded" and form_allowed:
        return request.form.to_dict()
    if not mimetype and not data:
        return {}
    raise ApiError(415, "Unsupported Media Type")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check_body(body: dict[str, Any], schema: dict[str, tuple[str, ...]]) -> None:
    """Unknown properties and wrong types, with Auth0's payload validation messages."""
    unknown = [k for k in body if k not in schema]
    if unknown:
        bad_body(f"Payload validation error: 'Additional properties not allowed: {','.join(unknown)}'.")
    for name, value in body.items():
        allowed = schema[name]
        found = json_type(value)
        if found not in allowed and not (found == "integer" and "number" in allowed):
            bad_body(f"Payload validation error: 'Expected type {allowed[0]} but found type {found}'"
                     f" on property {name}.")


def query_int(name: str, default: int, *, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,9}", raw):
        bad_query("Query validation error: 'Expected type integer but found type string'"
                  f" on property {name}.")
    value = int(raw)
    if maximum is not None and value > maximum:
        bad_query(f"Query validation error: 'Value {value} is greater than maximum {maximum}'"
                  f" on property {name}.")
    return value


def query_bool(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in ("true", "false"):
        bad_query("Query validation error: 'Expected type boolean but found type string'"
                  f" on property {name}.")
    return raw == "true"


def project(doc: dict[str, Any], fields: str | None, include: bool) -> dict[str, Any]:
    """Auth0's ``fields``/``include_fields``: keep (or drop) the named top-level attributes."""
    if not fields:
        return doc
    names = {f.strip() for f in fields.split(",") if f.strip()}
    if include:
        return {k: v for k, v in doc.items() if k in names}
    return {k: v for k, v in doc.items() if k not in names}


# -- routes: users ----------------------------------------------------------------------------------

SORTABLE = {"created_at", "updated_at", "last_login", "logins_count", "email", "name", "nickname",
            "user_id", "username", "given_name", "family_name"}


@route("/users", methods=["GET"])
def list_users() -> Response:
    """``GET /users``: paging (the first 1000 results only), totals, sort, fields and ``q``."""
    authorize("get_users", any_user=("read:users",))
    engine = request.args.get("search_engine")
    if engine == "v1":
        bad_query("You are not allowed to use search_engine=v1.")
    if engine == "v2":
        bad_query("You are not allowed to use search_engine=v2. Use search_engine=v3 instead.")
    if engine not in (None, "", "v3"):
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
    if start + per_page > PAGING_CAP:  # Auth0 serves only the first 1000 results of a search
        bad_query("You can only page through the first 1000 records. "
                  "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.")
    try:
        total, users = tenant().store.search_users(query, sort=sort, offset=start, limit=per_page)
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
    """``POST /users`` on a database connection (Auth0 creates no social users through the API)."""
    from .seed import hash_password  # the one password hash of the sandbox

    authorize("post_users", any_user=("create:users",))
    body = read_body()
    check_body(body, CREATE_USER_SCHEMA)
    if "connection" not in body:
        bad_body("Payload validation error: 'Missing required property: connection'.")
    if "phone_number" in body or "phone_verified" in body:
        bad_body("Payload validation error: 'Additional properties not allowed: phone_number'.")
    store = tenant().store
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
    provider = connection["strategy"]
    with store.transaction() as db:
        if store.get_user_row(db, full_user_id(provider, short_id)) is not None or db.execute(
            "SELECT 1 FROM identities WHERE connection = ? AND"
            " lower(json_extract(profile_data, '$.email')) = ?", (connection["name"], email),
        ).fetchone() is not None:
            raise ApiError(409, "The user already exists.", "auth0_idp_error")
        user_id = store.insert_user(
            db, provider=provider, user_id=short_id, connection=connection["name"], is_social=False,
            profile=profile, created_at=now_iso(), password_hash=hash_password(body["password"]),
            user_metadata=body.get("user_metadata"), app_metadata=body.get("app_metadata"),
        )
        if body.get("blocked"):
            db.execute("UPDATE users SET blocked = 1 WHERE user_id = ?", (user_id,))
        if "name" not in body:  # the email stands in for the name, but not in profileData (recordings)
            db.execute("UPDATE identities SET profile_data = json_remove(profile_data, '$.name')"
                       " WHERE owner = ?", (user_id,))
        doc = store.user_document(db, user_id)
    return json_response(doc, 201)


@route("/users-by-email", methods=["GET"])
def users_by_email() -> Response:
    """``GET /users-by-email``: immediately consistent; the OAS calls the match case-sensitive."""
    authorize("users_by_email", any_user=("read:users",))
    email = request.args.get("email")
    if not email:
        bad_query("Query validation error: 'Missing required property: email'.")
    include_fields = query_bool("include_fields", True)
    users = tenant().store.users_by_email(email)
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
    authorize("get_user", any_user=("read:users", "read:user_idp_tokens"), own_user=("read:current_user",),
              target=user_id)
    include_fields = query_bool("include_fields", True)
    doc = tenant().store.get_user(user_id)
    if doc is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    return json_response(project(doc, request.args.get("fields"), include_fields))


def delete_user(user_id: str) -> Response:
    """204 whether or not the user existed, as the recordings show Auth0 doing."""
    authorize("delete_user", any_user=("delete:users",), own_user=("delete:current_user",), target=user_id)
    tenant().store.delete_user(user_id)
    return Response(status=204)


PATCH_SCHEMA: dict[str, tuple[str, ...]] = {
    "blocked": ("boolean",), "email_verified": ("boolean",), "email": ("string", "null"),
    "user_metadata": ("object",), "app_metadata": ("object",), "given_name": ("string", "null"),
    "family_name": ("string", "null"), "name": ("string", "null"), "nickname": ("string", "null"),
    "picture": ("string", "null"), "verify_email": ("boolean",), "password": ("string", "null"),
    "connection": ("string",), "client_id": ("string",), "username": ("string", "null"),
}


def patch_user(user_id: str) -> Response:
    """``PATCH /users/{id}``: root attributes replaced, metadata merged one level deep."""
    from .seed import hash_password

    caller = authorize("patch_user", any_user=("update:users", "update:users_app_metadata"),
                       own_user=("update:current_user_metadata",), target=user_id)
    body = read_body()
    check_body(body, PATCH_SCHEMA)
    if not caller.may("update:users"):
        allowed = {"app_metadata"} if caller.may("update:users_app_metadata") else set()
        if caller.may("update:current_user_metadata") and user_id == caller.sub:
            allowed.add("user_metadata")
        refused = sorted(set(body) - allowed)
        if refused:
            raise ApiError(403, "Some fields cannot be updated with the permissions granted by the bearer"
                                f" token scopes: {', '.join(refused)}.", "insufficient_scope")
    for a, b in (("password", "email"), ("password", "email_verified"), ("username", "email"),
                 ("username", "email_verified"), ("username", "password")):
        if a in body and b in body:
            bad_body(f"Cannot update {a} and {b} simultaneously.")
    store = tenant().store
    with store.read() as db:
        row = store.get_user_row(db, user_id)
        main = store.identities_of(db, user_id)[0] if row is not None else None
    if row is None or main is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    if "connection" in body and body["connection"] != main["connection"]:
        raise ApiError(400, "Connection is not supported for this operation.", "invalid_body")
    if main["is_social"] and ("email" in body or "password" in body or "username" in body):
        bad_body("Cannot update email for non-database user." if "email" in body
                 else "Connection is not supported for this operation.")
    for key in ("name", "nickname", "given_name", "family_name", "email"):
        value = body.get(key)
        if isinstance(value, str) and not value:
            bad_body("Payload validation error: 'String is too short (0 chars), minimum 1'"
                     f" on property {key}.")
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


# -- routes: link and unlink -----------------------------------------------------------------------

LINK_SCHEMA: dict[str, tuple[str, ...]] = {
    "provider": ("string",), "connection_id": ("string",), "user_id": ("string", "integer"),
    "link_with": ("string",),
}


def link_identity(primary_id: str) -> Response:
    """``POST /users/{id}/identities``: ``link_with`` (a secondary ID token) or
    ``provider``/``user_id``/``connection_id``. 201 with the primary's identities."""
    caller = authorize("identities", any_user=("update:users",),
                       own_user=("update:current_user_identities",), target=primary_id)
    body = read_body()
    check_body(body, LINK_SCHEMA)
    if not body:
        bad_body("Payload validation error: 'Too few properties defined (0), minimum 1'.")
    store = tenant().store
    if "link_with" in body:
        if len(body) > 1:
            bad_body("Payload validation error: 'link_with' must not be sent with "
                     f"{', '.join(sorted(k for k in body if k != 'link_with'))}.")
        provider, short_id = secondary_from_token(body["link_with"], caller)
        if full_user_id(provider, short_id) == primary_id:
            bad_body(LINK_MESSAGES["same"])
    else:
        if not caller.may("update:users"):
            # update:current_user_identities may link only with a second authenticated account.
            raise ApiError(403, "Insufficient scope; expected: update:users.", "insufficient_scope")
        provider, short_id = secondary_from_body(body)
    if store.get_user(primary_id) is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    try:
        identities = store.link(primary_id, provider, short_id)
    except LinkRefused as refused:
        raise link_error(refused.reason, "link_with" in body) from None
    return json_response(identities, 201)


def link_error(reason: str, by_token: bool) -> ApiError:
    if reason == "primary_missing":
        return ApiError(404, NOT_FOUND_USER, "inexistent_user")
    if reason == "already_linked":
        return ApiError(409, LINK_MESSAGES["already_linked"], "identity_conflict")
    if reason == "secondary_missing":
        if by_token:
            return ApiError(400, LINK_MESSAGES["secondary_missing"], "invalid_body")
        return ApiError(400, LINK_MESSAGES["inexistent"], "invalid_body")
    if reason == "same":
        return ApiError(400, LINK_MESSAGES["same"], "invalid_body")
    return ApiError(400, LINK_MESSAGES["unable"], "invalid_body")  # linked elsewhere, or has links


def secondary_from_body(body: dict[str, Any]) -> tuple[str, str]:
    """The secondary identity named by ``provider``/``user_id`` (full ``auth0|...`` id or short)."""
    for required in ("provider", "user_id"):
        if required not in body:
            bad_body(f"Payload validation error: 'Missing required property: {required}'.")
    provider = body["provider"]
    if provider not in PROVIDERS:
        bad_body(f"Payload validation error: 'Invalid value \"{provider[:60]}\" for enum'"
                 " on property provider.")
    user_id = str(body["user_id"])
    if not user_id:
        bad_body("Payload validation error: 'String is too short (0 chars), minimum 1' on property user_id.")
    store = tenant().store
    connection_id = body.get("connection_id")
    if connection_id is not None:
        if not CONNECTION_ID.fullmatch(connection_id):
            bad_body("Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$'"
                     " on property connection_id.")
        connection = store.connection_by_id(connection_id)
        if connection is None or connection["strategy"] != provider:
            bad_body(LINK_MESSAGES["not_configured"])
    elif not any(c["strategy"] == provider for c in store.connections()):
        bad_body(LINK_MESSAGES["not_configured"])
    candidates = [user_id]
    prefix, sep, rest = user_id.partition("|")
    if sep and prefix == provider and rest:
        candidates.insert(0, rest)  # the recording's form: the full "auth0|..." id
    for short_id in candidates:
        ident = store.find_identity(provider, short_id)
        if ident is not None:
            if connection_id is not None and ident["connection"] != connection["name"]:
                continue
            return provider, short_id
    bad_body(LINK_MESSAGES["needs_connection" if connection_id is None else "inexistent"])


def secondary_from_token(link_with: str, caller: Caller) -> tuple[str, str]:
    """Check the secondary account's ID token as Auth0 does; its ``sub`` names the secondary."""
    ctx = tenant()
    try:
        header = token_header(link_with)
    except (ValueError, UnicodeError, RecursionError):
        bad_body(LINK_MESSAGES["invalid_token"])
    if header.get("alg") != "RS256":
        bad_body(LINK_MESSAGES["alg"])
    try:
        claims = ctx.keys.decode(link_with)
    except (JoseError, ValueError, UnicodeError, RecursionError):
        bad_body(LINK_MESSAGES["invalid_token"])
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        bad_body(LINK_MESSAGES["invalid_token"])
    if claims.get("iss") != caller.issuer:
        bad_body(LINK_MESSAGES["issuer"])
    if "sub" not in claims:
        bad_body(LINK_MESSAGES["missing_sub"])
    sub = claims["sub"]
    if not isinstance(sub, str):
        bad_body(LINK_MESSAGES["invalid_sub"])
    try:
        provider, short_id = split_user_id(sub)
    except ValueError:
        bad_body(LINK_MESSAGES["invalid_sub"])
    aud = claims.get("aud")
    if not (isinstance(aud, str) or (isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud))):
        bad_body(LINK_MESSAGES["invalid_aud"])
    audiences = [aud] if isinstance(aud, str) else aud
    if caller.azp is None or caller.azp not in audiences:
        bad_body(LINK_MESSAGES["aud_azp"])
    return provider, short_id


def unlink_identity(primary_id: str, provider: str, short_id: str) -> Response:
    """``DELETE /users/{id}/identities/{provider}/{user_id}``: 200 with the remaining identities."""
    authorize("identities", any_user=("update:users",), own_user=("update:current_user_identities",),
              target=primary_id)
    if provider not in PROVIDERS:
        raise ApiError(400, f"Path validation error: 'Invalid value \"{provider[:60]}\" for enum' on"
                            " property provider (Identity provider name of the secondary linked account"
                            " (e.g. `google-oauth2`)).", "invalid_uri")
    try:
        identities = tenant().store.unlink(primary_id, provider, short_id)
    except LinkRefused as refused:
        if refused.reason == "main_identity":
            raise ApiError(400, LINK_MESSAGES["main_identity"], "operation_not_supported") from None
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user") from None
    return json_response(identities)


# -- routes: export jobs ----------------------------------------------------------------------------

EXPORT_SCHEMA: dict[str, tuple[str, ...]] = {
    "connection_id": ("string",), "format": ("string",), "limit": ("integer",), "fields": ("array",),
}


@route("/jobs/users-exports", methods=["POST"])
def create_export() -> Response:
    """``POST /jobs/users-exports``: a background job writing a gzipped file (NDJSON or CSV)."""
    authorize("post_export", any_user=("read:users",))
    body = read_body()
    check_body(body, EXPORT_SCHEMA)
    fmt = body.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        bad_body(f"Payload validation error: 'Invalid value \"{fmt[:20]}\" for enum' on property format.")
    limit = body.get("limit")
    if limit is not None and limit < 1:
        bad_body("Payload validation error: 'Value 0 is less than minimum 1' on property limit.")
    fields = body.get("fields")
    if fields is not None:
        for item in fields:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                bad_body("Payload validation error: 'Missing required property: name' on property fields.")
            extra = set(item) - {"name", "export_as"}
            if extra:
                bad_body(f"Payload validation error: 'Additional properties not allowed: {','.join(extra)}'.")
            if any(not isinstance(v, str) or len(v) > 100 for v in item.values()):
                bad_body("Payload validation error: 'Expected type string' on property fields.")
    store = tenant().store
    connection = None
    if "connection_id" in body:
        if not CONNECTION_ID.fullmatch(body["connection_id"]):
            bad_body("Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$'"
                     " on property connection_id.")
        connection = store.connection_by_id(body["connection_id"])
        if connection is None:
            raise ApiError(400, "The connection does not exist.", "inexistent_connection")
    job = {
        "id": "job_" + "".join(secrets.choice(ALPHANUMERIC) for _ in range(16)),
        "type": "users_export", "status": "pending", "format": fmt, "created_at": now_iso(),
        "connection_id": connection["id"] if connection else None, "fields": fields,
        "download_token": secrets.token_urlsafe(32), "limit": limit,
    }
    store.create_job(job)
    start_export(tenant(), job, connection["name"] if connection else None)
    out: dict[str, Any] = {"type": job["type"], "status": job["status"]}
    if connection:
        out["connection_id"] = connection["id"]
    # The OAS requires ``connection``: the connection's name, or "" when every user is exported.
    out.update(connection=connection["name"] if connection else "", format=fmt)
    if limit is not None:
        out["limit"] = limit
    if fields is not None:
        out["fields"] = fields
    out.update(created_at=job["created_at"], id=job["id"])
    return json_response(out)


@route("/jobs/<path:_rest>", methods=["GET"])
def get_job(_rest: str) -> Response:
    """``GET /jobs/{id}``: status, progress, and the download ``location`` once completed."""
    segments = path_segments()
    if len(segments) != 2 or not segments[1]:
        raise ApiError(404, "Not Found")
    authorize("get_job", any_user=("create:users", "read:users"))
    job = tenant().store.get_job(segments[1])
    if job is None:
        raise ApiError(404, "The job does not exist.", "inexistent_job")
    out: dict[str, Any] = {"type": job["type"], "status": job["status"], "created_at": job["created_at"],
                           "id": job["id"]}
    if job["connection_id"]:
        out["connection_id"] = job["connection_id"]
    out["format"] = job["format"]
    out["percentage_done"] = job["percentage_done"]
    out["time_left_seconds"] = job["time_left_seconds"] or 0
    if job["status"] == "completed":
        out["location"] = f"{tenant().base_url}/exports/{job['download_token']}.{job['format']}.gz"
    if job["status"] == "failed":
        out["status_details"] = "The export failed."
    return json_response(out)


# -- catch-all: unknown paths under /api/v2 answer JSON, never HTML ----------------------------------

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@route("/", methods=ALL_METHODS, strict_slashes=False)
@route("/<path:_rest>", methods=ALL_METHODS, strict_slashes=False)
def not_found(_rest: str = "") -> Response:
    raise ApiError(404, "Not Found")


# -- the export download: outside /api/v2 and without a bearer, like Auth0's signed URL --------------

def download_export(name: str) -> Response:
    """Serve a completed export; the unguessable token in the URL is the credential."""
    ctx = tenant()
    token, _, ext = name.partition(".")
    job = ctx.store.job_by_download_token(token) if token else None
    path = download_path(ctx, job) if job else None
    if job is None or path is None or ext != f"{job['format']}.gz":
        return ApiError(404, "Not Found").response()
    return send_file(path, mimetype="application/gzip", as_attachment=True,
                     download_name=f"{job['id']}.{job['format']}.gz")


@management.record_once
def _register_download(state: Any) -> None:
    # The route lives at the app's root (the blueprint's own prefix is /api/v2).
    state.app.add_url_rule("/exports/<name>", "management_export_download", download_export)
