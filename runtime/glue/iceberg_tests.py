"""The Glue runner on real Iceberg (Spark 3.5 + Iceberg 1.10), driven by
crates/mesh-core/tests/spark_iceberg.rs.

    python iceberg_tests.py MANIFEST

The manifest lists steps in execution order (job × run). meshkit already ran each step on its
own catalog and left, per step: the job spec (its S3 URIs pointed at local copies of the same
files), the run arguments, meshkit's outcome, its table's rows as Parquet, its metadata file and
the rows of every snapshot it retains. For each step this script, in one Spark session:

1. the first time a table is seen, creates it as Terraform does (unpartitioned, format v2);
2. runs the runner's real entry point, `glue_runner.main(["--job-spec", …, "--JOB_RUN_ID", …,
   "--param", …])`, with only the catalog swapped (`glue_catalog` becomes a Hadoop catalog over
   a local warehouse; the SQL is what it runs on Glue);
3. compares: the same outcome as meshkit (both commit or both fail), the JSON log lines, the
   table's rows (any order, exact decimals and timestamps, floats within 1e-9), one new snapshot
   with the expected operation (none after a failure);
4. reads meshkit's table with Spark (its metadata file) and every snapshot it retains by id.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402
from runner_tests import expect_raises, same_rows  # noqa: E402

# What one run commits on each engine, by write mode. Spark names a copy-on-write commit that
# only adds files `append` (a merge that matched nothing, an overwrite of empty partitions).
EXPECTED_OPERATIONS = {
    "append": {"append"},
    "overwrite": {"overwrite", "append"},
    "overwrite_partitions": {"overwrite", "append"},
    "merge": {"overwrite", "append"},
}


# The catalog name every job spec uses (mesh_core::artifacts::ICEBERG_CATALOG).
CATALOG = "glue_catalog"


def session(manifest: dict):
    from pyspark.sql import SparkSession

    work = manifest["workdir"]
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("meshkit-glue-runner-iceberg-tests")
        .config("spark.jars", manifest["jars"])
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", os.path.join(work, "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={work}")
    )
    # The catalog as the runner configures it (Terraform's CREATE TABLE and the Spark-written
    # tables need it before the first `main`); `main` sets the same values again.
    for k, v in gr.iceberg_conf({"iceberg": {"catalog": CATALOG}}, hadoop_catalog(manifest)).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def hadoop_catalog(manifest: dict) -> dict[str, str]:
    """The catalog swapped in for Glue's: same name, a Hadoop catalog over a local warehouse.
    No caching, so every statement sees the latest commit as on Glue."""
    return {
        "type": "hadoop",
        "warehouse": "file://" + os.path.join(manifest["workdir"], "warehouse"),
        "cache-enabled": "false",
    }


def parquet_rows(path: str) -> tuple[list[str], list[tuple]]:
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    return t.column_names, list(zip(*[t.column(i).to_pylist() for i in range(t.num_columns)])) if t.num_rows else []


def compare(df, path: str, what: str) -> int:
    names, want = parquet_rows(path)
    assert sorted(df.columns) == sorted(names), f"{what}: columns {df.columns} vs meshkit's {names}"
    got = [tuple(r) for r in df.select(*names).collect()]
    diff = same_rows(got, want)
    assert diff is None, f"{what} differs from meshkit's table: {diff}"
    return len(got)


def snapshots(spark, target: str) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in spark.sql(f"SELECT snapshot_id, operation FROM {target}.snapshots ORDER BY committed_at, snapshot_id").collect()]


def create_like_terraform(spark, spec: dict) -> None:
    """Glue's CreateTable with `open_table_format_input` (what `mesh render` generates): the
    manifest's columns, optional, no partition spec, no sort order, format version 2."""
    target = gr.target_name(spec)
    spark.sql(f"CREATE TABLE {target} ({gr.schema_ddl(spec['output']['columns'])}) USING iceberg TBLPROPERTIES ('format-version'='2')")


def file_uri(location: str) -> str:
    return "file://" + location if location.startswith("/") else location


