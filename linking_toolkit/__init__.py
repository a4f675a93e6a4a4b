"""Auth0 account linking from Jupyter: log in twice, link, unlink, see the identities as a table.

Runs against a real Auth0 tenant or, by default, the embedded sandbox tenant.

Examples
--------
>>> from linking_toolkit import connect, login, link, identities_frame    # doctest: +SKIP
>>> tenant = connect()
>>> primary = login(tenant)
>>> secondary = login(tenant, purpose="linking", connection="google-oauth2")
>>> link(primary, secondary)
>>> identities_frame(primary.profile)
"""

from .audit import (
    Audit,
    Journal,
    apply_plan,
    audit,
    audit_export_file,
    candidates_by_risk,
    link_candidates,
    merge_metadata,
    normalise_email,
    plan_links,
    undo,
)
from .errors import (
    AccessDenied,
    AlreadyLinked,
    Auth0Error,
    BadRequest,
    Forbidden,
    InvalidAlgorithm,
    InvalidAudience,
    InvalidAuthorizedParty,
    InvalidIssuer,
    InvalidNonce,
    InvalidSignature,
    InvalidState,
    InvalidToken,
    LinkRefused,
    LoginCancelled,
    LoginError,
    LoginExpired,
    LoginTimeout,
    MalformedToken,
    MissingClaim,
    NotFound,
    RateLimited,
    ServerError,
    SessionExpired,
    TenantError,
    TokenExpired,
    TokenIssuedInFuture,
    TokenTooOld,
    TokenVerificationError,
    UnknownSigningKey,
    UnsafeLink,
)
from .identities import Identity, identities_frame, linked_accounts
from .login import SCOPE, PendingLogin, login, start_login
from .management import ClientCredentials, JobFailed, ManagementClient, ManagementStats, link, unlink
from .tenant import Tenant, connect
from .tokens import Session, verify_id_token
from .widgets import AuditTable, IdentityTable, LoginPrompt

__all__ = [
    "SCOPE",
    "AccessDenied",
    "AlreadyLinked",
    "Audit",
    "AuditTable",
    "Auth0Error",
    "BadRequest",
    "ClientCredentials",
    "Forbidden",
    "Identity",
    "IdentityTable",
    "InvalidAlgorithm",
    "InvalidAudience",
    "InvalidAuthorizedParty",
    "InvalidIssuer",
    "InvalidNonce",
    "InvalidSignature",
    "InvalidState",
    "InvalidToken",
    "JobFailed",
    "Journal",
    "LinkRefused",
    "LoginCancelled",
    "LoginError",
    "LoginExpired",
    "LoginPrompt",
    "LoginTimeout",
    "MalformedToken",
    "ManagementClient",
    "ManagementStats",
    "MissingClaim",
    "NotFound",
    "PendingLogin",
    "RateLimited",
    "ServerError",
    "Session",
    "SessionExpired",
    "Tenant",
    "TenantError",
    "TokenExpired",
    "TokenIssuedInFuture",
    "TokenTooOld",
    "TokenVerificationError",
    "UnknownSigningKey",
    "UnsafeLink",
    "apply_plan",
    "audit",
    "audit_export_file",
    "candidates_by_risk",
    "connect",
    "identities_frame",
    "link",
    "link_candidates",
    "linked_accounts",
    "login",
    "merge_metadata",
    "normalise_email",
    "plan_links",
    "start_login",
    "undo",
    "unlink",
    "verify_id_token",
]
