//! `mesh table … --format text`: what a person reads. JSON keeps the raw values (epoch
//! milliseconds, partition ordinals); text shows UTC times and partition values as dates.

use mesh_core::mesh_iceberg::{DataFileInfo, HistoryEntry, PartitionFieldInfo, SnapshotInfo, TableInfo};
use serde_json::Value;

/// `2026-11-30 06:00:12.345 UTC`, or the raw number when it is out of range.
pub fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// 1.2 MiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A partition value as the transform means it: Iceberg stores `month(ts)` as months since
/// 1970-01, `day` as days since 1970-01-01, `hour` as hours, `year` as years.
pub fn partition_value(transform: &str, v: &Value) -> String {
    let Some(n) = v.as_i64() else {
        return match v {
            Value::String(s) => s.clone(),
            Value::Null => "null".into(),
            other => other.to_string(),
        };
    };
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match transform {
        "year" => (1970 + n).to_string(),
        "month" => format!("{:04}-{:02}", 1970 + n.div_euclid(12), n.rem_euclid(12) + 1),
        "day" => epoch
            .checked_add_signed(chrono::Duration::days(n))
            .map(|d| d.to_string())
            .unwrap_or_else(|| n.to_string()),
        "hour" => chrono::DateTime::from_timestamp(n * 3600, 0)
            .map(|t| t.format("%Y-%m-%dT%H").to_string())
            .unwrap_or_else(|| n.to_string()),
        _ => n.to_string(),
    }
}

pub fn show(t: &TableInfo) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<11}{v}\n"));
    line("table", t.table.clone());
    line("location", t.location.clone());
    line("metadata", t.metadata_location.clone());
    line("format", format!("v{}", t.format_version));
    line(
        "snapshot",
        match t.current_snapshot_id {
            None => "none (empty table)".into(),
            Some(id) => format!(
                "{id}: {} rows in {} data files, {}",
                t.total_records.map_or("?".into(), |n| n.to_string()),
                t.total_data_files.map_or("?".into(), |n| n.to_string()),
                t.total_files_size.map_or("?".into(), bytes),
            ),
        },
    );
    line(
        "partition",
        if t.partition_spec.is_empty() {
            "unpartitioned".into()
        } else {
            t.partition_spec
                .iter()
                .map(|p| format!("{}({})", p.transform, p.source))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    line(
        "sort order",
        if t.sort_order.is_empty() {
            "unsorted".into()
        } else {
            t.sort_order.join(", ")
        },
    );
    s.push_str(&format!("schema (id {}):\n", t.schema_id));
    let width = t.schema.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &t.schema {
        s.push_str(&format!(
            "  {:>3}  {:<width$}  {}{}\n",
            c.id,
            c.name,
            c.r#type,
            if c.required { "  not null" } else { "" }
        ));
    }
    if !t.properties.is_empty() {
        s.push_str("properties:\n");
        for (k, v) in &t.properties {
            s.push_str(&format!("  {k} = {v}\n"));
        }
    }
    s
}

/// Rows for people: the columns in the order given (JSON objects would sort them by name).
pub struct Rows {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

pub fn history(h: &[HistoryEntry]) -> Rows {
    Rows {
        headers: vec!["snapshot", "became current", "current ancestor"],
        rows: h
            .iter()
            .map(|e| {
                vec![
                    e.snapshot_id.to_string(),
                    utc(e.timestamp_ms),
                    if e.is_current_ancestor { "yes" } else { "no" }.to_string(),
                ]
            })
            .collect(),
    }
}

/// The job state a snapshot committed (`mesh.state.<job>.…` summary properties), for people:
/// intervals done and bookmarks, `; `-separated. The fingerprint is left to `mesh state show`.
pub fn job_state(summary: &std::collections::BTreeMap<String, String>) -> String {
    let mut parts: Vec<String> = summary
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(mesh_core::mesh_iceberg::STATE_PREFIX)?;
            let (job, what) = rest.split_once('.')?;
            if v.is_empty() {
                return (what != "fingerprint").then(|| format!("{job}: {what} reset"));
            }
            if what == "intervals" {
                return Some(format!("{job}: intervals {v}"));
            }
            let input = what.strip_prefix("bookmark.")?;
            Some(match mesh_core::incremental::RawBookmark::parse(v) {
                Ok(b) => format!(
                    "{job}: {input} read (files before {}{})",
                    utc(b.before_ms),
                    match b.files.len() {
                        0 => String::new(),
                        n => format!(", {n} listed"),
                    }
                ),
                Err(_) => format!("{job}: {input} read to snapshot {v}"),
            })
        })
        .collect();
    parts.sort();
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join("; ")
    }
}