# Rows Spark writes for meshkit to read: NULLs, microseconds, exact decimals, doubles.
ROWS = """SELECT id, CASE WHEN id % 5 = 0 THEN NULL ELSE concat('k', id % 7) END AS k,
  CAST(timestamp_micros(1767225600000000 + id * 3600123457 + {shift}) AS TIMESTAMP_NTZ) AS ts,
  CAST(id * 1.37 + {shift} AS DECIMAL(12, 2)) AS amount, id / 7.0D AS score
FROM range({start}, {end})"""


def spark_writes(spark, manifest: dict, name: str) -> str:
    """Writes one table state with Spark + Iceberg for meshkit to read (the Rust test reads it
    afterwards), and Spark's own read of it as Parquet under `spark_rows/{name}`."""
    target = f"glue_catalog.f01_interop.{name}"
    cols = "id bigint, k string, ts timestamp_ntz, amount decimal(12, 2), score double"
    props = "'format-version'='2'"
    if name == "mor_merge":
        props += ", 'write.merge.mode'='merge-on-read', 'write.update.mode'='merge-on-read', 'write.delete.mode'='merge-on-read'"
    partitioned = "PARTITIONED BY (days(ts))" if name == "spec_evolution" else ""
    spark.sql(f"CREATE TABLE {target} ({cols}) USING iceberg {partitioned} TBLPROPERTIES ({props})")
    batches = 6 if name == "compacted" else 2
    for b in range(batches):
        spark.sql(f"INSERT INTO {target} " + ROWS.format(start=b * 40, end=b * 40 + 40, shift=0))
    detail = ""
    if name in ("cow_merge", "mor_merge"):
        # Updates ids 30-59, deletes ids 60-69, inserts 80-99.
        source = ROWS.format(start=30, end=100, shift=17)
        spark.sql(
            f"MERGE INTO {target} t USING ({source}) s ON t.id = s.id "
            "WHEN MATCHED AND s.id BETWEEN 60 AND 69 THEN DELETE "
            "WHEN MATCHED THEN UPDATE SET * "
            "WHEN NOT MATCHED AND s.id >= 80 THEN INSERT *"
        )
        deletes = spark.sql(f"SELECT COUNT(*) FROM {target}.delete_files").collect()[0][0]
        assert (deletes > 0) == (name == "mor_merge"), f"{name}: {deletes} delete files"
        detail = f"{deletes} delete files"
    if name == "spec_evolution":
        spark.sql(f"ALTER TABLE {target} ADD PARTITION FIELD bucket(4, id)")
        spark.sql(f"ALTER TABLE {target} DROP PARTITION FIELD days(ts)")
        spark.sql(f"INSERT INTO {target} " + ROWS.format(start=100, end=140, shift=5))
        specs = spark.sql(f"SELECT DISTINCT spec_id FROM {target}.files").count()
        assert specs == 2, f"data files under {specs} partition specs"
        detail = "data files under 2 partition specs"
    if name == "compacted":
        r = spark.sql(f"CALL glue_catalog.system.rewrite_data_files(table => 'f01_interop.compacted', options => map('min-input-files', '2'))").collect()[0]
        assert r[0] > 0, f"rewrite_data_files rewrote nothing: {r}"
        detail = f"rewrite_data_files: {r[0]} files into {r[1]}"
    spark.table(target).write.mode("overwrite").parquet(os.path.join(manifest["workdir"], "spark_rows", name))
    return detail


