//! Writing Parquet data files, fanned out by the table's partition spec.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, DataFileFormat, SchemaRef, Struct, TableMetadata};
use iceberg::writer::base_writer::data_file_writer::{DataFileWriter, DataFileWriterBuilder};
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::Result;

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
        .get("write.target-file-size-bytes")
        .and_then(|v| v.parse().ok())
        .filter(|v: &usize| *v > 0)
        .unwrap_or(DEFAULT_TARGET_FILE_SIZE)
}

/// Write `batches` (already conformed to `schema`) as zstd Parquet files under the table's
/// data location, one set of rolling files per partition of the default spec.
pub(crate) async fn write_data_files(
    meta: &TableMetadata,
    schema: SchemaRef,
    file_io: &FileIO,
    batches: &[RecordBatch],
) -> Result<Vec<DataFile>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let rolling = RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(props, schema.clone()),
        target_file_size(meta),
        file_io.clone(),
        DefaultLocationGenerator::new(meta)?,
        // A fresh prefix per call keeps names unique across writers and retries.
        DefaultFileNameGenerator::new(format!("{}", uuid::Uuid::new_v4()), None, DataFileFormat::Parquet),
    );
    let builder = DataFileWriterBuilder::new(rolling);
    let spec = meta.default_partition_spec().clone();
    let mut files = Vec::new();
    if spec.is_unpartitioned() {
        let mut writer: Option<Writer> = None;
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            if writer.is_none() {
                writer = Some(builder.build(None).await?);
            }
            let w = writer.as_mut().expect("set above");
            for chunk in chunks(batch) {
                w.write(chunk).await?;
            }
        }
        if let Some(mut w) = writer {
            files.extend(w.close().await?);
        }
        return Ok(files);
    }
    let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(schema, spec)?;
    let mut writers: HashMap<Struct, Writer> = HashMap::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        for (key, part) in splitter.split(batch)? {
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
    Ok(files)
}
