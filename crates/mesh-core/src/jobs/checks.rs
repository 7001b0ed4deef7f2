//! Data-quality checks, run on a job's output before anything is committed. Each check is one
//! SQL query over the output (registered as `output`) that counts failing rows.

use datafusion::arrow::array::{Array, Int64Array, UInt64Array};
use datafusion::prelude::SessionContext;
use mesh_domain::{Check, CheckKind, Severity};
use serde::{Deserialize, Serialize};

/// Also a job step's check results in its run record (`mesh report` reads them back).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckOutcome {
    pub name: String,
    /// The check's type: `not_null`, `unique`, `sql`, ….
    pub check: String,
    pub severity: Severity,
    pub passed: bool,
    /// Rows that break the check (for `row_count_min`: the rows missing).
    pub failing_rows: u64,
    pub detail: String,
    /// The query that counts the failing rows, over the job's result (`output`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sql: String,
    /// The first failing rows ([`SAMPLE_SHOWN`] at most): the output's key columns and the
    /// columns the check reads, as text. Empty for a passing check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<Vec<String>>,
    /// A freshness check's figures (see [`freshness_check`]); `None` for checks on the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessFigures>,
}

/// What a freshness check compared: the snapshot of another domain's product a job read, its
/// commit time and age at the run's time, and the producer's promise.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FreshnessFigures {
    /// `f01.daily_sales@1`.
    pub product: String,
    pub snapshot_id: i64,
    /// The snapshot's commit time (ms since the epoch).
    pub committed_at_ms: i64,
    /// The run's time (ms since the epoch), which the age is measured at.
    pub at_ms: i64,
    pub age_seconds: u64,
    /// The producer's promise as the pin recorded it (`26h`).
    pub promise: String,
}

/// The check type of [`freshness_check`].
pub const FRESHNESS: &str = "freshness";

/// The name of the freshness check of a product: `freshness(f01.daily_sales@1)`.
pub fn freshness_check_name(product: &str, version: u32) -> String {
    format!("{FRESHNESS}({product}@{version})")
}

/// A time in ms since the epoch as messages write it: `2026-12-07 06:00:00 UTC`.
pub fn utc_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| crate::interval::format_instant(t.naive_utc()))
        .unwrap_or_else(|| ms.to_string())
}

/// The freshness check of another domain's product a job read: its snapshot must be no older
/// than the producer's promise at the run's time `at_ms` (never the clock: a run at `--at` is
/// judged at that time). Whichever way the product was read (the local pin, the producer's
/// catalog on AWS), the [`ProductRead`](crate::products::ProductRead) says what was read, and
/// the check is this one. A promise that is not a duration fails the check.
pub fn freshness_check(read: &crate::products::ProductRead, at_ms: i64) -> CheckOutcome {
    use mesh_domain::product::{age_seconds, age_text};
    let product = format!("{}@{}", read.product, read.version);
    let age = age_seconds(read.committed_at_ms, at_ms);
    let read_what = format!(
        "snapshot {} committed {}, {} old at the run's time {}",
        read.snapshot_id,
        utc_ms(read.committed_at_ms),
        age_text(age),
        utc_ms(at_ms)
    );
    let (passed, detail) = match mesh_domain::Freshness::parse(&read.freshness) {
        Ok(f) if f.holds(age) => (true, format!("{read_what}: within the promise ({f})")),
        Ok(f) => (false, format!("{read_what}: OLDER than the promise ({f})")),
        Err(why) => (
            false,
            format!(
                "{read_what}: the promise recorded for it, `{}`, is not a duration ({why})",
                read.freshness
            ),
        ),
    };
    CheckOutcome {
        name: freshness_check_name(&read.product, read.version),
        check: FRESHNESS.into(),
        severity: Severity::Error,
        passed,
        failing_rows: 0,
        detail,
        sql: String::new(),
        sample_columns: Vec::new(),
        sample: Vec::new(),
        freshness: Some(FreshnessFigures {
            product,
            snapshot_id: read.snapshot_id,
            committed_at_ms: read.committed_at_ms,
            at_ms,
            age_seconds: age,
            promise: read.freshness.clone(),
        }),
    }
}

