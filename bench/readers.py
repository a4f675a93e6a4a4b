"""One reading of a users-export file, in a fresh process, for ``bench/audit.py``.

``python bench/readers.py NAME PATH`` prints ``{"seconds", "answer", "rss_mb"}`` as JSON. Each
contender imports only what it uses, before the clock starts (a notebook has its imports done), so
the time is the reading's and the peak RSS its own (VmHWM, this process's high-water mark;
``ru_maxrss`` can carry a parent's across exec).
"""

from __future__ import annotations

import gc
import gzip
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

IMPORTS = {"duckdb": ["duckdb", "pyarrow"], "floor": [], "ours": ["linking_toolkit.audit"],
           "spark": ["linking_toolkit.audit", "pyspark.sql"]}


def duckdb_read(path: str) -> int:
    """The anchor: DuckDB reading the export into an Arrow table, nothing else (its own defaults)."""
    import duckdb

    with duckdb.connect() as db:
        query = f"select * from read_ndjson('{path}', format = 'newline_delimited')"  # noqa: S608 - our file
        return db.sql(query).to_arrow_table().num_rows


def json_floor(path: str) -> int:
    """Reading and parsing the export with the standard library alone: nothing kept, nothing built."""
    count = 0
    with gzip.open(path, "rb") as handle:
        for line in handle:
            if json.loads(line):
                count += 1
    return count


def ours(path: str) -> int:
    """The audit's frames and its candidates (the default, rule tiers); the answer packs users and
    groups for the checks."""
    from linking_toolkit.audit import audit_export_file, link_candidates

    result = audit_export_file(path)
    return len(result.users) * 1_000_000_000 + len(link_candidates(result))


def spark_session() -> object:
    """A local[2] session (as the tests'), started before the clock: a notebook has its session."""
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "8")
               .config("spark.driver.memory", "3g").config("spark.jars", similarity_jar_location())
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def on_spark(path: str) -> int:
    """The same audit on Spark: its frames and candidates as Spark DataFrames, counted (Spark is lazy:
    the counts are what make it do the work)."""
    from linking_toolkit.audit import audit_export_file, link_candidates

    result = audit_export_file(path, engine=SESSION["spark"])
    users = result.users.cache()
    return users.count() * 1_000_000_000 + link_candidates(result).count()


SESSION: dict[str, object] = {}
CONTENDERS: dict[str, Callable[[str], int]] = {"duckdb": duckdb_read, "floor": json_floor, "ours": ours,
                                               "spark": on_spark}


def _peak_mb() -> float:
    """This process's high-water mark, and its descendants' (the JVM of a Spark session)."""
    import psutil

    total = 0.0
    for pid in [os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:  # a helper that has ended since
            continue
        total += int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]
    return total


def main(name: str, path: str) -> None:
    for module in IMPORTS[name]:
        importlib.import_module(module)
    if name == "spark":
        SESSION["spark"] = spark_session()
    gc.collect()
    start = time.perf_counter()
    answer = CONTENDERS[name](path)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "answer": answer, "rss_mb": _peak_mb()}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
