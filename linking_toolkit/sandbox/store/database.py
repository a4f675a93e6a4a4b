"""The SQLite connection of a store: one connection, one lock, explicit transactions.

Every change runs inside ``transaction()`` (``BEGIN IMMEDIATE``): all-or-nothing, and writers never
interleave. ``read()`` holds the same lock, so a read sees no half-made change.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .schema import SCHEMA, upgrade

__all__ = ["Database", "as_dict"]


def as_dict(row: sqlite3.Row | None) -> dict[str, Any] | None:
    """A row as a dict (None for no row).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store.database import Database, as_dict
    >>> db = Database(':memory:')
    >>> as_dict(db.fetch_one('SELECT 1 AS one')), as_dict(None)
    ({'one': 1}, None)
    """
    return dict(row) if row is not None else None


def _make_private(path: str) -> None:
    """Create the database file 0600 in one call, or tighten an existing looser one, before SQLite
    opens it: it holds client secrets, password hashes and every user's email. SQLite gives its
    ``-wal`` and ``-shm`` files the mode of the database file, so those follow. A symbolic link, at
    the file or at a ``-wal``/``-shm`` beside it, is refused: nothing is written through one."""
    for name in (path, f"{path}-wal", f"{path}-shm"):
        flags = os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if name == path else 0)
        try:
            fd = os.open(name, flags, 0o600)
        except FileNotFoundError:
            continue  # no -wal or -shm yet: SQLite makes them with the file's mode
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ValueError(f"the sandbox's database {name} is a symbolic link: give the file itself, "
                                 "it holds the tenant's secrets") from None
            raise
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


class Database:
    """A tenant's database file, or ``":memory:"`` (private to this store).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store.database import Database
    >>> db = Database(':memory:')
    >>> with db.transaction() as conn:
    ...     _ = conn.execute('CREATE TABLE t (x INTEGER)')
    ...     _ = conn.execute('INSERT INTO t VALUES (1), (2)')
    >>> [dict(row) for row in db.fetch_all('SELECT x FROM t')]
    [{'x': 1}, {'x': 2}]
    >>> db.close()
    """

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        if path != ":memory:" and not path.startswith("file:"):
            _make_private(path)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(SCHEMA)
            upgrade(self._conn)
        except sqlite3.Error:  # not a database (or not ours): close it rather than leave it to GC
            self._conn.close()
            raise
        self._on_close: list[Callable[[], None]] = []

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the store closes (the sandbox stops): background jobs end there."""
        self._on_close.append(callback)

    def close(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:  # outside the lock: a callback may wait for a job that reads
            callback()
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: commits when the block ends, rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (the lock keeps writers out while the block runs)."""
        with self._lock:
            yield self._conn

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """The first row of one query, read under the lock."""
        with self.read() as db:
            row: sqlite3.Row | None = db.execute(sql, params).fetchone()
        return row

    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Every row of one query, read under the lock."""
        with self.read() as db:
            return db.execute(sql, params).fetchall()
