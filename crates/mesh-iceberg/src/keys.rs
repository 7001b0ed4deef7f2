//! How a table declares its layout: partition fields (with Iceberg's transforms) and sort
//! keys, as a new table is created with them ([`crate::TableDefinition`]) and as an existing one
//! is brought to them ([`crate::layout`]).

use std::str::FromStr;

use iceberg::spec::{NullOrder, SortDirection, SortField as IcebergSortField, Transform};

/// Partition transforms (Iceberg spec names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionTransform {
    /// Source value.
    Identity,
    /// Years since 1970.
    Year,
    /// Months since 1970.
    Month,
    /// Days since 1970.
    Day,
    /// Hours since 1970.
    Hour,
    /// Hash bucket `[0, n)`.
    Bucket(u32),
    /// Truncate to width `w`.
    Truncate(u32),
}

impl PartitionTransform {
    pub(crate) fn to_iceberg(self) -> Transform {
        match self {
            Self::Identity => Transform::Identity,
            Self::Year => Transform::Year,
            Self::Month => Transform::Month,
            Self::Day => Transform::Day,
            Self::Hour => Transform::Hour,
            Self::Bucket(n) => Transform::Bucket(n),
            Self::Truncate(w) => Transform::Truncate(w),
        }
    }

    pub(crate) fn suffix(self) -> Option<&'static str> {
        match self {
            Self::Identity => None,
            Self::Year => Some("year"),
            Self::Month => Some("month"),
            Self::Day => Some("day"),
            Self::Hour => Some("hour"),
            Self::Bucket(_) => Some("bucket"),
            Self::Truncate(_) => Some("trunc"),
        }
    }
}

impl FromStr for PartitionTransform {
    type Err = String;
    /// `identity`, `year`, `month`, `day`, `hour`, `bucket[16]`, `truncate[4]`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = Transform::from_str(s.trim()).map_err(|e| {
            format!("unknown partition transform {s:?} ({e}); use identity, year, month, day, hour, bucket[N] or truncate[W]")
        })?;
        Ok(match t {
            Transform::Identity => Self::Identity,
            Transform::Year => Self::Year,
            Transform::Month => Self::Month,
            Transform::Day => Self::Day,
            Transform::Hour => Self::Hour,
            Transform::Bucket(n) => Self::Bucket(n),
            Transform::Truncate(w) => Self::Truncate(w),
            other => return Err(format!("partition transform {other} is not supported")),
        })
    }
}

/// One partition field of a new table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionField {
    /// Source column.
    pub column: String,
    /// Transform applied to it.
    pub transform: PartitionTransform,
    /// Partition field name; defaults to `column` or `column_{transform}`.
    pub name: Option<String>,
}

impl PartitionField {
    /// Partition by `column` with `transform`.
    pub fn new(column: impl Into<String>, transform: PartitionTransform) -> Self {
        Self {
            column: column.into(),
            transform,
            name: None,
        }
    }
}

/// One field of a table's sort order (identity transform on a column).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SortKey {
    /// Column to sort by.
    pub column: String,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Nulls before other values.
    pub nulls_first: bool,
}

impl SortKey {
    /// The Iceberg sort field of this key over the column with field id `source_id`.
    pub(crate) fn to_iceberg(&self, source_id: i32) -> IcebergSortField {
        IcebergSortField::builder()
            .source_id(source_id)
            .transform(Transform::Identity)
            .direction(if self.descending {
                SortDirection::Descending
            } else {
                SortDirection::Ascending
            })
            .null_order(if self.nulls_first {
                NullOrder::First
            } else {
                NullOrder::Last
            })
            .build()
    }
}

impl SortKey {
    /// Ascending with nulls first (Iceberg's default for ascending).
    pub fn asc(column: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            descending: false,
            nulls_first: true,
        }
    }

    /// Descending with nulls last (Iceberg's default for descending).
    pub fn desc(column: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            descending: true,
            nulls_first: false,
        }
    }
}
