//! A raw table as a SQL table that streams: [`RawTable`]'s scan parses the selected files while
//! the query runs, a few files at a time (one blocking thread per partition, the files spread
//! over the session's target partitions), a batch of the session's batch size at a time. No
//! raw table is held in memory, so a job's memory is bounded by its query, not by its inputs.
//!
//! The bad-row policy applies on the stream: `fail` stops the query at the first bad row,
//! and `quarantine` writes the rejected rows under `<table>_rejected/run_id=…/` as they come.
//! What the read counts (rows kept, rows set aside) is kept per file in the [`RawScan`]
//! shared by every scan of the table in one session, so a query that reads the table twice
//! (a self-join, a CTE used twice) counts and quarantines each file once. Once the query has
//! run, [`RawScan::finish`] reads what it left unread of the files its scans selected (a
//! `LIMIT`, a join that stopped early), so the policy has seen every row of those files and
//! the counts are those of whole files.
//!
//! A scan prunes files by their partition folders: a filter on partition columns only
//! (`WHERE day >= '2026-11-03' AND day < '2026-11-04'`) leaves out the files whose folders
//! cannot match, and the bad-row policy, the counts and `files_read` cover the files the
//! query's scans selected, not the whole table: a one-day run of a 30-day table reads one day.
//! An input that no scan selects files of (the query does not read it) is read whole.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Statistics;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use futures::StreamExt;
use mesh_domain::Table;
use mesh_iceberg::ObjectStores;
use object_store::ObjectStoreExt;
use tokio::runtime::Handle;

use crate::raw::{
    rejected_batch, rejected_schema, write_parquet_file, FileCount, FileId, Halt, RawError, RawSource, RejectedRow,
    RowSink, Shape,
};

/// How far the read of one file got, over every scan of the table.
#[derive(Debug, Clone, Copy)]
enum Claim {
    /// Nobody reads it to count it; its first `written` rejected rows are on storage already
    /// (a reader that stopped half-way wrote them).
    Free { written: u64 },
    /// A reader counts it (and writes its rejected rows).
    Owned,
    /// Read to its end: what it held.
    Done(FileCount),
}

/// Where rejected rows go: `{location}/run_id={run_id}/`.
#[derive(Debug)]
struct Quarantine {
    stores: ObjectStores,
    location: String,
    run_id: String,
    /// Raw files (as the `file` column names them) whose rejected rows an earlier run
    /// quarantined: their rows are rejected and counted again, not written again.
    already: std::collections::HashSet<String>,
}

/// What a raw table's read held once complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawCounts {
    /// Rows kept (bad rows not included).
    pub rows: u64,
    /// Rows set aside by the quarantine policy.
    pub rejected: u64,
}

/// One raw table's read in one session: its files, and how far each has been read.
pub struct RawScan {
    source: RawSource,
    claims: Mutex<Vec<Claim>>,
    /// Signalled when a claim is let go, for [`RawScan::finish`] waiting on a reader that is
    /// stopping.
    released: Condvar,
    quarantine: std::sync::OnceLock<Quarantine>,
    /// Rejected rows per quarantine file. Fixed for the read, so a file's `n`-th chunk holds
    /// the same rows whoever writes it.
    chunk_rows: usize,
    finished: AtomicBool,
    /// The files the planned scans selected (after partition pruning); `None` until a scan is
    /// planned: then every file.
    scope: Mutex<Option<Vec<bool>>>,
}

impl fmt::Debug for RawScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawScan")
            .field("table", &self.source.table)
            .field("files", &self.source.files.len())
            .finish()
    }
}

impl RawScan {
    /// Lists the table's files at `location` and keeps those `select` picks; nothing is read
    /// until a query scans the table. `chunk_rows` bounds the rejected rows held before they
    /// are written (the session's batch size).
    pub async fn open(
        table: &Table,
        stores: &ObjectStores,
        location: &str,
        select: &(dyn Fn(&FileId) -> bool + Sync),
        chunk_rows: usize,
    ) -> Result<Arc<RawScan>, RawError> {
        let source = RawSource::open(table, stores, location, select).await?;
        let claims = vec![Claim::Free { written: 0 }; source.files.len()];
        Ok(Arc::new(RawScan {
            source,
            claims: Mutex::new(claims),
            released: Condvar::new(),
            quarantine: std::sync::OnceLock::new(),
            chunk_rows: chunk_rows.max(1),
            finished: AtomicBool::new(false),
            scope: Mutex::new(None),
        }))
    }

    /// `raw.sales_events`.
    pub fn table(&self) -> &str {
        &self.source.table
    }

    /// The files selected, in path order.
    pub fn file_ids(&self) -> Vec<FileId> {
        self.source.file_ids()
    }

    /// Bytes of the files selected.
    pub fn bytes(&self) -> u64 {
        self.source.bytes()
    }

    /// The files the query's scans selected after partition pruning (every selected file when
    /// no scan was planned), in path order: those the bad-row policy and the counts cover.
    pub fn scanned_files(&self) -> Vec<FileId> {
        let scope = self.scope.lock().expect("not poisoned");
        self.source
            .files
            .iter()
            .enumerate()
            .filter(|(i, _)| scope.as_ref().is_none_or(|s| s[*i]))
            .map(|(_, f)| f.id.clone())
            .collect()
    }

