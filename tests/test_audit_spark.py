"""The audit on Spark (a local[2] session): one export of a 20 000-user synthetic tenant read by
both engines gives the same frames and the same candidates of every rule tier row by row, the
probable tier the same precision and recall, and plans made and applied from Spark frames in
chunks, as from pandas ones."""

from __future__ import annotations

import itertools
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from linking_toolkit import ManagementClient, connect
from linking_toolkit.audit import (
    AUDIT_FIELDS,
    SparkAudit,
    apply_plan,
    audit_export_file,
    link_candidates,
    plan_links,
)
from linking_toolkit.errors import UnsafeLink
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import SyntheticTenant

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
PHONES = ["user_metadata.phone"]
IDENTITY_FIELDS = [f"identities[{i}].{field}" for i in range(3)
                   for field in ("connection", "provider", "user_id", "isSocial")]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local session for the module: two cores, no UI, few shuffle partitions (small data)."""
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("linking_toolkit tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2").config("spark.default.parallelism", "2")
               .config("spark.jars", similarity_jar_location())
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ManagementClient, Path, Any]]:
    """A 20 000-user synthetic tenant, its NDJSON export (with the metadata phones) and its truth."""
    folder = tmp_path_factory.mktemp("spark-export")
    with Sandbox(seed=4, users=20_000) as sandbox, connect(sandbox=sandbox, quiet=True) as handle, \
            ManagementClient.from_client_credentials(handle) as admin:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        job = admin.create_users_export(format="json", fields=[*AUDIT_FIELDS, "user_metadata"])
        path = admin.download_export(admin.wait_for_job(job["id"], poll=0.05), folder / "users.json.gz")
        for name, fields in (("users.csv.gz", [*AUDIT_FIELDS, "user_metadata"]),
                             ("fields.csv.gz", [f for f in AUDIT_FIELDS if f != "identities"]
                              + IDENTITY_FIELDS)):
            job = admin.create_users_export(format="csv", fields=fields)
            admin.download_export(admin.wait_for_job(job["id"], poll=0.05), folder / name)
        yield admin, path, truth


@pytest.fixture(scope="module")
def audits(spark: Any, tenant: Any) -> tuple[Any, SparkAudit]:
    _admin, path, _truth = tenant
    return (audit_export_file(path, phone_paths=PHONES),
            audit_export_file(path, engine=spark, phone_paths=PHONES))


def sorted_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_both_engines_read_one_export_into_equal_frames(audits: Any) -> None:
    duck, on_spark = audits
    assert isinstance(on_spark, SparkAudit) and len(duck.users) > 20_000
    users = on_spark.to_pandas("users")
    pd.testing.assert_frame_equal(sorted_by(users, ["user_id"]), sorted_by(duck.users, ["user_id"]))
    keys = ["owner", "connection", "user_id"]
    pd.testing.assert_frame_equal(sorted_by(on_spark.to_pandas("identities"), keys),
                                  sorted_by(duck.identities, keys))
    assert users["phone"].notna().sum() > 1000  # the metadata phones were read on both


@pytest.mark.parametrize("name", ["users.csv.gz", "fields.csv.gz"])
def test_a_csv_export_reads_on_spark_as_on_duckdb(spark: Any, tenant: Any, name: str) -> None:
    path = tenant[1].with_name(name)
    phones = PHONES if name == "users.csv.gz" else []
    duck, on_spark = audit_export_file(path, phone_paths=phones), audit_export_file(path, engine=spark,
                                                                                     phone_paths=phones)
    assert len(duck.users) > 20_000 and duck.users["email"].notna().all()
    pd.testing.assert_frame_equal(sorted_by(on_spark.to_pandas("users"), ["user_id"]),
                                  sorted_by(duck.users, ["user_id"]))
    keys = ["owner", "connection", "user_id"]
    pd.testing.assert_frame_equal(sorted_by(on_spark.to_pandas("identities"), keys),
                                  sorted_by(duck.identities, keys))


@pytest.fixture(scope="module")
def rule_tiers(audits: Any, tenant: Any) -> tuple[pd.DataFrame, Any]:
    """The rule tiers' groups: DuckDB's frame and Spark's own."""
    duck, on_spark = audits
    region = tenant[2].phone_region
    return (link_candidates(duck, default_region=region),
            link_candidates(on_spark, default_region=region).cache())


def test_every_rule_tier_gives_the_same_groups_primaries_risks_and_evidence(audits: Any,
                                                                           rule_tiers: Any) -> None:
    expected, groups = rule_tiers
    found = audits[1].to_pandas(groups)
    assert set(expected["tier"]) == {"exact", "alias", "phone"} and len(expected) > 500
    pd.testing.assert_frame_equal(found, expected)  # in the same order too


