"""Tests of the Glue runner, driven by crates/mesh-core/tests/glue_runner.rs.

    python runner_tests.py sql MANIFEST     pure functions only (no Spark): prints the generated
                                            SQL of every case as JSON, for snapshots
    python runner_tests.py spark MANIFEST   one local Spark session for everything: the runner's
                                            non-Iceberg parts, and every example job's SQL against
                                            meshkit's result (the differential test)

The manifest is written by the Rust test: cases with a job spec, the job's SQL, Parquet copies
of its inputs and, for the differential test, meshkit's result as Parquet.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import json
import math
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402


def generated_sql(case: dict) -> dict:
    spec = case["spec"]
    out = spec["output"]
    current = {"sort-order": ", ".join(out["sort_order"]), **out["properties"]} if out["sort_order"] else dict(out["properties"])
    return {
        "shape": gr.shape_sql(spec, case["result_columns"], "__mesh_result"),
        "checks": [gr.check_sql(c) for c in spec["checks"]],
        "write": gr.write_statements(spec),
        "layout_first_run": gr.layout_statements(spec, [], {}),
        "layout_when_current": gr.layout_statements(spec, out["partition_by"], current),
    }


# --------------------------------------------------------------------------- Spark tests


def normalise(v):
    """Values from Spark rows and from pyarrow, made comparable."""
    if isinstance(v, decimal.Decimal):
        return ("num", v.normalize())
    if isinstance(v, float):
        return ("float", v)
    if isinstance(v, bool) or v is None:
        return ("v", v)
    if isinstance(v, int):
        return ("num", decimal.Decimal(v))
    if isinstance(v, dt.datetime):
        return ("ts", v.replace(tzinfo=None) if v.tzinfo is None else v.astimezone(dt.timezone.utc).replace(tzinfo=None))
    return ("v", v)


def sort_key(row):
    return [(t, round(v, 6) if t == "float" else v) if v is not None else (t, "") for t, v in row]


def same_rows(a: list[tuple], b: list[tuple], rel=1e-9) -> str | None:
    """None when `a` and `b` hold the same rows in any order (floats within `rel`)."""
    if len(a) != len(b):
        return f"{len(a)} rows vs {len(b)} rows"
    na = sorted(([normalise(v) for v in r] for r in a), key=lambda r: repr(sort_key(r)))
    nb = sorted(([normalise(v) for v in r] for r in b), key=lambda r: repr(sort_key(r)))
    for i, (x, y) in enumerate(zip(na, nb)):
        for (tx, vx), (ty, vy) in zip(x, y):
            if tx == "float" or ty == "float":
                if vx is None or vy is None or not math.isclose(float(vx), float(vy), rel_tol=rel, abs_tol=1e-9):
                    if vx != vy:
                        return f"row {i}: {x} vs {y}"
            elif vx != vy:
                return f"row {i}: {x} vs {y}"
    return None


class RecordingSpark:
    """A real session that remembers every statement, to prove what did or did not run."""

    def __init__(self, spark):
        self._spark = spark
        self.statements: list[str] = []

    def sql(self, text, *a, **k):
        self.statements.append(text)
        return self._spark.sql(text, *a, **k)

    def __getattr__(self, name):
        return getattr(self._spark, name)


def expect_raises(fn, contains: str):
    try:
        fn()
    except gr.JobFailed as e:
        assert contains in str(e), f"expected {contains!r} in {e}"
        return str(e)
    raise AssertionError(f"expected JobFailed containing {contains!r}")


def spark_tests(manifest: dict) -> list[tuple[str, object]]:
    from pyspark.sql import SparkSession

    started = time.time()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("meshkit-glue-runner-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", os.path.join(manifest["workdir"], "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={manifest['workdir']}")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    print(json.dumps({"event": "spark session", "seconds": round(time.time() - started, 1)}), file=sys.stderr)
    cases = {c["job"]: c for c in manifest["cases"]}
    results: list[tuple[str, object]] = []

    def test(name):
        def wrap(fn):
            t = time.time()
            try:
                fn()
                results.append((name, None))
            except Exception:  # noqa: BLE001 - every failure is reported with its traceback
                results.append((name, traceback.format_exc()))
            print(json.dumps({"test": name, "seconds": round(time.time() - t, 2)}), file=sys.stderr)
            return fn

        return wrap

    # The differential test: each example job's SQL on Spark vs meshkit's result.
    for case in manifest["cases"]:

        @test(f"differential {case['job']}")
        def _(case=case):
            spec = case["spec"]
            views = gr.register_inputs(spark, spec, "test-run", case["inputs"])
            params = gr.run_params(spec, case["params"], "test-run")
            df = gr.transform(spark, spec, case["sql"], params, views)
            import pyarrow.parquet as pq

            expected = pq.read_table(case["expected"])
            assert df.columns == expected.column_names, f"columns {df.columns} vs meshkit {expected.column_names}"
            got = [tuple(r) for r in df.collect()]
            want = list(zip(*[expected.column(i).to_pylist() for i in range(expected.num_columns)]))
            assert len(want) > 0, "meshkit's result is empty: the sample data does not exercise this job"
            diff = same_rows(got, want)
            assert diff is None, f"Spark and meshkit differ: {diff}"

    daily = cases["daily_sales"]

    for case in manifest["cases"]:
        for inp in case["spec"]["inputs"]:
            if inp["format"] == "iceberg":
                continue

            @test(f"raw {inp['format']} files read as meshkit reads them: {inp['qualified']}")
            def _(case=case, inp=inp):
                import pyarrow.parquet as pq

                local = dict(inp, rejected_location=os.path.join(manifest["workdir"], "rejected", inp["table"]))
                df = gr.read_input(spark, case["spec"], local, "r0", location=case["raw_locations"][inp["qualified"]])
                names = [c["name"] for c in inp["columns"]]
                got = [tuple(r) for r in df.select(*names).collect()]
                meshkit = pq.read_table(case["inputs"][inp["qualified"]]).select(names)
                want = list(zip(*[meshkit.column(i).to_pylist() for i in range(meshkit.num_columns)]))
                diff = same_rows(got, want)
                assert diff is None, f"Spark's reading differs from meshkit's: {diff}"

    @test("spec parsing and arguments")
    def _():
        spec = gr.load_spec(json.dumps(daily["spec"]))
        assert spec["job"] == "daily_sales"
        bad = dict(daily["spec"], spec_version=99)
        expect_raises(lambda: gr.load_spec(json.dumps(bad)), "not supported by this runner")
        uri, params = gr.parse_args(
            ["--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1", "--job-spec", "s3://b/jobs/pj01/daily_sales.json", "--ENV", "dev", "--run_date", "2026-11-27", "--TempDir", "s3://b/t/"]
        )
        assert uri == "s3://b/jobs/pj01/daily_sales.json" and params == {"run_date": "2026-11-27"}, params
        expect_raises(lambda: gr.parse_args(["--run_date", "x"]), "missing --job-spec")

    @test("inputs as temporary views, qualified names bound, params bound")
    def _():
        spec = daily["spec"]
        views = gr.register_inputs(spark, spec, "r1", daily["inputs"])
        assert views == {"f01_raw.sales_events": "__mesh_in_f01_raw__sales_events"}, views
        total = spark.table(views["f01_raw.sales_events"]).count()
        sql = "SELECT COUNT(*) AS n FROM `F01_RAW`.sales_events -- f01_raw.sales_events stays in comments\nWHERE event_date >= DATE'${since}' AND '${env}' = 'dev' AND 'f01_raw.sales_events' <> ''"
        params = gr.run_params(spec, {"since": "2026-11-15"}, "r1")
        n = gr.transform(spark, spec, sql, params, views).collect()[0]["n"]
        want = spark.table(views["f01_raw.sales_events"]).where("event_date >= DATE'2026-11-15'").count()
        assert 0 < n == want < total, (n, want, total)
        expect_raises(lambda: gr.transform(spark, spec, sql, gr.run_params(spec, {}, "r1"), views), "parameter `${since}` has no value")

    @test("a failing error check stops the job before any write")
    def _():
        spec = copy.deepcopy(daily["spec"])
        spec["checks"].append({"name": "too_few", "severity": "error", "type": "row_count_min", "min": 10**9})
        spec["checks"].append({"name": "warn_only", "severity": "warn", "type": "sql", "sql": "SELECT * FROM output WHERE units > 0"})
        rec = RecordingSpark(spark)
        msg = expect_raises(lambda: gr.run(rec, spec, daily["sql"], gr.run_params(spec, {}, "r2"), "r2", daily["inputs"]), "check `too_few` failed")
        assert "nothing was committed to curated.daily_sales" in msg, msg
        writes = [s for s in rec.statements if s.split()[0].upper() in ("INSERT", "MERGE", "ALTER", "SET", "DESCRIBE", "SHOW")]
        assert not writes, f"statements ran after a failed check: {writes}"
        # The warn check failed too, and did not stop anything on its own.
        units = spark.createDataFrame([(3,)], "units bigint")
        outcomes = gr.run_checks(spark, daily["spec"] | {"checks": spec["checks"][-1:]}, units)
        assert outcomes[0]["passed"] is False and outcomes[0]["severity"] == "warn", outcomes

    @test("checks count what the local runtime counts")
    def _():
        spark.createDataFrame(
            [(1, "a", 5.0), (1, "b", -1.0), (None, "it's", 2.0)], "k int, s string, x double"
        ).createOrReplaceTempView("output")
        checks = [
            {"name": "nn", "severity": "error", "type": "not_null", "columns": ["k"]},
            {"name": "uq", "severity": "error", "type": "unique", "columns": ["k"]},
            {"name": "av", "severity": "error", "type": "accepted_values", "column": "s", "values": ["a", "it's"]},
            {"name": "rg", "severity": "error", "type": "range", "column": "x", "min": 0, "max": 4.5},
            {"name": "rc", "severity": "error", "type": "row_count_min", "min": 5},
            {"name": "sq", "severity": "error", "type": "sql", "sql": "SELECT * FROM output WHERE s = 'a';"},
        ]
        got = {c["name"]: gr.check_outcome(c, int(spark.sql(gr.check_sql(c)).collect()[0][0] or 0))["failing_rows"] for c in checks}
        assert got == {"nn": 1, "uq": 2, "av": 1, "rg": 2, "rc": 2, "sq": 1}, got

    @test("keep_latest and the delete flag on the merge source")
    def _():
        spec = copy.deepcopy(cases["customers_latest"]["spec"])
        rows = [
            (1, "a", dt.datetime(2026, 1, 1), "I"),
            (1, "b", dt.datetime(2026, 1, 3), "U"),
            (1, "c", None, "U"),
            (2, "d", dt.datetime(2026, 1, 1), "I"),
            (2, "e", dt.datetime(2026, 1, 2), "D"),
            (3, "f", dt.datetime(2026, 1, 1), None),
            (None, "g", dt.datetime(2026, 1, 1), "I"),
            (None, "h", dt.datetime(2026, 1, 5), "U"),
        ]
        spark.createDataFrame(rows, "customer_id bigint, email string, updated_at timestamp_ntz, op string").createOrReplaceTempView("src")
        got = {r["customer_id"]: (r["email"], r[gr.DELETE_COLUMN]) for r in spark.sql(gr.merge_source_sql(spec["write"], "src")).collect()}
        assert got == {1: ("b", False), 2: ("e", True), 3: ("f", False), None: ("h", False)}, got

    @test("duplicate merge keys fail with the error rule")
    def _():
        spec = copy.deepcopy(cases["customers_latest"]["spec"])
        spec["write"]["on_duplicate"] = {"rule": "error"}
        # The result names every declared column (a missing one is an error, nullable or not).
        df = spark.createDataFrame(
            [(7, "x", dt.datetime(2026, 1, 1), "I"), (7, "y", dt.datetime(2026, 1, 2), "U")],
            "customer_id bigint, email string, updated_at timestamp_ntz, op string",
        ).selectExpr("customer_id", "email", "CAST(NULL AS STRING) AS full_name", "CAST(NULL AS STRING) AS country", "CAST(NULL AS STRING) AS segment", "updated_at", "op")
        text = expect_raises(lambda: gr.prepare_source(spark, spec, df), "several rows with key (customer_id): 1 key value(s) occur more than once, in 2 rows")
        assert "=7" not in text and "(7" not in text, f"a key value reached the error: {text}"
        spec["write"]["on_duplicate"] = {"rule": "keep_latest", "order_by": "updated_at"}
        shaped = gr.prepare_source(spark, spec, df)
        assert shaped.columns == [c["name"] for c in spec["output"]["columns"]] + ["op"], shaped.columns

    @test("a required column missing from the result is an error")
    def _():
        df = spark.createDataFrame([(1,)], "store_id int")
        expect_raises(lambda: gr.prepare_source(spark, daily["spec"], df), "has no column `sale_date`")

    @test("every generated statement parses in Spark 3.5")
    def _():
        parser = spark._jsparkSession.sessionState().sqlParser()
        for case in manifest["cases"] + manifest.get("extra_specs", []):
            spec = case["spec"]
            for s in gr.write_statements(spec) + [gr.check_sql(c) for c in spec["checks"]]:
                parser.parsePlan(s)

    @test("result types the table cannot hold, integer overflow and NULLs in required columns fail, as in meshkit")
    def _():
        spec = daily["spec"]
        types = "sale_date date, store_id bigint, orders bigint, units bigint, revenue decimal(18,2)"
        ok = spark.createDataFrame([(dt.date(2026, 1, 1), 7, 1, 2, decimal.Decimal("1.50"))], types)
        assert gr.prepare_source(spark, spec, ok).collect()[0]["store_id"] == 7
        wide = spark.createDataFrame([(dt.date(2026, 1, 1), 7, 1, 2, decimal.Decimal("1.50"))], types).selectExpr(
            "sale_date", "store_id", "orders", "units", "revenue * 2 AS revenue"
        )
        expect_raises(lambda: gr.prepare_source(spark, spec, wide), "column `revenue` is decimal(20,2), which cannot be written")
        big = spark.createDataFrame([(dt.date(2026, 1, 1), 3_000_000_000, 1, 2, decimal.Decimal("1.50"))], types)
        try:
            gr.prepare_source(spark, spec, big).collect()
            raise AssertionError("a bigint that overflows the int column was written")
        except Exception as e:  # noqa: BLE001 - Spark's own error
            assert "CAST_OVERFLOW" in str(e), e
        none = spark.createDataFrame([(None, 7, 1, 2, decimal.Decimal("1.50"))], types)
        expect_raises(lambda: gr.prepare_source(spark, spec, none), "column `sale_date` of curated.daily_sales is required (nullable = false) but the SQL result has 1 NULL values")
        for have, want, allowed in [
            ("int", "bigint", True), ("bigint", "int", True), ("int", "decimal(12,2)", True), ("float", "double", True),
            ("decimal(10,2)", "decimal(12,2)", True), ("decimal(12,3)", "decimal(14,2)", False), ("double", "float", False),
            ("decimal(13,2)", "decimal(12,2)", False), ("timestamp", "timestamp_ntz", False), ("string", "int", False),
        ]:
            assert gr.writable(have, want) is allowed, (have, want)

    @test("partition fields read from DESCRIBE TABLE: identity-only and transform specs")
    def _():
        spark.sql("DROP TABLE IF EXISTS mesh_parts")
        spark.sql("CREATE TABLE mesh_parts (k int, d date, s string) USING parquet PARTITIONED BY (d, s)")
        rows = [(r[0], r[1]) for r in spark.sql("DESCRIBE TABLE mesh_parts").collect()]
        assert gr.partitioning_of(rows) == ["d", "s"], rows
        iceberg = [("k", "int"), ("", ""), ("# Partitioning", ""), ("Part 0", "months(d)"), ("Part 1", "bucket(8, k)")]
        assert gr.partitioning_of(iceberg) == ["months(d)", "bucket(8, k)"]
        assert gr.partitioning_of([("k", "int"), ("d", "date")]) == []

    spark.stop()
    return results


def main() -> int:
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        manifest = json.load(f)
    if mode == "sql":
        print(json.dumps({c["name"]: generated_sql(c) for c in manifest["cases"]}, indent=2, sort_keys=True))
        return 0
    results = spark_tests(manifest)
    failed = [(n, e) for n, e in results if e]
    for n, e in results:
        print(("FAIL " if e else "ok   ") + n)
        if e:
            print(e)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
