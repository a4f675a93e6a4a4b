"""``doctor --fix`` and ``--undo``: the changes the findings call for, made and put back, field by field.

Only the toolkit's own objects are ever changed: the Native app and the machine-to-machine app the
tenant's settings name (and the single-page app when the caller names it), that machine app's grant
on the Management API, and the Management API's offline access. Anything else is refused before a
request. Each change is one field with its value before and after; the undo file (0600, written
before the first change and again after each) holds them all, so ``--undo`` puts every field back
as it was, and both are safe to repeat: a field already as wanted is left alone, and one changed
by someone else since is left alone too, and said so.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import Auth0Error, Forbidden
from ..management import ManagementClient
from ..private_files import open_private
from ..tenant import Tenant
from .checks import Finding, Kind, Reading

__all__ = ["CHANGE_COLUMNS", "Change", "FixRefused", "apply_changes", "changes_frame", "own_objects",
           "plan_changes", "read_undo_file", "undo_changes"]

CHANGE_COLUMNS = ["object", "id", "field", "before", "after", "result"]
_UNDO_FORMAT = "linking_toolkit.tenant_settings/1"


class FixRefused(Auth0Error):
    """The toolkit refused to change a setting that is not one of its own (or an undo file of another
    tenant), before any request.

    Examples
    --------
    >>> from linking_toolkit.errors import Auth0Error
    >>> from linking_toolkit.tenant_settings.fixes import FixRefused
    >>> issubclass(FixRefused, Auth0Error)                   # raised before any request
    True
    """


@dataclass
class Change:
    """One field of one object: its value ``before`` the fix and ``after`` it. A grant that did not
    exist has ``before`` None and ``id`` "" until it is created (then its new id).

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.fixes import Change
    >>> change = Change("client", "abc123", "grant_types", ["device_code"], ["device_code", "refresh_token"])
    >>> change.before, change.after, change.result
    (['device_code'], ['device_code', 'refresh_token'], 'planned')
    """

    kind: Kind
    id: str
    field: str
    before: Any
    after: Any
    client_id: str | None = None
    audience: str | None = None
    result: str = "planned"


def own_objects(tenant: Tenant, spa_client_id: str | None = None) -> set[tuple[str, str]]:
    """``(kind, id)`` of what ``--fix`` may change: the toolkit's apps (grants are checked by owner).

    Examples
    --------
    >>> from linking_toolkit.tenant import Tenant
    >>> from linking_toolkit.tenant_settings.fixes import own_objects
    >>> tenant = Tenant(domain="example.eu.auth0.com", issuer="https://example.eu.auth0.com/",
    ...                 base_url="https://example.eu.auth0.com",
    ...                 management_audience="https://example.eu.auth0.com/api/v2/", client_id="abc123")
    >>> own_objects(tenant, spa_client_id="spa456") == {("client", "abc123"), ("client", "spa456")}
    True
    """
    own = {("client", tenant.client_id)}
    if tenant.m2m_client_id:
        own.add(("client", tenant.m2m_client_id))
    if spa_client_id:
        own.add(("client", spa_client_id))
    return own


def _check_own(admin: ManagementClient, tenant: Tenant, change: Change, own: set[tuple[str, str]]) -> None:
    """Refuse any change that is not to one of the toolkit's own objects."""
    if change.kind == "client":
        allowed = ("client", change.id) in own
    elif change.kind == "client_grant":
        owner = change.client_id
        if change.id:  # the grant must be, on the tenant, the one the toolkit's machine app holds
            grants = admin.client_grants(client_id=str(owner or ""), audience=tenant.management_audience)
            owner = next((g.get("client_id") for g in grants if g.get("id") == change.id), None)
        allowed = ("client", str(owner)) in own and owner != tenant.client_id \
            and change.audience in (None, tenant.management_audience)
    elif change.kind == "connection":  # only whether it is enabled for the toolkit's Native app
        allowed = change.field == "enabled"
    else:
        allowed = change.field == "allow_offline_access" and change.id in _api_ids(admin, tenant)
    if not allowed or change.field in ("client_id", "client_secret", "name"):
        raise FixRefused(f"refused to change {change.kind} {change.id or change.client_id!r} "
                         f"({change.field}): it is not one of the toolkit's own applications")


