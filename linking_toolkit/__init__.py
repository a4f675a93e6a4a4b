"""Auth0 account linking from Jupyter: log in twice, link, unlink, see the identities as a table.

Runs against a real Auth0 tenant or, by default, the embedded sandbox tenant. These are the names a
learner or an analyst types; everything else lives in its module, each with its own ``__all__``:
``linking_toolkit.errors`` (every error), ``.tokens`` (ID-token verification), ``.login_flows``,
``.identities``, ``.management``, ``.tenant_settings`` (``doctor``), ``.audit``, ``.widgets``
and ``.sandbox``.

Examples
--------
>>> from linking_toolkit import connect, login, link, identities_frame    # doctest: +SKIP
>>> tenant = connect()
>>> primary = login(tenant)
>>> secondary = login(tenant, purpose="linking", connection="google-oauth2")
>>> link(primary, secondary)
>>> identities_frame(primary.profile)
"""

from .audit import Audit, apply_plan, audit_export_file, audit_tenant, link_candidates, plan_links, undo
from .errors import Auth0Error, LinkRefused, LoginError, TokenVerificationError
from .identities import Identity, identities_frame
from .linking import link, unlink
from .login_flows import login
from .management import ManagementClient
from .tenant import Tenant, connect
from .tenant_settings import doctor
from .tokens import Session
from .widgets import AuditTable, IdentityTable, LoginPrompt, start_login

__all__ = [
    "Audit",
    "AuditTable",
    "Auth0Error",
    "Identity",
    "IdentityTable",
    "LinkRefused",
    "LoginError",
    "LoginPrompt",
    "ManagementClient",
    "Session",
    "Tenant",
    "TokenVerificationError",
    "apply_plan",
    "audit_export_file",
    "audit_tenant",
    "connect",
    "doctor",
    "identities_frame",
    "link",
    "link_candidates",
    "login",
    "plan_links",
    "start_login",
    "undo",
    "unlink",
]
