"""Synthetic tenants: N users, a known share of whom are one person under several accounts.

Besides one email for all of a person's accounts (``DUPLICATE_SHARE``), people make the
duplicates of ``duplicates.py``: aliases of one mailbox, one phone under two emails, a nickname
or a typo at another domain; and two kinds of hard negatives (namesakes, a family sharing a phone).
The shares below are the ground truth the audit's tests and benchmark check against. Rows are built
column-wise with numpy: people first (how many accounts each, linked, unverified), then one row per
account (connection, verification, names, timestamps, metadata), then provider-shaped ids, then the
rows written in chunks inside one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from math import gcd
from typing import Any

import numpy as np

from ..connections import CONNECTIONS, provider_of
from ..store import Store
from .duplicates import (
    ALIAS,
    COMMON_NAME,
    EXACT,
    NAMESAKE,
    PHONE,
    PROBABLE,
    SHARED_PHONE,
    SINGLE,
    SYNTHETIC_PHONE_REGION,
    AccountTexts,
    account_texts,
    draw_kinds,
    draw_names,
)
from .ids import ID_SHAPES, clock_base

__all__ = ["SyntheticTenant", "seed_synthetic_users"]

# The known shape of a synthetic tenant (the audit's tests and benchmark rely on these shares).
DUPLICATE_SHARE = 0.10      # people with accounts in 2 or 3 connections, all under one email
THREE_ACCOUNT_SHARE = 0.30  # of those (and of alias people), the share with 3 accounts rather than 2
LINKED_SHARE = 0.15         # of those, the share whose first two accounts are already linked
UNVERIFIED_SHARE = 0.25     # of those, the share with one account whose email is unverified
CASE_VARIANT_SHARE = 0.30   # social accounts of those people whose provider sends Mixed.Case@Example.org
SINGLE_CONNECTION_WEIGHTS = (0.55, 0.25, 0.10, 0.10)  # database, google-oauth2, facebook, github
SYNTHETIC_DOMAIN = "example.org"  # the exact tier's people; the demo people use example.com
SYNTHETIC_SETTING = "synthetic_users"
ROWS_PER_CHUNK = 50_000

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
    those users' own email is unverified. ``duplicate_people`` counts those people (one email).

    ``alias_groups``, ``phone_groups`` and ``probable_groups`` hold, per person of that kind, the
    sorted full user ids of their users (never linked, none sharing a normalised email with
    anyone): one mailbox under several spellings, one phone under two emails, a nickname or typo
    at another domain. ``negative_pairs`` are ``[user_id_a, user_id_b, kind]`` (a < b) of two
    people who are not one: ``"common_name"`` (same given and family name, same email domain) or
    ``"shared_phone"`` (same phone and family name, other given names). National phone numbers
    are written in ``phone_region``. A person is of one kind only.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.synthetic import seed_synthetic_users
    >>> truth = seed_synthetic_users(Store(':memory:'), 200, seed=7)
    >>> truth.users, truth.duplicate_people, len(truth.safe_groups), len(truth.unsafe_groups)
    (200, 15, 12, 2)
    """

    seed: int | None
    users: int
    identities: int
    people: int
    duplicate_people: int
    linked_users: int
    safe_groups: list[list[str]]
    unsafe_groups: list[list[str]]
    alias_groups: list[list[str]] = field(default_factory=list)
    phone_groups: list[list[str]] = field(default_factory=list)
    probable_groups: list[list[str]] = field(default_factory=list)
    negative_pairs: list[list[str]] = field(default_factory=list)
    phone_region: str = SYNTHETIC_PHONE_REGION

    def person_pairs(self) -> dict[str, set[tuple[str, str]]]:
        """The true same-person pairs ``(a, b)``, a < b, of each kind: ``exact`` (safe and unsafe
        groups), ``alias``, ``phone``, ``probable``."""
        kinds = {"exact": self.safe_groups + self.unsafe_groups, "alias": self.alias_groups,
                 "phone": self.phone_groups, "probable": self.probable_groups}
        return {kind: {pair for group in groups for pair in combinations(sorted(group), 2)}
                for kind, groups in kinds.items()}

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


@dataclass
class _People:
    """Per person: kind, how many accounts, whether an exact duplicate, linked, one unverified account."""

    count: int
    kind: Any
    dup: Any
    n_acc: Any
    linked: Any
    unverified: Any


@dataclass
class _Accounts:
    """Per account (one identity each), in person order."""

    count: int
    person_of: Any
    first: Any  # per person: the index of their first account
    slot: Any  # 0 for each person's first account
    conn: Any  # an index into CONNECTIONS
    verified: Any
    case_variant: Any
    texts: AccountTexts
    created: list[str]
    last_login: list[str]
    has_login: Any
    logins: Any
    metadata: Any  # an index into METADATA_VARIANTS, or -1


