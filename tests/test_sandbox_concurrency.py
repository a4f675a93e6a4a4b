"""Link and unlink raced from several threads: no 5xx, and the identity invariant holds after."""

from __future__ import annotations

import random
import threading
from urllib.parse import quote

import httpx2

from linking_toolkit.sandbox import Sandbox

THREADS = 8
ROUNDS = 40


def check_invariant(sandbox: Sandbox) -> None:
    """Every identity has exactly one existing owner; each user has one position-0 identity
    whose id is the user's id; positions of a user are distinct."""
    ctx = sandbox.context
    assert ctx is not None
    with ctx.store.read() as db:
        orphans = db.execute("SELECT count(*) FROM identities i WHERE NOT EXISTS"
                             " (SELECT 1 FROM users u WHERE u.user_id = i.owner)").fetchone()[0]
        assert orphans == 0
        mains = db.execute(
            "SELECT u.user_id, count(i.provider) AS n,"
            " sum(i.provider || '|' || i.user_id = u.user_id) AS matching"
            " FROM users u LEFT JOIN identities i ON i.owner = u.user_id AND i.position = 0"
            " GROUP BY u.user_id").fetchall()
        assert all(row["n"] == 1 and row["matching"] == 1 for row in mains), [dict(r) for r in mains]
        duplicates = db.execute("SELECT owner, position FROM identities GROUP BY owner, position"
                                " HAVING count(*) > 1").fetchall()
        assert duplicates == []
        # The primary key makes an identity belong to one row; this says so explicitly.
        assert db.execute("SELECT count(*) FROM (SELECT provider, user_id FROM identities"
                          " GROUP BY provider, user_id HAVING count(*) > 1)").fetchone()[0] == 0


def test_concurrent_link_and_unlink_keep_the_invariant(sandbox: Sandbox, m2m_token: str) -> None:
    ctx = sandbox.context
    assert ctx is not None
    # Twelve social users that every thread tries to link into one of four primaries and back.
    with ctx.store.transaction() as db:
        for n in range(12):
            ctx.store.insert_user(db, provider="github", user_id=f"9{n:07d}", connection="github",
                                  is_social=True, profile={"email": f"race{n}@example.com"},
                                  created_at="2026-01-01T00:00:00.000Z", user_metadata={"n": n})
    primaries = [u["user_id"] for u in sandbox.demo_users][:4]
    secondaries = [f"9{n:07d}" for n in range(12)]
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=60,
                           headers={"Authorization": f"Bearer {m2m_token}"}) as client:
            for _ in range(ROUNDS):
                primary = quote(rng.choice(primaries), safe="")
                secondary = rng.choice(secondaries)
                if rng.random() < 0.5:
                    response = client.post(f"/users/{primary}/identities",
                                           json={"provider": "github", "user_id": secondary})
                else:
                    response = client.delete(f"/users/{primary}/identities/github/{secondary}")
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == THREADS * ROUNDS
    assert all(status < 500 for status in statuses)
    assert set(statuses) <= {200, 201, 400, 409}
    assert 201 in statuses and 200 in statuses
    check_invariant(sandbox)
    # Every raced identity still exists exactly once, linked or standalone.
    with ctx.store.read() as db:
        held = {row[0] for row in db.execute("SELECT user_id FROM identities WHERE provider = 'github'")}
    assert set(secondaries) <= held


def test_a_link_or_unlink_failing_halfway_leaves_nothing_half_done(sandbox: Sandbox, m2m_token: str) -> None:
    """A fault the sandbox cannot be asked for over HTTP, injected as a SQLite trigger: the link's
    last step (deleting the secondary user) and the unlink's (recreating it) fail. Each answer is
    Auth0's error shape, and the identity is where it was before, owned by exactly one user."""
    ctx = sandbox.context
    assert ctx is not None
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    with httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                       headers={"Authorization": f"Bearer {m2m_token}"}) as api:
        google = next(u for u in api.get("/users-by-email", params={"email": "ada@example.com"}).json()
                      if u["user_id"].startswith("google-oauth2|"))
        short = google["user_id"].split("|", 1)[1]
        link = {"provider": "google-oauth2", "user_id": google["user_id"]}
        with ctx.store.transaction() as db:
            db.execute("CREATE TEMP TRIGGER fail_link BEFORE DELETE ON users"
                       " BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        failed = api.post(f"/users/{quote(ada, safe='')}/identities", json=link)
        assert failed.status_code == 500 and failed.json()["statusCode"] == 500
        assert set(failed.json()) <= {"statusCode", "error", "message", "errorCode"}
        assert api.get(f"/users/{quote(google['user_id'], safe='')}").json() == google  # metadata too
        assert len(api.get(f"/users/{quote(ada, safe='')}").json()["identities"]) == 1
        check_invariant(sandbox)

        with ctx.store.transaction() as db:
            db.execute("DROP TRIGGER fail_link")
        assert api.post(f"/users/{quote(ada, safe='')}/identities", json=link).status_code == 201
        with ctx.store.transaction() as db:
            db.execute("CREATE TEMP TRIGGER fail_unlink BEFORE INSERT ON users"
                       " BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        failed = api.delete(f"/users/{quote(ada, safe='')}/identities/google-oauth2/{short}")
        assert failed.status_code == 500 and failed.json()["statusCode"] == 500
        assert [i["provider"] for i in api.get(f"/users/{quote(ada, safe='')}").json()["identities"]] == [
            "auth0", "google-oauth2"]
        assert api.get(f"/users/{quote(google['user_id'], safe='')}").status_code == 404
        check_invariant(sandbox)