def test_sql_over_a_spark_audit_and_saved_as_parquet_readable_by_its_owner_only(
        audits: Any, spark: Any, tmp_path: Path) -> None:
    duck, on_spark = audits
    question = "select connection, count(*) as linked from identities where not is_primary group by all"
    answer = on_spark.sql(question + " order by connection").toArrow()
    expected = duck.sql(question + " order by connection")
    assert answer.column("linked").to_pylist() == expected["linked"].tolist()
    assert on_spark.sql("select count(*) as n from candidates").first().n == len(duck.sql(
        "select * from candidates"))
    saved = on_spark.save(tmp_path / "audit")
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o700
    with pytest.raises(FileExistsError):
        on_spark.save(tmp_path / "audit")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        on_spark.save(tmp_path / "link", overwrite=True)
    assert not (tmp_path / "elsewhere").exists()
    reopened = SparkAudit.open(saved, engine=spark)
    pd.testing.assert_frame_equal(sorted_by(reopened.to_pandas("users"), ["user_id"]),
                                  sorted_by(duck.users, ["user_id"]))
    with pytest.raises(ValueError, match="a part is one of"):
        on_spark.to_pandas("groups")


def test_a_plan_of_spark_candidates_equals_the_pandas_plan_and_applies_in_chunks(
        rule_tiers: Any, audits: Any, tenant: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    expected, groups = rule_tiers
    duck, on_spark = audits
    spark_plan = plan_links(groups, on_spark)
    pandas_plan = plan_links(expected, duck)
    pd.testing.assert_frame_equal(on_spark.to_pandas(spark_plan), pandas_plan)

    admin = tenant[0]
    import linking_toolkit.audit.plan as plan_module

    monkeypatch.setattr(plan_module, "CHUNK", 2)  # three chunks of the five rows below
    few = spark_plan.where("tier = 'exact' and risk = 'safe'").limit(5)
    dry = apply_plan(admin, few, dry_run=True)
    assert len(dry) == 5
    pd.testing.assert_frame_equal(dry, apply_plan(admin, on_spark.to_pandas(few), dry_run=True))

    unsafe = spark_plan.where("risk <> 'safe'")
    before = admin.stats.requests
    with pytest.raises(UnsafeLink, match=r"plan row\(s\) are unsafe"):
        apply_plan(admin, unsafe, dry_run=False, journal=tmp_path / "journal.jsonl")
    assert admin.stats.requests == before  # refused on Spark, before any request
    assert not (tmp_path / "journal.jsonl").exists()


@pytest.fixture(scope="module")
def every_tier(audits: Any, tenant: Any) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Every tier's groups on each engine: DuckDB's frame, Spark's as pandas, and Spark's own."""
    duck, on_spark = audits
    region = tenant[2].phone_region
    groups = link_candidates(on_spark, tiers="all", default_region=region).cache()
    return link_candidates(duck, tiers="all", default_region=region), on_spark.to_pandas(groups), groups


def pairs(found: pd.DataFrame, tier: str) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for ids in found[found["tier"] == tier]["user_ids"]
            for p in itertools.combinations(ids, 2)}


@pytest.mark.timeout(1800)  # splink's training on Spark: many small jobs, slow on two shared cores
def test_the_probable_tier_on_spark_is_as_precise_and_complete_as_on_duckdb(every_tier: Any,
                                                                           tenant: Any) -> None:
    expected, found, _ = every_tier
    truth = tenant[2]
    rules = found["tier"] != "probable"
    pd.testing.assert_frame_equal(found[rules].drop(columns="weights").reset_index(drop=True),
                                  expected[expected["tier"] != "probable"].drop(columns="weights")
                                  .reset_index(drop=True))
    same_person = set().union(*truth.person_pairs().values())
    own = truth.person_pairs()["probable"]

    def scores(frame: pd.DataFrame) -> tuple[float, float]:
        predicted = pairs(frame, "probable")
        return len(predicted & same_person) / len(predicted), len(predicted & own) / len(own)

    (precision, recall), (duck_precision, duck_recall) = scores(found), scores(expected)
    assert precision >= 0.95 and recall >= 0.80
    assert abs(precision - duck_precision) <= 0.01 and abs(recall - duck_recall) <= 0.01
    probable = found[found["tier"] == "probable"]
    assert (probable["risk"] == "review: probable match").all()
    assert (probable["match_probability"] >= 0.99).all()
    weights = probable.iloc[0]["weights"]
    assert set(weights) == {"prior", "given name", "family name", "email local part", "domain", "phone",
                            "username"}
