"""The tenant's configuration as the Management API reads and changes it: clients' settings, client
grants, resource servers (APIs) and the clients each connection is enabled for.

Rows come out in the columns' own terms (``redirect_uris`` is Auth0's ``callbacks``); the routes in
``management_api/configuration.py`` give them Auth0's shapes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .database import Database

__all__ = ["CLIENT_JSON_COLUMNS", "ClientGrantExists", "ConfigurationTables", "client_row"]

# The client columns that hold JSON (lists, or the refresh_token object).
CLIENT_JSON_COLUMNS = ("grant_types", "redirect_uris", "allowed_logout_urls", "web_origins",
                       "allowed_origins", "refresh_token")
_CLIENT_COLUMNS = (*CLIENT_JSON_COLUMNS, "name", "app_type", "oidc_conformant", "description")
_SERVER_COLUMNS = ("name", "allow_offline_access", "skip_consent", "token_lifetime", "scopes")


class ClientGrantExists(Exception):
    """The client already has a grant for that API.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.store import ClientGrantExists
    >>> grant = store.client_grants()[0]
    >>> try:
    ...     store.create_client_grant('cgr_x', client_id=grant['client_id'], audience=grant['audience'],
    ...                               scope=['read:users'])
    ... except ClientGrantExists as refused:
    ...     print(type(refused).__name__)
    ClientGrantExists
    """


def client_row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    """A clients row with its JSON columns read and its flags as booleans.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.store.configuration import client_row
    >>> row = store.fetch_one('SELECT * FROM clients WHERE client_id = ?', (demo.native_client_id,))
    >>> client_row(row)['name'], client_row(None)
    ('Notebook (native)', None)
    """
    if row is None:
        return None
    out = dict(row)
    for column in CLIENT_JSON_COLUMNS:
        if column in out and out[column] is not None:
            out[column] = json.loads(out[column])
    if "oidc_conformant" in out:
        out["oidc_conformant"] = bool(out["oidc_conformant"])
    return out


def _grant(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "client_id": row["client_id"], "audience": row["audience"],
            "scope": row["scope"].split()}


def _server(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for flag in ("is_system", "allow_offline_access", "skip_consent"):
        out[flag] = bool(out[flag])
    out["scopes"] = json.loads(out["scopes"])
    return out


class ConfigurationTables(Database):
    # -- clients ----------------------------------------------------------------------------------

    """What the Management API reads and changes of the tenant's configuration: clients, client
    grants, resource servers.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> sorted(client['name'] for client in store.clients())
    ['Account linking (single-page app)', 'Audit (machine to machine)', 'Notebook (native)']
    >>> [server['identifier'] for server in store.resource_servers()]
    ['https://127.0.0.1:5000/api/v2/']
    """
    def clients(self) -> list[dict[str, Any]]:
        return [c for c in (client_row(r) for r in self.fetch_all("SELECT * FROM clients ORDER BY rowid"))
                if c is not None]

    def update_client(self, client_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Replace the given settings (column names, already checked); the row after, or None."""
        unknown = set(changes) - set(_CLIENT_COLUMNS)
        if unknown:
            raise ValueError(f"not client settings: {sorted(unknown)}")
        values = {k: json.dumps(v) if k in CLIENT_JSON_COLUMNS and v is not None else
                  int(v) if isinstance(v, bool) else v for k, v in changes.items()}
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM clients WHERE client_id = ?", (client_id,)).fetchone() is None:
                return None
            for column, value in values.items():  # column names come from _CLIENT_COLUMNS above
                db.execute(f"UPDATE clients SET {column} = ? WHERE client_id = ?",  # noqa: S608
                           (value, client_id))
            return client_row(db.execute("SELECT * FROM clients WHERE client_id = ?",
                                         (client_id,)).fetchone())

    # -- client grants ----------------------------------------------------------------------------

    def client_grants(self, *, client_id: str | None = None,
                      audience: str | None = None) -> list[dict[str, Any]]:
        rows = self.fetch_all(
            "SELECT * FROM client_grants WHERE (? IS NULL OR client_id = ?) AND (? IS NULL OR audience = ?)"
            " ORDER BY rowid", (client_id, client_id, audience, audience))
        return [_grant(r) for r in rows]

    def client_grant_by_id(self, grant_id: str) -> dict[str, Any] | None:
        row = self.fetch_one("SELECT * FROM client_grants WHERE id = ?", (grant_id,))
        return _grant(row) if row else None

    def create_client_grant(self, grant_id: str, *, client_id: str, audience: str,
                            scope: list[str]) -> dict[str, Any]:
        """A new grant; ClientGrantExists if the client has one for ``audience`` already."""
        with self.transaction() as db:
            taken = db.execute("SELECT 1 FROM client_grants WHERE client_id = ? AND audience = ?",
                               (client_id, audience)).fetchone()
            if taken is not None:
                raise ClientGrantExists(client_id)
            db.execute("INSERT INTO client_grants(client_id, audience, scope, id) VALUES (?, ?, ?, ?)",
                       (client_id, audience, " ".join(scope), grant_id))
        return {"id": grant_id, "client_id": client_id, "audience": audience, "scope": list(scope)}

    def update_client_grant(self, grant_id: str, scope: list[str]) -> dict[str, Any] | None:
        with self.transaction() as db:
            cur = db.execute("UPDATE client_grants SET scope = ? WHERE id = ?", (" ".join(scope), grant_id))
            if cur.rowcount != 1:
                return None
            return _grant(db.execute("SELECT * FROM client_grants WHERE id = ?", (grant_id,)).fetchone())

    # -- resource servers -------------------------------------------------------------------------

    def resource_servers(self) -> list[dict[str, Any]]:
        return [_server(r) for r in self.fetch_all("SELECT * FROM resource_servers ORDER BY rowid")]

    def resource_server(self, id_or_identifier: str) -> dict[str, Any] | None:
        """By its id or, as Auth0 allows, by its identifier."""
        row = self.fetch_one("SELECT * FROM resource_servers WHERE id = ? OR identifier = ?",
                             (id_or_identifier, id_or_identifier))
        return _server(row) if row else None

    def update_resource_server(self, server_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        unknown = set(changes) - set(_SERVER_COLUMNS)
        if unknown:
            raise ValueError(f"not resource server settings: {sorted(unknown)}")
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM resource_servers WHERE id = ?", (server_id,)).fetchone() is None:
                return None
            for column, value in changes.items():  # column names come from _SERVER_COLUMNS above
                stored = json.dumps(value) if column == "scopes" else int(value) if isinstance(value, bool) \
                    else value
                db.execute(f"UPDATE resource_servers SET {column} = ? WHERE id = ?",  # noqa: S608
                           (stored, server_id))
            return _server(db.execute("SELECT * FROM resource_servers WHERE id = ?",
                                      (server_id,)).fetchone())

    def insert_resource_server(self, db: sqlite3.Connection, *, server_id: str, name: str, identifier: str,
                               is_system: bool, allow_offline_access: bool, token_lifetime: int,
                               scopes: list[dict[str, str]]) -> None:
        """A resource server, inside the caller's transaction (nothing if its identifier exists)."""
        db.execute(
            "INSERT OR IGNORE INTO resource_servers(id, name, identifier, is_system, allow_offline_access,"
            " token_lifetime, scopes) VALUES (?,?,?,?,?,?,?)",
            (server_id, name, identifier, int(is_system), int(allow_offline_access), token_lifetime,
             json.dumps(scopes)),
        )

    def allows_offline_access(self, identifier: str) -> bool:
        """Whether the API at ``identifier`` lets refresh tokens be issued for it (True for one the
        tenant does not list: userinfo, which is no resource server)."""
        row = self.fetch_one("SELECT allow_offline_access FROM resource_servers WHERE identifier = ?",
                             (identifier,))
        return row is None or bool(row["allow_offline_access"])

    # -- the clients of a connection ----------------------------------------------------------------

    def enabled_clients(self, connection_id: str) -> list[str]:
        rows = self.fetch_all("SELECT client_id FROM connection_clients WHERE connection_id = ?"
                              " ORDER BY rowid", (connection_id,))
        return [r["client_id"] for r in rows]

    def connection_enabled(self, connection_name: str, client_id: str) -> bool:
        row = self.fetch_one(
            "SELECT 1 FROM connection_clients JOIN connections ON connections.id = connection_id"
            " WHERE connections.name = ? AND client_id = ?", (connection_name, client_id))
        return row is not None

    def set_enabled_clients(self, connection_id: str, statuses: list[tuple[str, bool]]) -> None:
        """Enable (True) or disable (False) the connection for each client, in one transaction."""
        with self.transaction() as db:
            for client_id, enabled in statuses:
                if enabled:
                    db.execute("INSERT OR IGNORE INTO connection_clients(connection_id, client_id)"
                               " VALUES (?, ?)", (connection_id, client_id))
                else:
                    db.execute("DELETE FROM connection_clients WHERE connection_id = ? AND client_id = ?",
                               (connection_id, client_id))

    def enable_every_connection(self, db: sqlite3.Connection) -> None:
        """Every connection enabled for every client (a new tenant's default, as Auth0's for the
        clients that exist when a connection is made), inside the caller's transaction."""
        db.execute("INSERT OR IGNORE INTO connection_clients(connection_id, client_id)"
                   " SELECT connections.id, clients.client_id FROM connections, clients")
