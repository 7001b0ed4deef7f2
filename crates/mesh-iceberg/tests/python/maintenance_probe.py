"""Independent reader for the maintenance tests: opens our SQLite catalog with pyiceberg.

usage:
  maintenance_probe.py snapshots DB WAREHOUSE CATALOG NAMESPACE.TABLE ID[,ID...]
      prints {"<id>": [...rows sorted...], ...}: each snapshot read by pyiceberg (time travel)
  maintenance_probe.py sort_order DB WAREHOUSE CATALOG NAMESPACE.TABLE
      prints {"fields": [{"column", "direction", "null_order", "transform"}], "rows": [...]}
"""

import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def rows_of(table, snapshot_id=None):
    scan = table.scan(snapshot_id=snapshot_id) if snapshot_id is not None else table.scan()
    rows = scan.to_arrow().to_pylist()
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return rows


def main():
    cmd, db, warehouse, catalog_name, ident = sys.argv[1:6]
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{db}", warehouse=warehouse)
    table = catalog.load_table(ident)
    if cmd == "snapshots":
        out = {}
        for sid in sys.argv[6].split(","):
            out[sid] = rows_of(table, int(sid))
        print(json.dumps(out, default=str))
    elif cmd == "sort_order":
        schema = table.schema()
        fields = [
            {
                "column": schema.find_column_name(f.source_id),
                "direction": str(f.direction.value),
                "null_order": str(f.null_order.value),
                "transform": str(f.transform),
            }
            for f in table.sort_order().fields
        ]
        print(json.dumps({"fields": fields, "rows": rows_of(table)}, default=str))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
