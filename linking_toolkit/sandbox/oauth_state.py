"""The sandbox's OAuth state: authorization codes, device codes, refresh tokens, logins in progress.

Codes and tokens live in the store's tables (so a file database keeps them); a login in progress
(the page a person is on between /authorize and the redirect) lives in memory on the tenant.
Refresh tokens are stored only as a SHA-256 hash: a stolen database file yields no usable token.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .context import TenantContext

__all__ = [
    "AUTHORIZATION_CODE_SECONDS",
    "DEVICE_CODE_SECONDS",
    "DEVICE_POLL_INTERVAL",
    "LoginTransaction",
    "consume_authorization_code",
    "device_code_by_device",
    "device_code_by_user",
    "finish_device_code",
    "get_transaction",
    "issue_refresh_token",
    "new_device_code",
    "new_transaction",
    "refresh_token_row",
    "save_authorization_code",
    "user_row",
]

AUTHORIZATION_CODE_SECONDS = 600
DEVICE_CODE_SECONDS = 900  # Auth0's default; a test may set tenant.extras["device_code_seconds"]
DEVICE_POLL_INTERVAL = 5
TRANSACTION_SECONDS = 1800
# RFC 8628 §6.1: no vowels or look-alikes, so a user code never spells a word and reads unambiguously.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_row(tenant: TenantContext, user_id: str) -> dict[str, Any] | None:
    with tenant.store.read() as db:
        row = tenant.store.get_user_row(db, user_id)
    return dict(row) if row else None


# -- authorization codes ---------------------------------------------------------------------------

def save_authorization_code(tenant: TenantContext, params: dict[str, Any], user_id: str,
                            auth_time: int) -> str:
    code = secrets.token_urlsafe(32)
    with tenant.store.transaction() as db:
        db.execute(
            "INSERT INTO authorization_codes(code, client_id, redirect_uri, scope, audience, user_id,"
            " nonce, code_challenge, code_challenge_method, auth_time, expires_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (_hash(code), params["client_id"], params["redirect_uri"], params["scope"],
             params.get("audience"), user_id, params.get("nonce"), params.get("code_challenge"),
             params.get("code_challenge_method"), auth_time,
             int(time.time()) + AUTHORIZATION_CODE_SECONDS),
        )
    return code


def consume_authorization_code(tenant: TenantContext, code: str, client_id: str) -> dict[str, Any] | None:
    """The code's row, deleted in the same transaction: a code works once, even under a race."""
    with tenant.store.transaction() as db:
        row = db.execute("SELECT * FROM authorization_codes WHERE code = ?", (_hash(code),)).fetchone()
        if row is None:
            return None
        db.execute("DELETE FROM authorization_codes WHERE code = ?", (_hash(code),))
    if row["client_id"] != client_id or row["expires_at"] < time.time():
        return None
    return dict(row)


# -- device codes ------------------------------------------------------------------------------------

def _user_code() -> str:
    chars = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def new_device_code(tenant: TenantContext, *, client_id: str, scope: str,
                    audience: str | None) -> dict[str, Any]:
    lifetime = int(tenant.extras.get("device_code_seconds", DEVICE_CODE_SECONDS))
    interval = int(tenant.extras.get("device_poll_interval", DEVICE_POLL_INTERVAL))
    device_code = secrets.token_urlsafe(32)
    with tenant.store.transaction() as db:
        while True:
            user_code = _user_code()
            if db.execute("SELECT 1 FROM device_codes WHERE user_code = ?", (user_code,)).fetchone() is None:
                break
        db.execute(
            "INSERT INTO device_codes(device_code, user_code, client_id, scope, audience, interval,"
            " expires_at) VALUES (?,?,?,?,?,?,?)",
            (_hash(device_code), user_code, client_id, scope, audience, interval,
             int(time.time()) + lifetime),
        )
    return {"device_code": device_code, "user_code": user_code, "expires_in": lifetime,
            "interval": interval}


def device_code_by_device(tenant: TenantContext, device_code: str) -> dict[str, Any] | None:
    with tenant.store.read() as db:
        row = db.execute("SELECT * FROM device_codes WHERE device_code = ?", (_hash(device_code),)).fetchone()
    return dict(row) if row else None


def device_code_by_user(tenant: TenantContext, user_code: str) -> dict[str, Any] | None:
    """The pending, unexpired request for a user code typed by a person (case and dash forgiven)."""
    cleaned = "".join(c for c in user_code.upper() if c.isalnum())
    if len(cleaned) != 8:
        return None
    with tenant.store.read() as db:
        row = db.execute("SELECT * FROM device_codes WHERE user_code = ?",
                         (f"{cleaned[:4]}-{cleaned[4:]}",)).fetchone()
    if row is None or row["status"] != "pending" or row["expires_at"] < time.time():
        return None
    return dict(row)


