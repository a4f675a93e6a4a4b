"""``python -m linking_toolkit audit --out DIR``: audit a tenant without Jupyter, for scheduled runs;
``python -m linking_toolkit doctor [--fix | --undo FILE]``: check (and fix) the tenant's settings.

The tenant comes from ``AUTH0_DOMAIN``, ``AUTH0_CLIENT_ID``, ``AUTH0_CLIENT_SECRET`` (the
machine-to-machine application's secret; ``AUTH0_M2M_CLIENT_ID`` when its id differs) in the
environment or ``--env-file``; with none, an embedded sandbox tenant is audited (``--sandbox-users``
adds synthetic users to it), which is how to try the command. Writes ``users``, ``identities`` and
``candidates`` (CSV or Parquet) and ``summary.json`` to ``--out``.
Nothing secret is ever printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from .audit import METHODS, RULE_TIERS, Audit, audit_tenant, link_candidates
from .audit.candidates import check_candidate_options
from .audit.csv_export import guard_formulas
from .audit.engine import check_phone_paths
from .private_files import open_private, private_dir

__all__ = ["main", "write_audit"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linking_toolkit",
                                     description="Account-linking toolkit for Auth0: command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("audit", help="audit a whole tenant: identities, users, link candidates")
    run.add_argument("--out", required=True, type=Path, help="directory to write the frames to")
    run.add_argument("--format", choices=("csv", "parquet"), default="csv",
                     help="csv (default) or parquet")
    run.add_argument("--env-file", default=".env", help="file with AUTH0_* settings (default .env)")
    run.add_argument("--sandbox-users", type=int, default=0,
                     help="when no tenant is configured: synthetic users to add to the sandbox")
    run.add_argument("--seed", type=int, default=1, help="the sandbox's seed (default 1)")
    run.add_argument("--method", choices=METHODS, default="auto",
                     help="how to read the tenant: auto (paging, else an export job, else a partitioned"
                          " search), export or partitioned (default auto)")
    run.add_argument("--tiers", default=",".join(RULE_TIERS),
                     help=f"candidate tiers, comma-separated, or all (default {','.join(RULE_TIERS)})")
    run.add_argument("--default-region", default=None, metavar="CC",
                     help="region of phone numbers written without +, e.g. GB (default none)")
    run.add_argument("--phone-path", action="append", default=[], metavar="user_metadata.KEY",
                     help="where the tenant keeps a phone besides phone_number (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    check = commands.add_parser("doctor", help="check the tenant's settings the toolkit needs; --fix them")
    check.add_argument("--env-file", default=".env", help="file with AUTH0_* settings (default .env)")
    check.add_argument("--seed", type=int, default=1, help="the sandbox's seed, with no tenant (default 1)")
    check.add_argument("--spa-client-id", default=None, metavar="ID",
                       help="the single-page app of examples/spa-linking, to check it too")
    what = check.add_mutually_exclusive_group()
    what.add_argument("--fix", action="store_true",
                      help="make the changes (shown first, then asked) on the toolkit's own apps")
    what.add_argument("--undo", type=Path, metavar="FILE", help="put back what a --fix recorded in FILE")
    check.add_argument("--yes", action="store_true", help="with --fix: do not ask (for scripts)")
    check.add_argument("--undo-file", type=Path, default=None, metavar="FILE",
                       help="with --fix: where to record the changes (default doctor-undo-<time>.json)")
    return parser


def _for_file(frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """CSV cells are text: list columns become space-separated ids (user ids hold no spaces)."""
    if fmt == "parquet":
        return frame
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object and out[column].map(lambda v: isinstance(v, list)).any():
            out[column] = out[column].map(lambda v: " ".join(v) if isinstance(v, list) else v)
        elif out[column].dtype == object and out[column].map(lambda v: isinstance(v, dict)).any():
            out[column] = out[column].map(lambda v: json.dumps(v) if isinstance(v, dict) else v)
    return out


def write_audit(result: Audit, candidates: pd.DataFrame, out: Path, fmt: str = "csv") -> dict[str, Any]:
    """Write the frames and a summary; returns the summary.

    The frames hold every user's email and name, as the journal does: each file is created 0600 (a
    new ``out`` directory 0700), never through a symlink; a CSV cell a spreadsheet would run as a
    formula carries Auth0's guard, a leading ``'`` (Parquet keeps the real value).

    Examples
    --------
    >>> from pathlib import Path
    >>> from linking_toolkit.__main__ import write_audit
    >>> result = audit_tenant(admin)                                        # doctest: +SKIP
    >>> summary = write_audit(result, link_candidates(result), Path("audit-out"))
    """
    private_dir(out)
    for name, frame in (("users", result.users), ("identities", result.identities),
                        ("candidates", candidates)):
        frame = _for_file(frame, fmt)
        # pandas writes to a handle we opened 0600, so no file of ours is ever made by its default mode
        if fmt == "parquet":
            with open_private(out / f"{name}.parquet", "wb") as handle:
                frame.to_parquet(handle, index=False)
        else:
            with open_private(out / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
                guard_formulas(frame).to_csv(handle, index=False)
    summary = {
        "issuer": result.issuer,
        "taken_at": result.taken_at.isoformat(timespec="seconds"),
        "source": result.source,
        "users": len(result.users),
        "identities": len(result.identities),
        "candidate_groups": len(candidates),
        "groups_by_risk": {str(k): int(v) for k, v in
                           candidates["risk"].value_counts(sort=False).items()},
        "identities_per_connection": {str(k): int(v) for k, v in
                                      result.identities["connection"].value_counts().items()},
    }
    with open_private(out / "summary.json", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    return summary


def _audit(args: argparse.Namespace) -> int:
    from .errors import Auth0Error
    from .management import ManagementClient
    from .tenant import connect

    try:
        tenant = connect(env_file=args.env_file, sandbox_seed=args.seed, sandbox_users=args.sandbox_users,
                         quiet=True)
        if tenant.sandbox is not None:
            print(f"No AUTH0_DOMAIN configured: auditing a sandbox tenant at {tenant.issuer}",
                  file=sys.stderr)
        with tenant, ManagementClient.from_client_credentials(tenant) as admin:
            result = audit_tenant(admin, progress=not args.no_progress, method=args.method,
                                  phone_paths=args.phone_path)
            candidates = link_candidates(result, tiers=_tiers(args.tiers), default_region=args.default_region,
                                         progress=not args.no_progress)
            summary = write_audit(result, candidates, args.out, args.format)
    except Auth0Error as error:
        print(f"audit failed: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # --out names a file, or a directory we may not write to
        print(f"audit failed: cannot write the frames to {args.out}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    risks = ", ".join(f"{v} {k}" for k, v in summary["groups_by_risk"].items() if v)
    print(f"{summary['users']} users, {summary['identities']} identities, "
          f"{summary['candidate_groups']} candidate groups ({risks or 'none'}) -> {args.out}")
    return 0


def _show(frame: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 90):
        print(frame.to_string(index=False))


def _doctor(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .errors import Auth0Error
    from .tenant import connect
    from .tenant_settings import doctor, fix_tenant, undo_fix

    try:
        tenant = connect(env_file=args.env_file, sandbox_seed=args.seed, quiet=True)
    except Auth0Error as error:
        print(f"doctor failed: {error}", file=sys.stderr)
        return 1
    with tenant:
        if tenant.sandbox is not None:
            print(f"No AUTH0_DOMAIN configured: checking a sandbox tenant at {tenant.issuer}",
                  file=sys.stderr)
        try:
            if args.undo is not None:
                done = undo_fix(tenant, args.undo, spa_client_id=args.spa_client_id)
                _show(done)
                left = done[done["result"].str.startswith("left alone")]
                print(f"{len(done) - len(left)} of {len(done)} fields as before the fix.")
                return 1 if len(left) else 0
            if args.fix:
                planned = fix_tenant(tenant, spa_client_id=args.spa_client_id)
                if len(planned):
                    _show(planned.drop(columns=["result"]))
                    if not args.yes and not _confirm("Make this change?" if len(planned) == 1
                                                 else f"Make these {len(planned)} changes?"):
                        print("Nothing was changed.")
                        return 1
                    undo_file = args.undo_file or Path(f"doctor-undo-{datetime.now():%Y%m%d-%H%M%S}.json")
                    done = fix_tenant(tenant, undo_file, dry_run=False, spa_client_id=args.spa_client_id)
                    changed = int((done["result"] == "changed").sum())
                    print(f"{changed} changed; to put them back: python -m linking_toolkit doctor --undo "
                          f"{undo_file}")
                else:
                    print("Nothing to change.")
            report = doctor(tenant, spa_client_id=args.spa_client_id)
        except (Auth0Error, ValueError) as error:
            print(f"doctor failed: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"doctor failed: {error.strerror or error}", file=sys.stderr)
            return 1
    _show(report)
    ready = bool(report.attrs["ready"])
    print("Ready." if ready else "Not ready: change the rows marked ✗ (python -m linking_toolkit doctor "
          "--fix makes those it can); ? rows need the permission they name.")
    return 0 if ready else 1


def _confirm(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:  # no one to answer: no
        return False


def _tiers(text: str) -> str | list[str]:
    return "all" if text == "all" else [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status.

    Examples
    --------
    >>> from linking_toolkit.__main__ import main
    >>> main(['doctor'])                                  # doctest: +SKIP
    ...
    Ready.
    0
    """
    args = _parser().parse_args(argv)
    if args.command == "audit":
        if args.sandbox_users < 0:
            _parser().error("--sandbox-users must be >= 0")
        try:  # the options a run would refuse after the audit, refused before any request
            check_candidate_options(_tiers(args.tiers), args.default_region)
            check_phone_paths(args.phone_path)
        except ValueError as error:
            _parser().error(str(error))
        return _audit(args)
    if args.command == "doctor":
        if args.yes and not args.fix:
            _parser().error("--yes goes with --fix")
        return _doctor(args)
    return 2  # pragma: no cover - argparse refuses unknown commands first


if __name__ == "__main__":
    sys.exit(main())
