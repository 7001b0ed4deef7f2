"""Baseline (c) of bench/pipeline: the example pipelines with DuckDB reading the raw files
`mesh sample-data` wrote and pyiceberg 0.12 writing Iceberg tables (SqlCatalog on SQLite),
with each job's write mode: overwrite of the partitions present, full overwrite, upsert.

usage: duckdb_pipeline.py DOMAIN_ROOT OUT_DIR
Writes OUT_DIR/catalog.db + OUT_DIR/warehouse (Iceberg) and
OUT_DIR/raw/legacy_orders_rejected.parquet. Exits 1 if an error check fails.
"""
import datetime as dt
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from jobs import JOBS, RAW, check_queries, job_sql  # noqa: E402

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from pyiceberg.catalog.sql import SqlCatalog  # noqa: E402
from pyiceberg.expressions import And, GreaterThanOrEqual, In, LessThan, Or  # noqa: E402
from pyiceberg.partitioning import PartitionField, PartitionSpec  # noqa: E402
from pyiceberg.transforms import BucketTransform, DayTransform, MonthTransform  # noqa: E402

root, out = sys.argv[1], sys.argv[2]
lake = os.path.join(root, ".mesh", "lake")
started = time.perf_counter()
os.makedirs(os.path.join(out, "warehouse"), exist_ok=True)
catalog = SqlCatalog("f01", uri=f"sqlite:///{out}/catalog.db", warehouse=f"file://{out}/warehouse")
for ns in ("f01_refined", "f01_curated"):
    catalog.create_namespace_if_not_exists(ns)
con = duckdb.connect()
con.execute("CREATE SCHEMA f01_raw; CREATE SCHEMA f01_refined; CREATE SCHEMA f01_curated")

# Raw tables, with the bad-row policy of their manifest (fail: read errors abort).
con.execute(f"""CREATE VIEW f01_raw.sales_events AS SELECT * FROM read_csv(
  '{lake}/{RAW["sales_events"]}/*/*.csv', header = true, hive_partitioning = true,
  hive_types = {{'event_date': 'DATE'}}, timestampformat = '%Y-%m-%d %H:%M:%S',
  columns = {{'event_id': 'VARCHAR', 'event_ts': 'TIMESTAMP', 'store_id': 'INTEGER', 'product_id': 'VARCHAR',
             'quantity': 'INTEGER', 'unit_price': 'DECIMAL(10,2)', 'currency': 'VARCHAR'}})""")
con.execute(f"""CREATE VIEW f01_raw.customer_events AS SELECT * FROM read_json(
  '{lake}/{RAW["customer_events"]}/*.json', format = 'newline_delimited',
  columns = {{'event_id': 'VARCHAR', 'customer_id': 'BIGINT', 'op': 'VARCHAR', 'event_ts': 'TIMESTAMP',
             'email': 'VARCHAR', 'full_name': 'VARCHAR', 'country': 'VARCHAR', 'segment': 'VARCHAR'}})""")
# legacy_orders: bad_rows = quarantine. Read as lines so a wrong field count is seen (the
# export never quotes fields), parse each field, and quarantine rows where a field does not
# parse or a NOT NULL column is NULL.
con.execute(f"""CREATE TABLE legacy AS
WITH lines AS (
  SELECT line, string_split(line, ';') AS f FROM read_csv('{lake}/{RAW["legacy_orders"]}/*.csv',
    header = true, delim = '\x01', quote = '', escape = '', columns = {{'line': 'VARCHAR'}})
), parsed AS (
  SELECT line, len(f) AS n,
    f[1] AS r1, f[2] AS r2, f[3] AS r3, f[4] AS r4,
    nullif(f[1], 'NULL') AS s1, nullif(f[2], 'NULL') AS s2, nullif(f[3], 'NULL') AS s3, nullif(f[4], 'NULL') AS s4,
    nullif(f[5], 'NULL') AS status, nullif(f[6], 'NULL') AS country
  FROM lines
)
SELECT line, n,
  TRY_CAST(s1 AS BIGINT) AS order_id, TRY_CAST(s2 AS BIGINT) AS customer_id,
  TRY_STRPTIME(s3, '%Y-%m-%d %H:%M:%S') AS order_ts, TRY_CAST(s4 AS DECIMAL(12,2)) AS amount, status, country,
  (n <> 6 OR s1 IS NULL OR s3 IS NULL
   OR TRY_CAST(s1 AS BIGINT) IS NULL OR (s2 IS NOT NULL AND TRY_CAST(s2 AS BIGINT) IS NULL)
   OR TRY_STRPTIME(s3, '%Y-%m-%d %H:%M:%S') IS NULL OR (s4 IS NOT NULL AND TRY_CAST(s4 AS DECIMAL(12,2)) IS NULL)) AS bad
FROM parsed""")
con.execute("CREATE VIEW f01_raw.legacy_orders AS SELECT order_id, customer_id, order_ts, amount, status, country "
            "FROM legacy WHERE NOT bad")
