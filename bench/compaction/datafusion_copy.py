"""bench/compaction baseline: a plain DataFusion Parquet-to-Parquet copy of the compaction's inputs.

Usage: datafusion_copy.py RUST_OUTPUT WORKDIR [SPARK_JSON]

RUST_OUTPUT is what the Rust bench (crates/mesh-iceberg/benches/compaction.rs) printed; its JSON
line names `input_dir`, the folder of the small input files (hard links of the table's data
files). This script warms the page cache with those files, then times a DataFusion
`COPY (SELECT * FROM tbl) TO '<WORKDIR>/datafusion.parquet' STORED AS PARQUET` with zstd level 1
(the level meshkit writes), registration of the folder included, checks the row count, and
prints one summary line (compaction, Spark + Iceberg, DataFusion and arrow-rs MB/s, the ratios)
and one JSON object. SPARK_JSON is what spark_rewrite.py wrote (run.sh runs it first); its
figures join the summary. MB/s is input (compressed) megabytes per second, as on the Rust side.
"""
import json
import os
import sys
import time

import datafusion
import pyarrow.parquet as pq
from datafusion import SessionContext

# meshkit's writer (crates/mesh-iceberg/src/write.rs) uses parquet's ZstdLevel::default(), level 1.
COMPRESSION = "zstd(1)"


def rust_result(path):
    with open(path) as f:
        lines = [line for line in f if line.startswith("{")]
    if not lines:
        sys.exit(f"no JSON line in the Rust bench output {path}")
    return json.loads(lines[-1])


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    rust = rust_result(sys.argv[1])
    spark = json.load(open(sys.argv[3])) if len(sys.argv) == 4 else None
    workdir = os.path.abspath(sys.argv[2])
    os.makedirs(workdir, exist_ok=True)
    input_dir = rust["input_dir"]
    inputs = sorted(os.path.join(input_dir, n) for n in os.listdir(input_dir) if n.endswith(".parquet"))
    input_bytes = sum(os.path.getsize(p) for p in inputs)
    if len(inputs) != rust["files"] or input_bytes != rust["input_bytes"]:
        sys.exit(
            f"{input_dir} holds {len(inputs)} files / {input_bytes} bytes, "
            f"the Rust bench compacted {rust['files']} / {rust['input_bytes']}"
        )

    # Warm the page cache so the copy does not pay for the first read (as the Rust side does).
    for p in inputs:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass

    out = os.path.join(workdir, "datafusion.parquet")
    if os.path.exists(out):
        os.remove(out)
    ctx = SessionContext()
    ctx.sql("SELECT 1").collect()  # starts DataFusion's runtime outside the timing
    t = time.perf_counter()
    ctx.register_parquet("tbl", input_dir)
    result = ctx.sql(
        f"COPY (SELECT * FROM tbl) TO '{out}' STORED AS PARQUET OPTIONS (compression '{COMPRESSION}')"
    ).collect()
    copy_s = time.perf_counter() - t

    copied = result[0].column(0)[0].as_py()
    if not os.path.isfile(out):
        sys.exit(f"DataFusion did not write one file at {out}")
    written = pq.ParquetFile(out).metadata.num_rows
    if copied != rust["rows"] or written != rust["rows"]:
        sys.exit(f"DataFusion copied {copied} rows and wrote {written}, the table has {rust['rows']}")

    mb = input_bytes / 1e6
    df_mbs = mb / copy_s
    compact_mbs = rust["compaction_mb_per_s"]
    arrow_mbs = rust["copy_mb_per_s"]
    parts = [
        f"compaction: {rust['files']} files, {mb:.1f} MB, {rust['rows']} rows",
        f"meshkit compaction ({rust['profile']}) {rust['compaction_s']:.2f}s = {compact_mbs:.1f} MB/s",
    ]
    if spark:
        parts.append(
            f"Spark {spark['spark']} + Iceberg rewrite_data_files ({spark['master']}, same rows and checksum; "
            f"session start {spark['session_seconds']:.1f}s not counted) {spark['seconds']:.2f}s = {spark['mb_per_s']:.1f} MB/s"
        )
    parts += [
        f"DataFusion {datafusion.__version__} copy (release wheel) {copy_s:.2f}s = {df_mbs:.1f} MB/s",
        f"arrow-rs copy ({rust['profile']}) {rust['copy_s']:.2f}s = {arrow_mbs:.1f} MB/s",
    ]
    ratios = [f"compaction/Spark = {compact_mbs / spark['mb_per_s']:.2f}"] if spark else []
    ratios += [f"compaction/DataFusion = {compact_mbs / df_mbs:.2f}", f"compaction/arrow-rs = {compact_mbs / arrow_mbs:.2f}"]
    print("; ".join(parts) + "; ratio " + ", ".join(ratios))
    summary = dict(rust)
    summary.update(
        {
            "datafusion_version": datafusion.__version__,
            "datafusion_compression": COMPRESSION,
            "datafusion_s": copy_s,
            "datafusion_mb_per_s": df_mbs,
            "datafusion_output_mb": os.path.getsize(out) / 1e6,
            "ratio_datafusion": compact_mbs / df_mbs,
            "ratio_arrow_rs": compact_mbs / arrow_mbs,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        }
    )
    if spark:
        summary.update(
            {
                "spark_iceberg": spark,
                "spark_s": spark["seconds"],
                "spark_mb_per_s": spark["mb_per_s"],
                "ratio_spark": compact_mbs / spark["mb_per_s"],
            }
        )
    del summary["ratio"]  # the Rust bench's compaction / arrow-rs ratio, now ratio_arrow_rs
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
