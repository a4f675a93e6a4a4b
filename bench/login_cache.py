"""How long a returning learner waits for a session: from the token cache, against a device login.

After a kernel restart, ``login(tenant)`` with a cached login is one refresh grant, the new ID
token's verification (the JWKS fetched once more, as in a new kernel) and the profile read. Its
floor of comparison is a fresh device login that the person approves at once
(``Sandbox.approve_device``), polled at the tenant's interval (Auth0's 5 s by default). Each run
uses a new ``Tenant`` (a new kernel's: no JWKS, no connection pool); printed: the median and the
spread of ``--repeat`` runs, and the ratio.

    .venv/bin/python bench/login_cache.py
    .venv/bin/python bench/login_cache.py --repeat 9 --poll-interval 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from linking_toolkit import Tenant, login, start_login
from linking_toolkit.cache import NOOP, READ_WRITE
from linking_toolkit.sandbox import Sandbox

DATABASE = "Username-Password-Authentication"


def from_cache(sandbox: Sandbox, path: Path) -> float:
    with Tenant.discover(sandbox.base_url, client_id=sandbox.client_id) as tenant:
        started = time.perf_counter()
        session = login(tenant, cache=READ_WRITE.at(path))
        waited = time.perf_counter() - started
    assert session.profile["email"] == "ada@example.com"
    return waited


def device_login(sandbox: Sandbox) -> float:
    with Tenant.discover(sandbox.base_url, client_id=sandbox.client_id) as tenant:
        started = time.perf_counter()
        pending = start_login(tenant, cache=NOOP, show=lambda text, url: None)
        sandbox.approve_device(pending.user_code or "", connection=DATABASE, email="ada@example.com")
        session = pending.result(timeout=120)
        waited = time.perf_counter() - started
    assert session.profile["email"] == "ada@example.com"
    return waited


def summary(name: str, times: list[float]) -> str:
    return (f"{name:<38} median {statistics.median(times) * 1000:8.1f} ms   "
            f"min {min(times) * 1000:8.1f}   max {max(times) * 1000:8.1f}   ({len(times)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--poll-interval", type=int, default=5, help="the device flow's interval, s")
    args = parser.parse_args()
    sandbox = Sandbox(seed=1, device_poll_interval=args.poll_interval)
    with tempfile.TemporaryDirectory() as folder, sandbox as sb:
        path = Path(folder) / "tokens.json"
        ada = sb.demo_user("ada@example.com")
        with Tenant.discover(sb.base_url, client_id=sb.client_id) as tenant:  # the first kernel logs in
            login(tenant, method="password", email=ada["email"], password=ada["password"],
                  cache=READ_WRITE.at(path))
        cached = [from_cache(sb, path) for _ in range(args.repeat)]
        device = [device_login(sb) for _ in range(max(3, args.repeat // 2))]
    print(summary("session from the token cache", cached))
    print(summary(f"device login approved at once ({args.poll_interval} s)", device))
    print(f"the cache is {statistics.median(device) / statistics.median(cached):.0f}x faster than the floor "
          f"of a device login, and asks the learner nothing")


if __name__ == "__main__":
    main()
