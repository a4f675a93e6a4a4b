"""The tenant's own settings through the Management API: applications, their grants, APIs, connections.

What ``python -m linking_toolkit doctor`` reads and ``--fix`` changes, in Auth0's shapes:
``/clients`` (``read:clients``, ``update:clients``), ``/client-grants`` (``read:client_grants``,
``create:client_grants``, ``update:client_grants``, ``delete:client_grants``), ``/resource-servers``
(``read:resource_servers``, ``update:resource_servers``) and ``/connections`` (``read:connections``,
``update:connections``).
Reads are retried like every GET; changes are not (a PATCH answers the new object: read it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import TenantError
from ._http import ManagementHTTP, path_id

__all__ = ["ApplicationSettings"]


class ApplicationSettings:
    """The methods of :class:`~linking_toolkit.management.ManagementClient` on the tenant's
    applications (clients), client grants, APIs (resource servers) and connections.

    Examples
    --------
    >>> with ManagementClient.from_client_credentials(tenant) as admin:      # doctest: +SKIP
    ...     native = admin.get_client(tenant.client_id)
    ...     grants = admin.client_grants(client_id=tenant.m2m_client_id)
    ...     names = [connection["name"] for connection in admin.connections()]
    """

    _api: ManagementHTTP

    # -- applications ----------------------------------------------------------------------------

    def get_client(self, client_id: str) -> dict[str, Any]:
        """``GET /clients/{id}``: an application's settings (``grant_types``, ``callbacks``...)."""
        return self._api.object("GET", f"/clients/{path_id(client_id)}", safe=True)

    def update_client(self, client_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /clients/{id}``: the fields in ``body`` replaced; returns the application."""
        return self._api.object("PATCH", f"/clients/{path_id(client_id)}", safe=False, json=dict(body))

    # -- client grants -----------------------------------------------------------------------------

    def client_grants(self, *, client_id: str | None = None,
                      audience: str | None = None) -> list[dict[str, Any]]:
        """``GET /client-grants``: the grants of ``client_id`` (for ``audience``), every page."""
        params: dict[str, str] = {}
        if client_id:
            params["client_id"] = client_id
        if audience:
            params["audience"] = audience
        return self._every_page("/client-grants", "client_grants", params)

    def create_client_grant(self, client_id: str, audience: str, scope: list[str]) -> dict[str, Any]:
        """``POST /client-grants``: let ``client_id`` ask ``audience`` for ``scope``."""
        return self._api.object("POST", "/client-grants", safe=False,
                                json={"client_id": client_id, "audience": audience, "scope": list(scope)})

    def update_client_grant(self, grant_id: str, scope: list[str]) -> dict[str, Any]:
        """``PATCH /client-grants/{id}``: the grant's scopes replaced by ``scope``."""
        return self._api.object("PATCH", f"/client-grants/{path_id(grant_id)}", safe=False,
                                json={"scope": list(scope)})

    def delete_client_grant(self, grant_id: str) -> None:
        """``DELETE /client-grants/{id}``."""
        self._api.call("DELETE", f"/client-grants/{path_id(grant_id)}", safe=False)

    # -- APIs and connections ----------------------------------------------------------------------

    def get_resource_server(self, id_or_audience: str) -> dict[str, Any]:
        """``GET /resource-servers/{id}``: an API by its id or its identifier (audience)."""
        return self._api.object("GET", f"/resource-servers/{path_id(id_or_audience)}", safe=True)

    def update_resource_server(self, id_or_audience: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /resource-servers/{id}`` (e.g. ``{"allow_offline_access": true}``)."""
        return self._api.object("PATCH", f"/resource-servers/{path_id(id_or_audience)}", safe=False,
                                json=dict(body))

    def connections(self) -> list[dict[str, Any]]:
        """``GET /connections``: every connection (Auth0 no longer lists their enabled clients)."""
        return self._every_page("/connections", "connections", {})

    def connection_clients(self, connection_id: str) -> list[str]:
        """``GET /connections/{id}/clients``: the ids of the applications the connection is enabled
        for, every checkpoint page (``from`` the ``next`` of the page before)."""
        out: list[str] = []
        params: dict[str, Any] = {"take": 100}
        while True:
            body = self._api.object("GET", f"/connections/{path_id(connection_id)}/clients", safe=True,
                                    params=params)
            clients = body.get("clients")
            if not isinstance(clients, list) or not all(isinstance(c, dict) for c in clients):
                raise TenantError("GET /connections/{id}/clients: the answer is not a list of clients")
            out.extend(str(c.get("client_id")) for c in clients)
            if not body.get("next") or not clients:
                return out
            params["from"] = body["next"]

    def set_connection_clients(self, connection_id: str, statuses: Mapping[str, bool]) -> None:
        """``PATCH /connections/{id}/clients``: enable (True) or disable (False) it for each client."""
        self._api.call("PATCH", f"/connections/{path_id(connection_id)}/clients", safe=False,
                       json=[{"client_id": c, "status": on} for c, on in statuses.items()])

    def _every_page(self, path: str, key: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a paged list (``include_totals``: ``{key: [...], "total": n}``; a tenant
        that answers a bare array gives it whole)."""
        out: list[dict[str, Any]] = []
        page = 0
        while True:
            body = self._api.call("GET", path, safe=True,
                                  params=params | {"per_page": 100, "page": page, "include_totals": "true"})
            items = body.get(key) if isinstance(body, dict) else body
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise TenantError(f"GET {path}: the tenant's answer is not a list of {key.replace('_', ' ')}")
            out.extend(items)
            total = body.get("total") if isinstance(body, dict) else None
            if not isinstance(total, int) or not items or len(out) >= total:
                return out
            page += 1
