"""The ``probable`` tier: a splink model (Fellegi-Sunter, trained by EM on the tenant itself) scores
pairs of users on name, email local part, email domain, phone and username; pairs above a
threshold are clustered into groups. A probable group is evidence for a person to review, never a
link: ``risk`` is always ``review: probable match``.

The model, as documented for the analyst:

- records: one per user, or one per email where users share one (that group is the exact tier's,
  and its copies would teach the model that a shared name is a match); each with ``given`` and
  ``family`` (given_name/family_name, else the first and last words of name), ``local`` (the
  email's local part without a ``+tag``) and ``digits`` (the number in it), ``domain``, ``phone``
  (E.164) and ``username``, lower-cased and without accents;
- comparisons: Jaro-Winkler at 0.92 and 0.80 on given and family (with term frequencies: a rare
  name counts more than a common one); the local part exact, then the same number in it, then a
  different number (evidence against: a local part is mostly the name again, so its letters alone
  would count the name twice), then Jaro-Winkler at 0.92 and 0.80; the username likewise (0.92);
  exact on domain and phone;
- blocking (which pairs are scored at all): the same family name and given initial, the same given
  name and family initial, the same local part, the same number and family initial, the same
  phone, the same username;
- training: the prior from the pairs sharing a phone or a full name (recall 0.7), u from 2 million
  random pairs (seeded), m by EM on the pairs sharing a full name, then on those sharing a number
  and a family initial.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

__all__ = [
    "COMPARISONS",
    "DEFAULT_THRESHOLD",
    "MIN_USERS",
    "model_settings",
    "probable_pairs",
    "records_sql",
    "train_model",
]

# The match probability a pair needs to join a probable group (bench/candidates.py measures it).
DEFAULT_THRESHOLD = 0.99
# EM needs enough pairs of each kind to learn from; below this the tier is refused, not guessed.
MIN_USERS = 1000
# Each comparison's column and how it is written in the evidence.
COMPARISONS = {"given": "given name", "family": "family name", "local": "email local part",
               "domain": "domain", "phone": "phone", "username": "username"}


def records_sql(users: str = "users", phones: str = "phones") -> str:
    """One splink record per user (see the module's docstring).

    Examples
    --------
    >>> from linking_toolkit.audit.probable import records_sql
    >>> "from users" in records_sql()
    True
    """
    def clean(expr: str) -> str:
        return f"nullif(lower(strip_accents(trim({expr}))), '')"

    last_word = "regexp_extract(trim(u.name), '(\\S+)$', 1)"
    family = f"coalesce(u.family_name, if(strpos(trim(u.name), ' ') > 0, {last_word}, null))"

    return f"""
    select u.user_id as unique_id,
           {clean("coalesce(u.given_name, split_part(trim(u.name), ' ', 1))")} as given,
           {clean(family)} as family,
           {clean("split_part(split_part(u.email, '@', 1), '+', 1)")} as local,
           nullif(regexp_replace(split_part(split_part(u.email, '@', 1), '+', 1), '[^0-9]', '', 'g'), '')
               as digits,
           {clean("split_part(u.email, '@', 2)")} as domain,
           p.e164 as phone, {clean("u.username")} as username,
           nullif(regexp_replace(u.username, '[^0-9]', '', 'g'), '') as username_digits
    from (select * from {users}  -- one record per email: a shared email is the exact tier's
          qualify email is null or row_number() over (partition by email order by user_id) = 1) u
    left join {phones} p on p.raw = u.phone
    """  # noqa: S608 - table names of this package's


def model_settings() -> Any:
    """The model's splink settings (a ``SettingsCreator``), for any of splink's backends.

    Examples
    --------
    >>> from linking_toolkit.audit.probable import model_settings
    >>> type(model_settings()).__name__
    'SettingsCreator'
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def with_number(column: str, digits: str, thresholds: list[float]) -> Any:
        # A local part or a username is mostly the name again ("ada.lovelace1815"): its letters
        # alone would count the name twice. Its number tells people apart: the same number is
        # evidence for, a different one against, however alike the letters.
        return cl.CustomComparison(output_column_name=column, comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column),
            # written in DuckDB's SQL, transpiled for another backend (Spark reads "x" as text)
            cll.CustomLevel(f'"{digits}_l" = "{digits}_r"', label_for_charts="same number",
                            base_dialect_str="duckdb"),
            cll.CustomLevel(f'"{digits}_l" <> "{digits}_r"', label_for_charts="other number",
                            base_dialect_str="duckdb"),
            *(cll.JaroWinklerLevel(column, t) for t in thresholds),
            cll.ElseLevel(),
        ])

    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("given", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("family", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            with_number("local", "digits", [0.92, 0.8]),
            cl.ExactMatch("domain"),
            cl.ExactMatch("phone"),
            with_number("username", "username_digits", [0.92]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("family", "substr(given, 1, 1)"),
            block_on("given", "substr(family, 1, 1)"),
            block_on("local"),
            block_on("digits", "substr(family, 1, 1)"),
            block_on("phone"),
            block_on("username"),
        ],
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["digits", "username_digits"],
        max_iterations=20,
    )


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """splink logs every training step at INFO: the analyst gets a progress bar, not a transcript."""
    logger = logging.getLogger("splink")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def train_model(linker: Any, *, seed: int = 1) -> None:
    """Train ``linker`` (a splink ``Linker`` with :func:`model_settings`, on any backend) on its own
    records: the prior, u from random pairs (``seed``), m by EM (see the module's docstring).

    Examples
    --------
    >>> from linking_toolkit.audit.probable import model_settings, train_model
    >>> linker = splink.Linker(records, model_settings(), db_api)   # doctest: +SKIP
    >>> train_model(linker, seed=1)
    """
    from splink import block_on
    from splink.internals.exceptions import EMTrainingException

    linker.training.estimate_probability_two_random_records_match(
        ["l.phone = r.phone", block_on("given", "family")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed)
    for rule in (block_on("given", "family"), block_on("digits", "substr(family, 1, 1)")):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except EMTrainingException:  # no pair of this kind in the tenant: nothing to learn from it
            continue


def probable_pairs(connection: duckdb.DuckDBPyConnection, *, threshold: float = DEFAULT_THRESHOLD,
                   users: str = "users", phones: str = "phones", seed: int = 1,
                   trained: Callable[[str], object] | None = None) -> pa.Table:
    """Scored pairs above ``threshold``: unique_id_l, unique_id_r, match_probability, match_weight,
    the records' values (``given_l``, ``given_r``, ...) and each comparison's match weight
    (``mw_given``, ...), from a model trained on ``users`` itself; ``trained`` is called with
    ``"probable: training"`` once the model is trained.

    Examples
    --------
    >>> from linking_toolkit.audit.probable import probable_pairs
    >>> pairs = probable_pairs(engine.connection, threshold=0.99)   # doctest: +SKIP
    >>> pairs.column_names[:3]
    ['unique_id_l', 'unique_id_r', 'match_probability']
    """
    from splink import DuckDBAPI, Linker

    with _quiet_splink():
        api = DuckDBAPI(connection)
        records = api.register(connection.sql(records_sql(users, phones)).to_arrow_table(),
                               table_name="probable_records")
        linker = Linker(records, model_settings(), log_level=None)
        train_model(linker, seed=seed)
        if trained is not None:
            trained("probable: training")
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        return predictions.as_duckdbpyrelation().to_arrow_table()