/// Failing rows shown in the error, the run record and the report.
pub const SAMPLE_SHOWN: usize = 5;
/// Failing rows kept per check and run in `<table>_check_failures`.
pub const SAMPLE_KEPT: usize = 100;

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The counting query of a check over the relation `output`.
pub fn check_sql(kind: &CheckKind) -> String {
    match kind {
        CheckKind::NotNull { columns } => {
            let cond: Vec<String> = columns
                .iter()
                .map(|c| format!("{} IS NULL", ident(c.as_str())))
                .collect();
            format!("SELECT COUNT(*) FROM output WHERE {}", cond.join(" OR "))
        }
        CheckKind::Unique { columns } => {
            let cols: Vec<String> = columns.iter().map(|c| ident(c.as_str())).collect();
            format!(
                "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM output GROUP BY {} HAVING COUNT(*) > 1) d",
                cols.join(", ")
            )
        }
        CheckKind::AcceptedValues { column, values } => {
            let vals: Vec<String> = values.iter().map(|v| literal(v)).collect();
            let c = ident(column.as_str());
            format!(
                "SELECT COUNT(*) FROM output WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                vals.join(", ")
            )
        }
        CheckKind::Range { column, min, max } => {
            let c = ident(column.as_str());
            let mut cond = Vec::new();
            if let Some(m) = min {
                cond.push(format!("CAST({c} AS DOUBLE) < {m:?}"));
            }
            if let Some(m) = max {
                cond.push(format!("CAST({c} AS DOUBLE) > {m:?}"));
            }
            format!("SELECT COUNT(*) FROM output WHERE {}", cond.join(" OR "))
        }
        CheckKind::RowCountMin { .. } => "SELECT COUNT(*) FROM output".to_string(),
        CheckKind::Sql { sql } => format!("SELECT COUNT(*) FROM ({}) failing", sql.trim().trim_end_matches(';')),
    }
}

async fn count(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<u64> {
    // Check SQL comes from the manifest: it may read, never write (COPY, INSERT, CREATE …).
    let batches = ctx
        .sql_with_options(sql, crate::sql_check::read_only())
        .await?
        .collect()
        .await?;
    let Some(b) = batches.first() else { return Ok(0) };
    let col = b.column(0);
    if col.is_null(0) {
        return Ok(0);
    }
    if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
        return Ok(a.value(0).max(0) as u64);
    }
    if let Some(a) = col.as_any().downcast_ref::<UInt64Array>() {
        return Ok(a.value(0));
    }
    let casted = datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Int64)?;
    Ok(casted
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| a.value(0).max(0) as u64)
        .unwrap_or(0))
}

/// A check whose query could not run (not a failing check: that is a [`CheckOutcome`]).
#[derive(Debug, thiserror::Error)]
#[error("check `{check}` could not run: {}\n  query: {sql}", crate::type_names::in_message(&source.to_string()))]
pub struct CheckError {
    pub check: String,
    pub sql: String,
    #[source]
    pub source: Box<datafusion::error::DataFusionError>,
}

