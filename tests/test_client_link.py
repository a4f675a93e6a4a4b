"""link() and unlink() with two real logins, and everything refused before any request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linking_toolkit import Identity, LinkRefused, ManagementClient, connect, identities_frame, link, unlink
from linking_toolkit.errors import NotFound, SessionExpired, UnsafeLink
from linking_toolkit.identities import linked_accounts
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


def requests_of(session) -> int:
    return session.management.stats.requests


@pytest.mark.parametrize(
    ("email", "primary_connection", "secondary_connection"),
    [
        ("ada@example.com", DATABASE, "google-oauth2"),
        ("grace@example.com", DATABASE, "github"),
        ("alan@example.com", "google-oauth2", "facebook"),
        ("katherine@example.com", DATABASE, "google-oauth2"),  # her first Google login makes the user
        ("margaret@example.com", "facebook", "github"),
    ],
)
def test_link_and_unlink_round_trip(sandbox: Sandbox, client_tenant, login_as, email: str,
                                    primary_connection: str, secondary_connection: str) -> None:
    primary = login_as(email, primary_connection)
    secondary = login_as(email, secondary_connection, purpose="linking")
    before = requests_of(primary)

    identities = link(primary, secondary)

    assert requests_of(primary) == before + 1  # the 201 body updated the profile: no re-fetch
    assert [i.full_id for i in identities] == [primary.user_id, secondary.user_id]
    assert primary.identities == identities
    linked = [f"{a['provider']}|{a['user_id']}" for a in linked_accounts(primary.profile)]
    assert linked == [secondary.user_id]
    frame = identities_frame(primary.profile)
    assert frame["is_primary"].tolist() == [True, False]
    assert frame["connection"].tolist() == [primary_connection, secondary_connection]
    with ManagementClient.from_client_credentials(client_tenant) as admin:
        assert [i["user_id"] for i in admin.get_user(primary.user_id)["identities"]] == \
            [i.user_id for i in identities]
        with pytest.raises(NotFound):
            admin.get_user(secondary.user_id)  # the secondary is no longer a user of its own

        remaining = unlink(primary, identities[1])

        assert [i.full_id for i in remaining] == [primary.user_id]
        assert primary.identities == remaining and requests_of(primary) == before + 2
        assert admin.get_user(secondary.user_id)["user_id"] == secondary.user_id  # standalone again


def test_unlink_accepts_a_row_of_linked_accounts(login_as) -> None:
    primary = login_as("ada@example.com")
    link(primary, login_as("ada@example.com", "google-oauth2", purpose="linking"))
    assert unlink(primary, linked_accounts(primary.profile)[0]) == primary.identities
    assert len(primary.identities) == 1


def assert_refused_before_any_request(primary, error: type[Exception], call) -> None:
    before, identities = requests_of(primary), list(primary.identities)
    with pytest.raises(error) as caught:
        call()
    assert requests_of(primary) == before
    assert primary.identities == identities
    assert str(caught.value)


def test_link_refuses_the_same_account(login_as) -> None:
    primary = login_as("ada@example.com")
    again = login_as("ada@example.com", purpose="linking")
    assert_refused_before_any_request(primary, UnsafeLink, lambda: link(primary, primary))
    assert_refused_before_any_request(primary, UnsafeLink, lambda: link(primary, again))


def test_link_refuses_a_login_session_as_the_secondary(login_as) -> None:
    primary = login_as("ada@example.com")
    secondary = login_as("ada@example.com", "google-oauth2", purpose="login")
    assert_refused_before_any_request(primary, UnsafeLink, lambda: link(primary, secondary))
    assert_refused_before_any_request(primary, UnsafeLink,
                                      lambda: link(login_as("ada@example.com", purpose="linking"), secondary))


def test_link_refuses_a_session_of_another_tenant(login_as) -> None:
    primary = login_as("ada@example.com")
    with Sandbox(seed=7) as other, connect(sandbox=other) as other_tenant:
        from linking_toolkit import start_login

        pending = start_login(other_tenant, method="paste", connection="google-oauth2", purpose="linking",
                              show=lambda text, url: None)
        assert pending.authorize_url
        foreign = pending.complete(other.approve_browser(pending.authorize_url, connection="google-oauth2",
                                                         email="ada@example.com"))
        assert_refused_before_any_request(primary, UnsafeLink, lambda: link(primary, foreign))


def test_unlink_refuses_the_main_identity(login_as) -> None:
    primary = login_as("ada@example.com")
    main = primary.identities[0]
    assert_refused_before_any_request(primary, LinkRefused, lambda: unlink(primary, main))
    as_dict = {"provider": main.provider, "user_id": main.user_id, "connection": main.connection}
    assert_refused_before_any_request(primary, LinkRefused, lambda: unlink(primary, as_dict))


def test_link_refuses_an_already_linked_account(login_as) -> None:
    primary = login_as("ada@example.com")
    secondary = login_as("ada@example.com", "google-oauth2", purpose="linking")
    link(primary, secondary)
    assert_refused_before_any_request(primary, LinkRefused, lambda: link(primary, secondary))


def test_an_expired_session_cannot_link_or_unlink(login_as) -> None:
    primary = login_as("ada@example.com")
    secondary = login_as("ada@example.com", "google-oauth2", purpose="linking")
    primary.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert_refused_before_any_request(primary, SessionExpired, lambda: link(primary, secondary))
    other = Identity("github", "1", "github", True)
    assert_refused_before_any_request(primary, SessionExpired, lambda: unlink(primary, other))


def test_unlink_of_an_identity_that_is_not_linked_changes_nothing(login_as) -> None:
    """Auth0 answers 200 with the identities unchanged; the odd id travels URL-encoded."""
    primary = login_as("ada@example.com")
    stranger = Identity("github", "no|such/id %ü", "github", True)
    assert unlink(primary, stranger) == primary.identities
    assert [i.full_id for i in primary.identities] == [primary.user_id]


def test_a_secondary_whose_id_token_expired_is_refused_before_any_request(login_as) -> None:
    primary = login_as("ada@example.com")
    secondary = login_as("ada@example.com", "google-oauth2", purpose="linking")
    secondary.claims["exp"] = int(datetime.now(UTC).timestamp()) - 1  # the tenant would refuse link_with
    assert_refused_before_any_request(primary, SessionExpired, lambda: link(primary, secondary))


def test_a_secondary_logged_in_too_long_ago_is_refused_and_a_fresh_one_links(login_as) -> None:
    """Auth0's guidance: both accounts authenticate at the time of the link. A linking session whose
    login (``auth_time``) is older than ``max_login_age`` is refused before any request, with why."""
    primary = login_as("ada@example.com")
    secondary = login_as("ada@example.com", "google-oauth2", purpose="linking")
    fresh_auth_time = secondary.claims["auth_time"]
    secondary.claims["auth_time"] = int(datetime.now(UTC).timestamp()) - 3600
    with pytest.raises(LinkRefused, match=r"logged in 60 minutes ago.*log in to it again"):
        link(primary, secondary)
    assert_refused_before_any_request(primary, LinkRefused, lambda: link(primary, secondary))
    secondary.claims["auth_time"] = fresh_auth_time
    with pytest.raises(LinkRefused, match="within 0 minutes"):
        link(primary, secondary, max_login_age=0)
    assert len(link(primary, secondary)) == 2  # a login made just now meets the default
