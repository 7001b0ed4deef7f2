//! Issue 26, items 1–4 ("silently wrong results"), at the engine level (and Spark's datetime
//! patterns, which the local engine read as chrono's):
//! - a differential test of decimal, integer and floating-point arithmetic: literals, products,
//!   sums at precision 38, division scale, rounding and overflow, run by the local engine and by
//!   PySpark 3.5 in ANSI mode (what Glue runs) on the same queries. Each case also states
//!   Spark's answer, so the local engine is checked without Spark too;
//! - the Glue runner's shaping rules (exact output columns with a did-you-mean, declared
//!   types that a result never widens) under real PySpark.
//!
//! The Spark tests need `MESH_PYTHON` (pyspark); scripts/test.sh sets it.

use std::path::{Path, PathBuf};
use std::process::Command;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;
use mesh_core::session::new_context;
use mesh_domain::{Domain, Env, Naming};
use serde_json::{json, Value};

/// One query of one column and one row, and Spark's answer: `Ok((type, value))` or the error
/// class Spark raises (`Err`).
struct Case {
    sql: &'static str,
    spark: Result<(&'static str, &'static str), &'static str>,
}

const fn ok(sql: &'static str, ty: &'static str, value: &'static str) -> Case {
    Case {
        sql,
        spark: Ok((ty, value)),
    }
}

const fn fails(sql: &'static str, class: &'static str) -> Case {
    Case { sql, spark: Err(class) }
}

const MAX38: &str = "CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0))";

