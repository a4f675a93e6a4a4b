"""AuditTable: paging, filters, selection into a plan, dry run and apply with a confirmation."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as widgets
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


def exact_table(admin: ManagementClient, journal: Path | None = None) -> AuditTable:
    """The table of a fresh audit's exact candidates, as a learner makes it."""
    result = audit_tenant(admin, progress=False)
    return AuditTable(link_candidates(result, tiers="exact"), admin, audit=result,
                      journal=str(journal) if journal else None)


def apply_confirmed(table: AuditTable, labels: list) -> None:
    """Select ``labels``, press Apply… and Confirm, and wait for the links, as a learner would."""
    table.select(labels)
    table.press_apply()
    table.confirm()
    assert table.wait_idle(60)


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
    table = exact_table(admin, tmp_path / "j.jsonl")
    table.set_filter(risk="unverified email")
    apply_confirmed(table, [table.page_frame.index[0]])
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


class FivePerPage(AuditTable):
    page_size = 5


def widgets_under(widget: widgets.Widget) -> Iterator[widgets.Widget]:
    """``widget`` and every widget laid out inside it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from widgets_under(child)


def test_why_shows_above_the_rows_and_a_new_filter_or_page_clears_it(
    fresh_150_users: tuple[Sandbox, ManagementClient],
) -> None:
    _, admin = fresh_150_users
    result = audit_tenant(admin, progress=False)
    table = AuditTable(link_candidates(result), admin, audit=result)
    assert table.children.index(table.top_area) < table.children.index(table.grid)
    first = table.page_frame.index[0]
    table.why_buttons[0].click()  # a person presses the first row's "Why?"
    assert table.feedback.why_shown
    assert table.page_frame.loc[first, "primary_id"] in table.why_text.value
    assert table.why_image.layout.display is None and bytes(table.why_image.value).startswith(b"\x89PNG")
    assert table.why_text in set(widgets_under(table.top_area))  # next to the controls, not under the rows
    assert table.dry_run_button in set(widgets_under(table.top_area))

    table.risk_picker.value = "safe"  # a person picks another filter
    assert not table.feedback.why_shown and table.why_text.value == ""
    assert table.why_image.layout.display == "none"
    table.why(table.page_frame.index[0])
    table.connection_picker.value = table.connection_picker.options[1]
    assert table.why_text.value == ""
    pages = FivePerPage(link_candidates(result), admin, audit=result)  # 17 groups: 4 pages
    pages.why(pages.page_frame.index[0])
    pages.go_to(0)  # the same page: the panel stays
    assert pages.feedback.why_shown
    pages.next_button.click()  # another page
    assert pages.page == 1 and pages.why_text.value == ""


def test_a_dry_run_shows_its_results_above_the_rows_and_a_filter_clears_them(
    fresh_150_users: tuple[Sandbox, ManagementClient],
) -> None:
    _, admin = fresh_150_users
    table = exact_table(admin)
    table.set_filter(risk="safe")
    table.select(list(table.page_frame.index[:2]))
    table.press_dry_run()
    assert table.wait_idle(60)
    assert table.result_area in set(widgets_under(table.top_area))
    assert "Dry run" in table.result_area.value and "would link" in table.result_area.value
    assert table.message.startswith("Dry run:")
    table.set_filter(risk="unverified email")
    assert table.result_area.value == "" and table.message == ""


def test_groups_linked_by_apply_leave_the_candidates_at_once(
    fresh_150_users: tuple[Sandbox, ManagementClient], tmp_path: Path,
) -> None:
    _, admin = fresh_150_users
    table = exact_table(admin, tmp_path / "links.jsonl")
    table.set_filter(risk="safe")
    before = table.filtered
    chosen = list(table.page_frame.index[:3])
    apply_confirmed(table, chosen)
    assert set(table.result["status"]) == {"linked"}, table.message
    assert table.linked == set(chosen) and table.selected == set()
    assert table.filtered == before - 3
    assert not set(chosen) & set(table.page_frame.index)  # no longer offered on the page
    shown = [cells[0].value for cells in table.cells]
    assert not {html.escape(table.candidates.loc[label, "email"]) for label in chosen} & set(shown)
    assert "Applied" in table.result_area.value and "3 linked" in table.message  # the answer stays
    assert "3 linked" in table.page_label.value
    table.set_filter()  # another filter does not bring them back
    assert table.filtered == len(table.candidates) - 3
    offered = set()
    for page in range(table.pages):
        table.go_to(page)
        offered |= set(table.page_frame.index)
    assert not set(chosen) & offered


def test_the_plain_text_form_says_to_run_the_cell() -> None:
    table = AuditTable(big_candidates(30))
    table.select([0, 1])
    assert repr(table) == "Audit table: run this cell to see it (30 link candidate groups, 2 selected)"
    assert table.connection_picker.style.description_width == "initial"  # "Connection:" whole
