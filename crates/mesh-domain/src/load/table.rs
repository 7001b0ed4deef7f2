//! One `[[tables]]` entry: its columns, partitioning, sort order and identifier, then its
//! storage — Hive files for the raw layer, Iceberg (with optimizers) for refined and curated.

use super::unchecked::{UncheckedColumn, UncheckedCsv, UncheckedTable};
use super::{optimizer, FileCx};
use crate::diagnostic::did_you_mean;
use crate::ident::Name;
use crate::model::{
    BadRows, Column, ColumnType, CsvOptions, HiveOptions, IcebergOptions, Layer, PartitionField, RawFormat, SortField,
    Storage, Table, Transform,
};

/// Checks table `i`; `None` once anything in it was reported.
pub(super) fn check_table(cx: &mut FileCx<'_>, i: usize, t: &UncheckedTable) -> Option<Table> {
    let before = cx.diags.len();
    let f = |field: &str| format!("tables[{i}].{field}");
    let name = cx.name(&f("name"), &t.name);
    let layer = Layer::parse(&t.layer);
    if layer.is_none() {
        cx.err_help(
            f("layer"),
            format!("`{}` is not a layer", t.layer),
            "use raw, refined or curated",
        );
    }
    let columns = check_columns(cx, i, &t.columns);
    let partition_by = check_partition_by(cx, i, &t.partition_by, &columns);
    let sort_order = check_sort_order(cx, i, &t.sort_order, &columns);
    let identifier = check_identifier(cx, i, &t.identifier, &columns);
    if layer == Some(Layer::Raw) {
        // Raw files are read by column name as they land: there is no table to rename in.
        for (ci, c) in columns.iter().enumerate().filter(|(_, c)| c.renamed_from.is_some()) {
            cx.err_help(
                f(&format!("columns[{ci}].renamed_from")),
                format!("column `{}` of a raw table declares renamed_from", c.name),
                "renamed_from renames a column of an Iceberg (refined or curated) table; raw files are read by their header: remove it",
            );
        }
    }
    let storage = match layer {
        Some(Layer::Raw) => check_hive(cx, i, t, &partition_by),
        Some(_) => Some(check_iceberg(cx, i, t)),
        None => None,
    };

    if cx.diags.len() > before {
        return None;
    }
    Some(Table {
        name: name?,
        layer: layer?,
        description: t.description.clone(),
        columns,
        partition_by,
        sort_order,
        identifier,
        storage: storage?,
        moved_from: None, // set with the project's slug known: load::moves
    })
}

/// The declared columns that are valid; the invalid ones are reported.
fn check_columns(cx: &mut FileCx<'_>, i: usize, declared: &[UncheckedColumn]) -> Vec<Column> {
    let mut columns: Vec<Column> = Vec::new();
    if declared.is_empty() {
        cx.err_help(
            format!("tables[{i}].columns"),
            "the table declares no columns",
            "add columns = [{ name = \"id\", type = \"long\" }, …]",
        );
    }
    for (ci, c) in declared.iter().enumerate() {
        let cf = |field: &str| format!("tables[{i}].columns[{ci}].{field}");
        let cname = cx.name(&cf("name"), &c.name);
        let ty = ColumnType::parse(&c.data_type);
        if ty.is_none() {
            cx.err_help(
                cf("type"),
                format!("`{}` is not a column type", c.data_type),
                "use boolean, int, long, float, double, decimal(P,S), date, timestamp, timestamptz, string or binary",
            );
        }
        if let (Some(cname), Some(ty)) = (cname, ty) {
            if columns.iter().any(|x| x.name == cname) {
                cx.err_help(
                    cf("name"),
                    format!("column `{cname}` is declared twice"),
                    "column names must be unique",
                );
            }
            let renamed_from = c
                .renamed_from
                .as_ref()
                .and_then(|old| cx.name(&cf("renamed_from"), old));
            columns.push(Column {
                name: cname,
                data_type: ty,
                nullable: c.nullable.unwrap_or(true),
                comment: c.comment.clone(),
                renamed_from,
            });
        }
    }
    // A rename names a column the table no longer declares, once: otherwise the old column
    // would be both kept and renamed, or renamed twice.
    for (ci, c) in columns.iter().enumerate() {
        let Some(old) = &c.renamed_from else { continue };
        let field = format!("tables[{i}].columns[{ci}].renamed_from");
        if *old == c.name {
            cx.err_help(
                field,
                format!("column `{}` is renamed from itself", c.name),
                "remove renamed_from",
            );
        } else if columns.iter().any(|x| x.name == *old) {
            cx.err_help(
                field,
                format!("column `{}` is renamed from `{old}`, which is still declared", c.name),
                format!("remove the declaration of `{old}` (the rename keeps its values under `{}`), or remove renamed_from", c.name),
            );
        } else if columns[..ci].iter().any(|x| x.renamed_from.as_ref() == Some(old)) {
            cx.err_help(
                field,
                format!("`{old}` is renamed twice (to `{}` and another column)", c.name),
                "keep renamed_from on one column",
            );
        }
    }
    columns
}