    /// Whether file `i` is one the read covers.
    fn in_scope(&self, i: usize) -> bool {
        self.scope.lock().expect("not poisoned").as_ref().is_none_or(|s| s[i])
    }

    /// Adds the files a planned scan selected to the read's scope.
    fn widen_scope(&self, files: &[usize]) {
        let mut scope = self.scope.lock().expect("not poisoned");
        let s = scope.get_or_insert_with(|| vec![false; self.source.files.len()]);
        for &i in files {
            s[i] = true;
        }
    }

    /// Whether `filter` reads partition columns only: it can leave out files by their folders.
    fn prunes_with(&self, filter: &Expr) -> bool {
        let columns = filter.column_refs();
        !columns.is_empty()
            && !filter.is_volatile()
            && columns.iter().all(|c| {
                self.source
                    .schema
                    .index_of(c.name())
                    .is_ok_and(|i| self.source.is_partition_column(i))
            })
    }

    /// The files whose partition folders can match every filter on partition columns only.
    /// A file whose folders do not give a filtered column, or give a value that does not parse
    /// as the column's type, is kept (its rows tell, and meet the bad-row policy). A filter that
    /// cannot be evaluated prunes nothing.
    fn prune(&self, state: &dyn Session, filters: &[Expr]) -> Vec<usize> {
        use arrow::array::Array;
        let all: Vec<usize> = (0..self.source.files.len()).collect();
        let filters: Vec<Expr> = filters
            .iter()
            .filter(|f| self.prunes_with(f))
            .cloned()
            .map(datafusion::logical_expr::expr_rewriter::unnormalize_col)
            .collect();
        let Some(predicate) = datafusion::logical_expr::utils::conjunction(filters) else {
            return all;
        };
        let files = &self.source.files;
        let n = files.len();
        let columns: Vec<usize> = (0..self.source.schema.fields().len())
            .filter(|i| self.source.is_partition_column(*i))
            .collect();
        let mut unknown = vec![false; n];
        let mut fields = Vec::new();
        let mut arrays: Vec<arrow::array::ArrayRef> = Vec::new();
        for &c in &columns {
            let field = self.source.schema.field(c);
            let texts: arrow::array::StringArray = files
                .iter()
                .enumerate()
                .map(|(k, f)| match f.partition_text(c) {
                    Some(v) => v,
                    None => {
                        unknown[k] = true;
                        None
                    }
                })
                .collect();
            let Ok(typed) = arrow::compute::cast(&texts, field.data_type()) else {
                return all;
            };
            for (k, u) in unknown.iter_mut().enumerate() {
                // A value that does not parse: only its rows can say where they belong.
                if texts.is_valid(k) && typed.is_null(k) {
                    *u = true;
                }
            }
            fields.push(arrow::datatypes::Field::new(
                field.name(),
                field.data_type().clone(),
                true,
            ));
            arrays.push(typed);
        }
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        let evaluated = evaluate_filter(state, predicate, schema, arrays, n);
        match evaluated {
            Ok(keep) => (0..n)
                .filter(|&k| unknown[k] || (keep.is_valid(k) && keep.value(k)))
                .collect(),
            Err(_) => all,
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.source.schema.clone()
    }

    /// Rejected rows are written under `{location}/run_id={run_id}/` (a job's read of a table
    /// with `bad_rows = "quarantine"`); without it they are only dropped (`mesh sql`). Set
    /// before a query scans the table; later calls change nothing.
    /// `already`: the raw files an earlier run quarantined (see [`quarantined_files`]), whose
    /// rows are not written again.
    pub fn quarantine_to(
        &self,
        stores: &ObjectStores,
        location: &str,
        run_id: &str,
        already: std::collections::HashSet<String>,
    ) {
        let _ = self.quarantine.set(Quarantine {
            stores: stores.clone(),
            location: location.trim_end_matches('/').to_string(),
            run_id: run_id.to_string(),
            already,
        });
    }

    fn quarantined_before(&self, q: &Quarantine, file: usize) -> bool {
        q.already.contains(&self.source.files[file].display)
    }

    /// Where rejected rows go (the `<table>_rejected` folder), when they are kept.
    pub fn quarantine_location(&self) -> Option<&str> {
        self.quarantine.get().map(|q| q.location.as_str())
    }

    /// Completes the read once the queries over the table have run (their streams ended or
    /// dropped): reads every file no scan read to its end, so the bad-row policy has seen every
    /// row, and gives the counts of the whole files. A `fail` error is the first bad row in file
    /// order, as a read of the whole table would find it.
    pub async fn finish(self: &Arc<Self>) -> Result<RawCounts, RawError> {
        let scan = self.clone();
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || scan.drain(&rt))
            .await
            .expect("raw reader thread panicked")
    }

    /// The quarantine files written for this read (every one, once [`RawScan::finish`] ran).
    pub fn rejected_files(&self) -> Vec<String> {
        let Some(q) = self.quarantine.get() else {
            return Vec::new();
        };
        let claims = self.claims();
        let mut out = Vec::new();
        for (i, claim) in claims.iter().enumerate() {
            if self.quarantined_before(q, i) {
                continue;
            }
            let written = match claim {
                Claim::Done(c) => c.rejected,
                Claim::Free { written } => *written,
                Claim::Owned => 0,
            };
            let chunks = written.div_ceil(self.chunk_rows as u64);
            out.extend((0..chunks).map(|n| self.chunk_url(q, i, n)));
        }
        out
    }

