//! Table handle and write operations (append, overwrite, delete, replace, merge).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef};
use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;
use iceberg::spec::{
    DataFile, NullOrder, Operation, Schema, SchemaRef, SortDirection, SortOrder, TableMetadata, TableMetadataBuilder,
    UnboundPartitionSpec,
};
use iceberg::{MetadataLocation, TableCreation};

use crate::catalog::{Catalog, TableIdent};
use crate::commit::{self, ConflictCheck, LiveFile, PendingCommit};
use crate::conform::{arrow_schema, conform_batch, evolve_schema, SchemaEvolution};
use crate::error::{Error, Result};
pub use crate::keys::{PartitionField, PartitionTransform, SortKey};
use crate::layout::TableLayout;
use crate::merge::MergeSource;
use crate::scan::{filter_rows, prune_live, read_files, specs, Filter};
use crate::state::CommitProperties;
use crate::write::write_data_files;

/// What a new table looks like.
#[derive(Debug, Clone)]
pub struct TableDefinition {
    /// Columns; Arrow nullability becomes Iceberg optional/required.
    pub schema: ArrowSchemaRef,
    /// Partition spec.
    pub partition_by: Vec<PartitionField>,
    /// Sort order, written as the table's default sort order: every data file written by this
    /// engine is sorted by it, and compaction uses the sort strategy.
    pub sort_order: Vec<SortKey>,
    /// Table properties (e.g. `write.target-file-size-bytes`).
    pub properties: HashMap<String, String>,
    /// Table location; defaults to `{warehouse}/{namespace}/{table}`.
    pub location: Option<String>,
    /// Identifier fields (row identity, meshkit's merge keys); required columns.
    pub identifier: Vec<String>,
}

impl TableDefinition {
    /// Unpartitioned table with default properties.
    pub fn new(schema: ArrowSchemaRef) -> Self {
        Self {
            schema,
            partition_by: vec![],
            sort_order: vec![],
            properties: HashMap::new(),
            location: None,
            identifier: vec![],
        }
    }

    /// Add an identifier field.
    pub fn identify_by(mut self, column: impl Into<String>) -> Self {
        self.identifier.push(column.into());
        self
    }

    /// Add a partition field.
    pub fn partition(mut self, field: PartitionField) -> Self {
        self.partition_by.push(field);
        self
    }

    /// Add a sort field.
    pub fn sort_by(mut self, key: SortKey) -> Self {
        self.sort_order.push(key);
        self
    }

    /// Set a table property.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }
}

/// Commit retry policy (Iceberg's `commit.retry.*` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `commit.retry.num-retries` (4).
    pub num_retries: u32,
    /// `commit.retry.min-wait-ms` (100 ms).
    pub min_wait: Duration,
    /// `commit.retry.max-wait-ms` (60 s).
    pub max_wait: Duration,
    /// `commit.retry.total-timeout-ms` (30 min).
    pub total_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            num_retries: 4,
            min_wait: Duration::from_millis(100),
            max_wait: Duration::from_secs(60),
            total_timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl RetryPolicy {
    fn from_properties(props: &HashMap<String, String>) -> Self {
        let d = Self::default();
        let get = |k: &str| props.get(k).and_then(|v| v.parse::<u64>().ok());
        Self {
            num_retries: get("commit.retry.num-retries")
                .map(|v| v as u32)
                .unwrap_or(d.num_retries),
            min_wait: get("commit.retry.min-wait-ms")
                .map(Duration::from_millis)
                .unwrap_or(d.min_wait),
            max_wait: get("commit.retry.max-wait-ms")
                .map(Duration::from_millis)
                .unwrap_or(d.max_wait),
            total_timeout: get("commit.retry.total-timeout-ms")
                .map(Duration::from_millis)
                .unwrap_or(d.total_timeout),
        }
    }
}

