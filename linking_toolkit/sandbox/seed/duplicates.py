"""The duplicates people really make, for synthetic tenants: kinds of people, names, emails, phones.

Every synthetic person has a *kind*. ``EXACT`` people hold 2 or 3 accounts under one email (the
audit's ``exact`` tier); ``ALIAS``, ``PHONE`` and ``PROBABLE`` people hold 2 (alias: 2 or 3)
unlinked accounts whose emails differ after ``strip().lower()``: the same mailbox by the provider's
rules, the same phone written differently, or a name typo or nickname at another domain. Two kinds
of leaders start a hard negative: the next person is another person with the same name at the same
domain (``COMMON_NAME`` then ``NAMESAKE``) or of the same family sharing the leader's phone
(``SHARED_PHONE`` then ``KIN``). Each email's local part ends with its person's number, so no two
people share a mailbox under any provider's rules; the numbers of phones come from an affine
bijection of that number, so no two people share a phone except kin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ALIAS", "ALIAS_SHARE", "COMMON_NAME", "COMMON_NAME_SHARE", "EXACT", "FAMILY_NAMES", "GIVEN_NAMES",
    "KIN", "NAMESAKE", "NICKNAMES", "PERSONAL_DOMAINS", "PHONE", "PHONE_DUPLICATE_SHARE",
    "PHONE_OWNER_SHARE", "PLUS_DOMAINS", "PROBABLE", "PROBABLE_SHARE", "SHARED_PHONE",
    "SHARED_PHONE_SHARE", "SINGLE", "SYNTHETIC_PHONE_REGION", "WORK_DOMAINS", "AccountTexts",
    "account_texts", "draw_kinds", "draw_names", "phone_e164",
]

SINGLE, EXACT, ALIAS, PHONE, PROBABLE, COMMON_NAME, SHARED_PHONE, NAMESAKE, KIN = range(9)
# Shares of the people (the exact tier's share, DUPLICATE_SHARE, is in synthetic.py).
ALIAS_SHARE = 0.02            # one mailbox under 2-3 spellings: Gmail dots, +tags, googlemail.com
PHONE_DUPLICATE_SHARE = 0.015  # a personal and a work email, one phone written two ways
PROBABLE_SHARE = 0.02         # another domain, a nickname or a typo in the family name
COMMON_NAME_SHARE = 0.005     # leads a namesake pair: same given and family name, same domain
SHARED_PHONE_SHARE = 0.005    # leads a family pair: same phone and family name, other given names
PHONE_OWNER_SHARE = 0.20      # of the other people, those with a phone (on one account only)
DB_NAMED_SHARE = 0.5          # database accounts with given/family names (social ones always)
USERNAME_SHARE = 0.3          # database accounts with a username (a probable person's: all)
SYNTHETIC_PHONE_REGION = "GB"  # national numbers (07123 456789) are written in this region
PHONE_BASE, PHONE_SPAN = 7_100_000_000, 300_000_000  # UK mobiles 071xx-073xx: every one is valid
PHONE_MULT, PHONE_ADD = 104_729, 48_611_293  # the bijection of person numbers onto phones

# Domains, most frequent first; example.org is where the exact tier's people live.
PERSONAL_DOMAINS = ("example.org", "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com",
                    "proton.me", "fastmail.com")
PERSONAL_WEIGHTS = (0.35, 0.30, 0.10, 0.08, 0.08, 0.06, 0.02, 0.01)
PLUS_DOMAINS = ("outlook.com", "fastmail.com")  # +tag subaddressing, dots significant
WORK_DOMAINS = tuple(f"{w}.example" for w in (
    "northwind", "contoso", "fabrikam", "initech", "globex", "umbrella", "hooli", "vandelay",
    "wayne-enterprises", "stark-industries", "acme", "tyrell", "cyberdyne", "soylent", "wonka",
    "gringotts"))
OTHER_DOMAINS = PERSONAL_DOMAINS + WORK_DOMAINS
TAGS = ("shop", "news", "spam", "work", "travel", "bank")
GMAIL_VARIANTS = 4  # dots dropped, +tag, googlemail.com, dots dropped and +tag
# The two writings of a phone person's number: 0 root E.164, 1 metadata international,
# 2 metadata national, 3 metadata E.164 (pairs of different texts).
PHONE_PAIRS = ((0, 1), (0, 2), (1, 2), (2, 0), (3, 2), (1, 3), (2, 3), (3, 1))


def _pool(head: tuple[str, ...], parts: tuple[tuple[str, ...], ...], size: int, seed: int) -> tuple[str, ...]:
    """``head`` then syllable-built names up to ``size``, in a fixed random order (frequency rank)."""
    rng = np.random.default_rng(seed)
    names = dict.fromkeys(head)
    while len(names) < size:
        picks = [rng.integers(0, len(p), size=size) for p in parts]
        for row in zip(*picks, strict=True):
            names.setdefault("".join(p[i] for p, i in zip(parts, row, strict=True)).capitalize())
    return tuple(names)[:size]


_ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "ch",
           "cl", "dr", "fr", "gr", "kr", "sh", "st", "tr", "w", "y")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "ai", "ou")
_CODAS = ("l", "n", "r", "s", "m", "t", "x", "nd", "rk")
_GIVEN_ENDS = ("a", "o", "ina", "ara", "el", "en", "ia", "io", "ette", "ian", "us", "ine", "ek", "ia")
_FAMILY_ENDS = ("berg", "son", "ez", "ova", "ski", "ini", "ard", "ley", "ton", "man", "er", "ov",
                "strom", "eau", "elli", "sen", "ura", "ic")
# Real names with their nicknames lead the given names (Katherine -> Kate); the rest are built.
NICKNAMES = {"Katherine": "Kate", "William": "Will", "Elizabeth": "Liz", "Alexander": "Alex",
             "Margaret": "Maggie", "Robert": "Bob", "Jonathan": "Jon", "Samantha": "Sam",
             "Christopher": "Chris", "Victoria": "Vicky", "Benjamin": "Ben", "Josephine": "Jo"}
GIVEN_NAMES = _pool((*NICKNAMES, "Amara", "Bruno", "Chen", "Dana", "Elif", "Farid", "Greta", "Hiro",
                     "Ines", "Jonas", "Kofi", "Lena", "Mateo", "Nadia", "Oskar", "Priya"),
                    (_ONSETS, _VOWELS, _CODAS, _GIVEN_ENDS), 4000, 1)
FAMILY_NAMES = _pool(("Johnson", "Abara", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia",
                      "Haddad", "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor"),
                     (_ONSETS, _VOWELS, _CODAS, _FAMILY_ENDS), 10000, 2)


def _zipf(size: int, shift: float) -> Any:
    """Zipf-Mandelbrot frequencies by rank: the few first names common, the long tail rare."""
    weights = 1.0 / (np.arange(size) + shift)
    return np.cumsum(weights / weights.sum())


_GIVEN_CDF, _FAMILY_CDF = _zipf(len(GIVEN_NAMES), 10.0), _zipf(len(FAMILY_NAMES), 20.0)


def _nickname(name: str) -> str:
    """A real nickname, else a built name's first syllable (Marlena -> Marl); "" when too short."""
    if name in NICKNAMES:
        return NICKNAMES[name]
    cut = next((i for i in range(2, len(name)) if name[i - 1] in "aeiou" and name[i] not in "aeiou"), 0)
    return name[:cut + 1] if 3 <= cut + 1 < len(name) - 1 else ""


