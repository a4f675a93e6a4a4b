"""The audit over HTTP on sandbox tenants with a known set of duplicate people."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pandas as pd
import pytest
from test_plan_teams import tenant_state

from linking_toolkit import ManagementClient, Tenant
from linking_toolkit.audit import (
    Audit,
    apply_plan,
    audit_tenant,
    link_candidates,
    merge_metadata,
    plan_links,
    undo,
)
from linking_toolkit.errors import RateLimited, ServerError, UnsafeLink
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import DEMO_PEOPLE, SyntheticTenant


def known_groups(sandbox: Sandbox) -> tuple[list[list[str]], list[list[str]]]:
    """(safe, unsafe) groups: the synthetic ground truth plus the demo people's, from their seed data."""
    assert sandbox.context is not None
    store = sandbox.context.store
    truth = SyntheticTenant.from_store(store) or SyntheticTenant(None, 0, 0, 0, 0, 0, [], [])
    safe, unsafe = list(truth.safe_groups), list(truth.unsafe_groups)
    with store.read() as db:
        for person in DEMO_PEOPLE:
            rows = db.execute("SELECT user_id, email_verified FROM users WHERE email = ?",
                              (person["email"],)).fetchall()
            if len(rows) > 1:
                group = sorted(r["user_id"] for r in rows)
                (safe if all(r["email_verified"] for r in rows) else unsafe).append(group)
    return sorted(safe), sorted(unsafe)


def tenant_identities(sandbox: Sandbox) -> list[tuple[str, str, str]]:
    assert sandbox.context is not None
    with sandbox.context.store.read() as db:
        return sorted((r["owner"], r["provider"], r["user_id"])
                      for r in db.execute("SELECT owner, provider, user_id FROM identities"))


def snapshot(admin: ManagementClient) -> dict[str, Any]:
    """What apply + undo must leave as it found: users, their identities, their metadata."""
    out = {}
    for user in admin.list_users(per_page=100):
        out[user["user_id"]] = {
            "identities": sorted((i["provider"], i["user_id"]) for i in user["identities"]),
            "user_metadata": user.get("user_metadata") or {},
            "app_metadata": user.get("app_metadata") or {},
        }
    return out


def check_audit(result: Audit, sandbox: Sandbox) -> None:
    ids = result.identities
    got = sorted(zip(ids["owner"], ids["provider"].astype(str), ids["user_id"], strict=True))
    assert got == tenant_identities(sandbox)  # every identity, exactly once, with its owner
    assert len(set(got)) == len(got)
    assert sorted(result.users["user_id"]) == sorted({owner for owner, _, _ in got})
    candidates = link_candidates(result, tiers="exact")
    safe, unsafe = known_groups(sandbox)
    by_risk = {risk: sorted(sorted(g) for g in candidates[candidates["risk"] == risk]["user_ids"])
               for risk in ("safe", "unverified email")}
    assert by_risk["safe"] == safe
    assert by_risk["unverified email"] == unsafe
    assert set(candidates["risk"]) <= {"safe", "unverified email"}
    assert len(candidates) == len(safe) + len(unsafe)


@pytest.fixture(scope="module")
def shared_400_users() -> Iterator[tuple[Sandbox, ManagementClient]]:
    """A sandbox of 400 synthetic users and its admin client, shared by the tests that only read."""
    with Sandbox(seed=21, users=400) as sandbox:
        tenant = Tenant.from_sandbox(sandbox)
        with ManagementClient.from_client_credentials(tenant) as admin:
            yield sandbox, admin


def test_a_small_tenant_is_paged_and_every_identity_and_group_is_found(
    shared_400_users: tuple[Sandbox, ManagementClient],
) -> None:
    sandbox, admin = shared_400_users
    result = audit_tenant(admin, progress=False)
    assert result.source == "paging"
    check_audit(result, sandbox)


