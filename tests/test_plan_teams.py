"""Two analysts at once: two real processes apply overlapping plans to one sandbox, then each undoes.

Auth0 has no lock across machines, so nothing here coordinates the two: they share only the tenant.
What must hold: every planned secondary's metadata on its primary, no link undone by the other's
undo, and after both undos the tenant as it started, field by field.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from linking_toolkit import ManagementClient, connect
from linking_toolkit.audit import apply_plan, audit_tenant, link_candidates, plan_links, undo
from linking_toolkit.errors import NotFound
from linking_toolkit.identities import holds_identity
from linking_toolkit.sandbox import Sandbox

# What Auth0 itself changes across a link and an unlink, so apply + undo cannot give it back:
# updated_at moves at every write; the secondary Auth0 recreates at the unlink is a new user with
# the old id, so its created_at, last_login and logins_count start again.
AUTH0_CHANGES = ("updated_at", "created_at", "last_login", "logins_count")


def tenant_state(admin: ManagementClient, user_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every user (or those of ``user_ids``, past the 1000 that paging reaches), every field but
    :data:`AUTH0_CHANGES`, identities in a fixed order."""
    out = {}
    users = admin.list_users(per_page=100) if user_ids is None else \
        [user for user_id in user_ids for user in present(admin, user_id)]
    for user in users:
        kept = {k: v for k, v in user.items() if k not in AUTH0_CHANGES}
        kept["identities"] = sorted(user.get("identities") or [], key=lambda i: (i["provider"], i["user_id"]))
        out[user["user_id"]] = kept
    return out


def present(admin: ManagementClient, user_id: str) -> list[dict[str, Any]]:
    """The user, or nothing when it does not exist (a secondary while it is linked)."""
    try:
        return [admin.get_user(user_id)]
    except NotFound:
        return []


def metadata_missing(admin: ManagementClient, plan_rows: list[dict[str, Any]],
                     start: dict[str, dict[str, Any]]) -> list[str]:
    """Secondaries now linked whose ``user_metadata`` keys (and inner keys) are not on their primary."""
    missing = []
    for row in plan_rows:
        primary = admin.get_user(row["primary_id"])
        if not holds_identity(primary, row["provider"], row["user_id"]):
            continue
        held = primary.get("user_metadata") or {}
        for key, value in (start[row["secondary_id"]].get("user_metadata") or {}).items():
            inner_missing = isinstance(value, dict) and isinstance(held.get(key), dict) and \
                any(k not in held[key] for k in value)
            if key not in held or inner_missing:
                missing.append(row["secondary_id"])
                break
    return missing


def done_in(journal: str | Path) -> set[str]:
    """The secondaries a journal records as linked by its own run."""
    records = [json.loads(line) for line in Path(journal).read_text().splitlines()]
    return {r["secondary_id"] for r in records if r["event"] == "done"}


def give_metadata(admin: ManagementClient, rows: list[dict[str, Any]]) -> None:
    """Each secondary a key of its own and a nested one; each primary a nested one the merge extends."""
    for number, row in enumerate(rows):
        admin.update_user_metadata(row["secondary_id"], {f"only_here_{number}": number,
                                                         "prefs": {"lang": "fr", f"n{number}": number}})
        admin.update_user_metadata(row["primary_id"], {"prefs": {"lang": "en"}})


def run_plan(base_url: str, credentials: tuple[str, str], rows: list[dict[str, Any]], journal: str,
             ready: Any, go: Any) -> None:
    """One analyst's process: its own client, its own journal, started with the other at ``go``."""
    import pandas as pd

    from linking_toolkit import Tenant

    tenant = Tenant(domain=base_url.split("://")[1], issuer=base_url + "/", base_url=base_url,
                    management_audience=base_url + "/api/v2/", client_id="analyst",
                    m2m_client_id=credentials[0], m2m_client_secret=credentials[1])
    plan = pd.DataFrame(rows)
    plan["allow_unsafe"] = False
    with ManagementClient.from_client_credentials(tenant) as client:
        client.count_users()  # the token fetched before the start, so both start on the rows at once
        ready.set()
        go.wait(30)
        apply_plan(client, plan, dry_run=False, journal=journal)


def two_analysts(sandbox: Sandbox, admin: ManagementClient, tmp_path: Path, *, shared: int,
                 own: int) -> dict[str, Any]:
    """Plans of ``shared + own`` rows each, the shared rows first in both; both applied at once by
    two processes, then one undo, then the other. What a reader checks, as numbers."""
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    rows = [{k: row[k] for k in ("primary_id", "secondary_id", "provider", "user_id", "risk")}
            for row in plan[plan["risk"] == "safe"].astype(object).to_dict("records")]
    rows = [{**row, "risk": "safe"} for row in rows][:shared + 2 * own]
    assert len(rows) == shared + 2 * own, f"the tenant has only {len(rows)} safe rows"
    give_metadata(admin, rows)
    involved = None if admin.count_users() <= 1000 else \
        sorted({r[k] for r in rows for k in ("primary_id", "secondary_id")})
    start = tenant_state(admin, involved)
    plans = {"a": rows[:shared] + rows[shared:shared + own], "b": rows[:shared] + rows[shared + own:]}
    journals = {name: str(tmp_path / f"{name}.jsonl") for name in plans}
    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    readies = {name: spawn.Event() for name in plans}
    processes = [spawn.Process(target=run_plan, args=(sandbox.base_url, (sandbox.m2m_client_id,
                                                                          sandbox.m2m_client_secret),
                                                      plans[name], journals[name], readies[name], go))
                 for name in plans]
    for process in processes:
        process.start()
    for ready in readies.values():
        ready.wait(60)
    go.set()
    for process in processes:
        process.join(120)
    exit_codes = [p.exitcode for p in processes]
    missing = metadata_missing(admin, rows, start)
    linked = sum(holds_identity(admin.get_user(r["primary_id"]), r["provider"], r["user_id"]) for r in rows)
    claimed = {name: done_in(journals[name]) for name in plans}
    undone_a = undo(admin, journals["a"])
    removed = [r["secondary_id"] for r in rows if r["secondary_id"] in claimed["b"]
               and not holds_identity(admin.get_user(r["primary_id"]), r["provider"], r["user_id"])]
    undo(admin, journals["b"])
    end = tenant_state(admin, involved)
    return {"exit codes": exit_codes, "rows": len(rows), "linked": linked, "missing metadata": len(missing),
            "claimed by both": len(claimed["a"] & claimed["b"]), "a linked": len(claimed["a"]),
            "left by a's undo": int(undone_a["status"].str.startswith("left").sum()),
            "b's links removed by a's undo": len(removed),
            "users differing after both undos": sum(start.get(k) != end.get(k)
                                                    for k in set(start) | set(end))}


@pytest.mark.parametrize("database", ["memory", "file"])
def test_two_processes_apply_overlapping_plans_at_once_and_undo_one_after_the_other(
    database: str, tmp_path: Path,
) -> None:
    options: dict[str, Any] = {"db": str(tmp_path / "tenant.db")} if database == "file" else {}
    with Sandbox(seed=8, users=240, **options) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient.from_client_credentials(tenant) as admin:
        seen = two_analysts(sandbox, admin, tmp_path, shared=6, own=3)
    a_linked = seen["a linked"]
    assert seen == {"exit codes": [0, 0], "rows": 12, "linked": 12, "missing metadata": 0,
                    "claimed by both": 0, "a linked": a_linked,
                    "left by a's undo": 9 - a_linked,  # a's 9 rows: undone, or left as b's, row by row
                    "b's links removed by a's undo": 0, "users differing after both undos": 0}
