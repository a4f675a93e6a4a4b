"""Synthetic tenants: exactly N users, a known share of duplicate people, the same on every run."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

import httpx2
import phonenumbers
import pytest
from test_sandbox_export import run_export

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import (
    CONNECTIONS,
    SyntheticTenant,
    seed_demo_tenant,
    seed_synthetic_users,
)
from linking_toolkit.sandbox.seed.duplicates import (
    ALIAS_SHARE,
    COMMON_NAME_SHARE,
    FAMILY_NAMES,
    GIVEN_NAMES,
    PHONE_DUPLICATE_SHARE,
    PLUS_DOMAINS,
    PROBABLE_SHARE,
    SHARED_PHONE_SHARE,
    SYNTHETIC_PHONE_REGION,
)
from linking_toolkit.sandbox.store import Store


# Synthetic users are every user but the demo people, who are at example.com.
def _tenant(n: int, seed: int | None = 3) -> tuple[Store, SyntheticTenant]:
    store = Store()
    seed_demo_tenant(store, "http://127.0.0.1:1/api/v2/", seed=seed)
    return store, seed_synthetic_users(store, n, seed=seed)


def _rows(store: Store, sql: str) -> list[dict]:
    with store.read() as db:
        return [dict(r) for r in db.execute(sql)]


@pytest.fixture(scope="module")
def synthetic_3000() -> tuple[Store, SyntheticTenant]:
    return _tenant(3000)


def test_exactly_n_users_and_the_identity_invariant(synthetic_3000: tuple[Store, SyntheticTenant]) -> None:
    store, truth = synthetic_3000
    users = _rows(store, "SELECT user_id FROM users WHERE email NOT LIKE '%@example.com'")
    assert len(users) == truth.users == 3000
    identities = _rows(store, "SELECT * FROM identities WHERE json_extract(profile_data, '$.email')"
                              " NOT LIKE '%@example.com'")
    assert len(identities) == truth.identities == 3000 + truth.linked_users
    mains = defaultdict(list)
    for row in identities:
        assert row["connection"] in CONNECTIONS
        if row["position"] == 0:
            mains[row["owner"]].append(f"{row['provider']}|{row['user_id']}")
    # every user owns exactly one main identity, whose full id is the user's id
    assert {u["user_id"]: [u["user_id"]] for u in users} == dict(mains)


def test_the_known_duplicate_groups_are_exactly_the_users_sharing_an_email(
    synthetic_3000: tuple[Store, SyntheticTenant],
) -> None:
    store, truth = synthetic_3000
    by_email: dict[str, set[str]] = defaultdict(set)
    for row in _rows(store, "SELECT owner, profile_data FROM identities"):
        email = json.loads(row["profile_data"]).get("email")
        if email and not email.endswith("@example.com"):  # the demo people's
            by_email[email.strip().lower()].add(row["owner"])
    shared = sorted(sorted(owners) for owners in by_email.values() if len(owners) > 1)
    assert shared == sorted(truth.safe_groups + truth.unsafe_groups)
    # about a tenth of the people have several accounts; some groups are unsafe, some linked
    assert 0.07 < truth.duplicate_people / truth.people < 0.13
    assert truth.unsafe_groups and truth.linked_users


def test_unsafe_groups_hold_an_unverified_email_and_safe_ones_do_not(
    synthetic_3000: tuple[Store, SyntheticTenant],
) -> None:
    store, truth = synthetic_3000
    verified = {u["user_id"]: bool(u["email_verified"])
                for u in _rows(store, "SELECT user_id, email_verified FROM users")}
    assert all(verified[u] for group in truth.safe_groups for u in group)
    assert all(not all(verified[u] for u in group) for group in truth.unsafe_groups)


def test_a_seed_gives_the_same_tenant_and_no_seed_another() -> None:
    first, again, other = _tenant(400, seed=11), _tenant(400, seed=11), _tenant(400, seed=None)
    dump = "SELECT * FROM users ORDER BY user_id"
    assert _rows(first[0], dump) == _rows(again[0], dump)
    assert first[1] == again[1]
    assert _rows(first[0], dump) != _rows(other[0], dump)


def test_a_second_batch_adds_users_without_clashing_ids() -> None:
    store, _ = _tenant(500, seed=5)
    more = seed_synthetic_users(store, 700, seed=6)
    assert more.users == 1200
    assert SyntheticTenant.from_store(store) == more
    emails = _rows(store, "SELECT count(*) AS n FROM users WHERE email NOT LIKE '%@example.com'")
    assert emails[0]["n"] == 1200


def test_the_sandbox_seeds_synthetic_users_when_asked() -> None:
    with Sandbox(seed=2, users=250) as sandbox:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        assert truth is not None and truth.users == 250


# -- the duplicates people really make (alias, phone, probable) and the hard negatives ----------------

@pytest.fixture(scope="module")
def synthetic_5000() -> tuple[Store, SyntheticTenant, dict[str, dict]]:
    """A tenant of 5 000 synthetic users, with each user's row (phone in user_metadata parsed)."""
    store, truth = _tenant(5000, seed=21)
    users = {}
    for row in _rows(store, "SELECT * FROM users WHERE email NOT LIKE '%@example.com'"):
        row["user_metadata"] = json.loads(row["user_metadata"])
        users[row["user_id"]] = row
    return store, truth, users


