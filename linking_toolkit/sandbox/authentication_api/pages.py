"""The sandbox's pages: /authorize and its login page, the simulated social providers, /activate.

A login in progress is a ``LoginTransaction``; every form carries its id and a CSRF token that
must also come back in a cookie set for that transaction, so another site cannot post a login.
Pages answer bad input with a 4xx page, never a 500 and never a redirect to an unchecked URL.

The login page lists the demo people of each database connection (as the simulated providers list
theirs), so a learner logs in by hand by choosing one; their passwords never leave the sandbox.

Behind a proxy that strips a path prefix (jupyter-server-proxy serves the sandbox at
``{server}/proxy/{port}/``), the pages still work: every form action and every redirect between
pages is relative to the page (``root``, below), so the browser keeps the prefix it came with.
Relative rather than werkzeug's ProxyFix: it trusts no header, works behind any proxy that strips
a prefix, and jupyter-server-proxy 4.x prepends its prefix to a Location that starts with ``/``,
so an absolute path already holding the prefix would get it twice. Only the cookie's path reads
``X-Forwarded-Prefix`` (which jupyter-server-proxy sends), so that on a hub the cookie does not go
to other users' servers. Redirects to the app's ``redirect_uri`` stay absolute.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any
from urllib.parse import quote

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, make_response, redirect, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from ..attempts import login_key
from ..browser_apps import origin_of
from ..context import LoginTransaction, TenantContext, current_tenant
from ..passwords import verify_password
from ..seed import DEMO_PEOPLE
from . import oauth_state as state
from .authserver import NOT_ENABLED, OAuthError, active_user, auth0_wording, known_audience, oauth_server
from .sessions import cookie_path, find_session, set_session_cookie, start_session
from .web_message import RESPONSE_MODES, authorization_response

__all__ = ["pages"]

pages = Blueprint("pages", __name__)

COOKIE_PREFIX = "sbx_"


def _root() -> str:
    """The sandbox's root relative to this page (``./``, ``../``...): the prefix of every link
    and redirect between pages, so that one under a proxy's prefix stays under it."""
    depth = request.path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


@pages.context_processor
def _page_values() -> dict[str, str]:
    return {"root": _root()}


