//! How a change of a table's declaration reaches the data already written: the classes of
//! change ([`Class`]), the rules that classify a manifest against a table as it is
//! ([`table_changes`]) and what a write refuses ([`refused_help`]). Pure rules over the model and
//! an Iceberg table's metadata: `mesh plan` ([`crate::plan`]) reports them, the first write after
//! a change ([`crate::evolve`]) applies them, so the two cannot disagree.

use mesh_domain::{Column, ColumnType, Table, Transform};
use serde::Serialize;

/// How a change reaches the data already written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Nothing written before changes meaning: new tables, jobs, nullable columns.
    Additive,
    /// A type Iceberg widens in place: int→long, float→double, decimal(p,s)→decimal(p',s), p'≥p.
    TypePromotion,
    /// Existing data no longer fits or would be read wrongly: narrowing, incompatible types,
    /// other merge keys.
    Breaking,
    /// Data would be dropped or orphaned: a table or column removed, a table moved.
    Destructive,
    /// Only correct once existing data is recomputed or rewritten: a NOT NULL column added, a
    /// partition spec changed, a stateful job whose definition changed.
    NeedsRewrite,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Additive => "additive",
            Class::TypePromotion => "type promotion",
            Class::Breaking => "breaking",
            Class::Destructive => "destructive",
            Class::NeedsRewrite => "needs a rewrite",
        }
    }
}

/// Iceberg's type promotions (format v2): int→long, float→double, decimal(p,s)→decimal(p',s)
/// with p' ≥ p.
pub fn promotes(from: ColumnType, to: ColumnType) -> bool {
    use ColumnType as C;
    match (from, to) {
        (C::Int, C::Long) | (C::Float, C::Double) => true,
        (
            C::Decimal { precision: p, scale: s },
            C::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s == s2 && p2 >= p,
        _ => false,
    }
}

/// A column as the base holds it: the type may be one meshkit cannot name (`None`, with the
/// text the catalog gave).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseColumn {
    pub name: String,
    pub data_type: Result<ColumnType, String>,
    pub nullable: bool,
}

impl From<&Column> for BaseColumn {
    fn from(c: &Column) -> BaseColumn {
        BaseColumn {
            name: c.name.to_string(),
            data_type: Ok(c.data_type),
            nullable: c.nullable,
        }
    }
}

/// A table's shape as the base holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseTable {
    pub columns: Vec<BaseColumn>,
    /// `month(d)`, `bucket(16, id)`.
    pub partition_by: Vec<String>,
    /// `col asc nulls first`.
    pub sort_order: Vec<String>,
    /// `None`: the base does not record them (a catalog table written without identifier fields).
    pub identifier: Option<Vec<String>>,
    /// Whether the table holds rows: a NOT NULL column can be added to an empty one.
    pub holds_data: bool,
}

impl BaseTable {
    pub fn of(t: &Table) -> BaseTable {
        BaseTable {
            columns: t.columns.iter().map(BaseColumn::from).collect(),
            partition_by: t.partition_by.iter().map(|p| p.to_string()).collect(),
            sort_order: t.sort_order.iter().map(|s| s.to_string()).collect(),
            identifier: Some(t.identifier.iter().map(|i| i.to_string()).collect()),
            // Another model says nothing of the data: take it as written.
            holds_data: true,
        }
    }
}

