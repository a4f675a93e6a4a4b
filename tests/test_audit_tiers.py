"""The candidate tiers beyond one email: each rule finds its kind of duplicate and nothing else, and
a guess is never safe, never applied unless a person allows that row."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from test_audit_rules import user
from test_audit_tenant import known_groups

from linking_toolkit import ManagementClient, connect
from linking_toolkit.audit import (
    RISKS,
    TIERS,
    apply_plan,
    audit_records,
    audit_tenant,
    link_candidates,
    plan_links,
    plot_evidence,
    undo,
)
from linking_toolkit.errors import UnsafeLink
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import SyntheticTenant

REVIEW_ALIAS = "review: same mailbox by its provider's rules"


def groups(found: Any, tier: str) -> list[list[str]]:
    return sorted(sorted(ids) for ids in found[found["tier"] == tier]["user_ids"])


def test_the_alias_tier_applies_each_provider_rule_and_no_other() -> None:
    result = audit_records([
        user("auth0|g1", "a.da.l@gmail.com"), user("google-oauth2|g2", "adal+shop@googlemail.com"),
        user("github|g3", "A.D.A.L@Gmail.com "),
        user("auth0|o1", "bo+news@outlook.com"), user("github|o2", "bo@outlook.com"),
        # outlook keeps its dots: b.o and bo are two mailboxes there
        user("auth0|o3", "b.o@outlook.com"),
        # no rule at a domain that publishes none, and Yahoo's "-" names another mailbox
        user("auth0|x1", "c.y@example.com"), user("github|x2", "cy@example.com"),
        user("auth0|x3", "cy+tag@example.com"),
        user("auth0|y1", "dee-shop@yahoo.com"), user("github|y2", "dee@yahoo.com"),
    ])
    found = link_candidates(result, tiers=["alias"])
    assert groups(found, "alias") == [["auth0|g1", "github|g3", "google-oauth2|g2"],
                                      ["auth0|o1", "github|o2"]]
    assert set(found["tier"]) == {"alias"} and (found["risk"] == REVIEW_ALIAS).all()
    gmail = found.set_index("key").loc["adal@gmail.com"]
    assert gmail["evidence"] == "same Gmail mailbox adal@gmail.com once dots and +tag are ignored"
    assert gmail["match_probability"] == 1.0
    assert found.set_index("key").loc["bo@outlook.com", "evidence"] == (
        "same mailbox bo@outlook.com once the +tag is ignored")


def test_the_alias_tier_leaves_an_exact_group_to_the_exact_tier() -> None:
    result = audit_records([user("auth0|1", "same@gmail.com"), user("github|2", "Same@gmail.com")])
    found = link_candidates(result)
    assert found["tier"].tolist() == ["exact"] and found["risk"].tolist() == ["safe"]


def test_an_attacker_holding_a_gmail_alias_of_a_verified_victim_is_never_safe() -> None:
    result = audit_records([
        user("google-oauth2|victim", "victim.name@gmail.com"),
        user("auth0|attacker", "victimname+x@gmail.com", verified=False),
    ])
    (group,) = link_candidates(result).itertuples()
    assert group.tier == "alias" and group.risk == REVIEW_ALIAS
    assert group.reasons == f"{REVIEW_ALIAS}, unverified email" and group.unverified == ["auth0|attacker"]
    assert group.primary_id == "google-oauth2|victim"  # an unverified account is never the survivor
    plan = plan_links(link_candidates(result))
    assert plan[["tier", "risk"]].astype(str).values.tolist() == [["alias", REVIEW_ALIAS]]


def phone_user(uid: str, email: str, given: str | None, phone: str | None = None, **extra: Any) -> dict:
    return {**user(uid, email), "given_name": given, "phone_number": phone, **extra}


def test_the_phone_tier_reads_every_format_in_the_default_region_and_keeps_families_apart() -> None:
    records = [
        phone_user("auth0|p1", "priya@work.example", "Priya", "07911 123456"),
        phone_user("github|p2", "pk@home.example", "Priya", "+44 7911 123456"),
        phone_user("google-oauth2|p3", "priya.k@mail.example", "priya",
                   user_metadata={"contact": {"phone": "+447911123456"}}),
        # the trunk zero written inside the international form, as some do: the same number
        phone_user("facebook|p4", "priya.k@fb.example", "Priya", "+44 (0)7911 123456"),
        phone_user("github|p5", "pk2@gh.example", "Priya", "+44 07911 123456"),
        # a family on one phone: two given names, so no group
        phone_user("auth0|f1", "mum@family.example", "Ann", "+44 7911 654321"),
        phone_user("auth0|f2", "dad@family.example", "Dan", "07911 654321"),
        # one number with no name to compare: not grouped on the phone alone
        phone_user("auth0|n1", "n1@x.example", None, "+44 7911 111111"),
        phone_user("auth0|n2", "n2@x.example", None, "+44 7911 111111"),
    ]
    result = audit_records(records, phone_paths=["user_metadata.contact.phone"])
    found = link_candidates(result, tiers="phone", default_region="GB")
    assert groups(found, "phone") == [
        ["auth0|p1", "facebook|p4", "github|p2", "github|p5", "google-oauth2|p3"]]
    (group,) = found.itertuples()
    assert group.key == "+447911123456" and group.risk == "review: same phone"
    assert group.evidence == "same phone +44 7911 123456 and given name priya"
    # without a region the national form is not a number: only the international ones match
    assert groups(link_candidates(result, tiers="phone"), "phone") == [
        ["facebook|p4", "github|p2", "github|p5", "google-oauth2|p3"]]
    # without the metadata path, that account has no phone
    plain = audit_records(records)
    assert groups(link_candidates(plain, tiers="phone", default_region="GB"), "phone") == [
        ["auth0|p1", "facebook|p4", "github|p2", "github|p5"]]


@pytest.mark.parametrize("paths, message", [
    ("user_metadata.phone", "phone_paths must be a list of paths, not the string 'user_metadata.phone'"),
    (["app_metadata.phone"], "a phone path is user_metadata.<key>[.<key>...] (letters, digits, _), "
                             "not 'app_metadata.phone'"),
    (["user_metadata.phone'; drop"], "a phone path is user_metadata.<key>[.<key>...] (letters, digits, _), "
                                     "not \"user_metadata.phone'; drop\""),
])
def test_a_bad_phone_path_is_one_line_error(paths: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        audit_records([], phone_paths=paths)
    assert str(caught.value) == message


def test_tiers_and_thresholds_are_checked_before_any_work() -> None:
    result = audit_records([user("auth0|1", "a@x.org")])
    with pytest.raises(ValueError, match=r"^tiers are some of exact, alias, phone, probable \(or \"all\"\), "
                                         r"not \['fuzzy'\]$"):
        link_candidates(result, tiers=["fuzzy"])
    with pytest.raises(ValueError, match=r"^threshold is a match probability between 0 and 1, not 1.5$"):
        link_candidates(result, tiers="all", threshold=1.5)
    with pytest.raises(ValueError, match=r"^default_region is a region code phonenumbers knows "
                                         r"\(e.g. 'GB', 'US'\), not 'England'$"):
        link_candidates(result, default_region="England")
    with pytest.raises(ValueError, match=r"^the probable tier trains its model on the tenant itself and "
                                         r"needs at least 1000 users; this audit has 1$"):
        link_candidates(result, tiers="all")
    assert TIERS == ["exact", "alias", "phone", "probable"]
    assert RISKS[-3:] == [REVIEW_ALIAS, "review: same phone", "review: probable match"]


def test_the_evidence_chart_of_a_rule_group_and_of_a_probable_group() -> None:
    result = audit_records([user("auth0|g1", "a.b@gmail.com"), user("github|g2", "ab@gmail.com")])
    group = link_candidates(result).iloc[0]
    fig = plot_evidence(group)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["alias"]
    assert "same Gmail mailbox ab@gmail.com" in ax.get_title()
    probable = {"tier": "probable", "users": 2, "match_probability": 0.995,
                "evidence": "given name 0.97, family name 1.00, same domain",
                "weights": {"prior": -9.5, "given name": 4.1, "family name": 6.0, "domain": 1.2}}
    (ax,) = plot_evidence(probable).axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["prior", "given name", "family name", "domain",
                                                            "total"]
    assert [t.get_text() for t in ax.texts] == ["-9.5", "+4.1", "+6.0", "+1.2", "+1.8"]
    assert "match probability 0.995" in ax.get_title()


@pytest.fixture
def alias_pair(admin: ManagementClient) -> tuple[str, str]:
    """Two database users on one Gmail mailbox, both verified: the same person, by Google's rules."""
    ids = []
    for email in ("grace.h@gmail.com", "graceh+shop@gmail.com"):
        created = admin.create_user({"connection": "Username-Password-Authentication", "email": email,
                                     "password": "Correct-Horse-42!", "email_verified": True})
        ids.append(created["user_id"])
    return ids[0], ids[1]