/// The column named `col`, or a report at `field` suggesting the nearest declared one.
fn find_column(cx: &mut FileCx<'_>, columns: &[Column], field: String, col: &str) -> Option<Column> {
    match columns.iter().find(|c| c.name.as_str() == col) {
        Some(c) => Some(c.clone()),
        None => {
            let known_cols: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let help = did_you_mean(col, known_cols.iter().copied())
                .unwrap_or_else(|| format!("declare `{col}` in columns or use one of: {}", known_cols.join(", ")));
            cx.err_help(field, format!("column `{col}` is not declared in this table"), help);
            None
        }
    }
}

/// Partition fields, with Iceberg's rules for a new spec (`PartitionSpec.Builder`): each
/// field's name (see [`partition_name`]) is used once, a transform's name is not also a
/// column's (an identity field is named after its own column, which is fine), and a column has
/// at most one time transform (year, month, day and hour are redundant with each other) and no
/// transform twice. Iceberg refuses such a spec when the table is created, on AWS or locally.
fn check_partition_by(cx: &mut FileCx<'_>, i: usize, declared: &[String], columns: &[Column]) -> Vec<PartitionField> {
    let mut partition_by: Vec<PartitionField> = Vec::new();
    for (pi, p) in declared.iter().enumerate() {
        let field = format!("tables[{i}].partition_by[{pi}]");
        match PartitionField::parse(p) {
            Err(e) => cx.err(field, e).help = Some("e.g. partition_by = [\"day(order_ts)\"]".into()),
            Ok(pf) => {
                let before = cx.diags.len();
                if let Some(col) = find_column(cx, columns, field.clone(), pf.column.as_str()) {
                    if !pf.transform.accepts(col.data_type) {
                        cx.err_help(
                            field.clone(),
                            format!("cannot partition by `{pf}`: column `{}` is {}", col.name, col.data_type),
                            "year/month/day need a date or timestamp, hour a timestamp; truncate needs int, long, decimal, string or binary",
                        );
                    }
                }
                if partition_by.contains(&pf) {
                    cx.err_help(field, format!("`{pf}` is listed twice"), "remove the duplicate");
                } else {
                    if cx.diags.len() == before {
                        check_partition_spec_rules(cx, &field, &pf, &partition_by, columns);
                    }
                    partition_by.push(pf);
                }
            }
        }
    }
    partition_by
}

/// The name Iceberg gives a partition field it is not told a name for (Java's
/// `PartitionSpec.Builder`, Spark's DDL and mesh-iceberg alike): the column for identity, else
/// `column_year`, `_month`, `_day`, `_hour`, `_bucket` or `_trunc` (no width).
pub(crate) fn partition_name(pf: &PartitionField) -> String {
    let suffix = match pf.transform {
        Transform::Identity => return pf.column.to_string(),
        Transform::Year => "year",
        Transform::Month => "month",
        Transform::Day => "day",
        Transform::Hour => "hour",
        Transform::Bucket(_) => "bucket",
        Transform::Truncate(_) => "trunc",
    };
    format!("{}_{suffix}", pf.column)
}

