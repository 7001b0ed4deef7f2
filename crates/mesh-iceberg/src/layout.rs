//! Declared evolution of a table's layout: schema, identifier fields, partition spec and sort
//! order brought to what the caller declares, as one metadata change (Iceberg's schema and
//! spec evolution; no data file is read or rewritten).

use std::sync::Arc;

use arrow::datatypes::DataType;
use iceberg::arrow::arrow_type_to_type;
use iceberg::spec::{
    NestedField, Schema, SortOrder, TableMetadata, TableMetadataBuilder, Transform, UnboundPartitionSpec,
};

use crate::error::{Error, Result};
use crate::keys::{PartitionField, SortKey};

/// What a table is brought to by [`crate::Table::evolve_layout`].
#[derive(Debug, Clone, Default)]
pub struct TableLayout {
    /// Every column of the table, in order; a current column not listed is dropped.
    pub columns: Vec<LayoutColumn>,
    /// Identifier fields (Iceberg's row identity; meshkit's merge keys): required columns.
    pub identifier: Vec<String>,
    pub partition_by: Vec<PartitionField>,
    pub sort_order: Vec<SortKey>,
}

#[derive(Debug, Clone)]
pub struct LayoutColumn {
    pub name: String,
    /// The current column this one continues (its field id is kept; another name is a
    /// rename); `None`: a new column.
    pub current: Option<String>,
    pub data_type: DataType,
    pub required: bool,
}

fn invalid(table: &str, detail: String) -> Error {
    Error::Invalid {
        table: table.to_string(),
        detail,
    }
}

/// The metadata of `base` brought to `layout`, or `None` when it already is.
pub(crate) fn evolved(
    table: &str,
    base: &TableMetadata,
    base_location: &str,
    layout: &TableLayout,
) -> Result<Option<TableMetadata>> {
    let current = base.current_schema();
    let mut next_id = base.last_column_id().max(current.highest_field_id()) + 1;
    let mut fields = Vec::with_capacity(layout.columns.len());
    for c in &layout.columns {
        let ty = arrow_type_to_type(&c.data_type).map_err(|e| {
            invalid(
                table,
                format!("column {}: {} has no Iceberg type ({e})", c.name, c.data_type),
            )
        })?;
        let (id, doc) = match &c.current {
            Some(name) => {
                let f = current
                    .field_by_name(name)
                    .ok_or_else(|| invalid(table, format!("column {name} is not in the table's current schema")))?;
                (f.id, f.doc.clone())
            }
            None => {
                next_id += 1;
                (next_id - 1, None)
            }
        };
        let mut f = NestedField::new(id, c.name.clone(), ty, c.required);
        f.doc = doc;
        fields.push(Arc::new(f));
    }
    let mut identifier = Vec::with_capacity(layout.identifier.len());
    for name in &layout.identifier {
        let f = fields
            .iter()
            .find(|f| &f.name == name)
            .ok_or_else(|| invalid(table, format!("identifier column {name} is not a column of the table")))?;
        identifier.push(f.id);
    }
    let schema = Schema::builder()
        .with_identifier_field_ids(identifier)
        .with_fields(fields)
        .build()?;
    let ids = |s: &Schema| {
        let mut v: Vec<i32> = s.identifier_field_ids().collect();
        v.sort_unstable();
        v
    };
    let same_schema = schema.as_struct() == current.as_struct() && ids(&schema) == ids(current);

    let mut spec = UnboundPartitionSpec::builder();
    let mut wanted_spec = Vec::new();
    for pf in &layout.partition_by {
        let source = schema.field_by_name(&pf.column).ok_or_else(|| {
            invalid(
                table,
                format!("partition column {} is not a column of the table", pf.column),
            )
        })?;
        let transform = pf.transform.to_iceberg();
        // A field the current spec has keeps its name; a new one is named as Iceberg's
        // UpdatePartitionSpec names it (Spark's ADD PARTITION FIELD, which the Glue runner
        // uses): `id_bucket_4`, `s_trunc_8`, where a new table's spec says `id_bucket`.
        let kept = base
            .default_partition_spec()
            .fields()
            .iter()
            .find(|f| f.source_id == source.id && f.transform == transform)
            .map(|f| f.name.clone());
        let name = pf.name.clone().or(kept).unwrap_or_else(|| match pf.transform {
            crate::PartitionTransform::Bucket(n) => format!("{}_bucket_{n}", pf.column),
            crate::PartitionTransform::Truncate(w) => format!("{}_trunc_{w}", pf.column),
            t => match t.suffix() {
                None => pf.column.clone(),
                Some(s) => format!("{}_{s}", pf.column),
            },
        });
        wanted_spec.push((source.id, transform));
        spec = spec.add_partition_field(source.id, name, transform)?;
    }
    let have_spec: Vec<(i32, Transform)> = base
        .default_partition_spec()
        .fields()
        .iter()
        .map(|f| (f.source_id, f.transform))
        .collect();
    let same_spec = have_spec == wanted_spec;

    let mut order_fields = Vec::new();
    for k in &layout.sort_order {
        let source = schema
            .field_by_name(&k.column)
            .ok_or_else(|| invalid(table, format!("sort column {} is not a column of the table", k.column)))?;
        order_fields.push(k.to_iceberg(source.id));
    }
    let have_order = &base.default_sort_order().fields;
    let same_order = *have_order == order_fields;

    if same_schema && same_spec && same_order {
        return Ok(None);
    }
    let mut builder = TableMetadataBuilder::new_from_metadata(base.clone(), Some(base_location.to_string()));
    if !same_schema {
        builder = builder.add_current_schema(schema.clone())?;
    }
    if !same_spec {
        builder = builder.add_default_partition_spec(spec.build())?;
    }
    if !same_order {
        let order = if order_fields.is_empty() {
            SortOrder::unsorted_order()
        } else {
            SortOrder::builder()
                .with_fields(order_fields)
                .build(&schema)
                .map_err(|e| invalid(table, format!("invalid sort order: {e}")))?
        };
        builder = builder
            .add_sort_order(order)?
            .set_default_sort_order(TableMetadataBuilder::LAST_ADDED as i64)?;
    }
    Ok(Some(builder.build()?.metadata))
}
