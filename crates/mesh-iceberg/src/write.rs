//! Writing Parquet data files, fanned out by the table's partition spec.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use futures::{Stream, StreamExt, TryStreamExt};
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::io::FileIO;
use iceberg::spec::{
    DataFile, DataFileFormat, NullOrder, PartitionKey, SchemaRef, SortDirection, Struct, TableMetadata, Transform,
};
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::Result;

/// The table property that sets the size data files roll at.
pub const TARGET_FILE_SIZE_PROPERTY: &str = "write.target-file-size-bytes";

/// Iceberg's default `write.target-file-size-bytes`.
pub const DEFAULT_TARGET_FILE_SIZE: usize = 512 * 1024 * 1024;

/// Rows per write call: the rolling writer only checks the file size between calls, so big
/// batches are sliced (zero-copy) to let files roll near the target size.
const ROWS_PER_WRITE: usize = 8192;

fn chunks(batch: &RecordBatch) -> impl Iterator<Item = RecordBatch> + '_ {
    (0..batch.num_rows())
        .step_by(ROWS_PER_WRITE)
        .map(move |off| batch.slice(off, ROWS_PER_WRITE.min(batch.num_rows() - off)))
}

type Writer = DataFileWriter<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

/// Target file size from the table property `write.target-file-size-bytes`.
pub(crate) fn target_file_size(meta: &TableMetadata) -> usize {
    meta.properties()
        .get(TARGET_FILE_SIZE_PROPERTY)
        .and_then(|v| v.parse().ok())
        .filter(|v: &usize| *v > 0)
        .unwrap_or(DEFAULT_TARGET_FILE_SIZE)
}

/// Sort keys of the table's default sort order as (column index in `schema`, options).
///
/// Identity and the order-preserving transforms (year, month, day, hour, truncate) sort by the
/// source column itself: that order refines the transformed order. A bucket or void field has
/// no usable order, so it and every later field are ignored.
pub(crate) fn sort_keys(meta: &TableMetadata, schema: &SchemaRef) -> Vec<(usize, SortOptions)> {
    let mut keys = Vec::new();
    for f in &meta.default_sort_order().fields {
        match f.transform {
            Transform::Identity
            | Transform::Year
            | Transform::Month
            | Transform::Day
            | Transform::Hour
            | Transform::Truncate(_) => {}
            _ => break,
        }
        let Some(idx) = schema.as_struct().fields().iter().position(|c| c.id == f.source_id) else {
            // The column was dropped: later fields alone would not be the declared order.
            break;
        };
        keys.push((
            idx,
            SortOptions {
                descending: f.direction == SortDirection::Descending,
                nulls_first: f.null_order == NullOrder::First,
            },
        ));
    }
    keys
}

/// All rows of `batches` as one batch ordered by `keys` (stable: ties keep arrival order).
pub(crate) fn sort_batches(batches: &[RecordBatch], keys: &[(usize, SortOptions)]) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(vec![]);
    };
    let all = concat_batches(first.schema_ref(), batches)?;
    if keys.is_empty() || all.num_rows() < 2 {
        return Ok(vec![all]);
    }
    let columns: Vec<SortColumn> = keys
        .iter()
        .map(|(i, o)| SortColumn {
            values: all.column(*i).clone(),
            options: Some(*o),
        })
        .collect();
    let idx = lexsort_to_indices(&columns, None)?;
    Ok(vec![take_record_batch(&all, &idx)?])
}

/// Write `batches` (already conformed to `schema`) as zstd Parquet files under the table's
/// data location, one set of rolling files per partition of the default spec. When the table
/// has a default sort order, the rows of each partition are sorted by it before they are
/// written, so every data file is sorted.
pub(crate) async fn write_data_files(
    meta: &TableMetadata,
    schema: SchemaRef,
    file_io: &FileIO,
    batches: &[RecordBatch],
) -> Result<Vec<DataFile>> {
    write_data_files_sized(meta, schema, file_io, batches, target_file_size(meta)).await
}

