//! Parquet data files whose row groups are encoded on several threads at once.
//!
//! Encoding (dictionaries, levels, zstd) costs several times what decoding the small input
//! files of a compaction does, so one encoder bounds a compaction group to about one core.
//! Here each row group is encoded by a blocking task of its own while the next one fills, and
//! the encoded row groups are appended to the file in their order. Files roll once they reach
//! the target size. The `DataFile` entries (sizes, counts, bounds) come from the Parquet
//! footer, as iceberg's own writer derives them.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use iceberg::io::{FileIO, FileWrite};
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, PartitionKey, PrimitiveType, SchemaRef, Struct,
    TableMetadata, Type,
};
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator, FileNameGenerator, LocationGenerator,
};
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, ArrowWriterOptions,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Type as PhysicalType, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;

use crate::conform::arrow_schema;
use crate::error::{Error, Result};

/// Most rows in a row group (parquet's default).
const MAX_ROW_GROUP_ROWS: usize = 1024 * 1024;
/// Most in-memory bytes buffered for one row group.
const MAX_ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Bytes the Parquet writer produced and not yet handed to the output file.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Pending {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(&mut *self.0.lock().expect("not poisoned")))
    }
}

struct OpenFile {
    path: String,
    writer: SerializedFileWriter<Pending>,
    pending: Pending,
    out: Box<dyn FileWrite>,
    written: u64,
}

impl OpenFile {
    async fn drain(&mut self) -> Result<()> {
        let bytes = self.pending.take();
        if !bytes.is_empty() {
            self.written += bytes.len() as u64;
            self.out.write(bytes).await?;
        }
        Ok(())
    }
}

type Encoded = std::result::Result<Vec<ArrowColumnChunk>, ParquetError>;

fn pq(e: ParquetError) -> Error {
    Error::Arrow(e.into())
}

/// Writes `batches` (conformed to `schema`, all of partition `partition`) as zstd Parquet files
/// of about `target_file_size` bytes, encoding up to `threads` row groups at the same time.
/// On an error the files written so far are referenced by no snapshot (orphan cleanup removes
/// them).
pub(crate) async fn write_parallel(
    meta: &TableMetadata,
    schema: &SchemaRef,
    file_io: &FileIO,
    partition: Option<PartitionKey>,
    batches: impl Stream<Item = Result<RecordBatch>> + Send,
    target_file_size: usize,
    threads: usize,
) -> Result<Vec<DataFile>> {
    let mut writer = ParallelWriter::new(meta, schema, file_io, partition, target_file_size, threads)?;
    let mut batches = std::pin::pin!(batches);
    while let Some(b) = batches.try_next().await? {
        writer.write(b).await?;
    }
    writer.finish().await
}

/// The files of one partition, written as batches are pushed: a row group fills while up to
/// `threads` earlier ones encode, and files roll at the target size.
pub(crate) struct ParallelWriter<'a> {
    sink: Files<'a>,
    factory: ArrowRowGroupWriterFactory,
    arrow: ArrowSchemaRef,
    group_bytes: usize,
    threads: usize,
    encoding: VecDeque<tokio::task::JoinHandle<Encoded>>,
    buffered: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