fn is_time(t: Transform) -> bool {
    matches!(t, Transform::Year | Transform::Month | Transform::Day | Transform::Hour)
}

/// One field against the earlier ones and the columns, in Iceberg's order: the name clashes
/// with a column, then with an earlier field's, then the transform is redundant.
fn check_partition_spec_rules(
    cx: &mut FileCx<'_>,
    field: &str,
    pf: &PartitionField,
    earlier: &[PartitionField],
    columns: &[Column],
) {
    let name = partition_name(pf);
    if pf.transform != Transform::Identity && columns.iter().any(|c| c.name.as_str() == name) {
        cx.err_help(
            field,
            format!(
                "Iceberg names the partition field of `{pf}` `{name}`, which is also a column of this table: Iceberg refuses a partition name that exists in the schema"
            ),
            format!("rename the column `{name}` (e.g. `{}_value`), or drop `{pf}` from partition_by", name),
        );
        return;
    }
    if let Some(other) = earlier.iter().find(|e| partition_name(e) == name) {
        let help = match (other.transform, pf.transform) {
            (Transform::Bucket(_), Transform::Bucket(_)) | (Transform::Truncate(_), Transform::Truncate(_)) => {
                format!("keep one of `{other}` and `{pf}`")
            }
            _ => format!("remove `{pf}` or `{other}`: a partition name is used once"),
        };
        cx.err_help(
            field,
            format!("`{pf}` and `{other}` are both named `{name}` in the partition spec; Iceberg refuses a partition name used twice"),
            help,
        );
        return;
    }
    if is_time(pf.transform) {
        if let Some(other) = earlier.iter().find(|e| e.column == pf.column && is_time(e.transform)) {
            cx.err_help(
                field,
                format!(
                    "`{pf}` is redundant with `{other}`: Iceberg allows one time transform (year, month, day or hour) per column"
                ),
                format!(
                    "keep one: the finer one also prunes by the coarser (`day({c})` serves queries by month), the coarser makes fewer, larger partitions",
                    c = pf.column
                ),
            );
        }
    }
}

fn check_sort_order(cx: &mut FileCx<'_>, i: usize, declared: &[String], columns: &[Column]) -> Vec<SortField> {
    let mut sort_order = Vec::new();
    for (si, s) in declared.iter().enumerate() {
        let field = format!("tables[{i}].sort_order[{si}]");
        match SortField::parse(s) {
            Err(e) => {
                cx.err(field, e);
            }
            Ok(sf) => {
                if find_column(cx, columns, field, sf.column.as_str()).is_some() {
                    sort_order.push(sf);
                }
            }
        }
    }
    sort_order
}

/// Identifier (merge key) columns: declared, and required as Iceberg demands.
fn check_identifier(cx: &mut FileCx<'_>, i: usize, declared: &[String], columns: &[Column]) -> Vec<Name> {
    let mut identifier = Vec::new();
    for (ki, k) in declared.iter().enumerate() {
        let field = format!("tables[{i}].identifier[{ki}]");
        if let Some(col) = find_column(cx, columns, field.clone(), k) {
            if col.nullable {
                cx.err_help(
                    field,
                    format!("identifier column `{k}` is nullable"),
                    format!("Iceberg identifier fields must be required: set nullable = false on column `{k}`"),
                );
            }
            identifier.push(col.name);
        }
    }
    identifier
}