/// Outcome of a committed (or no-op) operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitResult {
    /// New snapshot, `None` when there was nothing to commit.
    pub snapshot_id: Option<i64>,
    /// Sequence number of the new snapshot.
    pub sequence_number: Option<i64>,
    /// `append`, `overwrite`, `delete`, `replace`.
    pub operation: Option<String>,
    /// Data files added.
    pub added_files: usize,
    /// Data files removed (rewritten or deleted).
    pub removed_files: usize,
    /// Records in added files.
    pub added_records: u64,
    /// Bytes of added files.
    pub added_bytes: u64,
    /// Records in removed files.
    pub removed_records: u64,
    /// Commit attempts (1 = no retry).
    pub attempts: u32,
}

impl CommitResult {
    pub(crate) fn noop() -> Self {
        Self {
            snapshot_id: None,
            sequence_number: None,
            operation: None,
            added_files: 0,
            removed_files: 0,
            added_records: 0,
            added_bytes: 0,
            removed_records: 0,
            attempts: 0,
        }
    }
}

/// How [`Table::commit_staged`] (staged files: `crate::stage`) publishes staged files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitMode {
    /// Add the files.
    Append,
    /// Add the files and remove what the overwrite mode replaces.
    Overwrite(OverwriteMode),
}

/// How an overwrite chooses what it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverwriteMode {
    /// Replace the whole table.
    All,
    /// Replace exactly the partitions present in the new data.
    DynamicPartitions,
    /// Remove rows matching this SQL predicate, then add the new data.
    Filter(String),
}

/// Rule for several source rows with the same merge key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicateKeys {
    /// Fail with an error naming a duplicate key.
    Error,
    /// Keep the row with the greatest value of this column (last one on ties).
    KeepLatestBy(String),
}

/// Upsert settings.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Key columns; equality is null-safe (null matches null).
    pub keys: Vec<String>,
    /// Duplicate source keys.
    pub duplicates: DuplicateKeys,
    /// SQL predicate on source rows marking deletions, e.g. `op = 'D'`.
    pub delete_when: Option<String>,
    /// Schema changes allowed by the source.
    pub evolution: SchemaEvolution,
}

