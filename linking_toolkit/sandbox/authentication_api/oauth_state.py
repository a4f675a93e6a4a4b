"""The sandbox's OAuth state: authorization codes, device codes, refresh tokens, logins in progress.

Refresh tokens rotate, as Auth0's do with rotation on: each use returns a new token of the same
family and retires the one used; a retired token presented again revokes its whole family.

Codes and tokens are made here and kept in the store's tables (so a file database keeps them) only
as a SHA-256 hash: a stolen database file yields no usable code or token. A login in progress (the
page a person is on between /authorize and the redirect) lives in memory on the tenant.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from ..context import LoginTransaction, TenantContext
from .tokens import ACCESS_TOKEN_SECONDS

__all__ = [
    "AUTHORIZATION_CODE_SECONDS",
    "REFRESH_TOKEN_SECONDS",
    "TRANSACTION_SECONDS",
    "check_refresh_token",
    "close_transaction",
    "consume_authorization_code",
    "device_code_by_user",
    "finish_device_code",
    "get_transaction",
    "grant_of",
    "grant_revoked",
    "issue_refresh_token",
    "new_device_code",
    "new_transaction",
    "poll_device_code",
    "rotate_refresh_token",
    "save_authorization_code",
]

AUTHORIZATION_CODE_SECONDS = 600
TRANSACTION_SECONDS = 1800
# Auth0's default absolute lifetime of rotating refresh tokens (30 days), counted from the login.
REFRESH_TOKEN_SECONDS = 2_592_000
# RFC 8628 §6.1: no vowels or look-alikes, so a user code never spells a word and reads unambiguously.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- authorization codes ---------------------------------------------------------------------------

def save_authorization_code(tenant: TenantContext, params: dict[str, Any], user_id: str,
                            auth_time: int) -> str:
    """Store a new authorization code for ``user_id`` with the request's ``params``; returns the code.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> params = {'client_id': sandbox.client_id, 'scope': 'openid',  # doctest: +SKIP
    ...           'redirect_uri': 'http://127.0.0.1/callback'}
    >>> code = oauth_state.save_authorization_code(tenant, params, ada, auth_time=0)    # doctest: +SKIP
    >>> oauth_state.consume_authorization_code(tenant, code,  # doctest: +SKIP
    ...                                        sandbox.client_id)['user_id'] == ada
    True
    """
    code = secrets.token_urlsafe(32)
    tenant.store.insert_authorization_code(
        _hash(code), client_id=params["client_id"], redirect_uri=params["redirect_uri"],
        scope=params["scope"], audience=params.get("audience"), user_id=user_id,
        nonce=params.get("nonce"), code_challenge=params.get("code_challenge"),
        code_challenge_method=params.get("code_challenge_method"), auth_time=auth_time,
        expires_at=int(time.time()) + AUTHORIZATION_CODE_SECONDS, grant_id=secrets.token_hex(16))
    return code


def consume_authorization_code(tenant: TenantContext, code: str, client_id: str) -> dict[str, Any] | None:
    """The code's row if it was issued to ``client_id`` and is unexpired; read once, even under a race.
    A replayed code revokes every token its first use issued (``Store.take_authorization_code``).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> print(oauth_state.consume_authorization_code(tenant, 'no-such-code',  # doctest: +SKIP
    ...       sandbox.client_id))
    None
    """
    now = int(time.time())
    row = tenant.store.take_authorization_code(_hash(code), now, now + ACCESS_TOKEN_SECONDS)
    if row is None or row["client_id"] != client_id or row["expires_at"] < time.time():
        return None
    return row


def grant_of(claims: dict[str, Any]) -> str | None:
    """The grant an access token was issued under (its ``jti`` is ``<grant_id>.<random>``), if any.

    Examples
    --------
    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> oauth_state.grant_of({'jti': 'gr_abc.8f3k2'}), oauth_state.grant_of({'jti': 'random'})
    ('gr_abc', None)
    """
    jti = claims.get("jti")
    return jti.split(".", 1)[0] if isinstance(jti, str) and "." in jti else None


def grant_revoked(tenant: TenantContext, claims: dict[str, Any]) -> bool:
    """Whether an access token belongs to a grant revoked by a replayed code.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> oauth_state.grant_revoked(tenant, {'jti': 'gr_abc.8f3k2'})    # doctest: +SKIP
    False
    """
    grant = grant_of(claims)
    return grant is not None and tenant.store.grant_revoked(grant)


# -- device codes ------------------------------------------------------------------------------------

def _user_code() -> str:
    chars = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def new_device_code(tenant: TenantContext, *, client_id: str, scope: str,
                    audience: str | None) -> dict[str, Any]:
    """A device code and its user code for ``client_id``, stored by the device code's hash:
    the body of ``POST /oauth/device/code``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> request = oauth_state.new_device_code(tenant, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                                       scope='openid', audience=None)
    >>> sorted(request)    # doctest: +SKIP
    ['device_code', 'expires_in', 'interval', 'user_code']
    """
    lifetime, interval = tenant.device_code_seconds, tenant.device_poll_interval
    device_code = secrets.token_urlsafe(32)
    user_code = tenant.store.insert_device_code(
        _hash(device_code), _user_code, client_id=client_id, scope=scope, audience=audience,
        interval=interval, expires_at=int(time.time()) + lifetime)
    return {"device_code": device_code, "user_code": user_code, "expires_in": lifetime,
            "interval": interval}


def device_code_by_user(tenant: TenantContext, user_code: str) -> dict[str, Any] | None:
    """The pending, unexpired request for a user code typed by a person (case and dash forgiven).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> request = oauth_state.new_device_code(tenant, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                                       scope='openid', audience=None)
    >>> oauth_state.device_code_by_user(tenant,  # doctest: +SKIP
    ...                                 request['user_code'].lower())['client_id'] == sandbox.client_id
    True
    """
    cleaned = "".join(c for c in user_code.upper() if c.isalnum())
    if len(cleaned) != 8:
        return None
    row = tenant.store.device_code_by_user_code(f"{cleaned[:4]}-{cleaned[4:]}")
    if row is None or row["status"] != "pending" or row["expires_at"] < time.time():
        return None
    return row


def finish_device_code(tenant: TenantContext, user_code: str, user_id: str | None) -> bool:
    """Approve (``user_id``) or deny (``None``) a pending request; False if it is no longer pending.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> request = oauth_state.new_device_code(tenant, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                                       scope='openid', audience=None)
    >>> oauth_state.finish_device_code(tenant, request['user_code'], ada)    # doctest: +SKIP
    True
    >>> oauth_state.poll_device_code(tenant, request['device_code'])[0]    # doctest: +SKIP
    'approved'
    """
    return tenant.store.finish_device_code(user_code, user_id, int(time.time()))


def poll_device_code(tenant: TenantContext, device_code: str) -> tuple[str, dict[str, Any] | None]:
    """One poll, decided in one transaction (see ``Store.poll_device_code``).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> request = oauth_state.new_device_code(tenant, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                                       scope='openid', audience=None)
    >>> oauth_state.poll_device_code(tenant, request['device_code'])[0]    # doctest: +SKIP
    'pending'
    """
    return tenant.store.poll_device_code(_hash(device_code), time.time())


# -- refresh tokens ----------------------------------------------------------------------------------

def _new_refresh_token() -> str:
    return "v1." + secrets.token_urlsafe(48)


def issue_refresh_token(tenant: TenantContext, *, client_id: str, user_id: str, scope: str,
                        audience: str | None, auth_time: int, family: str | None = None) -> str:
    """The first refresh token of a new family (``family``: the grant of the code it comes from):
    every token rotated from it belongs to it.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> token = oauth_state.issue_refresh_token(tenant, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                                         user_id=ada,
    ...                                          scope='openid offline_access', audience=None, auth_time=0)
    >>> oauth_state.check_refresh_token(tenant, token)[0]    # doctest: +SKIP
    'valid'
    """
    token = _new_refresh_token()
    tenant.store.insert_refresh_token(_hash(token), family=family or secrets.token_hex(16),
                                      client_id=client_id,
                                      user_id=user_id, scope=scope, audience=audience, auth_time=auth_time,
                                      expires_at=int(time.time()) + REFRESH_TOKEN_SECONDS)
    return token


def check_refresh_token(tenant: TenantContext, token: str) -> tuple[str, dict[str, Any] | None]:
    """``(outcome, row)``: ``valid``, or ``reused`` / ``expired`` (the family is revoked) or
    ``unknown`` (see ``Store.use_refresh_token``).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> oauth_state.check_refresh_token(tenant, 'not-a-refresh-token')    # doctest: +SKIP
    ('unknown', None)
    """
    return tenant.store.use_refresh_token(_hash(token), int(time.time()))


def rotate_refresh_token(tenant: TenantContext, token: str) -> tuple[str, str | None]:
    """Use ``token`` and return ``(outcome, its successor)``: the successor (same family) when the
    outcome is ``valid``, else None (and a reused or expired token's family is revoked).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> token = oauth_state.issue_refresh_token(tenant, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                                         user_id=ada,
    ...                                          scope='openid offline_access', audience=None, auth_time=0)
    >>> outcome, successor = oauth_state.rotate_refresh_token(tenant, token)    # doctest: +SKIP
    >>> outcome, oauth_state.rotate_refresh_token(tenant, token)[0]    # doctest: +SKIP
    ('valid', 'reused')
    """
    successor = _new_refresh_token()
    outcome, _row = tenant.store.use_refresh_token(_hash(token), int(time.time()), _hash(successor))
    return outcome, successor if outcome == "valid" else None


# -- logins in progress ------------------------------------------------------------------------------

def new_transaction(tenant: TenantContext, kind: str, params: dict[str, Any]) -> LoginTransaction:
    """Start a login transaction of ``kind`` (``authorize`` or ``device``) for the checked ``params``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> tx = oauth_state.new_transaction(tenant, 'authorize',  # doctest: +SKIP
    ...                                  {'client_id': sandbox.client_id})
    >>> tx.kind, tx.done    # doctest: +SKIP
    ('authorize', False)
    """
    tx = LoginTransaction(id=secrets.token_urlsafe(18), kind=kind, params=params)
    with tenant.logins_lock:
        now = time.time()
        for key in [k for k, v in tenant.logins.items() if now - v.created > TRANSACTION_SECONDS]:
            del tenant.logins[key]
        tenant.logins[tx.id] = tx
    return tx


def get_transaction(tenant: TenantContext, tx_id: str | None) -> LoginTransaction | None:
    """The login transaction ``tx_id`` names, if it is known and not finished.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> tx = oauth_state.new_transaction(tenant, 'authorize',  # doctest: +SKIP
    ...                                  {'client_id': sandbox.client_id})
    >>> oauth_state.get_transaction(tenant, tx.id) is tx  # doctest: +SKIP
    True
    >>> print(oauth_state.get_transaction(tenant, None))  # doctest: +SKIP
    None
    (True, None)
    """
    if not tx_id:
        return None
    with tenant.logins_lock:
        tx = tenant.logins.get(tx_id)
    if tx is None or tx.done or time.time() - tx.created > TRANSACTION_SECONDS:
        return None
    return tx


def close_transaction(tenant: TenantContext, tx: LoginTransaction) -> bool:
    """Mark a transaction finished; False if it already was (a form posted twice).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import oauth_state
    >>> tx = oauth_state.new_transaction(tenant, 'authorize',  # doctest: +SKIP
    ...                                  {'client_id': sandbox.client_id})
    >>> oauth_state.close_transaction(tenant, tx), oauth_state.close_transaction(tenant, tx)  # doctest: +SKIP
    (True, False)
    """
    with tenant.logins_lock:
        if tx.done:
            return False
        tx.done = True
        tenant.logins.pop(tx.id, None)
    return True