def maintenance_tests(spark, manifest: dict, catalog: dict[str, str]) -> str:
    """The runner in maintenance mode on the runner's own `syn_append` after the last run."""
    m = manifest["maintenance"]
    with open(m["spec"]) as f:
        spec = json.load(f)
    t = spec["table"]
    target = f"{CATALOG}.{t['database']}.{t['table']}"
    work = manifest["workdir"]
    data = os.path.join(work, "warehouse", t["database"], t["table"], "data")
    old_debris, new_debris = os.path.join(data, "debris-old.parquet"), os.path.join(data, "debris-new.parquet")
    for path in (old_debris, new_debris):
        with open(path, "wb") as f:
            f.write(b"a killed writer's file")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_debris, (two_days_ago, two_days_ago))

    def run(s: dict, run_id: str) -> list[dict]:
        path = os.path.join(work, "specs", "maintenance", f"{run_id}.json")
        with open(path, "w") as f:
            json.dump(s, f)
        logs = io.StringIO()
        with contextlib.redirect_stderr(logs):
            assert gr.main(["--job-spec", path, "--JOB_RUN_ID", run_id], catalog=catalog) == 0
        return [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]

    def files() -> int:
        return spark.sql(f"SELECT COUNT(*) FROM {target}.files").collect()[0][0]

    before_snaps, before_files = snapshots(spark, target), files()
    # Unsafe settings are refused before any procedure runs.
    for key, value, message in [
        ("orphans", {"retention_days": 0.5}, "under the 1-day floor"),
        ("retention", {"snapshot_retention_days": 1, "retain_last": 0, "clean_expired_files": True}, "would expire the current snapshot"),
    ]:
        bad = copy.deepcopy(spec)
        bad["optimizers"][key] = value
        expect_raises(lambda bad=bad: run(bad, f"unsafe-{key}"), message)
        assert snapshots(spark, target) == before_snaps and files() == before_files and os.path.exists(old_debris), "an unsafe spec changed the table"

    # The manifest's settings: compaction (2 files at least), expiry older than 1 day keeping 2,
    # orphans older than 1 day.
    events = run(spec, "optimize-1")
    statements = [e["statement"] for e in events if e["event"] == "maintenance"]
    assert [s.split("(")[0].split(".")[-1] for s in statements] == ["rewrite_data_files", "expire_snapshots", "remove_orphan_files"], statements
    assert "'min-input-files', '2'" in statements[0] and "retain_last => 2" in statements[1], statements
    after = snapshots(spark, target)
    new = [op for sid, op in after if sid not in {s for s, _ in before_snaps}]
    assert new == ["replace"], f"compaction committed {new}"
    assert {s for s, _ in before_snaps} <= {s for s, _ in after}, "a snapshot younger than a day expired"
    compacted = files()
    assert compacted < before_files, (compacted, before_files)
    compare(spark.table(target), m["rows"], "the table after compaction")
    assert not os.path.exists(old_debris) and os.path.exists(new_debris), "orphan cleanup must remove only files older than its window"

    # Expiry with a zero window (allowed here; `mesh validate` keeps manifests at 1 day or more):
    # everything but the newest snapshot goes, the rows stay.
    now = copy.deepcopy(spec)
    now["optimizers"] = {"retention": {"snapshot_retention_days": 0, "retain_last": 1, "clean_expired_files": True}}
    run(now, "optimize-2")
    assert len(snapshots(spark, target)) == 1, snapshots(spark, target)
    compare(spark.table(target), m["rows"], "the table after expiry")
    return f"{before_files} files -> {compacted}, {len(before_snaps) + 1} snapshots -> 1"