impl MergeOptions {
    /// Merge on `keys`, failing on duplicate source keys.
    pub fn on<S: Into<String>>(keys: impl IntoIterator<Item = S>) -> Self {
        Self {
            keys: keys.into_iter().map(Into::into).collect(),
            duplicates: DuplicateKeys::Error,
            delete_when: None,
            evolution: SchemaEvolution::default(),
        }
    }
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MergeResult {
    /// Commit details.
    pub commit: CommitResult,
    /// Source rows inserted (no matching key).
    pub inserted: u64,
    /// Target rows replaced by a source row.
    pub updated: u64,
    /// Target rows deleted by the delete condition.
    pub deleted: u64,
    /// Data files rewritten because they held matching keys.
    pub files_rewritten: usize,
    /// Data files whose statistics allowed a match and were read.
    pub files_read: usize,
}

impl MergeResult {
    /// An empty source: no commit, nothing counted.
    pub(crate) fn nothing() -> Self {
        MergeResult {
            commit: CommitResult::noop(),
            inserted: 0,
            updated: 0,
            deleted: 0,
            files_rewritten: 0,
            files_read: 0,
        }
    }
}

/// A loaded Iceberg table. Operations commit and leave the handle on the new state.
#[derive(Debug, Clone)]
pub struct Table {
    catalog: Arc<dyn Catalog>,
    ident: TableIdent,
    metadata: Arc<TableMetadata>,
    metadata_location: String,
    /// Summary properties for the next commit (see [`Table::set_commit_properties`]).
    next_properties: CommitProperties,
}

impl Table {
    /// Create a table (and its namespace).
    pub async fn create(catalog: Arc<dyn Catalog>, ident: TableIdent, def: TableDefinition) -> Result<Table> {
        let name = ident.to_string();
        if catalog.metadata_location(&ident).await?.is_some() {
            return Err(Error::TableAlreadyExists {
                catalog: catalog.name().to_string(),
                table: name,
            });
        }
        let schema = arrow_schema_to_schema_auto_assign_ids(&def.schema).map_err(|e| Error::Invalid {
            table: name.clone(),
            detail: format!("unsupported column type in table definition: {e}"),
        })?;
        let schema = if def.identifier.is_empty() {
            schema
        } else {
            let mut ids = Vec::new();
            for c in &def.identifier {
                let f = schema.field_by_name(c).ok_or_else(|| Error::Invalid {
                    table: name.clone(),
                    detail: format!("identifier column {c} is not a column of the table"),
                })?;
                ids.push(f.id);
            }
            schema.into_builder().with_identifier_field_ids(ids).build()?
        };
        let mut spec = UnboundPartitionSpec::builder();
        for pf in &def.partition_by {
            let source = schema.field_by_name(&pf.column).ok_or_else(|| Error::Invalid {
                table: name.clone(),
                detail: format!(
                    "partition column {} is not a column of the table; columns are: {}",
                    pf.column,
                    def.schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            let field_name = pf.name.clone().unwrap_or_else(|| match pf.transform.suffix() {
                None => pf.column.clone(),
                Some(s) => format!("{}_{s}", pf.column),
            });
            spec = spec.add_partition_field(source.id, field_name, pf.transform.to_iceberg())?;
        }
        let mut order = SortOrder::builder();
        for k in &def.sort_order {
            let source = schema.field_by_name(&k.column).ok_or_else(|| Error::Invalid {
                table: name.clone(),
                detail: format!("sort column {} is not a column of the table", k.column),
            })?;
            order.with_sort_field(k.to_iceberg(source.id));
        }
        let sort_order = order.build(&schema).map_err(|e| Error::Invalid {
            table: name.clone(),
            detail: format!("invalid sort order: {e}"),
        })?;
        let location = def.location.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                catalog.warehouse().trim_end_matches('/'),
                ident.namespace,
                ident.name
            )
        });
        let creation = TableCreation::builder()
            .name(ident.name.clone())
            .location(location.clone())
            .schema(schema)
            .partition_spec(spec.build())
            .sort_order(sort_order)
            .properties(def.properties.clone())
            .build();
        let metadata = TableMetadataBuilder::from_table_creation(creation)
            .map_err(|e| Error::Invalid {
                table: name.clone(),
                detail: format!("invalid table definition: {e}"),
            })?
            .build()?
            .metadata;
        let loc = MetadataLocation::new_with_metadata(&location, &metadata);
        crate::durable::write_metadata(&metadata, catalog.file_io(), &loc).await?;
        let loc = loc.to_string();
        catalog.register_table(&ident, &loc).await?;
        Ok(Table {
            catalog,
            ident,
            metadata: Arc::new(metadata),
            metadata_location: loc,
            next_properties: CommitProperties::default(),
        })
    }

    /// Load a table's current state.
    pub async fn load(catalog: Arc<dyn Catalog>, ident: TableIdent) -> Result<Table> {
        let (metadata, metadata_location) = Self::read_current(&catalog, &ident).await?;
        Ok(Table {
            catalog,
            ident,
            metadata,
            metadata_location,
            next_properties: CommitProperties::default(),
        })
    }

    async fn read_current(catalog: &Arc<dyn Catalog>, ident: &TableIdent) -> Result<(Arc<TableMetadata>, String)> {
        let loc = catalog
            .metadata_location(ident)
            .await?
            .ok_or_else(|| Error::TableNotFound {
                catalog: catalog.name().to_string(),
                table: ident.to_string(),
            })?;
        let meta = match TableMetadata::read_from(catalog.file_io(), &loc).await {
            Ok(m) => m,
            Err(e) => {
                return Err(crate::commit::read_failure(catalog.file_io(), &loc, e)
                    .await
                    .in_table(&ident.to_string()))
            }
        };
        Ok((Arc::new(meta), loc))
    }