def test_an_alias_group_is_refused_unless_allowed_then_links_and_undoes_like_any_other(
        admin: ManagementClient, alias_pair: tuple[str, str], tmp_path: Path) -> None:
    result = audit_tenant(admin, progress=False)
    found = link_candidates(result)
    alias = found[found["tier"] == "alias"]
    assert groups(alias, "alias") == [sorted(alias_pair)]
    plan = plan_links(alias, result)
    journal = tmp_path / "links.jsonl"
    with pytest.raises(UnsafeLink, match="1 plan row"):
        apply_plan(admin, plan, dry_run=False, journal=journal)
    assert not journal.exists()  # refused before any request or record
    # edited by hand to "safe", an alias row is still refused
    forged = plan.copy()
    forged["risk"] = "safe"
    with pytest.raises(UnsafeLink, match="tier alias is never safe"):
        apply_plan(admin, forged, dry_run=False, journal=journal)

    secondary = plan.loc[0, "secondary_id"]
    done = apply_plan(admin, plan, dry_run=False, journal=journal, allow_unsafe=[secondary])
    assert done["status"].tolist() == ["linked"]
    primary = admin.get_user(plan.loc[0, "primary_id"])
    assert len(primary["identities"]) == 2
    started = [json.loads(line) for line in journal.read_text().splitlines()
               if json.loads(line)["event"] == "started"]
    assert [(s["tier"], s["evidence"]) for s in started] == [
        ("alias", "same Gmail mailbox graceh@gmail.com once dots and +tag are ignored")]

    assert undo(admin, journal)["status"].tolist() == ["undone"]
    assert len(admin.get_user(plan.loc[0, "primary_id"])["identities"]) == 1
    assert admin.get_user(secondary)["email"] in ("grace.h@gmail.com", "graceh+shop@gmail.com")


