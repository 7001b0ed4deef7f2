#!/usr/bin/env bash
# bench/glue_interval: the Glue runner's time-range write replacing one day of a 730-day table
# partitioned by day, on Spark 3.5 + Iceberg 1.10 (local[2]): the statement before issue 28
# against the current one (and DELETE + INSERT), same script, same session. One command:
#   bench/glue_interval/run.sh                              # 730 days x 2000 rows, 3 rounds
#   DAYS=60 ROWS_PER_DAY=200 REPEAT=1 bench/glue_interval/run.sh   # a quick check
#
# MESHKIT_CACHE holds the bench venv and the jars (bench/lib.sh); BENCH_PYTHON and
# BENCH_ICEBERG_JARS, when set, are used instead (e.g. the test venv: MESH_PYTHON,
# MESH_ICEBERG_JARS). BENCH_WORK (default: a fresh temp folder, removed afterwards) holds the
# warehouse. Spark's log goes to $BENCH_WORK/spark.log; stdout gets the summary table, and
# bench/glue_interval/results/glue-interval-<time>.json every figure.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$BENCH_ROOT"
[ -n "${BENCH_PYTHON:-}" ] || bench_venv
[ -n "${BENCH_ICEBERG_JARS:-}" ] || iceberg_jars
export BENCH_ICEBERG_JARS
WORK="${BENCH_WORK:-}"
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/meshkit-bench-glue-interval.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi
WORK="$(mkdir -p "$WORK" && cd "$WORK" && pwd)"
rm -rf "$WORK/warehouse" "$WORK/spark-sql-warehouse"
RESULT="bench/glue_interval/results/glue-interval-$(date -u +%Y%m%dT%H%M%SZ).json"
if ! "$BENCH_PYTHON" bench/glue_interval/bench_interval.py "$WORK" "$RESULT" 2>"$WORK/spark.log"; then
  tail -30 "$WORK/spark.log" >&2
  echo "the bench failed or a variant gave a different table or state" >&2
  exit 1
fi
echo "figures: $RESULT"
