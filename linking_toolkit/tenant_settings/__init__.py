"""From the sandbox to your own tenant: check, fix and put back the settings the toolkit needs.

:func:`doctor` reads the tenant with the machine-to-machine credentials ``connect()`` was given and
answers one row per setting, grouped by feature: ✓ or ✗, what it is now, what it must be, and
where it lives in the Auth0 dashboard. :func:`fix_tenant` makes the ✗ rows right through the
Management API (only on the toolkit's own applications) and writes an undo file; :func:`undo_fix`
puts every field it changed back. ``python -m linking_toolkit doctor [--fix | --undo FILE]`` is
the same from a shell.

- ``checks``: what is read, and the rows;
- ``fixes``: the changes, their undo file, and the refusal of anything not the toolkit's own.

Examples
--------
>>> from linking_toolkit import connect, doctor             # doctest: +SKIP
>>> tenant = connect()
>>> doctor(tenant)
"""

from __future__ import annotations

import os
from contextlib import nullcontext

import pandas as pd

from ..errors import TenantError
from ..management import ManagementClient
from ..tenant import Tenant
from .checks import (
    FEATURES,
    FRAME_COLUMNS,
    SPA_URL,
    Finding,
    Reading,
    diagnose,
    findings_frame,
    read_settings,
)
from .fixes import (
    CHANGE_COLUMNS,
    Change,
    FixRefused,
    apply_changes,
    changes_frame,
    own_objects,
    plan_changes,
    read_undo_file,
    undo_changes,
)

__all__ = [
    "CHANGE_COLUMNS",
    "FEATURES",
    "FRAME_COLUMNS",
    "SPA_URL",
    "Change",
    "Finding",
    "FixRefused",
    "Reading",
    "check_tenant",
    "doctor",
    "fix_tenant",
    "undo_fix",
]


def _admin(tenant: Tenant, admin: ManagementClient | None) -> ManagementClient | None:
    if admin is not None:
        return admin
    if not tenant.m2m_client_id or not tenant.m2m_client_secret:
        return None
    return ManagementClient.from_client_credentials(tenant)


def check_tenant(tenant: Tenant, *, admin: ManagementClient | None = None,
                 spa_client_id: str | None = None) -> tuple[list[Finding], Reading]:
    """The findings and what they were read from (for :func:`fix_tenant`).

    Examples
    --------
    >>> from linking_toolkit.tenant_settings import check_tenant, findings_frame
    >>> findings, reading = check_tenant(tenant)            # doctest: +SKIP
    >>> findings_frame(findings).attrs["ready"]            # True when every row is ✓ or -
    """
    client = _admin(tenant, admin)
    with nullcontext() if admin is not None or client is None else client:
        reading = read_settings(tenant, client, spa_client_id)
    return diagnose(reading), reading


def doctor(tenant: Tenant, *, admin: ManagementClient | None = None,
           spa_client_id: str | None = None) -> pd.DataFrame:
    """Every setting the toolkit's features need, one row each: ✓ / ✗, now, must be, where.

    Read with ``admin`` or the machine-to-machine credentials the tenant was given; a read it may not
    make gives rows "cannot check: needs read:clients" (``?``). ``spa_client_id`` names the
    single-page app of ``examples/spa-linking``, to check it too. ``frame.attrs["ready"]`` is True
    when every row is ✓ (or not asked for).

    Examples
    --------
    >>> doctor(connect())                                   # doctest: +SKIP
    """
    findings, _ = check_tenant(tenant, admin=admin, spa_client_id=spa_client_id)
    return findings_frame(findings)


def fix_tenant(tenant: Tenant, undo_file: str | os.PathLike[str] | None = None, *, dry_run: bool = True,
               admin: ManagementClient | None = None, spa_client_id: str | None = None) -> pd.DataFrame:
    """The changes that make the ✗ rows right; with ``dry_run`` (the default) only shown.

    Made through the Management API (``update:clients``, ``update:client_grants`` or
    ``create:client_grants``, ``update:resource_servers``) on the toolkit's own apps only, after the
    undo file (0600, never overwritten) records each field before and after. Rows Auth0 gives no
    fix for here (the application type, a connection to enable) stay ✗: change them by hand.

    Examples
    --------
    >>> from linking_toolkit.tenant_settings import fix_tenant
    >>> fix_tenant(tenant)                                  # doctest: +SKIP
    >>> fix_tenant(tenant, "doctor-undo.json", dry_run=False)   # make them, after the undo file
    """
    findings, reading = check_tenant(tenant, admin=admin, spa_client_id=spa_client_id)
    changes = plan_changes(findings, reading)
    if dry_run or not changes:
        return changes_frame(changes)
    if undo_file is None:
        raise ValueError("fix_tenant(dry_run=False) needs undo_file=, where it records what it changes")
    client = _admin(tenant, admin)
    if client is None:
        raise TenantError("no machine-to-machine app: the fix needs AUTH0_CLIENT_SECRET")
    with nullcontext() if admin is not None else client:
        done = apply_changes(client, tenant, changes, undo_file, own_objects(tenant, spa_client_id))
    return changes_frame(done)


def undo_fix(tenant: Tenant, undo_file: str | os.PathLike[str], *, admin: ManagementClient | None = None,
             spa_client_id: str | None = None) -> pd.DataFrame:
    """Put back every field ``undo_file`` records, where it still holds what the fix made it.

    Examples
    --------
    >>> from linking_toolkit.tenant_settings import undo_fix
    >>> undo_fix(tenant, "doctor-undo.json")                # doctest: +SKIP
    """
    changes = read_undo_file(undo_file, tenant)
    client = _admin(tenant, admin)
    if client is None:
        raise TenantError("no machine-to-machine app: the undo needs AUTH0_CLIENT_SECRET")
    with nullcontext() if admin is not None else client:  # a single-page app only when named again
        done = undo_changes(client, tenant, changes, own_objects(tenant, spa_client_id))
    return changes_frame(done)
