//! `mesh report` in a real browser: after real runs of the example domain, headless Chromium
//! opens the page, takes a screenshot and dumps the DOM it built. The page must render with no
//! console message, load nothing from elsewhere, and show what the runs did.
//!
//! The screenshot and the page stay in `$CARGO_TARGET_TMPDIR/report/` (report.png,
//! report.html) for a person to look at.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{both, example_domain, mesh};

fn chromium() -> PathBuf {
    let path = std::env::var_os("MESH_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "MESH_CHROMIUM is not set: install Chromium (Debian: `apt-get install -y chromium`) and run scripts/test.sh, which sets it"
        )
    });
    assert!(
        path.is_file(),
        "MESH_CHROMIUM={} does not exist: install Chromium (Debian: `apt-get install -y chromium`)",
        path.display()
    );
    path
}

/// Runs headless Chromium on `page` with `args`; returns stdout after checking that it ended
/// well and that the page logged nothing to the console.
fn browse(profile: &Path, page: &Path, args: &[&str]) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            // As root (CI containers) Chromium refuses to start with its sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            // Anything the page tried to fetch from the network would fail and be logged.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {}", both(&out));
    // Chromium logs page console messages (script errors, failed loads, bad markup reported
    // by the engine) as `…:CONSOLE…`; the rest of its stderr is about the machine (D-Bus).
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page logged to the console:\n{}",
        console.join("\n")
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn the_report_renders_in_a_browser() {
    let chromium = chromium();
    let dir = example_domain();
    let root = dir.path();
    // Every pipeline of every project on sample data, twice (a history), then a maintenance run.
    let out = mesh(root, &["run", "--sample-data", "--rows", "200000"]);
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(root, &["run"]);
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(root, &["optimize"]);
    assert!(out.status.success(), "{}", both(&out));

    // The report of the first run: the one that read the sample data (the second finds the
    // incremental input already processed).
    let mut runs: Vec<String> = std::fs::read_dir(root.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 3, "{runs:?}");
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&keep).unwrap();
    let page = keep.join("report.html");
    let out = mesh(root, &["report", &runs[0], "--out", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: no script, no stylesheet or image from elsewhere.
    for bad in ["<script", "<link", "src=", "@import", "url(http"] {
        assert!(!html.contains(bad), "the page must open offline; it contains `{bad}`");
    }
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(format!(".mesh/runs/{}.json", runs[0]))).unwrap())
            .unwrap();

    let profile = tempfile::tempdir().unwrap();
    let shot = keep.join("report.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        profile.path(),
        &page,
        &["--window-size=1400,3200", &format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (1400, 3200));
    // A blank page compresses to a few kilobytes; text, tables and pictures do not.
    assert!(png.len() > 60_000, "the screenshot looks blank ({} bytes)", png.len());

    let dom = browse(profile.path(), &page, &["--dump-dom"]);
    assert!(
        dom.contains("<html"),
        "chromium dumped the DOM: {}",
        &dom[..dom.len().min(500)]
    );
    // The sections, as the browser built them.
    for part in [
        "<section id=\"lineage\"",
        "<svg class=\"lineage\"",
        "<section id=\"history\"",
        "<svg class=\"bars\"",
        "<table class=\"checks\"",
        "<table class=\"maintenance\"",
    ] {
        assert!(dom.contains(part), "the page has no `{part}`");
    }
    assert_eq!(dom.matches("<section class=\"pipeline\"").count(), 3, "three pipelines");
    // The lineage has every table of the domain (every project's manifest).
    let tables = [
        "customer_events",
        "customers",
        "sales_events",
        "daily_sales",
        "legacy_orders",
        "orders_clean",
        "orders_by_country",
    ];
    let lineage = &dom[dom.find("<svg class=\"lineage\"").unwrap()..];
    let lineage = &lineage[..lineage.find("</svg>").unwrap()];
    for t in tables {
        assert!(lineage.contains(&format!(">{t}</text>")), "lineage lacks {t}");
    }
    assert!(lineage.matches("class=\"edge\"").count() >= 4, "job arrows");

    // Every check of the run with its result; warn-level failures with their counts.
    let checks: Vec<&serde_json::Value> = record["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
        .filter_map(|s| s["metrics"]["checks"].as_array())
        .flatten()
        .collect();
    assert!(checks.len() >= 8, "{checks:?}");
    assert_eq!(
        dom.matches("<tr class=\"check ").count(),
        checks.len(),
        "one row per check"
    );
    let warn: Vec<&&serde_json::Value> = checks
        .iter()
        .filter(|c| c["passed"] == false && c["severity"] == "warn")
        .collect();
    assert!(!warn.is_empty(), "the example data has warn-level failures");
    for c in &warn {
        let name = c["name"].as_str().unwrap();
        let n = c["failing_rows"].as_u64().unwrap();
        let row = dom
            .split("<tr class=\"check warn\">")
            .skip(1)
            .find(|r| r.contains(name))
            .unwrap_or_else(|| panic!("no warn row for {name}"));
        assert!(row.contains("failed (warn"), "{row}");
        let shown = n
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            row.contains(&format!(">{shown}<")),
            "{name}: {shown} failing rows in {row}"
        );
    }
    // Quarantined rows, bytes written and snapshot ids of the jobs; no `null` anywhere.
    assert!(!dom.contains(">null<") && !dom.contains("–null"), "no null on the page");
    for s in record["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
    {
        let snap = s["metrics"]["snapshot_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("a snapshot id: {s}"));
        assert!(
            dom.contains(&format!("<code>{snap}</code>")),
            "snapshot {snap} of {}",
            s["name"]
        );
        if s["kind"] == "job" {
            assert!(s["metrics"]["bytes_written"].as_u64().unwrap() > 0, "{s}");
        }
    }
    assert!(dom.contains("rows quarantined"));
    // Readable times: UTC, no raw RFC 3339 with nanoseconds.
    assert!(dom.contains(" UTC") && !dom.contains("+00:00"));
    // The history of the first run stops at it (issue 27): the later runs are not in it.
    let history = &dom[dom.find("<section id=\"history\"").unwrap()..];
    assert!(history.contains("the last 1 run(s)"), "{}", &history[..300]);
    assert!(!history.contains(&runs[1]) && !history.contains(&runs[2]));
    // The latest run's has the two pipeline runs and the optimize run.
    let last = keep.join("report-last.html");
    let out = mesh(root, &["report", &runs[2], "--out", last.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let html = std::fs::read_to_string(&last).unwrap();
    let history = &html[html.find("<section id=\"history\"").unwrap()..];
    assert!(history.contains("the last 3 run(s)"), "{}", &history[..300]);
    assert!(history.contains(&runs[0]) && history.contains(&runs[1]));
    eprintln!(
        "screenshot: {} ({} bytes), page: {}",
        shot.display(),
        png.len(),
        page.display()
    );
    drop(chromium);
}
