"""Fetch 400 users by id at Auth0's enterprise rate limit: ManagementClient against auth0-python.

The sandbox runs the enterprise preset (a bucket of 50, refilled at 16 per second), so no client
can do better than ``(400 - 50) / 16`` s. For each client, in one run, this prints the wall time,
its ratio to that ideal, the 429s it received and the calls that failed.

    .venv/bin/python bench/ratelimit.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import httpx
from auth0.management.client import Auth0

from linking_toolkit import ManagementClient, connect
from linking_toolkit.management import ClientCredentials
from linking_toolkit.sandbox import Sandbox

BURST, RATE = 50, 16.0  # the sandbox's "enterprise" preset: Auth0's enterprise production tier


def refill() -> None:
    """Let the bucket fill up again so each client starts from the same full burst."""
    time.sleep(BURST / RATE + 1.0)


def measure(name: str, ids: list[str], fetch: Callable[[str], object], count_429: Callable[[], int]) -> dict:
    failed = 0
    start = time.perf_counter()
    for user_id in ids:
        try:
            fetch(user_id)
        except Exception:  # a failed call is what this bench counts, whatever its kind
            failed += 1
    wall = time.perf_counter() - start
    ideal = (len(ids) - BURST) / RATE
    return {"client": name, "wall_s": wall, "ratio": wall / ideal, "429s": count_429(), "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    args = parser.parse_args()

    with Sandbox(seed=1, users=args.users, rate_limit="enterprise") as sandbox, \
            connect(sandbox=sandbox, quiet=True) as tenant:
        with ManagementClient.from_client_credentials(tenant) as setup:
            ids = [u["user_id"] for u in setup.list_users(fields=["user_id"])][: args.users]
        assert len(ids) == args.users, f"only {len(ids)} users"
        ideal = (len(ids) - BURST) / RATE
        print(f"{len(ids)} users by id, bucket {BURST} at {RATE:g}/s: ideal {ideal:.2f} s")

        refill()
        with ManagementClient.from_client_credentials(tenant) as ours:
            rows = [measure("linking_toolkit.ManagementClient", ids, ours.get_user,
                            lambda: ours.stats.rate_limited)]

        refill()
        token = ClientCredentials(tenant, tenant.m2m_client_id or "", tenant.m2m_client_secret or "")()
        statuses: list[int] = []
        http = httpx.Client(timeout=60, event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
        sdk = Auth0(base_url=tenant.base_url + "/api/v2", token=token, httpx_client=http)
        rows.append(measure("auth0-python 6.8 (Auth0 client)", ids, sdk.users.get,
                            lambda: statuses.count(429)))
        http.close()

    print(f"{'client':34} {'wall s':>8} {'x ideal':>8} {'429s':>6} {'failed':>7}")
    for row in rows:
        print(f"{row['client']:34} {row['wall_s']:8.2f} {row['ratio']:8.3f} {row['429s']:6d} "
              f"{row['failed']:7d}")


if __name__ == "__main__":
    main()
