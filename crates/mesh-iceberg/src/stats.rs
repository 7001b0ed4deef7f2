//! File pruning from manifest statistics (column bounds, null counts, identity partitions).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::commit::LiveFile;
use arrow::array::{Array, ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::{DataType, SchemaRef as ArrowSchemaRef, TimeUnit};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use iceberg::spec::{
    DataFile, Datum, Literal, PartitionSpecRef, PrimitiveLiteral, PrimitiveType, Schema, Transform, Type,
};

/// Convert an Iceberg primitive value to a DataFusion scalar of the matching Arrow type.
pub(crate) fn literal_to_scalar(lit: &PrimitiveLiteral, ty: &PrimitiveType) -> Option<ScalarValue> {
    use PrimitiveLiteral as L;
    use PrimitiveType as P;
    Some(match (ty, lit) {
        (P::Boolean, L::Boolean(v)) => ScalarValue::Boolean(Some(*v)),
        (P::Int, L::Int(v)) => ScalarValue::Int32(Some(*v)),
        (P::Long, L::Long(v)) => ScalarValue::Int64(Some(*v)),
        (P::Long, L::Int(v)) => ScalarValue::Int64(Some(*v as i64)),
        (P::Float, L::Float(v)) => ScalarValue::Float32(Some(v.0)),
        (P::Double, L::Double(v)) => ScalarValue::Float64(Some(v.0)),
        (P::Double, L::Float(v)) => ScalarValue::Float64(Some(v.0 as f64)),
        (P::Date, L::Int(v)) => ScalarValue::Date32(Some(*v)),
        (P::Time, L::Long(v)) => ScalarValue::Time64Microsecond(Some(*v)),
        (P::Timestamp, L::Long(v)) => ScalarValue::TimestampMicrosecond(Some(*v), None),
        (P::Timestamptz, L::Long(v)) => ScalarValue::TimestampMicrosecond(Some(*v), Some(Arc::from("+00:00"))),
        (P::TimestampNs, L::Long(v)) => ScalarValue::TimestampNanosecond(Some(*v), None),
        (P::TimestamptzNs, L::Long(v)) => ScalarValue::TimestampNanosecond(Some(*v), Some(Arc::from("+00:00"))),
        (P::String, L::String(v)) => ScalarValue::Utf8(Some(v.clone())),
        (P::Binary | P::Fixed(_), L::Binary(v)) => ScalarValue::Binary(Some(v.clone())),
        (P::Decimal { precision, scale }, L::Int128(v)) => {
            ScalarValue::Decimal128(Some(*v), *precision as u8, *scale as i8)
        }
        _ => return None,
    })
}

pub(crate) fn datum_to_scalar(d: &Datum) -> Option<ScalarValue> {
    literal_to_scalar(d.literal(), d.data_type())
}

/// Make `v` exactly of Arrow type `dt` (bounds of a timestamptz column are tagged `+00:00`,
/// while the table schema may spell the zone differently).
fn coerce(v: ScalarValue, dt: &DataType) -> Option<ScalarValue> {
    if &v.data_type() == dt {
        return Some(v);
    }
    match (&v, dt) {
        (ScalarValue::TimestampMicrosecond(x, _), DataType::Timestamp(TimeUnit::Microsecond, tz)) => {
            Some(ScalarValue::TimestampMicrosecond(*x, tz.clone()))
        }
        (ScalarValue::TimestampNanosecond(x, _), DataType::Timestamp(TimeUnit::Nanosecond, tz)) => {
            Some(ScalarValue::TimestampNanosecond(*x, tz.clone()))
        }
        _ => v.cast_to(dt).ok(),
    }
}

/// Lower bound, upper bound and null count of one column in one data file, tightened by
/// identity partition values.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnBounds {
    pub min: Option<ScalarValue>,
    pub max: Option<ScalarValue>,
    pub null_count: Option<u64>,
}

pub(crate) fn column_bounds(
    file: &DataFile,
    spec: Option<&PartitionSpecRef>,
    field_id: i32,
    ty: &PrimitiveType,
    arrow_type: &DataType,
) -> ColumnBounds {
    if let Some(spec) = spec {
        for (pos, pf) in spec.fields().iter().enumerate() {
            if pf.source_id == field_id && pf.transform == Transform::Identity {
                return match file.partition().fields().get(pos) {
                    Some(Some(Literal::Primitive(p))) => {
                        let v = literal_to_scalar(p, ty).and_then(|v| coerce(v, arrow_type));
                        ColumnBounds {
                            min: v.clone(),
                            max: v,
                            null_count: Some(0),
                        }
                    }
                    Some(None) => ColumnBounds {
                        min: None,
                        max: None,
                        null_count: Some(file.record_count()),
                    },
                    _ => ColumnBounds::default(),
                };
            }
        }
    }
    let conv = |d: Option<&Datum>| d.and_then(datum_to_scalar).and_then(|v| coerce(v, arrow_type));
    ColumnBounds {
        min: conv(file.lower_bounds().get(&field_id)),
        max: conv(file.upper_bounds().get(&field_id)),
        null_count: file.null_value_counts().get(&field_id).copied(),
    }
}

/// [`PruningStatistics`] over a list of data files, for DataFusion's `PruningPredicate`.
pub(crate) struct FileStatistics<'a> {
    pub files: Vec<&'a LiveFile>,
    pub schema: &'a Schema,
    pub arrow_schema: ArrowSchemaRef,
    pub specs: &'a HashMap<i32, PartitionSpecRef>,
}

