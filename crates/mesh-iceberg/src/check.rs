//! Integrity: `mesh table check` (every file a snapshot references exists and parses) and
//! `mesh table register` (adopt a table folder's latest metadata file after the catalog lost
//! its entry).

use std::collections::BTreeSet;
use std::sync::Arc;

use iceberg::spec::{ManifestContentType, TableMetadata};
use serde::Serialize;

use crate::catalog::{Catalog, TableIdent};
use crate::commit::{load_manifest, manifest_list};
use crate::error::{Error, Result};
use crate::table::Table;

/// One damaged file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileProblem {
    /// `manifest list`, `manifest` or `data file`.
    pub kind: &'static str,
    pub path: String,
    pub problem: String,
}

/// What [`Table::check`] read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub table: String,
    pub metadata: String,
    pub snapshots: usize,
    pub manifest_lists: usize,
    pub manifests: usize,
    pub data_files: usize,
    pub problems: Vec<FileProblem>,
}

impl Table {
    /// Reads every file the current snapshot (or, with `all_snapshots`, every retained
    /// snapshot) references: manifest lists, manifests, and each data file in full, checking
    /// its size and row count against the manifest. The metadata file itself was read by
    /// [`Table::load`] (a damaged one fails there, as [`Error::Corrupt`]).
    pub async fn check(&self, all_snapshots: bool) -> Result<CheckReport> {
        let meta = self.metadata();
        let file_io = self.catalog().file_io();
        let mut report = CheckReport {
            table: self.ident().to_string(),
            metadata: self.metadata_location().to_string(),
            ..Default::default()
        };
        let snapshots: Vec<_> = if all_snapshots {
            meta.snapshots().cloned().collect()
        } else {
            meta.current_snapshot().cloned().into_iter().collect()
        };
        report.snapshots = snapshots.len();
        let (mut manifests, mut data) = (BTreeSet::new(), BTreeSet::new());
        for s in &snapshots {
            report.manifest_lists += 1;
            let list = match manifest_list(meta, file_io, s).await {
                Ok(l) => l,
                Err(e) => {
                    report.problems.push(problem("manifest list", s.manifest_list(), e));
                    continue;
                }
            };
            for mf in list {
                if !manifests.insert(mf.manifest_path.clone()) {
                    continue;
                }
                let manifest = match load_manifest(&mf, file_io).await {
                    Ok(m) => m,
                    Err(e) => {
                        report.problems.push(problem("manifest", &mf.manifest_path, e));
                        continue;
                    }
                };
                if mf.content == ManifestContentType::Deletes {
                    continue;
                }
                for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                    let f = entry.data_file();
                    if !data.insert(f.file_path().to_string()) {
                        continue;
                    }
                    if let Some(p) =
                        check_data_file(file_io, f.file_path(), f.file_size_in_bytes(), f.record_count()).await
                    {
                        report.problems.push(FileProblem {
                            kind: "data file",
                            path: f.file_path().to_string(),
                            problem: p,
                        });
                    }
                }
            }
        }
        report.manifests = manifests.len();
        report.data_files = data.len();
        Ok(report)
    }

    /// Adopts `metadata_location` (an existing metadata file) as the table `ident` in the
    /// catalog, after checking it parses and describes a table at `expected_location`.
    pub async fn register(
        catalog: Arc<dyn Catalog>,
        ident: TableIdent,
        metadata_location: &str,
        expected_location: &str,
    ) -> Result<Table> {
        if let Some(current) = catalog.metadata_location(&ident).await? {
            return Err(Error::Invalid {
                table: ident.to_string(),
                detail: format!("the catalog already points at {current}; nothing to register"),
            });
        }
        let meta = match TableMetadata::read_from(catalog.file_io(), metadata_location).await {
            Ok(m) => m,
            Err(e) => {
                return Err(crate::commit::read_failure(catalog.file_io(), metadata_location, e)
                    .await
                    .in_table(&ident.to_string()))
            }
        };
        let norm = |s: &str| s.trim_end_matches('/').trim_start_matches("file://").to_string();
        if norm(meta.location()) != norm(expected_location) {
            return Err(Error::Invalid {
                table: ident.to_string(),
                detail: format!(
                    "{metadata_location} describes a table at {}, not at {expected_location}; refusing to adopt another table's metadata",
                    meta.location()
                ),
            });
        }
        catalog.register_table(&ident, metadata_location).await?;
        Table::load(catalog, ident).await
    }
}

fn problem(kind: &'static str, path: &str, e: Error) -> FileProblem {
    let problem = match e {
        Error::Corrupt { detail, .. } => detail,
        other => other.to_string(),
    };
    FileProblem {
        kind,
        path: path.to_string(),
        problem,
    }
}

/// Reads a data file whole and decodes every row; `Some(problem)` when it does not match.
async fn check_data_file(file_io: &iceberg::io::FileIO, path: &str, size: u64, rows: u64) -> Option<String> {
    let input = match file_io.new_input(path) {
        Ok(i) => i,
        Err(e) => return Some(e.to_string()),
    };
    let bytes = match input.read().await {
        Ok(b) => b,
        Err(_) if matches!(file_io.exists(path).await, Ok(false)) => return Some("the file does not exist".into()),
        Err(e) => return Some(format!("cannot read it: {e}")),
    };
    if bytes.len() as u64 != size {
        return Some(format!("{} bytes, the manifest says {size}", bytes.len()));
    }
    let decoded = tokio::task::spawn_blocking(move || -> std::result::Result<u64, String> {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| format!("not a readable Parquet file: {e}"))?;
        let mut n = 0;
        for batch in reader {
            n += batch
                .map_err(|e| format!("a row group does not decode: {e}"))?
                .num_rows() as u64;
        }
        Ok(n)
    })
    .await;
    match decoded {
        Ok(Ok(n)) if n == rows => None,
        Ok(Ok(n)) => Some(format!("{n} rows, the manifest says {rows}")),
        Ok(Err(p)) => Some(p),
        Err(e) => Some(format!("decoding failed: {e}")),
    }
}
