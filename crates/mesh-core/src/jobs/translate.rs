//! The one mapping from the domain model to the engines: Arrow types for the local engine,
//! Iceberg table definitions (schema, partition spec, sort order, properties) for both
//! catalogs, and Spark SQL names for the Glue runner's specs.
//!
//! The model knows nothing of engines; this module is where its types meet them, so the table
//! meshkit creates locally and the one the Glue runner creates from `mesh build`'s spec cannot
//! disagree on a type, a transform or a property.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mesh_domain::{ColumnType, Table, Transform};
use mesh_iceberg::{PartitionField, PartitionTransform, SortKey, TableDefinition, TARGET_FILE_SIZE_PROPERTY};

/// The Arrow type of a declared column type. Iceberg timestamps are microseconds; `timestamptz`
/// is stored in UTC.
pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Int => DataType::Int32,
        ColumnType::Long => DataType::Int64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale as i8),
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        ColumnType::String => DataType::Utf8,
        ColumnType::Binary => DataType::Binary,
    }
}

/// The Arrow schema of a table, columns in declaration order.
pub fn arrow_schema(table: &Table) -> SchemaRef {
    Arc::new(Schema::new(
        table
            .columns
            .iter()
            .map(|c| Field::new(c.name.as_str(), arrow_type(c.data_type), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The engine's partition transform of a model transform.
pub fn partition_transform(t: Transform) -> PartitionTransform {
    match t {
        Transform::Identity => PartitionTransform::Identity,
        Transform::Year => PartitionTransform::Year,
        Transform::Month => PartitionTransform::Month,
        Transform::Day => PartitionTransform::Day,
        Transform::Hour => PartitionTransform::Hour,
        Transform::Bucket(n) => PartitionTransform::Bucket(n),
        Transform::Truncate(w) => PartitionTransform::Truncate(w),
    }
}

/// The Iceberg table properties the manifest sets (today: the target file size of refined and
/// curated tables). The Glue runner's output spec carries the same map.
pub fn table_properties(table: &Table) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    if let Some(o) = table.iceberg() {
        properties.insert(
            TARGET_FILE_SIZE_PROPERTY.to_string(),
            o.target_file_size_bytes().to_string(),
        );
    }
    properties
}

/// The Iceberg definition of a table (schema, partition spec, sort order, properties), without
/// its location, which depends on the environment.
pub fn table_definition(table: &Table) -> TableDefinition {
    let mut def = TableDefinition::new(arrow_schema(table));
    for p in &table.partition_by {
        def = def.partition(PartitionField::new(
            p.column.to_string(),
            partition_transform(p.transform),
        ));
    }
    for s in &table.sort_order {
        def = def.sort_by(SortKey {
            column: s.column.to_string(),
            descending: s.descending,
            nulls_first: s.nulls_first,
        });
    }
    for (k, v) in table_properties(table) {
        def = def.property(k, v);
    }
    for c in &table.identifier {
        def = def.identify_by(c.to_string());
    }
    def
}

/// The Spark SQL type of a column. Iceberg `timestamp` (no zone) is Spark's `timestamp_ntz`.
pub fn spark_type(t: ColumnType) -> String {
    match t {
        ColumnType::Timestamp => "timestamp_ntz".into(),
        ColumnType::Timestamptz => "timestamp".into(),
        other => other.hive_name(),
    }
}

/// Iceberg's Spark DDL form of a partition transform (`months(sale_date)`).
pub fn spark_transform(column: &str, t: Transform) -> String {
    match t {
        Transform::Identity => column.to_string(),
        Transform::Year => format!("years({column})"),
        Transform::Month => format!("months({column})"),
        Transform::Day => format!("days({column})"),
        Transform::Hour => format!("hours({column})"),
        Transform::Bucket(n) => format!("bucket({n}, {column})"),
        Transform::Truncate(w) => format!("truncate({w}, {column})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_domain::model::{megabytes, DEFAULT_TARGET_FILE_SIZE_MB};

    #[test]
    fn the_model_default_file_size_is_icebergs() {
        // Two constants (the model cannot depend on the engine): they must name the same size.
        assert_eq!(
            megabytes(DEFAULT_TARGET_FILE_SIZE_MB),
            mesh_iceberg::DEFAULT_TARGET_FILE_SIZE as u64
        );
    }

    #[test]
    fn every_transform_maps_to_the_engine_and_to_spark() {
        let all = [
            (Transform::Identity, PartitionTransform::Identity, "c"),
            (Transform::Year, PartitionTransform::Year, "years(c)"),
            (Transform::Month, PartitionTransform::Month, "months(c)"),
            (Transform::Day, PartitionTransform::Day, "days(c)"),
            (Transform::Hour, PartitionTransform::Hour, "hours(c)"),
            (Transform::Bucket(16), PartitionTransform::Bucket(16), "bucket(16, c)"),
            (
                Transform::Truncate(4),
                PartitionTransform::Truncate(4),
                "truncate(4, c)",
            ),
        ];
        for (model, engine, spark) in all {
            assert_eq!(partition_transform(model), engine);
            assert_eq!(spark_transform("c", model), spark);
        }
    }

    #[test]
    fn timestamps_keep_their_zone_semantics() {
        assert_eq!(
            arrow_type(ColumnType::Timestamp),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(spark_type(ColumnType::Timestamp), "timestamp_ntz");
        assert_eq!(spark_type(ColumnType::Timestamptz), "timestamp");
        assert_eq!(
            arrow_type(ColumnType::Decimal {
                precision: 12,
                scale: 2
            }),
            DataType::Decimal128(12, 2)
        );
    }
}
