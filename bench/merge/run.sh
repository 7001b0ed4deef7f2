#!/usr/bin/env bash
# bench/merge (issue 3): upsert 1M changed rows (80% updates, 20% inserts) into a 10M-row table
# partitioned by day, with meshkit, with pyiceberg 0.12 Table.upsert and with Spark 3.5 +
# Iceberg 1.10 MERGE INTO (the Glue runner's statement, local[2]) on copies of the same table.
#
#   bench/merge/run.sh [--rows N] [--days D] [--changes N] [--update-days K] [--cap N]
#   PROFILE=dev bench/merge/run.sh --rows 1000000 --changes 100000 --cap 20000   # quick check
#
# PROFILE=release (default) | dev selects the cargo profile; MESHKIT_CACHE holds the venv;
# BENCH_WORK (default: a fresh temp folder, removed afterwards) holds the tables;
# BENCH_SPARK_DRIVER_MEMORY (default 8g) is Spark's heap, BENCH_SPARK_MASTER (default local[2]).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$BENCH_ROOT"
bench_venv
iceberg_jars
echo "== building the merge bench ($PROFILE)" >&2
EXE="$(cargo_artifact -p mesh-iceberg --bench merge)"
[ -x "$EXE" ] || { echo "cargo did not report the bench executable" >&2; exit 1; }
WORK="${BENCH_WORK:-}"
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/meshkit-bench-merge.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi
"$BENCH_PYTHON" bench/merge/run.py "$EXE" "$PROFILE" "$WORK" "$@"
