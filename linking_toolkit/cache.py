"""The token cache: refresh tokens kept between kernels, so a returning learner logs in with no prompt.

Modelled on pydata-google-auth's cache: a strategy object says what a login does with the cache.

- :data:`READ_WRITE` (the default on a personal machine): use a cached login when there is one,
  and keep every new one.
- :data:`REAUTH`: always log in again, then keep the new login (to switch users, say).
- :data:`NOOP` (the default on JupyterHub and Colab, where the home folder is shared or
  temporary): neither read nor write; one line says so.

A login for linking (``purpose="linking"``) neither reads nor keeps a cache unless one is passed:
a link must follow a login to both accounts made now, by the person at the keyboard.

A login that may be kept asks the tenant for ``offline_access`` and keeps the refresh token it
answers, nothing else. The file is ``tokens.json`` in the user's config directory
(``platformdirs.user_config_dir("linking_toolkit")``), or the path in ``LINKING_TOOLKIT_CACHE``,
or the one given to :meth:`FileCache.at`. It is created with mode 0600 in one call (a temporary file
in the same folder), replaced atomically (``os.replace``) and locked while written (``filelock``).
It holds one entry per issuer, client id, purpose, connection (of a linking login) and user; when
several users are cached for the same login, the most recently stored one is used (every use of a
rotating refresh token stores it again). No refresh token is ever in a repr, a log or a message.

Examples
--------
>>> from linking_toolkit import cache, connect, login                         # doctest: +SKIP
>>> primary = login(tenant)                      # READ_WRITE: no prompt if a login is cached
>>> primary = login(tenant, cache=cache.REAUTH)  # log in again (another user), and keep that
>>> primary = login(tenant, cache=cache.READ_WRITE.at("/tmp/tokens.json"))   # another file
>>> cache.forget(tenant)                         # forget this tenant's logins
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
import platformdirs

from .tenant import Tenant

__all__ = [
    "CACHE_ENV",
    "LOCK_SECONDS",
    "NOOP",
    "READ_WRITE",
    "REAUTH",
    "CacheWarning",
    "CachedLogin",
    "FileCache",
    "ReadWriteCache",
    "TokenCache",
    "default_cache",
    "default_path",
    "forget",
]

logger = logging.getLogger("linking_toolkit.cache")

CACHE_ENV = "LINKING_TOOLKIT_CACHE"  # a path that replaces the default file (tests, several profiles)
LOCK_SECONDS = 30.0  # how long a writer waits for another process's write before giving up on the cache
_VERSION = 1
_KEY_FIELDS = ("issuer", "client_id", "purpose", "connection", "user_id")


class CacheWarning(UserWarning):
    """The token cache could not be read or written; the login goes on without it.

    Examples
    --------
    >>> import warnings
    >>> from linking_toolkit.cache import CacheWarning
    >>> warnings.simplefilter('error', CacheWarning)      # doctest: +SKIP
    """


def default_path() -> Path:
    """``$LINKING_TOOLKIT_CACHE``, else ``tokens.json`` in the user's config directory.

    Examples
    --------
    >>> from linking_toolkit import cache
    >>> cache.default_path().name                       # in ~/.config/linking_toolkit on Linux
    'tokens.json'
    """
    given = os.environ.get(CACHE_ENV)
    return Path(given) if given else Path(platformdirs.user_config_dir("linking_toolkit")) / "tokens.json"


@dataclass(frozen=True)
class CachedLogin:
    """One cached login: whose, for which tenant and purpose, and its refresh token (never shown).

    Examples
    --------
    >>> from linking_toolkit.cache import CachedLogin
    >>> kept = CachedLogin(issuer='https://example.eu.auth0.com/', client_id='abc', purpose='login',
    ...                    connection=None, user_id='auth0|1', stored_at='2024-05-01T10:00:00Z',
    ...                    refresh_token='v1.secret')
    >>> kept.user_id, 'v1.secret' in repr(kept)
    ('auth0|1', False)
    """

    issuer: str
    client_id: str
    purpose: str
    connection: str | None
    user_id: str
    stored_at: str
    refresh_token: str = field(repr=False)

    def key(self) -> tuple[str | None, ...]:
        return tuple(getattr(self, name) for name in _KEY_FIELDS)


class TokenCache:
    """What a login does with the cache; this base class does nothing (it is :data:`NOOP`).

    Examples
    --------
    >>> from linking_toolkit import cache
    >>> cache.NOOP
    <TokenCache NOOP: logins are neither read nor kept>
    >>> cache.NOOP.reads, cache.NOOP.writes
    (False, False)
    """

    reads = False  # a login first tries a cached refresh token
    writes = False  # a login asks for offline_access and keeps the refresh token

    def at(self, path: str | os.PathLike[str]) -> TokenCache:
        """The same strategy on another file (NOOP has none, and stays NOOP)."""
        return self

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep other processes from writing while a cached login is used and replaced."""
        yield

    def load(self, tenant: Tenant, *, purpose: str, connection: str | None) -> CachedLogin | None:
        """The most recently stored login for this tenant, purpose and connection, if any."""
        return None

    def save(self, tenant: Tenant, *, purpose: str, connection: str | None, user_id: str,
             refresh_token: str) -> None:
        """Keep ``refresh_token``, replacing what was kept for the same tenant, purpose and user."""

    def discard(self, login: CachedLogin) -> None:
        """Drop a login the tenant no longer honours (unless a newer one replaced it meanwhile)."""

    def forget(self, tenant: Tenant | None = None) -> int:
        """Drop every login of ``tenant`` (of every tenant with None); returns how many there were."""
        return 0

    def __repr__(self) -> str:
        return "<TokenCache NOOP: logins are neither read nor kept>"


