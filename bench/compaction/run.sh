#!/usr/bin/env bash
# bench/compaction: thousands of small files compacted by `mesh optimize`'s compaction, against
# Spark 3.5 + Iceberg 1.10's `rewrite_data_files` on the same table (what the Glue runner's
# maintenance mode runs, local[2]) and plain Parquet-to-Parquet copies of the same files:
# DataFusion (Python bindings, PyPI release wheel) and arrow-rs inside the Rust bench. One command:
#   bench/compaction/run.sh                       # dev profile, 2000 files x 5000 rows
#   PROFILE=release bench/compaction/run.sh       # the measurement to report
#   FILES=200 ROWS=1000 bench/compaction/run.sh   # a quick check
#
# MESHKIT_CACHE holds the venv (bench/lib.sh); BENCH_WORK (default: a fresh temp folder, removed
# afterwards) holds the table, the input files and the copies. The Rust bench's output goes to
# stderr, Spark's to $BENCH_WORK/spark.log; stdout gets the summary line and the JSON object.
# BENCH_SPARK_DRIVER_MEMORY (default 8g) is Spark's heap, BENCH_SPARK_MASTER (default local[2]).
set -euo pipefail
PROFILE="${PROFILE:-dev}"
source "$(dirname "$0")/../lib.sh"
cd "$BENCH_ROOT"
bench_venv
iceberg_jars
export MESH_BENCH_FILES="${FILES:-2000}"
export MESH_BENCH_ROWS="${ROWS:-5000}"
WORK="${BENCH_WORK:-}"
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/meshkit-bench-compaction.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi
WORK="$(mkdir -p "$WORK" && cd "$WORK" && pwd)"
rm -rf "$WORK/table" "$WORK/datafusion" "$WORK/rust.out" "$WORK/spark-warehouse" "$WORK/spark.json" "$WORK/spark.log"
export MESH_BENCH_DIR="$WORK/table"
# --workspace keeps the feature set of the rest of the build (no second DataFusion build).
cargo bench -q --profile "$PROFILE" --workspace --bench compaction | tee "$WORK/rust.out" >&2
echo "== Spark + Iceberg rewrite_data_files on the same table (log: $WORK/spark.log)" >&2
if ! "$BENCH_PYTHON" bench/compaction/spark_rewrite.py "$WORK/rust.out" "$WORK/spark.json" "$WORK" >"$WORK/spark.log" 2>&1; then
  tail -20 "$WORK/spark.log" >&2
  echo "Spark + Iceberg compaction failed or gave a different table" >&2
  exit 1
fi
"$BENCH_PYTHON" bench/compaction/datafusion_copy.py "$WORK/rust.out" "$WORK/datafusion" "$WORK/spark.json"