impl<'a> ParallelWriter<'a> {
    pub(crate) fn new(
        meta: &'a TableMetadata,
        schema: &'a SchemaRef,
        file_io: &'a FileIO,
        partition: Option<PartitionKey>,
        target_file_size: usize,
        threads: usize,
    ) -> Result<Self> {
        let arrow = arrow_schema(schema)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let options = ArrowWriterOptions::new().with_properties(props);
        // Column writers depend only on the schema and the properties: one factory serves every file.
        let (_, factory) = ArrowWriter::try_new_with_options(Pending::default(), arrow.clone(), options.clone())
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(pq)?;
        let sink = Files {
            meta,
            schema,
            file_io,
            locations: DefaultLocationGenerator::new(meta)?,
            names: DefaultFileNameGenerator::new(uuid::Uuid::new_v4().to_string(), None, DataFileFormat::Parquet),
            partition,
            arrow: arrow.clone(),
            options,
            target: target_file_size,
            open: None,
            done: Vec::new(),
        };
        Ok(Self {
            sink,
            factory,
            arrow,
            // A row group is cut at this many in-memory bytes: a file overshoots its target by
            // at most one row group, a quarter of the target (Parquet bytes are fewer than Arrow's).
            group_bytes: (target_file_size / 4).clamp(64 * 1024, MAX_ROW_GROUP_BYTES),
            threads: threads.max(1),
            encoding: VecDeque::new(),
            buffered: Vec::new(),
            rows: 0,
            bytes: 0,
        })
    }

    /// Adds rows; full row groups go to the encoders.
    pub(crate) async fn write(&mut self, b: RecordBatch) -> Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        // Slices share the batch's buffers (and a batch may itself be a slice of a larger
        // one), so the size is that of the rows it holds, estimated per row.
        let per_row = (slice_memory_size(&b) / b.num_rows()).max(1);
        let mut offset = 0;
        while offset < b.num_rows() {
            let room = (self.group_bytes.saturating_sub(self.bytes) / per_row)
                .clamp(1, MAX_ROW_GROUP_ROWS - self.rows)
                .min(b.num_rows() - offset);
            self.buffered.push(b.slice(offset, room));
            offset += room;
            self.rows += room;
            self.bytes += room * per_row;
            if self.rows >= MAX_ROW_GROUP_ROWS || self.bytes >= self.group_bytes {
                self.encode_buffered().await?;
            }
        }
        Ok(())
    }

    async fn encode_buffered(&mut self) -> Result<()> {
        let group = std::mem::take(&mut self.buffered);
        (self.rows, self.bytes) = (0, 0);
        let writers = self.factory.create_column_writers(0).map_err(pq)?;
        let schema = self.arrow.clone();
        self.encoding
            .push_back(tokio::task::spawn_blocking(move || encode(writers, &schema, &group)));
        // `threads` row groups encode while the next one fills; older ones are appended in
        // their order.
        while self.encoding.len() > self.threads {
            let next = self.encoding.pop_front().expect("not empty");
            self.sink.append(next).await?;
        }
        Ok(())
    }

    /// Encodes what is buffered, closes the open file and returns the manifest entries of
    /// every file written.
    pub(crate) async fn finish(mut self) -> Result<Vec<DataFile>> {
        if !self.buffered.is_empty() {
            self.encode_buffered().await?;
        }
        while let Some(next) = self.encoding.pop_front() {
            self.sink.append(next).await?;
        }
        self.sink.finish().await
    }
}

/// The files being written: the open one and those already closed.
struct Files<'a> {
    meta: &'a TableMetadata,
    schema: &'a SchemaRef,
    file_io: &'a FileIO,
    locations: DefaultLocationGenerator,
    names: DefaultFileNameGenerator,
    partition: Option<PartitionKey>,
    arrow: ArrowSchemaRef,
    options: ArrowWriterOptions,
    target: usize,
    open: Option<OpenFile>,
    done: Vec<DataFile>,
}