def _page(template: str, status: int = 200, **values: Any) -> Response:
    response = make_response(render_template(template, **values), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"  # a login page in someone's iframe is clickjacking
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def _error_page(message: str, status: int = 400) -> Response:
    return _page("error.html", status, message=message)


def _with_cookie(response: Response, tx: LoginTransaction) -> Response:
    response.set_cookie(COOKIE_PREFIX + tx.id, tx.csrf, max_age=state.TRANSACTION_SECONDS,
                        httponly=True, samesite="Lax", path=cookie_path(),
                        secure=current_tenant().base_url.startswith("https://"))
    return response


def _posted_transaction() -> LoginTransaction | None:
    """The transaction a form names, if its CSRF token matches both the field and the cookie."""
    tx = state.get_transaction(current_tenant(), request.form.get("tx"))
    if tx is None:
        return None
    field = request.form.get("csrf", "")
    cookie = request.cookies.get(COOKIE_PREFIX + tx.id, "")
    if not (hmac.compare_digest(field.encode(), tx.csrf.encode())
            and hmac.compare_digest(cookie.encode(), tx.csrf.encode())):
        return None
    return tx


def _client_name(client_id: str) -> str:
    client = current_tenant().store.client(client_id)
    return client["name"] if client else client_id


@pages.errorhandler(RequestEntityTooLarge)
def form_too_large(error: RequestEntityTooLarge) -> Response:
    return _error_page("The form sent is too large.", 413)


# -- /authorize --------------------------------------------------------------------------------------

@pages.get("/authorize")
def authorize() -> Response:
    tenant = current_tenant()
    try:
        grant = oauth_server(current_app).get_consent_grant(end_user=None)
    except OAuth2Error as error:
        auth0_wording(error)
        if error.redirect_uri:  # the redirect URI was checked: the app hears of the error
            return redirect(add_params_to_uri(error.redirect_uri, error.get_body()), code=302)
        return _error_page(f"{error.error}: {error.description or 'invalid authorization request'}")
    except ValueError:  # authlib refuses to build an error whose text echoes non-ASCII input
        return _error_page("invalid_request: the request has invalid characters.")
    args = request.args
    redirect_uri = grant.redirect_uri
    response_mode = args.get("response_mode") or "query"
    if response_mode == "web_message" and origin_of(redirect_uri) not in grant.client.web_origins:
        # Never post a response to an origin the app has not allowed: a page, and nothing sent.
        return _error_page("invalid_request: the origin of redirect_uri is not in the application's "
                           "Allowed Web Origins, so no response is sent to it.")
    answer = {"redirect_uri": redirect_uri,
              "response_mode": response_mode if response_mode in RESPONSE_MODES else "query"}

    def fail(error: str, description: str) -> Response:
        params = [("error", error), ("error_description", description)]
        if args.get("state"):
            params.append(("state", args["state"]))
        return authorization_response(answer, params)

    if response_mode not in RESPONSE_MODES:
        return fail("invalid_request", f"Unsupported response_mode: {response_mode[:40]}")
    try:
        audience = known_audience(tenant, args.get("audience"))
    except OAuthError as error:
        return fail(error.error, error.description)
    connection = args.get("connection")
    client_id = grant.client.get_client_id()
    if connection and tenant.store.connection_by_name(connection) is None:
        return fail("invalid_request", "the connection was not found")
    if connection and not tenant.store.connection_enabled(connection, client_id):
        return fail("invalid_request", NOT_ENABLED)
    params = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": grant.request.scope or "",
        "state": args.get("state"),
        "nonce": args.get("nonce"),
        "audience": audience,
        "code_challenge": args.get("code_challenge"),
        "code_challenge_method": args.get("code_challenge_method") or None,
        "connection": connection,
        "response_mode": response_mode,
    }
    prompts = set((args.get("prompt") or "").split())
    max_age = args.get("max_age")
    if max_age is not None and not (max_age.isascii() and max_age.isdigit()):
        return fail("invalid_request", "max_age must be a number of seconds")
    found = find_session(tenant, request.cookies) if "login" not in prompts else None
    # OIDC Core 3.1.2.1: a session older than max_age must log in again (max_age=0: always).
    if found is not None and max_age is not None and time.time() - found[0].auth_time >= int(max_age):
        found = None
    if (found is not None and (not connection or connection == found[0].connection)
            and tenant.store.connection_enabled(found[0].connection, client_id)):
        session, owner = found
        try:
            active_user(tenant, owner)
        except OAuthError:  # blocked since: the session gives nothing
            pass
        else:  # Auth0's SSO: this browser logged in already, so a code at once, no page
            code = state.save_authorization_code(tenant, params, owner, session.auth_time)
            out = [("code", code)] + ([("state", params["state"])] if params["state"] else [])
            return authorization_response(params, out)
    if "none" in prompts:  # never a page: the app hears that a login is needed
        return fail("login_required", "Login required")
    tx = state.new_transaction(tenant, "authorize", params)
    return _with_cookie(_start_login(tx), tx)


def _start_login(tx: LoginTransaction) -> Response:
    """The connection chooser, or straight to the named connection (``connection=``)."""
    connection = tx.params.get("connection")
    if connection:
        found = current_tenant().store.connection_by_name(connection)
        if found and found["is_social"]:
            return redirect(f"{_root()}simulated/{quote(connection)}/authorize?tx={tx.id}", code=302)
    return redirect(f"{_root()}u/login?tx={tx.id}", code=302)


# -- the login page ----------------------------------------------------------------------------------

def _demo_people(connection: str) -> list[dict[str, Any]]:
    """The demo people who hold an account on this database connection, as the login page shows
    them (one query: a tenant with thousands of synthetic users lists only these)."""
    identities = current_tenant().store.database_identities_of(
        connection, [p["email"] for p in DEMO_PEOPLE if any(a[0] == connection for a in p["accounts"])])
    people = []
    for person in DEMO_PEOPLE:
        identity = identities.get(person["email"])
        if identity is not None:  # deleted through the Management API: no longer listed
            profile = json.loads(identity["profile_data"])
            people.append({"name": person["name"], "email": person["email"], "owner": identity["owner"],
                           "identity": (identity["provider"], identity["user_id"], connection),
                           "nickname": person["email"].split("@")[0],
                           "email_verified": bool(profile.get("email_verified"))})
    return people


