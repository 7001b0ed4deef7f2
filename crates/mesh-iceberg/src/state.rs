//! Job state committed with the data: snapshot summary properties under [`STATE_PREFIX`]
//! (incremental bookmarks, time intervals done). They ride in the same snapshot as the rows they
//! describe, so data and state change in one compare-and-swap, and every snapshot this engine
//! writes carries the latest state forward (compaction and other jobs' commits keep it).
//!
//! Other writers do not carry it (Spark's `rewrite_data_files`, Glue's managed compaction), and
//! snapshot expiry with `retain_last = 1` would then drop the snapshot that holds it. So every
//! commit that writes state also moves the tag [`STATE_TAG`] to its snapshot, in the same
//! metadata commit (the Glue runner does the same in the commit that publishes its write):
//! expiry, in every engine, keeps tagged snapshots. [`job_state`] is the one rule that finds a
//! job's state, used by the engine and by mesh-core (the runner's `JobState` applies the same).

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
/// Ancestry only: job state is found with [`job_state`], which also follows [`STATE_TAG`].
pub fn summary_property(meta: &TableMetadata, key: &str) -> Option<String> {
    walk(meta, key).found
}

/// The tag on the snapshot holding the latest job state; snapshot expiry keeps tagged snapshots
/// (tags without `max-ref-age-ms` never expire), so the state outlives compactions that do not
/// carry it. meshkit and the Glue runner move it with every commit that writes state.
pub const STATE_TAG: &str = "mesh-state";

/// What the ancestry of the current snapshot says about a summary property.
struct Walk {
    found: Option<String>,
    visited: HashSet<i64>,
    /// The walk reached the first snapshot (`false`: a parent had expired).
    complete: bool,
}

fn walk(meta: &TableMetadata, key: &str) -> Walk {
    let mut w = Walk {
        found: None,
        visited: HashSet::new(),
        complete: true,
    };
    let mut cursor = meta.current_snapshot_id();
    while let Some(id) = cursor {
        let Some(snapshot) = meta.snapshot_by_id(id) else {
            w.complete = false;
            break;
        };
        if !w.visited.insert(id) {
            break;
        }
        if let Some(v) = snapshot.summary().additional_properties.get(key) {
            w.found = Some(v.clone());
            return w;
        }
        cursor = snapshot.parent_snapshot_id();
    }
    w
}

/// Why a job's state cannot be found in a table that has history (see [`job_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLost {
    /// Expired history, no snapshot tagged [`STATE_TAG`]: maintenance that did not carry the
    /// state (or a table written before the tag existed) may have dropped it.
    Expired,
    /// The tagged snapshot holds the key but is not an ancestor of the current snapshot: the
    /// table was rolled back to before the job's last commit.
    RolledBack { tagged: i64 },
}

impl std::fmt::Display for StateLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLost::Expired => write!(
                f,
                "the snapshot holding it has expired and no snapshot is tagged `{STATE_TAG}` (maintenance that does not carry job state, e.g. Glue-managed compaction or Spark's rewrite_data_files, followed by expire_snapshots)"
            ),
            StateLost::RolledBack { tagged } => write!(
                f,
                "snapshot {tagged} (tag `{STATE_TAG}`) holds it but is not in the current snapshot's history: the table was rolled back to before the job's last commit"
            ),
        }
    }
}

