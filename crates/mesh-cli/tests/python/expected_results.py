"""Independent check of the example pipelines' results.

Recomputes every curated/refined table of the example domain from the raw sample files with
plain Python (csv/json/decimal, no meshkit code), reads what meshkit committed through
pyiceberg's SqlCatalog, and compares. Prints one line per table; exits 1 on any difference.

usage: expected_results.py DOMAIN_ROOT
"""
import csv
import datetime as dt
import glob
import json
import os
import sys
from collections import defaultdict
from decimal import Decimal, ROUND_HALF_UP, InvalidOperation

from pyiceberg.catalog.sql import SqlCatalog

root = sys.argv[1]
lake = os.path.join(root, ".mesh", "lake")
catalog = SqlCatalog("f01", uri=f"sqlite:///{root}/.mesh/catalog.db", warehouse=f"file://{lake}")
failures = 0


def ts(s):
    return dt.datetime.strptime(s.strip(), "%Y-%m-%d %H:%M:%S")


def actual(table, key_cols):
    rows = catalog.load_table(table).scan().to_arrow().to_pylist()
    return {tuple(r[k] for k in key_cols): r for r in rows}


def compare(name, expected, got, cols):
    global failures
    problems = []
    for k in sorted(set(expected) | set(got), key=str):
        e, a = expected.get(k), got.get(k)
        if e is None or a is None:
            problems.append(f"key {k}: expected {'absent' if e is None else e}, got {'absent' if a is None else a}")
            continue
        for c in cols:
            if e[c] != a[c]:
                problems.append(f"key {k} column {c}: expected {e[c]!r}, got {a[c]!r}")
    status = "OK" if not problems else "MISMATCH"
    print(f"{name}: {status} ({len(expected)} expected rows, {len(got)} rows read by pyiceberg)")
    for p in problems[:10]:
        print("   ", p)
    failures += bool(problems)


# sales: daily sales per store
daily = defaultdict(lambda: {"ids": set(), "units": 0, "revenue": Decimal(0)})
for path in glob.glob(f"{lake}/f01-raw-local/pj01/sales_events/event_date=*/*.csv"):
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            d = daily[(ts(r["event_ts"]).date(), int(r["store_id"]))]
            d["ids"].add(r["event_id"])
            d["units"] += int(r["quantity"])
            d["revenue"] += int(r["quantity"]) * Decimal(r["unit_price"])
expected = {
    k: {"sale_date": k[0], "store_id": k[1], "orders": len(v["ids"]), "units": v["units"],
        "revenue": v["revenue"].quantize(Decimal("0.01"))}
    for k, v in daily.items()
}
compare("f01_curated.daily_sales", expected, actual("f01_curated.daily_sales", ["sale_date", "store_id"]),
        ["orders", "units", "revenue"])

# customers: latest event per customer, deletes remove the customer
latest = {}
for path in glob.glob(f"{lake}/f01-raw-local/pj02/customer_events/*.json"):
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            cur = latest.get(e["customer_id"])
            if cur is None or ts(e["event_ts"]) > ts(cur["event_ts"]):
                latest[e["customer_id"]] = e
expected = {}
for cid, e in latest.items():
    if e["op"] == "D":
        continue
    expected[(cid,)] = {
        "customer_id": cid,
        "email": e["email"].strip().lower() if e.get("email") is not None else None,
        "full_name": e.get("full_name"),
        "country": e["country"].upper() if e.get("country") is not None else None,
        "segment": e.get("segment"),
        "updated_at": ts(e["event_ts"]),
    }
compare("f01_curated.customers", expected, actual("f01_curated.customers", ["customer_id"]),
        ["email", "full_name", "country", "segment", "updated_at"])

# legacy orders: parse like the declared schema, drop malformed rows, clean, keep the latest export
def parse_order(r):
    if len(r) != 6:
        return None
    oid, cust, ots, amount, status, country = [None if v == "NULL" else v for v in r]
    try:
        oid = int(oid)
        cust = int(cust) if cust not in (None, "") else None
        ots = ts(ots)
        amount = Decimal(amount.strip()).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if amount not in (None, "") else None
    except (ValueError, InvalidOperation, AttributeError):
        return None
    status = None if status == "" else status
    country = None if country == "" else country
    return oid, cust, ots, amount, status, country


candidates = defaultdict(list)
for path in glob.glob(f"{lake}/f01-raw-local/pj03/legacy_orders/*.csv"):
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter=";")
        next(reader)
        for r in reader:
            p = parse_order(r)
            if p is None:
                continue
            oid, cust, ots, amount, status, country = p
            if amount is None or amount <= 0 or country is None or country.strip() == "":
                continue
            candidates[oid].append({"order_id": oid, "customer_id": cust, "order_ts": ots, "amount": amount,
                                    "status": status.strip().upper() if status is not None else None,
                                    "country": country.strip().upper()})
clean = {}
for oid, rows in candidates.items():
    best = max(rows, key=lambda x: x["order_ts"])
    if best["status"] in ("NEW", "SHIPPED", "COMPLETED", "CANCELLED"):
        clean[(oid,)] = best
compare("f01_refined.orders_clean", clean, actual("f01_refined.orders_clean", ["order_id"]),
        ["customer_id", "order_ts", "amount", "status", "country"])

by_country = defaultdict(lambda: {"orders": 0, "amount": Decimal(0)})
for r in clean.values():
    if r["status"] == "COMPLETED":
        k = (r["order_ts"].date(), r["country"])
        by_country[k]["orders"] += 1
        by_country[k]["amount"] += r["amount"]
expected = {k: {"order_date": k[0], "country": k[1], "orders": v["orders"], "amount": v["amount"]} for k, v in by_country.items()}
compare("f01_curated.orders_by_country", expected, actual("f01_curated.orders_by_country", ["order_date", "country"]),
        ["orders", "amount"])

sys.exit(1 if failures else 0)
