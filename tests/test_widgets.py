"""IdentityTable and LoginPrompt driven from Python against a running sandbox, as a learner would
click them: link through the button (the device login approved on the sandbox's own pages),
unlink through a row's button with its confirmation, errors in the message area."""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Iterator

import ipywidgets as widgets
import pytest

from linking_toolkit import ManagementClient, Session, Tenant, login
from linking_toolkit.errors import LoginCancelled, NotFound
from linking_toolkit.management import ClientCredentials
from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.widgets import IdentityTable, LoginPrompt

ADA = "ada@example.com"
WAIT = 30  # seconds: an upper bound for a sandbox login, never a timing under test


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    # Poll every second instead of Auth0's five, so each device login costs one second.
    return {"device_poll_interval": 1}


def ada_login(tenant: Tenant) -> Session:
    password = tenant.sandbox.demo_user(ADA)["password"]
    return login(tenant, method="password", email=ADA, password=password)


def google_id_of_ada(admin: ManagementClient) -> str:
    return next(u["user_id"] for u in admin.users_by_email(ADA) if u["user_id"].startswith("google-oauth2|"))


def link_google_elsewhere(admin: ManagementClient, primary_id: str) -> str:
    """Link Ada's Google account to ``primary_id`` with the admin client (the arrangement)."""
    google = google_id_of_ada(admin)
    admin.link(primary_id, provider="google-oauth2", user_id=google.split("|", 1)[1])
    return google


def link_through_button(table: IdentityTable, tenant: Tenant, connection: str, **approve: object) -> None:
    table.press_link(connection)
    pending = table.wait_for_login(WAIT)
    tenant.sandbox.approve_device(pending.user_code, connection=connection, email=ADA, **approve)
    assert table.wait_idle(WAIT)


def all_widget_states(widget: widgets.Widget, seen: set[int] | None = None) -> Iterator[dict]:
    """The state of ``widget`` and every widget it holds (what a notebook would save)."""
    seen = set() if seen is None else seen
    if id(widget) in seen:
        return
    seen.add(id(widget))
    yield widget.get_state()
    for key in widget.keys:
        value = getattr(widget, key)
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, widgets.Widget):
                yield from all_widget_states(item, seen)


def test_table_shows_each_identity_and_no_unlink_button_on_the_main_one(client_tenant, admin):
    primary = ada_login(client_tenant)
    google = link_google_elsewhere(admin, primary.user_id)
    primary = ada_login(client_tenant)  # a fresh login reads the profile with Google linked

    table = IdentityTable(primary)

    assert [(r["connection"], r["primary"]) for r in table.rows] == [(DATABASE, True),
                                                                     ("google-oauth2", False)]
    assert table.rows[1] == {"connection": "google-oauth2", "provider": "google-oauth2",
                             "user_id": google.split("|", 1)[1], "name": "Ada Lovelace", "email": ADA,
                             "verified": True, "primary": False}
    buttons = table.unlink_buttons
    assert buttons[0] is None and buttons[1].description == "Unlink"
    with pytest.raises(ValueError, match="main identity"):
        table.press_unlink(0)
    assert table.connection_picker.options == tuple(client_tenant.connections)
    # Its plain text, what a saved notebook shows before the cell runs, says what to do.
    assert repr(table) == f"Identity table of {ADA}: run this cell to see it (2 identities)"
    assert table.connection_picker.value not in {DATABASE, "google-oauth2"}  # one Ada can still link


def test_the_link_list_starts_on_a_social_connection_and_reads_its_label_whole(client_tenant, admin):
    primary = ada_login(client_tenant)  # database only: her own connection is first in the list
    table = IdentityTable(primary)
    assert client_tenant.connections[0] == DATABASE and [r["connection"] for r in table.rows] == [DATABASE]
    assert table.connection_picker.value == next(c for c in client_tenant.connections if c != DATABASE)
    assert table.connection_picker.style.description_width == "initial"  # "Connection:", not "Connecti…"
    assert repr(table) == f"Identity table of {ADA}: run this cell to see it (1 identity)"

    picked = table.connection_picker.value
    link_through_button(table, client_tenant, picked)  # linked: the list moves on to one not held yet
    assert [r["connection"] for r in table.rows] == [DATABASE, picked]
    assert table.connection_picker.value not in {DATABASE, picked}

    every = IdentityTable(primary, connections=[DATABASE, picked])  # all held: the first one
    assert every.connection_picker.value == DATABASE


