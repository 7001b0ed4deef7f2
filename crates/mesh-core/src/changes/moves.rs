//! Declared moves and retirements, applied to an environment (`mesh apply`, and the start of
//! every `mesh run`): a table whose manifest says `moved_from` (or whose project says
//! `moved_from_slug`) gets the data of its old place, and a `retired` table loses its catalog
//! entry and files. Undeclared, neither happens: `mesh plan` and `mesh validate --against`
//! refuse the change instead.
//!
//! An Iceberg table moves by copy, not by rename: its location derives from the project slug,
//! the layer and the name, and Iceberg metadata holds absolute file paths, so a renamed catalog
//! entry would keep pointing into the old place (outside the new project's IAM prefix when the
//! slug changes). The copy is one new table at the new location holding the old table's current
//! rows and every job's state (bookmarks, intervals done), built under a staging name, then
//! installed in one catalog operation: registered under the new name, or swapped (compare and
//! swap) into an entry that exists already (the same name when only the slug changed, or the
//! empty table Terraform created on AWS). Only then is the old entry dropped and its files
//! deleted. A run stopped anywhere in between leaves the old table whole, or the new one
//! installed with a marker (`mesh.moved-from`) that the next run finishes from; history before
//! the move (time travel) is not copied.
//!
//! A raw table moves by copying its files to the new folder. Locally each copy keeps its
//! modification time, so incremental bookmarks (paths under the table, sizes and times) still
//! match; object stores cannot keep it, so on S3 a raw table read by an incremental job is
//! refused rather than read twice.

use std::collections::BTreeMap;

use mesh_domain::{Project, Table, TablePlace, TableRef};
use mesh_iceberg::{CommitMode, CommitProperties, SchemaEvolution, TableIdent};
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::engine::Engine;

/// Snapshot summary key of a move's commit: the location the rows came from.
pub const MOVED_FROM_KEY: &str = "mesh.moved-from";
/// The staging table a move builds before installing it under the table's name.
const STAGING_SUFFIX: &str = "__mesh_move";

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error(transparent)]
    Iceberg(#[from] mesh_iceberg::Error),
    /// Not applied, and why (with the fix): exit 2.
    #[error("{project}/{table}: {reason}")]
    Refused {
        project: String,
        table: String,
        reason: String,
    },
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Copy the old place's data to the table, then drop the old place.
    Move,
    /// The data was copied; only the old place's files remain to delete.
    FinishMove,
    /// Drop the catalog entry and delete the files.
    Retire,
}

/// One thing the environment needs for the model's declarations to hold.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub kind: Kind,
    pub project: String,
    /// `layer.table` as the model names it now (a retired table: as it was).
    pub table: String,
    /// The old place (`slug/layer.table`); for a retirement, the table's place.
    pub from: String,
    pub from_location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_location: Option<String>,
    /// Rows of the old table's current snapshot (Iceberg), else files under the old place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub files: usize,
}

impl Pending {
    pub fn describe(&self) -> String {
        let rows = self.rows.map(|r| format!("{r} row(s), ")).unwrap_or_default();
        match self.kind {
            Kind::Move => format!(
                "move {}/{} from {}: copy {rows}{} file(s) and the jobs' state from {} to {}, then drop the old entry and files (history before the move is not kept)",
                self.project,
                self.table,
                self.from,
                self.files,
                self.from_location,
                self.to_location.as_deref().unwrap_or_default()
            ),
            Kind::FinishMove => format!(
                "finish the move of {}/{} from {}: delete the {} file(s) left at {}",
                self.project, self.table, self.from, self.files, self.from_location
            ),
            Kind::Retire => format!(
                "retire {}/{}: drop its catalog entry and delete {rows}{} file(s) at {}",
                self.project, self.table, self.files, self.from_location
            ),
        }
    }
}

/// [`MoveError::Refused`] of table `t` of project `p`.
fn refused(p: &Project, t: &Table, reason: String) -> MoveError {
    MoveError::Refused {
        project: p.name.to_string(),
        table: t.reference().to_string(),
        reason,
    }
}

fn location_of(engine: &Engine, place: &TablePlace) -> String {
    let naming = &engine.layout.naming;
    engine
        .layout
        .url(&naming.place_location(&place.slug, place.layer, &place.name))
        .trim_end_matches('/')
        .to_string()
}

fn table_location(t: &mesh_iceberg::Table) -> String {
    t.metadata().location().trim_end_matches('/').to_string()
}

