"""Issue 26 item 11, the Glue runner's side (pure functions, no Spark):

- maintenance passes compaction.delete_file_threshold to rewrite_data_files as Iceberg's
  `delete-file-threshold`;
- `writable` refuses integers into floats that cannot hold them exactly (bigint -> float/double,
  int -> float), like mesh-iceberg's `conform`;
- dates and run times must be zero-padded: the same cases as mesh-core's interval tests
  (`unpadded_dates_and_times_are_refused_as_the_runner_refuses_them`);
- a duplicated merge key is reported without its values.

Usage: runner_edges.py RUNNER_DIR MAINTENANCE_SPEC.json
Prints one JSON line per case: {"test": ..., "ok": bool, "error": ...}.
"""
import datetime as dt
import json
import sys
import traceback

sys.path.insert(0, sys.argv[1])
import glue_runner as gr  # noqa: E402

SPEC = json.load(open(sys.argv[2]))
CASES = []


def case(name):
    def wrap(fn):
        CASES.append((name, fn))
        return fn

    return wrap


def refused(fn, contains: str) -> str:
    try:
        fn()
    except gr.JobFailed as e:
        assert contains in str(e), f"expected {contains!r} in {e}"
        return str(e)
    raise AssertionError(f"expected JobFailed containing {contains!r}")


NOW = dt.datetime(2026, 12, 7, 6, 0, 0)


def rewrite(stmts):
    calls = [s for s in stmts if "rewrite_data_files" in s]
    assert len(calls) == 1, stmts
    return calls[0]


@case("maintenance passes the manifest's delete_file_threshold to rewrite_data_files")
def _():
    want = SPEC["optimizers"]["compaction"]["delete_file_threshold"]
    call = rewrite(gr.maintenance_statements(SPEC, NOW))
    assert f"'delete-file-threshold', '{want}'" in call, call
    # The other options are still there.
    for opt in ("target-file-size-bytes", "min-file-size-bytes", "min-input-files"):
        assert f"'{opt}'" in call, call


@case("each threshold reaches the call as written, 1 included")
def _():
    for threshold in (1, 2, 50, 10_000):
        spec = json.loads(json.dumps(SPEC))
        spec["optimizers"]["compaction"]["delete_file_threshold"] = threshold
        call = rewrite(gr.maintenance_statements(spec, NOW))
        assert f"'delete-file-threshold', '{threshold}'" in call, call


@case("a threshold under 1 is refused before any statement")
def _():
    spec = json.loads(json.dumps(SPEC))
    spec["optimizers"]["compaction"]["delete_file_threshold"] = 0
    refused(lambda: gr.maintenance_statements(spec, NOW), "delete_file_threshold = 0 must be 1 or more")


@case("a spec without the field (older mesh) keeps Iceberg's default")
def _():
    spec = json.loads(json.dumps(SPEC))
    del spec["optimizers"]["compaction"]["delete_file_threshold"]
    call = rewrite(gr.maintenance_statements(spec, NOW))
    assert "delete-file-threshold" not in call, call


@case("writable refuses integers into floats that round them")
def _():
    for have, want, ok in [
        ("bigint", "double", False),
        ("bigint", "float", False),
        ("int", "float", False),
        ("int", "double", True),
        ("smallint", "float", True),
        ("tinyint", "double", True),
        ("bigint", "decimal(20,0)", True),
        ("bigint", "int", True),
        ("float", "double", True),
        ("double", "float", False),
    ]:
        assert gr.writable(have, want) is ok, (have, want)


# (text, accepted) - the same table as mesh-core's interval test.
RUN_TIMES = [
    ("2026-01-05", "2026-01-05 00:00:00"),
    ("2026-01-05T06:00", "2026-01-05 06:00:00"),
    ("2026-01-05 06:00:00", "2026-01-05 06:00:00"),
    ("2026-01-05T06:00Z", "2026-01-05 06:00:00"),
    ("2026-01-05T07:00:00+01:00", "2026-01-05 06:00:00"),
    ("2026-01-05T05:30:00-00:30", "2026-01-05 06:00:00"),
    ("2026-1-5", None),
    ("2026-01-5", None),
    ("2026-1-05T06:00:00Z", None),
    ("2026-01-05T6:00", None),
    ("2026-01-05T06:0", None),
    ("2026-01-05T06", None),
    ("2026-01-05T06:00+01:00", None),
    ("2026-01-05T06:00:00+1:00", None),
    ("20260105", None),
    ("2026-W02-1", None),
    ("2026-02-30", None),
    ("2026-11- 5", None),
]
INSTANTS = [
    ("2026-01-05", True),
    ("2026-01-05T06", True),
    ("2026-01", True),
    ("2026-1-5", False),
    ("2026-1-05", False),
    ("2026-01-5", False),
    ("2026-1", False),
    ("2026-01-05T6", False),
    ("2026-11- 5", False),
    ("0000-01-01", False),
]


@case("run times: zero-padded fields only, as mesh-core reads them")
def _():
    for text, want in RUN_TIMES:
        if want is None:
            refused(lambda: gr.parse_run_time(text), "is not a time")
        else:
            got = gr.parse_run_time(text)
            assert str(got) == want, (text, got)


@case("dates, hours and months of --from/--to and interval parameters: zero-padded only")
def _():
    for text, ok in INSTANTS:
        if ok:
            gr._parse_instant(text)
        else:
            refused(lambda: gr._parse_instant(text), "is not a date or hour")
    # The interval of an unpadded day is refused too, not read as another day.
    refused(lambda: gr.interval("day", "2026-1-5"), "zero-padded")


@case("a duplicated merge key is reported without its values")
def _():
    spec = {"job": "customers_latest", "sql": {"file": "sql/customers_latest.sql"}}
    text = gr.duplicate_key_error(spec, ["customer_id", "region"], 3, 7)
    assert "several rows with key (customer_id, region)" in text, text
    assert "3 key value(s) occur more than once, in 7 rows" in text, text
    assert "values not logged" in text and "HAVING COUNT(*) > 1" in text, text
    sql = gr.duplicate_keys_sql(["customer_id", "region"], "src")
    outer = sql.split(" FROM ", 1)[0]
    assert outer == "SELECT COUNT(*) AS duplicated_keys, COALESCE(SUM(n), 0) AS rows", sql
    assert "customer_id" not in outer, f"the query returns key values: {sql}"


def main() -> int:
    failed = 0
    for name, fn in CASES:
        try:
            fn()
            print(json.dumps({"test": name, "ok": True}))
        except Exception:  # noqa: BLE001 - reported per case
            failed += 1
            print(json.dumps({"test": name, "ok": False, "error": traceback.format_exc()}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