fn cases() -> Vec<Case> {
    vec![
        // Spark's datetime patterns, not chrono's (`yyyy` was returned as the text `yyyy`).
        ok("SELECT date_format(DATE '2026-12-07', 'yyyy-MM-dd') AS v", "string", "2026-12-07"),
        ok("SELECT date_format(TIMESTAMP '2026-12-07 13:05:09', 'dd/MM/yy HH:mm:ss') AS v", "string", "07/12/26 13:05:09"),
        ok("SELECT date_format(TIMESTAMP '2026-03-07 01:05:09.123', 'EEE MMM d h:mm a SSS') AS v", "string", "Sat Mar 7 1:05 AM 123"),
        // (Quoted text in a pattern is unit-tested: `''` inside an SQL literal is a quote to
        // DataFusion but ends the literal in Spark, so no one query can carry it to both.)
        ok("SELECT date_format(DATE '2026-12-07', 'EEEE, MMMM d yyyy, D') AS v", "string", "Monday, December 7 2026, 341"),
        ok("SELECT to_date('07/12/2026', 'dd/MM/yyyy') AS v", "date", "2026-12-07"),
        // Literals are decimals of their digits; an exponent makes a DOUBLE.
        ok("SELECT 0.1 + 0.2 AS v", "decimal(2,1)", "0.3"),
        ok("SELECT CAST(0.1 AS DECIMAL(38,38)) AS v", "decimal(38,38)", "0.10000000000000000000000000000000000000"),
        ok("SELECT 1.15 * 3 AS v", "decimal(5,2)", "3.45"),
        ok("SELECT 0.5 * 0.5 AS v", "decimal(3,2)", "0.25"),
        ok("SELECT -0.001 + 123.450 AS v", "decimal(7,3)", "123.449"),
        ok("SELECT 1e3 AS v", "double", "1000.0"),
        ok("SELECT 0.1 + CAST(0.2 AS DOUBLE) AS v", "double", "0.30000000000000004"),
        // Products: Spark's precision p1+p2+1, the scale reduced to >= 6 beyond 38 digits, HALF_UP.
        ok("SELECT CAST(1.5 AS DECIMAL(38,10)) * CAST(1.25 AS DECIMAL(38,10)) AS v", "decimal(38,6)", "1.875000"),
        ok("SELECT CAST(1.0000005 AS DECIMAL(38,7)) * CAST(1 AS DECIMAL(38,30)) AS v", "decimal(38,6)", "1.000001"),
        ok("SELECT CAST(-1.0000005 AS DECIMAL(38,7)) * CAST(1 AS DECIMAL(38,30)) AS v", "decimal(38,6)", "-1.000001"),
        ok("SELECT x * 2 AS v FROM (VALUES (CAST(1.5 AS DECIMAL(38,10)))) t(x)", "decimal(38,8)", "3.00000000"),
        ok("SELECT CAST(2.5 AS DECIMAL(10,2)) * CAST(3 AS INT) AS v", "decimal(21,2)", "7.50"),
        ok("SELECT x + y AS v FROM (VALUES (CAST(1 AS INT), CAST(0.5 AS DECIMAL(5,2)))) t(x, y)", "decimal(13,2)", "1.50"),
        ok(
            "SELECT CAST(12345678901234567890.123456 AS DECIMAL(38,6)) * CAST(1.1 AS DECIMAL(38,6)) AS v",
            "decimal(38,6)",
            "13580246791358024679.135802",
        ),
        fails("SELECT CAST('10000000000000000000' AS DECIMAL(38,0)) * CAST('10000000000000000000' AS DECIMAL(38,0)) AS v", "NUMERIC_VALUE_OUT_OF_RANGE"),
        // Sums at precision 38: exact when they fit, an error when they do not (never wrapped).
        ok(
            "SELECT SUM(x) AS v FROM (VALUES (CAST('49999999999999999999999999999999999999' AS DECIMAL(38,0))), (CAST('50000000000000000000000000000000000000' AS DECIMAL(38,0)))) t(x)",
            "decimal(38,0)",
            "99999999999999999999999999999999999999",
        ),
        ok("SELECT SUM(x) AS v FROM (VALUES (CAST(0.1 AS DECIMAL(10,2))), (CAST(0.2 AS DECIMAL(10,2)))) t(x)", "decimal(20,2)", "0.30"),
        fails(concat_sum_max(), "ARITHMETIC_OVERFLOW"),
        fails(concat_sum_max_grouped(), "ARITHMETIC_OVERFLOW"),
        fails("SELECT SUM(x) AS v FROM (VALUES (CAST(9223372036854775807 AS BIGINT)), (CAST(1 AS BIGINT))) t(x)", "ARITHMETIC_OVERFLOW"),
        ok("SELECT SUM(x) AS v FROM (VALUES (CAST(2147483647 AS INT)), (CAST(1 AS INT))) t(x)", "bigint", "2147483648"),
        fails(concat_max_plus_one(), "NUMERIC_VALUE_OUT_OF_RANGE"),
        // A SUM over a sliding window frame is checked as well.
        fails(
            "SELECT MAX(v) AS v FROM (SELECT SUM(x) OVER (ORDER BY k ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS v FROM (VALUES (1, CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0))), (2, CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0)))) t(k, x)) w",
            "NUMERIC_VALUE_OUT_OF_RANGE",
        ),
        ok(
            "SELECT MAX(v) AS v FROM (SELECT SUM(x) OVER (ORDER BY k ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS v FROM (VALUES (1, CAST(1.5 AS DECIMAL(10,1))), (2, CAST(2.5 AS DECIMAL(10,1))), (3, CAST(4 AS DECIMAL(10,1)))) t(k, x)) w",
            "decimal(20,1)",
            "6.5",
        ),
        // AVG of decimals is a decimal (p + 4, s + 4).
        ok("SELECT AVG(x) AS v FROM (VALUES (CAST(1 AS DECIMAL(10,2))), (CAST(2 AS DECIMAL(10,2)))) t(x)", "decimal(14,6)", "1.500000"),
        ok("SELECT AVG(DISTINCT x) AS v FROM (VALUES (CAST(1 AS INT)), (CAST(1 AS INT)), (CAST(2 AS INT))) t(x)", "double", "1.5"),
        // Division: scale max(6, s1 + p2 + 1), reduced beyond 38 digits, HALF_UP.
        ok("SELECT CAST(1 AS DECIMAL(10,2)) / CAST(3 AS DECIMAL(10,2)) AS v", "decimal(23,13)", "0.3333333333333"),
        ok("SELECT CAST(2 AS DECIMAL(38,10)) / CAST(3 AS DECIMAL(38,10)) AS v", "decimal(38,6)", "0.666667"),
        ok("SELECT CAST(2 AS DECIMAL(38,0)) / CAST(3 AS DECIMAL(38,0)) AS v", "decimal(38,6)", "0.666667"),
        ok("SELECT CAST(-2 AS DECIMAL(10,0)) / CAST(3 AS DECIMAL(10,0)) AS v", "decimal(21,11)", "-0.66666666667"),
        ok("SELECT CAST(10 AS DECIMAL(5,2)) / CAST(3 AS DECIMAL(5,1)) * 3 AS v", "decimal(14,8)", "9.99999999"),
        ok("SELECT 1.0 / 3 AS v", "decimal(7,6)", "0.333333"),
        ok("SELECT 7 / 2 AS v", "double", "3.5"),
        fails("SELECT CAST(1 AS DECIMAL(10,2)) / 0 AS v", "DIVIDE_BY_ZERO"),
        fails("SELECT 1 / 0 AS v", "DIVIDE_BY_ZERO"),
        fails("SELECT CAST(1 AS DOUBLE) / 0 AS v", "DIVIDE_BY_ZERO"),
        // Rounding of a cast to a smaller scale: HALF_UP, away from zero.
        ok("SELECT CAST(CAST(2.345 AS DECIMAL(10,3)) AS DECIMAL(10,2)) AS v", "decimal(10,2)", "2.35"),
        ok("SELECT CAST(CAST(-2.345 AS DECIMAL(10,3)) AS DECIMAL(10,2)) AS v", "decimal(10,2)", "-2.35"),
        // Integers: INT literals, checked + - *.
        fails("SELECT 2147483647 + 1 AS v", "ARITHMETIC_OVERFLOW"),
        fails("SELECT -2147483648 - 1 AS v", "ARITHMETIC_OVERFLOW"),
        fails("SELECT CAST(100000 AS INT) * CAST(100000 AS INT) AS v", "ARITHMETIC_OVERFLOW"),
        ok("SELECT CAST(2147483647 AS BIGINT) + 1 AS v", "bigint", "2147483648"),
        fails("SELECT CAST(9223372036854775807 AS BIGINT) * 2 AS v", "ARITHMETIC_OVERFLOW"),
        ok("SELECT CAST(100000 AS BIGINT) * 100000 AS v", "bigint", "10000000000"),
        fails("SELECT -x AS v FROM (VALUES (CAST(-2147483648 AS INT))) t(x)", "ARITHMETIC_OVERFLOW"),
        ok("SELECT -x AS v FROM (VALUES (CAST(-2147483647 AS INT))) t(x)", "int", "2147483647"),
        fails("SELECT abs(x) AS v FROM (VALUES (CAST(-2147483648 AS INT))) t(x)", "ARITHMETIC_OVERFLOW"),
        // Floating point keeps IEEE semantics in both engines.
        ok("SELECT CAST('1e308' AS DOUBLE) * 10 AS v", "double", "inf"),
        ok("SELECT CAST(0.1 AS DOUBLE) * 3 AS v", "double", "0.30000000000000004"),
    ]
}