    /// Re-read the current state from the catalog.
    pub async fn refresh(&mut self) -> Result<()> {
        let (m, l) = Self::read_current(&self.catalog, &self.ident).await?;
        self.metadata = m;
        self.metadata_location = l;
        Ok(())
    }

    /// Identifier.
    pub fn ident(&self) -> &TableIdent {
        &self.ident
    }

    /// Current Iceberg metadata (read-only view of the library type).
    pub fn metadata(&self) -> &TableMetadata {
        &self.metadata
    }

    /// Location of the current metadata file.
    pub fn metadata_location(&self) -> &str {
        &self.metadata_location
    }

    /// Current snapshot id, `None` for an empty table.
    pub fn current_snapshot_id(&self) -> Option<i64> {
        self.metadata.current_snapshot_id()
    }

    /// Current schema as Arrow (with Iceberg field ids in field metadata).
    pub fn arrow_schema(&self) -> Result<ArrowSchemaRef> {
        arrow_schema(self.metadata.current_schema())
    }

    pub(crate) fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub(crate) fn name(&self) -> String {
        self.ident.to_string()
    }

    /// Compare-and-swap the catalog pointer to an already written metadata file. On success the
    /// handle moves to it; on `false` nothing changed (refresh and re-plan).
    pub(crate) async fn swap_metadata(&mut self, meta: TableMetadata, location: String) -> Result<bool> {
        if self
            .catalog
            .swap_metadata_location(&self.ident, &self.metadata_location, &location)
            .await?
        {
            self.metadata = Arc::new(meta);
            self.metadata_location = location;
            return Ok(true);
        }
        Ok(false)
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::from_properties(self.metadata.properties())
    }

    pub(crate) async fn live_files(&self) -> Result<Vec<LiveFile>> {
        commit::live_files(
            &self.name(),
            &self.metadata,
            self.catalog.file_io(),
            self.metadata.current_snapshot_id(),
        )
        .await
    }

    /// Schema to write `input` with, and the evolved schema if it changes the table.
    pub(crate) fn write_schema(
        &self,
        input: Option<&ArrowSchema>,
        evolution: SchemaEvolution,
    ) -> Result<(SchemaRef, Option<Schema>)> {
        let current = self.metadata.current_schema().clone();
        let Some(input) = input else {
            return Ok((current, None));
        };
        match evolve_schema(&self.name(), &current, self.metadata.last_column_id(), input, evolution)? {
            Some(s) => Ok((Arc::new(s.clone()), Some(s))),
            None => Ok((current, None)),
        }
    }

    pub(crate) fn conform_all(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
        let target = arrow_schema(schema)?;
        batches
            .iter()
            .map(|b| conform_batch(&self.name(), b, &target))
            .collect()
    }

    pub(crate) fn pending(
        &self,
        operation: Operation,
        action: &'static str,
        added: Vec<DataFile>,
        removed: Vec<LiveFile>,
        new_schema: Option<Schema>,
        conflict: ConflictCheck,
    ) -> PendingCommit {
        PendingCommit {
            operation,
            action,
            added,
            removed,
            new_schema,
            base_snapshot_id: self.metadata.current_snapshot_id(),
            base_schema_id: self.metadata.current_schema_id(),
            conflict,
            extra_summary: self.next_properties.set.clone().into_iter().collect(),
            expect_summary: self.next_properties.expect.clone().into_iter().collect(),
        }
    }

    /// Summary properties the next commit of this handle writes (and the state values it
    /// expects to replace), e.g. a job's bookmark: they land in the same snapshot as the data.
    /// A commit with properties but no data files still commits (an empty `append` snapshot),
    /// so a run that found nothing to write still records that it ran. Cleared by the commit.
    pub fn set_commit_properties(&mut self, props: CommitProperties) {
        self.next_properties = props;
    }

    /// The latest value of a snapshot summary property (see [`crate::summary_property`]).
    pub fn summary_property(&self, key: &str) -> Option<String> {
        crate::state::summary_property(&self.metadata, key)
    }