/// A job's state `key` in the table: the current snapshot's or its nearest ancestor's value;
/// else, once expiry has cut the history, the value on the snapshot tagged [`STATE_TAG`]. `None`
/// means the job has never committed state to this table (no snapshot, or a complete history
/// without the key, or a tag whose snapshot lacks it). A table whose history cannot tell is
/// [`StateLost`] — never a silent `None`, which would make an incremental job re-read every
/// input. The table property of the same name, set by hand, restores a lost state (`""`: start
/// over); it is read only when the snapshots cannot answer.
pub fn job_state(meta: &TableMetadata, key: &str) -> Result<Option<String>, StateLost> {
    let w = walk(meta, key);
    if w.found.is_some() {
        return Ok(w.found);
    }
    let Some(current) = meta.current_snapshot() else {
        return Ok(None);
    };
    let lost = match meta.snapshot_for_ref(STATE_TAG) {
        Some(tagged) if w.visited.contains(&tagged.snapshot_id()) => return Ok(None),
        Some(tagged) => match tagged.summary().additional_properties.get(key) {
            // The job had not committed when the tag last moved (every state commit moves it).
            None => return Ok(None),
            Some(v) if !w.complete && tagged.timestamp_ms() <= current.timestamp_ms() => return Ok(Some(v.clone())),
            Some(_) => StateLost::RolledBack {
                tagged: tagged.snapshot_id(),
            },
        },
        None if w.complete => return Ok(None),
        None => StateLost::Expired,
    };
    match meta.properties().get(key) {
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(v.clone())),
        None => Err(lost),
    }
}

/// The state properties the next snapshot inherits: every [`STATE_PREFIX`] key as
/// [`job_state`] finds it (nearest ancestor first, then the tagged snapshot).
pub(crate) fn inherited(meta: &TableMetadata) -> Vec<(String, String)> {
    let mut keys: Vec<&String> = Vec::new();
    let mut cursor = meta.current_snapshot_id();
    let mut seen = HashSet::new();
    while let Some(s) = cursor.and_then(|id| meta.snapshot_by_id(id)) {
        if !seen.insert(s.snapshot_id()) {
            break;
        }
        keys.extend(s.summary().additional_properties.keys());
        cursor = s.parent_snapshot_id();
    }
    if let Some(t) = meta.snapshot_for_ref(STATE_TAG) {
        keys.extend(t.summary().additional_properties.keys());
    }
    let keys: BTreeSet<&String> = keys.into_iter().filter(|k| k.starts_with(STATE_PREFIX)).collect();
    keys.into_iter()
        .filter_map(|k| Some((k.clone(), job_state(meta, k).ok()??)))
        .collect()
}