/// A raw-layer table: Hive files in a format, a bad-rows policy, and none of the Iceberg
/// settings. `None` when the format is unusable.
fn check_hive(cx: &mut FileCx<'_>, i: usize, t: &UncheckedTable, partition_by: &[PartitionField]) -> Option<Storage> {
    let f = |field: &str| format!("tables[{i}].{field}");
    if !t.dropped_columns.is_empty() {
        cx.err_help(
            f("dropped_columns"),
            "dropped_columns applies to Iceberg (refined and curated) tables",
            "raw files are read by their header: remove the column from columns, and dropped_columns",
        );
    }
    let format = t.format.as_deref().unwrap_or("csv");
    let file_format = match format {
        "csv" => Some(RawFormat::Csv(check_csv(cx, i, t.csv.as_ref()))),
        "json" => Some(RawFormat::Json),
        "parquet" => Some(RawFormat::Parquet),
        "iceberg" => {
            cx.err_help(
                f("format"),
                "raw tables are Hive-style tables; Iceberg is for the refined and curated layers",
                "set format to csv, json or parquet, or move the table to layer = \"refined\"",
            );
            None
        }
        other => {
            cx.err_help(
                f("format"),
                format!("`{other}` is not a raw file format"),
                "use csv, json or parquet",
            );
            None
        }
    };
    if t.csv.is_some() && format != "csv" {
        cx.err_help(
            f("csv"),
            format!("csv options on a {format} table"),
            "remove the [csv] section or set format = \"csv\"",
        );
    }
    let bad_rows = match t.bad_rows.as_deref() {
        None | Some("fail") => BadRows::Fail,
        Some("quarantine") => BadRows::Quarantine,
        Some(other) => {
            cx.err_help(
                f("bad_rows"),
                format!("`{other}` is not a bad-rows policy"),
                "use fail or quarantine",
            );
            BadRows::Fail
        }
    };
    for (pi, p) in partition_by.iter().enumerate() {
        if p.transform != Transform::Identity {
            cx.err_help(
                f(&format!("partition_by[{pi}]")),
                format!("raw tables are partitioned by Hive folders; `{p}` is an Iceberg transform"),
                format!(
                    "partition by the column itself (`{}`) or move the table to refined/curated",
                    p.column
                ),
            );
        }
    }
    let iceberg_only = [
        ("sort_order", !t.sort_order.is_empty()),
        ("identifier", !t.identifier.is_empty()),
        ("target_file_size_mb", t.target_file_size_mb.is_some()),
        ("schema_evolution", t.schema_evolution.is_some()),
        ("optimizers", t.optimizers.is_some()),
    ];
    for (key, present) in iceberg_only {
        if present {
            cx.err_help(
                f(key),
                format!("`{key}` applies to Iceberg tables only; this table is in the raw layer"),
                "remove it, or move the table to layer = \"refined\" or \"curated\"",
            );
        }
    }
    file_format.map(|file_format| Storage::Hive(HiveOptions { file_format, bad_rows }))
}

/// `[tables.csv]`, with every option defaulted when the section is absent.
fn check_csv(cx: &mut FileCx<'_>, i: usize, csv: Option<&UncheckedCsv>) -> CsvOptions {
    let f = |field: &str| format!("tables[{i}].{field}");
    let d = UncheckedCsv::default();
    let csv = csv.unwrap_or(&d);
    let delimiter = single_char(cx, f("csv.delimiter"), &csv.delimiter, ',');
    let quote = single_char(cx, f("csv.quote"), &csv.quote, '"');
    let escape = csv
        .escape
        .as_ref()
        .map(|_| single_char(cx, f("csv.escape"), &csv.escape, '\\'));
    check_csv_characters(cx, i, csv, delimiter, quote, escape);
    CsvOptions {
        header: csv.header.unwrap_or(true),
        delimiter,
        quote,
        escape,
        null_value: csv.null_value.clone().unwrap_or_default(),
    }
}