    /// A job's state in this table (see [`crate::job_state`]): the one lookup incremental and
    /// time-range jobs use. A table with history whose state cannot be found is
    /// [`Error::StateLost`], naming the table and how to restore it.
    pub fn job_state(&self, key: &str) -> Result<Option<String>> {
        crate::state::job_state(&self.metadata, key).map_err(|lost| Error::StateLost {
            table: self.name(),
            key: key.to_string(),
            why: lost.to_string(),
        })
    }

    /// Every job's state in this table, as the next snapshot would inherit it: what a copy of
    /// the table into a new one (a declared move) carries so its jobs neither skip nor repeat.
    pub fn job_states(&self) -> Vec<(String, String)> {
        crate::state::inherited(&self.metadata)
    }

    /// Compare-and-swap loop: validate against whatever was committed meanwhile, rebuild the
    /// snapshot on top of it, retry with exponential back-off. Files written by failed
    /// attempts stay unreferenced (orphans for maintenance).
    pub(crate) async fn commit(&mut self, pending: PendingCommit) -> Result<CommitResult> {
        let props_given = !std::mem::take(&mut self.next_properties).is_empty();
        if pending.added.is_empty() && pending.removed.is_empty() && pending.new_schema.is_none() && !props_given {
            return Ok(CommitResult::noop());
        }
        let policy = self.retry_policy();
        let started = Instant::now();
        let mut wait = policy.min_wait;
        let mut attempt: u32 = 0;
        let name = self.name();
        loop {
            attempt += 1;
            let file_io = self.catalog.file_io().clone();
            commit::validate(&name, &self.metadata, &file_io, &pending).await?;
            commit::validate_state(&name, &self.metadata, &pending)?;
            let (meta, loc) =
                commit::produce(&name, &self.metadata, &self.metadata_location, &file_io, &pending).await?;
            crate::state::exit_point("commit");
            if self
                .catalog
                .swap_metadata_location(&self.ident, &self.metadata_location, &loc)
                .await?
            {
                let snapshot = meta.current_snapshot().cloned();
                self.metadata = Arc::new(meta);
                self.metadata_location = loc;
                return Ok(CommitResult {
                    snapshot_id: snapshot.as_ref().map(|s| s.snapshot_id()),
                    sequence_number: snapshot.as_ref().map(|s| s.sequence_number()),
                    operation: Some(pending.operation.as_str().to_string()),
                    added_files: pending.added.len(),
                    removed_files: pending.removed.len(),
                    added_records: pending.added.iter().map(|f| f.record_count()).sum(),
                    added_bytes: pending.added.iter().map(|f| f.file_size_in_bytes()).sum(),
                    removed_records: pending.removed.iter().map(|f| f.file.record_count()).sum(),
                    attempts: attempt,
                });
            }
            if attempt > policy.num_retries || started.elapsed() + wait > policy.total_timeout {
                return Err(Error::Conflict {
                    table: name,
                    reason: format!(
                        "the {} lost the commit race {attempt} times in {:?} (commit.retry.num-retries = {})",
                        pending.action,
                        started.elapsed(),
                        policy.num_retries
                    ),
                });
            }
            self.back_off(&mut wait, &policy).await?;
        }
    }

    /// Wait before retrying a lost commit (doubling up to the policy's maximum), then reload the
    /// table. Jitter keeps writers that collided from colliding again in lock-step.
    async fn back_off(&mut self, wait: &mut Duration, policy: &RetryPolicy) -> Result<()> {
        let jitter = wait.mul_f64((uuid::Uuid::new_v4().as_u64_pair().1 % 1000) as f64 / 5000.0);
        tokio::time::sleep(*wait + jitter).await;
        *wait = (*wait * 2).min(policy.max_wait);
        self.refresh().await
    }

    /// Append rows.
    pub async fn append(&mut self, batches: &[RecordBatch], evolution: SchemaEvolution) -> Result<CommitResult> {
        let staged = self.stage_batches(batches, evolution).await?;
        self.commit_staged(staged, CommitMode::Append).await
    }

