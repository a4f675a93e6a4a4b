"""The journal of a link plan: what ``apply_plan`` did, one JSON line per event, and what ``undo``
reads back.

The file holds full user profiles, so it is created readable by its owner only, by the very call
that creates it. Each line is flushed and synced before the request it announces is sent, so a
line cut short by a kill is one whose request never left: it is left out, and dropped at the next
write. Any other line that is not a record stops ``apply_plan`` and ``undo`` before they send
anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..private_files import private_fd

__all__ = [
    "RECORD_KEYS",
    "ROW_KEYS",
    "UNFINISHED",
    "Journal",
    "unfinished",
]

# What names one row of a plan in every record, and in apply_plan's result.
ROW_KEYS = ("primary_id", "secondary_id", "provider", "user_id")
# What every record holds; a line without them is not a record.
RECORD_KEYS = ("event", *ROW_KEYS)
# The events of a row begun whose outcome is unknown: a run stopped there (killed, the tenant in
# trouble, a deadline passed). "failed" is not one: the tenant refused the link and nothing stayed.
UNFINISHED = ("started", "stopped")


def unfinished(record: Mapping[str, Any]) -> bool:
    """Whether a row's last event leaves its outcome unknown (a run stopped there: look at the tenant).

    A "failed" written before refusals were told apart from a tenant in trouble (no ``refused``
    flag) counts as unfinished: it may have been either.

    Examples
    --------
    >>> from linking_toolkit.audit.journal import unfinished
    >>> unfinished({"event": "started"}), unfinished({"event": "done"})
    (True, False)
    >>> unfinished({"event": "failed", "refused": True})   # the tenant refused: nothing is unknown
    False
    """
    event = record.get("event")
    return event in UNFINISHED or (event == "failed" and "refused" not in record)


class Journal:
    """A JSON-lines file of what ``apply_plan`` did, one record per event, flushed and synced each.

    Records: ``{"event": ..., "primary_id", "secondary_id", "provider", "user_id", ...}``, the
    event one of "started" (it holds the secondary's full profile, the primary's ``user_metadata``
    before the merge and the merge's PATCH, so ``undo`` can restore them), "done" (linked by this
    run: its own request, or a stopped row found linked when it resumed, ``recovered``), "failed"
    (the tenant refused the link, ``refused``; what this run merged was taken back), "stopped" (the
    outcome is unknown: the tenant in trouble or a deadline passed), "already linked" (someone else
    linked it: ``undo`` leaves it) and "undone".

    Examples
    --------
    >>> import os, tempfile
    >>> from linking_toolkit.audit.journal import Journal
    >>> path = os.path.join(tempfile.mkdtemp(), "journal.jsonl")
    >>> journal = Journal(path)
    >>> journal.write({"event": "started", "primary_id": "auth0|1", "secondary_id": "google-oauth2|2",
    ...                "provider": "google-oauth2", "user_id": "2"})
    >>> [record["event"] for record in journal.read()], oct(os.stat(path).st_mode & 0o777)
    (['started'], '0o600')
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """Every record, in order. A last line without its newline is an event cut short by a
        kill (never acted on: each request follows a complete line) and is left out; any other
        line that is not a record is a ``ValueError`` naming it, before anything is sent."""
        if not self.path.exists():
            return []
        out = []
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    if not line.endswith("\n"):
                        continue  # cut short by a kill
                    raise ValueError(f"journal {self.path}, line {number}: not a JSON record "
                                     "(edited by hand?); nothing was done") from None
                if not isinstance(record, dict) or not all(
                        isinstance(record.get(k), str) for k in RECORD_KEYS):
                    raise ValueError(f"journal {self.path}, line {number}: a record needs "
                                     f"{', '.join(RECORD_KEYS)}; nothing was done")
                out.append(record)
        return out

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (stamped with the time), synced to disk before this returns."""
        line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **record},
                          separators=(",", ":"), default=str).encode("utf-8") + b"\n"
        # Created 0600 by the call that creates it, never through a symlink, a looser one tightened:
        # the profiles it holds are never readable by others.
        fd = private_fd(self.path, append=True, read=True)
        try:
            size = os.fstat(fd).st_size
            end = _after_last_newline(fd, size)
            if end != size:  # a line cut short by a kill: no request followed it, drop it
                os.ftruncate(fd, end)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def state(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The last event per (primary_id, secondary_id), with the snapshot of the first "started"
        of the current attempt (a retried row keeps the profile read before anything changed)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for record in self.read():
            entry = out.setdefault((record["primary_id"], record["secondary_id"]), {})
            if record["event"] == "started" and entry and unfinished(entry):
                entry["event"] = "started"
                continue
            if record["event"] == "started":  # a new attempt: nothing of the last one holds
                entry.clear()
            entry.update(record)
        return out


def _after_last_newline(fd: int, size: int, block: int = 1 << 16) -> int:
    """The offset just past the file's last newline (0 if none), read backwards a block at a time."""
    end = size
    while end > 0:
        start = max(0, end - block)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0
