"""Hostile-input tests of the Glue runner's parameter binding and one-query check (issue 15).

    python runner_safety_tests.py WORKDIR

Pure binding cases first, then one local Spark session: Spark's own parser refuses every
statement that is not exactly one query, before `spark.sql` runs anything, and injection
payloads bound as parameters change no row count. Prints one JSON line per test; exits 1 on
any failure. Driven by crates/mesh-cli/tests/hostile.rs.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402

FAILURES: list[str] = []


def test(name):
    def wrap(fn):
        try:
            fn()
            print(json.dumps({"test": name, "ok": True}))
        except Exception:  # noqa: BLE001 - each failure is reported with its traceback
            FAILURES.append(name)
            print(json.dumps({"test": name, "ok": False, "error": traceback.format_exc()}))
        return fn

    return wrap


def raises(fn, contains: str) -> str:
    try:
        fn()
    except gr.JobFailed as e:
        assert contains in str(e), f"{contains!r} not in {str(e)!r}"
        return str(e)
    raise AssertionError(f"no JobFailed (wanted {contains!r})")


P = {"cur": "NOPE' OR '1'='1", "d": "2026-11-27", "n": "-5", "x": 'a\\b"c', "ts": "2026-11-27 06:00:00"}
T = {"d": "date", "n": "int", "ts": "timestamp"}


@test("placeholders become typed literals, quoted ones stay inside their string")
def _():
    got = gr.bind_params("SELECT '${cur}', ${cur}, ${d}, x-${n}, DATE'${d}', ${ts}, \"${x}\"", P, T)
    want = "SELECT 'NOPE\\' OR \\'1\\'=\\'1', 'NOPE\\' OR \\'1\\'=\\'1', DATE '2026-11-27', x-(-5), DATE'2026-11-27', TIMESTAMP '2026-11-27 06:00:00', \"a\\\\b\\\"c\""
    assert got == want, got
    assert gr.bind_params("SELECT 1 -- ${nope}\n/* /* ${nope} */ */", {}) == "SELECT 1 -- ${nope}\n/* /* ${nope} */ */"


@test("placeholders never build identifiers or special literals")
def _():
    raises(lambda: gr.bind_params("SELECT * FROM t_${x}", P), "inside a name")
    raises(lambda: gr.bind_params("SELECT `${x}`", P), "an identifier")
    raises(lambda: gr.bind_params("SELECT r'${x}'", P), "raw or hex")
    raises(lambda: gr.bind_params("SELECT ${nope}", P), "has no value")
    raises(lambda: gr.bind_params("SELECT ${x", P), "unclosed")
    raises(lambda: gr.bind_params("SELECT ${n}", {"n": "1 OR 1=1"}, {"n": "int"}), "is not a valid int")
    raises(lambda: gr.bind_params("SELECT ${d}", {"d": "2026-02-30"}, {"d": "date"}), "is not a valid date")
    raises(lambda: gr.bind_params("SELECT '${c}'", {"c": "${spark.hadoop.fs.s3a.secret.key}"}), "may not contain")


def spark_tests(workdir: str) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.warehouse.dir", os.path.join(workdir, "warehouse"))
        .getOrCreate()
    )
    spark.createDataFrame([("EUR", 1), ("EUR", 2), ("USD", 3)], ["currency", "q"]).createOrReplaceTempView("sales")

    class Recording:
        def __init__(self):
            self.statements = []
            self._jsparkSession = spark._jsparkSession

        def sql(self, text, *a, **k):
            self.statements.append(text)
            return spark.sql(text, *a, **k)

    outside = os.path.join(workdir, "outside")
    spec = {"inputs": [], "param_types": {"n": "int"}}

    @test("Spark runs only one query: everything else is refused before spark.sql")
    def _():
        for sql in [
            "INSERT INTO sales VALUES ('X', 9)",
            f"INSERT OVERWRITE DIRECTORY '{outside}' USING csv SELECT * FROM sales",
            "DROP TABLE sales",
            "SELECT 1; DROP TABLE sales",
            "SELECT 1 AS a; SELECT 2",
            "CACHE TABLE c AS SELECT 1",
            "SET spark.sql.ansi.enabled=false",
            "CREATE TABLE t2 USING parquet AS SELECT 1 AS a",
            "WITH a AS (SELECT 1) INSERT INTO sales SELECT 'Y', 1 FROM a",
            "",
            "-- only a comment",
            "SELECT * FROM sales WHERE q = 1 OR",
        ]:
            rec = Recording()
            raises(lambda: gr.transform(rec, spec, sql, {}, {}), "is not")
            assert rec.statements == [], (sql, rec.statements)
        assert not os.path.exists(outside), "a write ran"
        assert spark.table("sales").count() == 3

    @test("queries still run: SELECT, WITH, VALUES, FROM-first, set operations")
    def _():
        for sql in [
            "SELECT COUNT(*) AS n FROM sales",
            "WITH a AS (SELECT * FROM sales) SELECT COUNT(*) AS n FROM a",
            "VALUES (1), (2)",
            "FROM sales SELECT currency",
            "SELECT 1 AS a UNION ALL SELECT 2",
            "SELECT 1 AS a;",
        ]:
            gr.transform(spark, spec, sql, {}, {}).collect()

    @test("injection payloads change no row count on Spark")
    def _():
        sql = "SELECT COUNT(*) AS n FROM sales WHERE currency = '${cur}'"
        n = lambda v: gr.transform(spark, spec, sql, {"cur": v}, {}).collect()[0]["n"]  # noqa: E731
        assert n("EUR") == 2
        for payload in ["NOPE' OR '1'='1", "EUR' --", "EUR\\' OR \\'1\\'=\\'1", "x'; DROP TABLE sales; --"]:
            assert n(payload) == 0, payload
        unquoted = "SELECT COUNT(*) AS n FROM sales WHERE currency = ${cur}"
        assert gr.transform(spark, spec, unquoted, {"cur": "NOPE' OR '1'='1"}, {}).collect()[0]["n"] == 0
        rec = Recording()
        raises(lambda: gr.transform(rec, spec, "SELECT * FROM sales WHERE q > ${n}", {"n": "0 OR 1=1"}, {}), "is not a valid int")
        assert rec.statements == []
        assert spark.table("sales").count() == 3

    spark.stop()


if __name__ == "__main__":
    spark_tests(sys.argv[1])
    sys.exit(1 if FAILURES else 0)