impl Files<'_> {
    /// Appends an encoded row group to the open file (opening one first if needed), closing
    /// the file once it reaches the target size.
    async fn append(&mut self, encoded: tokio::task::JoinHandle<Encoded>) -> Result<()> {
        let chunks = encoded
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?
            .map_err(pq)?;
        if self.open.is_none() {
            self.open = Some(self.open_file().await?);
        }
        let f = self.open.as_mut().expect("opened above");
        let mut rg = f.writer.next_row_group().map_err(pq)?;
        for c in chunks {
            c.append_to_row_group(&mut rg).map_err(pq)?;
        }
        rg.close().map_err(pq)?;
        f.drain().await?;
        if f.writer.bytes_written() >= self.target {
            let f = self.open.take().expect("open");
            let file = self.close_file(f).await?;
            self.done.push(file);
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Vec<DataFile>> {
        if let Some(f) = self.open.take() {
            let file = self.close_file(f).await?;
            self.done.push(file);
        }
        Ok(self.done)
    }

    // `&mut self`: the open file's writer is `Send` but not `Sync`.
    async fn open_file(&mut self) -> Result<OpenFile> {
        let path = self
            .locations
            .generate_location(self.partition.as_ref(), &self.names.generate_file_name());
        let out = self.file_io.new_output(&path)?.writer().await?;
        let pending = Pending::default();
        let (writer, _) = ArrowWriter::try_new_with_options(pending.clone(), self.arrow.clone(), self.options.clone())
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(pq)?;
        let mut f = OpenFile {
            path,
            writer,
            pending,
            out,
            written: 0,
        };
        f.drain().await?;
        Ok(f)
    }

    async fn close_file(&mut self, mut f: OpenFile) -> Result<DataFile> {
        let footer = f.writer.finish().map_err(pq)?;
        f.drain().await?;
        f.out.close().await?;
        data_file(
            &f.path,
            f.written,
            &footer,
            self.meta,
            self.schema,
            self.partition.as_ref(),
        )
    }
}

/// Bytes of the values a batch holds (not of the buffers it may share with a larger batch).
fn slice_memory_size(b: &RecordBatch) -> usize {
    b.columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

fn encode(mut writers: Vec<ArrowColumnWriter>, schema: &ArrowSchemaRef, batches: &[RecordBatch]) -> Encoded {
    for b in batches {
        let mut w = writers.iter_mut();
        for (field, column) in schema.fields().iter().zip(b.columns()) {
            for leaf in compute_leaves(field, column)? {
                w.next().expect("a writer per leaf").write(&leaf)?;
            }
        }
    }
    writers.into_iter().map(ArrowColumnWriter::close).collect()
}

/// The manifest entry of a written file, from its footer.
fn data_file(
    path: &str,
    size: u64,
    footer: &ParquetMetaData,
    meta: &TableMetadata,
    schema: &SchemaRef,
    partition: Option<&PartitionKey>,
) -> Result<DataFile> {
    let mut sizes: HashMap<i32, u64> = HashMap::new();
    let mut values: HashMap<i32, u64> = HashMap::new();
    let mut nulls: HashMap<i32, u64> = HashMap::new();
    let mut lower: HashMap<i32, Datum> = HashMap::new();
    let mut upper: HashMap<i32, Datum> = HashMap::new();
    for rg in footer.row_groups() {
        for col in rg.columns() {
            let descr = col.column_descr();
            let info = descr.self_type().get_basic_info();
            if !info.has_id() {
                continue;
            }
            let id = info.id();
            *sizes.entry(id).or_default() += col.compressed_size() as u64;
            *values.entry(id).or_default() += col.num_values() as u64;
            let Some(stats) = col.statistics() else { continue };
            if let Some(n) = stats.null_count_opt() {
                *nulls.entry(id).or_default() += n;
            }
            // Bounds of repeated values (list elements, map entries) are not recorded.
            if descr.max_rep_level() > 0 {
                continue;
            }
            let Some(Type::Primitive(ty)) = schema.field_by_id(id).map(|f| f.field_type.as_ref().clone()) else {
                continue;
            };
            let (Some(lo), Some(hi)) = (bound(stats, &ty, true), bound(stats, &ty, false)) else {
                continue;
            };
            match lower.get(&id) {
                Some(cur) if cur <= &lo => {}
                _ => {
                    lower.insert(id, lo);
                }
            }
            match upper.get(&id) {
                Some(cur) if cur >= &hi => {}
                _ => {
                    upper.insert(id, hi);
                }
            }
        }
    }
    let mut b = DataFileBuilder::default();
    b.content(DataContentType::Data)
        .file_path(path.to_string())
        .file_format(DataFileFormat::Parquet)
        .partition(partition.map(|p| p.data().clone()).unwrap_or_else(Struct::empty))
        .partition_spec_id(
            partition
                .map(|p| p.spec().spec_id())
                .unwrap_or_else(|| meta.default_partition_spec_id()),
        )
        .record_count(footer.file_metadata().num_rows() as u64)
        .file_size_in_bytes(size)
        .column_sizes(sizes)
        .value_counts(values)
        .null_value_counts(nulls)
        .nan_value_counts(HashMap::new())
        .lower_bounds(lower)
        .upper_bounds(upper)
        .split_offsets(Some(
            footer.row_groups().iter().filter_map(|rg| rg.file_offset()).collect(),
        ));
    b.build().map_err(|e| Error::Io(std::io::Error::other(e.to_string())))
}

/// A column chunk's minimum (`min`) or maximum as an Iceberg value of type `ty`, when its
/// statistics have one that converts exactly.
fn bound(stats: &Statistics, ty: &PrimitiveType, min: bool) -> Option<Datum> {
    let raw = if min {
        stats.min_bytes_opt()?
    } else {
        stats.max_bytes_opt()?
    };
    let bytes: Vec<u8> = match (ty, stats.physical_type()) {
        // Iceberg stores decimals big-endian; Parquet's INT32/INT64 decimals are little-endian.
        (PrimitiveType::Decimal { .. }, PhysicalType::INT32) => i128::from(i32::from_le_bytes(raw.try_into().ok()?))
            .to_be_bytes()
            .to_vec(),
        (PrimitiveType::Decimal { .. }, PhysicalType::INT64) => i128::from(i64::from_le_bytes(raw.try_into().ok()?))
            .to_be_bytes()
            .to_vec(),
        (PrimitiveType::Decimal { .. }, PhysicalType::FIXED_LEN_BYTE_ARRAY | PhysicalType::BYTE_ARRAY) => raw.to_vec(),
        (PrimitiveType::Decimal { .. }, _) => return None,
        (PrimitiveType::Boolean, PhysicalType::BOOLEAN)
        | (PrimitiveType::Int | PrimitiveType::Date, PhysicalType::INT32)
        | (
            PrimitiveType::Long
            | PrimitiveType::Time
            | PrimitiveType::Timestamp
            | PrimitiveType::Timestamptz
            | PrimitiveType::TimestampNs
            | PrimitiveType::TimestamptzNs,
            PhysicalType::INT64,
        )
        | (PrimitiveType::Float, PhysicalType::FLOAT)
        | (PrimitiveType::Double, PhysicalType::DOUBLE)
        | (PrimitiveType::String | PrimitiveType::Binary, PhysicalType::BYTE_ARRAY)
        | (PrimitiveType::Uuid | PrimitiveType::Fixed(_), PhysicalType::FIXED_LEN_BYTE_ARRAY) => raw.to_vec(),
        _ => return None,
    };
    Datum::try_from_bytes(&bytes, ty.clone()).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::conform::conform_batch;
    use crate::{Catalog, SqliteCatalog, Table, TableDefinition, TableIdent};

    fn batch(schema: &Arc<Schema>, from: i64, n: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + n).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int32Array::from_iter(
                ids.iter().map(|i| (i % 7 != 0).then_some((*i % 1000) as i32 - 500)),
            )),
            Arc::new(StringArray::from_iter(
                ids.iter()
                    .map(|i| (i % 5 != 0).then(|| format!("v{:05}", (i * 37) % 10_000))),
            )),
            Arc::new(Float64Array::from_iter_values(ids.iter().map(|i| (*i as f64) * -0.5))),
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| 19_000 + (*i % 400) as i32),
            )),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                ids.iter().map(|i| 1_700_000_000_000_000 + i * 7),
            )),
            Arc::new(
                Decimal128Array::from_iter_values(ids.iter().map(|i| i128::from(*i) * 13 - 5000))
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(
                Decimal128Array::from_iter_values(ids.iter().map(|i| i128::from(*i) * -1_000_000_007))
                    .with_precision_and_scale(30, 4)
                    .unwrap(),
            ),
            Arc::new(BooleanArray::from_iter(ids.iter().map(|i| Some(i % 3 == 0)))),
        ];
        RecordBatch::try_new(schema.clone(), cols).unwrap()
    }

    /// The parallel writer's manifest entries carry what iceberg's own writer derives from the
    /// same rows: counts, null counts and bounds of every column type the tables use.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_match_the_iceberg_writer() {
        let dir = tempfile::tempdir().unwrap();
        let wh = format!("file://{}/warehouse", dir.path().display());
        let catalog: Arc<dyn Catalog> =
            Arc::new(SqliteCatalog::open("mesh", dir.path().join("c.db"), &wh).await.unwrap());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("d", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("small", DataType::Decimal128(10, 2), true),
            Field::new("big", DataType::Decimal128(30, 4), true),
            Field::new("b", DataType::Boolean, true),
        ]));
        let t = Table::create(
            catalog.clone(),
            TableIdent::new("ns", "pw"),
            TableDefinition::new(schema.clone()),
        )
        .await
        .unwrap();
        let meta = t.metadata().clone();
        let ischema = meta.current_schema().clone();
        let target = arrow_schema(&ischema).unwrap();
        let batches: Vec<RecordBatch> = (0..5)
            .map(|k| conform_batch("pw", &batch(&schema, k * 6000, 6000), &target).unwrap())
            .collect();
        let file_io = catalog.file_io().clone();
        let ours = write_parallel(
            &meta,
            &ischema,
            &file_io,
            None,
            futures::stream::iter(batches.clone().into_iter().map(Ok)),
            usize::MAX,
            2,
        )
        .await
        .unwrap();
        let theirs = crate::write::write_data_files_sized(&meta, ischema.clone(), &file_io, &batches, usize::MAX)
            .await
            .unwrap();
        assert_eq!((ours.len(), theirs.len()), (1, 1));
        let (a, b) = (&ours[0], &theirs[0]);
        assert_eq!(a.record_count(), 30_000);
        assert_eq!(a.record_count(), b.record_count());
        assert_eq!(a.value_counts(), b.value_counts());
        assert_eq!(a.null_value_counts(), b.null_value_counts());
        assert_eq!(a.lower_bounds(), b.lower_bounds());
        assert_eq!(a.upper_bounds(), b.upper_bounds());
        assert_eq!(a.lower_bounds().len(), 9, "{:?}", a.lower_bounds());
        let on_disk = std::fs::metadata(a.file_path().trim_start_matches("file://"))
            .unwrap()
            .len();
        assert_eq!(a.file_size_in_bytes(), on_disk);

        // A small target: many row groups, encoded apart and appended in order, over several
        // files that read back as the input.
        let small = write_parallel(
            &meta,
            &ischema,
            &file_io,
            None,
            futures::stream::iter(batches.clone().into_iter().map(Ok)),
            100_000,
            2,
        )
        .await
        .unwrap();
        assert!(small.len() >= 2, "{} file(s)", small.len());
        let mut back = Vec::new();
        for f in &small {
            let file = std::fs::File::open(f.file_path().trim_start_matches("file://")).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            assert_eq!(reader.metadata().file_metadata().num_rows() as u64, f.record_count());
            assert!(
                f.file_size_in_bytes() < 100_000 + 100_000 / 2,
                "{}",
                f.file_size_in_bytes()
            );
            back.extend(reader.build().unwrap().map(Result::unwrap));
        }
        let back = arrow::compute::concat_batches(&back[0].schema(), &back).unwrap();
        let input = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        assert_eq!(back.columns(), input.columns());
    }
}
