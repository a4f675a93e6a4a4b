"""The demo tenant: its connections, its two clients, and the demo people a learner logs in as.

With ``seed`` set, ids, timestamps and people are the same on every run (notebook outputs compare);
passwords, client secrets and keys are random on every run all the same.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..browser_apps import (
    DEFAULT_SPA_CALLBACK_URLS,
    DEFAULT_SPA_LOGOUT_URLS,
    DEFAULT_SPA_WEB_ORIGINS,
    SPA_CLIENT_NAME,
)
from ..connections import CONNECTIONS, DATABASE, provider_of
from ..defaults import ACCESS_TOKEN_SECONDS, DEVICE_CODE, PASSWORD_REALM
from ..passwords import hash_password
from ..store import Store, iso
from .ids import IdFactory, clock_base

__all__ = ["DEMO_PEOPLE", "M2M_SCOPES", "MANAGEMENT_API_SCOPES", "SPA_SCOPES", "DemoTenant",
           "ensure_configuration", "ensure_spa_client", "reopen_demo_tenant", "seed_demo_tenant"]

NATIVE_SCOPES = "openid profile email offline_access read:current_user update:current_user_identities"
# What a user's token for the Management API may hold, from the native or the single-page app.
SPA_SCOPES = "read:current_user update:current_user_identities"
# The analyst's client: the users' scopes, and reading (and fixing) the tenant's configuration, which
# `doctor` checks: its applications, their grants, its APIs and connections.
M2M_SCOPES = ("read:users update:users delete:users create:users read:user_idp_tokens "
              "read:clients update:clients read:resource_servers update:resource_servers "
              "read:client_grants read:connections")
MANAGEMENT_API_NAME = "Auth0 Management API"
# The scopes the Management API of the sandbox knows, as Auth0's document describes them.
MANAGEMENT_API_SCOPES = [
    {"value": value, "description": description} for value, description in (
        ("read:users", "Read Users"), ("update:users", "Update Users"), ("delete:users", "Delete Users"),
        ("create:users", "Create Users"), ("read:user_idp_tokens", "Read User IDP Tokens"),
        ("read:current_user", "Read Current User"),
        ("update:current_user_identities", "Update Current User Identities"),
        ("update:current_user_metadata", "Update Current User Metadata"),
        ("delete:current_user", "Delete Current User"),
        ("update:users_app_metadata", "Update Users App Metadata"),
        ("read:clients", "Read Clients"), ("update:clients", "Update Clients"),
        ("read:client_keys", "Read Client Keys"),
        ("read:client_grants", "Read Client Grants"), ("create:client_grants", "Create Client Grants"),
        ("update:client_grants", "Update Client Grants"),
        ("read:resource_servers", "Read Resource Servers"),
        ("update:resource_servers", "Update Resource Servers"),
        ("read:connections", "Read Connections"), ("update:connections", "Update Connections"),
    )]

# The demo people. Each entry is one account; the same person may hold several.
# (connection, email_verified, is_user) -- is_user False means the social provider knows the
# person but they have never logged in to this tenant (their first login creates a user).
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


@dataclass
class DemoTenant:
    """What ``seed_demo_tenant`` made: the clients' ids, the M2M secret and the demo users
    (with their passwords).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> [user['email'] for user in demo.demo_users]
    ['ada@example.com', 'grace@example.com', 'katherine@example.com', 'linus@example.com']
    """
    native_client_id: str
    m2m_client_id: str
    m2m_client_secret: str
    demo_users: list[dict[str, Any]]  # database users: email, connection, password, user_id
    spa_client_id: str = ""


def seed_demo_tenant(store: Store, management_audience: str, seed: int | None = None,
                     spa_callback_urls: tuple[str, ...] = DEFAULT_SPA_CALLBACK_URLS,
                     spa_logout_urls: tuple[str, ...] = DEFAULT_SPA_LOGOUT_URLS,
                     spa_web_origins: tuple[str, ...] = DEFAULT_SPA_WEB_ORIGINS) -> DemoTenant:
    """Create the connections, the three clients and the demo people in an empty store.

    The machine-to-machine client is granted ``management_audience`` (Management API v2); so is
    the single-page app, for its users' own scopes (``SPA_SCOPES``), with ``spa_callback_urls`` as
    its Allowed Callback URLs (and ``spa_logout_urls``, ``spa_web_origins`` its Allowed Logout URLs
    and Web Origins). Every connection is enabled for every client; the Management API is a
    resource server that allows offline access.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> [connection['name'] for connection in store.connections()]
    ['Username-Password-Authentication', 'google-oauth2', 'facebook', 'github']
    >>> demo.demo_users[0]['email'], demo.demo_users[0]['user_id']
    ('ada@example.com', 'auth0|e228f219e9cb0eb53f16947c')
    """
    # Seeded ids and timestamps must repeat; secrets and keys come from `secrets`.
    rng = random.Random(seed if seed is not None else secrets.randbits(64))  # noqa: S311
    ids = IdFactory(rng)
    connections = {name: ids.token("con_") for name in CONNECTIONS}
    native_client_id = ids.token("", 32)
    m2m_client_id = ids.token("", 32)
    m2m_client_secret = secrets.token_urlsafe(48)  # a secret is random, seeded tenant or not
    with store.transaction() as db:
        for name, con_id in connections.items():
            store.insert_connection(db, con_id=con_id, name=name, strategy=provider_of(name),
                                    is_social=name != DATABASE)
        _add_clients(store, db, native_client_id, m2m_client_id, m2m_client_secret, management_audience)
        demo_users = _add_demo_people(store, db, ids, clock_base(seed))
        # Drawn last, so a seeded tenant's other ids are those it had before there was an SPA.
        spa_client_id = ids.token("", 32)
        _add_spa_client(store, db, spa_client_id, management_audience, spa_callback_urls)
    store.update_client(spa_client_id, {"allowed_logout_urls": list(spa_logout_urls),
                                        "web_origins": list(spa_web_origins),
                                        "allowed_origins": list(spa_web_origins)})
    ensure_configuration(store, management_audience)
    return DemoTenant(native_client_id, m2m_client_id, m2m_client_secret, demo_users, spa_client_id)


def _add_spa_client(store: Store, db: sqlite3.Connection, client_id: str, management_audience: str,
                    callback_urls: tuple[str, ...]) -> None:
    """The browser app of ``examples/spa-linking``: public, code + PKCE and refresh tokens."""
    store.insert_client(db, client_id=client_id, name=SPA_CLIENT_NAME, secret=None, app_type="spa",
                        grant_types=["authorization_code", "refresh_token"],
                        redirect_uris=list(callback_urls))
    store.insert_client_grant(db, client_id=client_id, audience=management_audience, scope=SPA_SCOPES)
    store.write_setting(db, "spa_client_id", client_id)


def ensure_spa_client(store: Store, management_audience: str, callback_urls: tuple[str, ...],
                      logout_urls: tuple[str, ...] = DEFAULT_SPA_LOGOUT_URLS,
                      web_origins: tuple[str, ...] = DEFAULT_SPA_WEB_ORIGINS) -> str:
    """The single-page app of a reopened tenant, with this run's Allowed Callback URLs, Logout URLs
    and Web Origins (a file made before there was one gets it now). Returns its client id.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.seed.demo import ensure_spa_client
    >>> spa = ensure_spa_client(store, 'https://127.0.0.1:5000/api/v2/', ('http://localhost:3000',))
    >>> spa == demo.spa_client_id
    True
    """
    client_id = store.get_setting("spa_client_id")
    if not client_id:
        client_id = secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")[:32]
        with store.transaction() as db:
            _add_spa_client(store, db, client_id, management_audience, callback_urls)
    store.update_client(client_id, {"redirect_uris": list(callback_urls),
                                    "allowed_logout_urls": list(logout_urls),
                                    "web_origins": list(web_origins), "allowed_origins": list(web_origins)})
    return client_id


def ensure_configuration(store: Store, management_audience: str) -> None:
    """What a tenant made before the Management API served its configuration lacks, added once:
    the Management API as a resource server, every connection enabled for every client, and the
    scopes ``doctor`` needs added to the M2M client's grant (a later change to it is kept).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.seed.demo import ensure_configuration
    >>> ensure_configuration(store, 'https://127.0.0.1:5000/api/v2/')    # a second time: nothing to add
    >>> [server['identifier'] for server in store.resource_servers()]
    ['https://127.0.0.1:5000/api/v2/']
    """
    if store.get_setting("configuration_version") == "1":
        return
    m2m_id = store.get_setting("m2m_client_id") or ""
    for grant in store.client_grants(client_id=m2m_id):
        store.update_client_grant(grant["id"], list(dict.fromkeys([*grant["scope"], *M2M_SCOPES.split()])))
    with store.transaction() as db:
        store.insert_resource_server(db, server_id=secrets.token_hex(12), name=MANAGEMENT_API_NAME,
                                     identifier=management_audience, is_system=True,
                                     allow_offline_access=True, token_lifetime=ACCESS_TOKEN_SECONDS,
                                     scopes=MANAGEMENT_API_SCOPES)
        store.enable_every_connection(db)
        store.write_setting(db, "configuration_version", "1")


def _add_clients(store: Store, db: sqlite3.Connection, native_client_id: str, m2m_client_id: str,
                 m2m_client_secret: str, management_audience: str) -> None:
    """The notebook's native client and the analyst's machine-to-machine one, and the settings
    that name them."""
    store.insert_client(db, client_id=native_client_id, name="Notebook (native)", secret=None,
                        app_type="native",
                        grant_types=["authorization_code", "refresh_token", PASSWORD_REALM, DEVICE_CODE],
                        redirect_uris=["http://127.0.0.1/callback", "http://localhost/callback"])
    store.insert_client(db, client_id=m2m_client_id, name="Audit (machine to machine)",
                        secret=m2m_client_secret, app_type="non_interactive",
                        grant_types=["client_credentials"], redirect_uris=[])
    store.insert_client_grant(db, client_id=m2m_client_id, audience=management_audience, scope=M2M_SCOPES)
    for setting, value in (("native_client_id", native_client_id), ("m2m_client_id", m2m_client_id),
                           ("native_scopes", NATIVE_SCOPES)):
        store.write_setting(db, setting, value)


def _add_demo_people(store: Store, db: sqlite3.Connection, ids: IdFactory,
                     base: datetime) -> list[dict[str, Any]]:
    """Every account of ``DEMO_PEOPLE``: a user each (unless the person never logged in here) and,
    for social ones, the upstream account. Returns the database users with their passwords."""
    demo_users: list[dict[str, Any]] = []
    minutes = 0
    for person in DEMO_PEOPLE:
        given, _, family = person["name"].partition(" ")
        for connection, verified, is_user in person["accounts"]:
            provider = provider_of(connection)
            provider_id = ids.user_id(provider)
            minutes += ids.rng.randint(60, 60 * 24 * 7)
            created = iso(base + timedelta(minutes=minutes))
            social = connection != DATABASE
            profile = {
                "email": person["email"],
                "email_verified": verified,
                "name": person["name"] if social else person["email"],
                "nickname": person["email"].split("@")[0],
                "given_name": given if social else None,
                "family_name": family if social else None,
                "picture": f"https://avatars.example.com/{person['email'].split('@')[0]}.png",
            }
            if social:
                store.insert_upstream_account(db, connection=connection, sub=provider_id, profile=profile)
            if not is_user:
                continue
            password = None if social else secrets.token_urlsafe(12)
            user_id = store.insert_user(
                db, provider=provider, user_id=provider_id, connection=connection, is_social=social,
                profile=profile, created_at=created,
                password_hash=hash_password(password) if password else None,
                user_metadata={"theme": ids.rng.choice(["light", "dark"])},
                last_login=created, logins_count=1,
            )
            if password:
                demo_users.append({"email": person["email"], "connection": connection,
                                   "password": password, "user_id": user_id, "email_verified": verified})
    return demo_users


def reopen_demo_tenant(store: Store, management_audience: str,
                       spa_callback_urls: tuple[str, ...] = DEFAULT_SPA_CALLBACK_URLS,
                       spa_logout_urls: tuple[str, ...] = DEFAULT_SPA_LOGOUT_URLS,
                       spa_web_origins: tuple[str, ...] = DEFAULT_SPA_WEB_ORIGINS) -> DemoTenant:
    """The demo tenant of an existing database file, now served at ``management_audience``.

    Passwords are stored only as hashes, so the demo users get new random passwords (the info
    line prints them); the M2M secret is read back from its client row.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.seed.demo import reopen_demo_tenant
    >>> again = reopen_demo_tenant(store, 'https://127.0.0.1:5001/api/v2/')
    >>> again.native_client_id == demo.native_client_id, [user['email'] for user in again.demo_users][:2]
    (True, ['ada@example.com', 'grace@example.com'])
    """
    native_id = store.get_setting("native_client_id") or ""
    m2m_id = store.get_setting("m2m_client_id") or ""
    m2m = store.client(m2m_id)
    # The audience holds the port, which changes between runs: the grant and the stored refresh
    # tokens follow the API to its new address, or client credentials would be refused.
    store.move_audience(m2m_id, management_audience)
    spa_id = ensure_spa_client(store, management_audience, spa_callback_urls, spa_logout_urls,
                               spa_web_origins)
    ensure_configuration(store, management_audience)
    demo_emails = {person["email"] for person in DEMO_PEOPLE}
    demo_users: list[dict[str, Any]] = []
    hashes: dict[tuple[str, str], str] = {}
    for identity in store.database_identities(DATABASE):
        if identity["email"] not in demo_emails:
            continue
        password = secrets.token_urlsafe(12)
        hashes[identity["provider"], identity["user_id"]] = hash_password(password)
        demo_users.append({"email": identity["email"], "connection": DATABASE, "password": password,
                           "user_id": identity["owner"], "email_verified": identity["email_verified"]})
    store.set_password_hashes(hashes)
    return DemoTenant(native_id, m2m_id, (m2m or {}).get("client_secret") or "", demo_users, spa_id)
