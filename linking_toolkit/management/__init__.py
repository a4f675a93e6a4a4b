"""Management API v2 client: users, link, unlink, users-by-email, search, export jobs.

- ``client.py``: :class:`ManagementClient`, one method per resource, export streaming, paging;
- ``credentials.py``: :class:`ClientCredentials`, a machine-to-machine token renewed before expiry;
- ``_http.py``: the HTTP core, pacing inside the tenant's rate limit, the retry loop, error decoding.

The rules of linking two *sessions* (what ``link``/``unlink`` refuse) live in
:mod:`linking_toolkit.linking`; this package only speaks HTTP.
"""

from ..errors import JobFailed
from ._http import ManagementStats, TokenSource
from .client import DEFAULT_DEADLINE, SEARCH_CAP, ManagementClient
from .credentials import ClientCredentials

__all__ = [
    "DEFAULT_DEADLINE",
    "SEARCH_CAP",
    "ClientCredentials",
    "JobFailed",
    "ManagementClient",
    "ManagementStats",
    "TokenSource",
]