_NICK = tuple(_nickname(g) for g in GIVEN_NAMES)
_GIVEN_LOWER, _FAMILY_LOWER = tuple(g.lower() for g in GIVEN_NAMES), tuple(f.lower() for f in FAMILY_NAMES)


def draw_kinds(rng: Any, count: int, exact_share: float) -> Any:
    """Each of ``count`` people's kind; a negative's leader is followed by its namesake or kin.

    Examples
    --------
    >>> import numpy as np
    >>> from linking_toolkit.sandbox.seed.duplicates import draw_kinds
    >>> len(draw_kinds(np.random.default_rng(7), 10, 0.5))
    10
    """
    shares = (exact_share, ALIAS_SHARE, PHONE_DUPLICATE_SHARE, PROBABLE_SHARE, COMMON_NAME_SHARE,
              SHARED_PHONE_SHARE)
    kinds = np.array((EXACT, ALIAS, PHONE, PROBABLE, COMMON_NAME, SHARED_PHONE, SINGLE), dtype=np.int8)
    kind = kinds[np.searchsorted(np.cumsum(shares), rng.random(count), side="right")]
    lead = (kind == COMMON_NAME) | (kind == SHARED_PHONE)
    lead[1:] &= ~lead[:-1]  # a leader's follower is never a leader itself
    lead[-1:] = False
    kind[((kind == COMMON_NAME) | (kind == SHARED_PHONE)) & ~lead] = SINGLE
    follow = np.flatnonzero(lead) + 1
    kind[follow] = np.where(kind[follow - 1] == COMMON_NAME, NAMESAKE, KIN)
    return kind


