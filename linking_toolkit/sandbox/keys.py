"""Signing keys and the JWKS of a sandbox tenant.

Keys are always random, even when the tenant is seeded: a seed fixes users, ids and timestamps
so notebook outputs compare, but it must never make a key guessable.
"""

from __future__ import annotations

import secrets
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

__all__ = ["SigningKeys"]


class SigningKeys:
    """The tenant's RS256 key set. The first key signs; all keys are published.

    Examples
    --------
    >>> from linking_toolkit.sandbox.keys import SigningKeys
    >>> keys = SigningKeys()
    >>> token = keys.sign({'sub': 'auth0|ada'})
    >>> token.count('.'), [key['alg'] for key in keys.jwks()['keys']]
    (2, ['RS256'])
    """

    def __init__(self) -> None:
        self._keys: list[RSAKey] = []
        self.rotate()

    def rotate(self) -> RSAKey:
        """Make a new signing key; old ones stay in the JWKS so their tokens still verify."""
        key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_urlsafe(16), "use": "sig",
                                                    "alg": "RS256"}, private=True)
        self._keys.insert(0, key)
        return key

    @property
    def current(self) -> RSAKey:
        return self._keys[0]

    def key_set(self) -> KeySet:
        return KeySet(list(self._keys))

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document, as Auth0 serves it at /.well-known/jwks.json."""
        keys = []
        for key in self._keys:
            public: dict[str, Any] = dict(key.as_dict(private=False))
            public.update({"kid": key.kid, "use": "sig", "alg": "RS256"})
            keys.append(public)
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        header = {"alg": "RS256", "typ": typ, "kid": self.current.kid}
        return jwt.encode(header, claims, self.current, algorithms=["RS256"])

    def decode(self, token: str) -> dict[str, Any]:
        """Decode and check the signature of a token this tenant issued (RS256 only).

        Raises joserfc errors on a bad token; callers turn those into Auth0's error shape.
        """
        tok = jwt.decode(token, self.key_set(), algorithms=["RS256"])
        return dict(tok.claims)
