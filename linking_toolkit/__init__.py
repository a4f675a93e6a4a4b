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

__all__ = [
    "SCOPE",
    "AccessDenied",
    "AlreadyLinked",
    "Auth0Error",
    "BadRequest",
    "ClientCredentials",
    "Forbidden",
    "Identity",
    "InvalidAlgorithm",
    "InvalidAudience",
    "InvalidAuthorizedParty",
    "InvalidIssuer",
    "InvalidNonce",
    "InvalidSignature",
    "InvalidState",
    "InvalidToken",
    "JobFailed",
    "LinkRefused",
    "LoginCancelled",
    "LoginError",
    "LoginExpired",
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
    "connect",
    "identities_frame",
    "link",
    "linked_accounts",
    "login",
    "start_login",
    "unlink",
    "verify_id_token",
]