def run_tests(manifest: dict) -> list[tuple[str, str | None]]:
    started = time.time()
    spark = session(manifest)
    print(json.dumps({"event": "spark session", "seconds": round(time.time() - started, 1)}), file=sys.stderr)
    catalog = hadoop_catalog(manifest)
    results: list[tuple[str, str | None]] = []
    created: set[str] = set()
    shaped: dict[str, list[str]] = {}
    read_snapshots: set[int] = set()

    def record(name: str, fn) -> None:
        t = time.time()
        try:
            detail = fn()
            results.append((name + (f" ({detail})" if detail else ""), None))
        except Exception:  # noqa: BLE001 - every failure is reported with its traceback
            results.append((name, traceback.format_exc()))
        print(json.dumps({"test": name, "seconds": round(time.time() - t, 2)}), file=sys.stderr)

    for step in manifest["steps"]:
        with open(step["spec"]) as f:
            spec = json.load(f)
        target = gr.target_name(spec)
        mode = spec["write"]["mode"]

        def runner_step(step=step, spec=spec, target=target, mode=mode):
            if target not in created:
                create_like_terraform(spark, spec)
                created.add(target)
            before = snapshots(spark, target)
            logs = io.StringIO()
            error = None
            with contextlib.redirect_stderr(logs):
                try:
                    assert gr.main(["--job-spec", step["spec"], *step["args"]], catalog=catalog) == 0
                except gr.JobFailed as e:
                    error = str(e)
            events = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
            run_id = step["args"][step["args"].index("--JOB_RUN_ID") + 1]
            assert events and all(e["run_id"] == run_id for e in events if "run_id" in e), events
            if step["meshkit_error"] is None:
                assert error is None, f"the runner failed where meshkit committed: {error}"
                assert any(e["event"] == "job committed" for e in events), events
            else:
                assert error is not None, f"the runner committed where meshkit failed: {step['meshkit_error']}"
                assert step["expect_error"] in error, f"the runner failed for another reason than meshkit: {error}"
                assert any(e["event"] == "job failed" for e in events), events
            # The layout DDL runs once; a later run finds the table as declared (only a column
            # added to the manifest since is added).
            layout = [e["statement"] for e in events if e["event"] == "table layout"]
            columns = [c["name"] for c in spec["output"]["columns"]]
            if step["run"] > 1 and error is None:
                added = [c for c in columns if c not in shaped[target]]
                want = [f"ALTER TABLE {target} ADD COLUMNS ({gr.schema_ddl([c for c in spec['output']['columns'] if c['name'] in added])})"] if added else []
                assert layout == want, f"run {step['run']} changed the table layout again: {layout}"
            if error is None:
                shaped[target] = columns
            rows = compare(spark.table(target), step["rows"], "the runner's table")
            after = snapshots(spark, target)
            new = [op for sid, op in after if sid not in {s for s, _ in before}]
            if error is not None:
                assert not new, f"a failed run committed {new}"
            else:
                assert len(new) == 1 and new[0] in EXPECTED_OPERATIONS[mode], f"{mode} committed {new}"
                assert step["meshkit_operation"] in EXPECTED_OPERATIONS[mode], f"meshkit's {mode} committed {step['meshkit_operation']}"
            return f"{rows} rows, runner {new or 'no commit'}, meshkit {step['meshkit_operation'] or 'no commit'}" + (
                f", both failed: {error.splitlines()[0][:120]}" if error else ""
            )

        record(f"run {step['run']} {step['job']}", runner_step)

        if step["metadata"]:

            def meshkit_read_by_spark(step=step):
                meta = file_uri(step["metadata"])
                compare(spark.read.format("iceberg").load(meta), step["rows"], "Spark's read of meshkit's table")
                checked = 0
                for snap in step["snapshots"]:
                    if snap["id"] in read_snapshots:
                        continue
                    df = spark.read.format("iceberg").option("snapshot-id", snap["id"]).load(meta)
                    compare(df, snap["rows"], f"Spark's read of meshkit's snapshot {snap['id']} ({snap['operation']})")
                    read_snapshots.add(snap["id"])
                    checked += 1
                return f"current + {checked} new snapshots by id"

            record(f"interop spark reads meshkit {step['job']} after run {step['run']}", meshkit_read_by_spark)

    if manifest.get("maintenance"):
        record(
            "maintenance mode: the manifest's compaction, expiry and orphan settings, unsafe settings refused",
            lambda: maintenance_tests(spark, manifest, catalog),
        )

    for state in manifest.get("meshkit_states", []):

        def read_state(state=state):
            meta = file_uri(state["metadata"])
            compare(spark.read.format("iceberg").load(meta), state["rows"], f"Spark's read of meshkit's table after the {state['name']}")
            # Every snapshot the state retains, read through the new metadata: maintenance must
            # not have deleted a file any of them reaches.
            for snap in state["snapshots"]:
                df = spark.read.format("iceberg").option("snapshot-id", snap["id"]).load(meta)
                compare(df, snap["rows"], f"Spark's read of snapshot {snap['id']} ({snap['operation']}) after the {state['name']}")
            return f"current + {len(state['snapshots'])} retained snapshots by id"

        record(f"interop spark reads meshkit {state['name']} state", read_state)

    for name in manifest.get("spark_tables", []):
        record(f"spark writes {name} for meshkit to read", lambda name=name: spark_writes(spark, manifest, name))

    spark.stop()
    print(json.dumps({"event": "done", "seconds": round(time.time() - started, 1)}), file=sys.stderr)
    return results


def main() -> int:
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    results = run_tests(manifest)
    failed = [(n, e) for n, e in results if e]
    for n, e in results:
        print(("FAIL " if e else "ok   ") + n)
        if e:
            print(e)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
