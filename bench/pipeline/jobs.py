"""The example pipelines (projects/*/project.toml) as the baseline engines run them: the same
SQL files, the same write modes, partitioning and checks. Kept beside the two baseline
scripts so both run exactly the same definitions.
"""
import os
import re

# (project, job, sql file, output table, write mode, partition (column, transform), checks)
# Checks: (kind, args, severity); an `error` check that fails stops the job before it writes.
JOBS = [
    {
        "project": "sales", "job": "daily_sales", "sql": "projects/sales/sql/daily_sales.sql",
        "output": ("curated", "daily_sales"), "mode": "overwrite_partitions", "partition": ("sale_date", "month"),
        "checks": [("not_null", ["sale_date", "store_id"], "error"), ("unique", ["sale_date", "store_id"], "error"),
                   ("range", ("revenue", 0, None), "error"), ("row_count_min", 1, "error")],
    },
    {
        "project": "customers", "job": "customers_latest", "sql": "projects/customers/sql/customers_latest.sql",
        "output": ("curated", "customers"), "mode": "merge", "partition": ("customer_id", "bucket8"),
        "merge": {"keys": ["customer_id"], "order_by": "updated_at", "delete_when": "op = 'D'", "control": ["op"]},
        "checks": [("not_null", ["customer_id", "updated_at"], "error"),
                   ("accepted_values", ("segment", ["consumer", "smb", "enterprise"]), "warn")],
    },
    {
        "project": "legacy_refactor", "job": "clean_orders", "sql": "projects/legacy_refactor/sql/clean_orders.sql",
        "output": ("refined", "orders_clean"), "mode": "overwrite_partitions", "partition": ("order_ts", "day"),
        "checks": [("unique", ["order_id"], "error"),
                   ("accepted_values", ("status", ["NEW", "SHIPPED", "COMPLETED", "CANCELLED"]), "error"),
                   ("range", ("amount", 0, 1000000), "error")],
    },
    {
        "project": "legacy_refactor", "job": "orders_by_country",
        "sql": "projects/legacy_refactor/sql/orders_by_country.sql",
        "output": ("curated", "orders_by_country"), "mode": "overwrite", "partition": ("order_date", "month"),
        "checks": [("sql", "SELECT * FROM output WHERE amount < 0", "error")],
    },
]

RAW = {
    "sales_events": "f01-raw-local/pj01/sales_events",
    "customer_events": "f01-raw-local/pj02/customer_events",
    "legacy_orders": "f01-raw-local/pj03/legacy_orders",
}


def check_queries(checks):
    """(name, severity, SQL counting violations over the view `output`) for each check."""
    out = []
    for kind, args, severity in checks:
        if kind == "not_null":
            cond = " OR ".join(f"{c} IS NULL" for c in args)
            q = f"SELECT COUNT(*) FROM output WHERE {cond}"
        elif kind == "unique":
            cols = ", ".join(args)
            q = f"SELECT COUNT(*) FROM (SELECT {cols} FROM output GROUP BY {cols} HAVING COUNT(*) > 1) d"
        elif kind == "range":
            col, lo, hi = args
            conds = ([f"{col} < {lo}"] if lo is not None else []) + ([f"{col} > {hi}"] if hi is not None else [])
            q = f"SELECT COUNT(*) FROM output WHERE {' OR '.join(conds)}"
        elif kind == "row_count_min":
            q = f"SELECT CASE WHEN COUNT(*) < {args} THEN 1 ELSE 0 END FROM output"
        elif kind == "accepted_values":
            col, values = args
            vals = ", ".join(f"'{v}'" for v in values)
            q = f"SELECT COUNT(*) FROM output WHERE {col} IS NOT NULL AND {col} NOT IN ({vals})"
        elif kind == "sql":
            q = f"SELECT COUNT(*) FROM ({args}) v"
        else:
            raise ValueError(kind)
        out.append((f"{kind} {args}", severity, q))
    return out


def job_sql(root, job, qualify):
    """The job's SQL file with `f01_<layer>.<table>` rewritten by `qualify(layer, table)`."""
    with open(os.path.join(root, job["sql"])) as f:
        text = f.read()
    return re.sub(r"\bf01_(raw|refined|curated)\.(\w+)", lambda m: qualify(m.group(1), m.group(2)), text)
