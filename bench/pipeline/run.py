"""Driver of bench/pipeline (called by run.sh): for each size, generates the sample data with
`mesh sample-data`, then runs the example pipelines with (a) `mesh run`, (b) PySpark local
writing Parquet, (c) DuckDB + pyiceberg, each as its own process measured the same way (wall
time, peak RSS of the process tree), checks that the three produced the same tables, prints
the comparison and writes results/pipeline-<profile>-<timestamp>.json (and latest-<profile>.json).

usage: run.py MESH_EXE PROFILE WORKDIR [--sizes 1000000,10000000] [--engines meshkit,spark,duckdb]
              [--raw-cache DIR] [--memory-limit EVENTS=SIZE,...] [--max-concurrency EVENTS=N,...]

--raw-cache DIR keeps each size's generated raw files there (keyed by size and by the hash of
the generator's source) and hard-links them into every run, so a 100M-event lake (~8 GB,
several minutes to write) is generated once. --memory-limit 100000000=3GiB and
--max-concurrency 100000000=1 run `mesh run` at that size with those settings (as
F01_MEMORY_LIMIT / F01_MAX_CONCURRENCY); the other engines keep their defaults.
"""
import argparse
import datetime as dt
import glob
import hashlib
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import machine, measure, mib, table, write_json  # noqa: E402

import duckdb  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
from pyiceberg.catalog.sql import SqlCatalog  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("mesh")
p.add_argument("profile")
p.add_argument("workdir")
p.add_argument("--sizes", default="1000000,10000000")
p.add_argument("--engines", default="meshkit,spark,duckdb")
p.add_argument("--keep", action="store_true", help="keep each size's lake and outputs in WORKDIR")
p.add_argument("--raw-cache", help="folder keeping generated raw files between runs")
p.add_argument("--memory-limit", default="", help="EVENTS=SIZE,...: meshkit's memory_limit per size")
p.add_argument("--max-concurrency", default="", help="EVENTS=N,...: meshkit's max_concurrency per size")
a = p.parse_args()
sizes = [int(s.replace("_", "")) for s in a.sizes.split(",")]


def per_size(option):
    return {int(k.replace("_", "")): v for k, v in (x.split("=", 1) for x in option.split(",") if x)}


# meshkit's settings per size, as the variables `mesh` reads.
mesh_settings = {}
for key, option in (("memory_limit", a.memory_limit), ("max_concurrency", a.max_concurrency)):
    for size, value in per_size(option).items():
        mesh_settings.setdefault(size, {})[key] = value
engines = a.engines.split(",")
host = machine()

# What each engine's tables are checked on: row counts and sums of every output table.
AGGS = {
    "curated.daily_sales": "COUNT(*) AS rows, SUM(orders) AS orders, SUM(units) AS units, SUM(revenue) AS revenue",
    "curated.customers": "COUNT(*) AS rows, COUNT(DISTINCT customer_id) AS ids, COUNT(email) AS emails, "
                         "MAX(updated_at) AS latest",
    "refined.orders_clean": "COUNT(*) AS rows, COUNT(DISTINCT order_id) AS ids, SUM(amount) AS amount",
    "curated.orders_by_country": "COUNT(*) AS rows, SUM(orders) AS orders, SUM(amount) AS amount",
    "raw.legacy_orders_rejected": "COUNT(*) AS rows",
}


def aggregates(arrow_by_table):
    out = {}
    for name, agg in AGGS.items():
        t = arrow_by_table[name]
        row = duckdb.sql(f"SELECT {agg} FROM t").fetchall()[0]
        cols = [c.split(" AS ")[-1] for c in agg.split(", ")]
        out[name] = {c: str(v) for c, v in zip(cols, row)}
    return out


def iceberg_tables(catalog):
    return {n: catalog.load_table(f"f01_{n}").scan().to_arrow() for n in AGGS if not n.startswith("raw.")}