def _plain(email: str) -> str:
    return email.strip().lower()


def _mailbox(email: str) -> str:
    """The mailbox by the provider's rules: Gmail drops dots and +tags (googlemail.com is gmail.com),
    the +tag providers drop +tags."""
    local, _, domain = _plain(email).partition("@")
    domain = "gmail.com" if domain == "googlemail.com" else domain
    if domain == "gmail.com":
        local = local.split("+")[0].replace(".", "")
    elif domain in PLUS_DOMAINS:
        local = local.split("+")[0]
    return f"{local}@{domain}"


def _phones(user: dict) -> list[str]:
    """A user's phone as written: the root ``phone_number`` and ``user_metadata.phone``."""
    return [p for p in (user["phone_number"], user["user_metadata"].get("phone")) if p]


def _e164(text: str) -> str:
    number = phonenumbers.parse(text, SYNTHETIC_PHONE_REGION)
    assert phonenumbers.is_valid_number(number), text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_each_kind_of_duplicate_appears_with_its_share(
    synthetic_5000: tuple[Store, SyntheticTenant, dict[str, dict]],
) -> None:
    _, truth, users = synthetic_5000
    assert truth.phone_region == SYNTHETIC_PHONE_REGION == "GB"
    for groups, share in ((truth.alias_groups, ALIAS_SHARE), (truth.phone_groups, PHONE_DUPLICATE_SHARE),
                          (truth.probable_groups, PROBABLE_SHARE)):
        assert 0.6 * share < len(groups) / truth.people < 1.4 * share
        assert all(len(group) >= 2 and group == sorted(group) for group in groups)
    for kind, share in (("common_name", COMMON_NAME_SHARE), ("shared_phone", SHARED_PHONE_SHARE)):
        pairs = [p for p in truth.negative_pairs if p[2] == kind]
        assert 0.4 * share < len(pairs) / truth.people < 1.6 * share
    # a person is of one kind: no user is in two groups or pairs
    held = [u for groups in (truth.safe_groups, truth.unsafe_groups, truth.alias_groups, truth.phone_groups,
                             truth.probable_groups) for group in groups for u in group]
    held += [u for pair in truth.negative_pairs for u in pair[:2]]
    assert len(held) == len(set(held)) and set(held) <= set(users)
    pairs = truth.person_pairs()
    assert {k: len(v) for k, v in pairs.items()}["alias"] >= len(truth.alias_groups)
    assert not pairs["alias"] & pairs["probable"]
    # a fifth of the users or so have a phone
    assert 0.15 < sum(bool(_phones(u)) for u in users.values()) / len(users) < 0.3


def test_alias_groups_are_one_mailbox_under_several_spellings(
    synthetic_5000: tuple[Store, SyntheticTenant, dict[str, dict]],
) -> None:
    _, truth, users = synthetic_5000
    domains = set()
    for group in truth.alias_groups:
        emails = [users[u]["email"] for u in group]
        assert len({_plain(e) for e in emails}) == len(emails)  # the exact tier does not see them
        assert len({_mailbox(e) for e in emails}) == 1
        domains.update(e.partition("@")[2] for e in emails)
    assert {"gmail.com", "googlemail.com"} <= domains and domains & set(PLUS_DOMAINS)
    # across the tenant, only one person's users share a mailbox
    by_mailbox: dict[str, set[str]] = defaultdict(set)
    for user in users.values():
        by_mailbox[_mailbox(user["email"])].add(user["user_id"])
    shared = sorted(sorted(ids) for ids in by_mailbox.values() if len(ids) > 1)
    assert shared == sorted(truth.alias_groups + truth.safe_groups + truth.unsafe_groups)


def test_phone_groups_hold_one_number_written_differently(
    synthetic_5000: tuple[Store, SyntheticTenant, dict[str, dict]],
) -> None:
    _, truth, users = synthetic_5000
    writings = set()
    for group in truth.phone_groups:
        members = [users[u] for u in group]
        phones = [p for m in members for p in _phones(m)]
        assert len(phones) == len(members)  # each writes it once, root or user_metadata
        assert len({_e164(p) for p in phones}) == 1 and len(set(phones)) == len(phones)
        assert len({m["given_name"] for m in members}) == 1 and members[0]["given_name"]
        assert len({_mailbox(m["email"]) for m in members}) == len(members)
        writings.update("national" if p.startswith("0") else "international" if " " in p else "E.164"
                        for p in phones)
    assert writings == {"E.164", "international", "national"}
    assert all(_e164(u["phone_number"]) == u["phone_number"] for u in users.values() if u["phone_number"])
    # across the tenant, users share a number only within a phone group or a family
    by_number: dict[str, set[str]] = defaultdict(set)
    for user in users.values():
        for phone in _phones(user):
            by_number[_e164(phone)].add(user["user_id"])
    shared = sorted(sorted(ids) for ids in by_number.values() if len(ids) > 1)
    families = [p[:2] for p in truth.negative_pairs if p[2] == "shared_phone"]
    assert shared == sorted(truth.phone_groups + families)