    fn claims(&self) -> MutexGuard<'_, Vec<Claim>> {
        self.claims.lock().expect("no reader panics holding the claims")
    }

    /// Takes file `i` to count it: `Some(written)` when nobody else counts it or counted it.
    fn claim(&self, i: usize) -> Option<u64> {
        let mut claims = self.claims();
        match claims[i] {
            Claim::Free { written } => {
                claims[i] = Claim::Owned;
                Some(written)
            }
            Claim::Owned | Claim::Done(_) => None,
        }
    }

    fn release(&self, i: usize, to: Claim) {
        self.claims()[i] = to;
        self.released.notify_all();
    }

    /// `{location}/run_id={run_id}/part-{file}-{chunk}.parquet`: named by the raw file (a hash
    /// of its path) and the chunk, so a retry of the run, or another job of the run reading the
    /// same file, writes the same rows to the same name.
    fn chunk_url(&self, q: &Quarantine, file: usize, chunk: u64) -> String {
        let path = &self.source.files[file].id.path;
        // FNV-1a: stable across builds and machines, unlike the std hasher.
        let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{}/run_id={}/part-{hash:016x}-{chunk:05}.parquet", q.location, q.run_id)
    }

    /// Reads file `i` to `out`; counts it (and writes its rejected rows) unless another reader
    /// does or did.
    fn read(
        &self,
        i: usize,
        shape: &Shape,
        rt: &Handle,
        out: &mut dyn FnMut(RecordBatch) -> std::result::Result<(), Halt>,
    ) -> std::result::Result<(), Halt> {
        match self.claim(i) {
            Some(written) => {
                let mut owner = Owner {
                    scan: self,
                    file: i,
                    rt,
                    out,
                    skip: written,
                    written,
                    seen: 0,
                    pending: Vec::new(),
                    done: false,
                };
                let count = self.source.read_file(i, shape, rt, &mut owner)?;
                owner.write_pending()?;
                debug_assert_eq!(owner.seen, count.rejected);
                owner.done = true;
                self.release(i, Claim::Done(count));
                Ok(())
            }
            None => {
                let mut plain = Plain { out };
                self.source.read_file(i, shape, rt, &mut plain).map(|_| ())
            }
        }
    }

    /// The error to report for `e`, met in file `i`: the first error in file order, as a read
    /// of the whole table in order meets it. Files before `i` that no reader finished are
    /// checked here (parsed, nothing kept), so every reader that fails reports the same error
    /// however the files were spread and timed. `gone` says the query no longer listens.
    fn first_error(&self, i: usize, e: RawError, rt: &Handle, gone: &dyn Fn() -> bool) -> RawError {
        let check = Shape::new(&self.source.schema, Some(&[]), self.chunk_rows);
        for j in 0..i {
            if matches!(self.claims()[j], Claim::Done(_)) || !self.in_scope(j) {
                continue;
            }
            if gone() {
                break;
            }
            let mut nothing = Plain { out: &mut discard };
            if let Err(Halt::Raw(earlier)) = self.source.read_file(j, &check, rt, &mut nothing) {
                return earlier;
            }
        }
        e
    }

    /// See [`RawScan::finish`].
    fn drain(&self, rt: &Handle) -> Result<RawCounts, RawError> {
        // Nothing is built: only the policy and the counts need the rows.
        let check = Shape::new(&self.source.schema, Some(&[]), self.chunk_rows);
        for i in 0..self.source.files.len() {
            if !self.in_scope(i) {
                continue;
            }
            loop {
                // A reader of a query that ended may still hold the file until it notices.
                let mut claims = self.claims();
                while matches!(claims[i], Claim::Owned) {
                    claims = self.released.wait(claims).expect("no reader panics holding the claims");
                }
                if matches!(claims[i], Claim::Done(_)) {
                    break;
                }
                drop(claims);
                // Every earlier file is done, so an error here is the first in file order.
                match self.read(i, &check, rt, &mut discard) {
                    Ok(()) => {}
                    Err(Halt::Raw(e)) => return Err(e),
                    Err(Halt::Stopped) => unreachable!("nothing stops a drain"),
                }
            }
        }
        self.finished.store(true, Ordering::SeqCst);
        let mut counts = RawCounts::default();
        for claim in self.claims().iter() {
            if let Claim::Done(c) = claim {
                counts.rows += c.rows;
                counts.rejected += c.rejected;
            }
        }
        Ok(counts)
    }

    /// The files `selected` of each partition of a scan: spread by size over at most
    /// `partitions`, each partition's in path order.
    fn spread(&self, selected: &[usize], partitions: usize) -> Vec<Vec<usize>> {
        let files = &self.source.files;
        let n = partitions.min(selected.len()).max(1);
        let mut by_size: Vec<usize> = selected.to_vec();
        by_size.sort_by_key(|i| std::cmp::Reverse(files[*i].size));
        let mut parts: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n];
        for i in by_size {
            let part = parts
                .iter_mut()
                .min_by_key(|(bytes, _)| *bytes)
                .expect("at least one partition");
            part.0 += files[i].size;
            part.1.push(i);
        }
        parts
            .into_iter()
            .map(|(_, mut p)| {
                p.sort_unstable();
                p
            })
            .collect()
    }
}

