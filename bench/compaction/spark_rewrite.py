"""Spark 3.5 + Iceberg 1.10 baseline of bench/compaction (what the Glue runner's maintenance mode
runs on AWS Glue 5): Iceberg's `rewrite_data_files` procedure, binpack, with the settings of
meshkit's compaction in the Rust bench, on the same small-file table.

usage: spark_rewrite.py RUST_OUTPUT OUT_JSON WORKDIR

1. finds, in the metadata log of the table meshkit compacted (`bench.small_files` in its SQLite
   catalog), the last metadata file before the compaction (its current snapshot an `append`),
   and adopts it as `bench.small_files` in a Hadoop catalog under WORKDIR/spark-warehouse: the
   very files meshkit compacted (copy-on-write leaves them in place);
2. starts Spark local[2] (BENCH_SPARK_MASTER, BENCH_SPARK_DRIVER_MEMORY, default 8g), loads the
   table and warms the page cache with its files; none of it is timed, the start is reported
   as `session_seconds`;
3. times the `CALL … rewrite_data_files(…)` that the runner's `maintenance_statements`
   generates for a compaction of a 512 MB target, min-file-size ratio 0.75 and 5 input files;
4. checks one `replace` snapshot, and the same row count and checksum as meshkit's compacted
   table (read by Spark from its metadata file).
"""
import json
import os
import sys
import time
import datetime as dt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import spark_iceberg as si  # noqa: E402
from spark_iceberg import glue_runner as gr  # noqa: E402

# crates/mesh-iceberg/benches/compaction.rs: CompactionOptions::new(512 * 1024 * 1024, 0.75, 5).
COMPACTION = {"target_file_size_mb": 512, "min_file_size_ratio": 0.75, "min_input_files": 5}


def rust_result(path):
    with open(path) as f:
        lines = [line for line in f if line.startswith("{")]
    if not lines:
        sys.exit(f"no JSON line in the Rust bench output {path}")
    return json.loads(lines[-1])


def current_operation(metadata: dict) -> str | None:
    current = metadata.get("current-snapshot-id")
    for s in metadata.get("snapshots", []):
        if s["snapshot-id"] == current:
            return s["summary"]["operation"]
    return None


def before_compaction(current_file: str) -> str:
    """The newest metadata file whose current snapshot is an append: the table as loaded."""
    current = json.load(open(current_file))
    if current_operation(current) != "replace":
        sys.exit(f"{current_file}: the current snapshot is `{current_operation(current)}`, not the compaction's `replace`")
    for entry in sorted(current.get("metadata-log", []), key=lambda e: e["timestamp-ms"], reverse=True):
        path = si.local_path(entry["metadata-file"])
        if current_operation(json.load(open(path))) == "append":
            return path
    sys.exit(f"{current_file}: no metadata file before the compaction in its metadata log")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rust = rust_result(sys.argv[1])
    out_path, workdir = sys.argv[2], os.path.abspath(sys.argv[3])
    warehouse = os.path.join(workdir, "spark-warehouse")
    catalog_db = os.path.join(os.path.dirname(rust["input_dir"]), "catalog.db")
    compacted = si.metadata_location(catalog_db, "bench", "small_files")
    target = si.adopt(before_compaction(compacted), warehouse, "bench", "small_files")

    spark, session_s = si.session(workdir, warehouse, "meshkit-bench-compaction")
    print(f"spark session: {session_s:.1f} s", flush=True)
    files_before, bytes_before = si.files(spark, target)
    if files_before != rust["files"] or bytes_before != rust["input_bytes"]:
        sys.exit(f"the adopted table holds {files_before} files / {bytes_before} bytes, meshkit compacted {rust['files']} / {rust['input_bytes']}")
    paths = [si.local_path(r[0]) for r in spark.sql(f"SELECT file_path FROM {target}.data_files").collect()]
    si.warm(paths)
    before = si.last_snapshot(spark, target)

    spec = {
        "iceberg": {"catalog": si.CATALOG},
        "table": {"database": "bench", "table": "small_files", "reference": "bench.small_files"},
        "optimizers": {"compaction": COMPACTION},
    }
    statements = gr.maintenance_statements(spec, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    print("\n".join(statements), flush=True)

    started = time.perf_counter()
    results = [spark.sql(s).collect() for s in statements]
    seconds = time.perf_counter() - started

    snap = si.last_snapshot(spark, target)
    files_after, bytes_after = si.files(spark, target)
    mine = si.checksum(spark.table(target))
    theirs = si.checksum(spark.read.format("iceberg").load("file://" + compacted))
    problems = []
    if snap["snapshot_id"] == before["snapshot_id"] or snap["operation"] != "replace":
        problems.append(f"rewrite_data_files committed {snap['operation']} (snapshot {snap['snapshot_id']}), expected one `replace`")
    if mine["rows"] != rust["rows"]:
        problems.append(f"the compacted table holds {mine['rows']} rows, expected {rust['rows']}")
    if mine != theirs:
        problems.append(f"Spark's compacted table {mine} differs from meshkit's {theirs}")
    mb = rust["input_bytes"] / 1e6
    props = {r[0]: r[1] for r in spark.sql(f"SHOW TBLPROPERTIES {target}").collect()}
    out = {
        "engine": "spark+iceberg",
        "spark": spark.version,
        "master": spark.sparkContext.master,
        "driver_memory": spark.conf.get("spark.driver.memory"),
        "statements": statements,
        "procedure_result": [[list(r) for r in rows] for rows in results],
        "seconds": seconds,
        "mb_per_s": mb / seconds,
        "session_seconds": session_s,
        "files_before": files_before,
        "files_after": files_after,
        "output_mb": bytes_after / 1e6,
        "parquet_compression": props.get("write.parquet.compression-codec", "zstd (Iceberg's default)"),
        "checksum": mine,
        "meshkit_checksum": theirs,
        "snapshot": snap,
        "checked": not problems,
        "problems": problems,
    }
    spark.stop()
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2, default=str)
    print(json.dumps(out, indent=2, default=str))
    if problems:
        sys.exit("; ".join(problems))


if __name__ == "__main__":
    main()
