"""Link candidates: separate users whose normalised emails are equal, the proposed primary of each
group, and why a group is not safe to link.

The grouping is SQL on the audit's engine (:func:`~.groups.candidates_sql`). Grouping uses each
user's own (root) email: an export does not carry the profiles of identities already linked, and
those are already one user anyway. The same rules are applied once more, on the live profiles, just
before a link (``risk_now``): a plan may be old or made by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
from tqdm.auto import tqdm

from .clusters import cluster_pairs
from .engine import Engine, candidates_frame, system_allocator
from .frames import Audit, normalise_email
from .groups import DATABASE_PROVIDER, DEFAULT_PRIMARY_RANK, RISKS, TIERS, candidates_sql, exact_members_sql
from .probable import DEFAULT_THRESHOLD, MIN_USERS, probable_pairs
from .rules import alias_members_sql, phone_members_sql, register_phones
from .spark_audit import SparkAudit
from .spark_candidates import spark_candidates
from .spark_engine import is_spark_frame

# The tiers link_candidates runs unless asked: the rules (the probable tier trains a model).
RULE_TIERS = ("exact", "alias", "phone")

__all__ = [
    "DATABASE_PROVIDER",
    "DEFAULT_PRIMARY_RANK",
    "RISKS",
    "RULE_TIERS",
    "TIERS",
    "check_candidate_options",
    "link_candidates",
    "risk_now",
]


def link_candidates(result: Audit | SparkAudit, *, rank: Sequence[tuple[str, bool]] = DEFAULT_PRIMARY_RANK,
                    tiers: Sequence[str] | str = RULE_TIERS, default_region: str | None = None,
                    threshold: float = DEFAULT_THRESHOLD, progress: bool = False) -> pd.DataFrame:
    """Groups of separate users who may be one person: one row per group, by tier.

    ``tiers`` (strongest first; ``"all"`` for every one):

    - ``exact``: normalised emails equal (the only tier that can be ``safe``);
    - ``alias``: one mailbox by its provider's published rules (Gmail's dots and ``+tag``,
      ``googlemail.com``; ``+tag`` at the providers of ``rules.PLUS_TAG_PROVIDERS``), emails differ;
    - ``phone``: one number in E.164 (``phonenumbers``; a number without ``+`` is read in
      ``default_region``, e.g. ``"GB"``) and one given name on every account;
    - ``probable``: a splink model trained on the tenant (:mod:`.probable`); pairs whose match
      probability is at least ``threshold`` are clustered. Not in the default: it trains a model.

    On a :class:`~.spark_audit.SparkAudit` (``audit_export_file(path, engine="spark")``) the same
    SQL runs on Spark and the groups are a Spark DataFrame of these columns (``weights`` a map):
    ``result.to_pandas(groups)`` gives this frame.

    ``progress`` shows a bar of the steps (a million users take about a minute with every tier).

    Columns: ``tier``, ``email`` (the primary's, normalised), ``users``, ``primary_id`` (the first
    user when the group is sorted by ``rank``, missing values last; edit it to choose another),
    ``user_ids`` (primary first), ``connections``, ``providers``, ``all_verified``, ``unverified``,
    ``last_login``, ``primary_last_login``, ``risk`` (``safe`` only for an ``exact`` group whose
    every email is verified and nothing else of ``RISKS`` applies; every other tier is
    ``review: ...``), ``reasons`` (all that apply), ``match_probability`` (1.0 for the rule tiers;
    the weakest pair of a probable group), ``evidence`` (in words), ``key`` (what the group shares)
    and ``weights`` (a probable group's weakest pair: each comparison's match weight, for
    :func:`~.report.plot_evidence`; None for the rule tiers).

    Examples
    --------
    >>> candidates = link_candidates(result)             # doctest: +SKIP
    >>> candidates[candidates["risk"] == "safe"]
    >>> link_candidates(result, tiers="all", threshold=0.99)   # with the probable tier
    """
    chosen = check_candidate_options(tiers, default_region, threshold)
    known = {*result.users.columns, "is_database"}
    unknown = [column for column, _ in rank if column not in known]
    if unknown:
        raise ValueError(f"rank names no column of the users frame: {', '.join(map(str, unknown))}")
    spark = is_spark_frame(result.users)
    if "probable" in chosen and (result.users.count() if spark else len(result.users)) < MIN_USERS:
        raise ValueError(f"the probable tier trains its model on the tenant itself and needs at least "
                         f"{MIN_USERS} users; this audit has {len(result.users)}")
    needed = sorted(_CANDIDATE_COLUMNS | {column for column, _ in rank} - {"is_database"})
    needed = [c for c in needed if c in result.users.columns]
    steps = ["phones", *chosen, "probable: training", "probable: scoring", "groups"] if "probable" in chosen \
        else ["phones", *chosen, "groups"]
    if spark:
        with tqdm(total=len(steps), desc="candidates", unit="step", disable=not progress) as bar:
            def spark_step(name: str) -> None:
                bar.set_postfix_str(name, refresh=False)
                bar.update(1)

            found = spark_candidates(result.users, rank=rank, chosen=chosen, default_region=default_region,
                                     threshold=threshold, step=spark_step)
            spark_step("groups")
            return found
    with Engine() as engine, system_allocator(), tqdm(total=len(steps), desc="candidates", unit="step",
                                                       disable=not progress) as bar:
        def step(name: str) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)

        db = engine.connection
        # As Arrow (text without a copy, categories as dictionaries): DuckDB scans it fastest.
        users = pa.Table.from_pandas(result.users[needed], preserve_index=False)
        db.register("users", users)
        if "phone" in users.column_names and {"phone", "probable"} & set(chosen):
            register_phones(db, users.column("phone"), default_region)
        else:
            db.execute("create temp table phones (raw varchar, e164 varchar, shown varchar)")
        step("phones")
        rules = {"exact": exact_members_sql(), "alias": alias_members_sql(), "phone": phone_members_sql()}
        parts = [rules[tier] for tier in chosen if tier != "probable"]
        weights: dict[str, dict[str, float]] = {}
        if "probable" in chosen:  # every rule's members, once: the probable tier leaves their pairs out
            db.execute("create temp table rule_members as "
                       + " union all ".join(f"({sql})" for sql in rules.values()))
            parts = [f"select * from rule_members where tier = '{tier}'"  # noqa: S608 - a name of TIERS
                     for tier in chosen if tier in rules]
            weights = _probable_members(db, threshold, step)
            parts.append("select * from probable_members")
        members = " union all ".join(f"({part})" for part in parts)
        table = engine.arrow(candidates_sql(rank, members=f"({members})"))
        for tier in chosen:
            step(tier)
        step("groups")
    frame = candidates_frame(table)
    # Only a probable group has weights: the other rows are not visited (iterating a million
    # Arrow-backed keys in Python took a tenth of the rule tiers' time).
    held = np.full(len(frame), None, dtype=object)
    if weights:
        probable = np.flatnonzero((frame["tier"] == "probable").to_numpy())
        for position, key in zip(probable.tolist(), frame["key"].take(probable).tolist(), strict=True):
            held[position] = weights.get(key)
    frame["weights"] = pd.Series(held, index=frame.index, dtype=object)
    return frame


def check_candidate_options(tiers: Sequence[str] | str, default_region: str | None,
                            threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """The tiers asked for, in ``TIERS`` order; a one-line ValueError for a tier, region or
    threshold ``link_candidates`` cannot use.

    Examples
    --------
    >>> from linking_toolkit.audit.candidates import check_candidate_options
    >>> check_candidate_options("all", None)
    ['exact', 'alias', 'phone', 'probable']
    >>> check_candidate_options(["nope"], None)
    Traceback (most recent call last):
        ...
    ValueError: tiers are some of exact, alias, phone, probable (or "all"), not ['nope']
    """
    if not (isinstance(threshold, float | int) and 0.0 < threshold < 1.0):
        raise ValueError(f"threshold is a match probability between 0 and 1, not {threshold!r}")
    if default_region is not None and default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region is a region code phonenumbers knows (e.g. 'GB', 'US'), "
                         f"not {default_region!r}")
    return _tiers(tiers)


def _tiers(tiers: Sequence[str] | str) -> list[str]:
    """The tiers asked for, in ``TIERS`` order, or a one-line ValueError."""
    if tiers == "all":
        return list(TIERS)
    if isinstance(tiers, str):
        tiers = [tiers]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown or not tiers:
        raise ValueError(f"tiers are some of {', '.join(TIERS)} (or \"all\"), not {list(tiers)!r}")
    return [t for t in TIERS if t in tiers]


def _probable_members(db: Any, threshold: float, step: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """``probable_members`` (the members of each probable cluster) registered on ``db``, from the
    pairs above ``threshold`` that no rule's group (``rule_members``) holds; the weights of each
    cluster's weakest pair, by cluster key."""
    db.register("scored", probable_pairs(db, threshold=threshold, trained=step))
    step("probable: scoring")
    similarities = ", ".join(f"jaro_winkler_similarity({c}_l, {c}_r) as sim_{c}"
                             for c in ("given", "family", "local", "username"))
    # A pair a rule tier explains is that tier's (a rule is stronger evidence than a model).
    pairs = db.sql(f"""
        select *, {similarities} from scored p where not exists (
            select 1 from rule_members a join rule_members b on a.tier = b.tier and a.key = b.key
            where a.user_id = p.unique_id_l and b.user_id = p.unique_id_r)
        order by unique_id_l, unique_id_r""").to_arrow_table()  # noqa: S608 - this module's SQL
    clusters = cluster_pairs(pairs)
    db.register("probable_members", clusters.members)
    return clusters.weights