def test_probable_groups_share_no_mailbox_or_phone_but_look_alike(
    synthetic_5000: tuple[Store, SyntheticTenant, dict[str, dict]],
) -> None:
    _, truth, users = synthetic_5000
    nicknames = typos = 0
    for group in truth.probable_groups:
        a, b = (users[u] for u in group)
        assert _mailbox(a["email"]) != _mailbox(b["email"])
        assert a["email"].partition("@")[2] != b["email"].partition("@")[2]
        assert not {_e164(p) for p in _phones(a)} & {_e164(p) for p in _phones(b)}
        assert (a["given_name"], a["family_name"]) != (b["given_name"], b["family_name"])
        if a["given_name"] != b["given_name"]:
            nicknames += 1
            assert a["family_name"] == b["family_name"]
        else:
            typos += 1
            assert abs(len(a["family_name"]) - len(b["family_name"])) <= 1
            assert a["family_name"][0] == b["family_name"][0]
    assert nicknames and typos


def test_negatives_are_namesakes_and_families_sharing_a_phone(
    synthetic_5000: tuple[Store, SyntheticTenant, dict[str, dict]],
) -> None:
    _, truth, users = synthetic_5000
    for id_a, id_b, kind in truth.negative_pairs:
        a, b = users[id_a], users[id_b]
        assert id_a < id_b and _mailbox(a["email"]) != _mailbox(b["email"])
        assert a["family_name"] == b["family_name"] and a["family_name"]
        if kind == "common_name":
            assert a["given_name"] == b["given_name"]
            assert a["email"].partition("@")[2] == b["email"].partition("@")[2]
        else:
            assert kind == "shared_phone" and a["given_name"] != b["given_name"]
            assert {_e164(p) for p in _phones(a)} == {_e164(p) for p in _phones(b)} != set()


def test_names_are_many_and_a_few_are_common(
    synthetic_5000: tuple[Store, SyntheticTenant, dict[str, dict]],
) -> None:
    _, _, users = synthetic_5000
    family = Counter(u["family_name"] for u in users.values() if u["family_name"])
    assert len(GIVEN_NAMES) >= 2000 and len(FAMILY_NAMES) >= 5000
    assert len(family) > 1000  # a wide pool
    top = family.most_common(1)[0][1] / sum(family.values())
    assert 0.003 < top < 0.05  # skewed, but no name holds a big share


def test_the_ground_truth_survives_the_store_and_an_older_json() -> None:
    store, truth = _tenant(300, seed=4)
    assert SyntheticTenant.from_store(store) == truth
    old = {k: v for k, v in json.loads(truth.to_json()).items() if k in (
        "seed", "users", "identities", "people", "duplicate_people", "linked_users", "safe_groups",
        "unsafe_groups")}
    assert SyntheticTenant(**old).alias_groups == [] and SyntheticTenant(**old).phone_region == "GB"


def test_an_older_database_file_gains_the_phone_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Store(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE users DROP COLUMN phone_number")
    db.execute("ALTER TABLE users DROP COLUMN phone_verified")
    db.commit()
    db.close()
    store = Store(str(path))
    seed_synthetic_users(store, 50, seed=1)
    assert _rows(store, "SELECT count(phone_number) AS n FROM users")[0]["n"] > 0
    store.close()


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    """The ``sandbox`` fixture of this module holds synthetic users."""
    return {"users": 400}


def test_the_export_job_exports_phone_numbers(sandbox: Sandbox, api: httpx2.Client) -> None:
    assert sandbox.context is not None
    phones = {r["user_id"]: r["phone_number"]
              for r in _rows(sandbox.context.store, "SELECT user_id, phone_number FROM users")}
    assert any(phones.values())
    _, data = run_export(api, {"format": "json", "fields": [{"name": "user_id"}, {"name": "phone_number"}]})
    records = [json.loads(line) for line in data.decode().splitlines()]
    assert {r["user_id"]: r.get("phone_number") for r in records} == phones
    assert all(set(r) == ({"user_id", "phone_number"} if phones[r["user_id"]] else {"user_id"})
               for r in records)
    _, data = run_export(api, {"format": "json"})  # the full record holds it too, as GET /users/{id}
    full = {r["user_id"]: r for r in map(json.loads, data.decode().splitlines())}
    some = next(u for u, p in phones.items() if p)
    assert full[some]["phone_number"] == phones[some]
    shown = api.get(f"/users/{quote(some, safe='')}").json()
    assert {k: v for k, v in full[some].items() if v != {}} == shown