const fn concat_sum_max() -> &'static str {
    "SELECT SUM(x) AS v FROM (VALUES (CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0))), (CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0)))) t(x)"
}

const fn concat_sum_max_grouped() -> &'static str {
    "SELECT SUM(x) AS v FROM (VALUES (1, CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0))), (1, CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0))), (1, CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0)))) t(k, x) GROUP BY k"
}

const fn concat_max_plus_one() -> &'static str {
    "SELECT CAST('99999999999999999999999999999999999999' AS DECIMAL(38,0)) + 1 AS v"
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn example() -> Domain {
    mesh_domain::load_domain(&repo_root()).expect("the example domain validates")
}

/// Spark's name of a result type.
fn spark_type(t: &DataType) -> String {
    match t {
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Date32 => "date".into(),
        other => other.to_string(),
    }
}

/// The error class in brackets (`[DIVIDE_BY_ZERO] …`), or the whole message.
fn error_class(message: &str) -> String {
    message
        .split('[')
        .skip(1)
        .find_map(|part| {
            let (class, _) = part.split_once(']')?;
            class
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_')
                .then(|| class.to_string())
        })
        .unwrap_or_else(|| message.to_string())
}

/// The local engine's answer: `Ok((type, value))` or `Err((class, message))`.
async fn local(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Result<(String, String), (String, String)> {
    let run = async {
        let batches = ctx.sql(sql).await?.collect().await?;
        let batch = batches.into_iter().find(|b| b.num_rows() > 0).expect("one row");
        let column = batch.column(0);
        let value = if column.is_null(0) {
            "None".to_string()
        } else {
            array_value_to_string(column, 0)?
        };
        Ok::<_, datafusion::error::DataFusionError>((spark_type(column.data_type()), value))
    };
    run.await.map_err(|e| {
        let message = e.to_string();
        (error_class(&message), message)
    })
}

/// Same value: decimals and integers as text, doubles as numbers (`1000` = `1000.0`).
fn same_value(ty: &str, a: &str, b: &str) -> bool {
    if ty == "double" {
        let parse = |s: &str| s.parse::<f64>().ok();
        return match (parse(a), parse(b)) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            _ => a == b,
        };
    }
    a == b
}

