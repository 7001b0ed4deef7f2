//! Job state committed with the data: snapshot summary properties under [`STATE_PREFIX`]
//! (incremental bookmarks, time intervals done). They ride in the same snapshot as the rows they
//! describe, so data and state change in one compare-and-swap, and every snapshot this engine
//! writes carries the parent's state forward (compaction and other jobs' commits keep it).

use std::collections::BTreeMap;

use iceberg::spec::TableMetadata;

/// Summary properties with this prefix are carried from a snapshot to its child.
pub const STATE_PREFIX: &str = "mesh.state.";

/// Extra summary properties of the next commit of a [`crate::Table`] handle, and the values
/// the commit expects to replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitProperties {
    /// Written into the new snapshot's summary.
    pub set: BTreeMap<String, String>,
    /// Each key must still have this value (`None`: absent) in the table's latest state when
    /// the commit lands; otherwise the commit fails with [`crate::Error::Conflict`]. This is
    /// what makes a bookmark exactly-once when two runs of a job race.
    pub expect: BTreeMap<String, Option<String>>,
}

impl CommitProperties {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.expect.is_empty()
    }
}

/// The latest value of a summary property: the current snapshot's, else the nearest ancestor's
/// (snapshots written by other engines, e.g. Spark compaction, do not carry state forward).
pub fn summary_property(meta: &TableMetadata, key: &str) -> Option<String> {
    let mut cursor = meta.current_snapshot_id();
    while let Some(id) = cursor {
        let snapshot = meta.snapshot_by_id(id)?;
        if let Some(v) = snapshot.summary().additional_properties.get(key) {
            return Some(v.clone());
        }
        cursor = snapshot.parent_snapshot_id();
    }
    None
}

/// The state properties the next snapshot inherits from the current one.
pub(crate) fn inherited(meta: &TableMetadata) -> Vec<(String, String)> {
    meta.current_snapshot()
        .map(|s| {
            s.summary()
                .additional_properties
                .iter()
                .filter(|(k, _)| k.starts_with(STATE_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A test hook: when `MESH_TEST_EXIT_AT` names this point (`commit` or `commit#3` for the
/// third time it is reached in this process), the process exits at once with status 86, as
/// if killed there. It lets tests prove that a run killed between writing its data files and
/// committing them leaves nothing behind that the next run could double.
pub fn exit_point(point: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);
    let Ok(spec) = std::env::var("MESH_TEST_EXIT_AT") else {
        return;
    };
    let (name, nth) = match spec.split_once('#') {
        Some((n, k)) => (n.to_string(), k.parse::<u32>().unwrap_or(1)),
        None => (spec.clone(), 1),
    };
    if name != point {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("MESH_TEST_EXIT_AT: exiting at `{point}` (hit {nth})");
        std::process::exit(86);
    }
}
