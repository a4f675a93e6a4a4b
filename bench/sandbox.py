"""How fast the sandbox makes a synthetic tenant and exports it, against plain baselines.

In one run, for N users (default 100 000; ``--users``):
  - seeding: ``seed_synthetic_users`` (what ``Sandbox(users=N)`` and ``--users N`` run) against the
    straightforward way, ``Store.insert_user`` once per account in one transaction;
  - export: a users-export job over HTTP (POST the job, poll it, download the gzipped NDJSON)
    against the floor, reading every user row out of SQLite and gzipping it, in process.
Prints seconds, users per second and ratios.

Run: ``.venv/bin/python bench/sandbox.py [--users N]``
"""

from __future__ import annotations

import argparse
import gzip
import io
import time

import httpx2

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import seed_synthetic_users
from linking_toolkit.sandbox.store import Store


def seed_one_by_one(store: Store, n: int) -> None:
    with store.transaction() as db:
        for i in range(n):
            store.insert_user(
                db, provider="auth0", user_id=f"{i:024x}", connection="Username-Password-Authentication",
                is_social=False, created_at="2026-01-05T09:00:00.000Z",
                profile={"email": f"person{i}@example.org", "email_verified": True, "name": f"Person {i}"},
                user_metadata={"n": i}, last_login="2026-02-01T00:00:00.000Z", logins_count=3,
            )


def export_floor(store: Store) -> int:
    """Every user row out of SQLite, as JSON text, gzipped: what any export has to do at least."""
    sink = io.BytesIO()
    with store.read() as db, gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6) as gz:
        for (record,) in db.execute(
            "SELECT json_object('user_id', u.user_id, 'email', u.email, 'name', u.name, 'created_at',"
            " u.created_at, 'identities', (SELECT json_group_array(json_object('provider', i.provider,"
            " 'user_id', i.user_id, 'connection', i.connection))"
            " FROM identities i WHERE i.owner = u.user_id))"
            " FROM users u"
        ):
            gz.write(record.encode() + b"\n")
    return sink.tell()


def export_over_http(sandbox: Sandbox) -> int:
    token = httpx2.post(sandbox.base_url + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
        "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience,
    }).json()["access_token"]
    with httpx2.Client(base_url=sandbox.management_audience, timeout=60,
                       headers={"Authorization": f"Bearer {token}"}) as api:
        job = api.post("jobs/users-exports", json={"format": "json"}).json()
        while (job := api.get(f"jobs/{job['id']}").json())["status"] not in ("completed", "failed"):
            time.sleep(0.05)
        assert job["status"] == "completed", job
        with httpx2.stream("GET", job["location"], timeout=60) as response:
            lines = sum(chunk.count(b"\n") for chunk in _gunzip(response.iter_bytes()))
    return lines


def _gunzip(chunks):  # type: ignore[no-untyped-def]
    import zlib

    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in chunks:
        yield decoder.decompress(chunk)
    yield decoder.flush()


def timed(work):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    n = parser.parse_args().users

    baseline_s, _ = timed(lambda: seed_one_by_one(Store(":memory:"), n))
    ours_s, _ = timed(lambda: seed_synthetic_users(Store(":memory:"), n, seed=1))
    print(f"seed {n} users   one-by-one insert_user {baseline_s:7.2f} s ({n / baseline_s:9.0f} users/s)")
    print(f"                  seed_synthetic_users   {ours_s:7.2f} s ({n / ours_s:9.0f} users/s)"
          f"  ratio {ours_s / baseline_s:.2f}x of baseline")

    with Sandbox(seed=1, users=n, quiet=True) as sandbox:
        floor_s, _ = timed(lambda: export_floor(sandbox.context.store))
        http_s, lines = timed(lambda: export_over_http(sandbox))
    print(f"export {n} users  floor (SQL + gzip)      {floor_s:7.2f} s ({n / floor_s:9.0f} users/s)")
    print(f"                  job over HTTP          {http_s:7.2f} s ({n / http_s:9.0f} users/s)"
          f"  ratio {http_s / floor_s:.2f}x of floor; {lines} users in the file")


if __name__ == "__main__":
    main()
