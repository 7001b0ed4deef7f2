"""The Glue runner's raw reads on Spark (PySpark local mode), driven by
crates/mesh-core/tests/glue_raw.rs, which compares what this writes with what meshkit read:

- `cases`: each raw table read with the runner's `read_input` (the job spec's input, its folder
  and quarantine folder pointed at local copies); the rows go to `out` as Parquet, the rejected
  rows to `rejected_location/run_id=r1/`, an error to the result file;
- `steps`: the incremental raw input read with `read_raw_increment` over each state of the
  folder at the run's time, the bookmark carried from one committed run to the next as the
  output table's summary would carry it; per run the table's rows, the bookmark, or the error.

With `--one-day` (Spark + Iceberg 1.10, `jars` in the manifest), each step runs a job through
the runner's real entry point, `glue_runner.main`, on a Hadoop catalog standing in for Glue's,
over a copy of the raw folder as it was when meshkit ran the step; per step the error, the
`files_read` of the run's report and the output table's rows.

    python raw_tests.py MANIFEST
    python raw_tests.py --one-day MANIFEST
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glue_runner as gr  # noqa: E402


class State:
    """The job state as `JobState` reads it from the output table: committed values and the
    values a run sets, committed only when the run succeeds."""

    def __init__(self):
        self.committed: dict[str, str] = {}
        self.new: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.committed.get(key)

    def set(self, key: str, value: str) -> None:
        self.new[key] = value


def rows_as_text(df) -> list[str]:
    """Rows as meshkit's test formats them: `|`-separated, NULL for a null value."""
    return sorted("|".join("NULL" if v is None else str(v) for v in r) for r in df.collect())


def main(path: str) -> int:
    from pyspark.sql import SparkSession

    m = json.load(open(path))
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("raw_tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    result = {"cases": {}, "steps": []}

    spec = m["hostile_spec"]
    for case in m["cases"]:
        inp = dict(next(i for i in spec["inputs"] if i["reference"] == case["input"]))
        inp["location"] = case["location"]
        inp["rejected_location"] = case["rejected_location"]
        try:
            df = gr.read_input(spark, spec, inp, "r1")
            # A query reading one column: the policy covered every column all the same.
            df.select("note").count()
            df.write.mode("overwrite").parquet(case["out"])
            # A second run reading the same files quarantines nothing again (once per file).
            spark.catalog.clearCache()
            gr.read_input(spark, spec, inp, "r2").select("note").count()
            again = case["rejected_location"].removeprefix("file://") + "/run_id=r2"
            try:
                requarantined = spark.read.parquet(again).count()
            except Exception:  # no folder, or a folder without data files: nothing written
                requarantined = 0
            result["cases"][case["name"]] = {"error": None, "requarantined": requarantined}
            print(f"ok   {case['name']}: read; a second run quarantined {requarantined} row(s) again")
        except gr.JobFailed as e:
            result["cases"][case["name"]] = {"error": str(e)}
            print(f"ok   {case['name']}: failed: {str(e).splitlines()[0]}")

    spec = m["events_spec"]
    key = m["bookmark_key"]
    state = State()
    table: list[str] = []
    for k, step in enumerate(m["steps"]):
        inp = dict(spec["inputs"][0])
        inp["location"] = step["location"]
        state.new = {}
        try:
            df = gr.read_raw_increment(spark, spec, inp, key, state, f"events-{k}", step["run_ms"])
            table = sorted(table + rows_as_text(df.select("id", "amount", "day")))
            state.committed.update(state.new)
            result["steps"].append({"rows": table, "bookmark": state.get(key), "error": None})
            print(f"ok   run {k}: {len(table)} rows")
        except gr.JobFailed as e:
            result["steps"].append({"rows": table, "bookmark": state.get(key), "error": str(e)})
            print(f"ok   run {k}: refused: {str(e).splitlines()[0]}")

    with open(m["out"], "w") as f:
        json.dump(result, f, indent=1)
    spark.stop()
    return 0


def one_day(path: str) -> int:
    import contextlib
    import io

    import iceberg_tests as it

    m = json.load(open(path))
    os.makedirs(m["workdir"], exist_ok=True)
    spark = it.session(m)
    catalog = it.hadoop_catalog(m)
    for spec in m["specs"].values():
        it.create_like_terraform(spark, spec)
    result = {"steps": []}
    for k, step in enumerate(m["steps"]):
        spec = json.loads(json.dumps(m["specs"][step["job"]]))
        for inp in spec["inputs"]:
            inp["location"] = step["location"]
        spec_path = os.path.join(m["workdir"], f"step{k}.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        args = ["--job-spec", spec_path, "--JOB_RUN_ID", f"day-{k}", "--run_at", m["at"], *step["args"]]
        logs, error = io.StringIO(), None
        with contextlib.redirect_stderr(logs):
            try:
                gr.main(args, catalog=catalog)
            except gr.JobFailed as e:
                error = str(e)
        events = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
        done = [e for e in events if e["event"] in ("job committed", "nothing to commit")]
        scans = [{k: v for k, v in e.items() if k not in ("ts", "env", "project", "run_id")} for e in events if e["event"] == "raw input scan"]
        rows = rows_as_text(spark.table(gr.target_name(spec)))
        result["steps"].append({"error": error, "files_read": done[-1]["files_read"] if done else None, "rows": rows, "scans": scans})
        outcome = f"failed: {error.splitlines()[0]}" if error else f"{done[-1]['files_read']} files read, {len(rows)} rows"
        print(f"ok   step {k} {step['job']} {' '.join(step['args'])}: {outcome}; scans {scans}")
    with open(m["out"], "w") as f:
        json.dump(result, f, indent=1)
    spark.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--one-day":
        sys.exit(one_day(sys.argv[2]))
    sys.exit(main(sys.argv[1]))
