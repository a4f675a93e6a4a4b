"""The audit's rules on plain records: normalisation, candidates, risks, primaries, metadata merge."""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from linking_toolkit.audit import (
    RISKS,
    Journal,
    apply_plan,
    audit_export_file,
    audit_records,
    candidates_by_risk,
    connections_summary,
    link_candidates,
    merge_metadata,
    normalise_email,
    plan_links,
)
from linking_toolkit.audit.engine import Engine


def user(uid: str, email: str | None, *, verified: bool = True, logins: int = 1, blocked: bool = False,
         linked: list[dict[str, Any]] | None = None, created: str = "2025-01-01T00:00:00.000Z") -> dict:
    provider, _, short = uid.partition("|")
    connection = "Username-Password-Authentication" if provider == "auth0" else provider
    record: dict[str, Any] = {
        "user_id": uid, "email": email, "email_verified": verified, "name": email,
        "created_at": created, "last_login": "2025-06-01T00:00:00.000Z", "logins_count": logins,
        "identities": [{"connection": connection, "provider": provider, "user_id": short,
                        "isSocial": provider != "auth0"}, *(linked or [])],
    }
    if blocked:
        record["blocked"] = True
    return record


def test_normalisation_folds_case_and_canonical_forms_and_nothing_else() -> None:
    assert normalise_email("  Ada@Example.COM ") == "ada@example.com"
    assert normalise_email("Zo\u00eb@example.com") == normalise_email("ZOE\u0308@example.com")  # NFC
    assert normalise_email("\u00c9lodie@Caf\u00e9.fr") == "\u00e9lodie@caf\u00e9.fr"
    # no folding beyond lower case: two IDNA2008 domains, two full-width addresses stay apart
    assert normalise_email("ada@stra\u00dfe.de") != normalise_email("ada@strasse.de")
    assert normalise_email("\uff41\uff44\uff41@example.com") != "ada@example.com"
    # no provider-specific rules: dots and +tags are part of the address
    assert normalise_email("a.da@gmail.com") != normalise_email("ada@gmail.com")
    assert normalise_email("ada+x@gmail.com") != normalise_email("ada@gmail.com")
    assert normalise_email(None) is None and normalise_email("  ") is None


def test_a_column_is_normalised_as_one_email_is() -> None:
    emails = ["Ada@Example.COM", " ZOE\u0308@x.org", "ada@stra\u00dfe.de", "", None, "  "]
    result = audit_records([user(f"auth0|{i}", e) for i, e in enumerate(emails)])
    got = result.users["email"].astype(object).where(result.users["email"].notna(), None).tolist()
    assert got == [normalise_email(e) for e in emails]
    assert got[:3] == ["ada@example.com", "zo\u00eb@x.org", "ada@stra\u00dfe.de"]


def test_every_identity_appears_once_with_its_owner_and_proper_dtypes() -> None:
    linked = {"connection": "github", "provider": "github", "user_id": "77", "isSocial": True,
              "profileData": {"email": "Ada@Example.com", "email_verified": False, "name": "Ada L"}}
    result = audit_records([user("auth0|1", "ada@example.com", linked=[linked]),
                            user("google-oauth2|2", "grace@example.com")])
    ids = result.identities
    assert list(zip(ids["owner"], ids["provider"].astype(str), ids["user_id"], ids["is_primary"],
                    strict=True)) == [
        ("auth0|1", "auth0", "1", True), ("auth0|1", "github", "77", False),
        ("google-oauth2|2", "google-oauth2", "2", True)]
    # a linked identity shows its own profile; the main one its owner's
    assert ids.loc[1, "email_raw"] == "Ada@Example.com" and ids.loc[1, "email"] == "ada@example.com"
    assert not ids.loc[1, "email_verified"] and ids.loc[0, "email_verified"]
    assert str(ids["connection"].dtype) == "category" and str(ids["email"].dtype) == "string"
    assert str(ids["email_verified"].dtype) == "boolean"
    assert str(result.users["created_at"].dtype).startswith("datetime64")
    assert result.users["identities"].tolist() == [2, 1]


