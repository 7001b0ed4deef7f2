"""Another domain's product read by the Glue runner on Spark 3.5 + Iceberg 1.10, driven by
crates/mesh-cli/tests/consume_on_spark.rs:

    python product_tests.py MANIFEST

The consumer's job spec (from `mesh build --env dev`) names the product input with its
producer's account (`catalog_id`); the runner reads it through a second Iceberg catalog,
`glue_catalog_<account>` (on Glue: the same client with `glue.id` = that account). Here both
catalogs are one Hadoop catalog over a local warehouse (`hadoop_catalog`), holding the
producer's table as meshkit wrote it (loaded from its metadata file) and the consumer's
output table created as Terraform creates it.

Cases: the runner's output equals meshkit's local output of the same job over the same
snapshot (`expected`: `mesh sql --format json` rows); the runner logs the snapshot it read; a
product missing from the producer's catalog fails the run with meshkit's words ("is not in the
Glue catalog of account"), writing nothing; a run 3 days after the product's last commit fails
with meshkit's stale error (`mesh run --at` gives the same on the local engine), writing
nothing.

Prints `ok   <case>: <detail>` per case and exits 1 on the first failure.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
import traceback
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402
from iceberg_tests import create_like_terraform, hadoop_catalog, session  # noqa: E402


def run(catalog: dict, spec: dict, workdir: str, run_id: str, args: tuple = ()):
    """The runner's real entry point on `spec`; (error or None, log events)."""
    path = os.path.join(workdir, f"{run_id}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    logs, error = io.StringIO(), None
    with contextlib.redirect_stderr(logs):
        try:
            assert gr.main(["--job-spec", path, "--JOB_RUN_ID", run_id, *args], catalog=catalog, sleep=lambda s: None) == 0
        except gr.JobFailed as e:
            error = e
    events = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    return error, events


def normal(row: dict) -> tuple:
    """A row as comparable values: numbers as exact decimals (JSON and Spark print them apart)."""
    return tuple(sorted((k, Decimal(str(v)) if isinstance(v, (int, float, Decimal)) else v) for k, v in row.items()))


def main(path: str) -> int:
    with open(path) as f:
        m = json.load(f)
    spark = session(m)
    catalog = hadoop_catalog(m)
    with open(m["spec"]) as f:
        spec = json.load(f)
    spec["sql"]["uri"] = "file://" + m["sql"]
    (product,) = [i for i in spec["inputs"] if i.get("catalog_id")]
    cases = []
    try:
        # The producer's table, at the snapshot meshkit read (its metadata file), in the catalog.
        producer = f"{gr.quote(spec['iceberg']['catalog'])}.{gr.quote(product['database'])}.{gr.quote(product['table'])}"
        source = spark.read.format("iceberg").load("file://" + m["producer_metadata"])
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {gr.quote(spec['iceberg']['catalog'])}.{gr.quote(product['database'])}")
        source.writeTo(producer).using("iceberg").create()
        create_like_terraform(spark, spec)
        target = gr.target_name(spec)

        error, events = run(catalog, spec, m["workdir"], "product-1")
        assert error is None, f"the runner failed: {error}"
        got = sorted(normal(r.asDict()) for r in spark.table(target).collect())
        with open(m["expected"]) as f:
            want = sorted(normal(r) for r in json.load(f))
        assert got and got == want, f"runner {got[:3]}… vs meshkit {want[:3]}…"
        read = [e for e in events if e.get("event") == "product input"]
        current = spark.sql(f"SELECT snapshot_id FROM {producer}.refs WHERE name = 'main'").collect()[0][0]
        assert [(e["product"], e["catalog_id"], e["snapshot"]) for e in read] == [(product["reference"], product["catalog_id"], current)], read
        cases.append(("same rows as meshkit", f"{len(got)} rows; read {product['reference']} at snapshot {current} of catalog {product['catalog_id']}"))

        # Not in the producer's catalog (not deployed there yet): refused, nothing written.
        missing = copy.deepcopy(spec)
        for i in missing["inputs"]:
            if i.get("catalog_id"):
                i["table"] = "not_deployed"
        before = spark.sql(f"SELECT count(*) FROM {target}.snapshots").collect()[0][0]
        error, _ = run(catalog, missing, m["workdir"], "product-2")
        assert error is not None, "the runner read a product its catalog does not hold"
        message = str(error)
        for w in (product["reference"], "is not in the Glue catalog of account", product["catalog_id"]):
            assert w in message, f"the error does not say `{w}`: {message}"
        after = spark.sql(f"SELECT count(*) FROM {target}.snapshots").collect()[0][0]
        assert after == before, "a refused run committed"
        cases.append(("missing product refused", message.splitlines()[0][:200]))

        # Older than the producer's promise at the run's time: meshkit's stale error, nothing
        # written. The runner's run time is the `run_at` argument (the schedule's, or a replay's).
        import datetime as dt
        committed = spark.sql(f"SELECT committed_at FROM {producer}.snapshots ORDER BY committed_at DESC LIMIT 1").collect()[0][0]
        late = (committed + dt.timedelta(days=3, seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        error, _ = run(catalog, spec, m["workdir"], "product-3", ("--run_at", late))
        assert error is not None, "the runner read a product older than its promise"
        message = str(error)
        for w in (f"`{product['reference']}@{product['version']}` is stale", "3d old at the run's time",
                  f"older than its producer's promise (within {product['freshness']})",
                  f"nothing was committed to {spec['output']['reference']}", "has not committed"):
            assert w in message, f"the stale error does not say `{w}`: {message}"
        assert spark.sql(f"SELECT count(*) FROM {target}.snapshots").collect()[0][0] == before, "a stale run committed"
        cases.append(("stale product refused", message.splitlines()[0][:200]))
    except Exception:  # noqa: BLE001 - reported to the Rust test
        for name, detail in cases:
            print(f"ok   {name}: {detail}")
        traceback.print_exc()
        return 1
    for name, detail in cases:
        print(f"ok   {name}: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:][0]))