/// `predicate` on the rows `arrays` (of `schema`, `n` rows): true, false or NULL per row.
fn evaluate_filter(
    state: &dyn Session,
    predicate: Expr,
    schema: SchemaRef,
    arrays: Vec<arrow::array::ArrayRef>,
    n: usize,
) -> Result<arrow::array::BooleanArray> {
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let df_schema = datafusion::common::DFSchema::try_from(schema.as_ref().clone())?;
    let physical = state.create_physical_expr(predicate, &df_schema)?;
    let values = physical.evaluate(&batch)?.into_array(n)?;
    values
        .as_any()
        .downcast_ref::<arrow::array::BooleanArray>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal("a filter is not boolean".into()))
}

/// The reader counting a file: its batches go out, its rejected rows are written a chunk at a
/// time. Stopped half-way, it lets the file go with what it wrote.
struct Owner<'a> {
    scan: &'a RawScan,
    file: usize,
    rt: &'a Handle,
    out: &'a mut dyn FnMut(RecordBatch) -> std::result::Result<(), Halt>,
    /// Rejected rows an earlier reader wrote already.
    skip: u64,
    written: u64,
    seen: u64,
    pending: Vec<RejectedRow>,
    done: bool,
}

impl Owner<'_> {
    fn write_pending(&mut self) -> std::result::Result<(), Halt> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Some(q) = self
            .scan
            .quarantine
            .get()
            .filter(|q| !self.scan.quarantined_before(q, self.file))
        {
            let url = self
                .scan
                .chunk_url(q, self.file, self.written / self.scan.chunk_rows as u64);
            let batch = rejected_batch(&self.pending);
            self.rt.block_on(write_parquet_file(&q.stores, &url, &batch))?;
        }
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

impl RowSink for Owner<'_> {
    fn batch(&mut self, batch: RecordBatch) -> std::result::Result<(), Halt> {
        (self.out)(batch)
    }

    fn reject(&mut self, row: RejectedRow) -> std::result::Result<(), Halt> {
        self.seen += 1;
        if self.seen <= self.skip {
            return Ok(());
        }
        self.pending.push(row);
        if self.pending.len() == self.scan.chunk_rows {
            self.write_pending()?;
        }
        Ok(())
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.scan.release(self.file, Claim::Free { written: self.written });
        }
    }
}

fn discard(_: RecordBatch) -> std::result::Result<(), Halt> {
    Ok(())
}

/// A reader of a file another reader counts: rows out, rejected rows dropped.
struct Plain<'a> {
    out: &'a mut dyn FnMut(RecordBatch) -> std::result::Result<(), Halt>,
}

impl RowSink for Plain<'_> {
    fn batch(&mut self, batch: RecordBatch) -> std::result::Result<(), Halt> {
        (self.out)(batch)
    }

    fn reject(&mut self, _row: RejectedRow) -> std::result::Result<(), Halt> {
        Ok(())
    }
}

/// A raw read's error on its way through DataFusion; [`raw_error`] takes it back out, so a job
/// and `mesh sql` report it as they report any raw read error.
#[derive(Debug)]
pub struct RawReadError {
    table: String,
    message: String,
    error: Mutex<Option<RawError>>,
}

impl RawReadError {
    fn new(table: &str, e: RawError) -> RawReadError {
        RawReadError {
            table: table.to_string(),
            message: e.to_string(),
            error: Mutex::new(Some(e)),
        }
    }
}

impl fmt::Display for RawReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading {}: {}", self.table, self.message)
    }
}

impl std::error::Error for RawReadError {}

/// The raw table and the raw read error a query failed on, if it failed on one.
pub fn raw_error(e: &DataFusionError) -> Option<(String, RawError)> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(raw) = err.downcast_ref::<RawReadError>() {
            let taken = raw.error.lock().expect("not poisoned").take();
            return Some((
                raw.table.clone(),
                taken.unwrap_or_else(|| RawError::Again(raw.message.clone())),
            ));
        }
        next = err.source();
    }
    None
}

/// A raw table as a SQL table: each scan streams the selected files.
#[derive(Debug)]
pub struct RawTable {
    scan: Arc<RawScan>,
}

impl RawTable {
    pub fn new(scan: Arc<RawScan>) -> RawTable {
        RawTable { scan }
    }
}

