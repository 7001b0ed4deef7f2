"""Tests of the Glue runner's retries (issue 23): which errors are transient, the waits, and
`main` retrying a transient error but never a permanent one.

    python retry_tests.py WORKDIR

Pure cases first (error chains as `error_chain` builds them), then one local Spark session:
real Spark and Java exceptions (a SQL typo, an unknown table, a refused connection, a missing
file) classified through Py4J, and `main` end to end with a job whose attempt raises them. The
waits are recorded, never slept. Prints one JSON line per test; exits 1 on any failure. Driven
by crates/mesh-infra/tests/runner_retries.rs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
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


def java(*classes: str, message: str = "") -> dict:
    """One link of a Java exception chain: the class, then its superclasses."""
    return {"classes": list(classes), "message": message}


IOE = ("java.io.IOException", "java.lang.Exception", "java.lang.Throwable", "java.lang.Object")
RTE = ("java.lang.RuntimeException", "java.lang.Exception", "java.lang.Throwable", "java.lang.Object")
PY4J = {"classes": ["Py4JJavaError", "Py4JError", "Exception"], "message": "An error occurred while calling o42.sql."}


@test("the local engine's transient kinds are transient")
def _():
    cases = {
        "connection reset": [PY4J, java("java.net.SocketException", *IOE, message="Connection reset")],
        "read timeout": [PY4J, java("java.net.SocketTimeoutException", "java.io.InterruptedIOException", *IOE, message="Read timed out")],
        "lost commit race": [PY4J, java("org.apache.iceberg.exceptions.CommitFailedException", *RTE, message="Cannot commit glue_catalog.db.t because base metadata location changed")],
        "S3 slow down": [PY4J, java("org.apache.spark.SparkException", *RTE, message="Job aborted"),
                         java("software.amazon.awssdk.services.s3.model.S3Exception", *RTE, message="Please reduce your request rate. (Service: S3, Status Code: 503, Request ID: X)")],
        "Glue throttling": [PY4J, java("software.amazon.awssdk.services.glue.model.GlueException", *RTE, message="Rate exceeded (Service: Glue, Status Code: 400, Request ID: Y) ThrottlingException")],
        "Glue concurrent modification": [PY4J, java("software.amazon.awssdk.services.glue.model.ConcurrentModificationException", *RTE, message="Update table failed due to concurrent modifications")],
        "Iceberg IO wrapper": [PY4J, java("org.apache.iceberg.exceptions.RuntimeIOException", "java.io.UncheckedIOException", *RTE, message="Failed to open input stream")],
        "Python connection error": [{"classes": ["ConnectionResetError", "ConnectionError", "OSError", "Exception"], "message": "reset by peer"}],
    }
    for name, chain in cases.items():
        assert gr.error_is_transient(chain), name


@test("failed checks, SQL errors, missing or forbidden objects, unknown errors and unknown commits are permanent")
def _():
    cases = {
        "failed check": [{"classes": ["JobFailed", "Exception"], "message": "check `unique` on curated.t failed: 2 duplicate keys"}],
        "SQL typo": [{"classes": ["ParseException", "AnalysisException", "CapturedException"], "message": "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'"}],
        "unknown column": [{"classes": ["AnalysisException", "CapturedException"], "message": "[UNRESOLVED_COLUMN.WITH_SUGGESTION] qty"}],
        "missing file behind an IOException": [PY4J, java("java.io.FileNotFoundException", *IOE, message="s3://b/k does not exist")],
        "access denied": [PY4J, java("java.nio.file.AccessDeniedException", "java.nio.file.FileSystemException", *IOE, message="s3://b/k: 403 Forbidden")],
        "S3 403 inside a retryable-looking error": [PY4J, java("org.apache.spark.SparkException", *RTE, message="Status Code: 503"),
                                                    java("software.amazon.awssdk.services.s3.model.S3Exception", *RTE, message="Access Denied (Service: S3, Status Code: 403)")],
        "commit state unknown": [PY4J, java("org.apache.iceberg.exceptions.CommitStateUnknownException", *RTE, message="Cannot determine whether the commit was successful"),
                                 java("java.net.SocketTimeoutException", *IOE, message="Read timed out")],
        "unknown runtime error": [PY4J, java("java.lang.IllegalStateException", *RTE, message="boom")],
        "JVM's ConcurrentModificationException (a bug, not Glue's)": [PY4J, java("java.util.ConcurrentModificationException", *RTE)],
        "Python bug": [{"classes": ["KeyError", "LookupError", "Exception"], "message": "'x'"}],
    }
    for name, chain in cases.items():
        assert not gr.error_is_transient(chain), name


@test("an error that says whether it is transient is taken at its word")
def _():
    class Conflict(gr.JobFailed):
        transient = True

    e = Conflict("the job's state changed since this run read it")
    assert gr.error_is_transient(gr.error_chain(e))
    e = gr.JobFailed("x")
    e.transient = False
    try:
        raise e from ConnectionResetError("reset")
    except gr.JobFailed as raised:
        assert not gr.error_is_transient(gr.error_chain(raised))
    # Without the attribute the cause is read: a connection error under a wrapper is transient.
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError as inner:
            raise RuntimeError("while reading") from inner
    except RuntimeError as outer:
        chain = gr.error_chain(outer)
        assert [c["classes"][0] for c in chain] == ["RuntimeError", "ConnectionResetError"], chain
        assert gr.error_is_transient(chain)


@test("the runner's lost state race (StateConflict) is retried, other runner errors are not")
def _():
    calls = []

    def attempt(n):
        calls.append(n)
        if n == 1:
            raise gr.StateConflict("curated.t changed after this run read its state; nothing was committed")
        raise gr.JobFailed("check `unique` failed")

    try:
        gr.run_with_retries(attempt, 3, 1, None, lambda w: None)
    except gr.JobFailed as e:
        assert not isinstance(e, gr.StateConflict), e
    else:
        raise AssertionError("no error")
    assert calls == [1, 2], calls


@test("waits double from the backoff, as the local engine's")
def _():
    assert gr.retry_waits(0, 30) == []
    assert gr.retry_waits(3, 30) == [30, 60, 120]
    assert gr.retry_waits(2, 0) == [0, 0]


@test("retry settings come from the state machine, else from the manifest's glue.max_retries")
def _():
    spec = {"glue": {"max_retries": 3}}
    assert gr.retry_settings({"mesh-retries": "2", "mesh-retry-backoff-seconds": "5"}, spec) == (2, 5.0)
    assert gr.retry_settings({"mesh-retries": "0"}, spec) == (0, gr.DEFAULT_RETRY_BACKOFF_SECONDS)
    assert gr.retry_settings({}, spec) == (3, gr.DEFAULT_RETRY_BACKOFF_SECONDS)
    assert gr.retry_settings({}, {}) == (0, gr.DEFAULT_RETRY_BACKOFF_SECONDS)
    for bad in ("-1", "two", ""):
        try:
            gr.retry_settings({"mesh-retries": bad}, spec)
        except gr.JobFailed as e:
            assert "--mesh-retries" in str(e), e
        else:
            raise AssertionError(f"{bad!r} accepted")


def transient_error() -> Exception:
    return ConnectionResetError("connection reset by peer")


@test("a transient error is retried with the waits, then the attempt that works returns")
def _():
    calls, waits, retried = [], [], []

    def attempt(n):
        calls.append(n)
        if n < 3:
            raise transient_error()
        return "done"

    out = gr.run_with_retries(attempt, 2, 10, lambda n, e, w: retried.append((n, w)), waits.append)
    assert out == ("done", 3), out
    assert calls == [1, 2, 3] and waits == [10, 20] and retried == [(1, 10), (2, 20)], (calls, waits, retried)


@test("a transient error past the retries fails after retries + 1 attempts")
def _():
    calls, waits = [], []

    def attempt(n):
        calls.append(n)
        raise transient_error()

    try:
        gr.run_with_retries(attempt, 2, 1, None, waits.append)
    except ConnectionResetError:
        pass
    else:
        raise AssertionError("no error")
    assert calls == [1, 2, 3] and waits == [1, 2], (calls, waits)


@test("a permanent error fails at the first attempt, whatever the retries")
def _():
    calls, waits = [], []

    def attempt(n):
        calls.append(n)
        raise gr.JobFailed("check `row_count_min` failed: 0 rows")

    try:
        gr.run_with_retries(attempt, 5, 1, None, waits.append)
    except gr.JobFailed:
        pass
    else:
        raise AssertionError("no error")
    assert calls == [1] and waits == [], (calls, waits)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spark_tests(workdir: str) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("retry_tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    jvm = spark.sparkContext._jvm

    def caught(fn) -> BaseException:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - returned to the test
            return e
        raise AssertionError("no error")

    @test("Spark: a SQL typo and an unknown table are permanent")
    def _():
        for sql, kind in (("SELEC 1", "ParseException"), ("SELECT * FROM no_such_table", "AnalysisException")):
            chain = gr.error_chain(caught(lambda: spark.sql(sql).collect()))
            assert kind in chain[0]["classes"], chain[0]
            assert not gr.error_is_transient(chain), chain

    @test("Spark: a refused connection (java.net.ConnectException through Py4J) is transient")
    def _():
        e = caught(lambda: jvm.java.net.Socket("127.0.0.1", closed_port()))
        chain = gr.error_chain(e)
        java_classes = [c for link in chain for c in link["classes"]]
        assert "java.net.ConnectException" in java_classes and "java.io.IOException" in java_classes, chain
        assert gr.error_is_transient(chain), chain

    @test("Spark: a missing file (FileNotFoundException, an IOException) is permanent")
    def _():
        path = jvm.org.apache.hadoop.fs.Path("file://" + os.path.join(workdir, "no-such-file.csv"))
        fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        chain = gr.error_chain(caught(lambda: fs.open(path)))
        assert any("java.io.FileNotFoundException" in link["classes"] for link in chain), chain
        assert not gr.error_is_transient(chain), chain

    # main() end to end: the real entry point with a spec and SQL on disk; the attempt itself
    # (`run`) is replaced by one that runs the job's SQL on Spark and, first, meets a real
    # refused connection, so what main retries is what Spark and Py4J really raise.
    os.makedirs(workdir, exist_ok=True)

    def spec_with(sql: str, max_retries: int = 0) -> str:
        sql_path = os.path.join(workdir, "job.sql")
        with open(sql_path, "w") as f:
            f.write(sql)
        spec = {
            "spec_version": gr.SPEC_VERSION, "job": "retry_job", "project": "sales", "env": "dev",
            "glue_job": "f01-pj01-retry-job-dev", "iceberg": {"catalog": "glue_catalog"},
            "sql": {"uri": "file://" + sql_path}, "params": {}, "glue": {"max_retries": max_retries},
        }
        path = os.path.join(workdir, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        return "file://" + path

    catalog = {"type": "hadoop", "warehouse": "file://" + os.path.join(workdir, "warehouse")}

    def run_main(argv: list[str], refusals: int):
        attempts, waits = [], []

        def fake_run(spark_, spec, sql_text, params, run_id, paths=None):
            attempts.append(run_id)
            if len(attempts) <= refusals:
                jvm.java.net.Socket("127.0.0.1", closed_port())
            return {"rows": spark_.sql(sql_text).count()}

        real_run = gr.run
        gr.run = fake_run
        logs = io.StringIO()
        try:
            with contextlib.redirect_stderr(logs):
                error = None
                try:
                    assert gr.main(argv, catalog=catalog, sleep=waits.append) == 0
                except Exception as e:  # noqa: BLE001 - returned to the test
                    error = e
        finally:
            gr.run = real_run
        events = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
        return error, len(attempts), waits, events

    @test("main: a refused connection is retried after the step's backoff, then the run succeeds")
    def _():
        spec = spec_with("SELECT 1 AS x")
        error, attempts, waits, events = run_main(["--job-spec", spec, "--mesh-retries", "2", "--mesh-retry-backoff-seconds", "7"], refusals=1)
        assert error is None, error
        assert attempts == 2 and waits == [7.0], (attempts, waits)
        retried = [e for e in events if e["event"] == "attempt failed"]
        assert len(retried) == 1 and retried[0]["retry_in_seconds"] == 7.0 and "ConnectException" in retried[0]["error"], retried

    @test("main: transient errors past the step's retries fail the run, logged as transient")
    def _():
        spec = spec_with("SELECT 1 AS x")
        error, attempts, waits, events = run_main(["--job-spec", spec, "--mesh-retries", "1", "--mesh-retry-backoff-seconds", "3"], refusals=5)
        assert error is not None and attempts == 2 and waits == [3.0], (error, attempts, waits)
        failed = [e for e in events if e["event"] == "job failed"]
        assert len(failed) == 1 and failed[0]["transient"] is True, failed

    @test("main: a SQL typo fails the run at the first attempt even with retries")
    def _():
        spec = spec_with("SELEC 1")
        error, attempts, waits, events = run_main(["--job-spec", spec, "--mesh-retries", "3", "--mesh-retry-backoff-seconds", "1"], refusals=0)
        assert error is not None and "ParseException" in type(error).__name__, repr(error)
        assert attempts == 1 and waits == [], (attempts, waits)
        failed = [e for e in events if e["event"] == "job failed"]
        assert len(failed) == 1 and failed[0]["transient"] is False, failed

    @test("main: a run started by hand retries as the manifest's glue.max_retries says")
    def _():
        spec = spec_with("SELECT 1 AS x", max_retries=1)
        error, attempts, waits, _ = run_main(["--job-spec", spec], refusals=1)
        assert error is None and attempts == 2 and waits == [float(gr.DEFAULT_RETRY_BACKOFF_SECONDS)], (error, attempts, waits)
        spec = spec_with("SELECT 1 AS x", max_retries=0)
        error, attempts, waits, _ = run_main(["--job-spec", spec], refusals=1)
        assert error is not None and attempts == 1 and waits == [], (error, attempts, waits)

    spark.stop()


if __name__ == "__main__":
    spark_tests(sys.argv[1])
    sys.exit(1 if FAILURES else 0)