def _login_page(tx: LoginTransaction, error: str | None = None, status: int = 200,
                email: str = "") -> Response:
    store = current_tenant().store
    client_id = tx.params["client_id"]
    connections = [c for c in store.connections() if store.connection_enabled(c["name"], client_id)]
    only = tx.params.get("connection")
    if only:
        connections = [c for c in connections if c["name"] == only]
    databases = [c for c in connections if not c["is_social"]]
    return _page("login.html", status, tx=tx, error=error, email=email,
                 client_name=_client_name(tx.params["client_id"]), databases=databases,
                 people={c["name"]: _demo_people(c["name"]) for c in databases},
                 socials=[c for c in connections if c["is_social"]])


@pages.get("/u/login")
def login_page() -> Response:
    tx = state.get_transaction(current_tenant(), request.args.get("tx"))
    if tx is None:
        return _error_page("This login has expired or was already completed. Start again from the "
                           "application.")
    return _login_page(tx)


@pages.post("/u/login")
def login_submit() -> Response:
    tenant = current_tenant()
    tx = _posted_transaction()
    if tx is None:
        return _error_page("This form has expired or did not come from this page. Start again.", 403)
    if request.form.get("action") == "cancel":
        return _finish(tx, None)
    connection = tenant.store.connection_by_name(request.form.get("connection", ""))
    if connection is None or connection["is_social"]:
        return _login_page(tx, "Choose one of the connections shown.", 400)
    if request.form.get("action") == "choose":  # a demo person, chosen from the list: no password
        chosen = request.form.get("email", "")
        person = next((p for p in _demo_people(connection["name"]) if p["email"] == chosen), None)
        if person is None:
            return _login_page(tx, "Choose one of the people listed.", 400)
        return _finish(tx, person["owner"], person["identity"])
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    if not email or not password:
        return _login_page(tx, "Enter your email and password.", 400, email=email)
    attempt = login_key(connection["name"], email, request.remote_addr)
    if tenant.failed_logins.blocked(attempt):
        return _login_page(tx, "Too many wrong passwords for this account from this computer: it is "
                               "blocked for a while. Choose your name from the list, or try again later.",
                           429, email=email)
    identity = tenant.store.database_identity_by_email(connection["name"], email)
    if identity is None or not verify_password(password, identity["password_hash"]):
        tenant.failed_logins.failed(attempt)
        return _login_page(tx, "Wrong email or password.", 401, email=email)
    tenant.failed_logins.succeeded(attempt)
    return _finish(tx, identity["owner"],
                   (identity["provider"], identity["user_id"], connection["name"]))


# -- simulated social providers -------------------------------------------------------------------

def _social(connection: str) -> dict[str, Any] | None:
    found = current_tenant().store.connection_by_name(connection)
    return found if found and found["is_social"] else None


@pages.get("/simulated/<connection>/authorize")
def upstream_page(connection: str) -> Response:
    tenant = current_tenant()
    if _social(connection) is None:
        return _error_page(f"There is no social connection named {connection!r}.", 404)
    tx = state.get_transaction(tenant, request.args.get("tx"))
    if tx is None:
        return _error_page("This login has expired or was already completed. Start again.")
    return _page("upstream.html", tx=tx, connection=connection,
                 accounts=tenant.store.upstream_accounts(connection),
                 client_name=_client_name(tx.params["client_id"]))


@pages.post("/simulated/<connection>/authorize")
def upstream_submit(connection: str) -> Response:
    tenant = current_tenant()
    if _social(connection) is None:
        return _error_page(f"There is no social connection named {connection!r}.", 404)
    tx = _posted_transaction()
    if tx is None:
        return _error_page("This form has expired or did not come from this page. Start again.", 403)
    if request.form.get("action") == "deny":
        return _finish(tx, None)
    sub = request.form.get("sub", "")
    account = next((a for a in tenant.store.upstream_accounts(connection) if a["sub"] == sub), None)
    if account is None:
        return _error_page("Choose one of the accounts listed.", 400)
    return _finish(tx, _social_user(tenant, connection, account), (connection, account["sub"], connection))