def seed_synthetic_users(store: Store, n: int, seed: int | None = None) -> SyntheticTenant:
    """Add exactly ``n`` synthetic users, a known share of whom are one person under several accounts.

    Why this shape: an audit must find people with accounts in several connections under one email,
    tell safe groups (every email verified) from unsafe ones, and leave already-linked accounts
    alone. So ``DUPLICATE_SHARE`` of the people have 2 or 3 accounts in distinct connections sharing
    one address (the social copies sometimes in another letter case); of those, ``LINKED_SHARE``
    already have their first two accounts linked and ``UNVERIFIED_SHARE`` have one unverified
    account (the database one when there is one: the pre-registration takeover); their emails are
    ``given.family.<person>@example.org``. Other people are single or make the duplicates of
    ``duplicates.py`` (left unlinked, their emails at gmail.com, outlook.com, ... or work domains
    under .example, ``SYNTHETIC_PHONE_REGION`` phones on a fifth of the people). Synthetic users
    have no password (nobody logs in as them) and no upstream social account.

    Rows are built column-wise with numpy and written with ``Store.insert_user_rows`` in one transaction:
    100 000 users take a few seconds, 1 000 000 are feasible. With ``seed`` the tenant is the same
    on every run. The ground truth is returned and stored (``SyntheticTenant.from_store``).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.synthetic import seed_synthetic_users
    >>> store = Store(':memory:')
    >>> truth = seed_synthetic_users(store, 100, seed=7)
    >>> truth.users, store.count_users()
    (100, 100)
    """
    rng = np.random.default_rng(seed)
    previous = SyntheticTenant.from_store(store)
    if n <= 0:
        return previous or SyntheticTenant(seed, 0, 0, 0, 0, 0, [], [])
    people = _draw_people(rng, n)
    accounts = _draw_accounts(rng, people, clock_base(seed), previous.people if previous else 0)
    ids = _provider_ids(store, rng, accounts, previous.identities if previous else 0)
    owners: list[str] = [""] * accounts.count
    rows = _RowBuilder(people, accounts, ids, owners, previous.people if previous else 0)
    with store.transaction() as db:
        with store.email_indexes_deferred(db):
            for lo in range(0, accounts.count, ROWS_PER_CHUNK):
                store.insert_user_rows(db, *rows.build(lo, min(lo + ROWS_PER_CHUNK, accounts.count)))
        truth = _ground_truth(seed, n, accounts.count, people, _unsafe_people(people, accounts),
                              accounts.first, owners, previous)
        store.write_setting(db, SYNTHETIC_SETTING, truth.to_json())
    return truth


def _draw_people(rng: Any, n: int) -> _People:
    """As many people as hold exactly ``n`` users between them (a linked pair is one user)."""
    people = n  # an upper bound: every person holds at least one user
    kind = draw_kinds(rng, people, DUPLICATE_SHARE)
    dup = kind == EXACT
    three = rng.random(people) < THREE_ACCOUNT_SHARE
    n_acc = np.where(dup | (kind == ALIAS), np.where(three, 3, 2),
                     np.where(np.isin(kind, (PHONE, PROBABLE)), 2, 1))
    linked = dup & (rng.random(people) < LINKED_SHARE)
    unverified = dup & (rng.random(people) < UNVERIFIED_SHARE)
    users_per = n_acc - linked
    cum = np.cumsum(users_per)
    last = int(np.searchsorted(cum, n))
    people = last + 1
    kind, dup, n_acc = kind[:people].copy(), dup[:people], n_acc[:people]
    linked, unverified = linked[:people], unverified[:people]
    rest = n - (int(cum[last - 1]) if last else 0)  # users the last person may still hold
    if rest < users_per[last]:  # cut the last person down so the total is exactly n
        n_acc[last], linked[last] = rest, False
        dup[last] &= rest > 1
        unverified[last] &= rest > 1
    if n_acc[last] == 1 or kind[last] in (COMMON_NAME, SHARED_PHONE):  # alone, or their follower cut off
        kind[last] = SINGLE
    return _People(people, kind, dup, n_acc, linked, unverified)