def test_candidates_group_equal_normalised_emails_and_name_the_risk() -> None:
    result = audit_records([
        user("auth0|a1", "ann@example.com"),
        user("google-oauth2|a2", "ANN@example.com"),
        user("auth0|b1", "bob@example.com", verified=False),
        user("github|b2", "bob@example.com"),
        user("facebook|c1", "cy@example.com", blocked=True),
        user("github|c2", "cy@example.com"),
        user("github|d1", "di@example.com"),
        user("github|d2", "di@example.com"),
        user("auth0|e1", "eve@example.com", linked=[{"provider": "github", "user_id": "e9"}]),
        user("facebook|e2", "eve@example.com", linked=[{"provider": "google-oauth2", "user_id": "e8"}]),
        user("auth0|f1", "f.red@gmail.com"),
        user("google-oauth2|f2", "fred@gmail.com"),
        user("auth0|g1", None),
        user("github|g2", None),
    ])
    every = link_candidates(result)
    # Gmail's dots are the alias tier's, never the exact tier's, and never safe.
    assert every[every["tier"] == "alias"][["email", "user_ids", "risk"]].values.tolist() == [
        ["f.red@gmail.com", ["auth0|f1", "google-oauth2|f2"], "review: same mailbox by its provider's rules"]]
    found = link_candidates(result, tiers="exact").set_index("email")
    assert set(found.index) == {"ann@example.com", "bob@example.com", "cy@example.com",
                                "di@example.com", "eve@example.com"}
    assert found.equals(every[every["tier"] == "exact"].set_index("email"))
    assert found.loc["ann@example.com", "risk"] == "safe"
    assert found.loc["bob@example.com", "risk"] == "unverified email"
    assert found.loc["bob@example.com", "unverified"] == ["auth0|b1"]
    assert found.loc["cy@example.com", "risk"] == "blocked user"
    assert found.loc["di@example.com", "risk"] == "same connection twice"
    assert found.loc["eve@example.com", "risk"] == "several users hold links"
    assert list(found["risk"].cat.categories) == RISKS
    assert found.loc["ann@example.com", "providers"] == "auth0, google-oauth2"


def test_the_proposed_primary_follows_the_documented_rule_and_can_be_overridden() -> None:
    result = audit_records([
        # a verified database account beats a more used social one
        user("google-oauth2|1", "a@x.org", logins=50), user("auth0|1", "a@x.org", logins=2),
        # an unverified account is never proposed
        user("auth0|2", "b@x.org", verified=False, logins=90), user("github|2", "b@x.org"),
        # a user already holding links stays primary
        user("auth0|3", "c@x.org"),
        user("facebook|3", "c@x.org", linked=[{"provider": "github", "user_id": "33"}]),
    ])
    primaries = link_candidates(result).set_index("email")["primary_id"]
    assert primaries.to_dict() == {"a@x.org": "auth0|1", "b@x.org": "github|2", "c@x.org": "facebook|3"}
    most_used = link_candidates(result, rank=[("logins_count", False), ("user_id", True)])
    assert most_used.set_index("email").loc["a@x.org", "primary_id"] == "google-oauth2|1"


def test_a_plan_has_one_row_per_secondary_naming_its_main_identity() -> None:
    result = audit_records([user("auth0|1", "a@x.org"), user("google-oauth2|1", "a@x.org"),
                            user("github|1", "a@x.org")])
    candidates = link_candidates(result)
    candidates.loc[0, "primary_id"] = "github|1"  # the analyst chooses another primary
    plan = plan_links(candidates, result)
    assert plan[["primary_id", "secondary_id", "provider", "user_id"]].values.tolist() == [
        ["github|1", "auth0|1", "auth0", "1"], ["github|1", "google-oauth2|1", "google-oauth2", "1"]]
    assert not plan["allow_unsafe"].any()