/// The delimiter, quote and escape characters must split a file the way they read: a line
/// break ends the record before any delimiter is seen (`delimiter = "\n"` reads every file as
/// one column, and a header-only table as 0 rows), and a delimiter equal to the quote or the
/// escape character makes every field ambiguous. A quote equal to the escape is the RFC 4180
/// doubling (`""` inside quotes) that Spark and the local reader both read, so it is allowed.
fn check_csv_characters(
    cx: &mut FileCx<'_>,
    i: usize,
    csv: &UncheckedCsv,
    delimiter: char,
    quote: char,
    escape: Option<char>,
) {
    let f = |field: &str| format!("tables[{i}].csv.{field}");
    let shown = |c: char| match c {
        '\n' => "\\n".to_string(),
        '\r' => "\\r".to_string(),
        '\t' => "\\t".to_string(),
        c => c.to_string(),
    };
    let mut line_break = false;
    for (key, c) in [
        ("delimiter", Some(delimiter)),
        ("quote", Some(quote)),
        ("escape", escape),
    ] {
        if let Some(c @ ('\n' | '\r')) = c {
            line_break = true;
            cx.err_help(
                f(key),
                format!(
                    "a line break (`{}`) cannot be the CSV {key}: lines end records before any field is split, so files would read as one column or 0 rows",
                    shown(c)
                ),
                match key {
                    "delimiter" => "use one character that is not a line break, e.g. \",\", \";\", \"|\" or \"\\t\"",
                    "quote" => "use \"\\\"\" (the default) or \"'\"",
                    _ => "use \"\\\\\" or the quote character, or remove `escape`",
                },
            );
        }
    }
    if line_break {
        return;
    }
    if delimiter == quote {
        // At the option the manifest set: a delimiter set to `"` clashes with the default quote.
        let field = if csv.delimiter.is_some() {
            f("delimiter")
        } else {
            f("quote")
        };
        cx.err_help(
            field,
            format!(
                "the CSV delimiter and quote character are both `{}`: no field could be told from a quoted one",
                shown(delimiter)
            ),
            if delimiter == '"' {
                "use a different delimiter, e.g. \",\" or \";\", or set quote = \"'\"".to_string()
            } else {
                format!(
                    "use different characters, e.g. delimiter = \"{}\" and quote = \"\\\"\"",
                    if delimiter == ',' { ";" } else { "," }
                )
            },
        );
    }
    if escape == Some(delimiter) {
        cx.err_help(
            f("escape"),
            format!(
                "the CSV delimiter and escape character are both `{}`: an escaped delimiter could not be told from a field break",
                shown(delimiter)
            ),
            "use a different escape, e.g. \"\\\\\", or remove `escape` (quoted fields need none)",
        );
    }
}

/// A refined or curated table: Iceberg, with a target file size, schema evolution and
/// optimizers, and none of the raw-layer settings.
fn check_iceberg(cx: &mut FileCx<'_>, i: usize, t: &UncheckedTable) -> Storage {
    let f = |field: &str| format!("tables[{i}].{field}");
    match t.format.as_deref() {
        None | Some("iceberg") => {}
        Some(other) => cx.err_help(
            f("format"),
            format!(
                "{} tables are Iceberg tables; `{other}` applies to the raw layer only",
                t.layer
            ),
            "remove `format` (or set it to \"iceberg\")",
        ),
    }
    for (key, present) in [("csv", t.csv.is_some()), ("bad_rows", t.bad_rows.is_some())] {
        if present {
            cx.err_help(f(key), format!("`{key}` applies to raw tables only"), "remove it");
        }
    }
    let target = t
        .target_file_size_mb
        .unwrap_or(crate::model::DEFAULT_TARGET_FILE_SIZE_MB);
    if !(1..=4096).contains(&target) {
        cx.err_help(
            f("target_file_size_mb"),
            format!("{target} MB is out of range"),
            "use 1 to 4096 (Iceberg's default is 512)",
        );
    }
    let optimizers = optimizer::check_optimizers(cx, i, t.optimizers.as_ref(), target);
    let mut dropped_columns = Vec::new();
    for (k, name) in t.dropped_columns.iter().enumerate() {
        let field = f(&format!("dropped_columns[{k}]"));
        if t.columns.iter().any(|c| &c.name == name) {
            cx.err_help(
                field,
                format!("column `{name}` is declared and dropped"),
                "remove it from dropped_columns to keep it, or from columns to drop it",
            );
        } else if let Some(n) = cx.name(&field, name) {
            dropped_columns.push(n);
        }
    }
    Storage::Iceberg(IcebergOptions {
        target_file_size_mb: target,
        schema_evolution: t.schema_evolution.unwrap_or(true),
        optimizers,
        dropped_columns,
    })
}