def test_the_export_path_gives_the_same_audit_as_paging(
    shared_400_users: tuple[Sandbox, ManagementClient],
) -> None:
    sandbox, admin = shared_400_users
    paged = audit_tenant(admin, progress=False)
    exported = audit_tenant(admin, progress=False, export_above=0, poll=0.05)
    assert exported.source == "export"
    check_audit(exported, sandbox)
    columns = ["user_id", "connection", "email", "email_verified", "created_at", "logins_count",
               "identities"]
    left = paged.users.sort_values("user_id")[columns].reset_index(drop=True)
    right = exported.users.sort_values("user_id")[columns].reset_index(drop=True)
    assert left.equals(right)


def test_a_tenant_past_the_1000_cap_is_audited_through_an_export_job() -> None:
    with Sandbox(seed=4, users=1500) as sandbox:
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
            result = audit_tenant(admin, progress=False, poll=0.05)
        assert result.source == "export"
        assert len(result.users) > 1000
        check_audit(result, sandbox)


@pytest.fixture
def fresh_120_users() -> Iterator[tuple[Sandbox, ManagementClient]]:
    """A new sandbox of 120 synthetic users and its admin client, for a test that links."""
    with Sandbox(seed=8, users=120) as sandbox:
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
            yield sandbox, admin


