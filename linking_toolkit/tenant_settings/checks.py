"""What the toolkit needs of a tenant's settings, read through the Management API, one row each.

A free Auth0 tenant's defaults are not what the toolkit needs, and Auth0 names each missing setting
by its symptom (``unauthorized_client``, ``Service not enabled within domain``, ``Insufficient
scope``, a refresh token that never comes). :func:`diagnose` reads the settings the toolkit uses
(its Native app, its machine-to-machine app and that app's grant, the Management API, the
connections; the single-page app of ``examples/spa-linking`` when it is named) and gives one
:class:`Finding` per setting: what it is now, what it must be, where it lives in the dashboard, and
the change ``--fix`` would make. A read the machine-to-machine app may not make becomes a row
"cannot check: needs read:clients", never a failure of the whole check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from ..errors import Auth0Error, Forbidden
from ..login_flows import PASTE_REDIRECT_URI
from ..login_flows.grants import DEVICE_GRANT
from ..management import ManagementClient
from ..tenant import Tenant

__all__ = [
    "FEATURES",
    "FRAME_COLUMNS",
    "SPA_URL",
    "Finding",
    "Fix",
    "Kind",
    "Reading",
    "diagnose",
    "findings_frame",
    "read_settings",
]

Kind = Literal["client", "client_grant", "resource_server", "connection"]

FEATURES = ("device login", "browser login", "token cache", "linking", "audit by export", "the SPA example")
FRAME_COLUMNS = ["feature", "setting", "ok", "now", "must be", "where in the Auth0 dashboard"]
# Where examples/spa-linking is served (its README): Auth0's SPA quickstarts use this origin too.
SPA_URL = "http://127.0.0.1:3000"
_APPS = "Applications > Applications"
_MGMT_API = "Applications > APIs > Auth0 Management API"


@dataclass(frozen=True)
class Fix:
    """How ``--fix`` makes a row right: one field of one of the toolkit's own objects, changed by
    ``change(value_now)``. ``id`` is the client id, the client grant's id (``""``: none yet, one is
    created for ``client_id`` and ``audience``) or the API's id.

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.checks import Fix
    >>> fix = Fix("client", "abc123", "grant_types", lambda now: [*(now or []), "refresh_token"])
    >>> fix.change(["authorization_code"])
    ['authorization_code', 'refresh_token']
    """

    kind: Kind
    id: str
    field: str
    change: Callable[[Any], Any] = field(repr=False, compare=False)
    client_id: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class Finding:
    """One setting: ``ok`` is ``"✓"``, ``"✗"``, ``"?"`` (cannot check) or ``"-"`` (not asked for).

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.checks import Finding
    >>> row = Finding("device login", "Device Code grant", "✗", "off", "on", "Applications > ...")
    >>> row.ok, row.fix is None
    ('✗', True)
    """

    feature: str
    setting: str
    ok: str
    now: str
    must: str
    where: str
    fix: Fix | None = None


@dataclass
class Reading:
    """What was read of the tenant; for each object, the scope that was missing when it could not be.

    Examples
    --------
    >>> from linking_toolkit.tenant import Tenant
    >>> tenant = Tenant(domain="example.eu.auth0.com", issuer="https://example.eu.auth0.com/",
    ...                 base_url="https://example.eu.auth0.com",
    ...                 management_audience="https://example.eu.auth0.com/api/v2/", client_id="abc123")
    >>> from linking_toolkit.tenant_settings.checks import Reading
    >>> reading = Reading(tenant, native={"client_id": "abc123", "app_type": "native",
    ...                                   "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]})
    >>> print(reading.m2m)                                  # not read: no machine-to-machine app
    None
    """

    tenant: Tenant
    native: dict[str, Any] | None = None
    m2m: dict[str, Any] | None = None
    spa: dict[str, Any] | None = None
    spa_client_id: str | None = None
    grant: dict[str, Any] | None = None  # the machine-to-machine app's grant on the Management API
    api: dict[str, Any] | None = None  # the Management API (a resource server)
    connections: list[dict[str, Any]] | None = None
    cannot: dict[str, str] = field(default_factory=dict)  # "native", "grant"... -> why not

    def value(self, kind: Kind, object_id: str, name: str) -> Any:
        """A field as read, for the fix planned on it (a grant not created yet has no scope)."""
        if kind == "client":
            found = next((c for c in (self.native, self.m2m, self.spa)
                          if c is not None and c.get("client_id") == object_id), None)
        elif kind == "connection":  # whether it is enabled for the Native app
            found = next((c for c in self.connections or [] if c.get("id") == object_id), None)
            return None if found is None else self.tenant.client_id in (found.get("enabled_clients") or [])
        else:
            found = self.grant if kind == "client_grant" else self.api
        return None if found is None else found.get(name)


def _read(reading: Reading, key: str, scope: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Forbidden:
        reading.cannot[key] = f"cannot check: needs {scope}"
    except Auth0Error as error:
        reading.cannot[key] = f"cannot check: {error.message[:120]}"
    return None


def read_settings(tenant: Tenant, admin: ManagementClient | None,
                  spa_client_id: str | None = None) -> Reading:
    """Everything the checks look at, each read on its own (one refused read spoils only its rows).

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.checks import diagnose, read_settings
    >>> reading = read_settings(tenant, admin)              # doctest: +SKIP
    >>> findings = diagnose(reading)
    """
    reading = Reading(tenant, spa_client_id=spa_client_id)
    if admin is None:
        why = "cannot check: needs the machine-to-machine app's credentials (AUTH0_CLIENT_SECRET)"
        reading.cannot = dict.fromkeys(("native", "m2m", "spa", "grant", "api", "connections"), why)
        return reading
    reading.native = _read(reading, "native", "read:clients", lambda: admin.get_client(tenant.client_id))
    if tenant.m2m_client_id:
        m2m_id = tenant.m2m_client_id
        reading.m2m = _read(reading, "m2m", "read:clients", lambda: admin.get_client(m2m_id))
        grants = _read(reading, "grant", "read:client_grants", lambda: admin.client_grants(
            client_id=m2m_id, audience=tenant.management_audience))
        if grants is not None:
            reading.grant = next((g for g in grants if g.get("client_id") == m2m_id
                                  and g.get("audience") == tenant.management_audience), {})
    if spa_client_id:
        reading.spa = _read(reading, "spa", "read:clients", lambda: admin.get_client(spa_client_id))
    reading.api = _read(reading, "api", "read:resource_servers",
                        lambda: admin.get_resource_server(tenant.management_audience))
    reading.connections = _read(reading, "connections", "read:connections", lambda: [
        c | {"enabled_clients": c["enabled_clients"] if isinstance(c.get("enabled_clients"), list)
             else admin.connection_clients(str(c["id"]))} for c in admin.connections()])
    return reading


# -- the rows ----------------------------------------------------------------------------------


def _on(value: bool) -> str:
    return "on" if value else "off"


def _listed(values: object) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) and values else "(none)"


def _adding(item: str) -> Callable[[Any], Any]:
    return lambda now: [*(now if isinstance(now, list) else []), *([] if isinstance(now, list)
                                                                   and item in now else [item])]


def _row(feature: str, setting: str, good: bool, now: str, must: str, where: str,
         fix: Fix | None = None) -> Finding:
    return Finding(feature, setting, "✓" if good else "✗", now, must, where, None if good else fix)


def _cannot(feature: str, setting: str, must: str, where: str, why: str) -> Finding:
    return Finding(feature, setting, "?", why, must, where)


def _grant_type_row(feature: str, app: Mapping[str, Any] | None, why: str | None, grant: str,
                    label: str) -> Finding:
    name = str(app.get("name")) if app else "(the Native app)"
    where = f"{_APPS} > {name} > Settings > Advanced Settings > Grant Types > {label}"
    if app is None:
        return _cannot(feature, f"{label} grant", "on", where, why or "cannot check")
    granted = grant in (app.get("grant_types") or [])
    return _row(feature, f"{label} grant", granted, _on(granted), "on", where,
                Fix("client", str(app["client_id"]), "grant_types", _adding(grant)))


def _native_rows(r: Reading) -> list[Finding]:
    app, why = r.native, r.cannot.get("native")
    name = str(app.get("name")) if app else "(the Native app)"
    kind_where = f"{_APPS} > {name} > Settings > Application Properties > Application Type"
    rows = [_cannot("device login", "application type", "Native", kind_where, why or "") if app is None
            else _row("device login", "application type", app.get("app_type") == "native",
                      str(app.get("app_type")), "native", kind_where),
            _grant_type_row("device login", app, why, DEVICE_GRANT, "Device Code")]
    rows += _connection_rows(r, name)
    callbacks_where = f"{_APPS} > {name} > Settings > Application URIs > Allowed Callback URLs"
    rows.append(_grant_type_row("browser login", app, why, "authorization_code", "Authorization Code"))
    if app is None:
        rows.append(_cannot("browser login", "Allowed Callback URLs", PASTE_REDIRECT_URI, callbacks_where,
                            why or ""))
    else:
        callbacks = app.get("callbacks") or []
        rows.append(_row("browser login", "Allowed Callback URLs", PASTE_REDIRECT_URI in callbacks,
                         _listed(callbacks), f"includes {PASTE_REDIRECT_URI} (any port)", callbacks_where,
                         Fix("client", str(app["client_id"]), "callbacks", _adding(PASTE_REDIRECT_URI))))
    rows.append(_grant_type_row("token cache", app, why, "refresh_token", "Refresh Token"))
    rotation_where = f"{_APPS} > {name} > Settings > Refresh Token Rotation > Allow Refresh Token Rotation"
    if app is None:
        rows.append(_cannot("token cache", "Refresh Token Rotation", "on", rotation_where, why or ""))
    else:
        settings = app.get("refresh_token") if isinstance(app.get("refresh_token"), dict) else {}
        rotating = settings.get("rotation_type") == "rotating"
        rows.append(_row("token cache", "Refresh Token Rotation", rotating, _on(rotating), "on",
                         rotation_where, Fix("client", str(app["client_id"]), "refresh_token", _rotating)))
    return rows


def _rotating(now: Any) -> dict[str, Any]:
    """Rotation on; Auth0 rotates only expiring refresh tokens, so those become expiring too."""
    settings = dict(now) if isinstance(now, dict) else {}
    settings["rotation_type"] = "rotating"
    if settings.get("expiration_type") != "expiring":
        settings["expiration_type"] = "expiring"
    return settings


def _connection_rows(r: Reading, app_name: str) -> list[Finding]:
    where = f"{_APPS} > {app_name} > Connections"
    wanted = list(r.tenant.connections)
    if r.connections is None:
        why = r.cannot.get("connections", "cannot check")
        return [_cannot("linking" if i else "device login", f"connection {name}", "enabled", where, why)
                for i, name in enumerate(wanted or ["(any)"])]
    enabled = [str(c.get("name")) for c in r.connections
               if r.tenant.client_id in (c.get("enabled_clients") or [])]
    if not wanted:  # a real tenant names none: one is enough to log in
        return [_row("device login", "connections enabled", bool(enabled), _listed(enabled),
                     "at least one", where)]
    ids = {str(c.get("name")): str(c.get("id")) for c in r.connections}
    return [_row("linking" if i else "device login", f"connection {name}", name in enabled,
                 "enabled" if name in enabled else "not enabled" if name in ids else "no such connection",
                 "enabled", where, Fix("connection", ids[name], "enabled", lambda _now: True)
                 if name in ids else None) for i, name in enumerate(wanted)]


def _m2m_rows(r: Reading) -> list[Finding]:
    m2m_name = str(r.m2m.get("name")) if r.m2m else "(the machine-to-machine app)"
    where = f"{_MGMT_API} > Machine To Machine Applications > {m2m_name} > Permissions"
    rows = []
    for feature, scope in (("linking", "update:users"), ("audit by export", "read:users")):
        setting = f"machine-to-machine app may {scope}"
        if not r.tenant.m2m_client_id:
            rows.append(_cannot(feature, setting, "granted", where, r.cannot.get(
                "grant", "cannot check: no machine-to-machine app (AUTH0_CLIENT_SECRET)")))
        elif r.grant is None:
            rows.append(_cannot(feature, setting, "granted", where, r.cannot.get("grant", "cannot check")))
        else:
            scopes = r.grant.get("scope") or []
            fix = Fix("client_grant", str(r.grant.get("id") or ""), "scope", _adding(scope),
                      client_id=r.tenant.m2m_client_id, audience=r.tenant.management_audience)
            rows.append(_row(feature, setting, scope in scopes, "granted" if scope in scopes else
                             ("no grant on the Management API" if not r.grant else "not granted"),
                             "granted", where, fix))
    return rows


def _api_rows(r: Reading) -> list[Finding]:
    where = f"{_MGMT_API} > Settings > Access Settings > Allow Offline Access"
    if r.api is None:
        return [_cannot("token cache", "Management API allows offline access", "on", where,
                        r.cannot.get("api", "cannot check"))]
    offline = r.api.get("allow_offline_access") is True
    api_id = r.tenant.management_audience  # its identifier: Auth0 takes it for the id, and it is readable
    return [_row("token cache", "Management API allows offline access", offline, _on(offline), "on", where,
                 Fix("resource_server", api_id, "allow_offline_access", lambda _now: True))]


def _spa_rows(r: Reading) -> list[Finding]:
    if not r.spa_client_id:
        return [Finding("the SPA example", "the single-page app", "-",
                        "not named", "its client id, to check it", "doctor(tenant, spa_client_id=...) "
                        "or --spa-client-id")]
    app, why = r.spa, r.cannot.get("spa")
    name = str(app.get("name")) if app else "(the single-page app)"
    rows = []
    for setting, key in (("Allowed Callback URLs", "callbacks"), ("Allowed Logout URLs",
                         "allowed_logout_urls"), ("Allowed Web Origins", "web_origins")):
        where = f"{_APPS} > {name} > Settings > Application URIs > {setting}"
        if app is None:
            rows.append(_cannot("the SPA example", setting, f"includes {SPA_URL}", where, why or ""))
            continue
        values = app.get(key) or []
        rows.append(_row("the SPA example", setting, SPA_URL in values, _listed(values),
                         f"includes {SPA_URL}", where,
                         Fix("client", str(app["client_id"]), key, _adding(SPA_URL))))
    return rows


def diagnose(reading: Reading) -> list[Finding]:
    """Every setting the toolkit's features need, grouped by feature, in :data:`FEATURES` order.

    Examples
    --------
    >>> from linking_toolkit.tenant import Tenant
    >>> tenant = Tenant(domain="example.eu.auth0.com", issuer="https://example.eu.auth0.com/",
    ...                 base_url="https://example.eu.auth0.com",
    ...                 management_audience="https://example.eu.auth0.com/api/v2/", client_id="abc123")
    >>> from linking_toolkit.tenant_settings.checks import Reading, diagnose
    >>> reading = Reading(tenant, native={"client_id": "abc123", "app_type": "native",
    ...                                   "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]})
    >>> [(row.setting, row.ok) for row in diagnose(reading)][:3]
    [('application type', '✓'), ('Device Code grant', '✓'), ('connection (any)', '?')]
    """
    rows = _native_rows(reading) + _m2m_rows(reading) + _api_rows(reading) + _spa_rows(reading)
    return sorted(rows, key=lambda f: FEATURES.index(f.feature))


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    """The findings as the table ``doctor`` shows (its ``attrs["ready"]``: every row ✓ or -).

    Examples
    --------
    >>> from linking_toolkit.tenant import Tenant
    >>> tenant = Tenant(domain="example.eu.auth0.com", issuer="https://example.eu.auth0.com/",
    ...                 base_url="https://example.eu.auth0.com",
    ...                 management_audience="https://example.eu.auth0.com/api/v2/", client_id="abc123")
    >>> from linking_toolkit.tenant_settings.checks import Reading, diagnose, findings_frame
    >>> reading = Reading(tenant, native={"client_id": "abc123", "app_type": "native",
    ...                                   "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]})
    >>> frame = findings_frame(diagnose(reading))
    >>> frame[["feature", "setting", "ok"]].head(3)
            feature            setting ok
    0  device login   application type  ✓
    1  device login  Device Code grant  ✓
    2  device login   connection (any)  ?
    >>> frame.attrs["ready"]
    False
    """
    frame = pd.DataFrame([(f.feature, f.setting, f.ok, f.now, f.must, f.where) for f in findings],
                         columns=FRAME_COLUMNS)
    frame.attrs["ready"] = all(f.ok in ("✓", "-") for f in findings)
    return frame