os.makedirs(os.path.join(out, "raw"), exist_ok=True)
con.execute(f"COPY (SELECT line AS raw FROM legacy WHERE bad) TO '{out}/raw/legacy_orders_rejected.parquet'")

TRANSFORMS = {"month": (MonthTransform(), "month"), "day": (DayTransform(), "day"), "bucket8": (BucketTransform(8), "bucket")}


def load_or_create(ident, schema, partition):
    if catalog.table_exists(ident):
        return catalog.load_table(ident)
    table = catalog.create_table(ident, schema=schema)
    column, transform = partition
    t, suffix = TRANSFORMS[transform]
    with table.update_spec() as spec:
        spec.add_field(column, t, f"{column}_{suffix}")
    return catalog.load_table(ident)


def partition_filter(df, column, transform):
    """Rows of the day/month partitions present in `df` (pyiceberg's dynamic overwrite only
    takes identity partitions)."""
    values = pc.unique(df[column].cast(pa.timestamp("us")) if transform == "day" else df[column]).to_pylist()
    ranges = set()
    for v in values:
        d = v.date() if isinstance(v, dt.datetime) else v
        if transform == "month":
            start = d.replace(day=1)
            end = (start + dt.timedelta(days=32)).replace(day=1)
        else:
            start, end = d, d + dt.timedelta(days=1)
        if isinstance(v, dt.datetime):
            start, end = dt.datetime.combine(start, dt.time()), dt.datetime.combine(end, dt.time())
        ranges.add((start, end))
    preds = [And(GreaterThanOrEqual(column, s.isoformat()), LessThan(column, e.isoformat())) for s, e in sorted(ranges)]
    return preds[0] if len(preds) == 1 else Or(*preds)


for job in JOBS:
    t0 = time.perf_counter()
    layer, name = job["output"]
    df = con.sql(job_sql(root, job, lambda lay, t: f"f01_{lay}.{t}")).to_arrow_table()
    # Checks run on the job's SQL result, before the merge picks the latest row per key.
    con.register("output", df)
    for check, severity, q in check_queries(job["checks"]):
        n = con.execute(q).fetchall()[0][0]
        if n and severity == "error":
            sys.exit(f"{job['job']}: check {check} failed ({n} rows); nothing written")
        if n:
            print(f"{job['job']}: warning: check {check}: {n} rows")
    con.unregister("output")
    ident = f"f01_{layer}.{name}"
    if job["mode"] == "merge":
        m = job["merge"]
        assert len(m["keys"]) == 1, "the delete below handles one key column"
        keys = ", ".join(m["keys"])
        con.register("output", con.sql(
            f"SELECT * EXCLUDE (_rn) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} "
            f"ORDER BY {m['order_by']} DESC) AS _rn FROM df) WHERE _rn = 1").to_arrow_table())
        deletes = con.sql(f"SELECT {keys} FROM output WHERE {m['delete_when']}").to_arrow_table()
        upserts = con.sql(f"SELECT * EXCLUDE ({', '.join(m['control'])}) FROM output "
                          f"WHERE NOT ({m['delete_when']})").to_arrow_table()
        table = load_or_create(ident, upserts.schema, job["partition"])
        table.upsert(upserts, join_cols=m["keys"])
        if deletes.num_rows and table.current_snapshot() is not None:
            table.delete(In(m["keys"][0], deletes[m["keys"][0]].to_pylist()))
    else:
        table = load_or_create(ident, df.schema, job["partition"])
        if job["mode"] == "overwrite" or table.current_snapshot() is None:
            table.overwrite(df)
        else:
            table.overwrite(df, overwrite_filter=partition_filter(df, *job["partition"]))
    if job["mode"] == "merge":
        con.unregister("output")
    if layer == "refined":
        con.register(f"iceberg_{name}", catalog.load_table(ident).scan().to_arrow())
        con.execute(f"CREATE OR REPLACE VIEW f01_{layer}.{name} AS SELECT * FROM iceberg_{name}")
    print(f"{job['job']}: {time.perf_counter() - t0:.1f} s", flush=True)

print(f"total: {time.perf_counter() - started:.1f} s")