# What the grouping reads of the users frame, besides the rank's columns.
_CANDIDATE_COLUMNS = {"email", "user_id", "connection", "provider", "email_verified", "blocked", "identities",
                      "last_login", "name", "given_name", "family_name", "username", "phone"}


def risk_now(primary: Mapping[str, Any], secondary: Mapping[str, Any]) -> str | None:
    """Why linking these two users as they are now is unsafe, or None: the rules of
    ``link_candidates`` on two live profiles (``GET /users/{id}``).

    Examples
    --------
    >>> from linking_toolkit.audit.candidates import risk_now
    >>> primary = {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...            "identities": [{"provider": "auth0", "user_id": "1",
    ...                            "connection": "Username-Password-Authentication"}]}
    >>> secondary = {"user_id": "google-oauth2|2", "email": "ada@example.org", "email_verified": False,
    ...              "identities": [{"provider": "google-oauth2", "user_id": "2",
    ...                              "connection": "google-oauth2"}]}
    >>> risk_now(primary, secondary)
    'unverified email now'
    >>> print(risk_now(primary, {**secondary, "email_verified": True}))
    None
    """
    if primary.get("email_verified") is not True or secondary.get("email_verified") is not True:
        return "unverified email now"
    if normalise_email(primary.get("email")) != normalise_email(secondary.get("email")):
        return "emails differ now"
    if primary.get("blocked") or secondary.get("blocked"):
        return "blocked user now"
    return None
