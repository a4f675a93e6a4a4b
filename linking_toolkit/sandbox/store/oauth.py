"""Authorization codes, device codes and refresh tokens: the rows behind the OAuth grants.

Codes and tokens arrive here already hashed (``authentication_api/oauth_state.py`` hashes them):
the tables never hold one that could be used as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .database import Database, as_dict

__all__ = ["OAuthTables"]


class OAuthTables(Database):
    # -- authorization codes ------------------------------------------------------------------------

    """Authorization codes, device codes and refresh tokens, each stored by its hash.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> store.grant_revoked('a-grant-never-revoked')
    False
    """
    def insert_authorization_code(self, code_hash: str, *, client_id: str, redirect_uri: str, scope: str,
                                  audience: str | None, user_id: str, nonce: str | None,
                                  code_challenge: str | None, code_challenge_method: str | None,
                                  auth_time: int, expires_at: int, grant_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO authorization_codes(code, client_id, redirect_uri, scope, audience, user_id,"
                " nonce, code_challenge, code_challenge_method, auth_time, expires_at, grant_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (code_hash, client_id, redirect_uri, scope, audience, user_id, nonce, code_challenge,
                 code_challenge_method, auth_time, expires_at, grant_id),
            )

    def take_authorization_code(self, code_hash: str, now: int, revoke_until: int) -> dict[str, Any] | None:
        """The code's row, marked used in the same transaction: a code works once, even under a race.

        A code presented again revokes what its first use issued (RFC 6749 §4.1.2, RFC 9700 §4.2.1):
        the refresh tokens of its grant are deleted and the grant's access tokens are refused from now
        on (until ``revoke_until``, when they expire anyway); None is returned."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM authorization_codes WHERE code = ?", (code_hash,)).fetchone()
            if row is None:
                return None
            if row["used_at"] is not None:
                if row["grant_id"]:
                    db.execute("DELETE FROM refresh_tokens WHERE family = ?", (row["grant_id"],))
                    db.execute("INSERT OR IGNORE INTO revoked_grants(grant_id, expires_at) VALUES (?, ?)",
                               (row["grant_id"], revoke_until))
                return None
            db.execute("UPDATE authorization_codes SET used_at = ? WHERE code = ?", (now, code_hash))
            # Used codes are kept for their lifetime only: an old one can no longer be replayed anyway.
            db.execute("DELETE FROM authorization_codes WHERE used_at IS NOT NULL AND expires_at < ?", (now,))
            db.execute("DELETE FROM revoked_grants WHERE expires_at < ?", (now,))
        return as_dict(row)

    def grant_revoked(self, grant_id: str) -> bool:
        return self.fetch_one("SELECT 1 FROM revoked_grants WHERE grant_id = ?", (grant_id,)) is not None

    # -- device codes -----------------------------------------------------------------------------

    def insert_device_code(self, device_hash: str, new_user_code: Callable[[], str], *, client_id: str,
                           scope: str, audience: str | None, interval: int, expires_at: int) -> str:
        """A pending device code; its user code is drawn from ``new_user_code`` until one is free.
        Returns that user code."""
        with self.transaction() as db:
            while True:
                user_code = new_user_code()
                taken = db.execute("SELECT 1 FROM device_codes WHERE user_code = ?", (user_code,))
                if taken.fetchone() is None:
                    break
            db.execute(
                "INSERT INTO device_codes(device_code, user_code, client_id, scope, audience, interval,"
                " expires_at) VALUES (?,?,?,?,?,?,?)",
                (device_hash, user_code, client_id, scope, audience, interval, expires_at),
            )
        return user_code

    def device_code_by_user_code(self, user_code: str) -> dict[str, Any] | None:
        return as_dict(self.fetch_one("SELECT * FROM device_codes WHERE user_code = ?", (user_code,)))

    def finish_device_code(self, user_code: str, user_id: str | None, now: int) -> bool:
        """Approve (``user_id``) or deny (``None``) a pending, unexpired request; False if it is not."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE device_codes SET status = ?, user_id = ?, auth_time = ? "
                "WHERE user_code = ? AND status = 'pending' AND expires_at >= ?",
                ("approved" if user_id else "denied", user_id, now, user_code, now),
            )
            return cur.rowcount == 1

    def poll_device_code(self, device_hash: str, now: float) -> tuple[str, dict[str, Any] | None]:
        """One poll, decided in one transaction: ``(outcome, row)`` where outcome is one of
        ``unknown``, ``expired``, ``slow_down``, ``pending``, ``denied``, ``approved``.

        An expired or finished code is deleted when reported, so ``expired_token`` is said once and a
        code yields tokens once.
        """
        with self.transaction() as db:
            row = db.execute("SELECT * FROM device_codes WHERE device_code = ?", (device_hash,)).fetchone()
            if row is None:
                return "unknown", None
            if row["expires_at"] < now:
                outcome = "expired"
            elif row["status"] in ("approved", "denied"):
                outcome = row["status"]
            else:
                db.execute("UPDATE device_codes SET last_poll = ? WHERE device_code = ?", (now, device_hash))
                too_soon = row["last_poll"] is not None and now - row["last_poll"] < row["interval"]
                return ("slow_down" if too_soon else "pending"), dict(row)
            db.execute("DELETE FROM device_codes WHERE device_code = ?", (device_hash,))
            return outcome, dict(row)

    # -- refresh tokens ---------------------------------------------------------------------------

    def insert_refresh_token(self, token_hash: str, *, family: str, client_id: str, user_id: str,
                             scope: str, audience: str | None, auth_time: int, expires_at: int) -> None:
        """The first token of a new family (a login that granted ``offline_access``)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO refresh_tokens(token_hash, client_id, user_id, scope, audience, auth_time,"
                " family, expires_at) VALUES (?,?,?,?,?,?,?,?)",
                (token_hash, client_id, user_id, scope, audience, auth_time, family, expires_at),
            )

    def use_refresh_token(self, token_hash: str, now: int,
                          new_hash: str | None = None) -> tuple[str, dict[str, Any] | None]:
        """Check, and with ``new_hash`` use, a refresh token, in one transaction: ``(outcome, row)``:

        - ``valid``: it is its family's newest; with ``new_hash`` it is now used and ``new_hash``,
          of the same family, is the newest (rotation);
        - ``reused``: it had been used already, so the whole family is deleted (reuse detection:
          whoever holds a copy, thief or owner, gets nothing more from that login);
        - ``expired``: past the family's absolute lifetime (the family is deleted too);
        - ``unknown``: no such token (never issued, or its family was revoked).

        Two requests racing with one token: one rotates it, the other finds it used.
        """
        with self.transaction() as db:
            row = db.execute("SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,)).fetchone()
            if row is None:
                return "unknown", None
            if row["used_at"] is not None or (row["expires_at"] is not None and row["expires_at"] < now):
                db.execute("DELETE FROM refresh_tokens WHERE family = ?", (row["family"],))
                return ("reused" if row["used_at"] is not None else "expired"), dict(row)
            if new_hash is not None:
                db.execute("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?", (now, token_hash))
                db.execute(
                    "INSERT INTO refresh_tokens(token_hash, client_id, user_id, scope, audience, auth_time,"
                    " family, expires_at) VALUES (?,?,?,?,?,?,?,?)",
                    (new_hash, row["client_id"], row["user_id"], row["scope"], row["audience"],
                     row["auth_time"], row["family"], row["expires_at"]),
                )
            return "valid", dict(row)
