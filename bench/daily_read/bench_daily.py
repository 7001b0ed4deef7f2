"""bench/daily_read: what a daily run reads of a 30-day raw table partitioned by day, against a
full read of the same table, on the local engine (`mesh run`) and on the Glue runner (Spark 3.5 +
Iceberg 1.10, local) — issue 28, item 2.

    python bench/daily_read/bench_daily.py MESH_BIN PROFILE WORKDIR RESULT_JSON

Environment: DAYS (30), ROWS_PER_DAY (200000), BAD_PER_DAY (1), REPEAT (3), ENGINES
("local,runner"), BENCH_ICEBERG_JARS (the runner; bench/lib.sh), BENCH_SPARK_MASTER (local[2]),
BENCH_SPARK_DRIVER_MEMORY (8g).

One domain, one project (`daily`, slug dr01): a raw CSV table `raw.events` partitioned by `day`
(Hive folders `day=YYYY-MM-DD`), one file per day, each holding ROWS_PER_DAY good rows and
BAD_PER_DAY rows with a bad `store_id`, `bad_rows = "quarantine"`; and two jobs with the same
aggregate into Iceberg tables:

- `day_totals`: a time-range job (grain day) whose SQL filters on the partition column with the
  interval (`day >= ${interval_start} AND day < ${interval_end}`), run for one day
  (`run_date`), the daily run;
- `all_totals`: the same SQL without the filter, `mode = "overwrite"`: the full read.

Each engine runs both jobs on the same files: one untimed warm-up of each, then REPEAT rounds of
daily then full. Local: the `mesh` binary as a child process (`mesh run --job J --param
run_date=D --at T`), wall time of the process, and rows and files read from the run record
(`.mesh/runs/<run>.json`). Runner: `glue_runner.main` (the Glue job's entry point) on one local
Spark session with a Hadoop catalog for Glue's, the job specs `mesh build --env dev` writes with
their locations pointed at the same local files; the session's cache is cleared before each run
(a Glue run starts a new Spark application), wall time of `main`; files read from the run's
report, rows read counted from the files it read.

Checks (any failure fails the bench): each run read the files expected (1 and DAYS), its good
and rejected rows add up to the rows of the files it read, the good rows equal the rows its
output counts (SUM(n)), and both engines wrote the same rows into both tables.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DAYS = int(os.environ.get("DAYS", "30"))
ROWS_PER_DAY = int(os.environ.get("ROWS_PER_DAY", "200000"))
BAD_PER_DAY = int(os.environ.get("BAD_PER_DAY", "1"))
REPEAT = int(os.environ.get("REPEAT", "3"))
ENGINES = [e.strip() for e in os.environ.get("ENGINES", "local,runner").split(",") if e.strip()]
FIRST_DAY = date(2026, 11, 1)
RUN_DAY = FIRST_DAY + timedelta(days=DAYS // 2)
# The run's time: every day of the table is complete (a time-range job refuses a day that is not).
RUN_AT = (FIRST_DAY + timedelta(days=DAYS)).isoformat() + "T06:00:00Z"
SLUG = "dr01"
JOBS = {"daily": "day_totals", "full": "all_totals"}

PROJECT = f'''name = "daily"
project_slug = "{SLUG}"
owner = "bench"
classification = "internal"
description = "bench/daily_read: one day of a {DAYS}-day raw table against a full read."

[[tables]]
name = "events"
layer = "raw"
format = "csv"
bad_rows = "quarantine"
partition_by = ["day"]
columns = [
  {{ name = "id", type = "long", nullable = false }},
  {{ name = "store_id", type = "int" }},
  {{ name = "sku", type = "string" }},
  {{ name = "amount", type = "decimal(12,2)" }},
  {{ name = "ts", type = "timestamp" }},
  {{ name = "day", type = "date", nullable = false }},
]
[tables.csv]
header = true

[[tables]]
name = "day_totals"
layer = "curated"
partition_by = ["day"]
columns = [
  {{ name = "day", type = "date" }},
  {{ name = "store_id", type = "int" }},
  {{ name = "amount", type = "decimal(22,2)" }},
  {{ name = "n", type = "long" }},
]

[[tables]]
name = "all_totals"
layer = "curated"
partition_by = ["day"]
columns = [
  {{ name = "day", type = "date" }},
  {{ name = "store_id", type = "int" }},
  {{ name = "amount", type = "decimal(22,2)" }},
  {{ name = "n", type = "long" }},
]

[[jobs]]
name = "day_totals"
sql = "sql/day_totals.sql"
inputs = ["raw.events"]
output = "curated.day_totals"
mode = "overwrite"
[jobs.time_range]
column = "day"
grain = "day"

[[jobs]]
name = "all_totals"
sql = "sql/all_totals.sql"
inputs = ["raw.events"]
output = "curated.all_totals"
mode = "overwrite"
'''

SELECT = "SELECT day, store_id, CAST(SUM(amount) AS DECIMAL(22, 2)) AS amount, COUNT(*) AS n\nFROM f01_raw.events\n"
SQL = {
    "day_totals": SELECT + "WHERE day >= CAST('${interval_start}' AS DATE) AND day < CAST('${interval_end}' AS DATE)\nGROUP BY day, store_id\n",
    "all_totals": SELECT + "GROUP BY day, store_id\n",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def machine() -> dict:
    mem = cpu = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_bytes": mem, "load_average_at_start": os.getloadavg()}


def write_domain(domain: str) -> None:
    p = os.path.join(domain, "projects", "daily")
    os.makedirs(os.path.join(p, "sql"))
    shutil.copyfile(os.path.join(ROOT, "domain.json"), os.path.join(domain, "domain.json"))
    with open(os.path.join(p, "project.toml"), "w") as f:
        f.write(PROJECT)
    for job, sql in SQL.items():
        with open(os.path.join(p, "sql", f"{job}.sql"), "w") as f:
            f.write(sql)


def generate(folder: str) -> dict[str, dict]:
    """One CSV file per day, `day=YYYY-MM-DD/part-00000.csv`: ROWS_PER_DAY good rows, then
    BAD_PER_DAY rows whose `store_id` is not an int. Returns per file (path under the folder) its
    good and bad rows and bytes."""
    files = {}
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        rel = f"day={day}/part-00000.csv"
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path))
        base = d * (ROWS_PER_DAY + BAD_PER_DAY)
        lines = ["id,store_id,sku,amount,ts"]
        lines += [
            f"{i},{i % 97},sku-{i % 1009},{i % 100000 // 100}.{i % 100:02d},{day} {i % 24:02d}:{i % 60:02d}:{i // 60 % 60:02d}"
            for i in range(base, base + ROWS_PER_DAY)
        ]
        lines += [f"{i},not-a-store,bad,1.00,{day} 00:00:00" for i in range(base + ROWS_PER_DAY, base + ROWS_PER_DAY + BAD_PER_DAY)]
        text = "\n".join(lines) + "\n"
        with open(path, "w") as f:
            f.write(text)
        files[rel] = {"good": ROWS_PER_DAY, "bad": BAD_PER_DAY, "bytes": len(text)}
    return files


def mesh(bin_: str, domain: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([bin_, "--root", domain, *args], cwd=domain, capture_output=True, text=True)


def mesh_rows(bin_: str, domain: str, table: str) -> list[tuple]:
    r = mesh(bin_, domain, "sql", f"SELECT CAST(day AS STRING) AS day, store_id, CAST(amount AS STRING) AS amount, n FROM f01_curated.{table}", "--format", "json")
    if r.returncode:
        sys.exit(f"mesh sql on {table} failed:\n{r.stdout}{r.stderr}")
    return sorted((x["day"], x["store_id"], Decimal(x["amount"]), x["n"]) for x in json.loads(r.stdout))


def timed_mesh(bin_: str, domain: str, args: list[str]) -> tuple[float, int, str]:
    """Runs `mesh` as a child process: wall seconds, its peak RSS (bytes) and its output."""
    started = time.perf_counter()
    proc = subprocess.Popen([bin_, "--root", domain, *args], cwd=domain, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.decode(errors="replace")
    if proc.returncode:
        sys.exit(f"mesh {' '.join(args)} failed ({proc.returncode}):\n{text}")
    return seconds, usage.ru_maxrss * 1024, text


def expected_files(kind: str, files: dict) -> list[str]:
    return [f"day={RUN_DAY}/part-00000.csv"] if kind == "daily" else sorted(files)


def local_engine(bin_: str, domain: str, files: dict) -> list[dict]:
    def one(kind: str, label: str) -> dict:
        job = JOBS[kind]
        seconds, rss, out = timed_mesh(bin_, domain, ["run", "--job", job, "--param", f"run_date={RUN_DAY}", "--at", RUN_AT])
        m = re.search(r"run record: (\S+\.json)", out)
        if not m:
            sys.exit(f"no run record in mesh run's output:\n{out}")
        with open(os.path.join(domain, m.group(1))) as f:
            record = json.load(f)
        steps = [s for p in record["pipelines"] for s in p["steps"]]
        assert len(steps) == 1 and steps[0]["status"] == "succeeded", steps
        mt = steps[0]["metrics"]
        want = expected_files(kind, files)
        good, bad = sum(files[f]["good"] for f in want), sum(files[f]["bad"] for f in want)
        assert mt["files_read"] == len(want), f"local {kind}: files_read {mt['files_read']}, expected {len(want)}"
        assert (mt["rows_read"], mt["rows_rejected"]) == (good, bad), f"local {kind}: rows {mt['rows_read']} + {mt['rows_rejected']} rejected, expected {good} + {bad}"
        r = {
            "engine": "local", "kind": kind, "run": label, "job": job, "run_id": record["run_id"],
            "wall_seconds": seconds, "step_seconds": steps[0]["seconds"], "peak_rss_bytes": rss,
            "files_read": mt["files_read"], "rows_read": mt["rows_read"], "rows_rejected": mt["rows_rejected"],
            "bytes_read": mt["bytes_read"], "rows_written": mt["rows_written"], "interval": mt.get("interval"),
        }
        log(f"local {label} {kind}: {seconds:.2f} s (step {r['step_seconds']:.2f} s), {r['files_read']} files, {r['rows_read']} rows + {r['rows_rejected']} rejected")
        return r

    for kind in JOBS:
        one(kind, "warmup")
    return [one(kind, f"round{i}") for i in range(REPEAT) for kind in JOBS]


def runner_engine(bin_: str, domain: str, raw: str, files: dict, work: str) -> tuple[list[dict], dict, dict]:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import spark_iceberg as si

    gr = si.glue_runner
    build = os.path.join(work, "build")
    r = mesh(bin_, domain, "build", "--env", "dev", "--out", build)
    if r.returncode:
        sys.exit(f"mesh build failed:\n{r.stdout}{r.stderr}")
    spark_dir = os.path.join(work, "spark")
    os.makedirs(spark_dir)
    warehouse = os.path.join(spark_dir, "warehouse")
    catalog = {"type": "hadoop", "warehouse": "file://" + warehouse, "cache-enabled": "false"}
    spark, session_seconds = si.session(spark_dir, warehouse, "meshkit-bench-daily-read")
    specs = {}
    for job in JOBS.values():
        folder = os.path.join(build, "f01-artifacts-dev", "jobs", SLUG)
        with open(os.path.join(folder, f"{job}.json")) as f:
            spec = json.load(f)
        # The spec Glue runs, its S3 locations pointed at the local files meshkit read.
        spec["sql"]["uri"] = "file://" + os.path.join(folder, f"{job}.sql")
        for inp in spec["inputs"]:
            inp["location"] = "file://" + raw
            inp["rejected_location"] = "file://" + os.path.join(spark_dir, "events_rejected")
        path = os.path.join(spark_dir, f"{job}.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        specs[job] = (spec, path)
    # The catalog as the runner configures it, and the tables as Terraform creates them
    # (unpartitioned: the runner's first run gives them the declared partition spec).
    gr.spark_session(specs["day_totals"][0], catalog)
    spark.sql("CREATE NAMESPACE IF NOT EXISTS glue_catalog.f01_curated")
    for spec, _ in specs.values():
        spark.sql(f"CREATE TABLE {gr.target_name(spec)} ({gr.schema_ddl(spec['output']['columns'])}) USING iceberg TBLPROPERTIES ('format-version'='2')")

    # The raw files each run reads, as the runner passes them to its reader (no cost).
    read_paths: list[list[str]] = []
    reader = gr.read_raw_text

    def recording(spark_, spec, inp, run_id, location, paths):
        read_paths.append(list(paths))
        return reader(spark_, spec, inp, run_id, location, paths)

    gr.read_raw_text = recording
    base = raw.rstrip("/") + "/"

    def relative(uri: str) -> str:
        p = re.sub(r"^file:(//)?", "", uri).replace("\\", "")
        p = "/" + p.lstrip("/")
        assert p.startswith(base), (uri, base)
        return p[len(base):]

    def one(kind: str, label: str) -> dict:
        job = JOBS[kind]
        spec, path = specs[job]
        target = gr.target_name(spec)
        run_id = f"{label}-{kind}"
        spark.catalog.clearCache()
        read_paths.clear()
        logs = io.StringIO()
        args = ["--job-spec", path, "--JOB_RUN_ID", run_id, "--run_at", RUN_AT, "--run_date", str(RUN_DAY)]
        started = time.perf_counter()
        with contextlib.redirect_stderr(logs):
            gr.main(args, catalog=catalog)
        seconds = time.perf_counter() - started
        events = [json.loads(x) for x in logs.getvalue().splitlines() if x.startswith("{")]
        done = [e for e in events if e["event"] == "job committed"]
        assert len(done) == 1, events
        scans = [{k: v for k, v in e.items() if k in ("files", "files_listed", "files_selected", "why")} for e in events if e["event"] == "raw input scan"]
        rejected = sum(e.get("rejected", 0) for e in events if e["event"] == "bad rows quarantined")
        read = sorted(relative(p) for ps in read_paths for p in ps)
        want = expected_files(kind, files)
        assert read == want, f"runner {kind}: read {read}, expected {want}"
        assert done[0]["files_read"] == len(want), f"runner {kind}: files_read {done[0]['files_read']}"
        rows_in_files = sum(files[f]["good"] + files[f]["bad"] for f in read)
        good = rows_in_files - rejected
        assert rejected == sum(files[f]["bad"] for f in read), f"runner {kind}: {rejected} rows rejected"
        where = f" WHERE day = DATE '{RUN_DAY}'" if kind == "daily" else ""
        counted = spark.sql(f"SELECT SUM(n) FROM {target}{where}").collect()[0][0]
        assert counted == good, f"runner {kind}: the output counts {counted} rows, {good} were read"
        r = {
            "engine": "runner", "kind": kind, "run": label, "job": job, "run_id": run_id,
            "wall_seconds": seconds, "report_seconds": done[0]["seconds"],
            "files_read": done[0]["files_read"], "rows_read": good, "rows_rejected": rejected,
            "bytes_read": sum(files[f]["bytes"] for f in read), "rows_written": done[0]["rows_written"],
            "interval": done[0].get("interval"), "scan": scans,
        }
        log(f"runner {label} {kind}: {seconds:.2f} s, {r['files_read']} files, {good} rows + {rejected} rejected; scan {scans}")
        return r

    for kind in JOBS:
        one(kind, "warmup")
    runs = [one(kind, f"round{i}") for i in range(REPEAT) for kind in JOBS]
    tables = {
        job: sorted((str(x[0]), x[1], x[2], x[3]) for x in spark.table(gr.target_name(spec)).select("day", "store_id", "amount", "n").collect())
        for job, (spec, _) in specs.items()
    }
    settings = {k: spark.conf.get(k) for k in ("spark.master", "spark.driver.memory", "spark.sql.shuffle.partitions", "spark.sql.adaptive.enabled")}
    settings["session_seconds"] = round(session_seconds, 2)
    spark.stop()
    return runs, tables, settings


def summarise(runs: list[dict]) -> dict:
    out = {}
    for engine in sorted({r["engine"] for r in runs}):
        e = {}
        for kind in JOBS:
            rs = [r for r in runs if r["engine"] == engine and r["kind"] == kind]
            e[kind] = {
                "job": rs[0]["job"],
                "files_read": rs[0]["files_read"],
                "rows_read": rs[0]["rows_read"],
                "rows_rejected": rs[0]["rows_rejected"],
                "bytes_read": rs[0]["bytes_read"],
                "median_wall_seconds": round(statistics.median(r["wall_seconds"] for r in rs), 3),
                "wall_seconds": [round(r["wall_seconds"], 3) for r in rs],
            }
            inner = "step_seconds" if engine == "local" else "report_seconds"
            e[kind]["median_" + inner] = round(statistics.median(r[inner] for r in rs), 3)
            if engine == "local":
                e[kind]["max_peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in rs)
        d, f = e["daily"], e["full"]
        e["full_over_daily"] = {
            "files_read": round(f["files_read"] / d["files_read"], 2),
            "rows_read": round(f["rows_read"] / d["rows_read"], 2),
            "bytes_read": round(f["bytes_read"] / d["bytes_read"], 2),
            "wall_seconds": round(f["median_wall_seconds"] / d["median_wall_seconds"], 2),
        }
        inner = "median_step_seconds" if engine == "local" else "median_report_seconds"
        e["full_over_daily"][inner.replace("median_", "")] = round(f[inner] / d[inner], 2)
        out[engine] = e
    return out


def main(bin_: str, profile: str, work: str, result_path: str) -> int:
    started = time.perf_counter()
    at_start = machine()
    domain = os.path.join(work, "domain")
    write_domain(domain)
    r = mesh(bin_, domain, "validate")
    if r.returncode:
        sys.exit(f"the bench domain does not validate:\n{r.stdout}{r.stderr}")
    raw = os.path.join(domain, ".mesh", "lake", "f01-raw-local", SLUG, "events")
    t = time.perf_counter()
    files = generate(raw)
    total_bytes = sum(f["bytes"] for f in files.values())
    log(f"generated {DAYS} files x ({ROWS_PER_DAY} + {BAD_PER_DAY} bad) rows, {total_bytes / 2**20:.1f} MiB, {time.perf_counter() - t:.1f} s; daily run: {RUN_DAY}")

    runs: list[dict] = []
    spark_settings = None
    if "local" in ENGINES:
        runs += local_engine(bin_, domain, files)
    if "runner" in ENGINES:
        runner_runs, spark_tables, spark_settings = runner_engine(bin_, domain, raw, files, work)
        runs += runner_runs
    same = None
    if "local" in ENGINES and "runner" in ENGINES:
        mismatched = [job for job in JOBS.values() if mesh_rows(bin_, domain, job) != spark_tables[job]]
        assert not mismatched, f"the engines wrote different rows into {mismatched}"
        same = True
    summary = summarise(runs)
    version = subprocess.run([bin_, "--version"], capture_output=True, text=True).stdout.strip()
    st = os.stat(bin_)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {
        "bench": "daily_read",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**at_start, "load_average_at_end": os.getloadavg()},
        "mesh": {"binary": bin_, "profile": profile, "version": version, "binary_mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)), "binary_bytes": st.st_size},
        "repository_head": head,
        "engines": {
            "local": "mesh run (DataFusion + Iceberg, SQLite catalog), one process per run",
            "runner": "runtime/glue/glue_runner.py main() on Spark 3.5 + Iceberg 1.10 (local), Hadoop catalog, one session, cache cleared before each run",
        },
        "spark": spark_settings,
        "parameters": {
            "days": DAYS, "rows_per_day": ROWS_PER_DAY, "bad_rows_per_day": BAD_PER_DAY, "repeat": REPEAT,
            "first_day": str(FIRST_DAY), "run_date": str(RUN_DAY), "run_at": RUN_AT, "bad_rows": "quarantine",
            "sql": SQL,
        },
        "raw_table": {"files": len(files), "bytes": total_bytes, "rows": sum(f["good"] + f["bad"] for f in files.values())},
        "engines_wrote_the_same_rows": same,
        "summary": summary,
        "runs": runs,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(result_path)), exist_ok=True)
    with open(result_path, "w") as f:
        json.dump(result, f, indent=2, default=str)
        f.write("\n")

    print(f"{'engine':<7} {'run':<6} {'files':>5} {'rows read':>10} {'rejected':>8} {'MiB read':>9} {'median s':>9}  runs (s)")
    for engine, e in summary.items():
        for kind in JOBS:
            k = e[kind]
            print(f"{engine:<7} {kind:<6} {k['files_read']:>5} {k['rows_read']:>10} {k['rows_rejected']:>8} {k['bytes_read'] / 2**20:>9.1f} {k['median_wall_seconds']:>9.2f}  {k['wall_seconds']}")
        ratio = e["full_over_daily"]
        print(f"{engine:<7} full/daily: files {ratio['files_read']}x, rows {ratio['rows_read']}x, wall time {ratio['wall_seconds']}x")
    print(f"total {result['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