def outputs(engine, dom, out):
    if engine == "meshkit":
        cat = SqlCatalog("f01", uri=f"sqlite:///{dom}/.mesh/catalog.db", warehouse=f"file://{dom}/.mesh/lake")
        t = iceberg_tables(cat)
        t["raw.legacy_orders_rejected"] = ds.dataset(
            f"{dom}/.mesh/lake/f01-raw-local/pj03/legacy_orders_rejected", partitioning="hive").to_table()
    elif engine == "spark":
        t = {n: ds.dataset(os.path.join(out, *n.split(".")), partitioning="hive").to_table()
             for n in AGGS if not n.startswith("raw.")}
        t["raw.legacy_orders_rejected"] = ds.dataset(os.path.join(out, "raw", "legacy_orders_rejected")).to_table()
    else:
        cat = SqlCatalog("f01", uri=f"sqlite:///{out}/catalog.db", warehouse=f"file://{out}/warehouse")
        t = iceberg_tables(cat)
        t["raw.legacy_orders_rejected"] = ds.dataset(os.path.join(out, "raw", "legacy_orders_rejected.parquet")).to_table()
    return aggregates(t)


def command(engine, dom, out):
    py = sys.executable
    return {
        "meshkit": [a.mesh, "run"],
        "spark": [py, os.path.join(HERE, "spark_pipeline.py"), dom, out],
        "duckdb": [py, os.path.join(HERE, "duckdb_pipeline.py"), dom, out],
    }[engine]


def generator_key():
    """What the generated data depends on: the generator's source and the example projects."""
    h = hashlib.sha256()
    for f in sorted(glob.glob(os.path.join(REPO, "crates/mesh-core/src/sample*.rs"))
                    + glob.glob(os.path.join(REPO, "projects/**/*.toml"), recursive=True)):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:16]


def generate(size, dom, base):
    """`mesh sample-data --rows SIZE` into dom's lake, or a hard-linked copy of a cached one."""
    raw = os.path.join(dom, ".mesh", "lake", "f01-raw-local")
    cached = os.path.join(a.raw_cache, f"events-{size}-{generator_key()}") if a.raw_cache else None
    if cached and os.path.isfile(os.path.join(cached, "DONE")):
        print(f"== {size:,} events: raw files from {cached}", flush=True)
        os.makedirs(os.path.dirname(raw), exist_ok=True)
        shutil.copytree(os.path.join(cached, "f01-raw-local"), raw, copy_function=os.link)
        with open(os.path.join(cached, "DONE")) as f:
            return json.load(f)
    print(f"== {size:,} events: mesh sample-data", flush=True)
    gen = measure([a.mesh, "sample-data", "--rows", size], cwd=dom, env=env, log_path=os.path.join(base, "sample-data.log"))
    if gen["rc"]:
        sys.exit(f"mesh sample-data failed; see {base}/sample-data.log")
    gen.pop("output", None)
    if cached:
        shutil.rmtree(cached, ignore_errors=True)
        os.makedirs(cached)
        shutil.copytree(raw, os.path.join(cached, "f01-raw-local"), copy_function=os.link)
        with open(os.path.join(cached, "DONE"), "w") as f:
            json.dump(gen, f)
    return gen