    /// Read data files that may match `filter`, split their rows into matching and kept.
    /// Returns (files with at least one match, kept rows of those files, matched row count).
    pub(crate) async fn split_matching(
        &self,
        schema: &SchemaRef,
        filter: &Filter,
        live: &[LiveFile],
    ) -> Result<(Vec<LiveFile>, Vec<RecordBatch>, u64)> {
        let name = self.name();
        let specs = specs(&self.metadata);
        let candidates = prune_live(filter, self.metadata.current_schema(), &specs, live);
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        let mut matched = 0u64;
        for lf in candidates {
            let batches = read_files(&name, &self.metadata, self.catalog.file_io(), schema, &[lf]).await?;
            let mut file_kept = Vec::new();
            let mut file_matched = 0u64;
            for b in &batches {
                let mask = filter.evaluate(&name, b)?;
                let n = mask.iter().filter(|m| **m).count() as u64;
                file_matched += n;
                if n < b.num_rows() as u64 {
                    let keep: Vec<bool> = mask.iter().map(|m| !m).collect();
                    file_kept.push(filter_rows(b, &keep)?);
                }
            }
            if file_matched > 0 {
                matched += file_matched;
                removed.push(lf.clone());
                kept.extend(file_kept);
            }
        }
        Ok((removed, kept, matched))
    }

    pub(crate) fn filter_conflict_check(&self, filter: &Filter) -> ConflictCheck {
        let filter = filter.clone();
        let schema = self.metadata.current_schema().clone();
        let specs = specs(&self.metadata);
        ConflictCheck::RemovedFilesLiveAndNoMatchingAdds(Arc::new(move |f: &LiveFile| {
            filter.may_match(&schema, &specs, &[f])[0]
        }))
    }

    /// Replace table content: everything, the partitions present in `batches`, or the rows
    /// matching a predicate.
    pub async fn overwrite(
        &mut self,
        batches: &[RecordBatch],
        mode: OverwriteMode,
        evolution: SchemaEvolution,
    ) -> Result<CommitResult> {
        let staged = self.stage_batches(batches, evolution).await?;
        self.commit_staged(staged, CommitMode::Overwrite(mode)).await
    }

    /// Copy-on-write delete of the rows matching a SQL predicate. Only files whose statistics
    /// allow a match are read, and only files with a match are rewritten.
    pub async fn delete_where(&mut self, predicate: &str) -> Result<CommitResult> {
        let schema = self.metadata.current_schema().clone();
        let filter = Filter::compile(&self.name(), predicate, arrow_schema(&schema)?)?;
        let live = self.live_files().await?;
        let (removed, kept, _) = self.split_matching(&schema, &filter, &live).await?;
        let added = write_data_files(&self.metadata, schema, self.catalog.file_io(), &kept).await?;
        let op = if added.is_empty() {
            Operation::Delete
        } else {
            Operation::Overwrite
        };
        let p = self.pending(op, "delete", added, removed, None, ConflictCheck::RemovedFilesLive);
        self.commit(p).await
    }

    /// Replace data files by new files holding the same rows (compaction, re-sorting).
    /// Fails if the row counts differ.
    pub async fn replace(&mut self, remove_paths: &[String], batches: &[RecordBatch]) -> Result<CommitResult> {
        let name = self.name();
        let live = self.live_files().await?;
        let by_path: HashMap<&str, &LiveFile> = live.iter().map(|f| (f.file.file_path(), f)).collect();
        let mut removed = Vec::new();
        for p in remove_paths {
            let lf = by_path.get(p.as_str()).ok_or_else(|| Error::Invalid {
                table: name.clone(),
                detail: format!("{p} is not a live data file of the table; list the files of the current snapshot"),
            })?;
            removed.push((*lf).clone());
        }
        let schema = self.metadata.current_schema().clone();
        let data = self.conform_all(&schema, batches)?;
        let rows_in: u64 = removed.iter().map(|f| f.file.record_count()).sum();
        let rows_out: u64 = data.iter().map(|b| b.num_rows() as u64).sum();
        if rows_in != rows_out {
            return Err(Error::Invalid {
                table: name,
                detail: format!(
                    "replace must keep the same rows: the removed files hold {rows_in} records but {rows_out} were given; use overwrite to change data"
                ),
            });
        }
        let added = write_data_files(&self.metadata, schema, self.catalog.file_io(), &data).await?;
        let p = self.pending(
            Operation::Replace,
            "replace",
            added,
            removed,
            None,
            ConflictCheck::RemovedFilesLive,
        );
        self.commit(p).await
    }

