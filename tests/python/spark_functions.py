"""Prints Spark's built-in function names (identifiers only) with the header of
crates/mesh-core/data/spark-3.5-functions.txt. Run: $MESH_PYTHON tests/python/spark_functions.py"""
import re

import pyspark
from pyspark.sql import SparkSession

spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
names = sorted({r[0] for r in spark.sql("SHOW SYSTEM FUNCTIONS").collect()})
print("# Spark 3.5 built-in functions (identifiers only), one per line: what `mesh validate` accepts")
print(f"# as runnable on Glue 5 (Spark 3.5.4). Generated with PySpark {pyspark.__version__} by")
print("#   $MESH_PYTHON tests/python/spark_functions.py > crates/mesh-core/data/spark-3.5-functions.txt")
print("# (SHOW SYSTEM FUNCTIONS; operators such as `+` and `<=>` are left out). Regenerate when Glue moves to a new Spark.")
for n in names:
    if re.fullmatch(r"[a-z_][a-z0-9_]*", n):
        print(n)
spark.stop()
