"""The audit on every plan: a tenant refusing export jobs, ``created_at`` range search, and the
partitioned search that reads a tenant past the 1000 cap without an export job, over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import pandas as pd
import pytest
from test_sandbox_management import assert_error

from linking_toolkit import ManagementClient, Tenant
from linking_toolkit.audit import Audit, audit_tenant, link_candidates
from linking_toolkit.audit.fetch import IncompleteAudit
from linking_toolkit.errors import Forbidden
from linking_toolkit.sandbox import Sandbox

USERS = 20_000
REFUSAL = "Please upgrade your subscription to enable bulk user exports."


def bearer(sandbox: Sandbox) -> str:
    response = httpx2.post(sandbox.base_url + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
        "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[Sandbox, ManagementClient, httpx2.Client]]:
    """20 000 synthetic users (and the 10 demo ones), export jobs on: its admin client and an HTTP
    client on its /api/v2."""
    with Sandbox(seed=5, users=USERS) as sandbox:
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin, \
                httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                              headers={"Authorization": f"Bearer {bearer(sandbox)}"}) as api:
            yield sandbox, admin, api


@pytest.fixture(scope="module")
def free_plan() -> Iterator[tuple[Sandbox, ManagementClient, httpx2.Client]]:
    """A tenant of 2 500 users on a plan without export jobs."""
    with Sandbox(seed=6, users=2500, export_jobs=False) as sandbox:
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin, \
                httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                              headers={"Authorization": f"Bearer {bearer(sandbox)}"}) as api:
            yield sandbox, admin, api


def stored(sandbox: Sandbox, sql: str, *params: Any) -> list[Any]:
    """What the tenant holds, read from its store (the ground truth the answers are checked on)."""
    assert sandbox.context is not None
    with sandbox.context.store.read() as db:
        return [tuple(row) for row in db.execute(sql, params)]


def user_ids(sandbox: Sandbox) -> list[str]:
    return sorted(row[0] for row in stored(sandbox, "SELECT user_id FROM users"))


def jobs_created(sandbox: Sandbox) -> int:
    return stored(sandbox, "SELECT count(*) FROM jobs")[0][0]


def search_total(api: httpx2.Client, q: str) -> int:
    response = api.get("/users", params={"q": q, "search_engine": "v3", "per_page": 0,
                                         "include_totals": "true"})
    assert response.status_code == 200, response.text
    return response.json()["total"]


def assert_same_audit(partitioned: Audit, exported: Audit) -> None:
    """The two paths give the same audit. The users frames are equal, the candidates too; so are
    the identities, but for what only a search answer carries: a linked identity's own email,
    email_verified and name (its profileData; an export leaves them out, as on Auth0, and the
    paging path shows them the same way)."""
    def ordered(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
        return frame.sort_values(key).reset_index(drop=True)

    assert ordered(partitioned.users, ["user_id"]).equals(ordered(exported.users, ["user_id"]))
    key = ["owner", "provider", "user_id"]
    left, right = ordered(partitioned.identities, key), ordered(exported.identities, key)
    assert list(left.columns) == list(right.columns) and left.dtypes.equals(right.dtypes)
    own = ["email_raw", "email", "email_verified", "name"]
    assert left.drop(columns=own).equals(right.drop(columns=own))
    primary = left["is_primary"].to_numpy()
    assert left[primary].equals(right[primary])
    assert len(left) > len(partitioned.users)  # some users hold linked identities
    candidates = [ordered(link_candidates(a), ["email"]) for a in (partitioned, exported)]
    assert candidates[0].equals(candidates[1])


# -- the refusal ------------------------------------------------------------------------------------


def test_a_plan_without_export_jobs_refuses_them_in_auth0s_shape_and_creates_nothing(
    free_plan: tuple[Sandbox, ManagementClient, httpx2.Client],
) -> None:
    sandbox, admin, api = free_plan
    for body in ({"format": "json"}, {}, {"format": "csv", "fields": [{"name": "email"}]}):
        answer = assert_error(api.post("/jobs/users-exports", json=body), 403, REFUSAL,
                              "operation_not_supported")
        assert answer == {"statusCode": 403, "error": "Forbidden", "message": REFUSAL,
                          "errorCode": "operation_not_supported"}
    with pytest.raises(Forbidden, match="upgrade your subscription") as refused:
        admin.create_users_export(format="json")
    assert refused.value.status_code == 403 and refused.value.error_code == "operation_not_supported"
    assert jobs_created(sandbox) == 0
    assert sandbox.context is not None and sandbox.context.exports is None  # no export folder either
    # Forcing the export path shows the tenant's refusal as it is.
    with pytest.raises(Forbidden, match="upgrade your subscription"):
        audit_tenant(admin, method="export", progress=False)
    assert jobs_created(sandbox) == 0


def test_the_refusal_comes_after_the_token_check(
    free_plan: tuple[Sandbox, ManagementClient, httpx2.Client],
) -> None:
    sandbox, _, _ = free_plan
    anonymous = httpx2.post(sandbox.base_url + "/api/v2/jobs/users-exports", json={"format": "json"})
    assert_error(anonymous, 401)
    assert jobs_created(sandbox) == 0


# -- range search -----------------------------------------------------------------------------------


def test_created_at_ranges_inclusive_exclusive_mixed_and_open(
    big: tuple[Sandbox, ManagementClient, httpx2.Client],
) -> None:
    sandbox, _, api = big
    stamps = sorted(row[0] for row in stored(sandbox, "SELECT created_at FROM users"))
    low, high = stamps[100], stamps[700]

    def between(lo: str | None, hi: str | None, lo_in: bool = True, hi_in: bool = True) -> int:
        return sum(1 for s in stamps
                   if (lo is None or s > lo or (lo_in and s == lo))
                   and (hi is None or s < hi or (hi_in and s == hi)))

    assert search_total(api, f"created_at:[{low} TO {high}]") == between(low, high) >= 601
    assert search_total(api, f"created_at:{{{low} TO {high}}}") == between(low, high, False, False)
    assert search_total(api, f"created_at:[{low} TO {high}}}") == between(low, high, True, False)
    assert search_total(api, f"created_at:{{{low} TO {high}]") == between(low, high, False, True)
    assert between(low, high) - between(low, high, False, False) == 2  # both ends are users
    assert search_total(api, f"created_at:[* TO {high}]") == between(None, high) == 701
    assert search_total(api, f"created_at:{{{low} TO *]") == between(low, None, False) == len(stamps) - 101
    assert search_total(api, "created_at:[* TO *]") == len(stamps)
    # Quoted bounds, a date alone (its midnight, UTC) and another offset name the same instants.
    assert search_total(api, f'created_at:["{low}" TO "{high}"]') == between(low, high)
    day = stamps[5000][:10]
    assert search_total(api, f"created_at:[{day} TO {day}T23:59:59.999Z]") == \
        sum(1 for s in stamps if s.startswith(day))
    assert search_total(api, f"created_at:[{day}T02:00:00+02:00 TO {day}T23:59:59.999Z]") == \
        sum(1 for s in stamps if s.startswith(day))


def test_a_range_combines_with_other_terms_and_pages_in_order(
    big: tuple[Sandbox, ManagementClient, httpx2.Client],
) -> None:
    sandbox, _, api = big
    rows = sorted(stored(sandbox, "SELECT created_at, user_id, email_verified FROM users"))
    low, high = rows[2000][0], rows[2500][0]
    verified = [r for r in rows if low <= r[0] <= high and r[2]]
    q = f"created_at:[{low} TO {high}] AND email_verified:true"
    assert search_total(api, q) == len(verified)
    answer = api.get("/users", params={"q": q, "search_engine": "v3", "sort": "created_at:1",
                                       "per_page": 50, "page": 1, "fields": "user_id,created_at"})
    assert answer.status_code == 200
    assert [u["user_id"] for u in answer.json()] == [r[1] for r in verified[50:100]]
    ranged = f"logins_count:[3 TO 5] AND created_at:[{low} TO *]"
    assert search_total(api, ranged) == len(stored(
        sandbox, "SELECT 1 FROM users WHERE logins_count BETWEEN 3 AND 5 AND created_at >= ?", low))


@pytest.mark.parametrize("q, says", [
    ("created_at:[2024-01-01 TO", "cannot parse the range"),
    ("created_at:[2024-01-01 2024-02-01]", "cannot parse the range"),
    ("created_at:{2024-01-01 TO 2024-02-01", "cannot parse the range"),
    ("created_at:[yesterday TO *]", "is not an ISO 8601 date"),
    ("created_at:[2024-13-01 TO *]", "is not an ISO 8601 date"),
    ("logins_count:[one TO 5]", "is not an integer"),
    ("name:[a TO b]", "cannot be searched by range"),
    ("created_at:[* TO *] OR email:x", "only AND is supported"),
])
def test_a_bad_range_is_auth0s_400(big: tuple[Sandbox, ManagementClient, httpx2.Client], q: str,
                                   says: str) -> None:
    _, _, api = big
    response = api.get("/users", params={"q": q, "search_engine": "v3"})
    body = assert_error(response, 400, error_code="invalid_query_string")
    assert set(body) == {"statusCode", "error", "message", "errorCode"}
    assert body["message"].startswith("Invalid query: ") and says in body["message"]


# -- the partitioned audit --------------------------------------------------------------------------


def test_the_partitioned_audit_equals_the_export_audit_on_20000_users(
    big: tuple[Sandbox, ManagementClient, httpx2.Client], capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox, admin, _ = big
    sent = admin.stats.requests
    partitioned = audit_tenant(admin, method="partitioned")  # progress shown, as a notebook would
    requests = admin.stats.requests - sent
    shown = capsys.readouterr().err
    assert partitioned.source == "partitioned"
    assert len(partitioned.users) == USERS + 10 == partitioned.users["user_id"].nunique()
    assert "users (partitioned search)" in shown and f"{USERS + 10}/{USERS + 10}" in shown
    assert "partitions=" in shown
    # Every page is a full one but each range's last: close to the 201 pages 20 010 users need.
    assert 201 < requests < 260
    exported = audit_tenant(admin, method="export", progress=False, poll=0.05)
    assert exported.source == "export"
    assert_same_audit(partitioned, exported)
    assert sorted(partitioned.users["user_id"]) == user_ids(sandbox)


def test_auto_falls_back_to_the_partitioned_search_when_exports_are_refused(
    free_plan: tuple[Sandbox, ManagementClient, httpx2.Client], caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox, admin, _ = free_plan
    with caplog.at_level(logging.WARNING, logger="linking_toolkit.audit"):
        result = audit_tenant(admin, progress=False)
    assert result.source == "partitioned"
    said = [r.getMessage() for r in caplog.records if r.name == "linking_toolkit.audit"]
    assert said == [f"the tenant refused the users-export job (403: {REFUSAL}); reading its 2510 users "
                    "by a partitioned search instead"]
    assert sorted(result.users["user_id"]) == user_ids(sandbox)
    assert sorted(zip(result.identities["owner"], result.identities["user_id"], strict=True)) == \
        sorted(stored(sandbox, "SELECT owner, user_id FROM identities"))
    assert jobs_created(sandbox) == 0
    # Forced, the same path on the same tenant gives the same frames.
    forced = audit_tenant(admin, method="partitioned", progress=False)
    assert forced.source == "partitioned" and forced.users.sort_values("user_id").reset_index(drop=True) \
        .equals(result.users.sort_values("user_id").reset_index(drop=True))


def test_a_small_tenant_still_pages_and_can_be_partitioned_on_request() -> None:
    with Sandbox(seed=2, users=300, export_jobs=False) as sandbox, \
            ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
        paged = audit_tenant(admin, progress=False)
        partitioned = audit_tenant(admin, method="partitioned", progress=False)
    assert (paged.source, partitioned.source) == ("paging", "partitioned")
    assert paged.users.sort_values("user_id").reset_index(drop=True).equals(
        partitioned.users.sort_values("user_id").reset_index(drop=True))
    assert paged.identities.sort_values(["owner", "user_id"]).reset_index(drop=True).equals(
        partitioned.identities.sort_values(["owner", "user_id"]).reset_index(drop=True))


def same_millisecond(sandbox: Sandbox, users: int, stamp: str) -> None:
    """Give ``users`` users one created_at, as a bulk import can (the API cannot set it)."""
    assert sandbox.context is not None
    with sandbox.context.store.transaction() as db:
        db.execute("UPDATE users SET created_at = ? WHERE user_id IN "
                   "(SELECT user_id FROM users ORDER BY user_id LIMIT ?)", (stamp, users))


def test_more_than_1000_users_in_one_millisecond_are_read_both_ways_and_past_2000_refused() -> None:
    with Sandbox(seed=9, users=3000) as sandbox, \
            ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
        same_millisecond(sandbox, 1700, "2024-03-01T10:00:00.123Z")
        partitioned = audit_tenant(admin, method="partitioned", progress=False)
        assert partitioned.source == "partitioned" and len(partitioned.users) == 3010
        exported = audit_tenant(admin, method="export", progress=False, poll=0.05)
        assert_same_audit(partitioned, exported)

        same_millisecond(sandbox, 2001, "2024-03-01T10:00:00.123Z")
        with pytest.raises(IncompleteAudit) as refused:
            audit_tenant(admin, method="partitioned", progress=False)
        assert str(refused.value) == (
            "2001 users share one created_at, 2024-03-01T10:00:00.123Z: a search reaches at most 2000 "
            "of them (the first 1000 in each order); only a users-export job (on a plan with them) "
            "reads this tenant whole")


def test_a_bad_method_is_one_line_before_any_request(
    free_plan: tuple[Sandbox, ManagementClient, httpx2.Client],
) -> None:
    _, admin, _ = free_plan
    sent = admin.stats.requests
    with pytest.raises(ValueError) as refused:
        audit_tenant(admin, method="fast")
    assert str(refused.value) == "method must be one of 'auto', 'export', 'partitioned', not 'fast'"
    assert admin.stats.requests == sent