def _api_ids(admin: ManagementClient, tenant: Tenant) -> set[str]:
    api = admin.get_resource_server(tenant.management_audience)
    return {tenant.management_audience, str(api.get("id") or tenant.management_audience)}


def plan_changes(findings: list[Finding], reading: Reading) -> list[Change]:
    """The changes the ✗ rows call for, those on one field merged into one (three grant types: one
    ``grant_types`` change).

    Examples
    --------
    >>> from linking_toolkit.tenant import Tenant
    >>> tenant = Tenant(domain="example.eu.auth0.com", issuer="https://example.eu.auth0.com/",
    ...                 base_url="https://example.eu.auth0.com",
    ...                 management_audience="https://example.eu.auth0.com/api/v2/", client_id="abc123")
    >>> from linking_toolkit.tenant_settings.checks import Reading, diagnose
    >>> from linking_toolkit.tenant_settings.fixes import plan_changes
    >>> reading = Reading(tenant, native={"client_id": "abc123", "app_type": "native",
    ...                                   "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]})
    >>> [change.field for change in plan_changes(diagnose(reading), reading)]   # grant types merged in one
    ['grant_types', 'callbacks', 'refresh_token']
    """
    changes: dict[tuple[str, str, str], Change] = {}
    for finding in findings:
        fix = finding.fix
        if fix is None or finding.ok != "✗":
            continue
        key = (fix.kind, fix.id or str(fix.client_id), fix.field)
        if key not in changes:
            exists = bool(fix.id) or fix.kind != "client_grant"
            before = reading.value(fix.kind, fix.id, fix.field) if exists else None
            changes[key] = Change(fix.kind, fix.id, fix.field, before, before, fix.client_id, fix.audience)
        changes[key].after = fix.change(changes[key].after)
    return [c for c in changes.values() if c.after != c.before]


def changes_frame(changes: list[Change]) -> pd.DataFrame:
    """The changes as the table ``doctor --fix`` shows: each value as JSON, a new grant named by its app.

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.fixes import Change, changes_frame
    >>> changes_frame([Change("client", "abc123", "callbacks", None, ["http://127.0.0.1/callback"])])
       object      id      field before                          after   result
    0  client  abc123  callbacks   null  ["http://127.0.0.1/callback"]  planned
    """
    return pd.DataFrame([(c.kind, c.id or f"(new, for {c.client_id})", c.field, json.dumps(c.before),
                          json.dumps(c.after), c.result) for c in changes], columns=CHANGE_COLUMNS)


# -- reading and writing a field -------------------------------------------------------------------


def _current(admin: ManagementClient, tenant: Tenant, change: Change) -> tuple[bool, Any]:
    """``(exists, value)`` of the field on the tenant now."""
    if change.kind == "client":
        return True, admin.get_client(change.id).get(change.field)
    if change.kind == "resource_server":
        return True, admin.get_resource_server(change.id).get(change.field)
    if change.kind == "connection":
        return True, tenant.client_id in admin.connection_clients(change.id)
    grants = admin.client_grants(client_id=str(change.client_id), audience=change.audience)
    grant = next((g for g in grants if not change.id or g.get("id") == change.id), None)
    if grant is None:
        return False, None
    change.id = change.id or str(grant.get("id"))
    return True, grant.get(change.field)


def _write(admin: ManagementClient, tenant: Tenant, change: Change, value: Any, exists: bool) -> None:
    if change.kind == "client":
        admin.update_client(change.id, {change.field: value})
    elif change.kind == "connection":
        admin.set_connection_clients(change.id, {tenant.client_id: bool(value)})
    elif change.kind == "resource_server":
        admin.update_resource_server(change.id, {change.field: value})
    elif value is None:  # the grant did not exist before the fix
        admin.delete_client_grant(change.id)
    elif exists:
        admin.update_client_grant(change.id, list(value))
    else:
        created = admin.create_client_grant(str(change.client_id), str(change.audience), list(value))
        change.id = str(created.get("id") or "")


_SCOPE_TO_CHANGE = {"client": "update:clients", "resource_server": "update:resource_servers",
                    "connection": "update:connections", "client_grant": "update:client_grants"}