/// Runs every check against the table `output` registered in `ctx`.
pub async fn run_checks(ctx: &SessionContext, checks: &[Check]) -> Result<Vec<CheckOutcome>, CheckError> {
    let mut out = Vec::new();
    for c in checks {
        let sql = check_sql(&c.kind);
        let n = match count(ctx, &sql).await {
            Ok(n) => n,
            Err(e) => {
                return Err(CheckError {
                    check: c.name.clone(),
                    sql,
                    source: Box::new(e),
                })
            }
        };
        let (passed, failing, detail) = match &c.kind {
            CheckKind::RowCountMin { min } => (
                n >= *min,
                min.saturating_sub(n),
                format!("{n} rows, at least {min} required"),
            ),
            _ => (
                n == 0,
                n,
                if n == 0 {
                    "no failing rows".into()
                } else {
                    format!("{n} failing rows")
                },
            ),
        };
        out.push(CheckOutcome {
            name: c.name.clone(),
            check: c.kind.type_name().to_string(),
            severity: c.severity,
            passed,
            failing_rows: failing,
            detail,
            sql,
            sample_columns: Vec::new(),
            sample: Vec::new(),
            freshness: None,
        });
    }
    Ok(out)
}

/// The columns that identify an output row in a failing-row sample: the table's identifier
/// columns, else the merge keys, else its first three columns.
pub fn key_columns(job: &mesh_domain::Job, table: &mesh_domain::Table) -> Vec<String> {
    if !table.identifier.is_empty() {
        return table.identifier.iter().map(|c| c.to_string()).collect();
    }
    if let mesh_domain::WriteMode::Merge(m) = &job.mode {
        return m.keys.iter().map(|c| c.to_string()).collect();
    }
    table.columns.iter().take(3).map(|c| c.name.to_string()).collect()
}

/// The columns a check reads.
fn checked_columns(kind: &CheckKind) -> Vec<String> {
    match kind {
        CheckKind::NotNull { columns } | CheckKind::Unique { columns } => {
            columns.iter().map(|c| c.to_string()).collect()
        }
        CheckKind::AcceptedValues { column, .. } | CheckKind::Range { column, .. } => vec![column.to_string()],
        CheckKind::RowCountMin { .. } | CheckKind::Sql { .. } => Vec::new(),
    }
}

/// The query listing a check's failing rows (whole rows of `output`, whose columns are
/// `columns`), ordered by `order`; `None` for `row_count_min`, which fails on rows missing.
pub fn failing_rows_sql(kind: &CheckKind, columns: &[String], order: &[String], limit: usize) -> Option<String> {
    let all: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let order_by = |known: &[String]| {
        let o: Vec<String> = order.iter().filter(|c| known.contains(c)).map(|c| ident(c)).collect();
        if o.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", o.join(", "))
        }
    };
    let count_where = |sql: String| {
        sql.replacen(
            "SELECT COUNT(*) FROM output",
            &format!("SELECT {} FROM output", all.join(", ")),
            1,
        )
    };
    let sql = match kind {
        CheckKind::NotNull { .. } | CheckKind::AcceptedValues { .. } | CheckKind::Range { .. } => {
            format!("{}{}", count_where(check_sql(kind)), order_by(columns))
        }
        CheckKind::Unique { columns: keys } => {
            let k: Vec<String> = keys.iter().map(|c| ident(c.as_str())).collect();
            format!(
                "SELECT {} FROM (SELECT *, COUNT(*) OVER (PARTITION BY {}) AS \"__mesh_dups\" FROM output) d WHERE \"__mesh_dups\" > 1{}",
                all.join(", "),
                k.join(", "),
                order_by(columns)
            )
        }
        CheckKind::RowCountMin { .. } => return None,
        CheckKind::Sql { sql } => format!("SELECT * FROM ({}) failing", sql.trim().trim_end_matches(';')),
    };
    Some(format!("{sql} LIMIT {limit}"))
}

/// The failing rows one run keeps of one check.
#[derive(Debug, Clone)]
pub struct FailingRows {
    pub check: String,
    pub rows: datafusion::arrow::record_batch::RecordBatch,
}

