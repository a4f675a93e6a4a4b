"""Synthetic tenants: exactly N users, a known share of duplicate people, the same on every run."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import (
    CONNECTIONS,
    SyntheticTenant,
    seed_demo_tenant,
    seed_synthetic_users,
)
from linking_toolkit.sandbox.store import Store


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
    users = _rows(store, "SELECT user_id FROM users WHERE email LIKE '%@example.org'")
    assert len(users) == truth.users == 3000
    identities = _rows(store, "SELECT * FROM identities WHERE json_extract(profile_data, '$.email')"
                              " LIKE '%@example.org'")
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
        if email and email.endswith(("@example.org", "@Example.org")):
            by_email[email.casefold()].add(row["owner"])
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
    emails = _rows(store, "SELECT count(*) AS n FROM users WHERE email LIKE '%@example.org'")
    assert emails[0]["n"] == 1200


def test_the_sandbox_seeds_synthetic_users_when_asked() -> None:
    with Sandbox(seed=2, users=250) as sandbox:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        assert truth is not None and truth.users == 250