def test_link_through_the_button_links_the_approved_account(client_tenant, admin):
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    cells_before = list(table.grid.children[:14])
    google = google_id_of_ada(admin)
    requests_before = primary.management.stats.requests  # the session's own Management client

    link_through_button(table, client_tenant, "google-oauth2")

    assert table.message == f"Linked the google-oauth2 account ({google})."
    assert [r["connection"] for r in table.rows] == [DATABASE, "google-oauth2"]
    # One request, the link itself: the table redrew from its answer, without re-fetching.
    assert primary.management.stats.requests == requests_before + 1
    # The tenant agrees: the Google user is now an identity of Ada's, not a user of its own.
    assert [i["connection"] for i in admin.get_user(primary.user_id)["identities"]] == [DATABASE,
                                                                                        "google-oauth2"]
    with pytest.raises(NotFound):
        admin.get_user(google)
    # The header and the main row are the same widgets as before: updated, not rebuilt.
    assert all(a is b for a, b in zip(cells_before, table.grid.children[:14], strict=True))
    assert table.prompt_area.children == ()
    assert not table.busy and not table.link_button.disabled


def test_unlink_through_a_rows_button_asks_first_then_unlinks(client_tenant, admin):
    primary = ada_login(client_tenant)
    google = link_google_elsewhere(admin, primary.user_id)
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    main_row = list(table.grid.children[:14])  # the header and Ada's own row
    requests_before = primary.management.stats.requests

    table.unlink_buttons[1].click()
    assert table.confirmation == f"Unlink the google-oauth2 account {ADA}? It becomes a separate user again."
    assert table.confirm_box.layout.display == "flex"
    table.cancel_button.click()
    assert table.confirmation is None and table.message == "Nothing was unlinked."
    assert len(admin.get_user(primary.user_id)["identities"]) == 2  # nothing was sent

    # Every change of the buttons' disabled state, in order: off while the unlink runs, on after.
    changes = []
    for button in (table.link_button, table.unlink_buttons[1]):
        button.observe(lambda change, b=button: changes.append((b.description, change["new"])), "disabled")
    table.unlink_buttons[1].click()
    table.confirm_button.click()
    assert table.wait_idle(WAIT)
    assert changes == [("Link another account", True), ("Unlink", True), ("Link another account", False)]

    assert [r["connection"] for r in table.rows] == [DATABASE]
    assert table.unlink_buttons == [None]
    # One request, the unlink itself: the table redrew from its answer, without re-fetching,
    # and kept the widgets of the row that stayed.
    assert primary.management.stats.requests == requests_before + 1
    assert list(table.grid.children) == main_row
    assert all(a is b for a, b in zip(main_row, table.grid.children, strict=True))
    assert table.message.startswith(f"Unlinked google-oauth2 ({google})")
    assert table.confirm_box.layout.display == "none"
    assert [i["connection"] for i in admin.get_user(primary.user_id)["identities"]] == [DATABASE]
    secondary = admin.get_user(google)  # a user of its own again
    assert [i["connection"] for i in secondary["identities"]] == ["google-oauth2"]


def test_confirm_without_a_question_is_refused(client_tenant):
    table = IdentityTable(ada_login(client_tenant))
    with pytest.raises(RuntimeError, match="no unlink to confirm"):
        table.confirm()


def test_a_double_click_on_confirm_or_on_a_gone_rows_unlink_does_nothing(client_tenant, admin, caplog):
    primary = ada_login(client_tenant)
    link_google_elsewhere(admin, primary.user_id)
    table = IdentityTable(ada_login(client_tenant))
    google_button = table.unlink_buttons[1]
    google_button.click()

    table.confirm_button.click()
    table.confirm_button.click()  # the second click of a double click: nothing to confirm any more
    assert table.wait_idle(WAIT)
    google_button.click()  # a late click on the row that is gone

    assert table.message.startswith("Unlinked google-oauth2")
    assert table.confirmation is None and [r["connection"] for r in table.rows] == [DATABASE]
    # ipywidgets reports a failing click handler as a traceback in a kernel and a log record here.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_buttons_are_disabled_while_the_linking_login_waits(client_tenant, admin):
    primary = ada_login(client_tenant)
    link_google_elsewhere(admin, primary.user_id)
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)

    table.press_link("github")
    pending = table.wait_for_login(WAIT)

    assert table.busy
    assert table.link_button.disabled and table.connection_picker.disabled
    assert table.unlink_buttons[1].disabled and table.confirm_button.disabled
    table.press_unlink(1)  # a press while busy does nothing
    assert table.confirmation is None
    prompt = table.prompt_area.children[0]
    assert isinstance(prompt, LoginPrompt) and prompt.pending is pending
    assert pending.user_code in prompt.code.value

    client_tenant.sandbox.approve_device(pending.user_code, connection="github", email=ADA)
    assert table.wait_idle(WAIT)
    assert not table.busy
    assert not any(b.disabled for b in table.unlink_buttons if b is not None)
    assert not table.link_button.disabled and not table.connection_picker.disabled
    assert [r["connection"] for r in table.rows] == [DATABASE, "google-oauth2", "github"]