def draw_names(rng: Any, kind: Any) -> tuple[Any, Any]:
    """Per person, indexes into GIVEN_NAMES and FAMILY_NAMES (Zipf-like); namesakes take their
    leader's names, kin their family name and another given name.

    Examples
    --------
    >>> import numpy as np
    >>> from linking_toolkit.sandbox.seed.duplicates import draw_kinds, draw_names
    >>> rng = np.random.default_rng(7)
    >>> given, family = draw_names(rng, draw_kinds(rng, 10, 0.5))
    >>> len(given), len(family)
    (10, 10)
    """
    count = len(kind)
    given = np.searchsorted(_GIVEN_CDF, rng.random(count) * _GIVEN_CDF[-1])
    family = np.searchsorted(_FAMILY_CDF, rng.random(count) * _FAMILY_CDF[-1])
    given, family = np.minimum(given, len(GIVEN_NAMES) - 1), np.minimum(family, len(FAMILY_NAMES) - 1)
    twins = np.flatnonzero(kind == NAMESAKE)
    given[twins], family[twins] = given[twins - 1], family[twins - 1]
    kin = np.flatnonzero(kind == KIN)
    family[kin] = family[kin - 1]
    given[kin] = np.where(given[kin] == given[kin - 1], (given[kin] + 1) % len(GIVEN_NAMES), given[kin])
    return given, family


def phone_e164(person: int) -> str:
    """The phone of person number ``person`` (distinct per person), in E.164.

    Examples
    --------
    >>> from linking_toolkit.sandbox.seed.duplicates import phone_e164
    >>> phone_e164(0), phone_e164(1)
    ('+447148611293', '+447148716022')
    """
    return f"+44{PHONE_BASE + (person * PHONE_MULT + PHONE_ADD) % PHONE_SPAN}"


def _written(e164: str, how: int) -> str:
    """``how``: 0 or 3 E.164, 1 international (+44 7123 456789), 2 national (07123 456789)."""
    if how == 1:
        return f"+44 {e164[3:7]} {e164[7:]}"
    if how == 2:
        return f"0{e164[3:7]} {e164[7:]}"
    return e164


@dataclass
class AccountTexts:
    """Per account, in person order: what the rows hold beyond flags and timestamps.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.synthetic import seed_synthetic_users
    >>> truth = seed_synthetic_users(Store(':memory:'), 50, seed=7)  # account_texts() wrote their texts
    >>> truth.users
    50
    """

    email: list[str]
    given: list[str | None]  # None: a database profile with no names (its name is its email)
    family: list[str | None]
    username: list[str | None]
    phone_number: list[str | None]  # the root attribute, E.164
    phone_meta: list[str | None]  # user_metadata.phone, as written


