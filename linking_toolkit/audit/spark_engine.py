"""The audit's engine past one machine: a Spark session reads an export (a path or any URI the
session can read: ``s3://``, ``abfss://``, ``dbfs:/``) and builds the users and identities frames
as Spark DataFrames, with the same rules as DuckDB's engine (:mod:`.engine`).

Installed with ``pip install 'linking_toolkit[spark]'`` (pyspark 4, Java 17+). ``engine="spark"``
uses the active session, or starts a local one; a ``SparkSession`` passed in is used as it is
(see the README's "On a cluster" for what a Databricks or EMR session sets).

The frames' SQL is Spark's own (exploding identities is where the two engines' SQL differ); the
candidate rules are DuckDB's SQL transpiled (:mod:`.dialect`), and the functions they call that
Spark lacks are registered here: ``normalise_email_py`` (the non-ASCII emails), ``strip_accents``,
and the phone rules' ``canonical_phone`` and ``shown_phone``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import unicodedata
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .csv_export import csv_select
from .engine import PROFILE_FIELDS, export_format, normalise_email
from .rules import canonical_phone, shown_phone

__all__ = ["SPARK_RAW_SCHEMA", "frames_sql", "is_spark_frame", "read_export", "spark_session"]

# Auth0's export shape as Spark reads it (Spark's JSON reader keeps an object column typed string
# as its JSON text: user_metadata is read as DuckDB reads it).
SPARK_RAW_SCHEMA = (
    "user_id string, email string, email_verified boolean, name string, created_at string, "
    "last_login string, logins_count bigint, blocked boolean, identities array<struct<connection: string, "
    "provider: string, user_id: string, isSocial: boolean, profileData: struct<email: string, "
    "email_verified: boolean, name: string>>>, "
    + ", ".join(f"{name} string" for name in PROFILE_FIELDS) + ", user_metadata string")


def _pyspark() -> Any:
    try:
        with warnings.catch_warnings():  # pyspark warns about pandas 3, which the audit is tested on
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
            import pyspark.sql
    except ImportError:
        raise ImportError("the Spark engine needs pyspark: pip install 'linking_toolkit[spark]'") from None
    return pyspark.sql


def is_spark_frame(value: Any) -> bool:
    """Whether ``value`` is a Spark DataFrame (without importing pyspark when it is not).

    Examples
    --------
    >>> import pandas as pd
    >>> from linking_toolkit.audit.spark_engine import is_spark_frame
    >>> is_spark_frame(pd.DataFrame())
    False
    """
    return type(value).__module__.startswith("pyspark.")


def spark_session(engine: Any = "spark") -> Any:
    """The session of ``engine``: a ``SparkSession`` as it is, or (``"spark"``) the active one, else a
    local one with splink's similarity functions (its jar) and UTC as the session's time zone. The
    audit's functions are registered on it and a checkpoint folder set when it has none.

    Examples
    --------
    >>> from linking_toolkit.audit.spark_engine import spark_session
    >>> session = spark_session("spark")        # the active session, else a local one  # doctest: +SKIP
    >>> session.conf.get("spark.sql.session.timeZone")                                   # doctest: +SKIP
    'UTC'
    """
    sql = _pyspark()
    if isinstance(engine, sql.SparkSession):
        session = engine
    elif engine == "spark":
        session = sql.SparkSession.getActiveSession()
        if session is None:
            from splink.backends.spark import similarity_jar_location

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers with the audit's packages

            session = (sql.SparkSession.builder.appName("linking_toolkit audit")
                       .config("spark.jars", similarity_jar_location())
                       .config("spark.sql.session.timeZone", "UTC")
                       .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    else:
        raise ValueError(f"engine is 'duckdb', 'spark' or a SparkSession, not {engine!r}")
    with warnings.catch_warnings():  # pandas_udf repeats pyspark's warning about pandas 3
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        _register_functions(session)
    if session.sparkContext.getCheckpointDir() is None:  # splink breaks lineage through it
        session.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="linking-audit-spark-"))
    return session


def _strip_accents(text: str | None) -> str | None:
    if text is None or text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _register_functions(session: Any) -> None:
    from pyspark.sql.functions import pandas_udf

    def mapped(function: Any) -> Any:
        @pandas_udf("string")  # type: ignore[call-overload]
        def udf(values: pd.Series) -> pd.Series:
            return pd.Series([function(v) if isinstance(v, str) else None for v in values.astype(object)],
                             dtype=object)
        return udf

    def phone(values: pd.Series, regions: pd.Series) -> pd.Series:
        return pd.Series([canonical_phone(v.strip(), r if isinstance(r, str) else None)
                          if isinstance(v, str) else None
                          for v, r in zip(values.astype(object), regions.astype(object), strict=True)],
                         dtype=object)

    session.udf.register("normalise_email_py", mapped(normalise_email))
    session.udf.register("strip_accents", mapped(_strip_accents))
    session.udf.register("shown_phone", mapped(shown_phone))
    session.udf.register("canonical_phone", pandas_udf(phone, "string"))  # type: ignore[call-overload]


# Python's str.strip() on an ASCII string removes these (engine._ASCII_WHITESPACE), as a Java regex.
_STRIPPED = r"[ \\t\\n\\r\\x0B\\f\\x1C-\\x1F]+"
_ASCII = r"'^[\\x00-\\x7F]*$'"


def _normalised(column: str) -> str:
    """normalise_email in Spark SQL: ASCII (nearly every email) here, stripped as str.strip()
    strips it and lowered; the rest by Python's own rule. Spark hands a Python UDF every row of its
    column whatever the CASE says, so it is given NULL but for the non-ASCII emails."""
    strip = f"regexp_replace({column}, '^{_STRIPPED}|{_STRIPPED}$', '')"
    return (f"case when {column} is null then null when {column} rlike '^[!-~]([ -~]*[!-~])?$' "
            f"then lower({column}) when {column} rlike {_ASCII} then nullif(lower({strip}), '') "
            f"else normalise_email_py(if({column} rlike {_ASCII}, null, {column})) end")


def _phone(paths: Sequence[str]) -> str:
    found = [f"get_json_object(user_metadata, '$.{path.split('.', 1)[1]}')" for path in paths]
    return f"nullif(trim(coalesce({', '.join(['phone_number', *found])})), '')"


def frames_sql(raw: str, phone_paths: Sequence[str] = ()) -> tuple[str, str]:
    """The users and the identities of the view ``raw`` (Auth0's export shape), in Spark SQL, with
    the columns and rules of :mod:`.engine`'s frames.

    Examples
    --------
    >>> from linking_toolkit.audit.spark_engine import frames_sql
    >>> users_sql, identities_sql = frames_sql("raw")
    >>> "from raw" in users_sql.lower()
    True
    """
    times = ("try_cast(created_at as timestamp) as created_at, "
             "try_cast(last_login as timestamp) as last_login, coalesce(logins_count, 0) as logins_count")
    users = f"""
        select user_id, get(identities, 0).connection as connection, get(identities, 0).provider as provider,
               {_normalised('email')} as email, email as email_raw, email_verified, name, {times},
               cast(if(identities is null, 0, size(identities)) as bigint) as identities,
               coalesce(blocked, false) as blocked, given_name, family_name, nickname, username,
               {_phone(phone_paths)} as phone
        from {raw}"""  # noqa: S608 - a view name of this module's
    own = "i.profileData is not null"
    identities = f"""
        select r.user_id as owner, i.connection, i.provider, i.user_id, position = 0 as is_primary,
               coalesce(i.isSocial, false) as is_social,
               if({own}, {_normalised('i.profileData.email')}, {_normalised('r.email')}) as email,
               if({own}, i.profileData.email, r.email) as email_raw,
               if({own}, i.profileData.email_verified, r.email_verified) as email_verified,
               if({own}, i.profileData.name, r.name) as name,
               try_cast(r.created_at as timestamp) as created_at,
               try_cast(r.last_login as timestamp) as last_login,
               coalesce(r.logins_count, 0) as logins_count
        from {raw} r lateral view posexplode(r.identities) exploded as position, i
        where i.user_id is not null"""  # noqa: S608
    return users, identities


def _is_csv(path: str) -> bool:
    if "://" not in path and os.path.isfile(path):
        return export_format(path) == "csv"
    name = path.lower().removesuffix(".gz")
    return name.endswith(".csv")


def _read_csv(session: Any, path: str) -> Any:
    """A CSV export as the raw view's columns: the same select as DuckDB's reading of it
    (:func:`~.csv_export.csv_select`, Auth0's escaping undone), transpiled."""
    from .dialect import spark_sql
    from .engine import SQL_TYPES

    text = session.read.option("header", True).option("escape", '"').option("multiLine", True).csv(path)
    view = f"linking_audit_csv_{abs(hash((path, os.getpid())))}"
    text.createOrReplaceTempView(view)
    types = {**SQL_TYPES, "user_metadata": "VARCHAR"}  # Spark has no JSON type: its text
    return session.sql(spark_sql(f"select {csv_select(text.columns, types)} from {view}"))  # noqa: S608


def read_export(session: Any, path: str, *, phone_paths: Sequence[str] = ()) -> tuple[Any, Any]:
    """``(users, identities)`` of a users-export file (NDJSON or CSV, gzipped or not) as Spark
    DataFrames.

    Examples
    --------
    >>> from linking_toolkit.audit.spark_engine import read_export, spark_session
    >>> users, identities = read_export(spark_session(), "users.json.gz")   # doctest: +SKIP
    >>> identities.columns[:3]                                              # doctest: +SKIP
    """
    if _is_csv(path):
        raw = _read_csv(session, path)
    else:
        raw = session.read.schema(SPARK_RAW_SCHEMA).json(path)
    view = f"linking_audit_raw_{abs(hash((path, os.getpid())))}"
    raw.createOrReplaceTempView(view)
    users_sql, identities_sql = frames_sql(view, phone_paths)
    return session.sql(users_sql), session.sql(identities_sql)
