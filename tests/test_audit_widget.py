"""AuditTable: paging, filters, selection into a plan, dry run and apply with a confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linking_toolkit import AuditTable, ManagementClient, Tenant, audit_tenant, link_candidates, undo
from linking_toolkit.audit import RISKS
from linking_toolkit.sandbox import Sandbox


def big_candidates(n: int) -> pd.DataFrame:
    """A candidates frame of ``n`` groups, shaped like ``link_candidates``'s."""
    k = np.arange(n)
    connections = np.array(["Username-Password-Authentication, google-oauth2", "facebook, github"])
    return pd.DataFrame({
        "email": pd.array([f"p{i}@example.org" for i in k], dtype="string"),
        "users": 2,
        "primary_id": pd.array([f"auth0|{i}" for i in k], dtype="string"),
        "user_ids": [[f"auth0|{i}", f"github|{i}"] for i in k],
        "connections": pd.array(connections[k % 2], dtype="string"),
        "risk": pd.Categorical(np.where(k % 3 == 0, "unverified email", "safe"), categories=RISKS),
        "last_login": pd.Timestamp("2026-01-01", tz="UTC"),
    })


def test_paging_a_large_frame_shows_25_rows_at_a_time_from_the_filtered_positions() -> None:
    candidates = big_candidates(100_000)
    table = AuditTable(candidates)
    assert table.pages == 4000 and len(table.page_frame) == 25
    table.next_page()
    assert table.page_frame.index.tolist() == list(range(25, 50))
    table.go_to(10_000)  # past the end: the last page
    assert table.page == 3999 and table.page_frame.index[-1] == 99_999
    table.set_filter(risk="unverified email")
    assert table.filtered == 33_334 and table.page == 0
    assert (table.page_frame["risk"] == "unverified email").all()
    table.set_filter(risk="safe", connection="github")
    assert (table.page_frame["connections"] == "facebook, github").all()
    assert table.filtered == len(candidates[(candidates.index % 3 != 0) & (candidates.index % 2 == 1)])
    shown = [cells[0].value for cells in table.cells]
    assert shown == table.page_frame["email"].tolist()


def test_selected_rows_become_a_plan_and_the_checkboxes_follow_the_page() -> None:
    table = AuditTable(big_candidates(60))
    table.select_page()
    table.checks[0].value = False  # a person unticks the first row
    assert len(table.selected) == 24
    table.next_page()
    table.checks[1].value = True
    plan = table.plan
    assert len(plan) == 25 and plan["secondary_id"].iloc[-1] == "github|26"
    table.prev_page()
    assert [c.value for c in table.checks][:2] == [False, True]
    assert "25 selected" in table.page_label.value
    assert "<table" in table.to_html() and "p1@example.org" in table.to_html()


@pytest.fixture
def fresh_150_users() -> Iterator[tuple[Sandbox, ManagementClient]]:
    """A new sandbox of 150 synthetic users and its admin client, for a test that links."""
    with Sandbox(seed=31, users=150) as sandbox:
        with ManagementClient.from_client_credentials(Tenant.from_sandbox(sandbox)) as admin:
            yield sandbox, admin


def test_dry_run_then_apply_after_confirmation_then_undo(
    fresh_150_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_150_users
    result = audit_tenant(admin, progress=False)
    candidates = link_candidates(result, tiers="exact")
    journal = tmp_path / "links.jsonl"
    table = AuditTable(candidates, admin, audit=result, journal=str(journal))
    table.set_filter(risk="safe")
    table.select(list(table.page_frame.index[:3]))
    table.press_dry_run()
    assert table.wait_idle(60)
    assert table.result is not None and set(table.result["status"]) == {"would link"}
    assert table.message.startswith("Dry run:") and not journal.exists()

    table.press_apply()
    assert table.confirm_box.layout.display == "flex" and "Link" in table.confirm_text.value
    table.cancel()
    assert table.message == "Nothing was linked." and not journal.exists()
    table.press_apply()
    table.confirm()
    assert table.wait_idle(60)
    assert set(table.result["status"]) == {"linked"}, table.message
    assert link_candidates(audit_tenant(admin, progress=False), tiers="exact")["risk"].eq("safe").sum() == (
        (candidates["risk"] == "safe").sum() - 3)
    undo(admin, journal)
    assert len(link_candidates(audit_tenant(admin, progress=False), tiers="exact")) == len(candidates)


def test_unsafe_rows_are_refused_unless_allowed_and_the_error_is_shown(
    fresh_150_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_150_users
    result = audit_tenant(admin, progress=False)
    table = AuditTable(link_candidates(result, tiers="exact"), admin, audit=result,
                       journal=str(tmp_path / "j.jsonl"))
    table.set_filter(risk="unverified email")
    table.select([table.page_frame.index[0]])
    table.press_apply()
    table.confirm()
    assert table.wait_idle(60)
    assert "unsafe" in table.message and not (tmp_path / "j.jsonl").exists()
    table.allow_unsafe_box.value = True
    table.press_apply()
    assert "unsafe and allowed" in table.confirm_text.value
    table.confirm()
    assert table.wait_idle(60)
    assert set(table.result["status"]) == {"linked"}


def test_actions_need_a_client_and_a_selection() -> None:
    table = AuditTable(big_candidates(3))
    table.press_dry_run()
    assert "No Management client" in table.message