LABEL = {"meshkit": "meshkit (mesh run)", "spark": "PySpark 3.5 local -> Parquet", "duckdb": "DuckDB + pyiceberg"}
env = {k: v for k, v in os.environ.items() if not k.startswith("F01_") and k not in ("ENV", "MESH_ROOT")}
runs = []
failed = False
for size in sizes:
    base = os.path.join(a.workdir, f"events-{size}")
    shutil.rmtree(base, ignore_errors=True)
    dom = os.path.join(base, "domain")
    os.makedirs(dom)
    shutil.copy(os.path.join(REPO, "domain.json"), dom)
    shutil.copytree(os.path.join(REPO, "projects"), os.path.join(dom, "projects"))
    gen = generate(size, dom, base)
    raw_bytes = sum(os.path.getsize(f) for f in glob.glob(f"{dom}/.mesh/lake/f01-raw-local/**/*.*", recursive=True))
    results = {}
    for engine in engines:
        out = os.path.join(base, engine)
        print(f"== {size:,} events: {LABEL[engine]}", flush=True)
        run_env = env
        settings = mesh_settings.get(size, {}) if engine == "meshkit" else {}
        if settings:
            run_env = dict(env, **{f"F01_{k.upper()}": v for k, v in settings.items()})
            print(f"   {', '.join(f'{k} = {v}' for k, v in settings.items())}", flush=True)
        r = measure(command(engine, dom, out), cwd=dom, env=run_env, log_path=os.path.join(base, f"{engine}.log"))
        r.pop("output")
        if engine == "spark":
            # Part of the wall time is the JVM and Spark session start; shown, not subtracted.
            with open(os.path.join(base, "spark.log")) as f:
                m = re.search(r"spark session: ([0-9.]+) s", f.read())
            r["session_start_seconds"] = float(m.group(1)) if m else None
        if settings:
            r["settings"] = settings
        if r["rc"]:
            print(f"   FAILED (exit {r['rc']}); see {base}/{engine}.log", flush=True)
            failed = True
        else:
            r["tables"] = outputs(engine, dom, out)
        results[engine] = r
        print(f"   {r['wall_seconds']:.1f} s, peak RSS {mib(r['peak_rss_bytes'])}", flush=True)
    ok = [e for e in engines if "tables" in results[e]]
    same = len({json.dumps(results[e]["tables"], sort_keys=True) for e in ok}) == 1 and len(ok) == len(engines)
    if not same:
        failed = True
        print("   OUTPUTS DIFFER:")
        for name in AGGS:
            for e in ok:
                print(f"     {e:8} {name}: {results[e]['tables'][name]}")
    runs.append({"events": size, "raw_bytes": raw_bytes, "sample_data_seconds": gen["wall_seconds"],
                 "engines": results, "same_outputs": same,
                 "tables": results[ok[0]]["tables"] if ok else None})
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)

print()
rows = []
for run in runs:
    ref = run["engines"].get("meshkit")
    for e in engines:
        r = run["engines"][e]
        wr = rr = "-"
        if ref and not r["rc"] and not ref["rc"]:
            wr = f"{r['wall_seconds'] / ref['wall_seconds']:.2f}"
            rr = f"{r['peak_rss_bytes'] / ref['peak_rss_bytes']:.2f}"
        label = LABEL[e]
        if r.get("settings"):
            label += " (" + ", ".join(f"{k} {v}" for k, v in r["settings"].items()) + ")"
        if r.get("session_start_seconds"):
            label += f" (session start {r['session_start_seconds']:.0f} s)"
        rows.append([f"{run['events']:,}", label, "FAILED" if r["rc"] else f"{r['wall_seconds']:.1f}",
                     mib(r["peak_rss_bytes"]), wr, rr, "yes" if run["same_outputs"] else "NO"])
    rows.append([""] * 7)
rows = rows[:-1]
print(table(["events", "engine", "wall s", "peak RSS", "wall / meshkit", "RSS / meshkit", "same tables"], rows))
for run in runs:
    if run["tables"]:
        t = run["tables"]
        print(f"{run['events']:,} events: daily_sales {t['curated.daily_sales']['rows']} rows, customers "
              f"{t['curated.customers']['rows']}, orders_clean {t['refined.orders_clean']['rows']}, orders_by_country "
              f"{t['curated.orders_by_country']['rows']}, rejected {t['raw.legacy_orders_rejected']['rows']}")

stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
result = {"bench": "pipeline", "utc": stamp, "profile": a.profile, "machine": host,
          "params": {"sizes": sizes, "engines": engines, "mesh": a.mesh, "mesh_settings": mesh_settings,
                     "spark_driver_memory": os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "4g")},
          "runs": runs}
out = os.path.join(HERE, "results", f"pipeline-{a.profile}-{stamp}.json")
write_json(out, result)
write_json(os.path.join(HERE, "results", f"latest-{a.profile}.json"), result)
print(f"\nresults: {os.path.relpath(out)}")
sys.exit(1 if failed else 0)
