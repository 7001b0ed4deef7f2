"""pyiceberg baseline of bench/merge: `Table.upsert` of the first CAP source rows into
`bench.pyiceberg`, a copy of the same base snapshot meshkit merges into.

usage: pyiceberg_upsert.py MESHKIT_JSON OUT_JSON
Times only `Table.upsert` (not the interpreter, imports or reading the source), then checks
row counts and updated rows the same way the meshkit side does.
"""
import json
import sys
import time

import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

rust = json.load(open(sys.argv[1]))
out_path = sys.argv[2]
catalog = SqlCatalog("bench", uri=f"sqlite:///{rust['catalog']}", warehouse=f"file://{rust['warehouse']}")
table = catalog.load_table("bench.pyiceberg")
cap = rust["cap"]
updates = cap - cap // 5
inserts = cap - updates
base_rows = rust["table"]["rows"]

source = pq.read_table(rust["source"]).slice(0, cap)
# Same Arrow types; the Iceberg field ids come from the table.
source = source.cast(table.schema().as_arrow())


def files():
    f = table.inspect.files().select(["file_path", "file_size_in_bytes", "record_count"]).to_pylist()
    return {r["file_path"]: r for r in f}


before = files()
started = time.perf_counter()
result = table.upsert(source, join_cols=["id"])
seconds = time.perf_counter() - started
table = catalog.load_table("bench.pyiceberg")
after = files()

removed = sum(r["file_size_in_bytes"] for p, r in before.items() if p not in after)
added = sum(r["file_size_in_bytes"] for p, r in after.items() if p not in before)
rows_after = sum(r["record_count"] for r in after.values())
updated_rows = table.scan(row_filter=EqualTo("status", "updated"), selected_fields=("id",)).to_arrow().num_rows
problems = []
if result.rows_updated != updates or result.rows_inserted != inserts:
    problems.append(f"upsert reported {result.rows_updated} updated / {result.rows_inserted} inserted, expected {updates} / {inserts}")
if rows_after != base_rows + inserts or updated_rows != updates:
    problems.append(f"table holds {rows_after} rows ({updated_rows} updated), expected {base_rows + inserts} ({updates})")
touched = rust["touched_cap"]["bytes"]
out = {
    "engine": "pyiceberg",
    "table": "bench.pyiceberg",
    "source_rows": cap,
    "updated": result.rows_updated,
    "inserted": result.rows_inserted,
    "seconds": seconds,
    "rows_per_second": cap / seconds,
    "files_rewritten": sum(1 for p in before if p not in after),
    "bytes_rewritten": removed,
    "bytes_written": added,
    "touched_files": rust["touched_cap"]["files"],
    "touched_bytes": touched,
    "rewritten_over_touched": removed / max(touched, 1),
    "rewritten_over_table": removed / max(rust["table"]["bytes"], 1),
    "rows_after": rows_after,
    "checked": not problems,
    "problems": problems,
}
with open(out_path, "w") as f:
    json.dump(out, f, indent=2)
print(json.dumps(out, indent=2))
sys.exit(1 if problems else 0)
