"""The tenant audit, side by side with the straightforward alternative and with the floor.

Two comparisons, each in one run on one sandbox tenant:

* 1 000 users (Auth0's paging cap): ``audit_tenant()`` + ``link_candidates()`` against
  auth0-python paging ``users.list`` into pandas (users, identities by ``json_normalize``, groups
  by lower-cased email).
* 100 000 and 1 000 000 users: ``audit_tenant()`` end to end (export job, download, frames, candidates),
  and its client-side part (the downloaded file -> frames + candidates) against the **floor**:
  reading and parsing the same export file alone (gunzip + ``json.loads`` per line), best of
  ``--repeat`` interleaved runs each.

Printed: wall seconds, users per second, ratio to the baseline, peak memory (tracemalloc peak of
the measured step, in a separate repeat so tracing does not slow the timed one), and for the large
tenants the time to page the AuditTable over the candidates (mean of 50 page turns).

    .venv/bin/python bench/audit.py                     # 1 000 and 100 000
    .venv/bin/python bench/audit.py --sizes 1000000     # a million (about ten minutes)
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from auth0.management.client import Auth0

from linking_toolkit import (
    AuditTable,
    ManagementClient,
    audit_export_file,
    audit_tenant,
    connect,
    link_candidates,
)
from linking_toolkit.audit import AUDIT_FIELDS, RISKS
from linking_toolkit.management import ClientCredentials
from linking_toolkit.sandbox import Sandbox


def timed(step: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    value = step()
    return time.perf_counter() - start, value


def peak_mb(step: Callable[[], Any]) -> float:
    """The tracemalloc peak of one more run of ``step`` (numpy and pandas buffers included)."""
    gc.collect()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def row(name: str, users: int, seconds: float, baseline: float, mb: float | None) -> str:
    memory = f"{mb:9.0f}" if mb is not None else f"{'-':>9}"
    return f"  {name:52} {seconds:8.2f} {users / seconds:11,.0f} {seconds / baseline:7.2f} {memory}"


HEADER = f"  {'':52} {'wall s':>8} {'users/s':>11} {'ratio':>7} {'peak MB':>9}"


def straightforward(sdk: Auth0) -> pd.DataFrame:
    """What one would write with the SDK: page users.list into pandas, group by lower-cased email."""
    # Page by page up to the total: the SDK's own iterator asks for page 10 of a 1000-user tenant,
    # which Auth0 refuses ("You can only page through the first 1000 records").
    first = sdk.users.list(page=0, per_page=100, include_totals=True)
    users = [u.model_dump() for u in first.items or []]
    total = int(first.response.total or 0)
    for page in range(1, min(-(-total // 100), 10)):
        users += [u.model_dump() for u in sdk.users.list(page=page, per_page=100).items or []]
    frame = pd.DataFrame(users)
    identities = pd.json_normalize(users, "identities", ["user_id"], record_prefix="identity.")
    frame["email_key"] = frame["email"].str.lower()
    grouped = frame[frame["email_key"].duplicated(keep=False) & frame["email_key"].notna()]
    candidates = grouped.groupby("email_key").agg(users=("user_id", list), verified=("email_verified", "all"))
    return candidates.assign(identities=len(identities))


def ours_paged(admin: ManagementClient) -> pd.DataFrame:
    return link_candidates(audit_tenant(admin, progress=False))


def at_the_cap(users: int) -> None:
    with Sandbox(seed=1, users=users) as sandbox, connect(sandbox=sandbox, quiet=True) as tenant:
        with ManagementClient.from_client_credentials(tenant) as admin:
            total = admin.count_users()
            token = ClientCredentials(tenant, tenant.m2m_client_id or "", tenant.m2m_client_secret or "")()
            sdk = Auth0(base_url=tenant.base_url + "/api/v2", token=token, timeout=60)
            sdk_s, sdk_groups = timed(lambda: straightforward(sdk))
            ours_s, ours_groups = timed(lambda: ours_paged(admin))
            sdk_mb = peak_mb(lambda: straightforward(sdk))
            ours_mb = peak_mb(lambda: ours_paged(admin))
    print(f"\n{total:,} users (paging, Auth0's 1000 cap): {len(ours_groups)} candidate groups "
          f"(the SDK version finds {len(sdk_groups)}, without risks or primaries)")
    print(HEADER)
    print(row("auth0-python users.list -> pandas (baseline)", total, sdk_s, sdk_s, sdk_mb))
    print(row("linking_toolkit audit_tenant() + link_candidates()", total, ours_s, sdk_s, ours_mb))


def floor(path: str) -> int:
    """Reading and parsing the export file alone: nothing kept, nothing built."""
    count = 0
    with gzip.open(path, "rb") as handle:
        for line in handle:
            if json.loads(line):
                count += 1
    return count


def page_turns(candidates: pd.DataFrame) -> float:
    table = AuditTable(candidates)
    start = time.perf_counter()
    for _ in range(50):
        table.next_page()
    return (time.perf_counter() - start) / 50 * 1000


def large(users: int, repeat: int) -> None:
    seed_s, sandbox = timed(lambda: Sandbox(seed=1, users=users).start())
    try:
        with connect(sandbox=sandbox, quiet=True) as tenant, \
                ManagementClient.from_client_credentials(tenant) as admin:
            total = admin.count_users()
            # audit_tenant() end to end, as an analyst runs it
            end_s, result = timed(lambda: link_candidates(audit_tenant(admin, progress=False, poll=0.2)))
            # the same export, kept on disk, for the client-side comparison
            job_s, job = timed(lambda: admin.wait_for_job(
                admin.create_users_export(format="json", fields=AUDIT_FIELDS)["id"], poll=0.2))
            handle, path = tempfile.mkstemp(suffix=".json.gz")
            os.close(handle)
            download_s, _ = timed(lambda: admin.download_export(job, path))
    finally:
        sandbox.stop()
    try:
        # Best of `repeat` interleaved runs: the machine is shared, and the minimum is the least noisy.
        floor_s, ours_s = float("inf"), float("inf")
        for _ in range(repeat):
            seconds, parsed = timed(lambda: floor(path))
            floor_s = min(floor_s, seconds)
            seconds, candidates = timed(lambda: link_candidates(audit_export_file(path)))
            ours_s = min(ours_s, seconds)
        floor_mb = peak_mb(lambda: floor(path))
        ours_mb = peak_mb(lambda: link_candidates(audit_export_file(path)))
        size_mb = os.path.getsize(path) / 2**20
    finally:
        os.unlink(path)
    assert parsed == total and len(candidates) == len(result)
    page_ms = page_turns(candidates)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{total:,} users (export job; seeded in {seed_s:.1f} s; file {size_mb:.0f} MB gzipped): "
          f"{len(candidates):,} candidate groups")
    print(HEADER)
    print(row("floor: gunzip + json.loads per line (baseline)", total, floor_s, floor_s, floor_mb))
    print(row("audit_export_file() + link_candidates()", total, ours_s, floor_s, ours_mb))
    print(row("audit_tenant() + link_candidates(), end to end", total, end_s, floor_s, None))
    print(f"  of which the tenant's export job {job_s:.1f} s and the download {download_s:.1f} s "
          f"(measured once more apart)")
    print(f"  AuditTable over {len(candidates):,} groups: {page_ms:.1f} ms per page turn; "
          f"process peak RSS {rss:,.0f} MB (sandbox included)")


def widget_paging(rows: int) -> None:
    """AuditTable over a candidates frame of ``rows`` groups (a tenant far larger than any above)."""
    k = np.arange(rows)
    candidates = pd.DataFrame({
        "email": pd.array([f"p{i}@example.org" for i in k], dtype="string"),
        "users": 2,
        "primary_id": pd.array([f"auth0|{i}" for i in k], dtype="string"),
        "user_ids": [[f"auth0|{i}", f"github|{i}"] for i in k],
        "connections": pd.array(np.array(["Username-Password-Authentication, github",
                                          "facebook, google-oauth2"])[k % 2], dtype="string"),
        "risk": pd.Categorical(np.where(k % 3 == 0, "unverified email", "safe"), categories=RISKS),
        "last_login": pd.Timestamp("2026-01-01", tz="UTC"),
    })
    build_s, table = timed(lambda: AuditTable(candidates))
    turn_ms = page_turns(candidates)
    filter_s, _ = timed(lambda: table.set_filter(risk="safe", connection="github"))
    print(f"\nAuditTable over {rows:,} candidate rows: built in {build_s * 1000:.0f} ms, "
          f"{turn_ms:.1f} ms per page turn, a risk + connection filter in {filter_s * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap-users", type=int, default=990, help="synthetic users next to the 10 demo ones")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs of the floor and of ours; best kept")
    parser.add_argument("--widget-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    at_the_cap(args.cap_users)
    for size in args.sizes:
        large(size, args.repeat)
    widget_paging(args.widget_rows)


if __name__ == "__main__":
    main()