fn rows_of(t: &mesh_iceberg::Table) -> u64 {
    t.metadata()
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get("total-records"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The table registered under `ident`, if any (a missing entry is `None`).
async fn load(engine: &Engine, ident: &TableIdent) -> Result<Option<mesh_iceberg::Table>, MoveError> {
    match mesh_iceberg::Table::load(engine.catalog.clone(), ident.clone()).await {
        Ok(t) => Ok(Some(t)),
        Err(mesh_iceberg::Error::TableNotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn files_under(engine: &Engine, location: &str) -> Result<Vec<mesh_iceberg::maintenance::ListedFile>, MoveError> {
    Ok(engine.lister().list(&format!("{location}/")).await?)
}

/// Whether `t`'s history holds the commit of a move from `from_location`.
fn moved_here_from(t: &mesh_iceberg::Table, from_location: &str) -> bool {
    t.metadata().snapshots().any(|s| {
        s.summary()
            .additional_properties
            .get(MOVED_FROM_KEY)
            .map(String::as_str)
            == Some(from_location)
    })
}

/// What the environment needs for the model's moves and retirements, in model order.
pub async fn pending(engine: &Engine) -> Result<Vec<Pending>, MoveError> {
    let mut out = Vec::new();
    for p in &engine.domain.projects {
        for t in &p.tables {
            let Some(origin) = p.origin(t) else { continue };
            if let Some(work) = pending_move(engine, p, t, &origin).await? {
                out.push(work);
            }
        }
        for r in &p.retired {
            if let Some(work) = pending_retire(engine, p, r).await? {
                out.push(work);
            }
        }
    }
    Ok(out)
}

async fn pending_move(
    engine: &Engine,
    p: &Project,
    t: &Table,
    origin: &TablePlace,
) -> Result<Option<Pending>, MoveError> {
    let from_location = location_of(engine, origin);
    let to_location = engine.location(p, t);
    let base = |kind, rows, files| Pending {
        kind,
        project: p.name.to_string(),
        table: t.reference().to_string(),
        from: origin.to_string(),
        from_location: from_location.clone(),
        to_location: Some(to_location.clone()),
        rows,
        files,
    };
    if !t.layer.is_iceberg() {
        let mut files = 0;
        for (from, _) in raw_folders(&from_location, &to_location) {
            files += files_under(engine, &from).await?.len();
        }
        return Ok((files > 0).then(|| base(Kind::Move, None, files)));
    }
    let old_ident = engine.ident_at(origin.layer, origin.name.as_str());
    let old = load(engine, &old_ident)
        .await?
        .filter(|o| table_location(o) == from_location);
    let Some(old) = old else {
        // Nothing registered at the old place: moved already (delete what a stopped move left),
        // or never written there.
        let new = load(engine, &engine.ident(t)).await?;
        let files = files_under(engine, &from_location).await?;
        if !files.is_empty() && new.is_some_and(|n| moved_here_from(&n, &from_location)) {
            return Ok(Some(base(Kind::FinishMove, None, files.len())));
        }
        return Ok(None);
    };
    let new_ident = engine.ident(t);
    if new_ident != old_ident {
        if let Some(target) = load(engine, &new_ident).await? {
            if table_location(&target) != to_location {
                return Err(refused(
                    p,
                    t,
                    format!(
                        "moving {origin} here is refused: the catalog's {new_ident} is at {}, not at {to_location}\n  help: restore the model's names (project_slug, layer), or drop that entry",
                        table_location(&target)
                    ),
                ));
            }
            if rows_of(&target) > 0 {
                return Err(refused(
                    p,
                    t,
                    format!(
                        "moving {origin} here is refused: both {old_ident} ({} rows) and {new_ident} ({} rows) hold data, and a move would lose one of them\n  help: retire one of them (`retired = [\"...\"]`), or remove moved_from and load the old rows with a job",
                        rows_of(&old),
                        rows_of(&target)
                    ),
                ));
            }
        }
    }
    let files = old
        .metadata()
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get("total-data-files"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Some(base(Kind::Move, Some(rows_of(&old)), files)))
}

async fn pending_retire(engine: &Engine, p: &Project, r: &TableRef) -> Result<Option<Pending>, MoveError> {
    let place = TablePlace {
        slug: p.slug.clone(),
        layer: r.layer,
        name: r.table.clone(),
    };
    let location = location_of(engine, &place);
    let mut files = files_under(engine, &location).await?;
    if !r.layer.is_iceberg() {
        files.extend(files_under(engine, &format!("{location}{REJECTED}")).await?);
    }
    let rows = if r.layer.is_iceberg() {
        load(engine, &engine.ident_at(r.layer, r.table.as_str()))
            .await?
            .filter(|t| table_location(t) == location)
            .map(|t| rows_of(&t))
    } else {
        None
    };
    if files.is_empty() && rows.is_none() {
        return Ok(None);
    }
    Ok(Some(Pending {
        kind: Kind::Retire,
        project: p.name.to_string(),
        table: r.to_string(),
        from: place.to_string(),
        from_location: location,
        to_location: None,
        rows,
        files: files.len(),
    }))
}

/// Applies every pending move and retirement, in model order; `report` hears each before it
/// starts. Returns what was done.
pub async fn apply(engine: &Engine, report: &dyn Fn(&Pending)) -> Result<Vec<Pending>, MoveError> {
    let work = pending(engine).await?;
    for w in &work {
        report(w);
        let p = engine
            .domain
            .project(&w.project)
            .expect("pending work names a project of the model");
        match w.kind {
            Kind::Retire => retire(engine, p, w).await?,
            Kind::FinishMove => delete_all(engine, &w.from_location).await?,
            Kind::Move => {
                let t = p
                    .tables
                    .iter()
                    .find(|t| t.reference().to_string() == w.table)
                    .expect("a move names a table of the model");
                let origin = p.origin(t).expect("a move has an origin");
                if t.layer.is_iceberg() {
                    move_iceberg(engine, p, t, &origin).await?;
                } else {
                    move_raw(engine, p, t, w).await?;
                }
            }
        }
    }
    Ok(work)
}

async fn retire(engine: &Engine, p: &Project, w: &Pending) -> Result<(), MoveError> {
    let r = p
        .retired
        .iter()
        .find(|r| r.to_string() == w.table)
        .expect("a retirement names a retired table");
    if r.layer.is_iceberg() {
        let ident = engine.ident_at(r.layer, r.table.as_str());
        if load(engine, &ident)
            .await?
            .is_some_and(|t| table_location(&t) == w.from_location)
        {
            engine.catalog.drop_table(&ident).await?;
        }
    } else {
        delete_all(engine, &format!("{}{REJECTED}", w.from_location)).await?;
    }
    delete_all(engine, &w.from_location).await
}

/// The quarantine of raw table `t` is the sibling folder `t_rejected`: it moves and goes with
/// the table.
const REJECTED: &str = "_rejected";

/// A raw table's folders to move: its files, and its quarantine's.
fn raw_folders(from: &str, to: &str) -> [(String, String); 2] {
    [
        (from.to_string(), to.to_string()),
        (format!("{from}{REJECTED}"), format!("{to}{REJECTED}")),
    ]
}

/// Deletes every file under `location` (a table's own folder).
async fn delete_all(engine: &Engine, location: &str) -> Result<(), MoveError> {
    let lister = engine.lister();
    for f in files_under(engine, location).await? {
        lister.delete(&f.location).await?;
    }
    if let Some(dir) = location.strip_prefix("file://") {
        // Empty folders left by the deletes: the place reads as never written.
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

async fn move_iceberg(engine: &Engine, p: &Project, t: &Table, origin: &TablePlace) -> Result<(), MoveError> {
    let catalog = engine.catalog.clone();
    let old_ident = engine.ident_at(origin.layer, origin.name.as_str());
    let from_location = location_of(engine, origin);
    let to_location = engine.location(p, t);
    let old = load(engine, &old_ident)
        .await?
        .filter(|o| table_location(o) == from_location)
        .expect("planned: the old table is registered at its place");
    let model: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let extra: Vec<String> = old
        .arrow_schema()?
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !model.contains(&n.as_str()))
        .collect();
    if !extra.is_empty() {
        return Err(refused(
            p,
            t,
            format!(
                "moving {origin} here is refused: the old table has column(s) {} that the manifest no longer declares, and a move copies rows as they are\n  help: move first and change the schema in a later change (or declare the columns again for the move)",
                extra.join(", ")
            ),
        ));
    }
    let new_ident = engine.ident(t);
    let staging = TableIdent::new(
        new_ident.namespace.clone(),
        format!("{}{STAGING_SUFFIX}", new_ident.name),
    );
    if catalog.metadata_location(&staging).await?.is_some() {
        // An earlier move stopped before installing its copy: start over (its files are
        // unreferenced, for orphan cleanup of the table at this location).
        catalog.drop_table(&staging).await?;
    }
    let mut def = crate::translate::table_definition(t);
    def.location = Some(to_location.clone());
    let mut copy = mesh_iceberg::Table::create(catalog.clone(), staging.clone(), def).await?;
    let mut set: BTreeMap<String, String> = old.job_states().into_iter().collect();
    set.insert(MOVED_FROM_KEY.into(), from_location.clone());
    copy.set_commit_properties(CommitProperties {
        set,
        expect: BTreeMap::new(),
    });
    let ctx = engine.session()?;
    let df = ctx
        .read_table(old.table_provider(None).await?)
        .map_err(|e| mesh_iceberg::Error::DataFusion(Box::new(e)))?;
    let staged = copy.stage(df, SchemaEvolution::default()).await?;
    copy.commit_staged(staged, CommitMode::Append).await?;
    let installed = if new_ident == old_ident {
        catalog
            .swap_metadata_location(&new_ident, old.metadata_location(), copy.metadata_location())
            .await?
    } else if let Some(target) = load(engine, &new_ident).await? {
        // The empty table Terraform created for the new name.
        catalog
            .swap_metadata_location(&new_ident, target.metadata_location(), copy.metadata_location())
            .await?
    } else {
        catalog.register_table(&new_ident, copy.metadata_location()).await?;
        true
    };
    if !installed {
        catalog.drop_table(&staging).await?;
        return Err(refused(
            p,
            t,
            format!(
                "the catalog entry {new_ident} changed while its move was being copied (a job wrote to it?); nothing was moved\n  help: run the same command again"
            ),
        ));
    }
    catalog.drop_table(&staging).await?;
    if new_ident != old_ident {
        catalog.drop_table(&old_ident).await?;
    }
    delete_all(engine, &from_location).await
}

async fn move_raw(engine: &Engine, p: &Project, t: &Table, w: &Pending) -> Result<(), MoveError> {
    let to_location = w.to_location.clone().expect("a move has a destination");
    let local = w.from_location.starts_with("file://");
    if !local {
        if let Some(j) = p
            .jobs
            .iter()
            .find(|j| j.incremental.is_some() && j.inputs.contains(&t.reference()))
        {
            return Err(refused(
                p,
                t,
                format!(
                    "moving raw files on S3 is refused: a copy gets a new modification time, so incremental job `{}` would read every file again\n  help: land new files at {to_location} and retire the old table, or copy the files by hand and reset the job's bookmark (`mesh state reset`)",
                    j.name
                ),
            ));
        }
    }
    for (from_location, to_location) in raw_folders(&w.from_location, &to_location) {
        copy_folder(engine, &from_location, &to_location, local).await?;
        delete_all(engine, &from_location).await?;
    }
    Ok(())
}

/// Copies every file under `from_location` to the same relative path under `to_location`
/// (locally keeping each file's modification time).
async fn copy_folder(engine: &Engine, from_location: &str, to_location: &str, local: bool) -> Result<(), MoveError> {
    for f in &files_under(engine, from_location).await? {
        let rel = f
            .location
            .strip_prefix(from_location)
            .unwrap_or(&f.location)
            .trim_start_matches('/');
        let dest = format!("{to_location}/{rel}");
        if local {
            let (src, dst) = (
                f.location.trim_start_matches("file://"),
                dest.trim_start_matches("file://").to_string(),
            );
            let io = |what: &str, e: std::io::Error| MoveError::Io {
                what: format!("{what} {src} to {dst}"),
                source: e,
            };
            if let Some(parent) = std::path::Path::new(&dst).parent() {
                std::fs::create_dir_all(parent).map_err(|e| io("copying", e))?;
            }
            std::fs::copy(src, &dst).map_err(|e| io("copying", e))?;
            let file = std::fs::File::options()
                .write(true)
                .open(&dst)
                .map_err(|e| io("copying", e))?;
            file.set_modified(std::time::SystemTime::from(f.last_modified))
                .map_err(|e| io("keeping the modification time of", e))?;
        } else {
            let from = engine
                .stores
                .locate(&f.location)
                .map_err(|e| mesh_iceberg::Error::Io(std::io::Error::other(e)))?;
            let to = engine
                .stores
                .locate(&dest)
                .map_err(|e| mesh_iceberg::Error::Io(std::io::Error::other(e)))?;
            let store_err = |e: object_store::Error| mesh_iceberg::Error::Io(std::io::Error::other(e));
            let bytes = from
                .store
                .get(&from.path)
                .await
                .map_err(store_err)?
                .bytes()
                .await
                .map_err(store_err)?;
            to.store.put(&to.path, bytes.into()).await.map_err(store_err)?;
        }
    }
    Ok(())
}
