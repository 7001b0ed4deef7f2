#!/usr/bin/env bash
# bench/pipeline (issue 4): the example pipelines on the same generated data, run by meshkit
# (`mesh run`), PySpark 3.5 local writing Parquet, and DuckDB + pyiceberg; wall time and peak
# RSS of each, the ratios, and a check that all three wrote the same tables.
#
#   bench/pipeline/run.sh [--sizes 1000000,10000000] [--engines meshkit,spark,duckdb] [--keep]
#                         [--raw-cache DIR] [--memory-limit 100000000=3GiB] [--max-concurrency 100000000=1]
#   PROFILE=dev bench/pipeline/run.sh --sizes 100000        # quick check
#
# PROFILE=release (default) | dev selects the cargo profile; MESHKIT_CACHE holds the venv;
# BENCH_WORK (default: a fresh temp folder, removed afterwards) holds lakes and outputs;
# BENCH_SPARK_DRIVER_MEMORY (default 4g) is Spark's heap.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$BENCH_ROOT"
bench_venv
echo "== building mesh ($PROFILE)" >&2
EXE="$(cargo_artifact -p mesh-cli --bin mesh)"
[ -x "$EXE" ] || { echo "cargo did not report the mesh executable" >&2; exit 1; }
WORK="${BENCH_WORK:-}"
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/meshkit-bench-pipeline.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi
"$BENCH_PYTHON" bench/pipeline/run.py "$EXE" "$PROFILE" "$WORK" "$@"
