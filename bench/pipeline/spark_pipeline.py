"""Baseline (b) of bench/pipeline: the example pipelines on PySpark 3.5 in local mode, reading
the raw files `mesh sample-data` wrote and writing Parquet (no Iceberg jars exist here).

usage: spark_pipeline.py DOMAIN_ROOT OUT_DIR
Writes OUT_DIR/<layer>/<table>/ (Hive folders for the Iceberg partition transform) and
OUT_DIR/raw/legacy_orders_rejected/. Exits 1 if an error check fails.
"""
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from jobs import JOBS, RAW, check_queries, job_sql  # noqa: E402

from pyspark.sql import SparkSession, Window  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

root, out = sys.argv[1], sys.argv[2]
lake = os.path.join(root, ".mesh", "lake")
started = time.perf_counter()
spark = (
    SparkSession.builder.master("local[*]").appName("meshkit-bench")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "4g"))
    .config("spark.sql.session.timeZone", "UTC")
    # Unparseable timestamps are bad rows, not an upgrade error.
    .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
    # Local mode on a few cores: Spark's default of 200 shuffle partitions only adds tasks.
    .config("spark.sql.shuffle.partitions", os.environ.get("BENCH_SPARK_SHUFFLE_PARTITIONS", "8"))
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
print(f"spark session: {time.perf_counter() - started:.1f} s", flush=True)
TS = "yyyy-MM-dd HH:mm:ss"

# Raw tables, with the bad-row policy of their manifest.
sales_dir = os.path.join(lake, RAW["sales_events"])
spark.read.schema(
    "event_id string, event_ts timestamp, store_id int, product_id string, quantity int, "
    "unit_price decimal(10,2), currency string"
).options(header=True, mode="FAILFAST", timestampFormat=TS, basePath=sales_dir).csv(
    os.path.join(sales_dir, "event_date=*")
).createOrReplaceTempView("raw__sales_events")

spark.read.schema(
    "event_id string, customer_id long, op string, event_ts timestamp, email string, full_name string, "
    "country string, segment string"
).options(mode="FAILFAST", timestampFormat=TS).json(
    os.path.join(lake, RAW["customer_events"])
).createOrReplaceTempView("raw__customer_events")

# legacy_orders: bad_rows = quarantine. A row is bad if its field count is wrong, a value does
# not parse, or a NOT NULL column is NULL.
legacy = spark.read.schema(
    "order_id long, customer_id long, order_ts timestamp, amount decimal(12,2), status string, country string, "
    "_corrupt string"
).options(header=True, sep=";", nullValue="NULL", mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt",
          timestampFormat=TS).csv(os.path.join(lake, RAW["legacy_orders"])).cache()
bad = F.col("_corrupt").isNotNull() | F.col("order_id").isNull() | F.col("order_ts").isNull()
legacy.filter(~bad).drop("_corrupt").createOrReplaceTempView("raw__legacy_orders")
rejected = legacy.filter(bad).select(F.coalesce("_corrupt", F.lit("NULL in a NOT NULL column")).alias("raw"))
rejected.write.mode("overwrite").parquet(os.path.join(out, "raw", "legacy_orders_rejected"))


def partitioned(df, column, transform):
    """The Iceberg partition transform as a Hive folder column (Spark Parquet has no transforms)."""
    if transform == "month":
        return df.withColumn(f"{column}_month", F.date_format(column, "yyyy-MM")), f"{column}_month"
    if transform == "day":
        return df.withColumn(f"{column}_day", F.to_date(column)), f"{column}_day"
    if transform == "bucket8":
        return df.withColumn(f"{column}_bucket", F.pmod(F.xxhash64(column), F.lit(8))), f"{column}_bucket"
    raise ValueError(transform)


for job in JOBS:
    t0 = time.perf_counter()
    layer, name = job["output"]
    df = spark.sql(job_sql(root, job, lambda lay, t: f"{lay}__{t}")).cache()
    # Checks run on the job's SQL result, before the merge picks the latest row per key.
    df.createOrReplaceTempView("output")
    for check, severity, q in check_queries(job["checks"]):
        n = spark.sql(q).collect()[0][0]
        if n and severity == "error":
            sys.exit(f"{job['job']}: check {check} failed ({n} rows); nothing written")
        if n:
            print(f"{job['job']}: warning: check {check}: {n} rows")
    if job["mode"] == "merge":
        m = job["merge"]
        w = Window.partitionBy(*m["keys"]).orderBy(F.col(m["order_by"]).desc())
        df = df.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1").drop("_rn")
    target = os.path.join(out, layer, name)
    if job["mode"] == "merge":
        m = job["merge"]
        upserts = df.filter(f"NOT ({m['delete_when']})").drop(*m["control"])
        if os.path.exists(target):
            # Rows of keys not in the source survive; a new folder replaces the old one.
            current = spark.read.parquet(target).drop(f"{job['partition'][0]}_bucket")
            upserts = current.join(df.select(*m["keys"]), m["keys"], "left_anti").unionByName(upserts)
        data, part = partitioned(upserts, *job["partition"])
        data.repartition(part).write.mode("overwrite").partitionBy(part).parquet(target + ".new")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(target + ".new", target)
    else:
        data, part = partitioned(df, *job["partition"])
        # overwrite_partitions: dynamic partition overwrite; overwrite: the whole folder.
        if job["mode"] == "overwrite":
            shutil.rmtree(target, ignore_errors=True)
        # One writer per partition (as Iceberg's hash distribution does), not one per task.
        data.repartition(part).write.mode("overwrite").partitionBy(part).parquet(target)
    spark.catalog.dropTempView("output")
    df.unpersist()
    if layer == "refined":
        spark.read.parquet(target).drop(part).createOrReplaceTempView(f"{layer}__{name}")
    print(f"{job['job']}: {time.perf_counter() - t0:.1f} s", flush=True)

spark.stop()
print(f"total: {time.perf_counter() - started:.1f} s")
