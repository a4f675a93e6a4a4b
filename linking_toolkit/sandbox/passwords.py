"""Password hashes of the sandbox's database users: PBKDF2-SHA256, salted, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]

PBKDF2_ROUNDS = 20_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password`` (a new random salt unless ``salt`` is given), as stored.

    Examples
    --------
    >>> from linking_toolkit.sandbox.passwords import hash_password, verify_password
    >>> stored = hash_password('correct horse battery staple')
    >>> verify_password('correct horse battery staple', stored), verify_password('wrong', stored)
    (True, False)
    """
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a hash made by ``hash_password`` (False for no hash at all).

    Examples
    --------
    >>> from linking_toolkit.sandbox.passwords import hash_password, verify_password
    >>> verify_password('secret-1', hash_password('secret-1')), verify_password('secret-1', None)
    (True, False)
    """
    if not stored:
        return False
    try:
        _, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)