def _draw_accounts(rng: Any, people: _People, base: Any, people_before: int) -> _Accounts:
    """Connections (distinct per exact person; another alias spelling is a database sign-up),
    verification, texts (emails, names, phones), timestamps and metadata."""
    dup, n_acc, unverified = people.dup, people.n_acc, people.unverified
    accounts = int(n_acc.sum())
    person_of = np.repeat(np.arange(people.count), n_acc)
    first = np.cumsum(n_acc) - n_acc
    slot = np.arange(accounts) - first[person_of]
    shuffled = np.argsort(rng.random((people.count, len(CONNECTIONS))), axis=1)  # distinct connections
    single = rng.choice(len(CONNECTIONS), size=accounts, p=SINGLE_CONNECTION_WEIGHTS)
    single[(people.kind[person_of] == ALIAS) & (slot > 0)] = 0
    conn = np.where(dup[person_of], shuffled[person_of, np.minimum(slot, 3)], single)
    is_db = conn == 0
    has_db = np.zeros(people.count, dtype=bool)
    np.logical_or.at(has_db, person_of, is_db)
    unverified_pick = unverified[person_of] & np.where(has_db[person_of], is_db,
                                                       slot == n_acc[person_of] - 1)
    verified = np.where(is_db, rng.random(accounts) < np.where(dup[person_of], 1.0, 0.8),
                        (conn == 1) | (rng.random(accounts) < 0.97))
    verified &= ~unverified_pick
    verified |= dup[person_of] & ~unverified[person_of]  # a "safe" person is verified everywhere
    case_variant = dup[person_of] & ~is_db & (rng.random(accounts) < CASE_VARIANT_SHARE)
    given, family = draw_names(rng, people.kind)
    texts = account_texts(rng, people.kind, n_acc, conn, case_variant, given, family, people_before)
    # timestamps in Auth0's format, millisecond precision
    base_ms = np.datetime64(base.replace(tzinfo=None), "ms")
    three_years_ms = 3 * 365 * 24 * 3600 * 1000
    created = base_ms - rng.integers(0, three_years_ms, size=accounts).astype("timedelta64[ms]")
    has_login = rng.random(accounts) < 0.9
    since = (base_ms - created).astype(np.int64)
    last_login = created + (rng.random(accounts) * since).astype(np.int64).astype("timedelta64[ms]")
    logins = np.where(has_login, 1 + rng.geometric(0.15, size=accounts), 0)
    metadata = np.where(rng.random(accounts) < METADATA_SHARE,
                        rng.integers(0, len(METADATA_VARIANTS), size=accounts), -1)
    return _Accounts(accounts, person_of, first, slot, conn, verified, case_variant, texts,
                    [s + "Z" for s in np.datetime_as_string(created, unit="ms").tolist()],
                    [s + "Z" for s in np.datetime_as_string(last_login, unit="ms").tolist()],
                    has_login, logins, metadata)


def _provider_ids(store: Store, rng: Any, accounts: _Accounts, accounts_before: int) -> list[list[str]]:
    """Per connection, provider-shaped ids, distinct, never one the store already holds."""
    taken = store.identity_ids_by_provider()
    ids_by_conn: list[list[str]] = []
    for index, connection in enumerate(CONNECTIONS):
        provider = provider_of(connection)
        count = int((accounts.conn == index).sum())
        kind, width = ID_SHAPES[provider]
        if kind == "hex":
            ids = _bijective_ids(count, accounts_before, 16**width, 0, width, True, rng,
                                 taken.get(provider, set()))
        else:
            low = 10 ** (width - 1)
            ids = _bijective_ids(count, accounts_before, 9 * low, low, width, False, rng,
                                 taken.get(provider, set()))
        ids_by_conn.append(ids)
    return ids_by_conn


