"""``SparkAudit``: an audit whose users and identities stay Spark DataFrames, on the cluster.

What ``Audit`` is on one machine (:mod:`.frames`), for a tenant past one: ``link_candidates``
gives its groups as a Spark DataFrame too, ``plan_links`` a plan, and ``apply_plan`` reads that
plan in chunks. Nothing here collects the rows to the driver but ``to_pandas`` of a part, which
the analyst asks for (a filtered part, or a small tenant's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from .engine import candidates_frame, system_allocator, to_frame
from .groups import candidates_sql
from .spark_plan import typed_plan

__all__ = ["PARTS", "SparkAudit", "spark_to_pandas"]

PARTS = ("users", "identities")


@dataclass
class SparkAudit:
    """A tenant at one moment, on Spark: ``users`` and ``identities`` as Spark DataFrames with the
    columns of :class:`~.frames.Audit`'s frames (``to_pandas`` gives them in the same dtypes).

    Examples
    --------
    >>> from linking_toolkit.audit import audit_export_file
    >>> result = audit_export_file("s3://bucket/users.json.gz", engine="spark")   # doctest: +SKIP
    >>> result.sql("select count(*) from identities").show()                     # doctest: +SKIP
    >>> result.to_pandas(result.users.limit(5))                                  # doctest: +SKIP
    """

    users: Any
    identities: Any
    source: str = "file"
    issuer: str | None = None
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def session(self) -> Any:
        return self.users.sparkSession

    def __repr__(self) -> str:
        return f"<SparkAudit {self.issuer or 'tenant'} source={self.source} (Spark DataFrames)>"

    def to_pandas(self, part: Any = "users") -> pd.DataFrame:
        """A part as pandas, in the dtypes of ``Audit``'s frames: ``"users"``, ``"identities"``, or
        a Spark DataFrame of this audit's (a filtered part, ``link_candidates``' groups, a plan).
        It is all brought to the driver: filter a large tenant's first."""
        frame = getattr(self, part) if isinstance(part, str) and part in PARTS else part
        if isinstance(part, str) and part not in PARTS:
            raise ValueError(f"a part is one of {', '.join(PARTS)} or a Spark DataFrame, not {part!r}")
        return spark_to_pandas(frame)

    def sql(self, query: str) -> Any:
        """The answer to an analyst's own question, in Spark SQL, as a Spark DataFrame: the query
        sees ``users``, ``identities`` and ``candidates`` (the exact tier with the default rank)."""
        from .dialect import spark_sql

        self.users.createOrReplaceTempView("users")
        self.identities.createOrReplaceTempView("identities")
        self.session.sql(spark_sql(candidates_sql())).createOrReplaceTempView("candidates")
        return self.session.sql(query)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
        """Write ``users`` and ``identities`` as Parquet under ``path`` (a folder, or a URI the
        session writes to), to read back with :meth:`open`. A local folder is made 0700 first (a
        symbolic link refused): it holds every user's email."""
        where = os.fspath(path)
        if "://" not in where:
            if os.path.islink(where):
                raise ValueError(f"{where} is a symbolic link: the audit is saved in a real folder only")
            if os.path.exists(where) and not overwrite:
                raise FileExistsError(f"{where} exists: pass overwrite=True to replace it")
            os.makedirs(where, mode=0o700, exist_ok=True)
            os.chmod(where, 0o700)
        mode = "overwrite" if overwrite else "errorifexists"
        for part in PARTS:
            getattr(self, part).write.mode(mode).parquet(f"{where.rstrip('/')}/{part}")
        return where

    @classmethod
    def open(cls, path: str | os.PathLike[str], engine: Any = "spark") -> SparkAudit:
        """An audit kept by :meth:`save`."""
        from .spark_engine import spark_session

        session = spark_session(engine)
        where = os.fspath(path).rstrip("/")
        return cls(users=session.read.parquet(f"{where}/users"),
                   identities=session.read.parquet(f"{where}/identities"), source="file")


def spark_to_pandas(frame: Any) -> pd.DataFrame:
    """A Spark DataFrame of the audit's (a part, candidates, a plan) as pandas in its dtypes.

    Examples
    --------
    >>> from linking_toolkit.audit.spark_audit import spark_to_pandas
    >>> spark_to_pandas(result.users.limit(10)).dtypes["user_id"]     # doctest: +SKIP
    string[pyarrow]
    """
    table = frame.toArrow()
    with system_allocator():
        if "primary_id" in table.column_names and "user_ids" in table.column_names:
            out = candidates_frame(table)
            if "weights" in table.column_names:
                out["weights"] = pd.Series([None if w is None else dict(w)
                                            for w in table.column("weights").to_pylist()], dtype=object)
            return out
        if "secondary_id" in table.column_names:
            return typed_plan(table.to_pandas())
        return to_frame(table)