/// Checks one answer against Spark's; `None` when they agree.
fn disagreement(
    sql: &str,
    got: &Result<(String, String), (String, String)>,
    want: &Result<(String, String), String>,
) -> Option<String> {
    match (got, want) {
        (Ok((t, v)), Ok((wt, wv))) if t == wt && same_value(t, v, wv) => None,
        (Err((class, message)), Err(wclass)) => {
            // Spark's two overflow classes are one outcome here (a window SUM raises
            // NUMERIC_VALUE_OUT_OF_RANGE, a grouped one ARITHMETIC_OVERFLOW).
            // datafusion-spark's own functions (abs) fail with Arrow's "overflow" message.
            let family = |c: &str| match c {
                "ARITHMETIC_OVERFLOW" | "NUMERIC_VALUE_OUT_OF_RANGE" => "overflow".to_string(),
                other if other.contains("overflow on") => "overflow".to_string(),
                other => other.to_string(),
            };
            if family(class) == family(wclass) {
                // meshkit's own errors say what to do and that Spark fails too.
                let ours = class.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                (ours && !message.contains("Spark in ANSI mode fails here too"))
                    .then(|| format!("{sql}: the error does not explain itself: {message}"))
            } else {
                Some(format!("{sql}: local error {class} ({message}), Spark error {wclass}"))
            }
        }
        _ => Some(format!("{sql}: local {got:?}, Spark {want:?}")),
    }
}

fn expected(c: &Case) -> Result<(String, String), String> {
    c.spark
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .map_err(|e| e.to_string())
}