def test_a_denied_login_shows_the_tenants_words_and_changes_nothing(client_tenant):
    table = IdentityTable(ada_login(client_tenant))

    link_through_button(table, client_tenant, "google-oauth2", deny=True)

    assert table.message == "User cancelled the confirmation prompt or consent page."
    assert "Traceback" not in table.message_area.value
    assert "b00020" in table.message_area.value  # shown as an error
    assert [r["connection"] for r in table.rows] == [DATABASE]
    assert not table.busy and not table.link_button.disabled


def test_linking_the_same_account_is_refused_in_the_message_area(client_tenant):
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    password = client_tenant.sandbox.demo_user(ADA)["password"]

    link_through_button(table, client_tenant, DATABASE, password=password)

    assert table.message.startswith("the secondary session is the primary account itself")
    assert [r["connection"] for r in table.rows] == [DATABASE]


def test_the_tenants_refusal_of_an_unlink_shows_in_the_message_area(client_tenant, admin):
    primary = ada_login(client_tenant)
    link_google_elsewhere(admin, primary.user_id)
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    # Meanwhile an administrator deletes Ada's user.
    token = ClientCredentials(client_tenant, client_tenant.m2m_client_id, client_tenant.m2m_client_secret)()
    deleted = client_tenant.http.delete(f"{client_tenant.management_audience}users/{primary.user_id}",
                                 headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204

    table.press_unlink(1)
    table.confirm()
    assert table.wait_idle(WAIT)

    assert table.message == "The user does not exist."
    assert [r["connection"] for r in table.rows] == [DATABASE, "google-oauth2"]
    assert not table.unlink_buttons[1].disabled


def test_an_identity_unlinked_elsewhere_disappears_after_the_next_unlink(client_tenant, admin):
    primary = ada_login(client_tenant)
    google = link_google_elsewhere(admin, primary.user_id)
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    admin.unlink(primary.user_id, "google-oauth2", google.split("|", 1)[1])  # in another tab

    table.press_unlink(1)
    table.confirm()
    assert table.wait_idle(WAIT)

    # Auth0 answers 200 with what is left: the table shows the tenant's truth.
    assert [r["connection"] for r in table.rows] == [DATABASE]


def test_refresh_redraws_after_a_link_made_outside_the_table(client_tenant, admin):
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    primary.profile["identities"] = admin.link(primary.user_id, provider="google-oauth2",
                                               user_id=google_id_of_ada(admin).split("|", 1)[1])
    table.refresh()
    assert [r["connection"] for r in table.rows] == [DATABASE, "google-oauth2"]


def test_no_widget_state_holds_a_token_secret_or_password(client_tenant):
    primary = ada_login(client_tenant)
    table = IdentityTable(primary)
    link_through_button(table, client_tenant, "google-oauth2")
    secondary = table.pending_login.result(0)
    table.press_unlink(1)  # leave a confirmation on screen too

    saved = repr(list(all_widget_states(table))) + repr(table)  # the state, and the plain text saved with it

    secrets = [primary.access_token, primary.id_token, secondary.access_token, secondary.id_token,
               client_tenant.sandbox.demo_user(ADA)["password"], client_tenant.m2m_client_secret]
    assert not [s for s in secrets if s and s in saved]
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}", saved)
    assert "google-oauth2" in saved  # the scan did see the table's contents


def test_login_prompt_shows_link_code_and_countdown_and_cancels(client_tenant):
    prompt = LoginPrompt.start(client_tenant, purpose="linking")
    pending = prompt.pending

    assert pending.verification_uri_complete in prompt.link.value
    assert pending.user_code in prompt.code.value
    assert prompt.countdown.value.startswith("The code expires in ")
    assert 0 < prompt.seconds_left <= pending.expires_in
    assert repr(prompt) == "Login prompt: run this cell to log in (device login, purpose linking)"
    assert pending.user_code not in repr(prompt)  # no code, no link: they change at every run

    prompt.cancel_button.click()

    with pytest.raises(LoginCancelled):
        prompt.result(WAIT)
    assert pending.status == "cancelled"
    assert prompt.cancel_button.disabled
    assert prompt.status.value == "The login was cancelled."


def test_login_prompt_counts_down_while_it_waits(client_tenant):
    prompt = LoginPrompt.start(client_tenant)
    first = prompt.countdown.value

    # The countdown is a thread of the prompt: it redraws by itself, with no cell running.
    changed = threading.Event()
    prompt.countdown.observe(lambda _change: changed.set(), names="value")
    assert changed.wait(WAIT), f"the countdown stayed at {first!r}"
    assert prompt.countdown.value != first and prompt.seconds_left < prompt.pending.expires_in
    prompt.press_cancel()
    with pytest.raises(LoginCancelled):
        prompt.result(WAIT)
    assert prompt.countdown.value == ""