/// One CSV character option; the two characters `\t` stand for a tab.
fn single_char(cx: &mut FileCx<'_>, field: String, value: &Option<String>, default: char) -> char {
    match value {
        None => default,
        // The CSV reader (and Spark's) works on bytes: a multi-byte character would be cut to
        // its first byte, or silently replaced.
        Some(s) if s.chars().count() == 1 && !s.is_ascii() => {
            cx.err_help(
                field,
                format!("`{s}` is not an ASCII character (the CSV reader splits on single bytes)"),
                "use one ASCII character, e.g. \",\", \";\", \"|\" or \"\\t\"",
            );
            default
        }
        Some(s) if s.chars().count() == 1 && s.as_bytes()[0] == 0 => {
            cx.err_help(field, "a NUL character cannot delimit CSV", "use e.g. \",\" or \"\\t\"");
            default
        }
        Some(s) if s.chars().count() == 1 => s.chars().next().unwrap_or(default),
        Some(s) if s == "\\t" => '\t',
        Some(s) => {
            cx.err_help(
                field,
                format!("`{}` is not a single character", crate::diagnostic::truncate(s)),
                "use one character, e.g. \",\" or \"\\t\"",
            );
            default
        }
    }
}

#[cfg(test)]
mod edge_tests {
    use super::super::testing::{diagnostics, one_at};

    /// A raw CSV table with this `[tables.csv]` body.
    fn csv(options: &str) -> String {
        format!(
            r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "events"
layer = "raw"
format = "csv"
columns = [{{ name = "id", type = "long" }}, {{ name = "note", type = "string" }}]
[tables.csv]
{options}
"#
        )
    }