/// [`write_data_files`] rolling files at `target_file_size` bytes instead of the table property.
pub(crate) async fn write_data_files_sized(
    meta: &TableMetadata,
    schema: SchemaRef,
    file_io: &FileIO,
    batches: &[RecordBatch],
    target_file_size: usize,
) -> Result<Vec<DataFile>> {
    let stream = futures::stream::iter(batches.iter().cloned().map(Ok));
    write_data_stream_sized(meta, schema, file_io, stream, target_file_size).await
}

/// [`write_data_files_sized`] over a stream: without a sort order each batch is written as it
/// arrives, so memory holds a few batches, not the whole input (with one, a partition's rows
/// must all be known before its first file is written, and the stream is collected). On an
/// error the files written so far are referenced by no snapshot: orphan cleanup removes them.
pub(crate) async fn write_data_stream_sized(
    meta: &TableMetadata,
    schema: SchemaRef,
    file_io: &FileIO,
    batches: impl Stream<Item = Result<RecordBatch>> + Send,
    target_file_size: usize,
) -> Result<Vec<DataFile>> {
    let mut batches = batches.try_filter(|b| futures::future::ready(b.num_rows() > 0)).boxed();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let rolling = RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(props, schema.clone()),
        target_file_size,
        file_io.clone(),
        DefaultLocationGenerator::new(meta)?,
        // A fresh prefix per call keeps names unique across writers and retries.
        DefaultFileNameGenerator::new(format!("{}", uuid::Uuid::new_v4()), None, DataFileFormat::Parquet),
    );
    let builder = DataFileWriterBuilder::new(rolling);
    let spec = meta.default_partition_spec().clone();
    let mut files = Vec::new();
    if spec.is_unpartitioned() {
        let keys = sort_keys(meta, &schema);
        if !keys.is_empty() {
            let all: Vec<RecordBatch> = batches.try_collect().await?;
            batches = futures::stream::iter(sort_batches(&all, &keys)?.into_iter().map(Ok)).boxed();
        }
        let mut writer: Option<Writer> = None;
        while let Some(batch) = batches.try_next().await? {
            if writer.is_none() {
                writer = Some(builder.build(None).await?);
            }
            let w = writer.as_mut().expect("set above");
            for chunk in chunks(&batch) {
                w.write(chunk).await?;
            }
        }
        if let Some(mut w) = writer {
            files.extend(w.close().await?);
        }
        return Ok(files);
    }
    let keys = sort_keys(meta, &schema);
    let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec)?;
    if keys.is_empty() {
        let mut writers: HashMap<Struct, Writer> = HashMap::new();
        while let Some(batch) = batches.try_next().await? {
            for (key, part) in splitter.split(&batch)? {
                let data = key.data().clone();
                if !writers.contains_key(&data) {
                    let w = builder.build(Some(key)).await?;
                    writers.insert(data.clone(), w);
                }
                let w = writers.get_mut(&data).expect("inserted above");
                for chunk in chunks(&part) {
                    w.write(chunk).await?;
                }
            }
        }
        for (_, mut w) in writers {
            files.extend(w.close().await?);
        }
        return Ok(files);
    }
    // Sorted: a partition's rows must all be known before its first file is written.
    let mut parts: HashMap<Struct, (PartitionKey, Vec<RecordBatch>)> = HashMap::new();
    while let Some(batch) = batches.try_next().await? {
        for (key, part) in splitter.split(&batch)? {
            parts
                .entry(key.data().clone())
                .or_insert_with(|| (key, Vec::new()))
                .1
                .push(part);
        }
    }
    for (_, (key, rows)) in parts {
        let mut w = builder.build(Some(key)).await?;
        for batch in sort_batches(&rows, &keys)? {
            for chunk in chunks(&batch) {
                w.write(chunk).await?;
            }
        }
        files.extend(w.close().await?);
    }
    Ok(files)
}