def test_a_dry_run_changes_nothing_and_unsafe_rows_are_refused_before_any_request(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_120_users
    before = snapshot(admin)
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    shown = apply_plan(admin, plan)
    assert set(shown["status"]) == {"would link", "would refuse: unverified email"}
    assert snapshot(admin) == before
    sent = admin.stats.requests
    with pytest.raises(UnsafeLink, match="unverified email"):
        apply_plan(admin, plan, dry_run=False, journal=tmp_path / "j.jsonl")
    assert admin.stats.requests == sent and not (tmp_path / "j.jsonl").exists()


def test_apply_then_undo_returns_the_tenant_to_its_starting_state(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_120_users
    result = audit_tenant(admin, progress=False)
    candidates = link_candidates(result, tiers="exact")
    plan = plan_links(candidates, result)
    unsafe = plan[plan["risk"] != "safe"]
    plan.loc[unsafe.index[:1], "allow_unsafe"] = True  # one unsafe row, allowed row by row
    plan = plan[(plan["risk"] == "safe") | plan["allow_unsafe"]]
    for number, row in enumerate(plan.itertuples()):  # keys only the secondary has, and a nested one
        admin.update_user_metadata(row.secondary_id, {f"only_here_{number}": number,
                                                      "prefs": {"lang": "fr", "n": number}})
        admin.update_user_metadata(row.primary_id, {"prefs": {"lang": "en"}})
    before = snapshot(admin)
    every_field = tenant_state(admin)
    expected: dict[str, dict[str, Any]] = {}
    for row in plan.itertuples():
        primary_meta = expected.get(row.primary_id, before[row.primary_id]["user_metadata"])
        expected[row.primary_id] = merge_metadata(primary_meta, before[row.secondary_id]["user_metadata"])[0]
    journal = tmp_path / "links.jsonl"
    done = apply_plan(admin, plan, dry_run=False, journal=journal)
    assert (done["status"] == "linked").all() and len(done) == len(plan)

    after = snapshot(admin)
    for row in plan.itertuples():
        assert row.secondary_id not in after  # the secondary user is gone, its identity moved
        assert (row.provider, row.user_id) in after[row.primary_id]["identities"]
        # merged by the documented rule: the primary's keys win, the secondary's new keys are added
        assert after[row.primary_id]["user_metadata"] == expected[row.primary_id]
        assert after[row.primary_id]["user_metadata"]["prefs"]["lang"] == "en"
    assert link_candidates(audit_tenant(admin, progress=False), tiers="exact")["risk"].eq("safe").sum() == 0

    records = [json.loads(line) for line in journal.read_text().splitlines()]
    started = [r for r in records if r["event"] == "started"]
    assert len(started) == len(plan) and all("identities" in r["secondary_profile"] for r in started)

    undone = undo(admin, journal)
    assert snapshot(admin) == before
    assert tenant_state(admin) == every_field  # field by field, but what Auth0 itself changes
    assert set(undone["status"]) == {"undone"} and len(undone) == len(plan)
    again = undo(admin, journal)  # a second undo finds nothing left to do
    assert set(again["status"]) == {"already undone"}
    assert tenant_state(admin) == every_field


class Killed(BaseException):
    """The process dying right after a request left: no handler in the client may catch it."""


def killing_transport(after_links: int) -> tuple[httpx2.MockTransport, dict[str, int]]:
    """Forward to the sandbox; after ``after_links`` link requests have reached it, die."""
    real = httpx2.HTTPTransport()
    count = {"links": 0}

    def handle(request: httpx2.Request) -> httpx2.Response:
        response = real.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/identities"):
            count["links"] += 1
            if count["links"] == after_links:
                response.read()
                raise Killed  # the link was made; its answer never arrives
        return response

    return httpx2.MockTransport(handle), count


def test_a_run_killed_halfway_resumes_from_its_journal_without_linking_twice(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    sandbox, admin = fresh_120_users
    before = snapshot(admin)
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    plan = plan[plan["risk"] == "safe"]
    assert len(plan) >= 4
    journal = tmp_path / "links.jsonl"
    transport, _ = killing_transport(after_links=3)
    tenant = Tenant.from_sandbox(sandbox)
    with ManagementClient.from_client_credentials(tenant, transport=transport) as dying:
        with pytest.raises(Killed):
            apply_plan(dying, plan, dry_run=False, journal=journal)

    counting, count = killing_transport(after_links=-1)
    with ManagementClient.from_client_credentials(tenant, transport=counting) as resumed:
        done = apply_plan(resumed, plan, dry_run=False, journal=journal)
    assert count["links"] == len(plan) - 3  # the third link was found made, not sent again
    assert done["status"].tolist()[:3] == ["already done (journal)"] * 2 + ["already linked"]
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert next(r for r in records if r.get("recovered"))["secondary_id"] == plan.iloc[2]["secondary_id"]
    after = snapshot(admin)
    for row in plan.itertuples():
        assert after[row.primary_id]["identities"].count((row.provider, row.user_id)) == 1

    undo(admin, journal)
    assert snapshot(admin) == before


def test_the_audit_and_a_plan_run_unchanged_under_auth0s_free_tier_rate_limit(tmp_path: Path) -> None:
    with Sandbox(seed=6, users=150, rate_limit="free") as sandbox:  # burst 2, 2 requests a second
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
            result = audit_tenant(admin, progress=False)
            check_audit(result, sandbox)
            plan = plan_links(link_candidates(result, tiers="exact"), result)
            plan = plan[plan["risk"] == "safe"].head(2)
            done = apply_plan(admin, plan, dry_run=False, journal=tmp_path / "j.jsonl")
            assert (done["status"] == "linked").all()
            assert admin.stats.waited_seconds > 0  # it paced itself instead of failing


REFUSALS = {
    503: ({}, {"statusCode": 503, "error": "Service Unavailable", "message": "The service is unavailable."}),
    # Auth0's 429, with a reset already due: the client waits nothing, then gives up after its waits
    429: ({"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"},
          {"statusCode": 429, "error": "Too Many Requests", "message": "Global limit has been reached",
           "errorCode": "too_many_requests"}),
}


def failing_links_transport(after_links: int, status: int = 503,
                            ) -> tuple[httpx2.MockTransport, dict[str, int]]:
    """Forward to the sandbox until ``after_links`` links went through; then every link answers
    ``status`` without reaching it (a tenant in trouble, or out of rate), while reads still work."""
    real = httpx2.HTTPTransport()
    count = {"links": 0, "refused": 0}
    headers, body = REFUSALS[status]

    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST" and request.url.path.endswith("/identities"):
            if count["links"] >= after_links:
                count["refused"] += 1
                return httpx2.Response(status, headers=headers, json=body)
            count["links"] += 1
        return real.handle_request(request)

    return httpx2.MockTransport(handle), count


@pytest.mark.parametrize(("status", "error"), [(503, ServerError), (429, RateLimited)])
def test_a_run_stopped_by_server_errors_or_rate_limits_resumes_from_its_journal(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path, status: int, error: type[Exception],
) -> None:
    sandbox, admin = fresh_120_users
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    plan = plan[plan["risk"] == "safe"]
    journal = tmp_path / "links.jsonl"
    tenant = Tenant.from_sandbox(sandbox)
    transport, count = failing_links_transport(after_links=2, status=status)
    with ManagementClient.from_client_credentials(tenant, transport=transport, backoff=0.01,
                                                  max_rate_limit_waits=2) as troubled:
        with pytest.raises(error):
            apply_plan(troubled, plan, dry_run=False, journal=journal)
    assert count["links"] == 2 and count["refused"] >= 1
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events == ["started", "done", "started", "done", "started", "stopped"]  # outcome unknown

    done = apply_plan(admin, plan, dry_run=False, journal=journal)
    assert done["status"].tolist() == ["already done (journal)"] * 2 + ["linked"] * (len(plan) - 2)
    after = snapshot(admin)
    for row in plan.itertuples():
        assert (row.provider, row.user_id) in after[row.primary_id]["identities"]


def test_a_row_the_tenant_refuses_is_reported_and_gives_the_merged_metadata_back(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_120_users
    result = audit_tenant(admin, progress=False)
    users = result.users
    holder = users[users["identities"] > 1]["user_id"].iloc[0]  # Auth0 refuses a secondary with links
    primary = users[(users["identities"] == 1) & (users["user_id"] != holder)]["user_id"].iloc[0]
    admin.update_user_metadata(holder, {"only_on_the_secondary": "x"})
    before = admin.get_user(primary).get("user_metadata") or {}
    provider, _, short = holder.partition("|")
    plan = pd.DataFrame([{"primary_id": primary, "secondary_id": holder, "provider": provider,
                          "user_id": short, "connection": None, "risk": "safe", "reasons": "safe",
                          "allow_unsafe": True}])  # two unrelated people: allowed, by hand
    done = apply_plan(admin, plan, dry_run=False, journal=tmp_path / "j.jsonl")
    assert done["status"].iloc[0].startswith("failed: ")
    assert (admin.get_user(primary).get("user_metadata") or {}) == before
    events = [json.loads(line)["event"] for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert events == ["started", "failed"]
    undone = undo(admin, tmp_path / "j.jsonl")  # nothing was linked: nothing is unlinked
    assert undone["status"].tolist() == ["nothing to undo: the tenant refused the link"]
    assert (admin.get_user(primary).get("user_metadata") or {}) == before


def test_both_paths_give_frames_with_the_documented_columns_and_dtypes(
    shared_400_users: tuple[Sandbox, ManagementClient],
) -> None:
    from test_audit_rules import IDENTITY_COLUMNS, USER_COLUMNS

    _, admin = shared_400_users
    paged, exported = (audit_tenant(admin, progress=False),
                       audit_tenant(admin, progress=False, export_above=0, poll=0.05))
    for result in (paged, exported):
        assert {c: str(t) for c, t in result.identities.dtypes.items()} == IDENTITY_COLUMNS, result.source
        assert {c: str(t) for c, t in result.users.dtypes.items()} == USER_COLUMNS, result.source
        assert result.users["email"].notna().all() and result.users["email_verified"].notna().all()


def test_an_empty_tenant_is_an_empty_audit_with_every_column(tmp_path: Path) -> None:
    with Sandbox(seed=2) as sandbox:
        assert sandbox.context is not None
        store = sandbox.context.store
        with store.read() as db:
            everyone = [r["user_id"] for r in db.execute("SELECT user_id FROM users")]
        for user_id in everyone:
            store.delete_user(user_id)
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
            result = audit_tenant(admin, progress=False)
            candidates = link_candidates(result, tiers="exact")
            plan = plan_links(candidates, result)
            done = apply_plan(admin, plan, dry_run=False, journal=tmp_path / "j.jsonl")
    assert result.users.empty and result.identities.empty and candidates.empty and done.empty
    assert "owner" in result.identities and "risk" in candidates
    assert result.users_by_identity_count()["users"].tolist() == [0, 0, 0]


def test_a_plan_row_naming_a_user_that_is_gone_is_reported_and_nothing_is_sent_for_it(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    sandbox, admin = fresh_120_users
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    plan = plan[plan["risk"] == "safe"].head(2).reset_index(drop=True)
    assert sandbox.context is not None
    gone_primary, gone_secondary = plan.loc[0, "primary_id"], plan.loc[1, "secondary_id"]
    sandbox.context.store.delete_user(gone_primary)
    sandbox.context.store.delete_user(gone_secondary)
    before = snapshot(admin)
    journal = tmp_path / "j.jsonl"
    for dry_run in (True, False):
        done = apply_plan(admin, plan, dry_run=dry_run, journal=journal)
        assert done["status"].tolist() == ["primary not found", "secondary not found"]
    assert snapshot(admin) == before and not journal.exists()


def test_a_corrupt_journal_stops_apply_and_undo_before_any_request(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_120_users
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    plan = plan[plan["risk"] == "safe"].head(2)
    journal = tmp_path / "links.jsonl"
    apply_plan(admin, plan.head(1), dry_run=False, journal=journal)
    assert oct(journal.stat().st_mode & 0o777) == oct(0o600)  # it holds full profiles
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], '{"event": "done", "primary_id": 1}', *lines[1:]]) + "\n")
    before, sent = snapshot(admin), admin.stats.requests
    with pytest.raises(ValueError, match="line 2"):
        apply_plan(admin, plan, dry_run=False, journal=journal)
    with pytest.raises(ValueError, match="line 2"):
        undo(admin, journal)
    assert admin.stats.requests == sent
    assert snapshot(admin) == before
    with pytest.raises(FileNotFoundError, match="no journal"):
        undo(admin, tmp_path / "mistyped.jsonl")


def test_the_export_job_and_the_reading_show_progress_bars(
    shared_400_users: tuple[Sandbox, ManagementClient], capsys: pytest.CaptureFixture[str],
) -> None:
    _, admin = shared_400_users
    total = admin.count_users()
    result = audit_tenant(admin, export_above=0, poll=0.05)  # progress=True is the default
    bars = capsys.readouterr().err
    assert "export job: 100%" in bars
    assert "users: 100%" in bars and f"{total}/{total}" in bars and len(result.users) == total
    audit_tenant(admin, progress=False)
    assert capsys.readouterr().err == ""


def test_a_row_marked_safe_is_checked_again_on_the_users_as_they_are_now(
    fresh_120_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    sandbox, admin = fresh_120_users
    result = audit_tenant(admin, progress=False)
    plan = plan_links(link_candidates(result, tiers="exact"), result)
    plan = plan[plan["risk"] == "safe"].head(1)
    users = result.users
    email = users.set_index("user_id").loc[plan["primary_id"].iloc[0], "email"]
    others = users[(users["email"] != email) & users["email_verified"] & (users["identities"] == 1)]
    stranger = others["user_id"].iloc[-1]  # verified, unlinked, someone else's email
    by_hand = plan.assign(secondary_id=stranger, provider=stranger.split("|")[0],
                          user_id=stranger.split("|", 1)[1])
    secondary = plan["secondary_id"].iloc[0]
    assert sandbox.context is not None
    sandbox.context.store.update_user(secondary, {"email_verified": False})  # since the audit
    before = snapshot(admin)
    journal = tmp_path / "j.jsonl"
    shown = apply_plan(admin, pd.concat([plan, by_hand]))
    assert shown["status"].tolist() == ["would refuse: unverified email now",
                                        "would refuse: emails differ now"]
    done = apply_plan(admin, pd.concat([plan, by_hand]), dry_run=False, journal=journal)
    assert done["status"].tolist() == ["refused: unverified email now", "refused: emails differ now"]
    assert snapshot(admin) == before and not journal.exists()
    allowed = apply_plan(admin, plan, dry_run=False, journal=journal, allow_unsafe=[secondary])
    assert allowed["status"].tolist() == ["linked"]  # the analyst checked that person and allowed the row
