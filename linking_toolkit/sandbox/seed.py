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

from .store import Store, iso

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


# -- synthetic tenants ----------------------------------------------------------------------------

# The known shape of a synthetic tenant (the audit's tests and benchmark rely on these shares).
DUPLICATE_SHARE = 0.10      # people with accounts in 2 or 3 connections, all under one email
THREE_ACCOUNT_SHARE = 0.30  # of those, the share with 3 accounts rather than 2
LINKED_SHARE = 0.15         # of those, the share whose first two accounts are already linked
UNVERIFIED_SHARE = 0.25     # of those, the share with one account whose email is unverified
CASE_VARIANT_SHARE = 0.30   # social accounts of those people whose provider sends Mixed.Case@Example.org
SINGLE_CONNECTION_WEIGHTS = (0.55, 0.25, 0.10, 0.10)  # database, google-oauth2, facebook, github
SYNTHETIC_DOMAIN = "example.org"  # the demo people use example.com, so no synthetic user joins them
SYNTHETIC_SETTING = "synthetic_users"

GIVEN_NAMES = ("Amara", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
               "Kofi", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quinn", "Rosa", "Sami", "Tara",
               "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe")
FAMILY_NAMES = ("Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
                "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe",
                "Rossi", "Silva", "Tanaka", "Umarov", "Varga", "Weber", "Xu", "Yilmaz", "Zimmer")
# A few user_metadata shapes, some overlapping (theme) and one nested, so merges have work to do.
METADATA_VARIANTS = (
    {"theme": "dark"},
    {"theme": "light", "locale": "en-GB"},
    {"locale": "fr-FR", "preferences": {"newsletter": True}},
    {"theme": "dark", "preferences": {"newsletter": False, "digest": "weekly"}},
    {"plan": "pro", "preferences": {"digest": "daily"}},
)
METADATA_SHARE = 0.30


@dataclass
class SyntheticTenant:
    """What ``seed_synthetic_users`` made: the ground truth a test or a benchmark checks against.

    ``safe_groups`` / ``unsafe_groups`` hold, per duplicate person whose accounts are still spread
    over several users, the sorted full user ids of those users; a group is unsafe when one of
    those users' own email is unverified.
    """

    seed: int | None
    users: int
    identities: int
    people: int
    duplicate_people: int
    linked_users: int
    safe_groups: list[list[str]]
    unsafe_groups: list[list[str]]

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_store(cls, store: Store) -> SyntheticTenant | None:
        """The ground truth stored by the last ``seed_synthetic_users`` call, if any."""
        raw = store.get_setting(SYNTHETIC_SETTING)
        return cls(**json.loads(raw)) if raw else None


def _bijective_ids(count: int, start: int, modulus: int, offset: int, width: int, hex_: bool,
                   rng: Any, taken: set[str]) -> list[str]:
    """``count`` distinct, random-looking ids: an affine bijection of a counter modulo ``modulus``.

    A bijection, not random draws, because 8-digit GitHub ids would collide by the hundred in a
    tenant of a million users; ``taken`` (ids already in the store) are skipped.
    """
    from math import gcd

    def draw() -> int:  # numpy's integers stop at 64 bits; a 24-hex-digit modulus needs 96
        return int.from_bytes(rng.bytes(16), "big") % modulus

    mult = draw() | 1
    while gcd(mult, modulus) != 1:
        mult = draw() | 1
    add = draw()
    fmt = f"0{width}x" if hex_ else "d"
    out: list[str] = []
    k = start
    while len(out) < count:
        batch = [format(offset + (mult * i + add) % modulus, fmt) for i in range(k, k + count - len(out))]
        k += len(batch)
        out.extend(b for b in batch if b not in taken)
    return out