pub fn snapshots(s: &[SnapshotInfo]) -> Rows {
    let get = |x: &SnapshotInfo, k: &str| x.summary.get(k).cloned().unwrap_or_else(|| "–".into());
    Rows {
        headers: vec![
            "snapshot",
            "committed",
            "operation",
            "added rows",
            "deleted rows",
            "total rows",
            "files",
            "parent",
            "job state",
        ],
        rows: s
            .iter()
            .map(|x| {
                vec![
                    x.snapshot_id.to_string(),
                    utc(x.timestamp_ms),
                    x.operation.clone(),
                    get(x, "added-records"),
                    get(x, "deleted-records"),
                    get(x, "total-records"),
                    get(x, "total-data-files"),
                    x.parent_id.map_or("–".into(), |p| p.to_string()),
                    job_state(&x.summary),
                ]
            })
            .collect(),
    }
}

pub fn files(f: &[DataFileInfo], spec: &[PartitionFieldInfo]) -> Rows {
    Rows {
        // The path last: it is long, and the columns before it stay aligned.
        headers: vec!["partition", "rows", "size", "snapshot", "path"],
        rows: f
            .iter()
            .map(|d| {
                let partition: Vec<String> = d
                    .partition
                    .iter()
                    .map(|(name, v)| {
                        let transform = spec
                            .iter()
                            .find(|p| &p.name == name)
                            .map(|p| p.transform.as_str())
                            .unwrap_or("identity");
                        format!("{name}={}", partition_value(transform, v))
                    })
                    .collect();
                vec![
                    partition.join(", "),
                    d.record_count.to_string(),
                    bytes(d.file_size_in_bytes),
                    d.added_snapshot_id.to_string(),
                    d.path.clone(),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn partition_ordinals_read_as_dates() {
        assert_eq!(partition_value("month", &json!(682)), "2026-11");
        assert_eq!(partition_value("month", &json!(0)), "1970-01");
        assert_eq!(partition_value("month", &json!(-1)), "1969-12");
        assert_eq!(partition_value("day", &json!(20787)), "2026-11-30");
        assert_eq!(partition_value("hour", &json!(1)), "1970-01-01T01");
        assert_eq!(partition_value("year", &json!(56)), "2026");
        assert_eq!(partition_value("identity", &json!("EUR")), "EUR");
        assert_eq!(partition_value("bucket[16]", &json!(3)), "3");
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }

    #[test]
    fn job_state_reads_as_intervals_and_bookmarks() {
        let summary: std::collections::BTreeMap<String, String> = [
            ("added-records", "3"),
            ("mesh.state.daily.intervals", "2026-11-01/2026-11-02"),
            ("mesh.state.daily.fingerprint", "sql:1"),
            (
                "mesh.state.latest.bookmark.raw.events",
                r#"{"before_ms":0,"files":[{"path":"a.csv","size":1,"modified_ms":5}]}"#,
            ),
            ("mesh.state.copy.bookmark.refined.events", "42"),
            ("mesh.state.old.intervals", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            job_state(&summary),
            "copy: refined.events read to snapshot 42; daily: intervals 2026-11-01/2026-11-02; \
             latest: raw.events read (files before 1970-01-01 00:00:00.000 UTC, 1 listed); old: intervals reset"
        );
        assert_eq!(job_state(&Default::default()), "–");
    }
}