@pytest.fixture(scope="module")
def synthetic() -> Any:
    """A 5 000-user synthetic tenant with every kind of duplicate, audited, and its ground truth."""
    with Sandbox(seed=4, users=5000) as sandbox:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        safe, unsafe = known_groups(sandbox)  # the synthetic people's and the demo people's
        with connect(sandbox=sandbox, quiet=True) as tenant, \
                ManagementClient.from_client_credentials(tenant) as admin:
            result = audit_tenant(admin, progress=False, phone_paths=["user_metadata.phone"])
    found = link_candidates(result, tiers="all", default_region=truth.phone_region)
    return result, truth, found, sorted(safe + unsafe)


def test_each_rule_tier_finds_exactly_its_kind_of_duplicate_on_a_synthetic_tenant(synthetic: Any) -> None:
    result, truth, found, exact = synthetic
    assert result.source == "export"
    assert groups(found, "exact") == exact
    assert groups(found, "alias") == sorted(sorted(g) for g in truth.alias_groups)
    assert groups(found, "phone") == sorted(sorted(g) for g in truth.phone_groups)
    assert (found[found["tier"] != "exact"]["risk"].astype(str).str.startswith("review: ")).all()
    # no hard negative (a common name at one domain, a family's phone) in a rule tier's group
    negatives = {tuple(sorted(p[:2])) for p in truth.negative_pairs}
    assert len(negatives) > 10
    for tier in ("exact", "alias", "phone"):
        assert not pairs_of(found, tier) & negatives, tier


def test_the_probable_tier_finds_its_kind_at_the_documented_precision(synthetic: Any) -> None:
    _result, truth, found, _exact = synthetic
    probable = found[found["tier"] == "probable"]
    assert (probable["risk"] == "review: probable match").all()
    assert (probable["match_probability"] >= 0.99).all() and probable["evidence"].str.len().gt(0).all()
    predicted = {tuple(sorted(p)) for ids in probable["user_ids"] for p in itertools.combinations(ids, 2)}
    same_person = set().union(*truth.person_pairs().values())
    own = truth.person_pairs()["probable"]
    assert len(predicted & same_person) / len(predicted) >= 0.95
    assert len(predicted & own) / len(own) >= 0.80
    # a probable pair is never one a rule tier already explains
    ruled = set().union(*(pairs_of(found, tier) for tier in ("exact", "alias", "phone")))
    assert not predicted & ruled
    weights = probable.iloc[0]["weights"]
    assert set(weights) == {"prior", "given name", "family name", "email local part", "domain", "phone",
                            "username"}
    assert weights["prior"] < 0 < sum(weights.values())


def pairs_of(found: Any, tier: str) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for ids in found[found["tier"] == tier]["user_ids"]
            for p in itertools.combinations(ids, 2)}


def test_a_user_in_groups_of_two_tiers_is_planned_once_by_the_stronger() -> None:
    result = audit_records([
        user("auth0|1", "a.da@gmail.com", logins=9), user("github|2", "a.da@gmail.com"),
        user("google-oauth2|3", "ada+x@gmail.com"),
    ])
    found = link_candidates(result)
    assert found[["tier", "users"]].astype(str).values.tolist() == [["exact", "2"], ["alias", "3"]]
    plan = plan_links(found, result)
    assert plan[["secondary_id", "tier"]].astype(str).values.tolist() == [
        ["github|2", "exact"], ["google-oauth2|3", "alias"]]