class FileCache(TokenCache):
    """Keeps logins in a 0600 JSON file, never reads them: this is :data:`REAUTH`.

    ``path`` defaults to :func:`default_path`, looked up at each use.

    Examples
    --------
    >>> from linking_toolkit import cache
    >>> cache.REAUTH.reads, cache.REAUTH.writes
    (False, True)
    >>> cache.REAUTH.at('/tmp/tokens.json')
    <TokenCache REAUTH: logins are kept in /tmp/tokens.json, never read>
    """

    writes = True

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else None

    @property
    def path(self) -> Path:
        return self._path if self._path is not None else default_path()

    def at(self, path: str | os.PathLike[str]) -> TokenCache:
        return type(self)(path)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if not self.path.parent.is_dir():  # never written: nothing to protect, and no folder to make
            yield
            return
        try:
            # One lock object per file, re-entrant in a thread: save() may run inside hold().
            lock = filelock.FileLock(f"{self.path}.lock", timeout=LOCK_SECONDS, mode=0o600, is_singleton=True)
            lock.acquire()
        except (filelock.Timeout, OSError) as exc:
            warnings.warn(f"the token cache {self.path} could not be locked ({type(exc).__name__}); "
                          f"going on without the lock", CacheWarning, stacklevel=3)
            yield
            return
        try:
            yield
        finally:
            lock.release()

    # -- the file ------------------------------------------------------------------------------------

    def _entries(self) -> list[CachedLogin]:
        """The file's logins; a missing file holds none, an unreadable one is ignored with a warning."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            warnings.warn(f"the token cache {self.path} could not be read ({type(exc).__name__}); "
                          f"ignoring it", CacheWarning, stacklevel=4)
            return []
        try:
            return _parse(text)
        except (ValueError, TypeError, KeyError):
            # Never the parser's message: it could quote the file, tokens included.
            warnings.warn(f"the token cache {self.path} is not a file this toolkit wrote (corrupt JSON "
                          f"or another shape); ignoring it, the next login replaces it", CacheWarning,
                          stacklevel=4)
            return []

    def _write(self, entries: list[CachedLogin]) -> None:
        """Replace the file atomically with a new one created 0600 (mkstemp) in the same folder."""
        path = self.path
        data = {"version": _VERSION, "logins": [dataclasses.asdict(entry) for entry in entries]}
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=1)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            warnings.warn(f"the token cache {path} could not be written ({type(exc).__name__}); this "
                          f"login will not be remembered", CacheWarning, stacklevel=4)

    @contextlib.contextmanager
    def _rewrite(self) -> Iterator[list[CachedLogin]]:
        """The file's logins to change in place, written back when the block ends, under the lock."""
        with contextlib.suppress(OSError):  # if it cannot be made, _write says so
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.hold():
            entries = self._entries()
            before = list(entries)
            yield entries
            if entries != before:
                self._write(entries)

    # -- the strategy ------------------------------------------------------------------------------

    def save(self, tenant: Tenant, *, purpose: str, connection: str | None, user_id: str,
             refresh_token: str) -> None:
        login = CachedLogin(issuer=tenant.issuer, client_id=tenant.client_id, purpose=purpose,
                            connection=connection if purpose == "linking" else None, user_id=user_id,
                            stored_at=datetime.now(UTC).isoformat(timespec="microseconds"),
                            refresh_token=refresh_token)
        with self._rewrite() as entries:
            entries[:] = [e for e in entries if e.key() != login.key()] + [login]
        logger.debug("kept a %s login of %s in the token cache", purpose, user_id)

    def discard(self, login: CachedLogin) -> None:
        with self._rewrite() as entries:
            entries[:] = [e for e in entries if e != login]

    def forget(self, tenant: Tenant | None = None) -> int:
        with self._rewrite() as entries:
            kept = [e for e in entries if tenant is not None and
                    (e.issuer, e.client_id) != (tenant.issuer, tenant.client_id)]
            dropped = len(entries) - len(kept)
            entries[:] = kept
        return dropped

    def __repr__(self) -> str:
        return f"<TokenCache REAUTH: logins are kept in {self.path}, never read>"


