//! Fitting caller data to the table schema, and schema evolution on write.
//!
//! Every batch is materialised and cast to the table's Arrow schema (field ids, types and
//! nullability) before it reaches the Iceberg writers. That is the workaround for two
//! iceberg 0.10.1 problems: partition values are read by position from projected batches
//! (Int64 data for an Int32 partition source fails), and a non-nullable input field is
//! rejected for a nullable column.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef};
use iceberg::arrow::{arrow_type_to_type, schema_to_arrow_schema};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};

use crate::error::{Error, Result};

/// What a write may change in the table schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaEvolution {
    /// Input columns unknown to the table are added as nullable columns.
    pub add_columns: bool,
    /// `int` columns become `long` and `float` columns become `double` when the input is wider.
    /// Jobs cast their result to the manifest's types before writing, so for them this only
    /// applies a type the manifest widened: a query returning BIGINT or DOUBLE never changes
    /// the table (the manifest is the truth).
    pub widen_types: bool,
}

impl SchemaEvolution {
    /// Allow both adding columns and widening types.
    pub fn permissive() -> Self {
        Self {
            add_columns: true,
            widen_types: true,
        }
    }
}

/// Arrow schema (with Iceberg field ids) that batches must have to be written.
pub(crate) fn arrow_schema(schema: &Schema) -> Result<ArrowSchemaRef> {
    Ok(Arc::new(schema_to_arrow_schema(schema)?))
}

fn type_name(t: &DataType) -> String {
    format!("{t}")
}

/// The evolved schema needed to write `input`, or `None` when the current schema fits.
pub(crate) fn evolve_schema(
    table: &str,
    current: &Schema,
    last_column_id: i32,
    input: &ArrowSchema,
    evolution: SchemaEvolution,
) -> Result<Option<Schema>> {
    let mut fields: Vec<NestedField> = current
        .as_struct()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut next_id = last_column_id.max(current.highest_field_id()) + 1;
    let mut changed = false;
    for input_field in input.fields() {
        let name = input_field.name();
        match fields.iter_mut().find(|f| &f.name == name) {
            Some(field) => {
                let Type::Primitive(table_type) = field.field_type.as_ref() else {
                    continue;
                };
                let widened = match (table_type, input_field.data_type()) {
                    (PrimitiveType::Int, DataType::Int64 | DataType::UInt32 | DataType::UInt64) => {
                        Some(PrimitiveType::Long)
                    }
                    (PrimitiveType::Float, DataType::Float64) => Some(PrimitiveType::Double),
                    _ => None,
                };
                if let Some(wider) = widened {
                    if evolution.widen_types {
                        *field.field_type = Type::Primitive(wider);
                        changed = true;
                    } else if matches!(table_type, PrimitiveType::Float) {
                        return Err(Error::Schema {
                            table: table.to_string(),
                            column: name.clone(),
                            detail: format!(
                                "the table type is float but the input is {}; allow type widening (float -> double) or cast the input to Float32",
                                type_name(input_field.data_type())
                            ),
                        });
                    }
                    // int <- Int64 without widening: values are cast with overflow checks.
                }
            }
            None => {
                if !evolution.add_columns {
                    return Err(Error::Schema {
                        table: table.to_string(),
                        column: name.clone(),
                        detail: format!(
                            "input column {name} ({}) is not in the table; drop it from the input or allow adding columns",
                            type_name(input_field.data_type())
                        ),
                    });
                }
                let ty = arrow_type_to_type(input_field.data_type()).map_err(|e| Error::Schema {
                    table: table.to_string(),
                    column: name.clone(),
                    detail: format!(
                        "cannot add a column of Arrow type {} ({e}); cast it to a supported type first",
                        type_name(input_field.data_type())
                    ),
                })?;
                if !matches!(ty, Type::Primitive(_)) {
                    return Err(Error::Schema {
                        table: table.to_string(),
                        column: name.clone(),
                        detail: format!(
                            "only primitive columns can be added on write, got {}",
                            type_name(input_field.data_type())
                        ),
                    });
                }
                fields.push(NestedField::optional(next_id, name.clone(), ty));
                next_id += 1;
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let schema = Schema::builder()
        .with_schema_id(current.schema_id())
        .with_identifier_field_ids(current.identifier_field_ids())
        .with_fields(fields.into_iter().map(Arc::new))
        .build()?;
    Ok(Some(schema))
}

fn is_int(t: &DataType) -> bool {
    t.is_integer()
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_)
    )
}

/// Whether every value of integer type `from` is exactly representable in float type `to`
/// (the Glue runner's `writable` has the same rule).
fn int_fits_float(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match to {
        Float32 => matches!(from, Int8 | Int16 | UInt8 | UInt16),
        Float64 => matches!(from, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32),
        _ => false,
    }
}

/// Conversions that keep values (integers are cast with overflow checks).
fn compatible(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (f, t) if is_int(f) && is_int(t) => true,
        // Only integers the float holds exactly (24-bit, 53-bit significands): bigint into
        // float or double, and int into float, would round values above 2^24 / 2^53.
        (f, t) if is_int(f) && matches!(t, Float32 | Float64) => int_fits_float(f, t),
        (Float16 | Float32, Float32 | Float64) => true,
        (Float64, Float64) => true,
        (f, t) if is_string(f) && is_string(t) => true,
        (f, t) if is_binary(f) && is_binary(t) => true,
        (Timestamp(_, a), Timestamp(_, b)) => a.is_some() == b.is_some(),
        (Date32 | Date64, Date32) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => s1 == s2 && p1 <= p2,
        (Dictionary(_, v), t) => compatible(v, t),
        (f, t) if is_int(f) && matches!(t, Decimal128(_, _)) => true,
        (Struct(_), Struct(_)) | (List(_), List(_)) | (LargeList(_), List(_)) | (Map(_, _), Map(_, _)) => {
            arrow::compute::can_cast_types(from, to)
        }
        _ => false,
    }
}

