"""Failed attempts, counted so that guessing a password or a user code is limited, as on Auth0.

Auth0's brute-force protection blocks one address from logging in as one user after 10
consecutive failures (the default threshold); a success resets the count. Auth0 keeps the block
until an administrator lifts it, the password changes, or 30 days pass: the sandbox has no
dashboard to lift it from, so its block ends after ``block_seconds`` (15 minutes) instead. The
device flow's code page limits wrong user codes per address the same way (RFC 8628 §5.1: the
eight-character code is guessable only if guesses are unlimited).

The counts live in memory, per tenant: a restarted sandbox forgets them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

__all__ = ["BLOCKED_DESCRIPTION", "BRUTE_FORCE_THRESHOLD", "FailedAttempts", "login_key"]

BRUTE_FORCE_THRESHOLD = 10  # Auth0's default "Brute-force Threshold"
BLOCK_SECONDS = 900
# Auth0's answer at /oauth/token for a blocked user and address (429 too_many_attempts).
BLOCKED_DESCRIPTION = "Your account has been blocked after multiple consecutive login attempts."


def login_key(connection: str, email: str, address: str | None) -> tuple[str, str, str]:
    """Who is being guessed at, and from where: Auth0 counts per user and IP address.

    Examples
    --------
    >>> from linking_toolkit.sandbox.attempts import login_key
    >>> login_key('Username-Password-Authentication', 'Ada@Example.com', '127.0.0.1')
    ('Username-Password-Authentication', 'ada@example.com', '127.0.0.1')
    """
    return connection, email.strip().lower(), address or ""


@dataclass
class FailedAttempts:
    """Consecutive failures by key (``(what, who, address)``); ``blocked(key)`` once ``threshold``
    of them have come within ``block_seconds`` of each other, until that much time has passed.

    Examples
    --------
    >>> from linking_toolkit.sandbox.attempts import FailedAttempts
    >>> attempts = FailedAttempts(threshold=2, block_seconds=60)
    >>> key = ('password', 'ada@example.com', '127.0.0.1')
    >>> attempts.failed(key); attempts.blocked(key)
    False
    >>> attempts.failed(key); attempts.blocked(key)
    True
    >>> attempts.succeeded(key); attempts.blocked(key)
    False
    """

    threshold: int = BRUTE_FORCE_THRESHOLD
    block_seconds: float = BLOCK_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[Hashable, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, key: Hashable) -> bool:
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            if count and self.clock() - last >= self.block_seconds:
                del self._failures[key]  # the block, or the run of failures, has lapsed
                return False
            return count >= self.threshold

    def failed(self, key: Hashable) -> None:
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            if count and self.clock() - last >= self.block_seconds:
                count = 0
            self._failures[key] = (count + 1, self.clock())
            if len(self._failures) > 100_000:  # a flood of keys must not grow without bound
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)
