//! The first write after a manifest change brings the table to the manifest: columns added,
//! renamed (`renamed_from`), promoted, dropped, made optional; identifier fields, partition
//! spec and sort order set; all in one metadata-only commit before the data is written.
//!
//! What is applied and what is refused is [`crate::classify::table_changes`]' classification, so
//! `mesh plan` and the run cannot disagree: a change the plan refuses stops the write before
//! anything is committed (unless the engine was opened with `allow_destructive`, then the
//! destructive changes meshkit can make — a column dropped, other identifier fields — are
//! applied and the others leave the table as it is). The Glue runner's `layout_statements`
//! follows the same rules in Spark DDL.

use mesh_domain::Table;
use mesh_iceberg::{LayoutColumn, TableLayout};

use crate::classify::{base_of_catalog, refused_help, table_changes, BaseTable};
use crate::translate::{arrow_type, table_definition};

/// Brings `t` (the catalog's table of `table`) to the manifest, or refuses naming each change
/// and its fix. Returns what changed (empty: nothing).
pub async fn bring_to_manifest(
    t: &mut mesh_iceberg::Table,
    table: &Table,
    writers: &[&str],
    allow_destructive: bool,
) -> mesh_iceberg::Result<Vec<String>> {
    let base = base_of_catalog(t);
    let changes = table_changes(&base, table);
    if changes.is_empty() {
        return Ok(vec![]);
    }
    if !allow_destructive {
        if let Some(refusal) = refused_help(&table.reference().to_string(), &changes, base.holds_data, writers) {
            return Err(mesh_iceberg::Error::Invalid {
                table: t.ident().to_string(),
                detail: refusal,
            });
        }
    }
    let layout = layout(t, &base, table)?;
    if t.evolve_layout(&layout).await? {
        Ok(changes.into_iter().map(|(_, d)| d).collect())
    } else {
        Ok(vec![])
    }
}

/// The layout the manifest asks for, less what cannot be applied to the data already written
/// (only reached with `allow_destructive`): a type that is not a promotion stays, a column
/// holding rows stays optional.
fn layout(t: &mesh_iceberg::Table, base: &BaseTable, table: &Table) -> mesh_iceberg::Result<TableLayout> {
    let current = t.arrow_schema()?;
    let def = table_definition(table);
    let mut columns = Vec::new();
    for c in &table.columns {
        let existing = base.columns.iter().find(|b| b.name == c.name.as_str()).or_else(|| {
            let old = c.renamed_from.as_ref()?;
            base.columns.iter().find(|b| b.name == old.as_str())
        });
        let column = match existing {
            None => LayoutColumn {
                name: c.name.to_string(),
                current: None,
                data_type: arrow_type(c.data_type),
                required: !c.nullable && !base.holds_data,
            },
            Some(b) => {
                let promoted = matches!(&b.data_type, Ok(have) if *have == c.data_type || crate::classify::promotes(*have, c.data_type));
                let data_type = if promoted {
                    arrow_type(c.data_type)
                } else {
                    current
                        .field_with_name(&b.name)
                        .map(|f| f.data_type().clone())
                        .map_err(|e| mesh_iceberg::Error::Invalid {
                            table: t.ident().to_string(),
                            detail: format!("column {}: {e}", b.name),
                        })?
                };
                let required = !c.nullable && (!b.nullable || !base.holds_data);
                LayoutColumn {
                    name: c.name.to_string(),
                    current: Some(b.name.clone()),
                    data_type,
                    required,
                }
            }
        };
        columns.push(column);
    }
    // Identifier fields must be required columns: when one stayed optional, the table keeps
    // the identifier fields it has.
    let declared: Vec<String> = table.identifier.iter().map(|i| i.to_string()).collect();
    let identifier = if declared
        .iter()
        .all(|i| columns.iter().any(|c| &c.name == i && c.required))
    {
        declared
    } else {
        base.identifier.clone().unwrap_or_default()
    };
    Ok(TableLayout {
        columns,
        identifier,
        partition_by: def.partition_by,
        sort_order: def.sort_order,
    })
}
