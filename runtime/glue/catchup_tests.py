"""Scheduled time-range runs on the Glue runner, against what meshkit did on the same steps
(driven by crates/mesh-core/tests/glue_catchup.rs).

    python catchup_tests.py MANIFEST          # Spark 3.5 + Iceberg 1.10: replay every step
    python catchup_tests.py --plans CASES     # no Spark: due plans against meshkit's

For each step and job, the runner's real entry point runs with the step's run time
(`--run_at`, what the state machine passes from the schedule) and parameters, on a Hadoop
catalog standing in for Glue's, over a copy of the raw folder as it was at that step. It must
process the same intervals in the same order, end with the same rows and the same intervals
done, or fail with meshkit's message.
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


def plans(path: str) -> int:
    with open(path) as f:
        cases = json.load(f)["cases"]
    bad = 0
    for c in cases:
        tr = c["time_range"]
        got = gr.due_plan(tr, gr.parse_done(tr["grain"], c["done"]), gr.parse_run_time(c["at"]))
        mine = {
            "due": [list(x) for x in got["due"]],
            "more_due": got["more_due"],
            "in_progress": got["in_progress"],
            "describe": gr.describe_plan(got),
        }
        want = {k: c[k] for k in mine}
        # 9999-12-31 is dropped by the runner's parser (its end overflows Python's datetime)
        # and kept by meshkit's until the next commit: neither processes it.
        want_early = [x for x in c["not_complete_done"] if not x.startswith("9999")]
        if mine != want or got["not_complete_done"] != want_early:
            bad += 1
            print(f"differs: {json.dumps(c)}\n  runner: {json.dumps(mine)} early {got['not_complete_done']}")
    print(f"{len(cases) - bad} plans agree, {bad} differ")
    return 1 if bad else 0


def spark_steps(path: str) -> int:
    import iceberg_tests as it

    with open(path) as f:
        manifest = json.load(f)
    work = manifest["workdir"]
    os.makedirs(work, exist_ok=True)
    spark = it.session(manifest)
    catalog = it.hadoop_catalog(manifest)
    results: list[tuple[str, str | None]] = []
    specs = manifest["specs"]
    for spec in specs.values():
        it.create_like_terraform(spark, spec)
    for k, step in enumerate(manifest["steps"]):
        for job, want in step["jobs"].items():
            name = f"{step['name']}: {job}"
            try:
                detail = one_step(spark, catalog, work, specs[job], manifest["intervals_keys"][job], step, k, job, want)
                results.append((name + f" ({detail})", None))
            except Exception:  # noqa: BLE001 - every failure is reported with its traceback
                results.append((name, traceback.format_exc()))
    spark.stop()
    failed = [(n, e) for n, e in results if e]
    for n, e in results:
        print(("FAIL " if e else "ok   ") + n)
        if e:
            print(e)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def one_step(spark, catalog: dict, work: str, spec: dict, key: str, step: dict, k: int, job: str, want: dict) -> str:
    import iceberg_tests as it

    s = json.loads(json.dumps(spec))
    for inp in s["inputs"]:
        if inp["format"] != "iceberg":
            inp["location"] = step["location"]
    path = os.path.join(work, "run-specs", f"{job}-step{k}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(s, f)
    args = ["--job-spec", path, "--JOB_RUN_ID", f"{job}-step{k}", "--run_at", step["at"]]
    for name, value in step["params"]:
        args += [f"--{name}", value]
    target = gr.target_name(s)
    before = it.snapshots(spark, target)
    logs, error = io.StringIO(), None
    with contextlib.redirect_stderr(logs):
        try:
            assert gr.main(args, catalog=catalog) == 0
        except gr.JobFailed as e:
            error = str(e)
    events = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    intervals = [e["interval"] for e in events if e["event"] == "interval"]
    if want["error"]:
        assert error, f"the runner succeeded where meshkit failed: {want['error']}"
        # meshkit prefixes `job `name`: `; the rest of its first line is the runner's.
        first = want["error"].split("\n")[0].split(": ", 1)[1]
        assert first in error, f"runner: {error!r}\nmeshkit: {want['error']!r}"
        assert it.snapshots(spark, target) == before, "a refused run committed"
    else:
        assert error is None, f"the runner failed where meshkit succeeded: {error}"
    assert intervals == want["intervals"], f"intervals {intervals}, meshkit {want['intervals']}"
    snaps, current = gr.table_snapshots(spark, target)
    done = gr.latest_property(snaps, current, key)
    assert done == want["done"], f"intervals done {done!r}, meshkit {want['done']!r}"
    if want["rows"]:
        n = it.compare(spark.table(target), want["rows"], f"{job} after {step['name']}")
    else:
        n = spark.table(target).count()
        assert n == 0, f"{n} rows where meshkit has no table"
    return f"intervals {intervals or '-'}, {n} rows, done {done}" + (", refused" if error else "")


def main() -> int:
    if sys.argv[1] == "--plans":
        return plans(sys.argv[2])
    return spark_steps(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