def _social_user(tenant: TenantContext, connection: str, account: dict[str, Any]) -> str:
    """The user who logs in with this upstream account (created on first login, see
    ``Store.social_user``)."""
    profile = {
        "email": account["email"],
        "email_verified": account["email_verified"],
        "name": account["name"],
        "given_name": account["given_name"],
        "family_name": account["family_name"],
        "picture": account["picture"],
        "nickname": (account["email"] or "").split("@")[0] or None,
    }
    return tenant.store.social_user(connection, account["sub"], profile)


# -- the end of a login ------------------------------------------------------------------------------

def _finish(tx: LoginTransaction, user_id: str | None,
            identity: tuple[str, str, str] | None = None) -> Response:
    """Approve (a user) or deny (None): a redirect to the app (or the web_message page), or the
    device flow's last page. An approval starts an SSO session for ``identity`` (provider, its
    user id, connection): the identity that logged in."""
    tenant = current_tenant()
    if identity is not None and not tenant.store.connection_enabled(identity[2], tx.params["client_id"]):
        return _error_page(f"invalid_request: {NOT_ENABLED}")  # a form posted for a connection not shown
    if not state.close_transaction(tenant, tx):
        return _error_page("This login was already completed.")
    response: Response
    if user_id is not None:
        try:
            active_user(tenant, user_id)
        except OAuthError as error:  # blocked (or deleted meanwhile): no code, no approval
            response = _error_page("Your account is blocked. Contact the administrator."
                                   if error.error == "unauthorized" else error.description, 401)
            response.delete_cookie(COOKIE_PREFIX + tx.id, path=cookie_path())
            return response
        tenant.store.record_login(user_id)
    if tx.kind == "device":
        finished = state.finish_device_code(tenant, tx.params["user_code"], user_id)
        if not finished:
            response = _error_page("This device code has expired. Start again on your device.")
        else:
            response = _page("device_done.html", approved=user_id is not None)
    else:
        params = tx.params
        if user_id is None:
            out = [("error", "access_denied"), ("error_description", "User did not authorize the request")]
        else:
            code = state.save_authorization_code(tenant, params, user_id, int(time.time()))
            out = [("code", code)]
        if params.get("state"):
            out.append(("state", params["state"]))
        response = authorization_response(params, out)
    response.delete_cookie(COOKIE_PREFIX + tx.id, path=cookie_path())
    if user_id is not None and identity is not None and tx.kind == "authorize":
        # The browser of an authorization request keeps a session (a device login's does not:
        # the tokens are for the device, and the browser may be anyone's that is at hand).
        provider, identity_id, connection = identity
        session = start_session(tenant, provider=provider, identity_id=identity_id, connection=connection)
        set_session_cookie(response, tenant, session, cookie_path())
    return response


# -- /activate (device flow) ---------------------------------------------------------------------

@pages.get("/activate")
def activate_page() -> Response:
    return _page("activate.html", user_code=request.args.get("user_code", "")[:20], error=None)


@pages.post("/activate")
def activate_submit() -> Response:
    tenant = current_tenant()
    typed = request.form.get("user_code", "")[:20]
    address = request.remote_addr or ""
    if tenant.failed_user_codes.blocked(address):  # RFC 8628 §5.1: user codes must not be guessable
        return _page("activate.html", 429, user_code=typed,
                     error="Too many wrong codes from this computer. Wait a few minutes, then type the "
                           "code your device shows.")
    row = state.device_code_by_user(tenant, typed)
    if row is None:
        tenant.failed_user_codes.failed(address)
        return _page("activate.html", 400, user_code=typed,
                     error="That code is invalid or has expired. Check your device and try again.")
    tenant.failed_user_codes.succeeded(address)
    tx = state.new_transaction(tenant, "device", {"user_code": row["user_code"],
                                                  "client_id": row["client_id"], "scope": row["scope"]})
    response = _page("confirm.html", tx=tx, user_code=row["user_code"],
                     client_name=_client_name(row["client_id"]), scopes=row["scope"].split())
    return _with_cookie(response, tx)


@pages.post("/activate/confirm")
def activate_confirm() -> Response:
    tx = _posted_transaction()
    if tx is None or tx.kind != "device":
        return _error_page("This form has expired or did not come from this page. Start again.", 403)
    if request.form.get("action") == "deny":
        return _finish(tx, None)
    return redirect(f"{_root()}u/login?tx={tx.id}", code=303)
