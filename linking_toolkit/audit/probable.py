"""The ``probable`` tier: a splink model (Fellegi-Sunter, trained by EM on the tenant itself) scores
pairs of users on name, email local part, email domain, phone and username; pairs above a
threshold are clustered into groups. A probable group is evidence for a person to review, never a
link: ``risk`` is always ``review: probable match``.

The model, as documented for the analyst:
- records: one per user, with ``given`` and ``family`` (given_name/family_name, else the first and
  last words of name), ``local`` (the email's local part without a ``+tag``), ``domain``, ``phone``
  (E.164) and ``username``, all lower-cased and without accents;
- comparisons: Jaro-Winkler at 0.92 and 0.80 on given, family and local, 0.92 on username; exact
  on domain and phone;
- blocking (which pairs are scored at all): the same family name and given initial, the same given
  name and family initial, the same local part, the same phone, the same username;
- training: the prior from the pairs sharing a phone or a full name (recall 0.7), u from 2 million
  random pairs (seeded), m by EM on pairs blocked by family name, then by local part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

__all__ = [
    "COMPARISONS",
    "DEFAULT_THRESHOLD",
    "MIN_USERS",
    "probable_pairs",
    "records_sql",
]

# The match probability a pair needs to join a probable group (bench/candidates.py measures it).
DEFAULT_THRESHOLD = 0.99
# EM needs enough pairs of each kind to learn from; below this the tier is refused, not guessed.
MIN_USERS = 1000
# Each comparison's column and how it is written in the evidence.
COMPARISONS = {"given": "given name", "family": "family name", "local": "email local part",
               "domain": "domain", "phone": "phone", "username": "username"}


def records_sql(users: str = "users", phones: str = "phones") -> str:
    """One splink record per user (see the module's docstring)."""
    def clean(expr: str) -> str:
        return f"nullif(lower(strip_accents(trim({expr}))), '')"

    last_word = "regexp_extract(trim(u.name), '(\\S+)$', 1)"
    family = f"coalesce(u.family_name, if(strpos(trim(u.name), ' ') > 0, {last_word}, null))"

    return f"""
    select u.user_id as unique_id,
           {clean("coalesce(u.given_name, split_part(trim(u.name), ' ', 1))")} as given,
           {clean(family)} as family,
           {clean("split_part(split_part(u.email, '@', 1), '+', 1)")} as local,
           {clean("split_part(u.email, '@', 2)")} as domain,
           p.e164 as phone, {clean("u.username")} as username
    from {users} u left join {phones} p on p.raw = u.phone
    """  # noqa: S608 - table names of this package's


def _settings() -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("given", [0.92, 0.8]),
            cl.JaroWinklerAtThresholds("family", [0.92, 0.8]),
            cl.JaroWinklerAtThresholds("local", [0.92, 0.8]),
            cl.ExactMatch("domain"),
            cl.ExactMatch("phone"),
            cl.JaroWinklerAtThresholds("username", [0.92]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("family", "substr(given, 1, 1)"),
            block_on("given", "substr(family, 1, 1)"),
            block_on("local"),
            block_on("phone"),
            block_on("username"),
        ],
        retain_intermediate_calculation_columns=True,
        max_iterations=20,
    )


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """splink logs every training step at INFO: the analyst gets a progress bar, not a transcript."""
    logger = logging.getLogger("splink")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def probable_pairs(connection: duckdb.DuckDBPyConnection, *, threshold: float = DEFAULT_THRESHOLD,
                   users: str = "users", phones: str = "phones", seed: int = 1) -> pa.Table:
    """Scored pairs above ``threshold``: unique_id_l, unique_id_r, match_probability, match_weight,
    the records' values (``given_l``, ``given_r``, ...) and each comparison's match weight
    (``mw_given``, ...), from a model trained on ``users`` itself."""
    from splink import DuckDBAPI, Linker, block_on

    with _quiet_splink():
        api = DuckDBAPI(connection)
        records = api.register(connection.sql(records_sql(users, phones)).to_arrow_table(),
                               table_name="probable_records")
        linker = Linker(records, _settings(), log_level=None)
        linker.training.estimate_probability_two_random_records_match(
            ["l.phone = r.phone", block_on("given", "family")], recall=0.7)
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("family"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("local"))
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        return predictions.as_duckdbpyrelation().to_arrow_table()