class ReadWriteCache(FileCache):
    """Uses a cached login when there is one and keeps every new one: this is :data:`READ_WRITE`.

    Examples
    --------
    >>> from linking_toolkit import cache
    >>> cache.READ_WRITE.reads, cache.READ_WRITE.writes
    (True, True)
    >>> primary = login(tenant, cache=cache.READ_WRITE.at('/tmp/tokens.json'))   # doctest: +SKIP
    """

    reads = True

    def load(self, tenant: Tenant, *, purpose: str, connection: str | None) -> CachedLogin | None:
        wanted = (tenant.issuer, tenant.client_id, purpose, connection if purpose == "linking" else None)
        matching = [e for e in self._entries() if e.key()[:4] == wanted]
        return max(matching, key=lambda e: e.stored_at, default=None)

    def __repr__(self) -> str:
        return f"<TokenCache READ_WRITE: logins are read from and kept in {self.path}>"


def _parse(text: str) -> list[CachedLogin]:
    data: Any = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data["logins"], list):
        raise ValueError("not a token cache")
    entries = []
    for item in data["logins"]:
        entry = CachedLogin(**{name: item[name] for name in CachedLogin.__dataclass_fields__})
        strings = [entry.issuer, entry.client_id, entry.purpose, entry.user_id, entry.stored_at,
                   entry.refresh_token]
        if not all(isinstance(s, str) and s for s in strings) or not isinstance(entry.connection, str | None):
            raise ValueError("not a token cache entry")
        entries.append(entry)
    return entries


NOOP = TokenCache()
"""Never read a cached login, never keep one: for shared machines (the default on JupyterHub and Colab)."""

READ_WRITE = ReadWriteCache()
"""Use a cached login when there is one, and keep every new one (the default on a personal machine)."""

REAUTH = FileCache()
"""Always log in again, then keep the new login: to switch users, or to refresh a stale cache."""


def _shared_home() -> str | None:
    """Why the home folder is no place for tokens here, or None on a personal machine."""
    if os.environ.get("JUPYTERHUB_USER"):
        return "on JupyterHub (JUPYTERHUB_USER is set) the home folder may be shared with others"
    colab = bool(os.environ.get("COLAB_RELEASE_TAG"))
    if not colab:
        with contextlib.suppress(ImportError, ValueError):
            colab = importlib.util.find_spec("google.colab") is not None
    if colab:
        return "on Colab the machine and its home folder are temporary"
    return None


_TOLD_IN_KERNEL: weakref.WeakSet[Tenant] = weakref.WeakSet()


def default_cache(tenant: Tenant) -> tuple[TokenCache, str | None]:
    """The strategy a login uses when given none, and the one line to show about it (or None).

    :data:`READ_WRITE` on a personal machine (and for a kept sandbox, which outlives the kernel);
    :data:`NOOP` on JupyterHub or Colab, with a line saying why; :data:`NOOP` for a sandbox running
    in this process, whose tokens end with it (a cached one could never be used again), with a line
    saying so at its first login.

    Examples
    --------
    >>> from linking_toolkit import cache, connect
    >>> cache.default_cache(connect())                   # doctest: +SKIP
    (<TokenCache NOOP: logins are neither read nor kept>, 'Not caching this login: this sandbox runs ...')
    """
    if tenant.sandbox is not None and not getattr(tenant.sandbox, "kept", False):
        if tenant in _TOLD_IN_KERNEL:  # said once for this tenant: not at every login of a notebook
            return NOOP, None
        _TOLD_IN_KERNEL.add(tenant)
        return NOOP, ("Not caching this login: this sandbox runs inside the kernel and its logins end "
                      "with it (make lab keeps one across kernel restarts).")
    why = _shared_home()
    if why is not None:
        return NOOP, (f"Not caching this login: {why}. Pass cache=linking_toolkit.cache.READ_WRITE "
                      f"to keep it anyway.")
    return READ_WRITE, None


def forget(tenant: Tenant | None = None, *, cache: TokenCache | None = None) -> int:
    """Forget the cached logins of ``tenant`` (of every tenant with None) in ``cache``'s file (the
    default file with None); the next login prompts again. Returns how many were forgotten.

    Examples
    --------
    >>> from linking_toolkit import cache
    >>> cache.forget(tenant)                                   # doctest: +SKIP
    1
    """
    return (cache if cache is not None else READ_WRITE).forget(tenant)