def _made(admin: ManagementClient, tenant: Tenant, change: Change, value: Any, exists: bool,
          done: str) -> str:
    """``done`` once the field is written; a 403 (the app may not change that) is a result, not the end:
    the other changes are still made, and the row says which permission (or the dashboard) it takes."""
    try:
        _write(admin, tenant, change, value, exists)
    except Forbidden:
        scope = _SCOPE_TO_CHANGE[change.kind]
        if change.kind == "client_grant" and change.before is None:
            scope = "create:client_grants"
        return f"refused: needs {scope} (or change it in the dashboard)"
    return done


def _same(a: Any, b: Any) -> bool:
    """Equal, a list's order aside (Auth0 may keep grant types or scopes in its own order)."""
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(json.dumps, a)) == sorted(map(json.dumps, b))
    return bool(a == b)


def _save(path: Path, tenant: Tenant, changes: list[Change], made_at: str) -> None:
    record = {"format": _UNDO_FORMAT, "issuer": tenant.issuer, "made_at": made_at,
              "changes": [asdict(c) for c in changes]}
    with open_private(path, "w", encoding="utf-8") as out:
        out.write(json.dumps(record, indent=2) + "\n")


def apply_changes(admin: ManagementClient, tenant: Tenant, changes: list[Change],
                  undo_file: str | os.PathLike[str], own: set[tuple[str, str]]) -> list[Change]:
    """Make ``changes``, each only if its field still holds ``before``; the undo file is written first
    (an existing one is never overwritten: it may be the only record of an earlier fix).

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.fixes import apply_changes, own_objects
    >>> own = own_objects(tenant)                                       # doctest: +SKIP
    >>> done = apply_changes(admin, tenant, changes, "doctor-undo.json", own)
    >>> [change.result for change in done]
    """
    path = Path(undo_file)
    if path.exists() or path.is_symlink():
        raise FixRefused(f"{path} exists already: name a new undo file (it may be an earlier fix's record)")
    for change in changes:
        _check_own(admin, tenant, change, own)
    made_at = datetime.now(UTC).isoformat(timespec="seconds")
    _save(path, tenant, changes, made_at)
    for change in changes:
        exists, now = _current(admin, tenant, change)
        if _same(now, change.after):
            change.result = "already so"
        elif _same(now, change.before):
            change.result = _made(admin, tenant, change, change.after, exists, "changed")
        else:
            change.result = "left alone: it changed since it was read"
        _save(path, tenant, changes, made_at)
    return changes


def read_undo_file(path: str | os.PathLike[str], tenant: Tenant) -> list[Change]:
    """The changes an undo file records; a file of another tenant, or not one of ours, is refused.

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.fixes import changes_frame, read_undo_file
    >>> changes_frame(read_undo_file("doctor-undo.json", tenant))      # doctest: +SKIP
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FixRefused(f"{path} is not an undo file of doctor --fix ({error})") from None
    if not isinstance(record, dict) or record.get("format") != _UNDO_FORMAT:
        raise FixRefused(f"{path} is not an undo file of doctor --fix")
    if record.get("issuer") != tenant.issuer:
        raise FixRefused(f"{path} records changes to {record.get('issuer')!r}, not to {tenant.issuer!r}")
    try:
        return [Change(**{k: v for k, v in c.items() if k != "result"}) for c in record["changes"]]
    except (KeyError, TypeError) as error:
        raise FixRefused(f"{path} is not an undo file of doctor --fix ({error})") from None


def undo_changes(admin: ManagementClient, tenant: Tenant, changes: list[Change],
                 own: set[tuple[str, str]]) -> list[Change]:
    """Put each field back to ``before``, last change first, where it still holds ``after``.

    Examples
    --------
    >>> from linking_toolkit.tenant_settings.fixes import own_objects, read_undo_file, undo_changes
    >>> changes = read_undo_file("doctor-undo.json", tenant)           # doctest: +SKIP
    >>> undone = undo_changes(admin, tenant, changes, own_objects(tenant))
    """
    for change in changes:
        if change.kind != "client_grant" or change.id:
            _check_own(admin, tenant, change, own)
    for change in reversed(changes):
        if change.kind == "client_grant" and not change.id:
            change.result = "never made"
            continue
        exists, now = _current(admin, tenant, change)
        as_before = exists == (change.before is not None or change.kind != "client_grant")
        if _same(now, change.before) and as_before:
            change.result = "already so"
        elif _same(now, change.after):
            change.result = _made(admin, tenant, change, change.before, exists, "put back")
        else:
            change.result = "left alone: it changed since the fix"
    return changes