/// The local engine gives Spark's answer (as the cases state it) to every query.
#[tokio::test]
async fn local_arithmetic_is_spark_ansi_arithmetic() {
    let ctx = new_context(&Naming::for_domain(&example(), Env::Local)).unwrap();
    let mut wrong = Vec::new();
    for c in cases() {
        let got = local(&ctx, c.sql).await;
        if let Some(d) = disagreement(c.sql, &got, &expected(&c)) {
            wrong.push(d);
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ from Spark:\n{}",
        wrong.len(),
        cases().len(),
        wrong.join("\n")
    );
}

/// A value that overflows a job's output column names the column (and the overflowing
/// expression) in the local engine's error.
#[tokio::test]
async fn overflow_errors_name_the_output_column() {
    let ctx = new_context(&Naming::for_domain(&example(), Env::Local)).unwrap();
    let sum = format!("SELECT k, CAST(SUM(x) AS DECIMAL(38,0)) AS revenue FROM (VALUES (1, {MAX38}), (1, {MAX38})) t(k, x) GROUP BY k");
    let err = local(&ctx, &sum).await.unwrap_err().1;
    assert!(
        err.contains("column `revenue`") && err.contains("sum(t.x)") && err.contains("ARITHMETIC_OVERFLOW"),
        "{err}"
    );
    // Through the projections above the query (a job's shaping projection, a subquery).
    let outer = format!("SELECT r AS revenue FROM (SELECT CAST(SUM(x) AS DECIMAL(38,0)) AS r FROM (VALUES (1, {MAX38}), (1, {MAX38})) t(k, x) GROUP BY k) q");
    let err = local(&ctx, &outer).await.unwrap_err().1;
    assert!(err.contains("column `revenue`") && err.contains("sum(t.x)"), "{err}");
    let product = format!("SELECT x * x AS total FROM (VALUES ({MAX38})) t(x)");
    let err = local(&ctx, &product).await.unwrap_err().1;
    assert!(
        err.contains("column `total`") && err.contains("t.x * t.x") && err.contains("NUMERIC_VALUE_OUT_OF_RANGE"),
        "{err}"
    );
    let int = "SELECT a + b AS n FROM (VALUES (CAST(2147483647 AS INT), CAST(1 AS INT))) t(a, b)";
    let err = local(&ctx, int).await.unwrap_err().1;
    assert!(
        err.contains("column `n`") && err.contains("ARITHMETIC_OVERFLOW"),
        "{err}"
    );
}

/// A checked SUM beside a `COUNT(DISTINCT ..)` is planned as one group per distinct value;
/// DataFusion then stops pre-aggregating and passes each row on as its own partial sum (the
/// sums' `convert_to_state`). The totals are the same as when every row is pre-aggregated,
/// and the same as summed here.
#[tokio::test]
async fn sums_beside_a_distinct_count_are_exact_when_pre_aggregation_is_skipped() {
    let ctx = new_context(&Naming::for_domain(&example(), Env::Local)).unwrap();
    // 300,000 distinct ids (beyond DataFusion's 100,000-row probe), every 11th amount NULL.
    let sql = "SELECT k, COUNT(DISTINCT id) AS n, SUM(x) AS sx, SUM(id) AS sy, SUM(z) AS sz FROM (\
        SELECT value AS id, value % 7 AS k, \
               CASE WHEN value % 11 = 0 THEN NULL ELSE CAST(value % 1000 AS DECIMAL(10,2)) END AS x, \
               CASE WHEN value % 7 = 3 THEN NULL ELSE value END AS z \
        FROM generate_series(1, 300000)) t GROUP BY k ORDER BY k";
    let run = |ctx: datafusion::prelude::SessionContext| async move {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let plan = ctx
            .sql(&format!("EXPLAIN ANALYZE {sql}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let plan = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        let rows: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).map(move |r| {
                    (0..b.num_columns())
                        .map(|c| array_value_to_string(b.column(c), r).unwrap())
                        .collect::<Vec<_>>()
                        .join(",")
                })
            })
            .collect();
        (rows, plan)
    };
    let expected: Vec<String> = (0..7u64)
        .map(|k| {
            let ids = (1..=300_000u64).filter(|i| i % 7 == k);
            let n = ids.clone().count();
            let sx: u64 = ids.clone().filter(|i| i % 11 != 0).map(|i| i % 1000).sum();
            let sy: u64 = ids.sum();
            // Group 3 has no value of z: its sum is NULL (shown empty).
            let sz = if k == 3 { String::new() } else { sy.to_string() };
            format!("{k},{n},{sx}.00,{sy},{sz}")
        })
        .collect();
    // EXPLAIN ANALYZE's `skipped_aggregation_rows=N` of the partial aggregations.
    let any_skipped = |plan: &str| {
        plan.split("skipped_aggregation_rows=")
            .skip(1)
            .filter_map(|s| s.split([',', ' ', ']']).next())
            .any(|n| n != "0")
    };
    let (skipped, plan) = run(ctx.clone()).await;
    assert!(any_skipped(&plan), "pre-aggregation was not skipped:\n{plan}");
    assert_eq!(skipped, expected);
    ctx.sql("SET datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 2.0")
        .await
        .unwrap();
    let (kept, plan) = run(ctx).await;
    assert!(!any_skipped(&plan), "{plan}");
    assert_eq!(kept, expected);
}

fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyspark and sets it"))
}

fn run_spark(manifest: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = manifest.clone();
    manifest["workdir"] = json!(dir.path().display().to_string());
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/exact_results.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot start MESH_PYTHON={}: {e}", python()));
    assert!(
        out.status.success(),
        "exact_results.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON result");
    serde_json::from_str(last).unwrap()
}

