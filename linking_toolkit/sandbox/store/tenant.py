"""What a tenant is configured with: settings, connections, clients and their grants, and the
accounts each simulated social provider knows."""

from __future__ import annotations

import json
import secrets
import sqlite3
from typing import Any

from .configuration import client_row
from .database import Database

__all__ = ["AUDIENCE_TABLES", "TenantTables", "new_grant_id"]

# The tables that name an API audience (it holds the port, which changes when a file reopens).
AUDIENCE_TABLES = ("client_grants", "refresh_tokens", "authorization_codes", "device_codes")


def new_grant_id() -> str:
    """An id of Auth0's shape for a client grant: ``cgr_`` and 16 letters and digits.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import new_grant_id
    >>> grant_id = new_grant_id()
    >>> grant_id.startswith('cgr_'), len(grant_id)
    (True, 20)
    """
    return "cgr_" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                            for _ in range(16))


def _connection(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row) | {"is_social": bool(row["is_social"])}


class TenantTables(Database):
    # -- settings ---------------------------------------------------------------------------------

    """The tenant's settings, connections and the clients' rows a login looks up.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> [connection['name'] for connection in store.connections()][:2]
    ['Username-Password-Authentication', 'google-oauth2']
    >>> store.client(demo.native_client_id)['name']
    'Notebook (native)'
    """
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.fetch_one("SELECT value FROM settings WHERE key = ?", (key,))
        return row["value"] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            self.write_setting(db, key, value)

    def write_setting(self, db: sqlite3.Connection, key: str, value: str) -> None:
        """``set_setting`` inside the caller's transaction."""
        db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, value))

    # -- connections and clients ------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        return [_connection(r) for r in self.fetch_all("SELECT * FROM connections ORDER BY rowid")]

    def connection_by_name(self, name: str) -> dict[str, Any] | None:
        row = self.fetch_one("SELECT * FROM connections WHERE name = ?", (name,))
        return _connection(row) if row else None

    def connection_by_id(self, con_id: str) -> dict[str, Any] | None:
        row = self.fetch_one("SELECT * FROM connections WHERE id = ?", (con_id,))
        return _connection(row) if row else None

    def client(self, client_id: str) -> dict[str, Any] | None:
        return client_row(self.fetch_one("SELECT * FROM clients WHERE client_id = ?", (client_id,)))

    def client_grant(self, client_id: str, audience: str) -> list[str] | None:
        """Scopes granted to a machine-to-machine client for an API, or None if not granted."""
        row = self.fetch_one("SELECT scope FROM client_grants WHERE client_id = ? AND audience = ?",
                             (client_id, audience))
        return row["scope"].split() if row else None

    def upstream_accounts(self, connection: str) -> list[dict[str, Any]]:
        rows = self.fetch_all("SELECT * FROM upstream_accounts WHERE connection = ? ORDER BY rowid",
                              (connection,))
        return [dict(r) | {"email_verified": bool(r["email_verified"])} for r in rows]

    # -- setting a tenant up (inside the caller's transaction) -------------------------------------

    def insert_connection(self, db: sqlite3.Connection, *, con_id: str, name: str, strategy: str,
                          is_social: bool) -> None:
        db.execute("INSERT INTO connections(id, name, strategy, is_social) VALUES (?,?,?,?)",
                   (con_id, name, strategy, int(is_social)))

    def insert_client(self, db: sqlite3.Connection, *, client_id: str, name: str, secret: str | None,
                      app_type: str, grant_types: list[str], redirect_uris: list[str]) -> None:
        """A client; ``secret`` None for a public (native) one."""
        db.execute(
            "INSERT INTO clients(client_id, name, client_secret, app_type, grant_types, redirect_uris)"
            " VALUES (?,?,?,?,?,?)",
            (client_id, name, secret, app_type, json.dumps(grant_types), json.dumps(redirect_uris)),
        )

    def insert_client_grant(self, db: sqlite3.Connection, *, client_id: str, audience: str,
                            scope: str) -> None:
        db.execute("INSERT INTO client_grants(client_id, audience, scope, id) VALUES (?, ?, ?, ?)",
                   (client_id, audience, scope, new_grant_id()))

    def insert_upstream_account(self, db: sqlite3.Connection, *, connection: str, sub: str,
                                profile: dict[str, Any]) -> None:
        """A person a simulated social provider knows (``profile``: email, email_verified, name,
        given_name, family_name, picture)."""
        db.execute(
            "INSERT INTO upstream_accounts(connection, sub, email, email_verified, name, given_name,"
            " family_name, picture) VALUES (?,?,?,?,?,?,?,?)",
            (connection, sub, profile["email"], int(bool(profile["email_verified"])), profile["name"],
             profile["given_name"], profile["family_name"], profile["picture"]),
        )

    def move_audience(self, client_id: str, audience: str) -> None:
        """Serve the API that ``client_id`` is granted at a new ``audience``: its grant, and the
        refresh tokens, codes and device codes issued for it, follow (one transaction)."""
        with self.transaction() as db:
            old = db.execute("SELECT audience FROM client_grants WHERE client_id = ?",
                             (client_id,)).fetchone()
            if old is None or old["audience"] == audience:
                return
            db.execute("UPDATE resource_servers SET identifier = ? WHERE identifier = ?",
                       (audience, old["audience"]))
            for table in AUDIENCE_TABLES:
                db.execute(f"UPDATE {table} SET audience = ? WHERE audience = ?",  # noqa: S608
                           (audience, old["audience"]))