class _RowBuilder:
    """The rows of ``SYNTHETIC_USER_COLUMNS`` and ``SYNTHETIC_IDENTITY_COLUMNS``, a chunk at a time
    (a million tuples at once would cost GBs). ``owners`` is filled as rows are built."""

    def __init__(self, people: _People, accounts: _Accounts, ids_by_conn: list[list[str]], owners: list[str],
                 people_before: int) -> None:
        self.ids_by_conn, self.owners, self.people_before = ids_by_conn, owners, people_before
        self.cursor = [0] * len(CONNECTIONS)
        self.providers = [provider_of(c) for c in CONNECTIONS]
        self.conn, self.slot, self.person = (accounts.conn.tolist(), accounts.slot.tolist(),
                                             accounts.person_of.tolist())
        self.verified = accounts.verified.tolist()
        self.login, self.logins = accounts.has_login.tolist(), accounts.logins.tolist()
        self.meta = accounts.metadata.tolist()
        self.linked, self.texts = people.linked.tolist(), accounts.texts
        self.created, self.last_login = accounts.created, accounts.last_login
        self.metadata_json = [json.dumps(m) for m in METADATA_VARIANTS]
        self.encode = json.JSONEncoder(separators=(",", ":")).encode

    def build(self, lo: int, hi: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        user_rows: list[tuple[Any, ...]] = []
        identity_rows: list[tuple[Any, ...]] = []
        t = self.texts
        for a in range(lo, hi):
            c, p = self.conn[a], self.person[a]
            provider = self.providers[c]
            pid = self.ids_by_conn[c][self.cursor[c]]
            self.cursor[c] += 1
            full = f"{provider}|{pid}"
            profile = self._profile(a, pid)
            secondary = self.linked[p] and self.slot[a] == 1
            owner = self.owners[a - 1] if secondary else full
            self.owners[a] = owner
            identity_rows.append((provider, pid, CONNECTIONS[c], int(c != 0), owner, int(secondary),
                                  self.encode(profile)))
            if secondary:  # a linked secondary has no user of its own
                continue
            login = self.last_login[a] if self.login[a] else None
            phone = t.phone_number[a]  # a root phone number counts as verified with a verified email
            user_rows.append((full, profile["email"], int(self.verified[a]), t.username[a], phone,
                              int(bool(profile.get("phone_verified"))), profile["name"],
                              profile["nickname"], t.given[a], t.family[a], profile["picture"],
                              self.created[a], login or self.created[a], login, self.logins[a],
                              self._metadata(a)))
        return user_rows, identity_rows

    def _metadata(self, a: int) -> str:
        phone = self.texts.phone_meta[a]
        if phone is not None:
            return json.dumps({**(METADATA_VARIANTS[self.meta[a]] if self.meta[a] >= 0 else {}),
                                "phone": phone})
        return self.metadata_json[self.meta[a]] if self.meta[a] >= 0 else "{}"

    def _profile(self, a: int, pid: str) -> dict[str, Any]:
        t = self.texts
        email, gn, fn = t.email[a], t.given[a], t.family[a]
        profile = {"email": email, "email_verified": self.verified[a],
                   "name": f"{gn} {fn}" if gn is not None else email,
                   "nickname": email.partition("@")[0].lower(),
                   "picture": f"https://avatars.example.org/{pid}.png"}
        if gn is not None:  # database profiles mostly lack them: the email is the name
            profile["given_name"], profile["family_name"] = gn, fn
        if t.username[a] is not None:
            profile["username"] = t.username[a]
        if t.phone_number[a] is not None:  # the root's phone, as the root row below has it
            profile["phone_number"] = t.phone_number[a]
            profile["phone_verified"] = self.verified[a]
        return profile


def _unsafe_people(people: _People, accounts: _Accounts) -> Any:
    """A group is unsafe when one of its users' own (root) email is unverified: that is what an
    audit sees, as an export does not carry the profiles of identities already linked."""
    unverified_user = ~accounts.verified & ~(people.linked[accounts.person_of] & (accounts.slot == 1))
    unsafe = np.zeros(people.count, dtype=bool)
    np.logical_or.at(unsafe, accounts.person_of, unverified_user)
    return unsafe


def _ground_truth(seed: int | None, n: int, accounts: int, people: _People, unsafe: Any, first: Any,
                  owners: list[str], previous: SyntheticTenant | None) -> SyntheticTenant:
    """Per duplicate person whose accounts are still spread over several users, those users; the
    negative pairs of users of two people."""
    groups: dict[int, list[list[str]]] = {EXACT: [], -EXACT: [], ALIAS: [], PHONE: [], PROBABLE: []}
    negatives: list[list[str]] = []
    unsafe_l, first_l, n_acc_l = unsafe.tolist(), first.tolist(), people.n_acc.tolist()
    kind_l = people.kind.tolist()
    for p in np.flatnonzero((people.n_acc - people.linked > 1) | (people.kind == NAMESAKE)).tolist():
        k = kind_l[p]
        if k == NAMESAKE:
            pair = sorted((owners[first_l[p - 1]], owners[first_l[p]]))
            negatives.append([*pair, "common_name"])
            continue
        group = sorted({owners[a] for a in range(first_l[p], first_l[p] + n_acc_l[p])})
        groups[-EXACT if k == EXACT and unsafe_l[p] else k].append(group)
    for p in np.flatnonzero(people.kind == SHARED_PHONE).tolist():
        negatives.append([*sorted((owners[first_l[p]], owners[first_l[p + 1]])), "shared_phone"])
    before = previous or SyntheticTenant(seed, 0, 0, 0, 0, 0, [], [])
    return SyntheticTenant(
        seed=seed, users=n + before.users, identities=accounts + before.identities,
        people=people.count + before.people,
        duplicate_people=int(people.dup.sum()) + before.duplicate_people,
        linked_users=int(people.linked.sum()) + before.linked_users,
        safe_groups=before.safe_groups + groups[EXACT],
        unsafe_groups=before.unsafe_groups + groups[-EXACT],
        alias_groups=before.alias_groups + groups[ALIAS],
        phone_groups=before.phone_groups + groups[PHONE],
        probable_groups=before.probable_groups + groups[PROBABLE],
        negative_pairs=before.negative_pairs + negatives,
    )