def finish_device_code(tenant: TenantContext, user_code: str, user_id: str | None) -> bool:
    """Approve (``user_id``) or deny (``None``) a pending request; False if it is no longer pending."""
    with tenant.store.transaction() as db:
        cur = db.execute(
            "UPDATE device_codes SET status = ?, user_id = ?, auth_time = ? "
            "WHERE user_code = ? AND status = 'pending' AND expires_at >= ?",
            ("approved" if user_id else "denied", user_id, int(time.time()), user_code, int(time.time())),
        )
        return cur.rowcount == 1


def poll_device_code(tenant: TenantContext, device_code: str) -> tuple[str, dict[str, Any] | None]:
    """One poll, decided in one transaction: ``(outcome, row)`` where outcome is one of
    ``unknown``, ``expired``, ``slow_down``, ``pending``, ``denied``, ``approved``.

    An expired or finished code is deleted when reported, so ``expired_token`` is said once and a
    code yields tokens once.
    """
    now = time.time()
    with tenant.store.transaction() as db:
        row = db.execute("SELECT * FROM device_codes WHERE device_code = ?", (_hash(device_code),)).fetchone()
        if row is None:
            return "unknown", None
        key = (_hash(device_code),)
        if row["expires_at"] < now:
            db.execute("DELETE FROM device_codes WHERE device_code = ?", key)
            return "expired", dict(row)
        if row["status"] == "approved":
            db.execute("DELETE FROM device_codes WHERE device_code = ?", key)
            return "approved", dict(row)
        if row["status"] == "denied":
            db.execute("DELETE FROM device_codes WHERE device_code = ?", key)
            return "denied", dict(row)
        db.execute("UPDATE device_codes SET last_poll = ? WHERE device_code = ?", (now, key[0]))
        if row["last_poll"] is not None and now - row["last_poll"] < row["interval"]:
            return "slow_down", dict(row)
        return "pending", dict(row)


# -- refresh tokens ----------------------------------------------------------------------------------

def issue_refresh_token(tenant: TenantContext, *, client_id: str, user_id: str, scope: str,
                        audience: str | None, auth_time: int) -> str:
    token = "v1." + secrets.token_urlsafe(48)
    with tenant.store.transaction() as db:
        db.execute(
            "INSERT INTO refresh_tokens(token_hash, client_id, user_id, scope, audience, auth_time)"
            " VALUES (?,?,?,?,?,?)",
            (_hash(token), client_id, user_id, scope, audience, auth_time),
        )
    return token


def refresh_token_row(tenant: TenantContext, token: str) -> dict[str, Any] | None:
    with tenant.store.read() as db:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM refresh_tokens WHERE token_hash = ? AND revoked = 0", (_hash(token),)
        ).fetchone()
    return dict(row) if row else None


# -- logins in progress ------------------------------------------------------------------------------

@dataclass
class LoginTransaction:
    """A person between /authorize (or /activate) and the end of their login.

    ``csrf`` goes in every form's hidden field and in a cookie: a form posted from another site
    carries neither, so it cannot finish someone else's login.
    """

    id: str
    kind: str  # "authorize" | "device"
    params: dict[str, Any]
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    created: float = field(default_factory=time.time)
    done: bool = False


def _transactions(tenant: TenantContext) -> tuple[threading.Lock, dict[str, LoginTransaction]]:
    store = tenant.extras.setdefault("login_transactions", (threading.Lock(), {}))
    return store


def new_transaction(tenant: TenantContext, kind: str, params: dict[str, Any]) -> LoginTransaction:
    lock, table = _transactions(tenant)
    tx = LoginTransaction(id=secrets.token_urlsafe(18), kind=kind, params=params)
    with lock:
        now = time.time()
        for key in [k for k, v in table.items() if now - v.created > TRANSACTION_SECONDS]:
            del table[key]
        table[tx.id] = tx
    return tx


def get_transaction(tenant: TenantContext, tx_id: str | None) -> LoginTransaction | None:
    if not tx_id:
        return None
    lock, table = _transactions(tenant)
    with lock:
        tx = table.get(tx_id)
    if tx is None or tx.done or time.time() - tx.created > TRANSACTION_SECONDS:
        return None
    return tx


def close_transaction(tenant: TenantContext, tx: LoginTransaction) -> bool:
    """Mark a transaction finished; False if it already was (a form posted twice)."""
    lock, table = _transactions(tenant)
    with lock:
        if tx.done:
            return False
        tx.done = True
        table.pop(tx.id, None)
    return True