/// A test hook: when `MESH_TEST_EXIT_AT` names this point (`commit` or `commit#3` for the
/// third time it is reached in this process), the process exits at once with status 86, as
/// if killed there. It lets tests prove that a run killed between writing its data files and
/// committing them leaves nothing behind that the next run could double.
pub fn exit_point(point: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HITS: AtomicU32 = AtomicU32::new(0);
    // Tests only: a release binary never exits on an environment variable's say-so.
    if !cfg!(debug_assertions) {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Metadata with `snaps` as (id, parent, timestamp, state value of `k` if any), current
    /// snapshot `current`, an optional `mesh-state` tag and table properties.
    fn meta(
        snaps: &[(i64, Option<i64>, i64, Option<&str>)],
        current: i64,
        tag: Option<i64>,
        props: &[(&str, &str)],
    ) -> TableMetadata {
        let snapshots: Vec<_> = snaps
            .iter()
            .enumerate()
            .map(|(i, (id, parent, ts, v))| {
                let mut summary = json!({"operation": "append"});
                if let Some(v) = v {
                    summary["mesh.state.j.k"] = json!(v);
                }
                let mut s = json!({"snapshot-id": id, "sequence-number": i + 1, "timestamp-ms": ts,
                    "manifest-list": format!("file:///t/metadata/snap-{id}.avro"), "summary": summary, "schema-id": 0});
                if let Some(p) = parent {
                    s["parent-snapshot-id"] = json!(p);
                }
                s
            })
            .collect();
        let mut refs = json!({"main": {"snapshot-id": current, "type": "branch"}});
        if let Some(t) = tag {
            refs[STATE_TAG] = json!({"snapshot-id": t, "type": "tag"});
        }
        let properties: serde_json::Map<_, _> = props.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        serde_json::from_value(json!({
            "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1", "location": "file:///t",
            "last-sequence-number": snaps.len(), "last-updated-ms": 1_000_000, "last-column-id": 1,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": false, "type": "long"}]}],
            "current-schema-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "default-spec-id": 0,
            "last-partition-id": 999, "sort-orders": [{"order-id": 0, "fields": []}], "default-sort-order-id": 0,
            "properties": properties, "current-snapshot-id": current, "snapshots": snapshots,
            "snapshot-log": [], "metadata-log": [], "refs": refs,
        }))
        .unwrap()
    }

    const K: &str = "mesh.state.j.k";

    #[test]
    fn state_is_found_on_the_nearest_ancestor() {
        // A job commit (1), a foreign compaction without state (2), the current snapshot (3).
        let m = meta(
            &[
                (1, None, 10, Some("b1")),
                (2, Some(1), 20, None),
                (3, Some(2), 30, None),
            ],
            3,
            None,
            &[],
        );
        assert_eq!(job_state(&m, K), Ok(Some("b1".into())));
        assert_eq!(summary_property(&m, K).as_deref(), Some("b1"));
        // A complete history without the key: the job never committed here.
        assert_eq!(job_state(&m, "mesh.state.other.k"), Ok(None));
        assert_eq!(inherited(&m), vec![(K.to_string(), "b1".to_string())]);
    }

    #[test]
    fn expired_history_falls_back_to_the_tag() {
        // Expiry kept the current snapshot (3, parent 2 expired) and the tagged one (1).
        let m = meta(&[(1, None, 10, Some("b1")), (3, Some(2), 30, None)], 3, Some(1), &[]);
        assert_eq!(job_state(&m, K), Ok(Some("b1".into())));
        assert_eq!(summary_property(&m, K), None, "ancestry alone has lost it");
        assert_eq!(inherited(&m), vec![(K.to_string(), "b1".to_string())]);
        // A key the tagged snapshot lacks: that job had not committed when the tag last moved.
        assert_eq!(job_state(&m, "mesh.state.other.k"), Ok(None));
    }

    #[test]
    fn expired_history_without_a_tag_is_lost_not_a_fresh_start() {
        // What a table the runner wrote before the tag existed looks like after Spark's
        // rewrite_data_files and expire_snapshots(retain_last => 1).
        let m = meta(&[(3, Some(2), 30, None)], 3, None, &[]);
        assert_eq!(job_state(&m, K), Err(StateLost::Expired));
        assert_eq!(inherited(&m), vec![]);
        // Restored by hand as a table property; '' starts over deliberately.
        let m = meta(&[(3, Some(2), 30, None)], 3, None, &[(K, "b0")]);
        assert_eq!(job_state(&m, K), Ok(Some("b0".into())));
        let m = meta(&[(3, Some(2), 30, None)], 3, None, &[(K, "")]);
        assert_eq!(job_state(&m, K), Ok(None));
        // The property is never read while the snapshots answer.
        let m = meta(&[(1, None, 10, Some("b1"))], 1, Some(1), &[(K, "stale")]);
        assert_eq!(job_state(&m, K), Ok(Some("b1".into())));
    }

    #[test]
    fn a_rollback_past_the_tagged_state_is_lost() {
        // main rolled back to 1 (no state) after the job committed 2 (tagged).
        let m = meta(&[(1, None, 10, None), (2, Some(1), 20, Some("b2"))], 1, Some(2), &[]);
        assert_eq!(job_state(&m, K), Err(StateLost::RolledBack { tagged: 2 }));
        // ... and then expired: a tagged snapshot newer than the current one is no ancestor.
        let m = meta(&[(2, Some(1), 20, Some("b2")), (5, Some(4), 15, None)], 5, Some(2), &[]);
        assert_eq!(job_state(&m, K), Err(StateLost::RolledBack { tagged: 2 }));
        // An empty table has no state to lose.
        let empty: TableMetadata = {
            let mut m = serde_json::to_value(meta(&[(1, None, 10, None)], 1, None, &[])).unwrap();
            m.as_object_mut().unwrap().remove("current-snapshot-id");
            m["snapshots"] = json!([]);
            m["refs"] = json!({});
            serde_json::from_value(m).unwrap()
        };
        assert_eq!(job_state(&empty, K), Ok(None));
    }
}
