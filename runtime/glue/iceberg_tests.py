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
import shutil
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


def daily_cases(spark, manifest: dict, catalog: dict[str, str]) -> list[tuple[str, object]]:
    """The runner's daily operation against meshkit's (spark_iceberg.rs `daily_meshkit` ran the
    same sequence and left its tables' rows and state after every run). Cases run in order."""
    d = manifest["daily"]
    work = os.path.join(manifest["workdir"], "daily")
    specs = {}
    for job, path in d["specs"].items():
        with open(path) as f:
            specs[job] = json.load(f)

    def run_job(spec: dict, run_id: str, args: list[str] = ()) -> tuple[str | None, list[dict]]:
        path = os.path.join(work, "run-specs", f"{run_id}.json")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(spec, f)
        logs, error = io.StringIO(), None
        with contextlib.redirect_stderr(logs):
            try:
                assert gr.main(["--job-spec", path, "--JOB_RUN_ID", run_id, *args], catalog=catalog) == 0
            except gr.JobFailed as e:
                error = str(e)
        return error, [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]

    def at(spec: dict, location: str, table: str | None = None) -> dict:
        s = copy.deepcopy(spec)
        for inp in s["inputs"]:
            if inp["format"] != "iceberg":
                inp["location"] = location
        if table:
            s["output"]["table"] = table
        return s

    def files_read(events: list[dict]) -> list[int]:
        return [e["files_read"] for e in events if e["event"] == "incremental input"]

    def state(target: str, key: str) -> str | None:
        snaps, current = gr.table_snapshots(spark, target)
        return gr.latest_property(snaps, current, key)

    def new_snapshots(target: str, before: list[tuple[int, str]]) -> list[str]:
        return [op for sid, op in snapshots(spark, target) if sid not in {s for s, _ in before}]

    key = d["bookmark_key"]

    def inc_runs(spec: dict, runs: list[dict], label: str, inject_failure: bool) -> str:
        target = gr.target_name(spec)
        for r in runs:
            s = at(spec, r["state"], spec["output"]["table"])
            before = snapshots(spark, target)
            if inject_failure and r["run"] == 2:
                # Fails after reading the new files and computing the result, before the commit.
                bad = copy.deepcopy(s)
                bad["checks"].append({"name": "injected_failure", "severity": "error", "type": "sql", "sql": "SELECT * FROM output"})
                error, events = run_job(bad, f"{label}-run2-failing")
                assert error and "check `injected_failure` failed" in error, error
                assert files_read(events) == [r["files_read"]], events
                assert snapshots(spark, target) == before, "a failed run committed"
                assert state(target, key) == runs[0]["bookmark"], "a failed run moved the bookmark"
            error, events = run_job(s, f"{label}-run{r['run']}")
            assert error is None, f"run {r['run']}: {error}"
            assert files_read(events) == [r["files_read"]], f"run {r['run']}: files read {files_read(events)}, meshkit {r['files_read']}"
            compare(spark.table(target), r["rows"], f"the runner's {label} after run {r['run']}")
            new = new_snapshots(target, before)
            assert new == (["append"] if r["committed"] else []), f"run {r['run']} committed {new}, meshkit committed: {r['committed']}"
            got = state(target, key)
            assert got == r["bookmark"], f"run {r['run']}: bookmark {got} vs meshkit's {r['bookmark']}"
            if label == "inc_append" and r["run"] == 1:
                # meshkit continues from here (spark_iceberg.rs `meshkit_continues_runner`).
                meta = os.path.join(manifest["workdir"], "warehouse", spec["output"]["database"], spec["output"]["table"], "metadata")
                with open(os.path.join(meta, "version-hint.text")) as f:
                    version = f.read().strip()
                with open(d["handoff"], "w") as f:
                    json.dump({"inc_append_run1_metadata": os.path.join(meta, f"v{version}.metadata.json")}, f)
        return f"{len(runs)} runs, files read {[r['files_read'] for r in runs]}"

    def raw_append() -> str:
        spec = specs["inc_append"]
        create_like_terraform(spark, spec)
        return inc_runs(spec, d["inc_append"], "inc_append", True) + ", a failed run 2 left the bookmark and was redone"

    def continues_meshkit() -> str:
        # meshkit's table after its run 1, adopted by the Hadoop catalog under another name.
        spec = specs["inc_append"]
        meta = os.path.join(manifest["workdir"], "warehouse", spec["output"]["database"], "inc_append_mk", "metadata")
        os.makedirs(meta)
        shutil.copy(d["inc_append"][0]["metadata"].removeprefix("file://"), os.path.join(meta, "v1.metadata.json"))
        with open(os.path.join(meta, "version-hint.text"), "w") as f:
            f.write("1")
        adopted = copy.deepcopy(spec)
        adopted["output"]["table"] = "inc_append_mk"
        assert state(gr.target_name(adopted), key) == d["inc_append"][0]["bookmark"]
        return inc_runs(adopted, d["inc_append"][1:], "inc_append_mk", False)

    def iceberg_input() -> str:
        src_inp = specs["inc_ice"]["inputs"][0]
        src = gr.input_table(specs["inc_ice"], src_inp)
        spark.sql(f"CREATE TABLE {src} ({gr.schema_ddl(src_inp['columns'])}) USING iceberg TBLPROPERTIES ('format-version'='2')")
        jobs = ("inc_ice", "inc_ice_full")
        for job in jobs:
            create_like_terraform(spark, specs[job])
        detail = ""
        for r in d["inc_ice"]:
            rewrite = None
            if r["delete"]:
                before = snapshots(spark, src)
                spark.sql(f"DELETE FROM {src} WHERE {r['delete']}")
                rewrite = [(sid, op) for sid, op in snapshots(spark, src) if sid not in {s for s, _ in before}]
                assert len(rewrite) == 1, rewrite
                rewrite = rewrite[0]
            for f in r["appends"]:
                spark.read.parquet(f).writeTo(src).append()
            for job in jobs:
                want, target = r["jobs"][job], gr.target_name(specs[job])
                before = snapshots(spark, target)
                error, _ = run_job(specs[job], f"{job}-run{r['run']}")
                if want["error"]:
                    assert error is not None, f"{job} run {r['run']}: the runner committed where meshkit failed: {want['error']}"
                    assert f"snapshot {rewrite[0]} ({rewrite[1]}) rewrote rows after snapshot" in error, error
                    assert "on_rewrite = \"full_read\"" in error, error
                    detail = error.splitlines()[0]
                else:
                    assert error is None, f"{job} run {r['run']}: {error}"
                compare(spark.table(target), want["rows"], f"the runner's {job} after run {r['run']}")
                new = new_snapshots(target, before)
                assert len(new) == (1 if want["committed"] else 0), f"{job} run {r['run']} committed {new}, meshkit: {want['committed']}"
        return detail

    def time_range() -> str:
        spec = specs["tr_daily"]
        target = gr.target_name(spec)
        create_like_terraform(spark, spec)
        column = spec["time_range"]["column"]
        by_day = {}
        for r in d["tr_daily"]:
            before = snapshots(spark, target)
            error, events = run_job(at(spec, r["state"]), f"tr_daily-run{r['run']}", ["--run_date", r["run_date"]])
            assert error is None, f"run {r['run']}: {error}"
            assert [e["interval"] for e in events if e["event"] == "interval"] == [r["run_date"]], events
            compare(spark.table(target), r["rows"], f"the runner's tr_daily after run {r['run']} ({r['run_date']})")
            assert len(new_snapshots(target, before)) == 1
            got = state(target, d["intervals_key"])
            assert got == r["done"], f"run {r['run']}: intervals done {got} vs meshkit's {r['done']}"
            rows = {}
            for row in spark.table(target).collect():
                rows.setdefault(str(row[column]), set()).add(tuple(row))
            if r["run"] == 3:
                assert sorted(rows) == ["2026-01-30", "2026-01-31", "2026-02-01"], sorted(rows)
            if r["run"] == 4:
                changed = sorted(day for day in set(rows) | set(by_day) if rows.get(day) != by_day.get(day))
                assert changed == [r["run_date"]], f"re-running {r['run_date']} changed {changed}"
            by_day = rows
        part = gr.partitioning_of([(x[0], x[1]) for x in spark.sql(f"DESCRIBE TABLE {target}").collect()])
        assert [p.replace(" ", "") for p in part] == ["months(d)"], part
        return f"{len(d['tr_daily'])} runs into {part}, intervals done {d['tr_daily'][-1]['done']}"

    def interval_files() -> str:
        """A one-day re-run of a day-partitioned table holding many days deletes and adds only
        that day's data files (a MERGE that deletes through NOT MATCHED BY SOURCE rewrites them
        all); the day gets meshkit's rows, the state lands in main's snapshot, and a run failing
        after its write, before the publish, leaves main as it was."""
        run = d["tr_daily"][1]
        day = run["run_date"]
        spec = at(specs["tr_daily"], run["state"], "tr_daily_by_day")
        spec["output"]["partition_by"] = ["days(d)"]
        target = gr.target_name(spec)
        create_like_terraform(spark, spec)
        spark.sql(f"ALTER TABLE {target} ADD PARTITION FIELD days(d)")
        # Twenty days around the re-run one, each its own partition, several rows a day.
        spark.sql(
            f"INSERT INTO {target} SELECT date_add(DATE '2026-01-21', CAST(id DIV 3 AS INT)) AS d, concat('seed', id % 3) AS cat, "
            "CAST(id AS DECIMAL(14, 2)) AS amount, id AS n FROM range(60)"
        )

        def files() -> dict[str, set[str]]:
            by_day: dict[str, set[str]] = {}
            for path, part in spark.sql(f"SELECT file_path, partition.d_day FROM {target}.files").collect():
                by_day.setdefault(str(part), set()).add(path)
            return by_day

        def other_days() -> list[tuple]:
            return sorted(tuple(r) for r in spark.sql(f"SELECT * FROM {target} WHERE d <> DATE '{day}'").collect())

        before_files, before_rows = files(), other_days()
        assert len(before_files) == 20 and day in before_files, sorted(before_files)
        head = gr.table_snapshots(spark, target)[1]

        def refuse(branch: str) -> None:
            raise gr.JobFailed(f"injected failure before publishing {branch}")

        gr.BEFORE_PUBLISH = refuse
        try:
            error, _ = run_job(spec, "tr_daily_by_day-failing", ["--run_date", day])
        finally:
            gr.BEFORE_PUBLISH = None
        assert error and "injected failure" in error, error
        # The dropped branch's snapshot stays in the metadata until expiry; main must not move.
        assert gr.table_snapshots(spark, target)[1] == head, "a run failing before its publish moved main"
        refs = {r[0] for r in spark.sql(f"SELECT name FROM {target}.refs").collect()}
        assert refs == {"main"}, f"the failed run left refs {refs}"
        assert files() == before_files and other_days() == before_rows, "a failed run changed the table"

        error, _ = run_job(spec, "tr_daily_by_day", ["--run_date", day])
        assert error is None, error
        snaps, current = gr.table_snapshots(spark, target)
        published = next(s for s in snaps if s["snapshot_id"] == current)
        new = [published["operation"]]
        assert published["parent_id"] == head and new[0] in EXPECTED_OPERATIONS["overwrite"], f"main moved from {head} to {published}"
        summary = published["summary"]
        after_files = files()
        deleted, added = int(summary.get("deleted-data-files", 0)), int(summary.get("added-data-files", 0))
        assert deleted == len(before_files[day]) and added == len(after_files[day]), (
            f"replacing {day} deleted {deleted} and added {added} data files; that day had {len(before_files[day])} "
            f"and has {len(after_files[day])}, the table {sum(len(f) for f in before_files.values())}"
        )
        assert after_files[day].isdisjoint(before_files[day]), "the day's old files are still live"
        assert {k: v for k, v in after_files.items() if k != day} == {k: v for k, v in before_files.items() if k != day}, "another day's files changed"
        assert other_days() == before_rows, "another day's rows changed"
        names, want = parquet_rows(run["rows"])
        want = [r for r in want if str(r[names.index("d")]) == day]
        got = [tuple(r) for r in spark.table(target).where(f"d = DATE '{day}'").select(*names).collect()]
        diff = same_rows(got, want)
        assert want and diff is None, f"{day} after the re-run differs from meshkit's: {diff}"
        assert summary.get(d["intervals_key"]) == day, summary
        tag = gr.state_tag(spark, target)
        assert tag == current, f"the mesh-state tag is at {tag}, main at {current}"
        return f"{deleted} deleted + {added} added of {sum(len(f) for f in before_files.values())} files, operation {new[0]}"

    return [
        ("daily incremental raw append: 3 runs equal meshkit's (files read, bookmark bytes, no commit when nothing is new); a failure before the commit leaves the bookmark", raw_append),
        ("daily the runner continues meshkit's bookmark", continues_meshkit),
        ("daily incremental Iceberg input: only appended rows; a delete in between fails naming it, or reads in full (on_rewrite = full_read)", iceberg_input),
        ("daily time-range job into a month-partitioned table: every day kept, a re-run replaces only its day", time_range),
        ("daily time-range re-run of one day of a 20-day day-partitioned table: only that day's files deleted and added; a failure before the publish leaves main", interval_files),
    ]


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
                # A run with nothing new (an incremental merge whose files were all read) commits
                # nothing on either engine.
                done = "job committed" if step["meshkit_operation"] else "nothing to commit"
                assert any(e["event"] == done for e in events), events
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
            elif step["meshkit_operation"] is None:
                assert not new, f"meshkit committed nothing, the runner {new}"
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

    if manifest.get("daily"):
        for name, fn in daily_cases(spark, manifest, catalog):
            record(name, fn)

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
