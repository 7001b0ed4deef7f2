# Shared by bench/*/run.sh (sourced): the Python venv of the baselines and the cargo profile.
# PROFILE=release (default) or dev selects the cargo profile of the meshkit side.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MESHKIT_CACHE:-$HOME/.cache/meshkit}"
PROFILE="${PROFILE:-release}"
case "$PROFILE" in
  release | dev) ;;
  *) echo "PROFILE must be dev or release, not '$PROFILE'" >&2; exit 2 ;;
esac

# The venv is rebuilt only when bench/requirements.txt changes.
bench_venv() {
  local dir="$CACHE/venv-bench" req="$BENCH_ROOT/bench/requirements.txt" stamp
  stamp="$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$dir/.stamp" ] || [ "$(cat "$dir/.stamp")" != "$stamp" ]; then
    echo "== installing $req into $dir" >&2
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$stamp" >"$dir/.stamp"
  fi
  BENCH_PYTHON="$dir/bin/python"
}

# The Spark 3.5 + Iceberg 1.10 jars of the merge and compaction baselines, built once into
# $CACHE/iceberg-jars by the project's own script (as scripts/test.sh does for the tests);
# needs bench_venv first. Exports BENCH_ICEBERG_JARS (comma-separated, Spark's `spark.jars`).
iceberg_jars() {
  BENCH_ICEBERG_JARS="$("$BENCH_PYTHON" "$BENCH_ROOT/scripts/iceberg-jars.py" "$CACHE/iceberg-jars")"
  export BENCH_ICEBERG_JARS
}

# cargo_artifact ARGS...: builds with the selected profile and prints the path of the last
# executable cargo reports (works for --bin and --bench targets alike).
cargo_artifact() {
  local flag=()
  [ "$PROFILE" = release ] && flag=(--release)
  (cd "$BENCH_ROOT" && cargo build "${flag[@]}" --message-format=json-render-diagnostics "$@") |
    python3 -c 'import json,sys
exe=None
for line in sys.stdin:
    m=json.loads(line)
    if m.get("reason")=="compiler-artifact" and m.get("executable"): exe=m["executable"]
print(exe or "")'
}
