"""The pure functions on profiles: the primary identity, the linked ones, the table."""

from __future__ import annotations

import pandas as pd
import pytest

from linking_toolkit import Identity, connect, identities_frame, login
from linking_toolkit.identities import FRAME_COLUMNS, is_primary, linked_accounts, primary_identity
from linking_toolkit.sandbox import Sandbox

COLUMNS = ["connection", "provider", "user_id", "is_social", "is_primary", "name", "email", "email_verified"]


def profile_with_link() -> dict:
    # The primary is deliberately not first: the rule is provider|user_id == profile user_id.
    return {
        "user_id": "auth0|abc",
        "email": "ada@example.com",
        "email_verified": True,
        "name": "Ada",
        "identities": [
            {"provider": "google-oauth2", "user_id": "123", "connection": "google-oauth2", "isSocial": True,
             "access_token": "idp-secret", "profileData": {"email": "ada@gmail.example", "name": "Ada L",
                                                           "email_verified": False}},
            {"provider": "auth0", "user_id": "abc", "connection": "Username-Password-Authentication",
             "isSocial": False},
        ],
    }


def test_linked_accounts_is_every_identity_but_the_primary_without_idp_tokens() -> None:
    linked = linked_accounts(profile_with_link())
    assert [i["user_id"] for i in linked] == ["123"]
    assert "access_token" not in linked[0]
    assert linked_accounts({"user_id": "auth0|x", "identities": []}) == []


def test_identity_from_api_and_full_id() -> None:
    identity = Identity.from_api({"provider": "facebook", "user_id": 1234, "connection": "facebook",
                                  "isSocial": True})
    assert identity.user_id == "1234"
    assert identity.full_id == "facebook|1234"
    assert identity.profile_data is None
    assert is_primary({"user_id": "facebook|1234"}, identity)
    expected = Identity("auth0", "abc", "Username-Password-Authentication", False)
    assert primary_identity(profile_with_link()) == expected


def test_identities_frame_columns_dtypes_and_rows() -> None:
    frame = identities_frame(profile_with_link())
    assert list(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == FRAME_COLUMNS
    primary = frame[frame["is_primary"]].iloc[0]
    assert primary["email"] == "ada@example.com" and primary["name"] == "Ada"
    linked = frame[~frame["is_primary"]].iloc[0]
    assert linked["email"] == "ada@gmail.example" and not linked["email_verified"]
    assert "access_token" not in frame.to_string()


def test_identities_frame_of_an_empty_profile_has_the_same_shape() -> None:
    frame = identities_frame({"user_id": "auth0|x"})
    assert frame.empty
    assert list(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == FRAME_COLUMNS


def test_frame_of_a_sandbox_profile_with_missing_fields_uses_na(sandbox: Sandbox) -> None:
    tenant = connect(sandbox=sandbox)
    user = sandbox.demo_users[0]
    session = login(tenant, method="password", email=user["email"], password=user["password"])
    frame = identities_frame(session.profile)
    assert frame["user_id"].tolist() == [session.user_id.split("|", 1)[1]]
    assert frame["is_primary"].tolist() == [True]
    # One identity, an empty profile or a linked one: the same columns in the same dtypes.
    assert list(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == FRAME_COLUMNS
    bare = identities_frame({"user_id": "a|1", "identities": [{"provider": "b", "user_id": "2"}]})
    assert {c: str(t) for c, t in bare.dtypes.items()} == FRAME_COLUMNS
    row = bare.iloc[0]
    assert row["email"] is pd.NA and row["email_verified"] is pd.NA
    tenant.close()


@pytest.mark.parametrize("profile", [{}, {"identities": None}])
def test_linked_accounts_of_profiles_without_identities(profile: dict) -> None:
    assert linked_accounts(profile) == []