@pytest.mark.parametrize(("primary", "secondary", "merged", "patch", "conflicts"), [
    ({"theme": "dark"}, {"theme": "light", "locale": "fr"},
     {"theme": "dark", "locale": "fr"}, {"locale": "fr"}, ["theme"]),
    ({"prefs": {"a": 1}}, {"prefs": {"a": 2, "b": 3}},
     {"prefs": {"a": 1, "b": 3}}, {"prefs": {"a": 1, "b": 3}}, ["prefs.a"]),
    (None, {"x": {"deep": {"k": 1}}}, {"x": {"deep": {"k": 1}}}, {"x": {"deep": {"k": 1}}}, []),
    ({"x": 1}, None, {"x": 1}, {}, []),
    ({"x": {"a": 1}}, {"x": "flat"}, {"x": {"a": 1}}, {}, ["x"]),
])
def test_metadata_merge_primary_wins_secondary_adds_dicts_one_level(
    primary: dict | None, secondary: dict | None, merged: dict, patch: dict, conflicts: list[str],
) -> None:
    assert merge_metadata(primary, secondary) == (merged, patch, conflicts)


def test_summaries_count_identities_per_connection_and_users_per_identity_count() -> None:
    result = audit_records([user("auth0|1", "a@x.org", linked=[{"connection": "github", "provider": "github",
                                                               "user_id": "9"}]),
                            user("auth0|2", "b@x.org")])
    table = result.identities_per_connection()
    assert table.loc["Username-Password-Authentication", "main"] == 2
    assert table.loc["github", "linked"] == 1
    assert result.users_by_identity_count()["users"].tolist() == [1, 1, 0]
    assert isinstance(connections_summary(result).to_html(), str)


def test_no_candidates_is_an_empty_frame_with_the_columns() -> None:
    found = link_candidates(audit_records([user("auth0|1", "a@x.org")]))
    assert found.empty and "risk" in found and isinstance(found, pd.DataFrame)
    assert plan_links(found).empty
    styled = candidates_by_risk(found)  # all zeros: no division warning, a plain-text form that repeats
    assert "<table" in styled.to_html() and repr(styled).startswith("Link candidates by risk")


IDENTITY_COLUMNS = {
    "owner": "string", "connection": "category", "provider": "category", "user_id": "string",
    "is_primary": "bool", "is_social": "bool", "email": "string", "email_raw": "string",
    "email_verified": "boolean", "name": "string", "created_at": "datetime64[ms, UTC]",
    "last_login": "datetime64[ms, UTC]", "logins_count": "Int64",
}
USER_COLUMNS = {
    "user_id": "string", "connection": "category", "provider": "category", "email": "string",
    "email_raw": "string", "email_verified": "boolean", "name": "string",
    "created_at": "datetime64[ms, UTC]", "last_login": "datetime64[ms, UTC]", "logins_count": "Int64",
    "identities": "int64", "blocked": "bool", "given_name": "string", "family_name": "string",
    "nickname": "string", "username": "string", "phone": "string",
}


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {column: str(dtype) for column, dtype in frame.dtypes.items()}


@pytest.mark.parametrize("records", [[], [user("auth0|1", " Ada@Example.com ")]], ids=["empty", "one"])
def test_the_frames_have_the_documented_columns_and_dtypes_even_when_empty(records: list[dict]) -> None:
    result = audit_records(records)
    assert dtypes(result.identities) == IDENTITY_COLUMNS
    assert dtypes(result.users) == USER_COLUMNS
    if records:  # email normalised, and the raw one as the tenant holds it
        assert result.identities.loc[0, ["email", "email_raw"]].tolist() == ["ada@example.com",
                                                                            " Ada@Example.com "]
    found = link_candidates(result)
    assert found.empty and found["user_ids"].dtype == object and found["unverified"].dtype == object