/// Cast one batch to `target` (matched by column name).
pub(crate) fn conform_batch(table: &str, batch: &RecordBatch, target: &ArrowSchemaRef) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let input_schema = batch.schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match input_schema.index_of(field.name()) {
            Ok(i) => cast_column(table, field, batch.column(i))?,
            Err(_) => {
                if !field.is_nullable() {
                    return Err(Error::Schema {
                        table: table.to_string(),
                        column: field.name().clone(),
                        detail: format!(
                            "the column is required (NOT NULL, {}) but missing from the input; add it to the data",
                            type_name(field.data_type())
                        ),
                    });
                }
                new_null_array(field.data_type(), rows)
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(Error::Schema {
                table: table.to_string(),
                column: field.name().clone(),
                detail: format!(
                    "the column is required (NOT NULL) but the input has {} null values; fill or filter them",
                    column.null_count()
                ),
            });
        }
        columns.push(column);
    }
    Ok(RecordBatch::try_new_with_options(
        target.clone(),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// iceberg 0.10.1's reader returns identity-partition columns filled from partition values as
/// run-end encoded arrays; writers and callers expect plain arrays.
fn decode_run_ends(column: &ArrayRef) -> Result<ArrayRef> {
    use arrow::array::{AsArray, RunArray, UInt32Array};
    use arrow::datatypes::{Int16Type, Int32Type, Int64Type, RunEndIndexType};
    fn go<R: RunEndIndexType>(a: &RunArray<R>) -> Result<ArrayRef> {
        let logical: Vec<u32> = (0..a.len() as u32).collect();
        let physical = a.get_physical_indices(&logical)?;
        let idx = UInt32Array::from_iter_values(physical.into_iter().map(|p| p as u32));
        Ok(arrow::compute::take(a.values().as_ref(), &idx, None)?)
    }
    match column.data_type() {
        DataType::RunEndEncoded(run_ends, _) => match run_ends.data_type() {
            DataType::Int16 => go(column.as_run::<Int16Type>()),
            DataType::Int32 => go(column.as_run::<Int32Type>()),
            _ => go(column.as_run::<Int64Type>()),
        },
        _ => Ok(column.clone()),
    }
}

fn cast_column(table: &str, field: &Field, column: &ArrayRef) -> Result<ArrayRef> {
    let decoded;
    let column = if matches!(column.data_type(), DataType::RunEndEncoded(_, _)) {
        decoded = decode_run_ends(column)?;
        &decoded
    } else {
        column
    };
    let from = column.data_type();
    let to = field.data_type();
    if from == to {
        return Ok(column.clone());
    }
    if !compatible(from, to) {
        return Err(Error::Schema {
            table: table.to_string(),
            column: field.name().clone(),
            detail: format!(
                "input type {} cannot be written to table type {}; cast the input column or change the table schema",
                type_name(from),
                type_name(to)
            ),
        });
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(column, to, &options).map_err(|e| Error::Schema {
        table: table.to_string(),
        column: field.name().clone(),
        detail: format!(
            "values of input type {} do not fit table type {}: {e}",
            type_name(from),
            type_name(to)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, StringArray};

    fn table_schema() -> Schema {
        Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Int)).into(),
                NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .unwrap()
    }

    #[test]
    fn int64_input_is_cast_to_int_column_with_overflow_check() {
        let target = arrow_schema(&table_schema()).unwrap();
        let input =
            RecordBatch::try_from_iter(vec![("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)]).unwrap();
        let out = conform_batch("ns.t", &input, &target).unwrap();
        assert_eq!(out.column(0).data_type(), &DataType::Int32);
        assert_eq!(out.column(1).null_count(), 2);

        let too_big =
            RecordBatch::try_from_iter(vec![("id", Arc::new(Int64Array::from(vec![i64::MAX])) as ArrayRef)]).unwrap();
        let err = conform_batch("ns.t", &too_big, &target).unwrap_err().to_string();
        assert!(err.contains("column id"), "{err}");
    }

    /// bigint into double (and int into float) would round values above 2^53 (2^24): refused
    /// like any lossy cast; the integers a float holds exactly are still accepted.
    #[test]
    fn integers_go_into_floats_only_when_every_value_is_exact() {
        use DataType::*;
        for (from, to, ok) in [
            (Int64, Float64, false),
            (Int64, Float32, false),
            (UInt64, Float64, false),
            (Int32, Float32, false),
            (UInt32, Float32, false),
            (Int32, Float64, true),
            (Int16, Float32, true),
            (Int8, Float64, true),
            (UInt16, Float32, true),
        ] {
            assert_eq!(compatible(&from, &to), ok, "{from} -> {to}");
        }
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![Field::new("x", Float64, true)]));
        let big = (1i64 << 53) + 1;
        let input = RecordBatch::try_from_iter(vec![("x", Arc::new(Int64Array::from(vec![big])) as ArrayRef)]).unwrap();
        let err = conform_batch("ns.t", &input, &schema).unwrap_err().to_string();
        assert!(
            err.contains("column x") && err.contains("Int64") && err.contains("Float64"),
            "{err}"
        );
    }

    #[test]
    fn incompatible_types_name_column_and_types() {
        let target = arrow_schema(&table_schema()).unwrap();
        let input =
            RecordBatch::try_from_iter(vec![("id", Arc::new(StringArray::from(vec!["x"])) as ArrayRef)]).unwrap();
        let err = conform_batch("ns.t", &input, &target).unwrap_err().to_string();
        assert!(
            err.contains("ns.t") && err.contains("column id") && err.contains("Utf8") && err.contains("Int32"),
            "{err}"
        );
    }

    #[test]
    fn required_nulls_rejected() {
        let target = arrow_schema(&table_schema()).unwrap();
        let input = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef,
        )])
        .unwrap();
        assert!(conform_batch("ns.t", &input, &target).is_err());
    }

    #[test]
    fn evolution_adds_and_widens_only_when_allowed() {
        let current = table_schema();
        let input = ArrowSchema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("extra", DataType::Float64, true),
        ]);
        let err = evolve_schema("ns.t", &current, 2, &input, SchemaEvolution::default()).unwrap_err();
        assert!(err.to_string().contains("column extra"), "{err}");
        let evolved = evolve_schema("ns.t", &current, 2, &input, SchemaEvolution::permissive())
            .unwrap()
            .unwrap();
        assert_eq!(
            evolved.field_by_name("id").unwrap().field_type.as_ref(),
            &Type::Primitive(PrimitiveType::Long)
        );
        let extra = evolved.field_by_name("extra").unwrap();
        assert_eq!(extra.id, 3);
        assert!(!extra.required);
    }
}