def account_texts(rng: Any, kind: Any, n_acc: Any, conn: Any, case_variant: Any, given: Any, family: Any,
                  first_number: int) -> AccountTexts:
    """Emails, names, usernames and phones of every account; ``first_number`` numbers the first
    person (people of earlier batches hold the numbers before).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.synthetic import seed_synthetic_users
    >>> truth = seed_synthetic_users(Store(':memory:'), 50, seed=7)    # calls account_texts per batch
    >>> truth.users, truth.people
    (50, 43)
    """
    people, accounts = len(kind), len(conn)
    out = AccountTexts([], [], [], [], [], [])
    is_db = conn == 0
    forced = np.isin(kind, (PHONE, PROBABLE, COMMON_NAME, SHARED_PHONE, NAMESAKE, KIN))
    person_of = np.repeat(np.arange(people), n_acc)
    exact = kind[person_of] == EXACT
    named = ~is_db | (~exact & (forced[person_of] | (rng.random(accounts) < DB_NAMED_SHARE)))
    with_username = is_db & ~exact & (
        (kind[person_of] == PROBABLE) | (rng.random(accounts) < USERNAME_SHARE))
    domain = np.searchsorted(np.cumsum(PERSONAL_WEIGHTS), rng.random(people) * sum(PERSONAL_WEIGHTS))
    domain = np.minimum(domain, len(PERSONAL_DOMAINS) - 1)
    twins = np.flatnonzero(kind == NAMESAKE)
    domain[twins] = domain[twins - 1]
    has_phone = np.isin(kind, (PHONE, SHARED_PHONE)) | (rng.random(people) < PHONE_OWNER_SHARE)
    has_phone &= kind != KIN
    draws = [a.tolist() for a in (kind, n_acc, given, family, domain, has_phone, rng.integers(0, 4, people),
                                  rng.integers(0, 1 << 30, people), rng.integers(0, 1 << 30, people))]
    style, how = rng.integers(0, 4, accounts).tolist(), rng.integers(0, 4, accounts).tolist()
    named_l, user_l, case_l = named.tolist(), with_username.tolist(), case_variant.tolist()
    a = 0
    add_email, add_given, add_family = out.email.append, out.given.append, out.family.append
    add_username, add_number, add_meta = out.username.append, out.phone_number.append, out.phone_meta.append
    for p, (k, m, gi, fi, dom, phone, pick, r1, r2) in enumerate(zip(*draws, strict=True)):
        number = first_number + p
        g, f, gl, fl = GIVEN_NAMES[gi], FAMILY_NAMES[fi], _GIVEN_LOWER[gi], _FAMILY_LOWER[fi]
        if k == SINGLE and not phone:  # most people: one account, no phone
            add_email(f"{_local(style[a], gl, fl, number)}@{PERSONAL_DOMAINS[dom]}")
            add_given(g if named_l[a] else None)
            add_family(f if named_l[a] else None)
            add_username(f"{gl}_{fl}{number}" if user_l[a] else None)
            add_number(None)
            add_meta(None)
            a += 1
            continue
        names = [(g, f)] * m
        if k == EXACT:
            local = f"{g}.{f}.{number}"
            emails = [f"{local}@Example.org" if case_l[b] else f"{local.lower()}@example.org"
                      for b in range(a, a + m)]
        elif k == ALIAS:
            emails = _alias_emails(f"{gl}.{fl}{number}", gl, fl, number, m, r1, r2)
        elif k == PROBABLE:
            g2, f2 = _probable_names(gi, f, r1)
            names = [(g, f), (g2, f2)]
            other = OTHER_DOMAINS[r2 % len(OTHER_DOMAINS)]
            if other == PERSONAL_DOMAINS[dom]:
                other = WORK_DOMAINS[r2 % len(WORK_DOMAINS)]
            second = f"{g2.lower()}.{f2.lower()}" if r2 & 1 else f"{g2.lower()[0]}{f2.lower()}"
            emails = [f"{_local(style[a], gl, fl, number)}@{PERSONAL_DOMAINS[dom]}",
                      f"{second}{number}@{other}"]
        elif k == PHONE:
            emails = [f"{_local(style[a], gl, fl, number)}@{PERSONAL_DOMAINS[dom]}",
                      f"{_local(style[a + 1], gl, fl, number)}@{WORK_DOMAINS[r1 % len(WORK_DOMAINS)]}"]
        else:
            emails = [f"{_local(style[a], gl, fl, number)}@{PERSONAL_DOMAINS[dom]}"]
        e164 = phone_e164(number - 1 if k == KIN else number) if phone or k == KIN else None
        writes = PHONE_PAIRS[pick % len(PHONE_PAIRS)] if k == PHONE else (how[a],)
        for j in range(m):
            b = a + j
            gj, fj = names[j]
            add_email(emails[j])
            add_given(gj if named_l[b] else None)
            add_family(fj if named_l[b] else None)
            add_username((f"{gj.lower()}_{fj.lower()}{number}" if j == 0 else
                                 f"{gj.lower()}{fj.lower()}{number}")
                                if user_l[b] and (j == 0 or k == PROBABLE) else None)
            written = _written(e164, writes[j]) if e164 is not None and j < len(writes) else None
            root = written is not None and writes[j] == 0
            add_number(written if root else None)
            add_meta(None if root else written)
        a += m
    return out


def _local(style: int, gl: str, fl: str, number: int) -> str:
    if style == 0:
        return f"{gl}.{fl}{number}"
    if style == 1:
        return f"{gl[0]}{fl}{number}"
    if style == 2:
        return f"{gl}{fl}{number}"
    return f"{gl}_{fl}{number}"


def _alias_emails(base: str, gl: str, fl: str, number: int, m: int, r1: int, r2: int) -> list[str]:
    """``base`` at a Gmail or +tag provider, then ``m - 1`` other spellings of the same mailbox."""
    tag = TAGS[r2 % len(TAGS)]
    if r1 % 10 < 7:  # Gmail
        plain = f"{gl}{fl}{number}"
        variants = (f"{plain}@gmail.com", f"{base}+{tag}@gmail.com", f"{base}@googlemail.com",
                    f"{plain}+{tag}@gmail.com")
        start = (r1 // 10) % GMAIL_VARIANTS
        return [f"{base}@gmail.com"] + [variants[(start + j) % GMAIL_VARIANTS] for j in range(m - 1)]
    domain = PLUS_DOMAINS[(r1 // 10) % len(PLUS_DOMAINS)]
    return [f"{base}@{domain}"] + [f"{base}+{TAGS[(r2 + j) % len(TAGS)]}@{domain}" for j in range(m - 1)]


def _probable_names(gi: int, family: str, r: int) -> tuple[str, str]:
    """The second account's names: a nickname, or two letters of the family name swapped, or one
    dropped (never its first letter)."""
    nick = _NICK[gi]
    if r % 3 == 0 and nick:
        return nick, family
    i = 1 + (r // 3) % (len(family) - 2) if len(family) > 3 else 1
    swapped = family[:i] + family[i + 1] + family[i] + family[i + 2:] if i + 1 < len(family) else family
    if r % 3 == 1 and swapped != family:
        return GIVEN_NAMES[gi], swapped
    return GIVEN_NAMES[gi], family[:i] + family[i + 1:]
