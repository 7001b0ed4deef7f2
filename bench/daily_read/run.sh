#!/usr/bin/env bash
# bench/daily_read (issue 28, item 2): a daily run of a time-range job reads one day of a 30-day
# raw CSV table partitioned by day; the same SQL without the interval filter reads all 30. Files
# and rows read and wall time of both, on the local engine (`mesh run`) and on the Glue runner
# (Spark 3.5 + Iceberg 1.10, local[2]), in one script. One command:
#   bench/daily_read/run.sh                                          # 30 days x 200k rows, 3 rounds
#   ROWS_PER_DAY=2000 REPEAT=1 bench/daily_read/run.sh               # a quick check
#   ENGINES=local bench/daily_read/run.sh                            # the local engine only
#
# MESH_BIN, when set, is the `mesh` binary measured (nothing is built; say its profile with
# PROFILE=dev|release, else it is taken from the path: …/debug/… is dev); otherwise the binary
# is built with PROFILE (release by default, bench/lib.sh). MESHKIT_CACHE holds the bench venv
# and the jars (bench/lib.sh); BENCH_PYTHON and BENCH_ICEBERG_JARS, when set, are used instead
# (e.g. the test venv: MESH_PYTHON, MESH_ICEBERG_JARS). BENCH_WORK (default: a fresh temp
# folder, removed afterwards) holds the domain, its lake and the Spark warehouse. Spark's log
# goes to $BENCH_WORK/bench.log; stderr gets each run's line, stdout the summary table, and
# bench/daily_read/results/daily-read-<time>.json every figure.
set -euo pipefail
explicit_profile="${PROFILE:-}"
source "$(dirname "$0")/../lib.sh"
cd "$BENCH_ROOT"
if [ -n "${MESH_BIN:-}" ]; then
  [ -x "$MESH_BIN" ] || { echo "MESH_BIN=$MESH_BIN is not an executable" >&2; exit 2; }
  if [ -z "$explicit_profile" ]; then
    case "$MESH_BIN" in
      */debug/*) PROFILE=dev ;;
      */release/*) PROFILE=release ;;
      *) echo "say the profile of MESH_BIN with PROFILE=dev|release" >&2; exit 2 ;;
    esac
  fi
else
  echo "== building mesh ($PROFILE)" >&2
  MESH_BIN="$(cargo_artifact -p mesh-cli --bin mesh)"
  [ -x "$MESH_BIN" ] || { echo "cargo did not report the mesh executable" >&2; exit 1; }
fi
[ -n "${BENCH_PYTHON:-}" ] || bench_venv
case "${ENGINES:-local,runner}" in
  *runner*) [ -n "${BENCH_ICEBERG_JARS:-}" ] || iceberg_jars ;;
esac
export BENCH_ICEBERG_JARS="${BENCH_ICEBERG_JARS:-}"
WORK="${BENCH_WORK:-}"
if [ -z "$WORK" ]; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/meshkit-bench-daily-read.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
fi
WORK="$(mkdir -p "$WORK" && cd "$WORK" && pwd)"
rm -rf "$WORK/domain" "$WORK/build" "$WORK/spark"
RESULT="bench/daily_read/results/daily-read-$(date -u +%Y%m%dT%H%M%SZ).json"
if ! "$BENCH_PYTHON" bench/daily_read/bench_daily.py "$MESH_BIN" "$PROFILE" "$WORK" "$RESULT" >"$WORK/summary.txt" 2>"$WORK/bench.log"; then
  grep -v '^\s*$' "$WORK/bench.log" | tail -30 >&2
  echo "the bench failed, or a run read other files or rows than expected, or the engines wrote different rows" >&2
  exit 1
fi
grep -E '^(generated|local|runner) ' "$WORK/bench.log" >&2 || true
cat "$WORK/summary.txt"
echo "figures: $RESULT"
