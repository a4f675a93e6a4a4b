"""The demo tenant: connections, clients, demo people; and synthetic tenants of N users.

With ``seed`` set, ids, timestamps and people are the same on every run (notebook outputs compare);
passwords, client secrets and keys are random on every run all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .store import Store

__all__ = [
    "DATABASE",
    "DEMO_PEOPLE",
    "SOCIAL",
    "DemoTenant",
    "hash_password",
    "iso",
    "seed_demo_tenant",
    "verify_password",
]

DATABASE = "Username-Password-Authentication"
SOCIAL = ("google-oauth2", "facebook", "github")
CONNECTIONS = (DATABASE, *SOCIAL)

# Each provider's own shape of user id (the part after "provider|").
ID_SHAPES: dict[str, tuple[str, int]] = {
    "auth0": ("hex", 24),
    "google-oauth2": ("digits", 21),
    "facebook": ("digits", 16),
    "github": ("digits", 8),
}

NATIVE_SCOPES = "openid profile email offline_access read:current_user update:current_user_identities"
M2M_SCOPES = "read:users update:users delete:users create:users read:user_idp_tokens"

# The demo people. Each entry is one account; the same person may hold several.
# (person, connection, email, email_verified, is_user) -- is_user False means the social provider
# knows the person but they have never logged in to this tenant (their first login creates a user).
DEMO_PEOPLE: list[dict[str, Any]] = [
    {"name": "Ada Lovelace", "email": "ada@example.com",
     "accounts": [(DATABASE, True, True), ("google-oauth2", True, True), ("github", True, False)]},
    {"name": "Grace Hopper", "email": "grace@example.com",
     "accounts": [(DATABASE, True, True), ("github", True, True)]},
    {"name": "Alan Turing", "email": "alan@example.com",
     "accounts": [("google-oauth2", True, True), ("facebook", True, True)]},
    {"name": "Katherine Johnson", "email": "katherine@example.com",
     "accounts": [(DATABASE, True, True), ("google-oauth2", True, False)]},
    # The classic takeover: someone pre-registered Linus's address on the database connection
    # and never verified it; Linus himself signs in with Google.
    {"name": "Linus Torvalds", "email": "linus@example.com",
     "accounts": [("google-oauth2", True, True), (DATABASE, False, True)]},
    {"name": "Margaret Hamilton", "email": "margaret@example.com",
     "accounts": [("facebook", True, True), ("github", True, False)]},
]

PBKDF2_ROUNDS = 20_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        _, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def iso(moment: datetime) -> str:
    """Auth0's timestamp format: ``2023-01-26T14:51:52.123Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class IdFactory:
    """Provider-shaped ids from one random source (seeded for reproducible tenants)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def user_id(self, provider: str) -> str:
        kind, length = ID_SHAPES.get(provider, ("hex", 24))
        if kind == "hex":
            return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))
        first = self.rng.choice("123456789")
        return first + "".join(self.rng.choice("0123456789") for _ in range(length - 1))

    def token(self, prefix: str, length: int = 16) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(length))


def provider_of(connection: str) -> str:
    return "auth0" if connection == DATABASE else connection


def clock_base(seed: int | None) -> datetime:
    """Seeded tenants live at a fixed date so their timestamps never change."""
    if seed is not None:
        return datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    return datetime.now(UTC) - timedelta(days=90)


@dataclass
class DemoTenant:
    native_client_id: str
    m2m_client_id: str
    m2m_client_secret: str
    connections: dict[str, str]
    demo_users: list[dict[str, Any]]  # database users: email, connection, password, user_id


def seed_demo_tenant(store: Store, management_audience: str, seed: int | None = None) -> DemoTenant:
    """Create the connections, the two clients and the demo people in an empty store.

    The machine-to-machine client is granted ``management_audience`` (Management API v2).
    """
    rng = random.Random(seed) if seed is not None else random.Random(secrets.randbits(64))
    ids = IdFactory(rng)
    base = clock_base(seed)

    connections = {name: ids.token("con_") for name in CONNECTIONS}
    native_client_id = ids.token("", 32)
    m2m_client_id = ids.token("", 32)
    m2m_client_secret = secrets.token_urlsafe(48)  # a secret is random, seeded tenant or not
    demo_users: list[dict[str, Any]] = []

    with store.transaction() as db:
        for name, con_id in connections.items():
            db.execute(
                "INSERT INTO connections(id, name, strategy, is_social) VALUES (?,?,?,?)",
                (con_id, name, "auth0" if name == DATABASE else name, int(name != DATABASE)),
            )
        db.execute(
            "INSERT INTO clients(client_id, name, client_secret, app_type, grant_types, redirect_uris)"
            " VALUES (?,?,?,?,?,?)",
            (native_client_id, "Notebook (native)", None, "native",
             json.dumps(["authorization_code", "refresh_token", "http://auth0.com/oauth/grant-type/password-realm",
                         "urn:ietf:params:oauth:grant-type:device_code"]),
             json.dumps(["http://127.0.0.1/callback", "http://localhost/callback"])),
        )
        db.execute(
            "INSERT INTO clients(client_id, name, client_secret, app_type, grant_types, redirect_uris)"
            " VALUES (?,?,?,?,?,?)",
            (m2m_client_id, "Audit (machine to machine)", m2m_client_secret, "non_interactive",
             json.dumps(["client_credentials"]), json.dumps([])),
        )
        db.execute(
            "INSERT INTO client_grants(client_id, audience, scope) VALUES (?, ?, ?)",
            (m2m_client_id, management_audience, M2M_SCOPES),
        )
        for setting, value in (("native_client_id", native_client_id),
                               ("m2m_client_id", m2m_client_id),
                               ("native_scopes", NATIVE_SCOPES)):
            db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (setting, value))

        minutes = 0
        for person in DEMO_PEOPLE:
            given, _, family = person["name"].partition(" ")
            for connection, verified, is_user in person["accounts"]:
                provider = provider_of(connection)
                provider_id = ids.user_id(provider)
                minutes += rng.randint(60, 60 * 24 * 7)
                created = iso(base + timedelta(minutes=minutes))
                profile = {
                    "email": person["email"],
                    "email_verified": verified,
                    "name": person["name"] if connection != DATABASE else person["email"],
                    "nickname": person["email"].split("@")[0],
                    "given_name": given if connection != DATABASE else None,
                    "family_name": family if connection != DATABASE else None,
                    "picture": f"https://avatars.example.com/{person['email'].split('@')[0]}.png",
                }
                if connection != DATABASE:
                    db.execute(
                        "INSERT INTO upstream_accounts(connection, sub, email, email_verified, name,"
                        " given_name, family_name, picture) VALUES (?,?,?,?,?,?,?,?)",
                        (connection, provider_id, profile["email"], int(verified), profile["name"],
                         given, family, profile["picture"]),
                    )
                if not is_user:
                    continue
                password = None
                if connection == DATABASE:
                    password = secrets.token_urlsafe(12)
                user_id = store.insert_user(
                    db, provider=provider, user_id=provider_id, connection=connection,
                    is_social=connection != DATABASE, profile=profile, created_at=created,
                    password_hash=hash_password(password) if password else None,
                    user_metadata={"theme": rng.choice(["light", "dark"])},
                    last_login=created, logins_count=1,
                )
                if password:
                    demo_users.append({"email": person["email"], "connection": connection,
                                       "password": password, "user_id": user_id,
                                       "email_verified": verified})

    return DemoTenant(native_client_id, m2m_client_id, m2m_client_secret, connections, demo_users)


def seed_synthetic_users(store: Store, n: int, seed: int | None = None) -> None:
    """Add ``n`` synthetic users. Placeholder: see issue 2."""
    raise NotImplementedError