impl FileStatistics<'_> {
    fn column(&self, column: &Column) -> Option<(i32, PrimitiveType, DataType)> {
        let field = self.schema.field_by_name(&column.name)?;
        let Type::Primitive(p) = field.field_type.as_ref() else {
            return None;
        };
        let dt = self
            .arrow_schema
            .field_with_name(&column.name)
            .ok()?
            .data_type()
            .clone();
        Some((field.id, p.clone(), dt))
    }

    fn bounds(&self, column: &Column) -> Option<(DataType, Vec<ColumnBounds>)> {
        let (id, ty, dt) = self.column(column)?;
        let bounds = self
            .files
            .iter()
            .map(|f| column_bounds(&f.file, self.specs.get(&f.spec_id), id, &ty, &dt))
            .collect();
        Some((dt, bounds))
    }

    fn to_array(dt: &DataType, values: Vec<Option<ScalarValue>>) -> Option<ArrayRef> {
        let null = ScalarValue::try_from(dt).ok()?;
        ScalarValue::iter_to_array(values.into_iter().map(|v| v.unwrap_or_else(|| null.clone()))).ok()
    }
}

impl PruningStatistics for FileStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        let (dt, b) = self.bounds(column)?;
        Self::to_array(&dt, b.into_iter().map(|b| b.min).collect())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        let (dt, b) = self.bounds(column)?;
        Self::to_array(&dt, b.into_iter().map(|b| b.max).collect())
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let (_, b) = self.bounds(column)?;
        Some(Arc::new(UInt64Array::from(
            b.into_iter().map(|b| b.null_count).collect::<Vec<_>>(),
        )))
    }

    fn row_counts(&self, _column: &Column) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(
            self.files
                .iter()
                .map(|f| Some(f.file.record_count()))
                .collect::<Vec<_>>(),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// The distinct key values of a merge source, per key column, for "could this file hold
/// one of these keys" checks. Columns are checked independently: a file is skipped only when
/// some key column has no source value inside the file's bounds, which is never wrong.
///
/// Each column's values are one sorted Arrow array without nulls or repeats (8 bytes a value
/// for a `long` key, not a [`ScalarValue`] each); [`KeyRanges::size`] is what it holds.
#[derive(Debug, Clone)]
pub(crate) struct KeyRanges {
    columns: Vec<KeyColumn>,
}

#[derive(Debug, Clone)]
struct KeyColumn {
    field_id: i32,
    ty: PrimitiveType,
    arrow_type: DataType,
    /// Sorted (Arrow's order: floats by their total order, strings by bytes), no repeats.
    sorted: ArrayRef,
    has_null: bool,
}

impl KeyRanges {
    /// `columns`: (field id, iceberg type, the column's values in one or more arrays, already
    /// cast to the table type).
    pub(crate) fn new(columns: Vec<(i32, PrimitiveType, Vec<ArrayRef>)>) -> datafusion::error::Result<Self> {
        use arrow::compute::kernels::cmp::distinct;
        let mut out = Vec::with_capacity(columns.len());
        for (field_id, ty, arrays) in columns {
            let Some(first) = arrays.first() else {
                continue;
            };
            let arrow_type = first.data_type().clone();
            let parts: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
            let all = arrow::compute::concat(&parts)?;
            drop(arrays);
            let has_null = all.null_count() > 0;
            let present = if has_null {
                arrow::compute::filter(&all, &arrow::compute::is_not_null(&all)?)?
            } else {
                all
            };
            let sorted = arrow::compute::sort(&present, None)?;
            drop(present);
            let sorted = if sorted.len() > 1 {
                // Keep the first of each run of equal values.
                let n = sorted.len();
                let differs = distinct(&sorted.slice(1, n - 1), &sorted.slice(0, n - 1))?;
                let keep: BooleanArray = std::iter::once(Some(true)).chain(differs.iter()).collect();
                arrow::compute::filter(&sorted, &keep)?
            } else {
                sorted
            };
            out.push(KeyColumn {
                field_id,
                ty,
                arrow_type,
                sorted,
                has_null,
            });
        }
        Ok(Self { columns: out })
    }

    /// Bytes held by the value arrays.
    pub(crate) fn size(&self) -> usize {
        self.columns.iter().map(|c| c.sorted.get_array_memory_size()).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.columns
            .first()
            .map(|c| c.sorted.is_empty() && !c.has_null)
            .unwrap_or(true)
    }

    /// False only if the file provably holds none of the keys.
    pub(crate) fn may_contain(&self, file: &DataFile, spec: Option<&PartitionSpecRef>) -> bool {
        if self.is_empty() {
            return false;
        }
        self.columns.iter().all(|c| {
            let b = column_bounds(file, spec, c.field_id, &c.ty, &c.arrow_type);
            let null_possible = c.has_null && b.null_count.is_none_or(|n| n > 0);
            if null_possible {
                return true;
            }
            let (Some(min), Some(max)) = (b.min, b.max) else {
                // No bounds: all values may be null (then only null keys match) or unknown.
                return b.null_count.is_none_or(|n| n < file.record_count()) && !c.sorted.is_empty();
            };
            let value = |i: usize| ScalarValue::try_from_array(&c.sorted, i).ok();
            // The first value not below `min` (a binary search over the sorted values).
            let (mut lo, mut hi) = (0, c.sorted.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match value(mid) {
                    Some(v) if v.partial_cmp(&min) == Some(std::cmp::Ordering::Less) => lo = mid + 1,
                    Some(_) => hi = mid,
                    // A value that cannot be read back: the file may hold a key.
                    None => return true,
                }
            }
            lo < c.sorted.len() && value(lo).is_none_or(|v| v.partial_cmp(&max) != Some(std::cmp::Ordering::Greater))
        })
    }
}
