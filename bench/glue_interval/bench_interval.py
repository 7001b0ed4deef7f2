"""bench/glue_interval: one day of a day-partitioned 730-day Iceberg table replaced by the Glue
runner's time-range write on Spark 3.5 + Iceberg 1.10 (local), the old statement against the new.

    python bench/glue_interval/bench_interval.py WORKDIR RESULT_JSON

Environment: BENCH_ICEBERG_JARS (bench/lib.sh), DAYS (730), ROWS_PER_DAY (2000), REPEAT (3),
BENCH_SPARK_MASTER (local[2]), BENCH_SPARK_DRIVER_MEMORY (8g).

Every variant goes through the runner's own `commit_with_state` (write on a branch created at
the state's snapshot, one fast-forward of main carrying the job state, the `mesh-state` tag
moved), so only the statements differ:

- `before`: the MERGE the runner ran up to commit 0d000e0 (`ON false … WHEN NOT MATCHED BY
  SOURCE AND <interval> THEN DELETE`), kept here verbatim as the baseline;
- `delete_insert`: `DELETE FROM … WHERE <interval>` then `INSERT INTO`, two snapshots on the
  branch, then the same single fast-forward (the alternative the issue names);
- `after`: what `interval_write_statements` generates now (the interval matched by a marker row).

Before every timed run the table is set back to the seeded snapshot, so each run replaces the
same day of the same 730 files. Each run's table must equal the expected rows (row count and an
order-insensitive checksum) and main's snapshot must carry the state; otherwise the bench fails.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import date, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import spark_iceberg as si  # noqa: E402

gr = si.glue_runner

DAYS = int(os.environ.get("DAYS", "730"))
ROWS_PER_DAY = int(os.environ.get("ROWS_PER_DAY", "2000"))
REPEAT = int(os.environ.get("REPEAT", "3"))
FIRST_DAY = date(2025, 1, 1)
REPLACED = FIRST_DAY + timedelta(days=DAYS // 2)

COLUMNS = [
    {"name": "d", "spark_type": "date"},
    {"name": "store_id", "spark_type": "int"},
    {"name": "sku", "spark_type": "string"},
    {"name": "units", "spark_type": "bigint"},
    {"name": "amount", "spark_type": "decimal(14,2)"},
]
SPEC = {
    "job": "bench_interval",
    "project": "bench",
    "env": "bench",
    "glue_job": "bench-glue-interval",
    "iceberg": {"catalog": si.CATALOG},
    "output": {"reference": "curated.events", "database": "bench", "table": "events", "columns": COLUMNS},
    "time_range": {"column": "d", "column_type": "date", "grain": "day", "intervals_key": "mesh.state.bench_interval.intervals"},
    "write": {"mode": "overwrite"},
}


def before_statements(spec: dict, start, end, relation: str = gr.SOURCE_VIEW) -> list[str]:
    """The runner's interval write before this bench's change (commit 0d000e0), verbatim."""
    target = gr.target_name(spec)
    tr = spec["time_range"]
    cols = ", ".join(gr.quote(c["name"]) for c in spec["output"]["columns"])
    predicate = gr.interval_predicate("t." + gr.quote(tr["column"]), tr["column_type"], start, end)
    return [
        "\n".join(
            [
                f"MERGE INTO {target} t",
                f"USING (SELECT {cols} FROM {relation}) s",
                "ON false",
                "WHEN NOT MATCHED THEN INSERT *",
                f"WHEN NOT MATCHED BY SOURCE AND {predicate} THEN DELETE",
            ]
        )
    ]


def delete_insert_statements(spec: dict, start, end, relation: str = gr.SOURCE_VIEW) -> list[str]:
    target = gr.target_name(spec)
    tr = spec["time_range"]
    cols = ", ".join(gr.quote(c["name"]) for c in spec["output"]["columns"])
    predicate = gr.interval_predicate(gr.quote(tr["column"]), tr["column_type"], start, end)
    return [f"DELETE FROM {target} WHERE {predicate}", f"INSERT INTO {target} SELECT {cols} FROM {relation}"]


VARIANTS = {"before": before_statements, "delete_insert": delete_insert_statements, "after": gr.interval_write_statements}


def machine() -> dict:
    mem = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_bytes": mem, "load_average_at_start": os.getloadavg()}


def main(workdir: str, result_path: str) -> int:
    started = time.perf_counter()
    warehouse = os.path.join(workdir, "warehouse")
    spark, session_seconds = si.session(workdir, warehouse, "meshkit-bench-glue-interval")
    target = gr.target_name(SPEC)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS bench_iceberg.bench")
    spark.sql(f"CREATE TABLE {target} ({gr.schema_ddl(COLUMNS)}) USING iceberg "
              "PARTITIONED BY (days(d)) TBLPROPERTIES ('format-version'='2')")
    t = time.perf_counter()
    spark.sql(
        f"INSERT INTO {target} SELECT date_add(DATE '{FIRST_DAY}', CAST(id DIV {ROWS_PER_DAY} AS INT)) AS d, "
        "CAST(id % 97 AS INT) AS store_id, concat('sku-', id % 1009) AS sku, id AS units, "
        f"CAST(id % 100000 / 100.0 AS DECIMAL(14, 2)) AS amount FROM range({DAYS * ROWS_PER_DAY})"
    )
    seed_seconds = time.perf_counter() - t
    seed = si.last_snapshot(spark, target)["snapshot_id"]
    seed_files, seed_bytes = si.files(spark, target)
    day_files = spark.sql(f"SELECT COUNT(*) FROM {target}.files WHERE partition.d_day = DATE '{REPLACED}'").collect()[0][0]
    print(f"seeded {DAYS} days x {ROWS_PER_DAY} rows: {seed_files} files, {seed_bytes / 2**20:.1f} MiB, {seed_seconds:.1f} s; "
          f"{REPLACED} has {day_files} file(s)", file=sys.stderr)

    start, end = gr.interval("day", str(REPLACED))
    # The job's result for the day, materialised as the runner materialises it before writing.
    src = spark.sql(
        f"SELECT DATE '{REPLACED}' AS d, CAST(id % 89 AS INT) AS store_id, concat('new-', id) AS sku, id * 7 AS units, "
        f"CAST(id / 10.0 AS DECIMAL(14, 2)) AS amount FROM range({ROWS_PER_DAY})"
    ).localCheckpoint()
    src.createOrReplaceTempView(gr.SOURCE_VIEW)
    expected = si.checksum(
        spark.sql(f"SELECT * FROM {target} VERSION AS OF {seed} WHERE d <> DATE '{REPLACED}' UNION ALL SELECT * FROM {gr.SOURCE_VIEW}")
    )
    label = gr.interval_label("day", start)

    def one(variant: str, run_id: str) -> dict:
        spark.sql(f"CALL bench_iceberg.system.set_current_snapshot(table => 'bench.events', snapshot_id => {seed})").collect()
        state = gr.JobState(spark, SPEC)
        assert state.current == seed, (state.current, seed)
        before_ids = {s["snapshot_id"] for s in state.snapshots}
        stmts = VARIANTS[variant](SPEC, start, end)
        props = {SPEC["time_range"]["intervals_key"]: label}
        t0 = time.perf_counter()
        gr.commit_with_state(spark, SPEC, state, props, stmts, run_id)
        seconds = time.perf_counter() - t0
        snaps, current = gr.table_snapshots(spark, target)
        new = [s for s in snaps if s["snapshot_id"] not in before_ids]
        total = {k: sum(int(s["summary"].get(k, 0)) for s in new) for k in ("deleted-data-files", "added-data-files", "deleted-records", "added-records", "removed-files-size", "added-files-size")}
        head = next(s for s in snaps if s["snapshot_id"] == current)
        assert head["summary"].get(SPEC["time_range"]["intervals_key"]) == label, f"{variant}: main's snapshot lacks the state"
        assert gr.state_tag(spark, target) == current, f"{variant}: the mesh-state tag is not at main"
        got = si.checksum(spark.table(target))
        assert got == expected, f"{variant}: table {got} != expected {expected}"
        return {"variant": variant, "seconds": seconds, "snapshots": [s["operation"] for s in sorted(new, key=lambda s: s["timestamp_ms"])], **total}

    runs = []
    # One untimed round first: the JVM compiles the plans' code on its first runs.
    for variant in VARIANTS:
        r = one(variant, f"warmup-{variant}")
        print(f"warm-up {variant}: {r['seconds']:.2f} s", file=sys.stderr)
    for i in range(REPEAT):
        for variant in VARIANTS:
            r = one(variant, f"run{i}-{variant}")
            r["round"] = i
            runs.append(r)
            print(json.dumps(r), file=sys.stderr)

    summary = {}
    for variant in VARIANTS:
        rs = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "median_seconds": round(statistics.median(r["seconds"] for r in rs), 3),
            "seconds": [round(r["seconds"], 3) for r in rs],
            "deleted_data_files": rs[0]["deleted-data-files"],
            "added_data_files": rs[0]["added-data-files"],
            "deleted_records": rs[0]["deleted-records"],
            "added_records": rs[0]["added-records"],
            "removed_bytes": rs[0]["removed-files-size"],
            "added_bytes": rs[0]["added-files-size"],
            "snapshots_on_main": rs[0]["snapshots"],
        }
        assert all((r["deleted-data-files"], r["added-data-files"]) == (rs[0]["deleted-data-files"], rs[0]["added-data-files"]) for r in rs), rs
    result = {
        "bench": "glue_interval",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "engine": "Spark 3.5 + Iceberg 1.10 (local), Hadoop catalog",
        "spark_master": os.environ.get("BENCH_SPARK_MASTER", "local[2]"),
        "parameters": {"days": DAYS, "rows_per_day": ROWS_PER_DAY, "repeat": REPEAT, "replaced_day": str(REPLACED), "partitioning": "days(d)"},
        "table": {"files": seed_files, "bytes": seed_bytes, "rows": DAYS * ROWS_PER_DAY, "files_of_the_day": day_files},
        "session_seconds": round(session_seconds, 2),
        "seed_seconds": round(seed_seconds, 2),
        "expected": expected,
        "summary": summary,
        "runs": runs,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(result_path)), exist_ok=True)
    with open(result_path, "w") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")
    b, a = summary["before"], summary["after"]
    print(f"{'variant':<14} {'deleted files':>13} {'added files':>11} {'snapshots':>9} {'median s':>9}  runs")
    for variant, s in summary.items():
        print(f"{variant:<14} {s['deleted_data_files']:>13} {s['added_data_files']:>11} {len(s['snapshots_on_main']):>9} {s['median_seconds']:>9.2f}  {s['seconds']}")
    print(f"after vs before: files rewritten {a['deleted_data_files']} vs {b['deleted_data_files']}, "
          f"wall time {b['median_seconds'] / a['median_seconds']:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