/// The classified differences between a table as the base holds it and as the model declares
/// it, one (class, detail) each.
pub fn table_changes(base: &BaseTable, table: &Table) -> Vec<(Class, String)> {
    let mut out = Vec::new();
    let find = |name: &str| base.columns.iter().find(|b| b.name == name);
    // Old names a declared column continues (`renamed_from`), when the base has the old name
    // and not yet the new one.
    let mut renamed: Vec<&str> = Vec::new();
    for c in &table.columns {
        let existing = match find(c.name.as_str()) {
            Some(b) => Some(b),
            None => match c.renamed_from.as_ref().and_then(|old| find(old.as_str())) {
                Some(b) => {
                    renamed.push(b.name.as_str());
                    out.push((
                        Class::Additive,
                        format!(
                            "column {} renamed to {} (same field id: its values are kept)",
                            b.name, c.name
                        ),
                    ));
                    Some(b)
                }
                None => None,
            },
        };
        match existing {
            None if c.nullable => out.push((Class::Additive, format!("column {} ({}) added", c.name, c.data_type))),
            None if !base.holds_data => out.push((
                Class::Additive,
                format!(
                    "NOT NULL column {} ({}) added to a table with no rows",
                    c.name, c.data_type
                ),
            )),
            None => out.push((
                Class::NeedsRewrite,
                format!(
                    "NOT NULL column {} ({}) added: the rows already written have no value for it",
                    c.name, c.data_type
                ),
            )),
            Some(b) => {
                match &b.data_type {
                    Ok(t) if *t == c.data_type => {}
                    Ok(t) if promotes(*t, c.data_type) => {
                        out.push((Class::TypePromotion, format!("column {}: {t} → {}", c.name, c.data_type)))
                    }
                    Ok(t) => out.push((
                        Class::Breaking,
                        format!(
                            "column {}: {t} → {} is not a type promotion Iceberg allows (int→long, float→double, decimal(p,s)→decimal(p',s) with p' ≥ p); the data already written keeps {t}",
                            c.name, c.data_type
                        ),
                    )),
                    Err(raw) => out.push((
                        Class::Breaking,
                        format!("column {}: {raw} → {}: not a type meshkit can change", c.name, c.data_type),
                    )),
                }
                match (b.nullable, c.nullable) {
                    (false, true) => out.push((Class::Additive, format!("column {}: NOT NULL → nullable", c.name))),
                    (true, false) if !base.holds_data => out.push((
                        Class::Additive,
                        format!("column {}: nullable → NOT NULL (the table has no rows)", c.name),
                    )),
                    (true, false) => out.push((
                        Class::NeedsRewrite,
                        format!(
                            "column {}: nullable → NOT NULL: rows already written may hold NULLs",
                            c.name
                        ),
                    )),
                    _ => {}
                }
            }
        }
    }
    let declared_drops: Vec<&str> = table
        .iceberg()
        .map(|o| o.dropped_columns.iter().map(|n| n.as_str()).collect())
        .unwrap_or_default();
    for b in &base.columns {
        if table.column(&b.name).is_none() && !renamed.contains(&b.name.as_str()) {
            out.push((
                Class::Destructive,
                if declared_drops.contains(&b.name.as_str()) {
                    format!("column {} dropped {DECLARED_DROP}", b.name)
                } else {
                    format!(
                        "column {} dropped: its values in the rows already written would be lost",
                        b.name
                    )
                },
            ));
        }
    }
    let partition: Vec<String> = table.partition_by.iter().map(|p| p.to_string()).collect();
    if partition != base.partition_by {
        out.push((
            Class::Additive,
            format!(
                "partition spec [{}] → [{}]: spec evolution (files already written keep the old spec, new writes use the new one)",
                base.partition_by.join(", "),
                partition.join(", ")
            ),
        ));
    }
    let sort: Vec<String> = table.sort_order.iter().map(|s| s.to_string()).collect();
    if sort != base.sort_order {
        out.push((
            Class::Additive,
            format!(
                "sort order [{}] → [{}]: applies to files written from now on",
                base.sort_order.join(", "),
                sort.join(", ")
            ),
        ));
    }
    let identifier: Vec<String> = table.identifier.iter().map(|i| i.to_string()).collect();
    // Identifier fields are a set (Iceberg keeps ids, in no order).
    let same_set = |a: &[String], b: &[String]| {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort();
        b.sort();
        a == b
    };
    match &base.identifier {
        Some(base_id) if !same_set(base_id, &identifier) => out.push((
            Class::Breaking,
            format!(
                "identifier (merge) keys ({}) → ({}): rows merged under the old keys would be duplicated under the new ones",
                base_id.join(", "),
                identifier.join(", ")
            ),
        )),
        // A table written before meshkit set identifier fields gets them from the manifest.
        None if !identifier.is_empty() => out.push((
            Class::Additive,
            format!("identifier fields set to ({})", identifier.join(", ")),
        )),
        _ => {}
    }
    out
}

/// Why a write refuses `changes` of table `name` (`None`: it applies them), with one fix per
/// kind of change; `writers` are the jobs writing the table.
pub fn refused_help(name: &str, changes: &[(Class, String)], holds_data: bool, writers: &[&str]) -> Option<String> {
    let refused: Vec<&(Class, String)> = changes
        .iter()
        .filter(|(c, d)| refuses(*c) && !d.ends_with(DECLARED_DROP))
        .collect();
    if refused.is_empty() {
        return None;
    }
    let jobs = if writers.is_empty() {
        "J".to_string()
    } else {
        writers.join("/")
    };
    let mut help: Vec<String> = Vec::new();
    let has = |class: Class| refused.iter().any(|(c, _)| *c == class);
    if has(Class::Breaking) {
        help.push(
            "a type Iceberg cannot promote, or other identifier keys: keep the table's type (or a promotion: int→long, float→double, a wider decimal precision) and keys, or write a new table under another name".into(),
        );
    }
    if has(Class::NeedsRewrite) {
        help.push(format!(
            "a NOT NULL column or nullable → NOT NULL on rows already written: declare it nullable = true, or recompute the table (an incremental or time-range job: mesh run --job {jobs} --full-refresh empties it first)"
        ));
    }
    if has(Class::Destructive) {
        help.push(format!(
            "a dropped column: list it in the table's dropped_columns = [\"...\"] (every engine and environment then drops it from the schema; metadata only: older snapshots keep its values), or mesh run --job {jobs} --allow-destructive for this run, or declare it again; a renamed column needs renamed_from = \"old\""
        ));
    }
    let what: Vec<&str> = refused.iter().map(|(_, d)| d.as_str()).collect();
    Some(format!(
        "{name}: {} refused{}: {}\n  help: {}",
        if what.len() == 1 { "a change is" } else { "changes are" },
        if holds_data { " (the table holds data)" } else { "" },
        what.join("; "),
        help.join("\n  help: ")
    ))
}

