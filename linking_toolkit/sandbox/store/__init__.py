"""SQLite storage of a sandbox tenant, and the only place in the sandbox that writes SQL.

``Store`` is one connection guarded by one lock (``database.py``); its tables are grouped by what
they hold: the tenant's configuration (``tenant.py``, and ``configuration.py`` for what the
Management API reads and changes of it), users and identities (``users.py``), link and unlink
(``links.py``), OAuth codes and tokens (``oauth.py``), export jobs (``exports.py``). The JSON shapes
Auth0 gives rows are in ``shapes.py``, the ``q`` search in ``query.py``.

Every change runs inside ``transaction()`` (``BEGIN IMMEDIATE``): link and unlink move identities
between users in one transaction, and the primary key of ``identities`` is ``(provider, user_id)``,
so no request, crash or race can leave an identity owned by two users or by none.
"""

from .configuration import ClientGrantExists, ConfigurationTables
from .exports import ExportTables
from .links import LinkConflict, LinkTables
from .oauth import OAuthTables
from .query import QueryError, UserQuery, parse_user_query
from .shapes import full_user_id, iso, now_iso, split_user_id
from .tenant import TenantTables, new_grant_id
from .users import UserExists

__all__ = [
    "ClientGrantExists",
    "LinkConflict",
    "QueryError",
    "Store",
    "UserExists",
    "UserQuery",
    "full_user_id",
    "iso",
    "new_grant_id",
    "now_iso",
    "parse_user_query",
    "split_user_id",
]


class Store(LinkTables, OAuthTables, ExportTables, ConfigurationTables, TenantTables):
    """A tenant's database. ``path`` is a file or ``":memory:"`` (private to this store).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> store = Store(':memory:')
    >>> store.count_users()
    0
    >>> store.close()
    """