    #[test]
    fn csv_characters_that_cannot_split_a_file_are_refused() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("delimiter = \"\\n\"", "delimiter", &["line break", "`\\n`"]),
            ("delimiter = \"\\r\"", "delimiter", &["line break", "`\\r`"]),
            ("quote = \"\\n\"", "quote", &["line break"]),
            ("escape = \"\\r\"", "escape", &["line break"]),
            ("delimiter = '\"'", "delimiter", &["delimiter and quote", "`\"`"]),
            (
                "delimiter = \"'\"\nquote = \"'\"",
                "delimiter",
                &["delimiter and quote"],
            ),
            ("quote = \",\"", "quote", &["delimiter and quote", "`,`"]),
            (
                "delimiter = \"\\\\t\"\nquote = \"\\t\"",
                "delimiter",
                &["delimiter and quote", "`\\t`"],
            ),
            (
                "delimiter = \";\"\nescape = \";\"",
                "escape",
                &["delimiter and escape", "`;`"],
            ),
            ("escape = \",\"", "escape", &["delimiter and escape", "`,`"]),
            (
                "delimiter = \"|\"\nescape = \"|\"\nquote = \"'\"",
                "escape",
                &["delimiter and escape"],
            ),
        ];
        for (options, key, wanted) in cases {
            let d = one_at(
                &diagnostics(&csv(options), &[]),
                &format!("tables[0].csv.{key}"),
                wanted,
            );
            assert!(!d.help.unwrap().contains("\n"), "{options}");
        }
    }

    #[test]
    fn csv_characters_that_split_a_file_are_accepted() {
        for options in [
            "delimiter = \",\"",
            "delimiter = \"\\t\"",
            "delimiter = \"\\\\t\"",
            "delimiter = \";\"\nquote = \"'\"",
            // RFC 4180 doubling: the quote escapes itself.
            "quote = '\"'\nescape = '\"'",
            "delimiter = \"|\"\nescape = \"\\\\\"",
            "",
        ] {
            let d = diagnostics(&csv(options), &[]);
            assert!(d.is_empty(), "{options}: {d:#?}");
        }
    }

    /// A curated table with these columns (beyond `ts timestamp`, `d date`, `id long`) and
    /// this partition_by.
    fn iceberg(partition_by: &str, extra_columns: &str) -> String {
        format!(
            r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "facts"
layer = "curated"
partition_by = {partition_by}
columns = [
  {{ name = "ts", type = "timestamp" }},
  {{ name = "d", type = "date" }},
  {{ name = "id", type = "long" }},
  {{ name = "code", type = "string" }},
  {extra_columns}
]
"#
        )
    }

    #[test]
    fn partition_specs_iceberg_refuses_are_refused() {
        let cases: &[(&str, &str, usize, &[&str])] = &[
            // Redundant time transforms of one column, in any order and spelling.
            (
                r#"["month(d)", "day(d)"]"#,
                "",
                1,
                &["`day(d)` is redundant with `month(d)`"],
            ),
            (r#"["days(ts)", "hours(ts)"]"#, "", 1, &["redundant", "`day(ts)`"]),
            (
                r#"["year(ts)", "id", "month(ts)"]"#,
                "",
                2,
                &["redundant with `year(ts)`"],
            ),
            (r#"["hour(ts)", "year(ts)"]"#, "", 1, &["one time transform"]),
            // A generated name that is also a column.
            (
                r#"["month(d)"]"#,
                r#"{ name = "d_month", type = "int" }"#,
                0,
                &["`d_month`", "exists in the schema"],
            ),
            (
                r#"["bucket(8, id)"]"#,
                r#"{ name = "id_bucket", type = "int" }"#,
                0,
                &["`id_bucket`"],
            ),
            (
                r#"["truncate(4, code)"]"#,
                r#"{ name = "code_trunc", type = "string" }"#,
                0,
                &["`code_trunc`"],
            ),
            // Two fields with one name.
            (
                r#"["bucket(16, id)", "bucket(8, id)"]"#,
                "",
                1,
                &["both named `id_bucket`", "used twice"],
            ),
            (
                r#"["truncate(2, code)", "truncate(4, code)"]"#,
                "",
                1,
                &["both named `code_trunc`"],
            ),
            // Exact duplicates, as before.
            (r#"["bucket(16, id)", "bucket(16,id)"]"#, "", 1, &["listed twice"]),
            (r#"["d", "identity(d)"]"#, "", 1, &["listed twice"]),
        ];
        for (spec, extra, at, wanted) in cases {
            one_at(
                &diagnostics(&iceberg(spec, extra), &[]),
                &format!("tables[0].partition_by[{at}]"),
                wanted,
            );
        }
    }

    #[test]
    fn a_transform_named_like_a_column_that_is_also_partitioned_is_reported_on_both() {
        let d = diagnostics(
            &iceberg(r#"["month(d)", "d_month"]"#, r#"{ name = "d_month", type = "int" }"#),
            &[],
        );
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(d[0].location.field, "tables[0].partition_by[0]");
        assert!(d[0].message.contains("exists in the schema"), "{}", d[0]);
        assert_eq!(d[1].location.field, "tables[0].partition_by[1]");
        assert!(d[1].message.contains("both named `d_month`"), "{}", d[1]);
    }

    #[test]
    fn partition_specs_iceberg_accepts_are_accepted() {
        for (spec, extra) in [
            (r#"["month(d)", "day(ts)"]"#, ""),
            (r#"["d", "month(d)"]"#, ""),
            (r#"["id", "bucket(16, id)", "truncate(4, id)"]"#, ""),
            (r#"["bucket(16, id)", "bucket(4, code)"]"#, ""),
            (r#"["hour(ts)", "bucket(8, ts)"]"#, ""),
            // `d_month` as a column is fine while nothing generates that name.
            (r#"["day(d)", "d_month"]"#, r#"{ name = "d_month", type = "int" }"#),
            (r#"[]"#, ""),
        ] {
            let d = diagnostics(&iceberg(spec, extra), &[]);
            assert!(d.is_empty(), "{spec}: {d:#?}");
        }
    }
}