/// For every failed check: its first failing rows into the outcome (key and checked columns,
/// [`SAMPLE_SHOWN`] rows) and up to [`SAMPLE_KEPT`] whole rows returned to be kept. A sample
/// that cannot be read is logged and left out: the check's result stands without it.
pub async fn sample_failures(
    ctx: &SessionContext,
    checks: &[Check],
    outcomes: &mut [CheckOutcome],
    keys: &[String],
) -> Vec<FailingRows> {
    let mut kept = Vec::new();
    let columns: Vec<String> = match ctx.table("output").await {
        Ok(df) => df.schema().fields().iter().map(|f| f.name().clone()).collect(),
        Err(_) => return kept,
    };
    for (c, o) in checks.iter().zip(outcomes.iter_mut()) {
        if o.passed {
            continue;
        }
        let Some(sql) = failing_rows_sql(&c.kind, &columns, keys, SAMPLE_KEPT) else {
            continue;
        };
        let batches = match ctx.sql_with_options(&sql, crate::sql_check::read_only()).await {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        let batch = match batches.and_then(|b| {
            let schema = b
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| std::sync::Arc::new(datafusion::arrow::datatypes::Schema::empty()));
            Ok(datafusion::arrow::compute::concat_batches(&schema, &b)?)
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(check = %c.name, "cannot read the check's failing rows: {e}");
                continue;
            }
        };
        let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        let mut shown: Vec<String> = Vec::new();
        for k in keys.iter().chain(&checked_columns(&c.kind)) {
            if names.contains(k) && !shown.contains(k) {
                shown.push(k.clone());
            }
        }
        if shown.is_empty() {
            shown = names.iter().take(5).cloned().collect();
        }
        let idx: Vec<usize> = shown.iter().filter_map(|n| names.iter().position(|x| x == n)).collect();
        let fmt = datafusion::arrow::util::display::FormatOptions::default().with_null("NULL");
        let formatters: Vec<_> = idx
            .iter()
            .filter_map(|&i| datafusion::arrow::util::display::ArrayFormatter::try_new(batch.column(i), &fmt).ok())
            .collect();
        o.sample_columns = shown;
        o.sample = (0..batch.num_rows().min(SAMPLE_SHOWN))
            .map(|r| formatters.iter().map(|f| f.value(r).to_string()).collect())
            .collect();
        drop(formatters);
        kept.push(FailingRows {
            check: c.name.clone(),
            rows: batch,
        });
    }
    kept
}

