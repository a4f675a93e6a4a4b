"""Candidate groups in SQL: members of each tier (tier, key, match_probability, evidence, user_id)
grouped on the audit's engine, with the proposed primary, the group's facts and its risks.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DATABASE_PROVIDER",
    "DEFAULT_PRIMARY_RANK",
    "REVIEW",
    "RISKS",
    "TIERS",
    "candidates_sql",
    "exact_members_sql",
]

# The provider of a tenant's database connections (users with a password they chose).
DATABASE_PROVIDER = "auth0"
# The proposed primary: the first user of a group sorted by these (column, ascending) keys.
# A user holding links already must stay primary (Auth0 refuses a secondary with links of its own);
# an unverified account never becomes the surviving profile; then the database account (the one
# with a password the person chose), the most used, the oldest; user_id breaks ties.
DEFAULT_PRIMARY_RANK: list[tuple[str, bool]] = [
    ("identities", False),
    ("email_verified", False),
    ("is_database", False),
    ("logins_count", False),
    ("created_at", True),
    ("user_id", True),
]
# The tiers, strongest first: a group of a later tier is never "safe" (see candidates.py).
TIERS = ["exact", "alias", "phone", "probable"]
# Why a group is not safe, as SQL conditions on the group; then the reason of every tier but exact.
_FLAGS = {"not all_verified": "unverified email", "any_blocked": "blocked user",
          "linked_users > 1": "several users hold links",
          "array_length(connection_list) + without_connection::int < users": "same connection twice"}
REVIEW = {"alias": "review: same mailbox by its provider's rules", "phone": "review: same phone",
          "probable": "review: probable match"}
# Every risk, in the order they are reported; "safe" only when none applies.
RISKS = ["safe", *_FLAGS.values(), *REVIEW.values()]


def _identifier(name: str) -> str:
    return name.replace('"', '""')


def _quoted(text: str) -> str:
    return text.replace("'", "''")


# -- candidates ------------------------------------------------------------------------------------


def exact_members_sql(users: str = "users") -> str:
    """The ``exact`` tier's members: users whose normalised email another user shares.

    Examples
    --------
    >>> from linking_toolkit.audit.groups import exact_members_sql
    >>> "from people" in exact_members_sql("people")
    True
    """
    return f"""
    select 'exact' as tier, email as key, 1.0::double as match_probability,
           'same email ' || email as evidence, user_id
    from {users} where email in (select email from {users} where email is not null
                                 group by email having count(*) > 1)
    """  # noqa: S608 - a table name of this package's


# What the groups read of each member (the rank's columns are read by the window only).
_GROUPS_READ = ("user_id", "email", "email_verified", "last_login", "connection", "provider", "blocked",
                "identities")


def candidates_sql(rank: Sequence[tuple[str, bool]] = DEFAULT_PRIMARY_RANK, users: str = "users",
                   members: str | None = None) -> str:
    """Candidate groups, one row per group, in SQL: ``members`` (tier, key, match_probability,
    evidence, user_id) are grouped by (tier, key) and joined to ``users``; without ``members``, the
    ``exact`` tier (users whose normalised emails are equal).

    The proposed primary is the first user of its group sorted by ``rank`` (column, ascending),
    missing values last; groups come in tier order, then by the primary's email; ``risk`` is the
    first reason of ``RISKS`` that applies (a tier other than ``exact`` is always ``review: ...``),
    ``reasons`` all of them.

    Examples
    --------
    >>> from linking_toolkit.audit.groups import candidates_sql
    >>> table = engine.arrow(candidates_sql())           # doctest: +SKIP
    """
    members = members or f"({exact_members_sql(users)})"
    order = ", ".join(f'u."{_identifier(column)}" {"asc" if ascending else "desc"} nulls last'
                      for column, ascending in rank)
    flags = "[" + ", ".join(f"case when {flag} then '{reason}' end" for flag, reason in _FLAGS.items()) + "]"
    review = ("case tier " + " ".join(f"when '{t}' then '{_quoted(why)}'" for t, why in REVIEW.items())
              + " end")
    reasons = f"list_filter(list_prepend({review}, {flags}), lambda r: r is not null)"
    tiers = "case tier " + " ".join(f"when '{t}' then {n}" for n, t in enumerate(TIERS)) + " end"
    # Only what the groups read is carried through the window and the aggregate.
    carried = ", ".join(f'u."{_identifier(c)}"' for c in _GROUPS_READ)
    # Built from this module's constants and quoted column names: no value of the tenant's in it.
    # The rank as a number (one window sort), then each group's members sorted by it: much faster
    # than an ordered aggregate per column that needs the order.
    return f"""
    with members as (
        select m.tier, m.key, m.match_probability, m.evidence, {carried},
               row_number() over (partition by m.tier, m.key order by {order}) as rank_in_group
        from {members} m join (select *, provider::varchar = '{DATABASE_PROVIDER}' as is_database
                               from {users}) u on u.user_id = m.user_id
    ), groups as (
        select tier, key, min(match_probability) as match_probability, min(evidence) as evidence,
               count(*) as users,
               list_sort(list({{'rank': rank_in_group, 'id': user_id, 'email': email,
                                'verified': coalesce(email_verified, false),
                                'login': last_login}})) as ranked,
               list_sort(list_distinct(list(connection::varchar))) as connection_list,
               array_to_string(list_sort(list_distinct(list(provider::varchar))), ', ') as providers,
               bool_and(coalesce(email_verified, false)) as all_verified,
               bool_or(blocked) as any_blocked,
               count(*) filter (where identities > 1) as linked_users,
               bool_or(connection is null) as without_connection,
               max(last_login) as last_login
        from members group by tier, key having count(*) > 1
    ), reasoned as (
        select *, {reasons} as why from groups
    )
    select tier, ranked[1].email as email, users, ranked[1].id as primary_id,
           list_transform(ranked, lambda r: r.id) as user_ids,
           array_to_string(connection_list, ', ') as connections, providers, all_verified,
           list_transform(list_filter(ranked, lambda r: not r.verified), lambda r: r.id) as unverified,
           last_login, ranked[1].login as primary_last_login,
           coalesce(why[1], 'safe') as risk,
           coalesce(nullif(array_to_string(why, ', '), ''), 'safe') as reasons,
           match_probability, evidence, key
    from reasoned order by {tiers}, email, key
    """  # noqa: S608