    /// Read and rewrite the given data files at the table's target file size.
    pub async fn rewrite_files(&mut self, paths: &[String]) -> Result<CommitResult> {
        let live = self.live_files().await?;
        let wanted: HashSet<&str> = paths.iter().map(String::as_str).collect();
        let files: Vec<&LiveFile> = live.iter().filter(|f| wanted.contains(f.file.file_path())).collect();
        let schema = self.metadata.current_schema().clone();
        let batches = read_files(&self.name(), &self.metadata, self.catalog.file_io(), &schema, &files).await?;
        self.replace(paths, &batches).await
    }

    /// Tag a snapshot (a metadata-only commit). Snapshot expiry keeps tagged snapshots.
    pub async fn set_tag(&mut self, tag: &str, snapshot_id: i64) -> Result<()> {
        if tag == iceberg::spec::MAIN_BRANCH {
            return Err(Error::Invalid {
                table: self.name(),
                detail: format!("{tag} is the main branch, not a tag; pick another name"),
            });
        }
        let policy = self.retry_policy();
        let mut wait = policy.min_wait;
        for attempt in 0..=policy.num_retries {
            if self.metadata.snapshot_by_id(snapshot_id).is_none() {
                return Err(Error::Invalid {
                    table: self.name(),
                    detail: format!("snapshot {snapshot_id} does not exist; list snapshots to pick a valid one"),
                });
            }
            let meta = TableMetadataBuilder::new_from_metadata(
                self.metadata.as_ref().clone(),
                Some(self.metadata_location.clone()),
            )
            .set_ref(
                tag,
                iceberg::spec::SnapshotReference::new(
                    snapshot_id,
                    iceberg::spec::SnapshotRetention::Tag { max_ref_age_ms: None },
                ),
            )?
            .build()?
            .metadata;
            let loc = MetadataLocation::from_str(&self.metadata_location)?.with_next_version();
            crate::durable::write_metadata(&meta, self.catalog.file_io(), &loc).await?;
            if self.swap_metadata(meta, loc.to_string()).await? {
                return Ok(());
            }
            if attempt < policy.num_retries {
                self.back_off(&mut wait, &policy).await?;
            }
        }
        Err(Error::Conflict {
            table: self.name(),
            reason: "tagging lost the commit race on every retry".into(),
        })
    }

    /// The default sort order as (column, descending, nulls first); empty when unsorted.
    pub fn sort_order(&self) -> Vec<SortKey> {
        let schema = self.metadata.current_schema();
        self.metadata
            .default_sort_order()
            .fields
            .iter()
            .filter_map(|f| {
                schema.field_by_id(f.source_id).map(|c| SortKey {
                    column: c.name.clone(),
                    descending: f.direction == SortDirection::Descending,
                    nulls_first: f.null_order == NullOrder::First,
                })
            })
            .collect()
    }

