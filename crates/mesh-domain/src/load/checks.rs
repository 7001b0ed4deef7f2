//! A job's data-quality `checks`: one flat shape for every type, so each type's required
//! and misplaced fields are reported by name.

use super::unchecked::UncheckedCheck;
use super::FileCx;
use crate::diagnostic::did_you_mean;
use crate::ident::Name;
use crate::model::{Check, CheckKind, Severity, Table};

/// Check `ci` of job `i`, whose columns must be in the job's output table `out`.
pub(super) fn check_check(
    cx: &mut FileCx<'_>,
    i: usize,
    ci: usize,
    c: &UncheckedCheck,
    out: Option<&Table>,
) -> Option<Check> {
    let f = |field: &str| format!("jobs[{i}].checks[{ci}].{field}");
    let before = cx.diags.len();
    let severity = match c.severity.as_deref() {
        None | Some("error") => Severity::Error,
        Some("warn") => Severity::Warn,
        Some(other) => {
            cx.err_help(
                f("severity"),
                format!("`{other}` is not a severity"),
                "use error (commits nothing on failure) or warn",
            );
            Severity::Error
        }
    };
    let col = |cx: &mut FileCx<'_>, field: String, name: &str| -> Option<Name> {
        let n = cx.name(&field, name)?;
        if let Some(t) = out {
            if t.column(name).is_none() {
                let help = did_you_mean(name, t.columns.iter().map(|c| c.name.as_str()))
                    .unwrap_or_else(|| format!("checks run on the output table `{}`", t.reference()));
                cx.err_help(
                    field,
                    format!("column `{name}` is not in the output table `{}`", t.reference()),
                    help,
                );
                return None;
            }
        }
        Some(n)
    };
    let need = |cx: &mut FileCx<'_>, key: &str, present: bool| {
        if !present {
            cx.err_help(
                f(key),
                format!("a `{}` check needs `{key}`", c.kind),
                format!("add {key} = …"),
            );
        }
        present
    };
    let allowed: &[&str] = match c.kind.as_str() {
        "not_null" | "unique" => &["columns"],
        "accepted_values" => &["column", "values"],
        "range" => &["column", "min", "max"],
        "row_count_min" => &["min"],
        "sql" => &["sql"],
        _ => &[],
    };
    let present = [
        ("columns", c.columns.is_some()),
        ("column", c.column.is_some()),
        ("values", c.values.is_some()),
        ("min", c.min.is_some()),
        ("max", c.max.is_some()),
        ("sql", c.sql.is_some()),
    ];
    let kind = match c.kind.as_str() {
        "not_null" | "unique" => {
            if need(cx, "columns", c.columns.as_ref().is_some_and(|v| !v.is_empty())) {
                let cols: Vec<Name> = c
                    .columns
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter_map(|(k, name)| col(cx, f(&format!("columns[{k}]")), name))
                    .collect();
                Some(if c.kind == "unique" {
                    CheckKind::Unique { columns: cols }
                } else {
                    CheckKind::NotNull { columns: cols }
                })
            } else {
                None
            }
        }
        "accepted_values" => {
            let has = need(cx, "column", c.column.is_some())
                & need(cx, "values", c.values.as_ref().is_some_and(|v| !v.is_empty()));
            if has {
                let column = col(cx, f("column"), c.column.as_deref().unwrap_or_default());
                let values = c
                    .values
                    .iter()
                    .flatten()
                    .map(|v| match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                column.map(|column| CheckKind::AcceptedValues { column, values })
            } else {
                None
            }
        }
        "range" => {
            if need(cx, "column", c.column.is_some()) {
                if c.min.is_none() && c.max.is_none() {
                    cx.err_help(
                        f("min"),
                        "a range check needs min, max or both",
                        "add min = 0 and/or max = …",
                    );
                }
                for (field, v) in [("min", c.min), ("max", c.max)] {
                    if let Some(v) = v.filter(|v| !v.is_finite()) {
                        // NaN compares false with everything and becomes the SQL name `nan`.
                        cx.err_help(
                            f(field),
                            format!("{v} is not a finite number"),
                            "use a number such as 0 or 1e6, or leave it out for an open range",
                        );
                    }
                }
                if let (Some(lo), Some(hi)) = (c.min, c.max) {
                    if lo > hi {
                        cx.err_help(f("min"), format!("min {lo} is greater than max {hi}"), "swap them");
                    }
                }
                col(cx, f("column"), c.column.as_deref().unwrap_or_default()).map(|column| CheckKind::Range {
                    column,
                    min: c.min,
                    max: c.max,
                })
            } else {
                None
            }
        }
        "row_count_min" => match c.min {
            Some(m) if m >= 0.0 && m.fract() == 0.0 && m <= 9.0e15 => Some(CheckKind::RowCountMin { min: m as u64 }),
            Some(m) => {
                cx.err_help(f("min"), format!("{m} is not a row count"), "use a whole number ≥ 0");
                None
            }
            None => {
                need(cx, "min", false);
                None
            }
        },
        "sql" => {
            if need(cx, "sql", c.sql.as_ref().is_some_and(|s| !s.trim().is_empty())) {
                let sql = c.sql.clone().unwrap_or_default();
                if let Some(t) = out {
                    check_sql_columns(cx, f("sql"), &sql, t);
                }
                Some(CheckKind::Sql { sql })
            } else {
                None
            }
        }
        other => {
            cx.err_help(
                f("type"),
                format!("`{other}` is not a check type"),
                did_you_mean(
                    other,
                    ["not_null", "unique", "accepted_values", "range", "row_count_min", "sql"],
                )
                .unwrap_or_else(|| "use not_null, unique, accepted_values, range, row_count_min or sql".into()),
            );
            None
        }
    };
    if !allowed.is_empty() {
        for (key, is_present) in present {
            if is_present && !allowed.contains(&key) {
                cx.err_help(
                    f(key),
                    format!("`{key}` does not apply to a `{}` check", c.kind),
                    format!("a `{}` check takes: {}", c.kind, allowed.join(", ")),
                );
            }
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    let kind = kind?;
    let name = c.name.clone().unwrap_or_else(|| match &kind {
        CheckKind::NotNull { columns } | CheckKind::Unique { columns } => {
            format!(
                "{}({})",
                kind.type_name(),
                columns.iter().map(Name::as_str).collect::<Vec<_>>().join(", ")
            )
        }
        CheckKind::AcceptedValues { column, .. } | CheckKind::Range { column, .. } => {
            format!("{}({column})", kind.type_name())
        }
        CheckKind::RowCountMin { min } => format!("row_count_min({min})"),
        CheckKind::Sql { .. } => format!("sql_check_{ci}"),
    });
    Some(Check { name, severity, kind })
}

/// A `sql` check's query runs on the output table as `output`: every column it names must be
/// one of the table's. Found by [`crate::sql_columns::unknown_columns`], a conservative
/// identifier scan that stays silent on queries it cannot judge (joins with other tables,
/// `WITH`, subqueries in `FROM`); the engine reports those when the check runs.
fn check_sql_columns(cx: &mut FileCx<'_>, field: String, sql: &str, out: &Table) {
    let known: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
    for name in crate::sql_columns::unknown_columns(sql, &known).unwrap_or_default() {
        let help = did_you_mean(&name, known.iter().copied())
            .unwrap_or_else(|| format!("the columns of `{}` are: {}", out.reference(), known.join(", ")));
        cx.err_help(
            field.clone(),
            format!(
                "the query names column `{}`, which is not in the output table `{}` (the check reads it as `output`)",
                crate::diagnostic::truncate(&name),
                out.reference()
            ),
            help,
        );
    }
}

#[cfg(test)]
mod edge_tests {
    use super::super::testing::{diagnostics, one_at};

    fn manifest(sql: &str) -> String {
        format!(
            r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "orders"
layer = "curated"
columns = [
  {{ name = "order_date", type = "date" }},
  {{ name = "country", type = "string" }},
  {{ name = "amount", type = "decimal(18,2)" }},
]

[[jobs]]
name = "totals"
sql = "sql/totals.sql"
output = "curated.orders"
mode = "overwrite"
checks = [{{ type = "sql", name = "no_negative", sql = {sql:?} }}]
"#
        )
    }

    fn check(sql: &str) -> Vec<crate::Diagnostic> {
        diagnostics(
            &manifest(sql),
            &[(
                "sql/totals.sql",
                "SELECT CAST('2026-01-01' AS DATE) AS order_date, 'FR' AS country, CAST(1 AS DECIMAL(18,2)) AS amount",
            )],
        )
    }

    #[test]
    fn a_sql_check_naming_an_unknown_column_is_refused() {
        let d = one_at(
            &check("SELECT * FROM output WHERE amout < 0"),
            "jobs[0].checks[0].sql",
            &["`amout`", "curated.orders"],
        );
        assert_eq!(d.help.as_deref(), Some("did you mean `amount`?"));
        let d = one_at(
            &check("SELECT * FROM output o WHERE o.revenue < 0"),
            "jobs[0].checks[0].sql",
            &["`revenue`"],
        );
        assert!(d.help.unwrap().contains("order_date, country, amount"));
        let d = check("SELECT contry, SUM(amount) AS total FROM output GROUP BY contry HAVING SUM(amnt) < 0");
        assert_eq!(d.len(), 2, "{d:#?}");
        assert!(d.iter().any(|x| x.message.contains("`contry`")) && d.iter().any(|x| x.message.contains("`amnt`")));
    }

    #[test]
    fn sql_checks_on_known_columns_or_other_tables_are_accepted() {
        for sql in [
            "SELECT * FROM output WHERE amount < 0",
            "SELECT country, COUNT(*) AS n FROM output GROUP BY country HAVING n > 1",
            "SELECT * FROM output o JOIN f01_raw.other r ON o.country = r.whatever",
        ] {
            let d = check(sql);
            assert!(d.is_empty(), "{sql}: {d:#?}");
        }
    }
}
