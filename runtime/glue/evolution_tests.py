"""Declared schema evolution in the Glue runner, against meshkit (Spark 3.5 + Iceberg 1.10),
driven by crates/mesh-core/tests/glue_evolution.rs.

    python evolution_tests.py MANIFEST

For each case the Rust test ran meshkit twice (the first manifest, then the changed one) and
left the job specs of both runs and meshkit's table after each: rows (as text) and shape
(columns with field ids, types and nullability, identifier fields, default partition spec, sort
order, snapshot count). Here each table is created as Terraform creates it (every column
optional, unpartitioned), the runner's real entry point runs the first spec then the second,
and after each run the runner's table must equal meshkit's; a change meshkit refuses must fail
the runner before anything is written, naming the table and the change.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402
from iceberg_tests import create_like_terraform, hadoop_catalog, session  # noqa: E402


def text(v) -> str:
    return "NULL" if v is None else str(v)


def state(spark, target: str) -> dict:
    """The table as glue_evolution.rs describes meshkit's (`Lake::state`)."""
    jt = spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, target)
    jt.refresh()
    schema = jt.schema()
    columns = [
        {"id": f.fieldId(), "name": f.name(), "type": f.type().toString().replace(" ", ""), "required": f.isRequired()}
        for f in schema.columns()
    ]
    identifier = sorted(schema.findColumnName(i) for i in schema.identifierFieldIds())
    spec = [
        {"name": f.name(), "transform": f.transform().toString(), "field_id": f.fieldId(), "source": schema.findColumnName(f.sourceId())}
        for f in jt.spec().fields()
    ]
    sort = [
        f"{schema.findColumnName(f.sourceId())} {f.direction().name().lower()} {'first' if f.nullOrder().name() == 'NULLS_FIRST' else 'last'}"
        for f in jt.sortOrder().fields()
    ]
    df = spark.table(target)
    rows = sorted([text(v) for v in r] for r in df.collect())
    snapshots = spark.sql(f"SELECT COUNT(*) FROM {target}.snapshots").collect()[0][0]
    return {
        "rows": rows, "row_columns": df.columns, "columns": columns, "identifier": identifier,
        "partition_spec": spec, "sort_order": sort, "snapshots": snapshots,
    }


def differences(got: dict, want: dict) -> list[str]:
    out = []
    for k in ("row_columns", "columns", "identifier", "partition_spec", "sort_order", "snapshots", "rows"):
        # meshkit's scan of an empty table names no columns.
        if k == "row_columns" and not want["rows"]:
            continue
        if got[k] != want[k]:
            out.append(f"{k}: runner {got[k]} vs meshkit {want[k]}")
    return out


def run(spark, catalog: dict, spec_path: str, run_id: str):
    logs, error = io.StringIO(), None
    with contextlib.redirect_stderr(logs):
        try:
            assert gr.main(["--job-spec", spec_path, "--JOB_RUN_ID", run_id], catalog=catalog, sleep=lambda s: None) == 0
        except gr.JobFailed as e:
            error = e
    return error, logs.getvalue()


def case(spark, catalog: dict, manifest: dict, c: dict) -> str:
    name = c["name"]
    paths = [os.path.join(manifest["specs"], f"{name}-{n}.json") for n in (1, 2)]
    with open(paths[0]) as f:
        spec = json.load(f)
    target = gr.target_name(spec)
    create_like_terraform(spark, spec)
    error, logs = run(spark, catalog, paths[0], f"{name}-1")
    assert error is None, f"{name}: run 1 failed: {error}\n{logs[-3000:]}"
    diff = differences(state(spark, target), c["first"])
    assert not diff, f"{name} after run 1: " + "; ".join(diff)
    error, logs = run(spark, catalog, paths[1], f"{name}-2")
    if c["refused"]:
        assert error is not None, f"{name}: the runner applied a change meshkit refuses"
        message = str(error)
        assert spec["output"]["reference"] in message, f"{name}: the error does not name the table: {message}"
        for w in c["refused_words"]:
            assert w in message, f"{name}: the error does not say `{w}`: {message}"
        assert '"event": "write"' not in logs and "table layout" not in logs, f"{name}: refused after a statement ran:\n{logs}"
        diff = differences(state(spark, target), c["first"])
        assert not diff, f"{name}: a refused change changed the table: " + "; ".join(diff)
        return f"refused as meshkit refuses it: {message.splitlines()[0][:200]}"
    assert error is None, f"{name}: run 2 failed: {error}\n{logs[-3000:]}"
    diff = differences(state(spark, target), c["second"])
    assert not diff, f"{name} after run 2: " + "; ".join(diff)
    layout = [json.loads(line).get("statement") for line in logs.splitlines() if '"table layout"' in line]
    return "same rows and schema as meshkit: " + "; ".join(s for s in layout if s)


def main(path: str) -> int:
    with open(path) as f:
        manifest = json.load(f)
    spark = session(manifest)
    catalog = hadoop_catalog(manifest)
    failed = 0
    for c in manifest["cases"]:
        try:
            detail = case(spark, catalog, manifest, c)
        except Exception:  # noqa: BLE001 - reported with its traceback, the other cases still run
            print(f"FAIL {c['name']}\n{traceback.format_exc()}", flush=True)
            failed += 1
            continue
        print(f"ok   {c['name']}: {detail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
