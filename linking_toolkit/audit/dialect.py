"""The audit's SQL, written once in DuckDB's dialect, as Spark SQL: the rules cannot drift.

sqlglot transpiles it (as splink does for its own SQL), then four things are made to mean on
Spark what they mean on DuckDB:

- an array index out of range is NULL on DuckDB and an error on Spark's ANSI mode (Spark 4's
  default): ``a[i]`` becomes ``get(a, i)``, NULL there too; a text slice ``t[2:]`` is ``substr``;
- ``jaro_winkler_similarity`` is ``jaro_winkler`` on Spark (splink's Scala UDF jar);
- ``strip_accents`` and ``normalise_email_py`` are the functions the Spark engine registers.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["spark_sql"]

_RENAMED = {"JAROWINKLER_SIMILARITY": "jaro_winkler", "JARO_WINKLER_SIMILARITY": "jaro_winkler"}


def _spark_meaning(node: Any) -> Any:
    from sqlglot import expressions as exp

    sliced = isinstance(node, exp.Bracket) and len(node.expressions) == 1 \
        and isinstance(node.expressions[0], exp.Slice)
    if sliced:
        # text[2:] (DuckDB counts from 1, as substr does): the text from its second character
        start = node.expressions[0].this
        return exp.Anonymous(this="substr", expressions=[node.this.copy(), start.copy()])
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        return exp.Anonymous(this="get", expressions=[node.this.copy(), node.expressions[0].copy()])
    if isinstance(node, exp.Anonymous | exp.Func):
        name = node.sql_name() if not isinstance(node, exp.Anonymous) else str(node.this)
        if name.upper() in _RENAMED:
            arguments = [a.copy() for a in node.args.values() if isinstance(a, exp.Expression)]
            return exp.Anonymous(this=_RENAMED[name.upper()], expressions=arguments)
    return node


@functools.lru_cache(maxsize=256)
def spark_sql(duckdb_sql: str) -> str:
    """``duckdb_sql`` (one statement of the audit's) in Spark SQL, meaning the same.

    Examples
    --------
    >>> from linking_toolkit.audit.dialect import spark_sql
    >>> spark_sql("select list_sort([3, 1, 2])[1] as first")
    'SELECT GET(ARRAY_SORT(ARRAY(3, 1, 2)), 0) AS first'
    """
    import sqlglot  # only a Spark audit needs it

    spark = sqlglot.transpile(duckdb_sql, read="duckdb", write="spark")[0]
    tree = sqlglot.parse_one(spark, read="spark")
    return tree.transform(_spark_meaning).sql(dialect="spark")
