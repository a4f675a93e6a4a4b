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
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

IMPORTS = {"duckdb": ["duckdb", "pyarrow"], "floor": [], "ours": ["linking_toolkit.audit"]}


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
    """The audit's frames and its candidates; the answer packs users and groups for the checks."""
    from linking_toolkit.audit import audit_export_file, link_candidates

    result = audit_export_file(path)
    return len(result.users) * 1_000_000_000 + len(link_candidates(result, tiers="exact"))


CONTENDERS: dict[str, Callable[[str], int]] = {"duckdb": duckdb_read, "floor": json_floor, "ours": ours}


def main(name: str, path: str) -> None:
    for module in IMPORTS[name]:
        importlib.import_module(module)
    gc.collect()
    start = time.perf_counter()
    answer = CONTENDERS[name](path)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text()
    rss_mb = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]
    print(json.dumps({"seconds": seconds, "answer": answer, "rss_mb": rss_mb}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
