//! Table maintenance that is safe under concurrent writers: compaction, snapshot expiry and
//! orphan-file cleanup.
//!
//! Every operation is split in two: a plan (what would be rewritten or deleted, with counts and
//! bytes; building it changes nothing, so `--dry-run` prints exactly the plan) and its
//! `execute`, which re-checks the plan against the table as it is at that moment:
//!
//! - compaction commits each file group as its own `replace` snapshot through the normal commit
//!   loop; a group whose input files a concurrent commit removed or rewrote aborts (it would
//!   otherwise resurrect deleted or updated rows), while concurrent appends only cause a rebase;
//! - expiry swaps the catalog pointer to metadata without the expired snapshots, re-planning on
//!   a lost race, and deletes only files no snapshot of the committed metadata can reach;
//! - orphan cleanup recomputes what is reachable right before deleting and only ever deletes
//!   files older than its window (never under a day unless forced), so files of in-flight writes
//!   survive.

mod compaction;
mod expire;
mod orphans;
mod reachable;

pub use compaction::{CompactionGroup, CompactionOptions, CompactionOutcome, CompactionPlan, CompactionStrategy};
pub use expire::{ExpireOptions, ExpiredSnapshot, ExpiryOutcome, ExpiryPlan};
pub use orphans::{
    FileLister, ListedFile, LocalLister, ObjectStoreLister, OrphanFile, OrphanOptions, OrphanOutcome, OrphanPlan,
    ORPHAN_RETENTION_FLOOR,
};

/// What kind of table file a planned deletion or rewrite is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A data file.
    Data,
    /// A position or equality delete file.
    Delete,
    /// A manifest (Avro).
    Manifest,
    /// A manifest list (Avro, one per snapshot).
    ManifestList,
    /// A metadata JSON file, statistics file or anything else under the table location.
    Other,
}

/// One file in a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedFile {
    /// Location as recorded in the table metadata (or as listed).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// What it is.
    pub kind: FileKind,
}

/// Canonical form of a file location, for comparing locations written by different engines:
/// `s3a://` and `s3n://` are `s3://`, `file:/p`, `file:///p` and `/p` are `file:///p`, repeated
/// slashes inside the path collapse and a trailing slash is dropped.
pub fn normalize_location(location: &str) -> String {
    let (scheme, rest) = match location.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r.to_string()),
        None => match location.strip_prefix("file:") {
            Some(r) => ("file".to_string(), r.to_string()),
            None => ("file".to_string(), location.to_string()),
        },
    };
    let scheme = match scheme.as_str() {
        "s3a" | "s3n" => "s3".to_string(),
        _ => scheme,
    };
    let mut path = String::with_capacity(rest.len());
    let mut prev_slash = false;
    for c in rest.chars() {
        if c == '/' {
            if prev_slash {
                continue;
            }
            prev_slash = true;
        } else {
            prev_slash = false;
        }
        path.push(c);
    }
    let path = path.trim_end_matches('/');
    if scheme == "file" {
        // `file://./x` is read by Iceberg's local FileIO as `/./x`: compare it the same way.
        format!("file:///{}", path.trim_start_matches('/'))
    } else {
        format!("{scheme}://{path}")
    }
}

/// Sum of the sizes of planned files.
pub(crate) fn total_bytes(files: &[PlannedFile]) -> u64 {
    files.iter().map(|f| f.bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::normalize_location as n;

    #[test]
    fn locations_normalise_across_schemes_and_slashes() {
        assert_eq!(n("s3a://b/wh/t/data/x.parquet"), "s3://b/wh/t/data/x.parquet");
        assert_eq!(n("s3n://b//wh/t/"), "s3://b/wh/t");
        assert_eq!(n("S3://b/wh"), "s3://b/wh");
        assert_eq!(n("file:/tmp/a/b"), "file:///tmp/a/b");
        assert_eq!(n("file:///tmp/a//b/"), "file:///tmp/a/b");
        assert_eq!(n("/tmp/a/b"), "file:///tmp/a/b");
        assert_eq!(n("file://tmp/a"), "file:///tmp/a");
        assert_ne!(n("s3://b/wh/orders"), n("s3://b/wh/orders_clean"));
    }
}