def test_a_record_without_logins_counts_zero_and_missing_dates_are_nat() -> None:
    record = user("auth0|1", "a@x.org")
    del record["logins_count"], record["last_login"]
    result = audit_records([record])
    assert result.users.loc[0, "logins_count"] == 0
    assert pd.isna(result.users.loc[0, "last_login"])


def test_a_tenant_with_more_connections_than_a_bit_mask_holds_names_each_group_right() -> None:
    # 70 enterprise connections: a B2B tenant can have one per customer
    records = []
    for k in range(70):
        records.append({"user_id": f"samlp|c{k}|u", "email": f"p{k}@x.org", "email_verified": True,
                        "identities": [{"connection": f"corp-{k:02d}", "provider": "samlp",
                                        "user_id": f"c{k}|u"}]})
        records.append({"user_id": f"samlp|c{k}|v", "email": f"p{k}@x.org", "email_verified": True,
                        "identities": [{"connection": f"corp-{(k + 1) % 70:02d}", "provider": "samlp",
                                        "user_id": f"c{k}|v"}]})
    records.append({"user_id": "samlp|twice|a", "email": "twice@x.org", "email_verified": True,
                    "identities": [{"connection": "corp-69", "provider": "samlp", "user_id": "twice|a"}]})
    records.append({"user_id": "samlp|twice|b", "email": "twice@x.org", "email_verified": True,
                    "identities": [{"connection": "corp-69", "provider": "samlp", "user_id": "twice|b"}]})
    found = link_candidates(audit_records(records)).set_index("email")
    assert found.loc["p68@x.org", "connections"] == "corp-68, corp-69"
    assert found.loc["p69@x.org", "connections"] == "corp-00, corp-69"
    assert found.loc["p68@x.org", "risk"] == "safe"
    assert found.loc["twice@x.org", "connections"] == "corp-69"
    assert found.loc["twice@x.org", "risk"] == "same connection twice"
    assert (found["risk"] == "safe").sum() == 70


def test_users_without_identities_count_as_one_connection_between_them() -> None:
    # A record without identities has no connection: two such users share "none", one such user
    # beside a database user does not.
    records = [
        {"user_id": "auth0|n1", "email": "none@x.org", "email_verified": True, "identities": []},
        {"user_id": "auth0|n2", "email": "none@x.org", "email_verified": True, "identities": []},
        {"user_id": "auth0|m1", "email": "mixed@x.org", "email_verified": True, "identities": []},
        {"user_id": "auth0|m2", "email": "mixed@x.org", "email_verified": True,
         "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0",
                         "user_id": "m2"}]},
    ]
    found = link_candidates(audit_records(records)).set_index("email")
    assert found.loc["none@x.org", "risk"] == "same connection twice"
    assert found.loc["mixed@x.org", "risk"] == "safe"


def test_the_journal_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "links.jsonl")
    journal.write({"event": "started", "primary_id": "a", "secondary_id": "b", "provider": "auth0",
                   "user_id": "b", "secondary_profile": {"email": "someone@example.org"}})
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600


def record_line(event: str, secondary: str = "auth0|2") -> str:
    return json.dumps({"event": event, "primary_id": "auth0|1", "secondary_id": secondary,
                       "provider": "auth0", "user_id": secondary.partition("|")[2]})


def test_a_line_cut_short_by_a_kill_is_left_out_and_dropped_at_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "links.jsonl"
    path.write_text(record_line("done") + "\n" + record_line("started", "auth0|3")[:30])
    journal = Journal(path)
    assert [r["event"] for r in journal.read()] == ["done"]
    journal.write(json.loads(record_line("started", "auth0|4")))
    assert [r["secondary_id"] for r in journal.read()] == ["auth0|2", "auth0|4"]
    assert path.read_text().count("\n") == 2


@pytest.mark.parametrize("line", ["{not json", "[1, 2]", '{"event": "done"}'],
                         ids=["not-json", "not-an-object", "no-ids"])
