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
}

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
#[error("check `{check}` could not run: {source}\n  query: {sql}")]
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
        });
    }
    Ok(out)
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
}
