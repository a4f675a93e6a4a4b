"""The rule tiers beyond one email: ``alias`` (the same mailbox by its provider's own rules) and
``phone`` (the same number in E.164), as members (tier, key, match_probability, evidence, user_id)
for :func:`~.groups.candidates_sql` to group.

Each rule is documented and narrow on purpose. A mailbox rule is applied only at a provider that
publishes it; at any other domain ``a.da@`` and ``ada@`` may be two people, so no rule is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DOTS_IGNORED",
    "PLUS_TAG_PROVIDERS",
    "SAME_DOMAINS",
    "alias_members_sql",
    "canonical_phone",
    "phone_members_sql",
    "register_phones",
    "shown_phone",
]

# Gmail ignores dots in the local part ("Dots don't matter in Gmail addresses",
# support.google.com/mail/answer/7436150) and everything from a "+" (support.google.com/mail/answer/12096);
# googlemail.com is the same service under another name (support.google.com/mail/answer/10313).
DOTS_IGNORED = ("gmail.com",)
SAME_DOMAINS = {"googlemail.com": "gmail.com"}
# Providers that document "+tag" subaddressing (everything from the "+" to the "@" is ignored):
PLUS_TAG_PROVIDERS = {
    "gmail.com": "support.google.com/mail/answer/12096",
    "outlook.com": ("learn.microsoft.com/exchange/recipients-in-exchange-online/"
                    "plus-addressing-in-exchange-online"),
    "hotmail.com": "the same Outlook.com service and documentation",
    "live.com": "the same Outlook.com service and documentation",
    "fastmail.com": "fastmail.help/hc/en-us/articles/360058753794 (plus addressing)",
    "proton.me": "proton.me/support/addresses-and-aliases (+aliases)",
    "protonmail.com": "proton.me/support/addresses-and-aliases (+aliases)",
}


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def alias_members_sql(users: str = "users") -> str:
    """Users whose normalised emails differ but name one mailbox by its provider's rules.

    Examples
    --------
    >>> from linking_toolkit.audit.rules import alias_members_sql
    >>> "from people" in alias_members_sql("people")
    True
    """
    same = " ".join(f"when '{a}' then '{b}'" for a, b in SAME_DOMAINS.items())
    # A cheap suffix test first: nearly every email is at none of these domains, and splitting a
    # million emails to find that out was a third of this tier's time.
    domains = sorted({*PLUS_TAG_PROVIDERS, *SAME_DOMAINS})
    at_one = " or ".join(f"ends_with(email, '@{domain}')" for domain in domains)
    return f"""
    with parts as (
        select user_id, email, split_part(email, '@', 1) as local,
               case split_part(email, '@', 2) {same} else split_part(email, '@', 2) end as domain
        from {users} where ({at_one}) and email like '%_@_%' and email not like '%@%@%'
    ), keyed as (
        select user_id, email, domain,
               case when list_contains({_sql_list(PLUS_TAG_PROVIDERS)}, domain)
                    then split_part(local, '+', 1) else local end as local
        from parts
    ), mailboxes as (
        select user_id, email, domain,
               if(list_contains({_sql_list(DOTS_IGNORED)}, domain), replace(local, '.', ''), local)
               || '@' || domain as key
        from keyed
    ), aliased as (
        select key from mailboxes where length(key) > length(domain) + 1
        group by key having count(distinct email) > 1
    )
    select 'alias' as tier, key, 1.0::double as match_probability,
           case when split_part(key, '@', 2) = 'gmail.com'
                then 'same Gmail mailbox ' || key || ' once dots and +tag are ignored'
                else 'same mailbox ' || key || ' once the +tag is ignored' end as evidence,
           user_id
    from mailboxes where key in (select key from aliased)
    """  # noqa: S608 - built from this module's constants


# "+44 7911 123456", "+1 (415) 555-0100": a number already international, with separators only.
# Its E.164 form is "+" and its digits, as phonenumbers would write it. A zero opening a group
# ("+44 (0)7911 ...", "+44 07911 ...": the trunk prefix some write in an international number, which
# phonenumbers drops where the country does, and keeps where it does not, as Italy's) is left to it.
_INTERNATIONAL = re.compile(r"\+[1-9][0-9 .\-()/]{5,30}")
_ZERO_OPENS_A_GROUP = re.compile(r"[ .\-(/]0")
_SEPARATORS = re.compile(r"[^0-9]")


def canonical_phone(raw: str, region: str | None) -> str | None:
    """``raw`` in E.164, not validated: by the rule of ``_INTERNATIONAL`` where it applies (most
    numbers, and 30 times faster than phonenumbers' parse), else by phonenumbers, which reads a
    number without ``+`` in ``region``; None when it reads no number.

    Examples
    --------
    >>> from linking_toolkit.audit.rules import canonical_phone
    >>> canonical_phone("+44 7911 123456", None), canonical_phone("07911 123456", "GB")
    ('+447911123456', '+447911123456')
    >>> canonical_phone("call me", "GB") is None
    True
    """
    if _INTERNATIONAL.fullmatch(raw) and not _ZERO_OPENS_A_GROUP.search(raw):
        digits = _SEPARATORS.sub("", raw)
        return "+" + digits if 7 <= len(digits) <= 15 else None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def shown_phone(e164: str) -> str | None:
    """An E.164 number in international form (``+44 7911 123456``), or None when it is no valid
    number (an invalid one matches nothing).

    Examples
    --------
    >>> from linking_toolkit.audit.rules import shown_phone
    >>> shown_phone("+447911123456")
    '+44 7911 123456'
    >>> shown_phone("+4412") is None
    True
    """
    parsed = phonenumbers.parse(e164)
    return (phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            if phonenumbers.is_valid_number(parsed) else None)


def register_phones(connection: duckdb.DuckDBPyConnection, phones: pa.ChunkedArray | pa.Array,
                    region: str | None, name: str = "phones") -> None:
    """Register ``name`` (raw, e164, shown): each distinct phone of ``phones`` once.

    Every number is put in E.164; only those that two users or more share (the only ones a tier can
    group on) are then checked valid by phonenumbers (an invalid one matches nothing) and written
    in international form (``shown``, for the evidence). A million users hold some 200 000 distinct
    phones: validating each would cost 20 seconds, validating the shared ones costs nothing.

    Examples
    --------
    >>> import duckdb, pyarrow as pa
    >>> from linking_toolkit.audit.rules import register_phones
    >>> connection = duckdb.connect()
    >>> register_phones(connection, pa.array(["+44 20 7946 0958", "020 7946 0958", "+1 202 555 0143"]), "GB")
    >>> connection.sql("select e164, shown from phones order by raw").fetchall()   # only shared ones shown
    [('+12025550143', None), ('+442079460958', '+44 20 7946 0958'), ('+442079460958', '+44 20 7946 0958')]
    """
    distinct = pa.chunked_array([phones]) if isinstance(phones, pa.Array) else phones
    counts = pc.value_counts(distinct.drop_null())
    raw = counts.field("values").to_pylist()
    users = counts.field("counts").to_pylist()
    numbers = [canonical_phone(p.strip(), region) for p in raw]
    holders: dict[str, int] = {}
    for number, count in zip(numbers, users, strict=True):
        if number is not None:
            holders[number] = holders.get(number, 0) + count
    shared = {number: shown_phone(number) for number, count in holders.items() if count > 1}
    checked = [n if n is None or n not in shared or shared[n] else None for n in numbers]
    table = pa.table({"raw": pa.array(raw, pa.string()), "e164": pa.array(checked, pa.string()),
                      "shown": pa.array([shared.get(n) if n else None for n in checked], pa.string())})
    connection.register(name, table)


def _first_name_sql(alias: str) -> str:
    """A user's given name for the phone rule: given_name, else the first word of name."""
    return (f"nullif(lower(strip_accents(trim(coalesce({alias}.given_name, "
            f"split_part(trim({alias}.name), ' ', 1))))), '')")


def phone_members_sql(users: str = "users", phones: str = "phones") -> str:
    """Users with the same phone in E.164 and the same given name: a family sharing one phone
    (different given names) is not one person, so it is not a group.

    Examples
    --------
    >>> from linking_toolkit.audit.rules import phone_members_sql
    >>> table = engine.arrow(phone_members_sql())        # doctest: +SKIP
    """
    return f"""
    with numbered as (
        select u.user_id, coalesce(u.email, u.user_id) as email, p.e164, p.shown,
               {_first_name_sql('u')} as first
        from {users} u join {phones} p on p.raw = u.phone where p.e164 is not null
    ), shared as (  -- one given name on every account, and not all one email (that is "exact")
        select e164 from numbered group by e164
        having count(*) > 1 and count(distinct first) = 1 and count(first) = count(*)
           and count(distinct email) > 1
    )
    select 'phone' as tier, e164 as key, 1.0::double as match_probability,
           'same phone ' || shown || ' and given name ' || first as evidence, user_id
    from numbered where e164 in (select e164 from shared)
    """  # noqa: S608 - built from this module's constants