def test_a_corrupt_journal_line_is_a_clear_error_naming_it(tmp_path: Path, line: str) -> None:
    path = tmp_path / "links.jsonl"
    path.write_text(record_line("done") + "\n" + line + "\n" + record_line("done", "auth0|3") + "\n")
    with pytest.raises(ValueError, match=r"links\.jsonl, line 2"):
        Journal(path).read()


def test_a_plan_with_a_missing_or_empty_column_is_refused_before_any_request() -> None:
    result = audit_records([user("auth0|1", "a@x.org"), user("google-oauth2|1", "a@x.org")])
    plan = plan_links(link_candidates(result), result)
    # no client is needed: the plan is checked before anything is sent
    with pytest.raises(ValueError, match="no secondary_id column"):
        apply_plan(None, plan.drop(columns="secondary_id"))  # type: ignore[arg-type]
    blank = plan.copy()
    blank.loc[0, "user_id"] = ""
    with pytest.raises(ValueError, match="user_id is empty on row"):
        apply_plan(None, blank)  # type: ignore[arg-type]
    itself = plan.copy()
    itself.loc[0, "secondary_id"] = itself.loc[0, "primary_id"]
    with pytest.raises(ValueError, match="link a user to itself"):
        apply_plan(None, itself)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no directory"):
        apply_plan(None, plan, dry_run=False, journal=Path("/nonexistent/dir/j.jsonl"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a journal"):
        apply_plan(None, plan, dry_run=False)  # type: ignore[arg-type]
    as_text = plan.astype({"allow_unsafe": str})  # "False" is truthy: never taken as an allowance
    with pytest.raises(ValueError, match="allow_unsafe must hold True or False"):
        apply_plan(None, as_text)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a link plan is a DataFrame"):
        apply_plan(None, plan.to_dict())  # type: ignore[arg-type]


def export_lines(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_an_export_larger_than_the_engines_memory_is_read_by_spilling(tmp_path: Path) -> None:
    """The file is never read into memory whole: with the engine's memory capped at half the data,
    it streams the file and spills, and the audit is the same as an unbounded one."""
    records = [user(f"auth0|{i:06d}", f"person{i % 40_000}@example.org" + "x" * 60, logins=i % 7)
               for i in range(200_000)]
    text = export_lines(records)
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress(text, compresslevel=1))
    limit_mb = 44
    assert len(text) > 2 * limit_mb * 1_000_000
    with Engine(memory_limit=f"{limit_mb}MB", threads=1) as engine:
        engine.read_ndjson(path)
        users, identities = engine.frames()
    unbounded = audit_export_file(path)
    assert len(users) == 200_000 and len(identities) == 200_000
    assert users.equals(unbounded.users) and identities.equals(unbounded.identities)


def test_an_export_file_gzipped_or_not_gives_the_same_audit(tmp_path: Path) -> None:
    records = [user("auth0|1", "a@x.org"), user("github|2", "A@x.org", verified=False)]
    text = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    (tmp_path / "plain.json").write_bytes(text.rstrip(b"\n"))  # no newline at the end either
    (tmp_path / "export.json.gz").write_bytes(gzip.compress(text))
    ticks: list[int] = []
    plain = audit_export_file(tmp_path / "plain.json", progress=ticks.append)
    packed = audit_export_file(tmp_path / "export.json.gz")
    assert plain.users.equals(packed.users) and plain.identities.equals(packed.identities)
    assert ticks == [2] and link_candidates(packed)["risk"].tolist() == ["unverified email"]


def test_an_edited_primary_must_be_one_of_its_group() -> None:
    result = audit_records([user("auth0|1", "a@x.org"), user("google-oauth2|1", "a@x.org")])
    candidates = link_candidates(result)
    candidates.loc[0, "primary_id"] = "github|somebody-else"
    with pytest.raises(ValueError, match=r"not one of the group of a@x\.org"):
        plan_links(candidates, result)
