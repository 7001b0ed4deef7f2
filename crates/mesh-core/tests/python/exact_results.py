"""Spark's side of crates/mesh-core/tests/exact_results.rs (PySpark 3.5, ANSI mode).

    python exact_results.py MANIFEST

MANIFEST (JSON, written by the Rust test): `workdir`, `queries` (one-column, one-row SQL
queries, answered in order) and `specs` (Glue runner job specs by job name, for the runner's
shaping rules). Prints one JSON object: `arithmetic` (per query: type and value, or the error
class) and `runner` (per runner case: "ok …" or the error text).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../../../runtime/glue"))
import glue_runner as gr  # noqa: E402


def render(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, float):
        return repr(v)
    return str(v)


def error_class(e: Exception) -> str:
    m = re.search(r"\[([A-Z_]+)\]", str(e))
    return m.group(1) if m else type(e).__name__


def arithmetic(spark, queries: list[str]) -> list[dict]:
    out = []
    for q in queries:
        try:
            df = spark.sql(q)
            row = df.collect()[0]
            out.append({"type": df.schema.fields[0].dataType.simpleString(), "value": render(row[0])})
        except Exception as e:  # noqa: BLE001 - the error class is the answer
            out.append({"error": error_class(e), "message": str(e).split("\n")[0][:300]})
    return out


def runner_cases(spark, specs: dict) -> dict:
    """The runner's shaping rules (items 3 and 4 of issue 26) on real DataFrames."""
    daily = specs["daily_sales"]
    types = "sale_date date, store_id bigint, orders bigint, units bigint, revenue decimal(18,2)"
    row = (dt.date(2026, 1, 1), 7, 1, 2, decimal.Decimal("1.50"))
    res: dict[str, str] = {}

    def attempt(name, fn):
        try:
            v = fn()
            res[name] = "ok " + (v if isinstance(v, str) else "")
        except gr.JobFailed as e:
            res[name] = str(e).split("\n")[0][:400]
        except Exception as e:  # noqa: BLE001 - Spark's own error: its class and message
            m = re.search(r"\[[A-Z_]+\][^\n]*", str(e))
            res[name] = (m.group(0) if m else str(e).split("\n")[0])[:400]

    base = spark.createDataFrame([row], types)
    def shaped_types(df, spec=daily):
        return ",".join(f"{f.name}:{f.dataType.simpleString()}" for f in gr.prepare_source(spark, spec, df).schema.fields)

    attempt("exact columns", lambda: shaped_types(base))
    attempt("misspelt alias", lambda: shaped_types(base.withColumnRenamed("revenue", "revenu")))
    nullable = copy.deepcopy(daily)
    for c in nullable["output"]["columns"]:
        if c["name"] == "revenue":
            c["nullable"] = True
    attempt("misspelt alias, nullable column", lambda: shaped_types(base.withColumnRenamed("revenue", "revenu"), nullable))
    attempt("missing nullable column", lambda: shaped_types(base.drop("revenue"), nullable))
    attempt("extra column", lambda: shaped_types(base.selectExpr("*", "1 AS store_name")))
    attempt("extra column, no close name", lambda: shaped_types(base.selectExpr("*", "1 AS zzz")))
    latest = specs["customers_latest"]
    cust = spark.createDataFrame(
        [(1, "a@x", "A", "DE", "smb", dt.datetime(2026, 1, 1), "U")],
        "customer_id bigint, email string, full_name string, country string, segment string, updated_at timestamp_ntz, op string",
    )
    attempt("merge control column", lambda: shaped_types(cust, latest))
    attempt("merge, extra column", lambda: shaped_types(cust.selectExpr("*", "1 AS opp"), latest))
    # Types: the declared type wins (a bigint result is written as int, range-checked), a wider
    # type that would change values is refused, never widens the table.
    attempt("bigint into int, in range", lambda: shaped_types(base))
    big = spark.createDataFrame([(dt.date(2026, 1, 1), 3_000_000_000, 1, 2, decimal.Decimal("1.50"))], types)
    attempt("bigint into int, out of range", lambda: str(gr.prepare_source(spark, daily, big).collect()))
    attempt("double into decimal", lambda: shaped_types(base.selectExpr("sale_date", "store_id", "orders", "units", "CAST(revenue AS DOUBLE) AS revenue")))
    floaty = copy.deepcopy(daily)
    for c in floaty["output"]["columns"]:
        if c["name"] == "revenue":
            c["type"], c["spark_type"] = "float", "float"
    attempt("double into float", lambda: shaped_types(base.selectExpr("sale_date", "store_id", "orders", "units", "CAST(revenue AS DOUBLE) AS revenue"), floaty))
    attempt("float into float", lambda: shaped_types(base.selectExpr("sale_date", "store_id", "orders", "units", "CAST(revenue AS FLOAT) AS revenue"), floaty))
    return res


def main() -> None:
    manifest = json.load(open(sys.argv[1]))
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("meshkit-exact-results")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", os.path.join(manifest["workdir"], "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={manifest['workdir']}")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("OFF")
    result = {"arithmetic": arithmetic(spark, manifest["queries"])}
    if manifest.get("specs"):
        result["runner"] = runner_cases(spark, manifest["specs"])
    spark.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