def seed_synthetic_users(store: Store, n: int, seed: int | None = None) -> SyntheticTenant:
    """Add exactly ``n`` synthetic users, a known share of whom are one person under several accounts.

    Why this shape: an audit must find people with accounts in several connections under one email,
    tell safe groups (every email verified) from unsafe ones, and leave already-linked accounts
    alone. So ``DUPLICATE_SHARE`` of the people have 2 or 3 accounts in distinct connections sharing
    one address (the social copies sometimes in another letter case); of those, ``LINKED_SHARE``
    already have their first two accounts linked and ``UNVERIFIED_SHARE`` have one unverified
    account (the database one when there is one: the pre-registration takeover). Emails are
    ``given.family.<person>@example.org``. Synthetic users have no password (nobody logs in as
    them) and no upstream social account.

    Rows are built column-wise with numpy and written with ``executemany`` in one transaction:
    100 000 users take a few seconds, 1 000 000 are feasible. With ``seed`` the tenant is the same
    on every run. The ground truth is returned and stored (``SyntheticTenant.from_store``).
    """
    import numpy as np  # only synthetic tenants need it (pandas brings it anyway)

    rng = np.random.default_rng(seed)
    base = clock_base(seed)
    previous = SyntheticTenant.from_store(store)
    people_before = previous.people if previous else 0
    accounts_before = previous.identities if previous else 0
    if n <= 0:
        return previous or SyntheticTenant(seed, 0, 0, 0, 0, 0, [], [])

    # -- people: how many accounts each, linked or not, one unverified or not --------------------
    people = n  # an upper bound: every person holds at least one user
    dup = rng.random(people) < DUPLICATE_SHARE
    n_acc = np.where(dup, np.where(rng.random(people) < THREE_ACCOUNT_SHARE, 3, 2), 1)
    linked = dup & (rng.random(people) < LINKED_SHARE)
    unverified = dup & (rng.random(people) < UNVERIFIED_SHARE)
    users_per = n_acc - linked
    cum = np.cumsum(users_per)
    last = int(np.searchsorted(cum, n))
    people = last + 1
    dup, n_acc, linked, unverified = dup[:people], n_acc[:people], linked[:people], unverified[:people]
    rest = n - (int(cum[last - 1]) if last else 0)  # users the last person may still hold
    if rest < users_per[last]:  # cut the last person down so the total is exactly n
        n_acc[last], linked[last], dup[last] = rest, False, rest > 1
        unverified[last] &= rest > 1

    # -- accounts: one row per identity, in person order --------------------------------------------
    accounts = int(n_acc.sum())
    person_of = np.repeat(np.arange(people), n_acc)
    first = np.cumsum(n_acc) - n_acc
    slot = np.arange(accounts) - first[person_of]  # 0 for each person's first account
    shuffled = np.argsort(rng.random((people, len(CONNECTIONS))), axis=1)  # distinct connections
    single = rng.choice(len(CONNECTIONS), size=people, p=SINGLE_CONNECTION_WEIGHTS)
    conn = np.where(n_acc[person_of] == 1, single[person_of], shuffled[person_of, np.minimum(slot, 3)])
    is_db = conn == 0
    has_db = np.zeros(people, dtype=bool)
    np.logical_or.at(has_db, person_of, is_db)
    unverified_pick = unverified[person_of] & np.where(has_db[person_of], is_db,
                                                       slot == n_acc[person_of] - 1)
    verified = np.where(is_db, rng.random(accounts) < np.where(dup[person_of], 1.0, 0.8),
                        (conn == 1) | (rng.random(accounts) < 0.97))
    verified &= ~unverified_pick
    verified |= dup[person_of] & ~unverified[person_of]  # a "safe" person is verified everywhere
    case_variant = dup[person_of] & ~is_db & (rng.random(accounts) < CASE_VARIANT_SHARE)
    given = rng.integers(0, len(GIVEN_NAMES), size=people)
    family = rng.integers(0, len(FAMILY_NAMES), size=people)

    # -- timestamps (Auth0's format, millisecond precision) -----------------------------------------
    base_ms = np.datetime64(base.replace(tzinfo=None), "ms")
    three_years_ms = 3 * 365 * 24 * 3600 * 1000
    created = base_ms - rng.integers(0, three_years_ms, size=accounts).astype("timedelta64[ms]")
    has_login = rng.random(accounts) < 0.9
    since = (base_ms - created).astype(np.int64)
    last_login = created + (rng.random(accounts) * since).astype(np.int64).astype("timedelta64[ms]")
    logins = np.where(has_login, 1 + rng.geometric(0.15, size=accounts), 0)
    created_s = [s + "Z" for s in np.datetime_as_string(created, unit="ms").tolist()]
    login_s = [s + "Z" for s in np.datetime_as_string(last_login, unit="ms").tolist()]
    metadata_pick = np.where(rng.random(accounts) < METADATA_SHARE,
                             rng.integers(0, len(METADATA_VARIANTS), size=accounts), -1)
    metadata_json = [json.dumps(m) for m in METADATA_VARIANTS]

    # -- ids: provider-shaped, distinct, never one the store already holds -------------------------
    with store.read() as db:
        taken: dict[str, set[str]] = {}
        for row in db.execute("SELECT provider, user_id FROM identities"):
            taken.setdefault(row["provider"], set()).add(row["user_id"])
    provider_names = [provider_of(c) for c in CONNECTIONS]
    ids_by_conn: list[list[str]] = []
    for index, provider in enumerate(provider_names):
        count = int((conn == index).sum())
        kind, width = ID_SHAPES[provider]
        if kind == "hex":
            ids = _bijective_ids(count, accounts_before, 16**width, 0, width, True, rng,
                                 taken.get(provider, set()))
        else:
            low = 10 ** (width - 1)
            ids = _bijective_ids(count, accounts_before, 9 * low, low, width, False, rng,
                                 taken.get(provider, set()))
        ids_by_conn.append(ids)
    cursor = [0] * len(CONNECTIONS)

    # -- rows, written in chunks inside one transaction (a million tuples at once would cost GBs) ---
    owners: list[str] = [""] * accounts
    conn_l, slot_l, person_l = conn.tolist(), slot.tolist(), person_of.tolist()
    verified_l, case_l, login_l = verified.tolist(), case_variant.tolist(), has_login.tolist()
    logins_l, meta_l = logins.tolist(), metadata_pick.tolist()
    linked_l, given_l, family_l = linked.tolist(), given.tolist(), family.tolist()
    encode = json.JSONEncoder(separators=(",", ":")).encode

    def rows(lo: int, hi: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        user_rows: list[tuple[Any, ...]] = []
        identity_rows: list[tuple[Any, ...]] = []
        for a in range(lo, hi):
            c, p = conn_l[a], person_l[a]
            provider = provider_names[c]
            pid = ids_by_conn[c][cursor[c]]
            cursor[c] += 1
            full = f"{provider}|{pid}"
            gn, fn = GIVEN_NAMES[given_l[p]], FAMILY_NAMES[family_l[p]]
            local = f"{gn}.{fn}.{people_before + p}"
            email = f"{local}@Example.org" if case_l[a] else f"{local.lower()}@{SYNTHETIC_DOMAIN}"
            if c == 0:  # Auth0 database profiles: the email is the name, no given/family name
                profile = {"email": email, "email_verified": verified_l[a], "name": email,
                           "nickname": local.lower(), "picture": f"https://avatars.example.org/{pid}.png"}
            else:
                profile = {"email": email, "email_verified": verified_l[a], "name": f"{gn} {fn}",
                           "nickname": local.lower(), "given_name": gn, "family_name": fn,
                           "picture": f"https://avatars.example.org/{pid}.png"}
            secondary = linked_l[p] and slot_l[a] == 1
            owner = owners[a - 1] if secondary else full
            owners[a] = owner
            identity_rows.append((provider, pid, CONNECTIONS[c], int(c != 0), owner, int(secondary),
                                  encode(profile)))
            if secondary:  # a linked secondary has no user of its own
                continue
            login = login_s[a] if login_l[a] else None
            user_rows.append((full, email, int(verified_l[a]), profile["name"], profile["nickname"],
                              profile.get("given_name"), profile.get("family_name"), profile["picture"],
                              created_s[a], login or created_s[a], login, logins_l[a],
                              metadata_json[meta_l[a]] if meta_l[a] >= 0 else "{}"))
        return user_rows, identity_rows

    with store.transaction() as db:
        for lo in range(0, accounts, 50_000):
            user_rows, identity_rows = rows(lo, min(lo + 50_000, accounts))
            db.executemany(
                "INSERT INTO users(user_id, email, email_verified, name, nickname, given_name,"
                " family_name, picture, created_at, updated_at, last_login, logins_count, user_metadata)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", user_rows)
            db.executemany(
                "INSERT INTO identities(provider, user_id, connection, is_social, owner, position,"
                " profile_data) VALUES (?,?,?,?,?,?,?)", identity_rows)
        # a group is unsafe when one of its users' own (root) email is unverified: that is what an
        # audit sees, as an export does not carry the profiles of identities already linked
        unverified_user = ~verified & ~(linked[person_of] & (slot == 1))
        unsafe_person = np.zeros(people, dtype=bool)
        np.logical_or.at(unsafe_person, person_of, unverified_user)
        truth = _ground_truth(seed, n, accounts, people, dup, linked, unsafe_person, n_acc, first, owners,
                              previous)
        db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)",
                   (SYNTHETIC_SETTING, truth.to_json()))
    return truth