def test_only_core_widgets_so_they_render_in_lab_vs_code_and_colab(client_tenant, admin):
    primary = ada_login(client_tenant)
    link_google_elsewhere(admin, primary.user_id)
    table = IdentityTable(ada_login(client_tenant))
    table.press_link("github")
    table.wait_for_login(WAIT)  # the login prompt is in the table now

    modules = {(state["_model_module"], state["_view_module"]) for state in all_widget_states(table)}

    assert modules <= {("@jupyter-widgets/controls", "@jupyter-widgets/controls"),
                       ("@jupyter-widgets/base", "@jupyter-widgets/base"),
                       ("@jupyter-widgets/controls", "@jupyter-widgets/base")}
    assert len(modules) > 1  # the scan did reach the children: layouts live in base
    table.prompt_area.children[0].press_cancel()
    assert table.wait_idle(WAIT)


def test_login_prompt_shows_who_logged_in(client_tenant):
    prompt = LoginPrompt.start(client_tenant)
    client_tenant.sandbox.approve_device(prompt.pending.user_code, connection="google-oauth2", email=ADA)

    session = prompt.result(WAIT)

    assert session.profile["email"] == ADA
    assert f"Logged in as {ADA}." in prompt.status.value
    assert prompt.countdown.value == ""


def test_cancelling_the_tables_login_links_nothing(client_tenant):
    table = IdentityTable(ada_login(client_tenant))
    table.press_link("google-oauth2")
    table.wait_for_login(WAIT)

    table.prompt_area.children[0].cancel_button.click()

    assert table.wait_idle(WAIT)
    assert table.message == "The login was cancelled: nothing was linked."
    assert [r["connection"] for r in table.rows] == [DATABASE]
    assert table.prompt_area.children == () and not table.link_button.disabled


def test_a_paste_login_finishes_with_the_address_pasted_into_the_prompt(client_tenant):
    prompt = LoginPrompt.start(client_tenant, method="paste", purpose="linking", connection="github")
    assert f"href='{html.escape(prompt.pending.authorize_url)}'" in prompt.link.value
    address = client_tenant.sandbox.approve_browser(prompt.pending.authorize_url, connection="github",
                                                    email=ADA)

    prompt.paste_box.value = address
    prompt.paste_button.click()

    session = prompt.result(WAIT)
    assert session.purpose == "linking" and session.user_id.startswith("github|")
    assert prompt.paste_box.value == ""  # the one-time code is not kept in the widget's state
    assert prompt.paste_button.disabled


def test_finish_with_an_empty_box_or_twice_does_not_end_the_paste_login(client_tenant):
    prompt = LoginPrompt.start(client_tenant, method="paste", purpose="linking", connection="github")

    prompt.paste_button.click()  # nothing pasted yet
    assert not prompt.pending.done()
    assert "Paste the address" in prompt.status.value

    prompt.paste_box.value = client_tenant.sandbox.approve_browser(prompt.pending.authorize_url,
                                                            connection="github", email=ADA)
    prompt.paste_button.click()
    prompt.paste_button.click()  # a double click

    assert prompt.result(WAIT).user_id.startswith("github|")


def test_an_unexpected_failure_is_one_line_in_the_message_area(client_tenant):
    table = IdentityTable(ada_login(client_tenant))
    table.session.profile["identities"] = [{"provider": "google-oauth2"}]  # a profile that makes no sense

    table.press_link("google-oauth2")
    pending = table.wait_for_login(WAIT)
    client_tenant.sandbox.approve_device(pending.user_code, connection="google-oauth2", email=ADA)
    assert table.wait_idle(WAIT)

    assert table.message.startswith("Something went wrong: KeyError")
    assert "Traceback" not in table.message and "\n" not in table.message
    assert not table.busy


def test_the_audit_table_shares_its_cells_layouts_and_styles() -> None:
    """Each widget is one more message to the page when the table is shown: a page of 25 rows was
    596 widgets, each cell with a style and a layout of its own. Shared, it is about half."""
    from test_audit_widget import big_candidates

    from linking_toolkit import AuditTable

    table = AuditTable(big_candidates(30))
    assert len(list(all_widget_states(table))) <= 320
    table.next_page()  # 5 rows: the 20 empty slots are hidden, their checkbox and "Why?" too
    assert [c.layout.visibility for c in table.checks[4:6]] == [None, "hidden"]
    assert [b.layout.visibility for b in table.why_buttons[4:6]] == [None, "hidden"]
    assert [cells[0].value for cells in table.cells[4:6]] == ["p29@example.org", ""]