    /// Add nullable columns without writing data (a metadata-only commit).
    pub async fn add_columns(&mut self, columns: &[(String, DataType)]) -> Result<()> {
        let input = ArrowSchema::new(
            columns
                .iter()
                .map(|(n, t)| Field::new(n, t.clone(), true))
                .collect::<Vec<_>>(),
        );
        let policy = self.retry_policy();
        let mut wait = policy.min_wait;
        for attempt in 0..=policy.num_retries {
            let current = self.metadata.current_schema().clone();
            let mut fresh = Vec::new();
            for f in input.fields() {
                if current.field_by_name(f.name()).is_some() {
                    return Err(Error::Schema {
                        table: self.name(),
                        column: f.name().clone(),
                        detail: "the column already exists".into(),
                    });
                }
                fresh.push(f.clone());
            }
            let Some(schema) = evolve_schema(
                &self.name(),
                &current,
                self.metadata.last_column_id(),
                &ArrowSchema::new(fresh),
                SchemaEvolution {
                    add_columns: true,
                    widen_types: false,
                },
            )?
            else {
                return Ok(());
            };
            let (meta, loc) =
                commit::produce_schema_change(&self.metadata, &self.metadata_location, self.catalog.file_io(), schema)
                    .await?;
            if self.swap_metadata(meta, loc).await? {
                return Ok(());
            }
            if attempt < policy.num_retries {
                self.back_off(&mut wait, &policy).await?;
            }
        }
        Err(Error::Conflict {
            table: self.name(),
            reason: "adding columns lost the commit race on every retry".into(),
        })
    }

    /// Brings the table's schema, identifier fields, partition spec and default sort order to
    /// `layout` in one metadata-only commit (no data file is read or written): columns keep
    /// their field ids (a rename is the same id under a new name), columns not in the layout
    /// are dropped from the current schema (old snapshots keep them), new ones get fresh ids.
    /// A changed spec is added as the new default: files already written keep theirs. Returns
    /// whether anything changed. Which changes are safe is the caller's decision; this only
    /// refuses what Iceberg cannot express (an unknown column, a type with no Iceberg type).
    pub async fn evolve_layout(&mut self, layout: &TableLayout) -> Result<bool> {
        let policy = self.retry_policy();
        let mut wait = policy.min_wait;
        for attempt in 0..=policy.num_retries {
            let Some(meta) = crate::layout::evolved(&self.name(), &self.metadata, &self.metadata_location, layout)?
            else {
                return Ok(false);
            };
            let loc = MetadataLocation::from_str(&self.metadata_location)?.with_next_version();
            crate::durable::write_metadata(&meta, self.catalog.file_io(), &loc).await?;
            if self.swap_metadata(meta, loc.to_string()).await? {
                return Ok(true);
            }
            if attempt < policy.num_retries {
                self.back_off(&mut wait, &policy).await?;
            }
        }
        Err(Error::Conflict {
            table: self.name(),
            reason: "changing the table layout lost the commit race on every retry".into(),
        })
    }

    /// Upsert `source` by key: matched rows are replaced (or deleted when `delete_when` holds),
    /// unmatched rows inserted. Copy-on-write: only data files that actually hold a source key
    /// are rewritten; files are pre-selected by partition values and key min/max statistics.
    pub async fn merge(&mut self, source: &[RecordBatch], opts: &MergeOptions) -> Result<MergeResult> {
        self.merge_owned(source.to_vec(), opts).await
    }

    /// [`Table::merge`] taking the source batches, as a [`MergeSource`] in a session without a
    /// memory limit (see [`Table::merge_source`] for a source that may not fit in memory).
    pub async fn merge_owned(&mut self, source: Vec<RecordBatch>, opts: &MergeOptions) -> Result<MergeResult> {
        let Some(first) = source.iter().find(|b| b.num_rows() > 0) else {
            if opts.keys.is_empty() {
                return Err(Error::Invalid {
                    table: self.name(),
                    detail: "merge needs at least one key column".into(),
                });
            }
            return Ok(MergeResult::nothing());
        };
        let schema = first.schema();
        if let Some(b) = source.iter().find(|b| b.schema() != schema) {
            return Err(Error::Invalid {
                table: self.name(),
                detail: format!(
                    "all merge source batches must have the same schema: {:?} differs from {:?}",
                    b.schema(),
                    schema
                ),
            });
        }
        let source = MergeSource::from_batches(schema, source)?;
        self.merge_source(source, opts).await
    }
}