def _ground_truth(seed: int | None, n: int, accounts: int, people: int, dup: Any, linked: Any,
                  unsafe: Any, n_acc: Any, first: Any, owners: list[str],
                  previous: SyntheticTenant | None) -> SyntheticTenant:
    """Per duplicate person whose accounts are still spread over several users, those users."""
    import numpy as np

    safe_groups: list[list[str]] = []
    unsafe_groups: list[list[str]] = []
    unsafe_l, first_l, n_acc_l = unsafe.tolist(), first.tolist(), n_acc.tolist()
    for p in np.flatnonzero(n_acc - linked > 1).tolist():
        group = sorted({owners[a] for a in range(first_l[p], first_l[p] + n_acc_l[p])})
        (unsafe_groups if unsafe_l[p] else safe_groups).append(group)
    before = previous or SyntheticTenant(seed, 0, 0, 0, 0, 0, [], [])
    return SyntheticTenant(
        seed=seed, users=n + before.users, identities=accounts + before.identities,
        people=people + before.people,
        duplicate_people=int(dup.sum()) + before.duplicate_people,
        linked_users=int(linked.sum()) + before.linked_users,
        safe_groups=before.safe_groups + safe_groups,
        unsafe_groups=before.unsafe_groups + unsafe_groups,
    )