/// A check's sample as an aligned text table, each line indented by two spaces.
pub fn sample_text(o: &CheckOutcome) -> String {
    if o.sample.is_empty() {
        return String::new();
    }
    let widths: Vec<usize> = (0..o.sample_columns.len())
        .map(|i| {
            o.sample
                .iter()
                .map(|r| r.get(i).map_or(0, |v| v.chars().count()))
                .chain([o.sample_columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("  {}", padded.join(" | ").trim_end())
    };
    let mut out = vec![line(&o.sample_columns)];
    out.extend(o.sample.iter().map(|r| line(r)));
    out.join("\n")
}

/// The schema of `<table>_check_failures` (besides its `run_id` partition): the job, the
/// check, the row's key columns (`order_id=17, store_id=3`) and the whole row as JSON.
pub fn check_failures_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    std::sync::Arc::new(Schema::new(vec![
        Field::new("job", DataType::Utf8, false),
        Field::new("check", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("row", DataType::Utf8, false),
    ]))
}

/// The folder of `<table>_check_failures` under the domain root:
/// `.mesh/check_failures/<layer>.<table>/`, one `run_id=<run>/` folder per run.
pub fn check_failures_dir(root: &std::path::Path, table: &mesh_domain::Table) -> std::path::PathBuf {
    root.join(".mesh/check_failures").join(table.reference().to_string())
}

/// Keeps the failing rows of a job's checks as one Parquet file
/// `<check_failures_dir>/run_id=<run>/<job>.parquet` (schema [`check_failures_schema`]).
pub fn keep_failures(
    root: &std::path::Path,
    table: &mesh_domain::Table,
    run_id: &str,
    job: &str,
    keys: &[String],
    failures: &[FailingRows],
) -> Result<Option<std::path::PathBuf>, String> {
    use datafusion::arrow::array::StringArray;
    if failures.iter().all(|f| f.rows.num_rows() == 0) || !crate::layout::valid_run_id(run_id) {
        return Ok(None);
    }
    let (mut jobs, mut names, mut key_text, mut rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for f in failures {
        let batch = &f.rows;
        let mut w = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::LineDelimited>(Vec::new());
        w.write(batch).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&w.into_inner()).into_owned();
        let fmt = datafusion::arrow::util::display::FormatOptions::default().with_null("NULL");
        let key_cols: Vec<(String, datafusion::arrow::util::display::ArrayFormatter)> = keys
            .iter()
            .filter_map(|k| {
                let i = batch.schema().index_of(k).ok()?;
                let f = datafusion::arrow::util::display::ArrayFormatter::try_new(batch.column(i), &fmt).ok()?;
                Some((k.clone(), f))
            })
            .collect();
        for (r, json) in text.lines().enumerate().take(batch.num_rows()) {
            jobs.push(job.to_string());
            names.push(f.check.clone());
            key_text.push(
                key_cols
                    .iter()
                    .map(|(k, f)| format!("{k}={}", f.value(r)))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            rows.push(json.to_string());
        }
    }
    let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
        check_failures_schema(),
        vec![
            std::sync::Arc::new(StringArray::from(jobs)),
            std::sync::Arc::new(StringArray::from(names)),
            std::sync::Arc::new(StringArray::from(key_text)),
            std::sync::Arc::new(StringArray::from(rows)),
        ],
    )
    .map_err(|e| e.to_string())?;
    let dir = check_failures_dir(root, table).join(format!("run_id={run_id}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{job}.parquet"));
    let tmp = dir.join(format!(".{job}.parquet.tmp"));
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.close().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_domain::Name;

    #[test]
    fn queries_quote_identifiers_and_literals() {
        let sql = check_sql(&CheckKind::AcceptedValues {
            column: Name::parse("status").unwrap(),
            values: vec!["it's".into()],
        });
        assert!(sql.contains("\"status\"") && sql.contains("'it''s'"), "{sql}");
        let sql = check_sql(&CheckKind::Range {
            column: Name::parse("amount").unwrap(),
            min: Some(0.0),
            max: None,
        });
        assert!(sql.ends_with("CAST(\"amount\" AS DOUBLE) < 0.0"), "{sql}");
    }

    #[test]
    fn a_product_is_fresh_up_to_its_promise_at_the_runs_time() {
        let commit = 1_767_261_600_000; // 2026-01-01 10:00:00 UTC
        let read = crate::products::ProductRead {
            product: "f01.daily_sales".into(),
            version: 1,
            snapshot_id: 42,
            rows: 3,
            committed_at_ms: commit,
            freshness: "26h".into(),
        };
        let fresh = freshness_check(&read, commit + 26 * 3_600_000);
        assert!(fresh.passed, "{fresh:?}");
        assert_eq!(fresh.name, "freshness(f01.daily_sales@1)");
        assert!(fresh.detail.contains("within the promise (26h)"), "{}", fresh.detail);
        let stale = freshness_check(&read, commit + 3 * 86_400_000);
        assert!(!stale.passed && stale.severity == Severity::Error);
        assert_eq!(
            stale.detail,
            "snapshot 42 committed 2026-01-01 10:00:00 UTC, 3d old at the run's time 2026-01-04 10:00:00 UTC: OLDER than the promise (26h)"
        );
        let f = stale.freshness.unwrap();
        assert_eq!(
            (f.age_seconds, f.snapshot_id, f.promise.as_str()),
            (3 * 86_400, 42, "26h")
        );
        let unreadable = crate::products::ProductRead {
            freshness: "soon".into(),
            ..read
        };
        assert!(!freshness_check(&unreadable, commit).passed);
    }
}
