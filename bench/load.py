"""The sandbox under 1, 4, 16 and 64 concurrent clients: mixed reads and writes, in one run.

Each client reads users by id and by email, patches its own user's metadata, and links then unlinks
a pair of users of its own (so no two clients race on one user: the races are the state machines'
and tests/test_sandbox_concurrency.py's job; this measures throughput). Clients are threads spread
over worker processes, so the clients' own Python does not share the server's GIL: the figure is the
server's. Loopback only, a fixed number of requests per level.

    .venv/bin/python bench/load.py                 # memory and file databases
    .venv/bin/python bench/load.py --requests 800
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx2

from linking_toolkit.sandbox import Sandbox

LEVELS = (1, 4, 16, 64)
WORKERS = 4  # processes the clients are spread over (2 cores: more would only queue)


def client_loop(base: str, token: str, pair: tuple[dict, dict], count: int, out: list) -> None:
    primary, secondary = pair
    pid, sid = quote(primary["user_id"], safe=""), secondary["user_id"]
    provider, short = sid.split("|", 1)
    headers = {"Authorization": f"Bearer {token}"}
    steps = [
        ("GET", f"/users/{pid}", None),
        ("GET", "/users-by-email", {"params": {"email": primary["email"]}}),
        ("PATCH", f"/users/{pid}", {"json": {"user_metadata": {"seen": 1}}}),
        ("POST", f"/users/{pid}/identities", {"json": {"provider": provider, "user_id": short}}),
        ("DELETE", f"/users/{pid}/identities/{provider}/{quote(short, safe='')}", None),
    ]
    with httpx2.Client(base_url=f"{base}/api/v2", headers=headers, timeout=60) as http:
        for n in range(count):
            method, path, extra = steps[n % len(steps)]
            started = time.perf_counter()
            response = http.request(method, path, **(extra or {}))
            out.append((response.status_code, time.perf_counter() - started))


def worker(base: str, token: str, pairs: list, per_client: int, queue: mp.Queue) -> None:
    results: list = []
    threads = [threading.Thread(target=client_loop, args=(base, token, pair, per_client, results))
               for pair in pairs]
    began = time.time()  # wall clock: comparable across the worker processes
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((began, time.time(), results))


def run_level(tenant: Sandbox, token: str, users: list, clients: int, requests: int) -> dict:
    per_client = max(5, requests // clients // 5 * 5)  # whole link + unlink cycles
    pairs = [(users[2 * i], users[2 * i + 1]) for i in range(clients)]
    groups = [pairs[i::WORKERS] for i in range(min(WORKERS, clients))]
    queue: mp.Queue = mp.get_context("spawn").Queue()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=worker, args=(tenant.base_url, token, g, per_client, queue)) for g in groups]
    for p in procs:
        p.start()
    reports = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    # From the first request sent to the last answer: the processes' start-up is not the server's.
    wall = max(end for _, end, _ in reports) - min(began for began, _, _ in reports)
    results = [r for _, _, rs in reports for r in rs]
    latencies = sorted(t for _, t in results)
    return {"clients": clients, "requests": len(results), "wall": wall,
            "statuses": Counter(s for s, _ in results), "p50": statistics.median(latencies),
            "p99": latencies[int(0.99 * (len(latencies) - 1))]}


def bench(db: str, requests: int) -> list[dict]:
    with Sandbox(seed=1, users=2 * max(LEVELS) + 10, db=db, quiet=True) as tenant:
        token = httpx2.post(f"{tenant.base_url}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": tenant.m2m_client_id,
            "client_secret": tenant.m2m_client_secret, "audience": tenant.management_audience,
        }).json()["access_token"]
        users = [u for page in range(2) for u in httpx2.get(
            f"{tenant.base_url}/api/v2/users", params={"per_page": 100, "page": page},
            headers={"Authorization": f"Bearer {token}"}).json()]
        users = [u for u in users if len(u["identities"]) == 1]
        assert len(users) >= 2 * max(LEVELS), len(users)
        return [run_level(tenant, token, users, clients, requests) for clients in LEVELS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=640, help="requests per level (default 640)")
    args = parser.parse_args()
    print(f"bench/load.py: {args.requests} requests per level, clients over {WORKERS} processes")
    print("| database | clients | requests | statuses | req/s | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, db in (("memory", ":memory:"), ("file", str(Path(tmp) / "load.sqlite"))):
            rows = bench(db, args.requests)
            for row in rows:
                statuses = " ".join(f"{k}:{v}" for k, v in sorted(row["statuses"].items()))
                rate = row["requests"] / row["wall"]
                print(f"| {name} | {row['clients']} | {row['requests']} | {statuses} | {rate:.0f} | "
                      f"{row['p50'] * 1000:.1f} | {row['p99'] * 1000:.1f} |")
            best = max(rows, key=lambda r: r["requests"] / r["wall"])
            print(f"| {name}: throughput peaks at {best['clients']} clients "
                  f"({best['requests'] / best['wall']:.0f} req/s) | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
