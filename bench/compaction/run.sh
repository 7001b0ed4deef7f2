#!/usr/bin/env bash
# bench/compaction: thousands of small files compacted by `mesh optimize`'s compaction, against
# a plain Parquet-to-Parquet copy of the same files in the same process. One command:
#   bench/compaction/run.sh                       # dev profile, 2000 files x 5000 rows
#   PROFILE=release bench/compaction/run.sh       # the measurement to report
#   FILES=200 ROWS=1000 bench/compaction/run.sh   # a quick check
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE="${PROFILE:-dev}"
export MESH_BENCH_FILES="${FILES:-2000}"
export MESH_BENCH_ROWS="${ROWS:-5000}"
# --workspace keeps the feature set of the rest of the build (no second DataFusion build).
exec cargo bench -q --profile "$PROFILE" --workspace --bench compaction
