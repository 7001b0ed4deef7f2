"""Driver of bench/merge (called by run.sh): runs the meshkit bench binary, then the pyiceberg
and the Spark + Iceberg baselines, each on its own copy of the same table and as its own process,
prints the comparison and writes results/merge-<profile>-<timestamp>.json (and
results/latest-<profile>.json).

usage: run.py EXE PROFILE WORKDIR [--rows N] [--days D] [--changes N] [--update-days K] [--cap N]
"""
import argparse
import datetime as dt
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import machine, measure, mib, table, write_json  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("exe")
p.add_argument("profile")
p.add_argument("workdir")
p.add_argument("--rows", type=int, default=10_000_000)
p.add_argument("--days", type=int, default=100)
p.add_argument("--changes", type=int, default=1_000_000)
p.add_argument("--update-days", type=int, default=30)
p.add_argument("--cap", type=int, default=100_000, help="rows given to pyiceberg (and to the like-for-like meshkit run)")
a = p.parse_args()

host = machine()
os.makedirs(a.workdir, exist_ok=True)
rust_json = os.path.join(a.workdir, "meshkit.json")
py_json = os.path.join(a.workdir, "pyiceberg.json")
spark_json = os.path.join(a.workdir, "spark.json")

print(f"== meshkit ({a.profile}): {a.rows:,}-row table over {a.days} days, upsert {a.changes:,} rows "
      f"(and the first {a.cap:,}) ...", flush=True)
m = measure([a.exe, "--dir", os.path.join(a.workdir, "lake"), "--rows", a.rows, "--days", a.days,
             "--changes", a.changes, "--update-days", a.update_days, "--cap", a.cap, "--out", rust_json],
            log_path=os.path.join(a.workdir, "meshkit.log"))
if m["rc"] != 0:
    sys.exit(f"meshkit bench failed (exit {m['rc']}); see {a.workdir}/meshkit.log")
rust = json.load(open(rust_json))

print(f"== pyiceberg: Table.upsert of the first {rust['cap']:,} rows ...", flush=True)
py = measure([sys.executable, os.path.join(HERE, "pyiceberg_upsert.py"), rust_json, py_json],
             log_path=os.path.join(a.workdir, "pyiceberg.log"))
if py["rc"] != 0:
    sys.exit(f"pyiceberg upsert failed or gave wrong results (exit {py['rc']}); see {a.workdir}/pyiceberg.log")
pyr = json.load(open(py_json))

print(f"== Spark + Iceberg: MERGE INTO of the full {a.changes:,} rows ...", flush=True)
sp = measure([sys.executable, os.path.join(HERE, "spark_merge.py"), rust_json, spark_json, a.workdir],
             log_path=os.path.join(a.workdir, "spark.log"))
if sp["rc"] != 0:
    sys.exit(f"Spark + Iceberg merge failed or gave wrong results (exit {sp['rc']}); see {a.workdir}/spark.log")
spr = json.load(open(spark_json))

full, cap = rust["meshkit_full"], rust["meshkit_capped"]
full["process_peak_rss_bytes"] = m["peak_rss_bytes"]
pyr["process_peak_rss_bytes"] = py["peak_rss_bytes"]
spr["process_peak_rss_bytes"] = sp["peak_rss_bytes"]
same_rows_ratio = pyr["seconds"] / cap["seconds"]
spark_ratio = spr["seconds"] / full["seconds"]
spark_merge_ratio = spr["merge_seconds"] / full["seconds"]
rows_s_ratio = full["rows_per_second"] / pyr["rows_per_second"]

t = rust["table"]
print()
print(f"table: {t['rows']:,} rows, {t['files']} files, {mib(t['bytes'])}, partitioned by day(event_ts) over "
      f"{t['days']} days; updates in the last {t['update_days']} days; loaded by meshkit in {t['load_seconds']:.1f} s")
rows = []
for label, r in [("meshkit, full source", full), ("meshkit, capped source", cap), ("pyiceberg, capped source", pyr),
                 ("Spark + Iceberg, full source", spr)]:
    rows.append([label, f"{r['source_rows']:,}", f"{r['seconds']:.2f}", f"{r['rows_per_second']:,.0f}",
                 r.get("files_read", "-"), f"{r['files_rewritten']}/{r['touched_files']}", mib(r["bytes_rewritten"]), mib(r["touched_bytes"]),
                 f"{r['rewritten_over_touched']:.2f}", f"{r['rewritten_over_table']:.0%}", mib(r["bytes_written"])])
print(table(["run", "rows", "merge s", "rows/s", "files read", "files rewr/touched", "bytes rewritten", "touched-key files",
             "rewr/touched", "of table", "bytes written"], rows))
print()
print(f"meshkit/pyiceberg, same {rust['cap']:,} rows on the same table: {same_rows_ratio:.1f}x faster "
      f"({cap['seconds']:.2f} s vs {pyr['seconds']:.2f} s)")
print(f"meshkit rows/s ({a.changes:,} rows) / pyiceberg rows/s ({rust['cap']:,} rows): {rows_s_ratio:.1f}x")
print(f"meshkit/Spark + Iceberg {spr['spark']} ({spr['master']}), same {a.changes:,} rows on the same table: {spark_ratio:.1f}x faster "
      f"({full['seconds']:.2f} s vs {spr['seconds']:.2f} s: source checks {spr['prepare_seconds']:.2f} s + MERGE INTO "
      f"{spr['merge_seconds']:.2f} s; MERGE INTO alone {spark_merge_ratio:.1f}x); Spark's session start, not counted: "
      f"{spr['session_seconds']:.1f} s; same rows ({spr['rows_after']:,}) and checksum as meshkit's table")

stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
result = {
    "bench": "merge",
    "utc": stamp,
    "profile": a.profile,
    "machine": host,
    "params": vars(a) | {"exe": a.exe},
    "table": t,
    "meshkit_full": full,
    "meshkit_capped": cap,
    "pyiceberg": pyr,
    "spark_iceberg": spr,
    "ratio_same_rows_pyiceberg_seconds_over_meshkit_seconds": same_rows_ratio,
    "ratio_rows_per_second_meshkit_full_over_pyiceberg_capped": rows_s_ratio,
    "ratio_same_rows_spark_seconds_over_meshkit_full_seconds": spark_ratio,
    "ratio_same_rows_spark_merge_statement_seconds_over_meshkit_full_seconds": spark_merge_ratio,
}
out = os.path.join(HERE, "results", f"merge-{a.profile}-{stamp}.json")
write_json(out, result)
write_json(os.path.join(HERE, "results", f"latest-{a.profile}.json"), result)
print(f"\nresults: {os.path.relpath(out)}")