/// The differential test: the same queries on PySpark 3.5 (ANSI) and on the local engine give
/// the same types and values, or both fail with the same error class.
#[tokio::test]
async fn local_engine_and_spark_ansi_agree_on_arithmetic() {
    let cases = cases();
    let queries: Vec<&str> = cases.iter().map(|c| c.sql).collect();
    let spark = run_spark(&json!({ "queries": queries }));
    let answers = spark["arithmetic"].as_array().unwrap();
    assert_eq!(answers.len(), cases.len());
    let ctx = new_context(&Naming::for_domain(&example(), Env::Local)).unwrap();
    let mut wrong = Vec::new();
    for (c, a) in cases.iter().zip(answers) {
        let spark_answer = match a.get("error") {
            Some(class) => Err(class.as_str().unwrap().to_string()),
            None => Ok((
                a["type"].as_str().unwrap().to_string(),
                a["value"].as_str().unwrap_or("None").to_string(),
            )),
        };
        // The stated answer is Spark's (the table above is checked against Spark) …
        if let Some(d) = disagreement_spark(c.sql, &spark_answer, &expected(c)) {
            wrong.push(format!("the case states a wrong Spark answer: {d} ({a})"));
        }
        // … and the local engine gives it.
        let got = local(&ctx, c.sql).await;
        if let Some(d) = disagreement(c.sql, &got, &spark_answer) {
            wrong.push(d);
        }
    }
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}

fn disagreement_spark(
    sql: &str,
    spark: &Result<(String, String), String>,
    stated: &Result<(String, String), String>,
) -> Option<String> {
    match (spark, stated) {
        (Ok((t, v)), Ok((st, sv))) if t == st && same_value(t, v, sv) => None,
        (Err(a), Err(b)) if a == b => None,
        _ => Some(format!("{sql}: Spark {spark:?}, stated {stated:?}")),
    }
}

/// The Glue runner's shaping rules under PySpark: the result names exactly the declared
/// columns (a did-you-mean for a misspelt alias, nullable or not; merge control columns stay
/// allowed), and each column is written as its declared type, range-checked, or refused.
#[test]
fn runner_requires_exact_columns_and_declared_types() {
    let domain = example();
    let mut specs = serde_json::Map::new();
    for p in &domain.projects {
        for j in &p.jobs {
            let spec = serde_json::to_value(mesh_core::artifacts::job_spec(&domain, Env::Dev, p, j)).unwrap();
            specs.insert(j.name.to_string(), spec);
        }
    }
    let out = run_spark(&json!({ "queries": [], "specs": specs }));
    let r = &out["runner"];
    let get = |k: &str| {
        r[k].as_str()
            .unwrap_or_else(|| panic!("no runner case {k}: {r}"))
            .to_string()
    };
    let declared = "sale_date:date,store_id:int,orders:bigint,units:bigint,revenue:decimal(18,2)";
    assert_eq!(get("exact columns"), format!("ok {declared}"));
    for case in ["misspelt alias", "misspelt alias, nullable column"] {
        let e = get(case);
        assert!(
            e.contains("job `daily_sales`")
                && e.contains("`revenu` is not a column of curated.daily_sales")
                && e.contains("did you mean `revenue`?"),
            "{case}: {e}"
        );
    }
    let e = get("missing nullable column");
    assert!(
        e.contains("has no column `revenue`, declared by curated.daily_sales"),
        "{e}"
    );
    let e = get("extra column");
    assert!(
        e.contains("`store_name` is not a column") && e.contains("did you mean `store_id`?"),
        "{e}"
    );
    let e = get("extra column, no close name");
    assert!(
        e.contains("`zzz` is not a column") && !e.contains("did you mean"),
        "{e}"
    );
    assert!(
        get("merge control column").starts_with("ok customer_id:bigint"),
        "{}",
        get("merge control column")
    );
    let e = get("merge, extra column");
    assert!(e.contains("`opp` is not a column of curated.customers"), "{e}");
    // Types: the shaped result has the declared types (the table is never widened) …
    assert_eq!(get("bigint into int, in range"), format!("ok {declared}"));
    // … a value out of the declared range fails, a type that cannot hold the values is refused.
    assert!(
        get("bigint into int, out of range").contains("CAST_OVERFLOW"),
        "{}",
        get("bigint into int, out of range")
    );
    let e = get("double into decimal");
    assert!(e.contains("column `revenue` is double, which cannot be written"), "{e}");
    let e = get("double into float");
    assert!(e.contains("column `revenue` is double, which cannot be written"), "{e}");
    assert!(
        get("float into float").ends_with("revenue:float"),
        "{}",
        get("float into float")
    );
}
