"""Link plans from Spark candidates: ``plan_links`` in Spark SQL, and the plan read back to the
driver in chunks for ``apply_plan`` (``toLocalIterator``: one partition at a time, never the
whole plan), with the checks that must see every row done on Spark before any request.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator
from typing import Any

import pandas as pd

from .groups import RISKS, TIERS

__all__ = ["CHUNK", "plan_chunks", "spark_plan_links", "typed_plan", "unsafe_rows"]

# Plan rows per chunk handed to apply_plan: a few megabytes on the driver.
CHUNK = 10_000
_TEXT = ("primary_id", "secondary_id", "provider", "user_id", "connection", "reasons", "evidence")


def spark_plan_links(candidates: Any, identities: Any | None) -> Any:
    """``plan.plan_links`` of a Spark candidates frame, as a Spark DataFrame of its columns: one
    row per secondary, a user in groups of two tiers planned once, by the stronger (the first
    group in the candidates' order: tier, then email, then key).

    Examples
    --------
    >>> from linking_toolkit.audit import plan_links
    >>> plan = plan_links(spark_groups, spark_result)   # calls spark_plan_links  # doctest: +SKIP
    >>> plan.columns[:2]                                                          # doctest: +SKIP
    ['primary_id', 'secondary_id']
    """
    from pyspark.sql import functions as F

    strayed = candidates.where(~F.array_contains("user_ids", F.col("primary_id"))).limit(1).collect()
    if strayed:
        group = strayed[0]
        raise ValueError(f"primary_id {group.primary_id} is not one of the group of {group.email}: "
                         f"{', '.join(group.user_ids)}")
    tier = F.lit(len(TIERS))
    for number, name in enumerate(reversed(TIERS)):
        tier = F.when(F.col("tier") == name, len(TIERS) - 1 - number).otherwise(tier)
    exploded = F.posexplode("user_ids").alias("position", "sid")
    rows = candidates.select("*", tier.alias("tier_order"), exploded).where("sid <> primary_id")
    order = [F.col("tier_order"), F.col("email").asc_nulls_last(), F.col("key").asc_nulls_last(),
             F.col("position")]
    from pyspark.sql import Window

    first = Window.partitionBy("sid").orderBy(*order)
    rows = rows.withColumn("planned", F.row_number().over(first)).where(F.col("planned") == 1)
    provider, short = F.split_part("sid", F.lit("|"), F.lit(1)), F.expr("substr(sid, instr(sid, '|') + 1)")
    if identities is not None:
        main = identities.where("is_primary").select(
            F.col("owner").alias("sid"), F.col("provider").cast("string").alias("main_provider"),
            F.col("user_id").alias("main_user_id"),
            F.col("connection").cast("string").alias("main_connection"))
        rows = rows.join(main, "sid", "left")
        known = F.col("main_user_id").isNotNull()
        provider = F.when(known, F.col("main_provider")).otherwise(provider)
        short = F.when(known, F.col("main_user_id")).otherwise(short)
        connection = F.col("main_connection")
    else:
        connection = F.lit(None).cast("string")
    return rows.orderBy(*order).select(
        F.col("primary_id"), F.col("sid").alias("secondary_id"), provider.alias("provider"),
        short.alias("user_id"), connection.alias("connection"), F.col("tier"), F.col("risk"),
        F.col("reasons"), F.col("evidence"), F.lit(False).alias("allow_unsafe"))


def unsafe_rows(plan: Any, allow_unsafe: Collection[str]) -> tuple[int, list[tuple[str, str]]]:
    """How many rows of a Spark plan ``apply_plan`` must refuse (unsafe, not allowed), and the first
    five (secondary_id, why), counted on Spark: the rules of ``plan._Allowances``.

    Examples
    --------
    >>> from linking_toolkit.audit.spark_plan import unsafe_rows
    >>> count, first = unsafe_rows(spark_plan, allow_unsafe=set())   # doctest: +SKIP
    >>> count, first[:1]                                             # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    tier = F.coalesce(F.col("tier").cast("string"), F.lit("exact")) if "tier" in plan.columns \
        else F.lit("exact")
    reason = F.col("reasons") if "reasons" in plan.columns else F.col("risk")
    why = (F.when((tier != "exact") & (F.col("risk") == "safe"), F.concat(F.lit("tier "), tier,
                                                                           F.lit(" is never safe")))
           .when(F.col("risk") != "safe", reason.cast("string")))
    allowed = F.col("allow_unsafe") if "allow_unsafe" in plan.columns else F.lit(False)
    refused = plan.select("secondary_id", why.alias("why"), allowed.alias("allowed")).where(
        F.col("why").isNotNull() & ~F.col("allowed") & ~F.col("secondary_id").isin(list(allow_unsafe)))
    count = refused.count()
    return count, [(r.secondary_id, r.why) for r in refused.limit(5).collect()] if count else []


def plan_chunks(plan: Any, size: int = CHUNK) -> Iterator[pd.DataFrame]:
    """The rows of a Spark plan, ``size`` at a time, as pandas plans in ``plan_links``' dtypes.

    Examples
    --------
    >>> from linking_toolkit.audit.spark_plan import plan_chunks
    >>> for chunk in plan_chunks(spark_plan, size=10_000):      # doctest: +SKIP
    ...     print(len(chunk))
    """
    rows = (row.asDict() for row in plan.toLocalIterator(prefetchPartitions=True))
    while batch := list(itertools.islice(rows, size)):
        yield typed_plan(pd.DataFrame(batch, columns=plan.columns))


def typed_plan(frame: pd.DataFrame) -> pd.DataFrame:
    """A plan's rows read from Spark, in ``plan_links``' dtypes.

    Examples
    --------
    >>> import pandas as pd
    >>> from linking_toolkit.audit.spark_plan import typed_plan
    >>> plan = typed_plan(pd.DataFrame({"primary_id": ["auth0|a"], "secondary_id": ["auth0|b"],
    ...                                 "risk": ["safe"]}))
    >>> str(plan.dtypes["risk"])
    'category'
    """
    frame = frame.astype({c: "string" for c in _TEXT if c in frame})
    if "tier" in frame:
        frame["tier"] = pd.Categorical(frame["tier"], categories=TIERS)
    frame["risk"] = pd.Categorical(frame["risk"], categories=RISKS)
    if "allow_unsafe" in frame:
        frame["allow_unsafe"] = frame["allow_unsafe"].astype(bool)
    return frame