/// The worst class of a list (destructive over breaking over needs-a-rewrite over promotion
/// over additive).
pub(crate) fn worst(classes: impl IntoIterator<Item = Class>) -> Class {
    let rank = |c: Class| match c {
        Class::Additive => 0,
        Class::TypePromotion => 1,
        Class::NeedsRewrite => 2,
        Class::Breaking => 3,
        Class::Destructive => 4,
    };
    classes.into_iter().max_by_key(|c| rank(*c)).unwrap_or(Class::Additive)
}

/// The detail of a column drop the manifest declares (`dropped_columns`): destructive, and
/// applied without `--allow-destructive`.
const DECLARED_DROP: &str = "(declared in dropped_columns: metadata only, older snapshots keep its values)";

/// Whether meshkit refuses to apply a change of this class to a table that holds data.
pub(crate) fn refuses(class: Class) -> bool {
    matches!(class, Class::Breaking | Class::Destructive | Class::NeedsRewrite)
}

/// A catalog type name as the model names types (`None` for types meshkit does not declare).
pub(crate) fn catalog_type(s: &str) -> Result<ColumnType, String> {
    ColumnType::parse(&s.replace(", ", ",")).ok_or_else(|| s.to_string())
}

/// A catalog partition field (`month` of `d`, `bucket[16]` of `id`) as the model writes it.
pub(crate) fn catalog_partition(transform: &str, source: &str) -> String {
    let t = match transform {
        "identity" => Some(Transform::Identity),
        "year" => Some(Transform::Year),
        "month" => Some(Transform::Month),
        "day" => Some(Transform::Day),
        "hour" => Some(Transform::Hour),
        other => {
            let width = |p: &str| other.strip_prefix(p)?.strip_suffix(']')?.parse::<u32>().ok();
            width("bucket[")
                .map(Transform::Bucket)
                .or_else(|| width("truncate[").map(Transform::Truncate))
        }
    };
    match (t, mesh_domain::Name::parse(source)) {
        (Some(transform), Ok(column)) => mesh_domain::PartitionField { column, transform }.to_string(),
        _ => format!("{transform}({source})"),
    }
}

/// The table as the catalog holds it.
pub fn base_of_catalog(t: &mesh_iceberg::Table) -> BaseTable {
    let info = t.info();
    let schema = t.metadata().current_schema();
    let ids: Vec<String> = schema
        .identifier_field_ids()
        .filter_map(|id| schema.field_by_id(id).map(|f| f.name.clone()))
        .collect();
    BaseTable {
        columns: info
            .schema
            .iter()
            .map(|c| BaseColumn {
                name: c.name.clone(),
                data_type: catalog_type(&c.r#type),
                nullable: !c.required,
            })
            .collect(),
        partition_by: info
            .partition_spec
            .iter()
            .map(|p| catalog_partition(&p.transform, &p.source))
            .collect(),
        sort_order: info.sort_order.clone(),
        // Tables written before meshkit set identifier fields record none: they get them.
        identifier: (!ids.is_empty()).then_some(ids),
        holds_data: info.total_records.unwrap_or(0) > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_type_promotions() {
        use ColumnType as C;
        let d = |precision, scale| C::Decimal { precision, scale };
        assert!(promotes(C::Int, C::Long));
        assert!(promotes(C::Float, C::Double));
        assert!(promotes(d(10, 2), d(18, 2)));
        assert!(promotes(d(10, 2), d(10, 2)));
        assert!(!promotes(d(18, 2), d(10, 2)), "narrowing");
        assert!(!promotes(d(10, 2), d(12, 3)), "another scale");
        assert!(!promotes(C::Long, C::Int));
        assert!(!promotes(C::Int, C::Double));
        assert!(!promotes(C::Date, C::Timestamp));
    }

    #[test]
    fn catalog_partitions_read_as_the_model_writes_them() {
        assert_eq!(catalog_partition("month", "d"), "month(d)");
        assert_eq!(catalog_partition("bucket[16]", "id"), "bucket(16, id)");
        assert_eq!(catalog_partition("truncate[4]", "s"), "truncate(4, s)");
        assert_eq!(catalog_partition("identity", "d"), "d");
        assert_eq!(
            catalog_type("decimal(18, 2)"),
            Ok(ColumnType::Decimal {
                precision: 18,
                scale: 2
            })
        );
        assert_eq!(catalog_type("struct<…>"), Err("struct<…>".to_string()));
    }
}