#[async_trait]
impl TableProvider for RawTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.scan.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters on partition columns leave out files; the query still applies them to rows.
        Ok(filters
            .iter()
            .map(|f| {
                if self.scan.prunes_with(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Files are left out by their partition folders only; no limit is taken: every row of
        // every file the scan selects meets the bad-row policy, and `finish` reads what a
        // limit leaves.
        let selected = self.scan.prune(state, filters);
        self.scan.widen_scope(&selected);
        let partitions = state.config().target_partitions();
        Ok(Arc::new(RawScanExec::new(
            self.scan.clone(),
            &selected,
            projection.map(|p| p.as_slice()),
            partitions,
        )))
    }
}

/// The physical scan of a [`RawTable`]: one partition per group of files.
#[derive(Debug)]
pub struct RawScanExec {
    scan: Arc<RawScan>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    parts: Vec<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl RawScanExec {
    fn new(scan: Arc<RawScan>, selected: &[usize], projection: Option<&[usize]>, partitions: usize) -> RawScanExec {
        let schema = Shape::new(&scan.schema(), projection, 1).schema;
        let parts = scan.spread(selected, partitions);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(parts.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        RawScanExec {
            scan,
            projection: projection.map(<[usize]>::to_vec),
            schema,
            parts,
            properties,
        }
    }
}

impl DisplayAs for RawScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let files: usize = self.parts.iter().map(Vec::len).sum();
        write!(f, "RawScanExec: table={}, files={files}", self.scan.table())?;
        if let Some(p) = &self.projection {
            let names: Vec<&str> = p
                .iter()
                .map(|i| self.scan.source.schema.field(*i).name().as_str())
                .collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for RawScanExec {
    fn name(&self) -> &str {
        "RawScanExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("RawScanExec has no children".into()))
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let files = self
            .parts
            .get(partition)
            .cloned()
            .ok_or_else(|| DataFusionError::Internal(format!("RawScanExec has no partition {partition}")))?;
        let shape = Shape::new(
            &self.scan.schema(),
            self.projection.as_deref(),
            context.session_config().batch_size(),
        );
        let scan = self.scan.clone();
        // The reader starts when the stream is first polled: a scan DataFusion plans but never
        // reads (the other side of an empty join) claims no file.
        let stream = futures::stream::once(async move {
            // Two batches in flight: the parser works ahead of the query by one batch, no more.
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let rt = Handle::current();
            let reader = tokio::task::spawn_blocking(move || read_partition(&scan, &files, &shape, &rt, &tx));
            let batches = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
            // The channel also closes when the reader panics: that must not look like the end.
            let end = futures::stream::once(reader).filter_map(|joined| async move {
                joined
                    .err()
                    .map(|e| Err::<RecordBatch, _>(DataFusionError::ExecutionJoin(Box::new(e))))
            });
            batches.chain(end)
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream)))
    }

    fn partition_statistics(&self, _partition: Option<usize>) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&self.schema))
    }
}

/// One partition's reader: its files in order, each batch sent as soon as it is built.
fn read_partition(
    scan: &RawScan,
    files: &[usize],
    shape: &Shape,
    rt: &Handle,
    tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
) {
    for &i in files {
        let mut send = |b: RecordBatch| tx.blocking_send(Ok(b)).map_err(|_| Halt::Stopped);
        match scan.read(i, shape, rt, &mut send) {
            Ok(()) => {}
            Err(Halt::Stopped) => return,
            Err(Halt::Raw(e)) => {
                let e = scan.first_error(i, e, rt, &|| tx.is_closed());
                let error = RawReadError::new(scan.table(), e);
                let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(error))));
                return;
            }
        }
    }
}

/// `<table>_rejected` in a job's session: the rows its read of the raw table set aside. They
/// are all known only once the read is complete, so it can be read by the job's checks, not by
/// the job's query.
#[derive(Debug)]
pub struct RejectedTable {
    scan: Arc<RawScan>,
    stores: ObjectStores,
    name: String,
}

impl RejectedTable {
    /// `name` is how queries name it (`f01_raw.legacy_orders_rejected`).
    pub fn new(scan: Arc<RawScan>, stores: ObjectStores, name: String) -> RejectedTable {
        RejectedTable { scan, stores, name }
    }
}

#[async_trait]
impl TableProvider for RejectedTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        rejected_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.scan.finished.load(Ordering::SeqCst) {
            return Err(DataFusionError::Plan(format!(
                "{} holds the rows set aside while {} is read, complete only once the job's query has run; read it in the job's checks",
                self.name,
                self.scan.table()
            )));
        }
        let mut batches = Vec::new();
        for url in self.scan.rejected_files() {
            let target = self
                .stores
                .locate(&url)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let bytes = target
                .store
                .get(&target.path)
                .await
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
                .bytes()
                .await
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
            let external = |e: parquet::errors::ParquetError| DataFusionError::External(Box::new(e));
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(external)?;
            for batch in reader {
                batches.push(batch?);
            }
        }
        MemTable::try_new(rejected_schema(), vec![batches])?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// The raw files (the `file` column's values) whose rejected rows runs other than `run_id`
