"""``link_candidates`` on Spark: the tiers' SQL of :mod:`.groups`, :mod:`.rules` and
:mod:`.probable`, transpiled (:mod:`.dialect`), over a :class:`~.spark_audit.SparkAudit`'s users.

The phones are put in E.164 once per distinct number, on the executors (``canonical_phone``), and
only the numbers two users or more share are checked valid (``shown_phone``), as on DuckDB. The
probable tier trains its splink model on splink's Spark backend; the pairs above the threshold
(a few per hundred users) are clustered on the driver as on DuckDB (:mod:`.clusters`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .clusters import cluster_pairs
from .dialect import spark_sql
from .groups import candidates_sql, exact_members_sql
from .probable import model_settings, records_sql, train_model
from .rules import alias_members_sql, phone_members_sql

__all__ = ["spark_candidates"]


def _phones(session: Any, region: str | None) -> None:
    """The view ``phones`` (raw, e164, shown) of the view ``users``, as ``rules.register_phones``."""
    region_sql = "null" if region is None else "'" + region.replace("'", "''") + "'"
    session.sql(f"""
        select raw, canonical_phone(raw, cast({region_sql} as string)) as e164, n
        from (select phone as raw, count(*) as n from users where phone is not null group by phone)
    """).createOrReplaceTempView("phones_read")  # noqa: S608 - a checked region code
    session.sql("""
        with holders as (select e164, sum(n) as n from phones_read where e164 is not null group by e164),
        shared as (select e164, shown_phone(e164) as shown from holders where n > 1)
        select p.raw, if(s.e164 is not null and s.shown is null, null, p.e164) as e164, s.shown
        from phones_read p left join shared s on s.e164 = p.e164
    """).cache().createOrReplaceTempView("phones")


def spark_candidates(users: Any, *, rank: Sequence[tuple[str, bool]], chosen: list[str],
                     default_region: str | None, threshold: float,
                     step: Callable[[str], None]) -> Any:
    """The candidate groups of ``users`` (a Spark DataFrame) as a Spark DataFrame, with the
    columns of ``link_candidates``' frame (``weights`` a map, NULL for the rule tiers).

    Examples
    --------
    >>> from linking_toolkit.audit import link_candidates
    >>> groups = link_candidates(spark_result)   # calls spark_candidates on Spark   # doctest: +SKIP
    >>> groups.where("risk = 'safe'").count()                                        # doctest: +SKIP
    """
    session = users.sparkSession
    users.createOrReplaceTempView("users")
    if "phone" in users.columns and {"phone", "probable"} & set(chosen):
        _phones(session, default_region)
    else:
        session.sql("select cast(null as string) as raw, cast(null as string) as e164, "
                    "cast(null as string) as shown where false").createOrReplaceTempView("phones")
    step("phones")
    rules = {"exact": exact_members_sql(), "alias": alias_members_sql(), "phone": phone_members_sql()}
    parts = [f"({rules[tier]})" for tier in chosen if tier != "probable"]
    weights: dict[str, dict[str, float]] = {}
    if "probable" in chosen:
        session.sql(spark_sql(" union all ".join(f"({sql})" for sql in rules.values()))) \
            .cache().createOrReplaceTempView("rule_members")
        parts = [f"(select * from rule_members where tier = '{tier}')"  # noqa: S608 - a name of TIERS
                 for tier in chosen if tier in rules]
        weights = _probable_members(session, threshold, step)
        parts.append("(select * from probable_members)")
    members = " union all ".join(parts)
    groups = session.sql(spark_sql(candidates_sql(rank, members=f"({members})")))
    for tier in chosen:
        step(tier)
    if not weights:
        return groups.selectExpr("*", "cast(null as map<string, double>) as weights")
    table = session.createDataFrame([(key, value) for key, value in weights.items()],
                                    "weights_key string, weights map<string, double>")
    joined = groups.join(table, (groups["key"] == table["weights_key"]) & (groups["tier"] == "probable"),
                         "left").drop("weights_key")
    return joined.orderBy(*_group_order())


def _group_order() -> list[Any]:
    from pyspark.sql import functions as F

    from .groups import TIERS

    tier = F.lit(None)
    for number, name in enumerate(TIERS):
        tier = F.when(F.col("tier") == name, number).otherwise(tier)
    return [tier.asc_nulls_last(), F.col("email").asc_nulls_last(), F.col("key").asc_nulls_last()]


def _probable_members(session: Any, threshold: float,
                      step: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """The view ``probable_members`` (the members of each probable cluster), from the pairs of a
    model trained on Spark; the weights of each cluster's weakest pair, by cluster key."""
    import logging

    from splink import Linker
    from splink.backends.spark import SparkAPI

    logger = logging.getLogger("splink")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        api = SparkAPI(spark_session=session, break_lineage_method="persist")
        # Materialised once: splink reads its records at every step, and they call Python UDFs.
        frame = session.sql(spark_sql(records_sql())).persist()
        frame.count()
        records = api.register(frame, table_name="probable_records")
        linker = Linker(records, model_settings(), log_level=None)
        train_model(linker)
        step("probable: training")
        linker.inference.predict(threshold_match_probability=threshold).as_spark_dataframe() \
            .createOrReplaceTempView("scored")
    finally:
        logger.setLevel(level)
    step("probable: scoring")
    similarities = ", ".join(f"jaro_winkler_similarity({c}_l, {c}_r) as sim_{c}"
                             for c in ("given", "family", "local", "username"))
    pairs = session.sql(spark_sql(f"""
        select *, {similarities} from scored p where not exists (
            select 1 from rule_members a join rule_members b on a.tier = b.tier and a.key = b.key
            where a.user_id = p.unique_id_l and b.user_id = p.unique_id_r)
        order by unique_id_l, unique_id_r""")).toArrow()  # noqa: S608 - this module's SQL
    clusters = cluster_pairs(pairs)
    members = clusters.members
    session.createDataFrame(members.to_pandas() if members.num_rows else [],
                            "tier string, key string, match_probability double, evidence string, "
                            "user_id string").createOrReplaceTempView("probable_members")
    return clusters.weights
