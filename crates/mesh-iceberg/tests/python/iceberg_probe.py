"""Independent reader/writer for mesh-iceberg tests: opens our SQLite catalog with pyiceberg.

usage:
  iceberg_probe.py read   DB WAREHOUSE CATALOG NAMESPACE.TABLE
      prints {"rows": [...sorted...], "schema": [...], "snapshots": [...], "entries": [...]}
  iceberg_probe.py append DB WAREHOUSE CATALOG NAMESPACE.TABLE ROWS_JSON
      appends rows (a JSON list of objects) with pyiceberg
"""

import datetime
import decimal
import json
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog


def plain(v):
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def main():
    cmd, db, warehouse, catalog_name, ident = sys.argv[1:6]
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{db}", warehouse=warehouse)
    table = catalog.load_table(ident)
    if cmd == "read":
        rows = [plain(r) for r in table.scan().to_arrow().to_pylist()]
        rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
        snapshots = [
            {
                "snapshot_id": s.snapshot_id,
                "parent_id": s.parent_snapshot_id,
                "sequence_number": s.sequence_number,
                "summary": s.summary.ser_model() if s.summary else {},
            }
            for s in table.metadata.snapshots
        ]
        entries = []
        if table.current_snapshot() is not None:
            for e in table.inspect.entries().to_pylist():
                entries.append({"status": e["status"], "path": e["data_file"]["file_path"]})
        print(json.dumps({
            "rows": rows,
            "schema": [f.name for f in table.schema().fields],
            "snapshots": snapshots,
            "entries": entries,
        }))
    elif cmd == "append":
        rows = json.loads(sys.argv[6])
        arrow_schema = table.schema().as_arrow()
        data = pa.Table.from_pylist(rows, schema=arrow_schema)
        table.append(data)
        print(json.dumps({"ok": True}))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
