"""Spark 3.5 + Iceberg 1.10 baseline of bench/merge (what the Glue runner runs on AWS Glue 5):
the full source upserted with the runner's `MERGE INTO` (copy-on-write, Iceberg's default) into
another copy of the base table meshkit merged into.

usage: spark_merge.py MESHKIT_JSON OUT_JSON WORKDIR

1. adopts the base snapshot's metadata file (`bench.base` in meshkit's SQLite catalog; the copies
   meshkit and pyiceberg merge into were registered from it) as `bench.spark` in a Hadoop
   catalog under WORKDIR/spark-warehouse;
2. starts Spark local[2] (BENCH_SPARK_MASTER, BENCH_SPARK_DRIVER_MEMORY, default 8g) and reads
   the source into memory (cached), as meshkit's merge gets it in memory; neither is timed, the
   start is reported as `session_seconds`;
3. times what the runner does for a merge with the default duplicate rule: `prepare_source`
   (shaping casts, required-column and duplicate-key checks, the work meshkit's `Table::merge`
   also does) and the `MERGE INTO` of `write_statements`; both are also reported apart;
4. checks the table: rows = base + inserts, `status = 'updated'` rows = updates, and the same
   row count and checksum as meshkit's `bench.meshkit_full` (read by Spark from its metadata file).
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import spark_iceberg as si  # noqa: E402
from spark_iceberg import glue_runner as gr  # noqa: E402

rust = json.load(open(sys.argv[1]))
out_path, workdir = sys.argv[2], os.path.abspath(sys.argv[3])
warehouse = os.path.join(workdir, "spark-warehouse")
base_rows = rust["table"]["rows"]
changes = rust["changes"]
updates = changes - changes // 5
inserts = changes // 5
mesh = rust["meshkit_full"]

target = si.adopt(si.metadata_location(rust["catalog"], "bench", "base"), warehouse, "bench", "spark")
spark, session_s = si.session(workdir, warehouse, "meshkit-bench-merge")
print(f"spark session: {session_s:.1f} s", flush=True)

# Outside the timing, as meshkit's `Table::load` is: the table's metadata and schema.
schema = spark.table(target).schema
before_files, before_bytes = si.files(spark, target)
si.warm([rust["source"]])
source = spark.read.parquet(rust["source"]).cache()
if source.count() != changes:
    sys.exit(f"{rust['source']} holds {source.count()} rows, expected {changes}")

# The job spec fields the runner's merge statements read; columns as the table declares them.
spec = {
    "job": "bench_merge",
    "iceberg": {"catalog": si.CATALOG},
    "sql": {"file": "source.parquet"},
    "output": {
        "database": "bench",
        "table": "spark",
        "reference": "bench.spark",
        "columns": [{"name": f.name, "spark_type": f.dataType.simpleString(), "nullable": f.nullable} for f in schema.fields],
    },
    "write": {"mode": "merge", "keys": ["id"], "on_duplicate": {"rule": "error"}},
}
statements = gr.write_statements(spec)
print("\n".join(statements), flush=True)

started = time.perf_counter()
gr.prepare_source(spark, spec, source)
prepared = time.perf_counter()
for s in statements:
    spark.sql(s)
seconds = time.perf_counter() - started
merge_s = time.perf_counter() - prepared

snap = si.last_snapshot(spark, target)
summary = snap["summary"]
after_files, after_bytes = si.files(spark, target)
table = spark.table(target)
updated_rows = table.where("status = 'updated'").count()
mine = si.checksum(table)
theirs = si.checksum(spark.read.format("iceberg").load("file://" + si.metadata_location(rust["catalog"], "bench", "meshkit_full")))
problems = []
if snap["operation"] != "overwrite":
    problems.append(f"the merge committed a `{snap['operation']}` snapshot, expected `overwrite`")
if mine["rows"] != base_rows + inserts or updated_rows != updates:
    problems.append(f"table holds {mine['rows']} rows ({updated_rows} updated), expected {base_rows + inserts} ({updates})")
if mine != theirs:
    problems.append(f"Spark's table {mine} differs from meshkit's bench.meshkit_full {theirs}")
removed = int(summary.get("removed-files-size", 0))
out = {
    "engine": "spark+iceberg",
    "spark": spark.version,
    "master": spark.sparkContext.master,
    "driver_memory": spark.conf.get("spark.driver.memory"),
    "table": "bench.spark",
    "source_rows": changes,
    "updated": updated_rows,
    "inserted": int(summary.get("added-records", 0)) - int(summary.get("deleted-records", 0)),
    "seconds": seconds,
    "prepare_seconds": prepared - started,
    "merge_seconds": merge_s,
    "session_seconds": session_s,
    "rows_per_second": changes / seconds,
    "files_rewritten": int(summary.get("deleted-data-files", 0)),
    "files_written": int(summary.get("added-data-files", 0)),
    "bytes_rewritten": removed,
    "bytes_written": int(summary.get("added-files-size", 0)),
    "touched_files": mesh["touched_files"],
    "touched_bytes": mesh["touched_bytes"],
    "rewritten_over_touched": removed / max(mesh["touched_bytes"], 1),
    "rewritten_over_table": removed / max(rust["table"]["bytes"], 1),
    "files_before": before_files,
    "files_after": after_files,
    "rows_after": mine["rows"],
    "checksum": mine,
    "meshkit_full_checksum": theirs,
    "snapshot": snap,
    "statements": statements,
    "checked": not problems,
    "problems": problems,
}
spark.stop()
with open(out_path, "w") as f:
    json.dump(out, f, indent=2, default=str)
print(json.dumps(out, indent=2, default=str))
sys.exit(1 if problems else 0)