/// wrote under `location` (a `<table>_rejected` folder): a file's bad rows are quarantined once,
/// by the first run that reads it, not again by every run that reads it later (a full read, each
/// backfill day). The Glue runner applies the same rule (`already_quarantined`).
pub async fn quarantined_files(
    stores: &ObjectStores,
    lister: &dyn mesh_iceberg::maintenance::FileLister,
    location: &str,
    run_id: &str,
) -> Result<std::collections::HashSet<String>, RawError> {
    let io = |e: Box<dyn std::error::Error + Send + Sync>| RawError::File {
        file: location.to_string(),
        reason: format!("reading the rows earlier runs quarantined: {e}"),
    };
    let this_run = format!("/run_id={run_id}/");
    let files = lister
        .list(&format!("{}/", location.trim_end_matches('/')))
        .await
        .map_err(|e| io(Box::new(e)))?;
    let mut out = std::collections::HashSet::new();
    for f in files
        .iter()
        .filter(|f| f.location.ends_with(".parquet") && !f.location.contains(&this_run))
    {
        let target = stores.locate(&f.location).map_err(|e| io(Box::new(e)))?;
        let bytes = target
            .store
            .get(&target.path)
            .await
            .map_err(|e| io(Box::new(e)))?
            .bytes()
            .await
            .map_err(|e| io(Box::new(e)))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| io(Box::new(e)))?;
        for batch in reader {
            let batch = batch.map_err(|e| io(Box::new(e)))?;
            let Ok(i) = batch.schema().index_of("file") else {
                continue;
            };
            let col = arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8)
                .map_err(|e| io(Box::new(e)))?;
            use arrow::array::{Array, AsArray};
            let col = col.as_string::<i32>();
            out.extend(
                (0..col.len())
                    .filter(|&k| col.is_valid(k))
                    .map(|k| col.value(k).to_string()),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use arrow::array::{Array, ArrayRef, Decimal128Array, Int32Array, Int64Array, StringArray};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use bytes::Bytes;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use mesh_domain::Domain;

    use super::*;
    use crate::raw::read_raw;

    const COLUMNS: &str = r#"columns = [
  { name = "id", type = "long", nullable = false },
  { name = "qty", type = "int" },
  { name = "note", type = "string" },
  { name = "price", type = "decimal(10,2)" },
  { name = "day", type = "date", nullable = false },
]"#;

    /// Raw tables `{csv,json,parquet}_{fail,quarantine}` partitioned by `day`, with their files.
    struct Lake {
        dir: tempfile::TempDir,
        domain: Domain,
    }

    impl Lake {
        fn new() -> Lake {
            let dir = tempfile::tempdir().unwrap();
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            std::fs::copy(repo.join("domain.json"), dir.path().join("domain.json")).unwrap();
            let mut toml =
                String::from("name = \"raw\"\nproject_slug = \"pj42\"\nowner = \"t\"\nclassification = \"internal\"\n");
            for format in ["csv", "json", "parquet"] {
                for policy in ["fail", "quarantine"] {
                    toml.push_str(&format!(
                        "\n[[tables]]\nname = \"{format}_{policy}\"\nlayer = \"raw\"\nformat = \"{format}\"\nbad_rows = \"{policy}\"\npartition_by = [\"day\"]\n{COLUMNS}\n"
                    ));
                    if format == "csv" {
                        toml.push_str("[tables.csv]\nheader = true\n");
                    }
                }
            }
            let project = dir.path().join("projects/raw");
            std::fs::create_dir_all(&project).unwrap();
            std::fs::write(project.join("project.toml"), toml).unwrap();
            let domain = mesh_domain::load_domain(dir.path()).expect("the test domain validates");
            Lake { dir, domain }
        }

        fn table(&self, name: &str) -> &Table {
            self.domain
                .tables()
                .map(|(_, t)| t)
                .find(|t| t.name.as_str() == name)
                .unwrap()
        }

        fn location(&self, name: &str) -> String {
            self.dir.path().join("lake").join(name).display().to_string()
        }

        fn rejected_location(&self, name: &str) -> String {
            self.dir
                .path()
                .join("lake")
                .join(format!("{name}_rejected"))
                .display()
                .to_string()
        }

        fn file(&self, name: &str, day: &str, file: &str) -> PathBuf {
            let folder = Path::new(&self.location(name)).join(format!("day={day}"));
            std::fs::create_dir_all(&folder).unwrap();
            folder.join(file)
        }
    }

    /// One row's fields as text (`None`: NULL), and what kind of bad it is.
    fn row(file: usize, i: usize) -> (Option<String>, String, String, String, Option<&'static str>) {
        let id = Some((file * 1000 + i).to_string());
        let (qty, note, price) = (
            format!("{}", i % 9),
            format!("n{file}-{i}"),
            format!("{}.{:02}", i, i % 100),
        );
        // Bad rows spread over every file and batch, of every kind the text readers meet.
        match (file * 31 + i) % 17 {
            3 => (id, "x".into(), note, price, Some("bad int")),
            7 => (None, qty, note, price, Some("null id")),
            11 => (id, qty, note, "12,50".into(), Some("bad decimal")),
            13 => (id, qty, note, price, Some("shape")),
            _ => (id, qty, note, price, None),
        }
    }

    const DAYS: [&str; 3] = ["2026-01-01", "2026-01-02", "2026-01-03"];
    const ROWS: usize = 40;

    /// Six files (two per day) of `ROWS` rows with bad rows in each.
    fn land_text(lake: &Lake, name: &str, json: bool) {
        for (f, (day, part)) in DAYS.iter().flat_map(|d| [(d, 0), (d, 1)]).enumerate() {
            let mut text = String::new();
            if !json {
                text.push_str("id,qty,note,price\n");
            }
            for i in 0..ROWS {
                let (id, qty, note, price, bad) = row(f, i);
                let id_text = id.clone().unwrap_or_default();
                if json {
                    if bad == Some("shape") {
                        text.push_str(&format!("[{id_text}]\n"));
                        continue;
                    }
                    let id = id.map_or("null".to_string(), |v| v.to_string());
                    let qty = if qty.parse::<i64>().is_ok() {
                        qty
                    } else {
                        format!("\"{qty}\"")
                    };
                    text.push_str(&format!(
                        "{{\"id\": {id}, \"qty\": {qty}, \"note\": \"{note}\", \"price\": \"{price}\"}}\n"
                    ));
                } else if bad == Some("shape") {
                    text.push_str(&format!("{id_text},{qty}\n"));
                } else {
                    text.push_str(&format!("{id_text},{qty},{note},\"{price}\"\n"));
                }
            }
            let ext = if json { "json" } else { "csv" };
            std::fs::write(lake.file(name, day, &format!("part-{part:05}.{ext}")), text).unwrap();
        }
    }

    /// Six Parquet files; `null_ids` puts a NULL id (nullable = false) in the third and fifth.
    fn land_parquet(lake: &Lake, name: &str, null_ids: bool) {
        for (f, (day, part)) in DAYS.iter().flat_map(|d| [(d, 0), (d, 1)]).enumerate() {
            let n = ROWS as i64;
            let ids: Int64Array = (0..n)
                .map(|i| (!(null_ids && (f == 2 || f == 4) && i == 17)).then_some(f as i64 * 1000 + i))
                .collect();
            let qty: Int32Array = (0..n as i32).map(|i| (i % 4 != 0).then_some(i)).collect();
            let note = StringArray::from_iter_values((0..n).map(|i| format!("n{f}-{i}")));
            let price = StringArray::from_iter_values((0..n).map(|i| format!("{i}.5")));
            let batch = RecordBatch::try_from_iter(vec![
                ("id", Arc::new(ids) as ArrayRef),
                ("qty", Arc::new(qty) as ArrayRef),
                ("note", Arc::new(note) as ArrayRef),
                ("price", Arc::new(price) as ArrayRef),
            ])
            .unwrap();
            let mut buf = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            std::fs::write(lake.file(name, day, &format!("part-{part:05}.parquet")), buf).unwrap();
        }
    }

    /// Every row of the batches as text, sorted.
    fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
        let options = FormatOptions::default().with_null("NULL");
        let mut out = Vec::new();
        for b in batches {
            let formatters: Vec<ArrayFormatter> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for r in 0..b.num_rows() {
                let cells: Vec<String> = formatters.iter().map(|f| f.value(r).to_string()).collect();
                out.push(cells.join("|"));
            }
        }
        out.sort();
        out
    }

    fn project(batches: &[RecordBatch], columns: &[usize]) -> Vec<RecordBatch> {
        batches.iter().map(|b| b.project(columns).unwrap()).collect()
    }

    /// A query over the table streamed with this batch size and these partitions: the result
    /// and the read (not finished).
    async fn stream(
        lake: &Lake,
        name: &str,
        batch: usize,
        partitions: usize,
        sql: &str,
    ) -> (Result<Vec<RecordBatch>>, Arc<RawScan>) {
        let stores = ObjectStores::default();
        let scan = RawScan::open(lake.table(name), &stores, &lake.location(name), &|_| true, batch)
            .await
            .unwrap();
        scan.quarantine_to(&stores, &lake.rejected_location(name), "r1", Default::default());
        let config = SessionConfig::new()
            .with_batch_size(batch)
            .with_target_partitions(partitions);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_table("t", Arc::new(RawTable::new(scan.clone()))).unwrap();
        let result = match ctx.sql(sql).await {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        (result, scan)
    }

    /// The rows in the quarantine files of run `r1`, as text, sorted.
    fn quarantined(lake: &Lake, name: &str) -> (Vec<String>, usize) {
        let folder = Path::new(&lake.rejected_location(name)).join("run_id=r1");
        let mut batches = Vec::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&folder).into_iter().flatten() {
            let bytes = Bytes::from(std::fs::read(entry.unwrap().path()).unwrap());
            files += 1;
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap();
            batches.extend(reader.map(|b| b.unwrap()));
        }
        (rows_of(&batches), files)
    }

    /// `quarantine`: whatever the batch size and partitions, the query gets the rows a whole
    /// read keeps, and the quarantine files hold exactly the rows it sets aside, each once,
    /// also when the query reads the table twice or stops early.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn quarantine_on_the_stream_matches_a_whole_read() {
        let lake = Lake::new();
        for (name, json) in [("csv_quarantine", false), ("json_quarantine", true)] {
            land_text(&lake, name, json);
            let whole = read_raw(lake.table(name), &ObjectStores::default(), &lake.location(name))
                .await
                .unwrap();
            assert!(
                whole.rejected.len() > 20 && whole.rows > 150,
                "{name}: {}",
                whole.rejected.len()
            );
            let expected_rejected = rows_of(&[rejected_batch(&whole.rejected)]);
            let queries = [
                ("SELECT * FROM t", 1),
                ("SELECT * FROM t UNION ALL SELECT * FROM t", 2),
                ("SELECT id FROM t LIMIT 3", 0),
            ];
            for (batch, partitions) in [(3, 1), (4, 2), (7, 3), (8192, 2)] {
                for (sql, copies) in queries {
                    let _ = std::fs::remove_dir_all(lake.rejected_location(name));
                    let (result, scan) = stream(&lake, name, batch, partitions, sql).await;
                    let batches = result.unwrap();
                    let case = format!("{name} batch {batch} partitions {partitions}: {sql}");
                    if copies > 0 {
                        let mut expected = Vec::new();
                        for _ in 0..copies {
                            expected.extend(rows_of(&whole.batches));
                        }
                        expected.sort();
                        assert_eq!(rows_of(&batches), expected, "{case}");
                    } else {
                        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3, "{case}");
                    }
                    let counts = scan.finish().await.unwrap();
                    assert_eq!(
                        counts,
                        RawCounts {
                            rows: whole.rows,
                            rejected: whole.rejected.len() as u64
                        },
                        "{case}"
                    );
                    let (got, files) = quarantined(&lake, name);
                    assert_eq!(got, expected_rejected, "{case}");
                    assert_eq!(files, scan.rejected_files().len(), "{case}");
                    if batch < 10 {
                        assert!(files > 6, "several chunks per file: {case}");
                    }
                }
            }
        }
    }

    /// `<table>_rejected` in a job's session: refused while the read may be incomplete, then
    /// exactly the rows the read set aside.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rejected_table_holds_the_reads_rejects_once_it_is_complete() {
        let lake = Lake::new();
        let name = "csv_quarantine";
        land_text(&lake, name, false);
        let stores = ObjectStores::default();
        let whole = read_raw(lake.table(name), &stores, &lake.location(name)).await.unwrap();
        let (result, scan) = stream(&lake, name, 5, 2, "SELECT id FROM t LIMIT 1").await;
        result.unwrap();
        let ctx = SessionContext::new();
        let rejected = RejectedTable::new(scan.clone(), stores, "t_rejected".into());
        ctx.register_table("t_rejected", Arc::new(rejected)).unwrap();
        let early = ctx
            .sql("SELECT * FROM t_rejected")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(early.contains("read it in the job's checks"), "{early}");
        scan.finish().await.unwrap();
        let batches = ctx
            .sql("SELECT * FROM t_rejected")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(rows_of(&batches), rows_of(&[rejected_batch(&whole.rejected)]));
    }

    /// `fail`: the error is the one a whole read in file order gives (the first bad row of the
    /// first file holding one), however the files are spread and however far each partition
    /// got; a query that stops before it still fails when the read is finished.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fail_on_the_stream_reports_the_first_bad_row() {
        let lake = Lake::new();
        land_text(&lake, "csv_fail", false);
        land_text(&lake, "json_fail", true);
        land_parquet(&lake, "parquet_fail", true);
        for name in ["csv_fail", "json_fail", "parquet_fail"] {
            let expected = read_raw(lake.table(name), &ObjectStores::default(), &lake.location(name))
                .await
                .unwrap_err()
                .to_string();
            assert!(expected.contains("part-0000"), "{expected}");
            for (batch, partitions) in [(3, 1), (4, 2), (5, 3), (8192, 2)] {
                // `note` only: the column at fault is checked all the same.
                for sql in ["SELECT * FROM t", "SELECT note FROM t", "SELECT note FROM t LIMIT 2"] {
                    let case = format!("{name} batch {batch} partitions {partitions}: {sql}");
                    let (result, scan) = stream(&lake, name, batch, partitions, sql).await;
                    let got = match result {
                        Err(e) => raw_error(&e).unwrap_or_else(|| panic!("{case}: {e}")).1,
                        Ok(_) => scan.finish().await.expect_err(&case),
                    };
                    assert_eq!(got.to_string(), expected, "{case}");
                }
            }
        }
    }

    /// Parquet reads only the selected columns (and those a NULL would make bad), and gives the
    /// values a whole read gives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parquet_projection_gives_the_whole_reads_values() {
        let lake = Lake::new();
        land_parquet(&lake, "parquet_quarantine", false);
        let name = "parquet_quarantine";
        let whole = read_raw(lake.table(name), &ObjectStores::default(), &lake.location(name))
            .await
            .unwrap();
        assert_eq!(whole.rows, 6 * ROWS as u64);
        for (sql, columns) in [
            ("SELECT * FROM t", vec![0, 1, 2, 3, 4]),
            ("SELECT price, day FROM t", vec![3, 4]),
            ("SELECT qty FROM t", vec![1]),
        ] {
            let (result, scan) = stream(&lake, name, 16, 2, sql).await;
            assert_eq!(
                rows_of(&result.unwrap()),
                rows_of(&project(&whole.batches, &columns)),
                "{sql}"
            );
            let counts = scan.finish().await.unwrap();
            assert_eq!(counts.rows, whole.rows);
        }
        let (result, _) = stream(&lake, name, 16, 2, "SELECT COUNT(*) AS n FROM t").await;
        let n = result.unwrap()[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(n as u64, whole.rows);
        // The decimal came from text, as a whole read casts it.
        let price = whole.batches[0]
            .column(3)
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .unwrap();
        assert_eq!(price.value(1), 150);
        assert!(!price.is_null(1));
    }
}
