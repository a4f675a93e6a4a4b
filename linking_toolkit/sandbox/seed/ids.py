"""Ids and timestamps of a seeded tenant: provider-shaped ids, and the date a seeded tenant lives at."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

__all__ = ["ID_SHAPES", "IdFactory", "clock_base"]

# Each provider's own shape of user id (the part after "provider|").
ID_SHAPES: dict[str, tuple[str, int]] = {
    "auth0": ("hex", 24),
    "google-oauth2": ("digits", 21),
    "facebook": ("digits", 16),
    "github": ("digits", 8),
}
ALPHANUMERIC = string.ascii_uppercase + string.ascii_lowercase + string.digits


class IdFactory:
    """Provider-shaped ids from one random source (seeded for reproducible tenants).

    Examples
    --------
    >>> import random
    >>> from linking_toolkit.sandbox.seed.ids import IdFactory
    >>> ids = IdFactory(random.Random(7))
    >>> ids.user_id('auth0'), ids.user_id('google-oauth2')
    ('a4c123b1612dd272d1371c17', '182462819482199351819')
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def user_id(self, provider: str) -> str:
        kind, length = ID_SHAPES.get(provider, ("hex", 24))
        if kind == "hex":
            return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))
        first = self.rng.choice("123456789")
        return first + "".join(self.rng.choice("0123456789") for _ in range(length - 1))

    def token(self, prefix: str, length: int = 16) -> str:
        return prefix + "".join(self.rng.choice(ALPHANUMERIC) for _ in range(length))


def clock_base(seed: int | None) -> datetime:
    """Seeded tenants live at a fixed date so their timestamps never change.

    Examples
    --------
    >>> from linking_toolkit.sandbox.seed.ids import clock_base
    >>> clock_base(7)
    datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc)
    >>> clock_base(7) == clock_base(8)                     # any seed: the same fixed date
    True
    """
    if seed is not None:
        return datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    return datetime.now(UTC) - timedelta(days=90)
