//! Property: any number a manifest can hold in a numeric setting is either refused by
//! validation with a message naming the field, or safe to turn into durations and dates
//! (no overflow, no NaN reaching SQL). Validation never panics.

use std::path::Path;
use std::time::{Duration, SystemTime};

use mesh_domain::load_domain;
use proptest::prelude::*;

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1e308),
        Just(-0.0),
        any::<f64>(),
        -1e6..1e6f64,
    ]
}

fn toml_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{v:?}")
    }
}

#[derive(Debug, Clone)]
struct Settings {
    retention_days: u32,
    orphan_days: u32,
    retain_last: u32,
    min_input_files: u32,
    ratio: f64,
    range_min: f64,
    range_max: f64,
    target_mb: u32,
    workers: u32,
    timeout: u32,
}

fn settings() -> impl Strategy<Value = Settings> {
    let days = prop_oneof![
        Just(0u32),
        Just(1),
        Just(36_500),
        Just(36_501),
        Just(u32::MAX),
        any::<u32>(),
        1..100u32
    ];
    (
        days.clone(),
        days,
        any::<u32>(),
        any::<u32>(),
        float(),
        float(),
        float(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i, j)| Settings {
            retention_days: a,
            orphan_days: b,
            retain_last: c,
            min_input_files: d,
            ratio: e,
            range_min: f,
            range_max: g,
            target_mb: h,
            workers: i,
            timeout: j,
        })
}

fn write(dir: &Path, s: &Settings) {
    std::fs::write(
        dir.join("domain.json"),
        r#"{"domain_name": "prop", "domain_abbr": "ab", "aws_region": "eu-west-1"}"#,
    )
    .unwrap();
    let p = dir.join("projects/proj");
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("sql/job.sql"), "SELECT 1 AS id").unwrap();
    std::fs::write(
        p.join("project.toml"),
        format!(
            r#"name = "proj"
project_slug = "cd"
owner = "o"
classification = "internal"

[[tables]]
name = "src"
layer = "raw"
columns = [{{ name = "id", type = "long" }}]

[[tables]]
name = "t"
layer = "curated"
columns = [{{ name = "id", type = "long" }}]
target_file_size_mb = {target}
[tables.optimizers]
compaction = {{ min_input_files = {mif}, min_file_size_ratio = {ratio} }}
retention = {{ snapshot_retention_days = {rd}, retain_last = {rl} }}
orphans = {{ retention_days = {od} }}

[[jobs]]
name = "j"
sql = "sql/job.sql"
inputs = ["raw.src"]
output = "curated.t"
checks = [{{ type = "range", column = "id", min = {min}, max = {max} }}]
glue = {{ workers = {workers}, timeout_minutes = {timeout} }}
"#,
            target = s.target_mb,
            mif = s.min_input_files,
            ratio = toml_float(s.ratio),
            rd = s.retention_days,
            rl = s.retain_last,
            od = s.orphan_days,
            min = toml_float(s.range_min),
            max = toml_float(s.range_max),
            workers = s.workers,
            timeout = s.timeout,
        ),
    )
    .unwrap();
}

/// What the runtime computes from the settings: durations and "now minus the window".
fn usable(days: u32) -> bool {
    Duration::from_secs(86_400)
        .checked_mul(days)
        .and_then(|w| SystemTime::now().checked_sub(w))
        .is_some()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn numeric_settings_are_refused_or_safe(s in settings()) {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &s);
        match load_domain(dir.path()) {
            Ok(d) => {
                let t = d.projects[0].tables.iter().find(|t| t.name.as_str() == "t").unwrap();
                let o = &t.iceberg().unwrap().optimizers;
                if let Some(r) = &o.retention {
                    prop_assert!((1..=36_500).contains(&r.snapshot_retention_days) && usable(r.snapshot_retention_days));
                }
                if let Some(c) = &o.orphans {
                    prop_assert!((1..=36_500).contains(&c.retention_days) && usable(c.retention_days));
                }
                prop_assert!(s.range_min.is_finite() && s.range_max.is_finite(), "a non-finite range bound passed: {s:?}");
            }
            Err(diags) => {
                let text = diags.to_string();
                prop_assert!(text.contains("project.toml"), "{text}");
                if !(1..=36_500).contains(&s.orphan_days) {
                    prop_assert!(text.contains("orphans.retention_days"), "{text}");
                }
                if !(1..=36_500).contains(&s.retention_days) {
                    prop_assert!(text.contains("retention.snapshot_retention_days"), "{text}");
                }
                if !s.range_min.is_finite() {
                    prop_assert!(text.contains("checks[0].min"), "{text}");
                }
            }
        }
    }
}
