//! `mesh report`: one self-contained HTML page per run (no scripts, no external files, so it
//! opens offline): what every step did with every check's result, the table-level lineage of
//! the whole domain drawn from the manifests, and each table's rows and files over the last
//! runs. Every picture is SVG written here.

use std::collections::BTreeMap;
use std::fmt::Write;

use mesh_domain::{Domain, Layer, Severity};

use crate::job::JobReport;
use crate::optimize::OptimizeMetrics;
use crate::record::{PipelineRecord, RunRecord, StepKind, StepRecord, StepStatus};

/// How many runs the per-table history shows.
pub const HISTORY_RUNS: usize = 10;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `2026-12-01 02:52:00 UTC` from an RFC 3339 time (as written, when it does not parse).
fn when(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// `850 ms`, `4.2 s`, `3 min 05 s`.
fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "–".into();
    }
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let s = secs.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `722.5 KB` (binary units, as `mesh optimize` prints them).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn snapshot(id: Option<i64>) -> String {
    id.map(|i| i.to_string()).unwrap_or_else(|| "none".into())
}

fn color(status: StepStatus) -> (&'static str, &'static str) {
    match status {
        StepStatus::Succeeded => ("#e6f4ea", "#1e7e34"),
        StepStatus::Failed => ("#fde8e8", "#b91c1c"),
        StepStatus::Skipped => ("#f1f1f1", "#6b7280"),
    }
}

/// An arrow head for one SVG; ids differ per picture so the page has no duplicate ids.
fn arrow_marker(id: &str) -> String {
    format!(
        r##"<defs><marker id="{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##
    )
}

/// Depth of every step: 0 for roots, else one more than its deepest dependency.
fn depths(p: &PipelineRecord) -> BTreeMap<&str, usize> {
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    // Steps are recorded dependencies-first, so one pass suffices.
    for s in &p.steps {
        let d = s
            .depends_on
            .iter()
            .filter_map(|d| depth.get(d.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(s.name.as_str(), d);
    }
    depth
}

fn dag_svg(p: &PipelineRecord, n: usize) -> String {
    const W: usize = 190;
    const H: usize = 54;
    const GAP_X: usize = 60;
    const GAP_Y: usize = 20;
    let depth = depths(p);
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pos: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &p.steps {
        let col = depth[s.name.as_str()];
        let row = rows.entry(col).or_insert(0);
        pos.insert(s.name.as_str(), (10 + col * (W + GAP_X), 10 + *row * (H + GAP_Y)));
        *row += 1;
    }
    let width = 20 + (rows.len().max(1)) * (W + GAP_X);
    let height = 20 + rows.values().max().copied().unwrap_or(1) * (H + GAP_Y);
    let marker = format!("arrow-dag-{n}");
    let mut svg = format!(
        r##"<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="pipeline {}">{}"##,
        esc(&p.pipeline),
        arrow_marker(&marker)
    );
    for s in &p.steps {
        let (x2, y2) = pos[s.name.as_str()];
        for d in &s.depends_on {
            if let Some((x1, y1)) = pos.get(d.as_str()) {
                let _ = write!(
                    svg,
                    r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#555" stroke-width="1.5" marker-end="url(#{marker})"/>"##,
                    x1 + W,
                    y1 + H / 2,
                    x2,
                    y2 + H / 2
                );
            }
        }
    }
    for s in &p.steps {
        let (x, y) = pos[s.name.as_str()];
        let (fill, stroke) = color(s.status);
        let _ = write!(
            svg,
            r##"<g class="step {status}"><title>{name}: {status}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="2"/><text x="{tx}" y="{ty1}" font-size="13" font-weight="600" fill="#111">{name}</text><text x="{tx}" y="{ty2}" font-size="11" fill="{stroke}">{status} · {secs}</text></g>"##,
            status = s.status,
            name = esc(&s.name),
            tx = x + 10,
            ty1 = y + 22,
            ty2 = y + 40,
            secs = duration(s.seconds),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The table a step writes: a job's output (`… → curated.daily_sales`), an optimize step's table.
fn written_table(s: &StepRecord) -> &str {
    s.target.rsplit(" → ").next().unwrap_or(&s.target)
}

/// Lineage of the whole domain from its manifests: every table of every project, placed by
/// layer (raw → refined → curated), an arrow per job input. Tables this run wrote are
/// coloured by how their step ended. Across the domain's boundary (dashed boxes): on the left
/// the other domains' products a project consumes (`f01.daily_sales@1`), an arrow into the
/// table of each job that reads one, coloured by its freshness when this run read it; on the
/// right a box per domain that reads the project's products, an arrow from each product's table.
fn lineage_svg(domain: &Domain, run: &RunRecord) -> String {
    const W: usize = 200;
    const H: usize = 46;
    const GAP_X: usize = 90;
    const GAP_Y: usize = 14;
    const LANE_LABEL: usize = 24;
    const LEFT: usize = 10;
    // What this run did to each (project, table).
    let mut written: BTreeMap<(&str, &str), &StepRecord> = BTreeMap::new();
    let mut quarantined: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for p in &run.pipelines {
        for s in p.steps.iter().filter(|s| s.kind == StepKind::Job) {
            written.insert((p.project.as_str(), written_table(s)), s);
            if let Some(j) = s.metrics.job().filter(|j| j.rows_rejected > 0) {
                // The quarantine belongs to the raw input the bad rows came from.
                for input in s.target.split(" → ").next().unwrap_or_default().split(", ") {
                    if input.starts_with("raw.") {
                        *quarantined.entry((p.project.as_str(), input.to_string())).or_default() += j.rows_rejected;
                    }
                }
            }
        }
    }
    // The freshness checks of the products this run read, by (project, `f01.daily_sales@1`).
    let mut freshness: BTreeMap<(&str, String), &crate::checks::CheckOutcome> = BTreeMap::new();
    for p in &run.pipelines {
        for c in p.steps.iter().filter_map(|s| s.metrics.job()).flat_map(|j| &j.checks) {
            if let Some(f) = &c.freshness {
                let worst = freshness.entry((p.project.as_str(), f.product.clone())).or_insert(c);
                if !c.passed {
                    *worst = c;
                }
            }
        }
    }
    // Columns: other domains' products (when any is consumed), the layers, consumer domains
    // (when any product has one).
    let external = usize::from(domain.projects.iter().any(|p| !p.consumes.is_empty()));
    let consumers_col = domain
        .products()
        .any(|(_, p, _)| !p.consumers.is_empty())
        .then_some(external + 3);
    let columns = external + 3 + usize::from(consumers_col.is_some());
    let col = |l: Layer| {
        external
            + match l {
                Layer::Raw => 0,
                Layer::Refined => 1,
                Layer::Curated => 2,
            }
    };
    let x_of = |c: usize| LEFT + c * (W + GAP_X);
    // The consumer domains of each project's products, each once.
    let consumer_domains = |p: &mesh_domain::Project| {
        let mut out: Vec<String> = Vec::new();
        for c in p.products.iter().flat_map(|pr| &pr.consumers) {
            if !out.contains(&c.domain.to_string()) {
                out.push(c.domain.to_string());
            }
        }
        out
    };
    // Other domains' products are keyed `f01.daily_sales@1`, consumer domains `domain m02`:
    // neither can be a table's `layer.name`.
    let mut pos: BTreeMap<(&str, String), (usize, usize)> = BTreeMap::new();
    let mut lanes = Vec::new();
    let mut y = 34;
    for p in &domain.projects {
        let mut per_layer = [0usize; 3];
        let top = y + LANE_LABEL;
        let row_y = |row: usize| top + row * (H + GAP_Y);
        for t in &p.tables {
            let c = col(t.layer);
            pos.insert(
                (p.name.as_str(), t.reference().to_string()),
                (x_of(c), row_y(per_layer[c - external])),
            );
            per_layer[c - external] += 1;
        }
        for (i, c) in p.consumes.iter().enumerate() {
            pos.insert((p.name.as_str(), c.to_string()), (x_of(0), row_y(i)));
        }
        let consumers = consumer_domains(p);
        if let Some(cc) = consumers_col {
            for (i, d) in consumers.iter().enumerate() {
                pos.insert((p.name.as_str(), format!("domain {d}")), (x_of(cc), row_y(i)));
            }
        }
        let rows = per_layer
            .iter()
            .copied()
            .chain([p.consumes.len(), consumers.len()])
            .max()
            .unwrap_or(0)
            .max(1);
        let height = LANE_LABEL + rows * (H + GAP_Y) + 6;
        lanes.push((p, y, height));
        y += height + 10;
    }
    let width = LEFT * 2 + columns * W + (columns - 1) * GAP_X;
    let height = y + 4;
    let marker = "arrow-lineage";
    let mut svg = format!(
        r##"<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="table lineage of domain {}">{}"##,
        esc(&domain.name),
        arrow_marker(marker)
    );
    let mut headers: Vec<(usize, &str)> = Layer::ALL.iter().map(|&l| (col(l), l.as_str())).collect();
    if external == 1 {
        headers.push((0, "other domains' products"));
    }
    if let Some(cc) = consumers_col {
        headers.push((cc, "consumer domains"));
    }
    for (c, label) in headers {
        let _ = write!(
            svg,
            r##"<text x="{}" y="20" font-size="13" font-weight="700" fill="#374151">{}</text>"##,
            x_of(c),
            label
        );
    }
    for (p, top, h) in &lanes {
        let _ = write!(
            svg,
            r##"<g class="lane"><rect x="2" y="{top}" width="{w}" height="{h}" rx="6" fill="#fafafa" stroke="#e5e7eb"/><text x="{LEFT}" y="{ty}" font-size="12" font-weight="600" fill="#6b7280">project {name}</text></g>"##,
            w = width - 4,
            ty = top + 16,
            name = esc(p.name.as_str()),
        );
    }
    // An arrow from the right side of the box at `from` to the left side of the box at `to`.
    let arrow = |svg: &mut String, class: &str, (x1, y1): (usize, usize), (x2, y2): (usize, usize), title: String| {
        let (sx, sy, ty) = (x1 + W, y1 + H / 2, y2 + H / 2);
        // Same column: a loop out to the right, so the arrow does not cross the box.
        let d = if x1 == x2 {
            format!("M{sx},{sy} C{},{sy} {},{ty} {sx},{ty}", sx + 50, sx + 50)
        } else {
            let mid = (sx + x2) / 2;
            format!("M{sx},{sy} C{mid},{sy} {mid},{ty} {x2},{ty}")
        };
        let _ = write!(
            svg,
            r##"<path class="{class}" d="{d}" fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#{marker})"><title>{}</title></path>"##,
            esc(&title)
        );
    };
    for p in &domain.projects {
        for j in &p.jobs {
            let Some(&to) = pos.get(&(p.name.as_str(), j.output.to_string())) else {
                continue;
            };
            for input in &j.inputs {
                let Some(&from) = pos.get(&(p.name.as_str(), input.to_string())) else {
                    continue;
                };
                arrow(
                    &mut svg,
                    "edge",
                    from,
                    to,
                    format!("job {}: {input} → {}", j.name, j.output),
                );
            }
            for input in &j.products {
                let Some(c) = p.consumed(input) else { continue };
                let Some(&from) = pos.get(&(p.name.as_str(), c.to_string())) else {
                    continue;
                };
                arrow(
                    &mut svg,
                    "edge external",
                    from,
                    to,
                    format!("job {}: {c} (domain {}) → {}", j.name, c.producer, j.output),
                );
            }
        }
        for pr in &p.products {
            let Some(&from) = pos.get(&(p.name.as_str(), pr.table.to_string())) else {
                continue;
            };
            for c in &pr.consumers {
                let Some(&to) = pos.get(&(p.name.as_str(), format!("domain {}", c.domain))) else {
                    continue;
                };
                arrow(
                    &mut svg,
                    "edge external",
                    from,
                    to,
                    format!(
                        "product {}.{}@{} → domain {}",
                        domain.abbr, pr.name, pr.version, c.domain
                    ),
                );
            }
        }
    }
    for p in &domain.projects {
        for t in &p.tables {
            let reference = t.reference().to_string();
            let (x, y) = pos[&(p.name.as_str(), reference.clone())];
            let step = written.get(&(p.name.as_str(), reference.as_str()));
            let (fill, stroke, note) = match step {
                Some(s) => {
                    let (fill, stroke) = color(s.status);
                    let note = match s.metrics.job() {
                        Some(j) => format!("{} rows written", count(j.rows_written)),
                        None => s.status.to_string(),
                    };
                    (fill, stroke, note)
                }
                None => match quarantined.get(&(p.name.as_str(), reference.clone())) {
                    Some(n) => ("#fff7ed", "#b45309", format!("{} rows quarantined", count(*n))),
                    None => ("#ffffff", "#9ca3af", "not written by this run".into()),
                },
            };
            let _ = write!(
                svg,
                r##"<g class="table"><title>{project}: {reference}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/><text x="{tx}" y="{ty1}" font-size="12" font-weight="600" fill="#111">{name}</text><text x="{tx}" y="{ty2}" font-size="10.5" fill="{stroke}">{note}</text></g>"##,
                project = esc(p.name.as_str()),
                reference = esc(&reference),
                name = esc(t.name.as_str()),
                note = esc(&note),
                tx = x + 8,
                ty1 = y + 19,
                ty2 = y + 36,
            );
        }
        // A box across the domain's boundary: dashed, labelled with the other domain.
        let external_box = |svg: &mut String,
                            class: &str,
                            (x, y): (usize, usize),
                            title: String,
                            label: String,
                            (fill, stroke, note): (&str, &str, String)| {
            let _ = write!(
                svg,
                r##"<g class="{class}"><title>{title}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5" stroke-dasharray="5 3"/><text x="{tx}" y="{ty1}" font-size="12" font-weight="600" fill="#111">{label}</text><text x="{tx}" y="{ty2}" font-size="10.5" fill="{stroke}">{note}</text></g>"##,
                title = esc(&title),
                label = esc(&label),
                note = esc(&note),
                tx = x + 8,
                ty1 = y + 19,
                ty2 = y + 36,
            );
        };
        for c in &p.consumes {
            let at = pos[&(p.name.as_str(), c.to_string())];
            let look = match freshness.get(&(p.name.as_str(), c.to_string())) {
                Some(check) => {
                    let f = check.freshness.as_ref().expect("a freshness check");
                    let age = mesh_domain::product::age_text(f.age_seconds);
                    if check.passed {
                        let (fill, stroke) = color(StepStatus::Succeeded);
                        (fill, stroke, format!("read, {age} old (promise {})", f.promise))
                    } else {
                        let (fill, stroke) = color(StepStatus::Failed);
                        (fill, stroke, format!("STALE: {age} old (promise {})", f.promise))
                    }
                }
                None => ("#ffffff", "#9ca3af", "not read by this run".into()),
            };
            external_box(
                &mut svg,
                "external product",
                at,
                format!("{}: product {c} of domain {}", p.name, c.producer),
                c.to_string(),
                look,
            );
        }
        for d in consumer_domains(p) {
            let Some(&at) = pos.get(&(p.name.as_str(), format!("domain {d}"))) else {
                continue;
            };
            let reads: Vec<String> = p
                .products
                .iter()
                .filter(|pr| pr.consumers.iter().any(|c| c.domain.as_str() == d))
                .map(|pr| format!("{}@{}", pr.name, pr.version))
                .collect();
            external_box(
                &mut svg,
                "external consumer",
                at,
                format!("{}: domain {d} reads {}", p.name, reads.join(", ")),
                format!("domain {d}"),
                ("#f5f3ff", "#6d28d9", format!("reads {}", reads.join(", "))),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The data products of the run: those of other domains its jobs read, each with the snapshot
/// read, its commit time, its age at the run's time and the producer's promise (a stale one is
/// a failed check: the job stopped), and the domain's own products with their consumers.
fn products_section(html: &mut String, domain: &Domain, run: &RunRecord) {
    let mut reads = Vec::new();
    for p in &run.pipelines {
        for s in &p.steps {
            let Some(j) = s.metrics.job() else { continue };
            for r in &j.products_read {
                let name = crate::checks::freshness_check_name(&r.product, r.version);
                reads.push((s, r, j.checks.iter().find(|c| c.name == name)));
            }
        }
    }
    let published: Vec<_> = domain.products().collect();
    if reads.is_empty() && published.is_empty() {
        return;
    }
    html.push_str(r#"<section id="products"><h2>Data products</h2>"#);
    if !reads.is_empty() {
        html.push_str(r#"<h3>Read from other domains</h3><p class="note">Each product a job read: the snapshot, when the producer committed it, and its age at the run's time against the producer's freshness promise. A stale product fails the job's freshness check: the job stops before its query and commits nothing.</p><table class="products-read"><thead><tr><th>step</th><th>product</th><th>producer domain</th><th>snapshot</th><th>committed</th><th class="num">age at the run</th><th>promise</th><th>freshness</th></tr></thead><tbody>"#);
        for (s, r, check) in reads {
            let (class, verdict, age) = match check {
                Some(c) => (
                    if c.passed { "fresh" } else { "stale" },
                    if c.passed { "fresh" } else { "STALE (nothing committed)" },
                    c.freshness
                        .as_ref()
                        .map(|f| mesh_domain::product::age_text(f.age_seconds))
                        .unwrap_or_else(|| "–".into()),
                ),
                None => ("", "not checked", "–".into()),
            };
            let _ = write!(
                html,
                r#"<tr class="product {class}"><td>{}</td><td><code>{}@{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td class="num">{age}</td><td>{}</td><td class="result">{verdict}</td></tr>"#,
                esc(&s.name),
                esc(&r.product),
                r.version,
                esc(r.product.split('.').next().unwrap_or_default()),
                r.snapshot_id,
                esc(&crate::checks::utc_ms(r.committed_at_ms)),
                esc(&r.freshness),
            );
        }
        html.push_str("</tbody></table>");
    }
    if !published.is_empty() {
        html.push_str(r#"<h3>Published by this domain</h3><table class="products-published"><thead><tr><th>product</th><th>table</th><th>promise</th><th>consumer domains</th></tr></thead><tbody>"#);
        for (project, product, table) in published {
            let consumers: Vec<String> = product.consumers.iter().map(|c| esc(&c.to_string())).collect();
            let _ = write!(
                html,
                r#"<tr class="published"><td><code>{}.{}@{}</code></td><td>{} · {}</td><td>within {}</td><td>{}</td></tr>"#,
                esc(domain.abbr.as_str()),
                esc(product.name.as_str()),
                product.version,
                esc(project.name.as_str()),
                esc(&table.reference().to_string()),
                product.freshness,
                if consumers.is_empty() {
                    "none yet".into()
                } else {
                    consumers.join("; ")
                },
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
}

fn check_result(passed: bool, severity: Severity) -> (&'static str, &'static str) {
    match (passed, severity) {
        (true, _) => ("passed", "ok"),
        (false, Severity::Warn) => ("failed (warn: written anyway)", "warn"),
        (false, Severity::Error) => ("FAILED (nothing committed)", "bad"),
    }
}

fn steps_table(html: &mut String, p: &PipelineRecord) {
    html.push_str(r#"<table class="steps"><thead><tr><th>step</th><th>reads → writes</th><th>status</th><th class="num">attempts</th><th class="num">time</th><th class="num">rows read</th><th class="num">rows written</th><th class="num">quarantined</th><th class="num">files +/−</th><th class="num">bytes written</th><th>snapshot</th><th>checks</th><th>detail</th></tr></thead><tbody>"#);
    for s in &p.steps {
        let cells = match (s.metrics.job(), s.metrics.optimize()) {
            // A job that failed its checks: only their results are known.
            (Some(j), _) if s.status != StepStatus::Succeeded => {
                let mut cells = vec!["–".to_string(); 6];
                cells.extend(job_cells(j).pop());
                cells
            }
            (Some(j), _) => job_cells(j),
            (_, Some(o)) => optimize_cells(o),
            _ => vec!["–".to_string(); 7],
        };
        let _ = write!(
            html,
            r#"<tr class="{status}"><td>{}</td><td>{}</td><td class="status">{status}</td><td class="num">{}</td><td class="num">{}</td>"#,
            esc(&s.name),
            esc(&s.target),
            s.attempts,
            duration(s.seconds),
            status = s.status,
        );
        for (i, c) in cells.iter().enumerate() {
            let class = if i < 5 { "num" } else { "" };
            let _ = write!(html, r#"<td class="{class}">{c}</td>"#);
        }
        let _ = write!(
            html,
            r#"<td class="err">{}</td></tr>"#,
            esc(s.error.as_deref().unwrap_or(""))
        );
    }
    html.push_str("</tbody></table>");
}

/// rows read, rows written, quarantined, files, bytes written, snapshot, checks, (escaped).
fn job_cells(j: &JobReport) -> Vec<String> {
    let failed_warn = j.checks.iter().filter(|c| !c.passed).count();
    let checks = if j.checks.is_empty() {
        "none".to_string()
    } else if failed_warn == 0 {
        format!("{} passed", j.checks.len())
    } else {
        format!(
            r#"{} passed, <span class="warn">{failed_warn} failed</span>"#,
            j.checks.len() - failed_warn
        )
    };
    vec![
        count(j.rows_read),
        count(j.rows_written),
        if j.rows_rejected > 0 {
            format!(r#"<span class="warn">{}</span>"#, count(j.rows_rejected))
        } else {
            "0".into()
        },
        format!("+{} / −{}", j.files_added, j.files_removed),
        bytes(j.bytes_written),
        match j.snapshot_id {
            Some(id) => format!("<code>{id}</code>"),
            None => "no commit".into(),
        },
        checks,
    ]
}

fn optimize_cells(o: &OptimizeMetrics) -> Vec<String> {
    let (files, written) = match &o.compacted {
        Some(c) => (
            format!("{} → {}", c.files_before, c.files_after),
            format!("{} → {}", bytes(c.bytes_before), bytes(c.bytes_after)),
        ),
        None => ("–".into(), "–".into()),
    };
    vec![
        "–".into(),
        "–".into(),
        "–".into(),
        files,
        written,
        match (o.snapshot_id, &o.skipped) {
            (Some(id), _) => format!("<code>{id}</code>"),
            (None, Some(why)) => esc(why),
            (None, None) => "none".into(),
        },
        "–".into(),
    ]
}

fn checks_table(html: &mut String, p: &PipelineRecord) {
    let rows: Vec<(&StepRecord, &crate::checks::CheckOutcome)> = p
        .steps
        .iter()
        .filter_map(|s| s.metrics.job().map(|j| (s, j)))
        .flat_map(|(s, j)| j.checks.iter().map(move |c| (s, c)))
        .collect();
    if rows.is_empty() {
        return;
    }
    html.push_str(r#"<h3>Checks</h3><table class="checks"><thead><tr><th>step</th><th>check</th><th>type</th><th>severity</th><th>result</th><th class="num">failing rows</th><th>detail, query and failing rows</th></tr></thead><tbody>"#);
    for (s, c) in rows {
        let (result, class) = check_result(c.passed, c.severity);
        let severity = match c.severity {
            Severity::Error => "error",
            Severity::Warn => "warn",
        };
        let _ = write!(
            html,
            r#"<tr class="check {class}"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{severity}</td><td class="result">{result}</td><td class="num">{}</td><td>{}{}{}</td></tr>"#,
            esc(&s.name),
            esc(&c.name),
            esc(&c.check),
            count(c.failing_rows),
            esc(&c.detail),
            if c.sql.is_empty() {
                String::new()
            } else {
                format!(r#"<pre class="sql">{}</pre>"#, esc(&c.sql))
            },
            sample_table(c),
        );
    }
    html.push_str("</tbody></table>");
}

/// The first failing rows of a check (key and checked columns), escaped; empty if none.
fn sample_table(c: &crate::checks::CheckOutcome) -> String {
    if c.sample.is_empty() {
        return String::new();
    }
    let mut t = String::from(r#"<table class="sample"><thead><tr>"#);
    for col in &c.sample_columns {
        let _ = write!(t, "<th>{}</th>", esc(col));
    }
    t.push_str("</tr></thead><tbody>");
    for row in &c.sample {
        t.push_str("<tr>");
        for v in row {
            let _ = write!(t, "<td>{}</td>", esc(v));
        }
        t.push_str("</tr>");
    }
    let _ = write!(
        t,
        r#"</tbody></table><span class="note">first {} of {} failing row(s); the kept ones are in <code>&lt;table&gt;_check_failures</code> (mesh sql)</span>"#,
        c.sample.len(),
        count(c.failing_rows)
    );
    t
}

fn maintenance_table(html: &mut String, p: &PipelineRecord) {
    let rows: Vec<(&StepRecord, &OptimizeMetrics)> = p
        .steps
        .iter()
        .filter_map(|s| s.metrics.optimize().map(|o| (s, o)))
        .collect();
    if rows.is_empty() {
        return;
    }
    html.push_str(r#"<h3>Maintenance</h3><table class="maintenance"><thead><tr><th>step</th><th>table</th><th>compaction</th><th>snapshot expiry</th><th>orphan files</th><th>snapshot after</th></tr></thead><tbody>"#);
    for (s, o) in rows {
        let compaction = match (&o.compacted, o.compaction, &o.skipped) {
            (_, _, Some(why)) => format!("skipped: {}", esc(why)),
            (Some(c), _, _) => format!(
                "{} group(s): {} file(s) rewritten; files {} → {}, {} → {}",
                c.compaction_groups,
                c.files_compacted,
                c.files_before,
                c.files_after,
                bytes(c.bytes_before),
                bytes(c.bytes_after)
            ),
            (None, Some(crate::optimize::NotRun::Disabled), _) => "disabled in the manifest".into(),
            (None, _, _) => "not run".into(),
        };
        let expiry = o
            .retention
            .as_ref()
            .map(|r| {
                format!(
                    "{} snapshot(s), {} file(s), {}",
                    r.snapshots_expired,
                    r.expired_files,
                    bytes(r.expired_bytes)
                )
            })
            .unwrap_or_else(|| "not run".into());
        let orphans = o
            .orphans
            .as_ref()
            .map(|r| format!("{} file(s), {} deleted", r.orphan_files, bytes(r.orphan_bytes)))
            .unwrap_or_else(|| "not run".into());
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td>{}</td><td>{compaction}</td><td>{expiry}</td><td>{orphans}</td><td><code>{}</code></td></tr>"#,
            esc(&s.name),
            esc(&s.target),
            snapshot(o.snapshot_id),
        );
    }
    html.push_str("</tbody></table>");
}

/// One run's figures for a table.
struct Point<'a> {
    run: &'a RunRecord,
    step: &'a StepRecord,
    rows: Option<u64>,
    files: Option<u64>,
}

/// Bars of one series (a run per bar, oldest first), its values written on top.
fn bars_svg(label: &str, values: &[Option<u64>], current: Option<usize>) -> String {
    const BAR: usize = 34;
    const GAP: usize = 8;
    const TOP: usize = 30;
    const HEIGHT: usize = 60;
    let width = 10 + values.len().max(1) * (BAR + GAP) + 10;
    let total = TOP + HEIGHT + 8;
    let max = values.iter().flatten().copied().max().unwrap_or(0).max(1);
    let mut svg = format!(
        r##"<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" viewBox="0 0 {width} {total}" role="img" aria-label="{l}"><text x="4" y="12" font-size="11" fill="#374151">{l}</text>"##,
        l = esc(label)
    );
    for (i, v) in values.iter().enumerate() {
        let x = 10 + i * (BAR + GAP);
        let fill = if Some(i) == current { "#2563eb" } else { "#93c5fd" };
        match v {
            Some(v) => {
                let h = ((*v as f64 / max as f64) * HEIGHT as f64).round().max(1.0) as usize;
                let _ = write!(
                    svg,
                    r##"<rect x="{x}" y="{}" width="{BAR}" height="{h}" fill="{fill}"><title>{}</title></rect><text x="{}" y="{}" font-size="9" text-anchor="middle" fill="#111">{}</text>"##,
                    TOP + HEIGHT - h,
                    count(*v),
                    x + BAR / 2,
                    TOP + HEIGHT - h - 3,
                    short(*v)
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<text x="{}" y="{}" font-size="9" text-anchor="middle" fill="#9ca3af">n/a</text>"##,
                    x + BAR / 2,
                    TOP + HEIGHT - 3
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// `1.2k`, `3.4M`: bar labels stay narrower than the bar.
fn short(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

fn history_section(html: &mut String, current: &RunRecord, history: &[RunRecord], unreadable: usize) {
    let mut tables: BTreeMap<(String, String), Vec<Point>> = BTreeMap::new();
    for run in history {
        for p in &run.pipelines {
            for s in &p.steps {
                let (rows, files) = match (s.metrics.job(), s.metrics.optimize()) {
                    (Some(j), _) => (j.table_rows, j.table_files),
                    (_, Some(o)) => (
                        o.table_rows,
                        o.table_files.or(o.compacted.as_ref().map(|c| c.files_after)),
                    ),
                    _ => (None, None),
                };
                tables
                    .entry((p.project.clone(), written_table(s).to_string()))
                    .or_default()
                    .push(Point {
                        run,
                        step: s,
                        rows,
                        files,
                    });
            }
        }
    }
    let _ = write!(
        html,
        r#"<section id="history"><h2>Tables over the last {} run(s)</h2><p class="note">Rows and data files of each table after each run that wrote or maintained it (from the records in <code>.mesh/runs</code>; this run in dark blue){}.</p>"#,
        history.len(),
        if unreadable > 0 {
            format!("; {unreadable} record(s) could not be read and are left out")
        } else {
            String::new()
        }
    );
    if tables.is_empty() {
        html.push_str("<p>No run wrote a table yet.</p>");
    }
    for ((project, table), points) in &tables {
        let current_index = points.iter().position(|p| p.run.run_id == current.run_id);
        let _ = write!(
            html,
            r#"<div class="table-history"><h3>{} · {}</h3><div class="charts">{}{}</div><table><thead><tr><th>run</th><th>started</th><th>step</th><th>status</th><th class="num">rows written</th><th class="num">table rows</th><th class="num">table files</th><th class="num">bytes written</th><th>snapshot</th></tr></thead><tbody>"#,
            esc(project),
            esc(table),
            bars_svg(
                "table rows",
                &points.iter().map(|p| p.rows).collect::<Vec<_>>(),
                current_index
            ),
            bars_svg(
                "data files",
                &points.iter().map(|p| p.files).collect::<Vec<_>>(),
                current_index
            ),
        );
        for p in points {
            let (written, bytes_written, snap) = match (p.step.metrics.job(), p.step.metrics.optimize()) {
                (Some(j), _) => (
                    count(j.rows_written),
                    bytes(j.bytes_written),
                    j.snapshot_id
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "no commit".into()),
                ),
                (_, Some(o)) => ("–".into(), "–".into(), snapshot(o.snapshot_id)),
                _ => ("–".into(), "–".into(), "–".into()),
            };
            let opt = |v: Option<u64>| v.map(count).unwrap_or_else(|| "–".into());
            let _ = write!(
                html,
                r#"<tr class="{}"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class="num">{written}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{bytes_written}</td><td><code>{snap}</code></td></tr>"#,
                if p.run.run_id == current.run_id { "current" } else { "" },
                esc(&p.run.run_id),
                when(&p.run.started_at),
                esc(&p.step.name),
                p.step.status,
                opt(p.rows),
                opt(p.files),
            );
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str("</section>");
}

/// The report of `run`. `history` holds the last runs (oldest first, `run` among them or not),
/// `unreadable` how many records could not be read for it.
pub fn render(run: &RunRecord, domain: &Domain, history: &[RunRecord], unreadable: usize) -> String {
    let r = run;
    let mut html = String::new();
    let verdict = if r.succeeded {
        ("succeeded", "#1e7e34")
    } else {
        ("failed", "#b91c1c")
    };
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>meshkit run {id}</title><style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#111;max-width:1400px}}
h1{{font-size:1.4rem}} h2{{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}} h3{{font-size:1rem;margin:1.2rem 0 .4rem}}
table{{border-collapse:collapse;width:100%;font-size:.85rem;margin:.4rem 0 1rem}}
th,td{{border-bottom:1px solid #e5e7eb;padding:.3rem .45rem;text-align:left;vertical-align:top}} th{{background:#f7f7f7}}
.verdict{{font-weight:700;color:{vc}}} .err{{color:#b91c1c;white-space:pre-wrap}} .num{{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}}
.warn{{color:#b45309;font-weight:600}} tr.check.warn td{{background:#fff7ed}} tr.check.bad td{{background:#fde8e8}} tr.check.warn .result,tr.check.bad .result{{font-weight:700}}
tr.product.stale td{{background:#fde8e8}} tr.product.stale .result{{color:#b91c1c;font-weight:700}} tr.product.fresh .result{{color:#1e7e34}}
tr.failed .status{{color:#b91c1c;font-weight:700}} tr.skipped .status{{color:#6b7280}} tr.current td{{font-weight:600}}
.cards{{display:flex;gap:.8rem;flex-wrap:wrap;margin:1rem 0}} .card{{border:1px solid #e5e7eb;border-radius:8px;padding:.5rem .8rem;min-width:9rem}}
.card b{{display:block;font-size:1.2rem}} .note{{color:#4b5563;font-size:.85rem}} .charts{{display:flex;gap:2rem;flex-wrap:wrap}}
svg{{max-width:100%;height:auto}} code{{font-size:.85em}}
pre.sql{{white-space:pre-wrap;word-break:break-word;font-size:.78rem;background:#f7f7f7;padding:.3rem .4rem;margin:.3rem 0}}
table.sample{{width:auto;font-size:.78rem;margin:.3rem 0}} table.sample td,table.sample th{{padding:.15rem .4rem}}
</style></head><body><h1>meshkit run <code>{id}</code></h1>
<p>Domain <b>{domain}</b> · env <b>{env}</b> · started {start} · finished {end} · took {took} · <span class="verdict">{verdict}</span></p>"#,
        id = esc(&r.run_id),
        domain = esc(&r.domain),
        env = esc(&r.env),
        start = esc(&when(&r.started_at)),
        end = esc(&when(&r.finished_at)),
        took = duration(r.seconds),
        verdict = verdict.0,
        vc = verdict.1,
    );
    if !r.params.is_empty() {
        html.push_str("<p>Parameters: ");
        let ps: Vec<String> = r
            .params
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
            .collect();
        html.push_str(&ps.join(" "));
        html.push_str("</p>");
    }
    summary_cards(&mut html, r);

    html.push_str(r#"<section id="lineage"><h2>Lineage of the domain</h2><p class="note">Every table of every project, from the manifests: an arrow per job input, raw → refined → curated. Coloured: written by this run (green: succeeded, red: failed); orange: raw rows quarantined by this run. Dashed: other domains, the products a project reads (red: stale at this run) and the domains that read its products.</p>"#);
    html.push_str(&lineage_svg(domain, r));
    html.push_str("</section>");
    products_section(&mut html, domain, r);

    html.push_str(r#"<section id="pipelines">"#);
    for (n, p) in r.pipelines.iter().enumerate() {
        let _ = write!(
            html,
            r#"<section class="pipeline"><h2>{} / {}</h2>"#,
            esc(&p.project),
            esc(&p.pipeline)
        );
        html.push_str(&dag_svg(p, n));
        steps_table(&mut html, p);
        checks_table(&mut html, p);
        maintenance_table(&mut html, p);
        html.push_str("</section>");
    }
    html.push_str("</section>");

    history_section(&mut html, r, history, unreadable);
    html.push_str("</body></html>\n");
    html
}

fn summary_cards(html: &mut String, r: &RunRecord) {
    let steps: Vec<&StepRecord> = r.pipelines.iter().flat_map(|p| &p.steps).collect();
    let by = |st: StepStatus| steps.iter().filter(|s| s.status == st).count();
    let jobs: Vec<&JobReport> = steps.iter().filter_map(|s| s.metrics.job()).collect();
    let checks: Vec<&crate::checks::CheckOutcome> = jobs.iter().flat_map(|j| &j.checks).collect();
    let warn_failed: Vec<_> = checks
        .iter()
        .filter(|c| !c.passed && c.severity == Severity::Warn)
        .collect();
    let warn_rows: u64 = warn_failed.iter().map(|c| c.failing_rows).sum();
    let quarantined: u64 = jobs.iter().map(|j| j.rows_rejected).sum();
    let cards = [
        (
            "steps",
            format!("{} succeeded", by(StepStatus::Succeeded)),
            format!("{} failed, {} skipped", by(StepStatus::Failed), by(StepStatus::Skipped)),
        ),
        (
            "rows written",
            count(jobs.iter().map(|j| j.rows_written).sum()),
            format!("{} read", count(jobs.iter().map(|j| j.rows_read).sum())),
        ),
        (
            "bytes written",
            bytes(jobs.iter().map(|j| j.bytes_written).sum()),
            format!(
                "{} data file(s) added",
                jobs.iter().map(|j| j.files_added).sum::<usize>()
            ),
        ),
        (
            "rows quarantined",
            count(quarantined),
            "malformed raw rows set aside".into(),
        ),
        (
            "checks",
            format!(
                "{} of {} passed",
                checks.iter().filter(|c| c.passed).count(),
                checks.len()
            ),
            format!(
                "{} error-level failed, {} warn-level failed ({} rows)",
                checks
                    .iter()
                    .filter(|c| !c.passed && c.severity == Severity::Error)
                    .count(),
                warn_failed.len(),
                count(warn_rows)
            ),
        ),
    ];
    html.push_str(r#"<div class="cards">"#);
    for (title, big, small) in cards {
        let _ = write!(
            html,
            r#"<div class="card"><span class="note">{title}</span><b>{big}</b><span class="note">{small}</span></div>"#
        );
    }
    html.push_str("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckOutcome;
    use crate::record::tests::sample;
    use crate::record::StepMetrics;

    fn domain() -> Domain {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        mesh_domain::load_domain(&root).expect("the example domain loads")
    }

    fn with_checks() -> RunRecord {
        let mut r = sample();
        let steps = &mut r.pipelines[0].steps;
        steps[0].status = StepStatus::Succeeded;
        steps[0].error = None;
        steps[0].target = "raw.sales_events → curated.daily_sales".into();
        steps[0].metrics = StepMetrics::Job(Box::new(JobReport {
            job: "load".into(),
            rows_read: 30_000,
            rows_written: 1350,
            rows_rejected: 22,
            bytes_written: 10_658,
            files_added: 1,
            snapshot_id: Some(6461824919780344582),
            table_rows: Some(1350),
            table_files: Some(1),
            checks: vec![
                CheckOutcome {
                    name: "unique(id)".into(),
                    check: "unique".into(),
                    severity: Severity::Error,
                    passed: true,
                    failing_rows: 0,
                    detail: "no failing rows".into(),
                    sql: "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM output GROUP BY \"id\" HAVING COUNT(*) > 1) d".into(),
                    sample_columns: vec![],
                    sample: vec![],
                    freshness: None,
                },
                CheckOutcome {
                    name: "accepted_values(segment)".into(),
                    check: "accepted_values".into(),
                    severity: Severity::Warn,
                    passed: false,
                    failing_rows: 563,
                    detail: "563 failing rows".into(),
                    sql: "SELECT COUNT(*) FROM output WHERE \"segment\" NOT IN ('a')".into(),
                    sample_columns: vec!["id".into(), "segment".into()],
                    sample: vec![vec!["7".into(), "<b>vip</b>".into()]],
                    freshness: None,
                },
            ],
            ..Default::default()
        }));
        r
    }

    #[test]
    fn report_draws_the_dag_and_escapes() {
        let r = sample();
        let html = render(&r, &domain(), std::slice::from_ref(&r), 0);
        let dag = &html[html.find("<svg class=\"dag\"").unwrap()..];
        let dag = &dag[..dag.find("</svg>").unwrap()];
        assert_eq!(dag.matches("<rect").count(), 2, "one box per step");
        assert_eq!(dag.matches("<line").count(), 1, "one edge");
        assert!(html.contains("class=\"step failed\"") && html.contains("class=\"step skipped\""));
        assert!(!html.contains("<script"), "no scripts, error text is escaped");
        assert!(html.contains("&lt;script&gt;"));
        assert!(
            html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count(),
            "self-contained"
        );
    }

    #[test]
    fn every_check_quarantine_bytes_and_snapshot_are_shown() {
        let r = with_checks();
        let html = render(&r, &domain(), std::slice::from_ref(&r), 0);
        assert!(html.contains("accepted_values(segment)") && html.contains("unique(id)"));
        assert!(
            html.contains("failed (warn: written anyway)"),
            "warn-level failures are visible"
        );
        assert!(html.contains(">563<"), "with their failing rows");
        assert!(html.contains("1 warn-level failed (563 rows)"));
        assert!(html.contains("6461824919780344582"), "the snapshot id");
        assert!(!html.contains(">null<"));
        assert!(html.contains("10.4 KB"), "bytes written");
        assert!(html.contains(">22<"), "quarantined rows");
        assert!(html.contains("2026-11-27 08:00:00 UTC") && html.contains("took 5.0 s"));
    }

    #[test]
    fn lineage_covers_every_table_of_the_domain() {
        let d = domain();
        let r = with_checks();
        let html = render(&r, &d, &[], 0);
        let svg = &html[html.find("<svg class=\"lineage\"").unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        let tables = d.tables().count();
        assert_eq!(svg.matches("<g class=\"table\">").count(), tables);
        let edges: usize = d.projects.iter().flat_map(|p| &p.jobs).map(|j| j.inputs.len()).sum();
        assert_eq!(svg.matches("<path class=\"edge\"").count(), edges);
        for p in &d.projects {
            assert!(svg.contains(&format!("project {}", p.name)));
        }
        assert!(svg.contains("1,350 rows written"), "the table this run wrote");
    }

    /// A run of examples/marketing02 (`m02`, which reads `f01.daily_sales@1`) whose job read
    /// the product `days` days after its commit, with the promise of 26 h.
    fn consumer_run(days: i64) -> (Domain, RunRecord) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/marketing02");
        let d = mesh_domain::load_domain(&root).expect("the example consumer domain loads");
        let read = crate::products::ProductRead {
            product: "f01.daily_sales".into(),
            version: 1,
            snapshot_id: 7_001,
            rows: 1350,
            committed_at_ms: 1_767_261_600_000,
            freshness: "26h".into(),
        };
        let check = crate::checks::freshness_check(&read, read.committed_at_ms + days * 86_400_000);
        let mut r = sample();
        r.pipelines[0].project = "store_performance".into();
        let steps = &mut r.pipelines[0].steps;
        steps.truncate(1);
        steps[0].name = "store_revenue".into();
        steps[0].target = " → curated.store_revenue".into();
        steps[0].status = if check.passed {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        steps[0].metrics = StepMetrics::Job(Box::new(JobReport {
            job: "store_revenue".into(),
            checks: vec![check],
            products_read: vec![read],
            ..Default::default()
        }));
        (d, r)
    }

    fn section<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
        let s = &html[html.find(start).unwrap_or_else(|| panic!("no {start}"))..];
        &s[..s.find(end).unwrap()]
    }

    #[test]
    fn a_stale_product_read_is_a_failure_in_the_products_section_and_the_lineage() {
        let (d, r) = consumer_run(3);
        let html = render(&r, &d, &[], 0);
        let products = section(&html, "<section id=\"products\"", "</section>");
        let row = section(products, "<tr class=\"product stale\">", "</tr>");
        for wanted in [
            "<code>f01.daily_sales@1</code>",
            "<td>f01</td>",
            "<code>7001</code>",
            "2026-01-01 10:00:00 UTC",
            ">3d<",
            "<td>26h</td>",
            "STALE",
        ] {
            assert!(row.contains(wanted), "{wanted} not in {row}");
        }
        assert!(
            html.contains("freshness(f01.daily_sales@1)"),
            "the failed check is listed"
        );
        let lineage = section(&html, "<svg class=\"lineage\"", "</svg>");
        let node = section(lineage, "<g class=\"external product\">", "</g>");
        assert!(
            node.contains(">f01.daily_sales@1</text>") && node.contains("STALE: 3d old (promise 26h)"),
            "{node}"
        );
        assert!(node.contains("#b91c1c"), "styled as a failure: {node}");
        assert_eq!(
            lineage.matches("<path class=\"edge external\"").count(),
            1,
            "into the job reading it"
        );
        assert!(lineage.contains("job store_revenue: f01.daily_sales@1 (domain f01) → curated.store_revenue"));

        let (d, r) = consumer_run(1);
        let html = render(&r, &d, &[], 0);
        let row = section(&html, "<tr class=\"product fresh\">", "</tr>");
        assert!(row.contains(">fresh<") && row.contains(">1d<"), "{row}");
        assert!(!html.contains("STALE"));
    }

    #[test]
    fn a_published_product_has_an_arrow_to_each_consumer_domain() {
        let d = domain();
        let html = render(&with_checks(), &d, &[], 0);
        let published = section(&html, "<table class=\"products-published\"", "</table>");
        assert!(
            published.contains("<code>f01.daily_sales@1</code>") && published.contains("m02 (dev 444444444444"),
            "{published}"
        );
        let lineage = section(&html, "<svg class=\"lineage\"", "</svg>");
        let node = section(lineage, "<g class=\"external consumer\">", "</g>");
        assert!(
            node.contains(">domain m02</text>") && node.contains("reads daily_sales@1"),
            "{node}"
        );
        assert!(lineage.contains("<title>product f01.daily_sales@1 → domain m02</title>"));
        assert!(
            !lineage.contains("external product"),
            "f01 reads no other domain's product"
        );
        assert!(!html.contains("Read from other domains"), "this run read none");
    }

    #[test]
    fn history_shows_rows_and_files_per_run() {
        let d = domain();
        let mut older = with_checks();
        older.run_id = "20261126T080000000Z-00001".into();
        if let StepMetrics::Job(j) = &mut older.pipelines[0].steps[0].metrics {
            j.table_rows = Some(700);
            j.table_files = Some(3);
        }
        let r = with_checks();
        let html = render(&r, &d, &[older, r.clone()], 1);
        let h = &html[html.find("<section id=\"history\"").unwrap()..];
        assert!(h.contains("sales · curated.daily_sales"), "{h}");
        assert!(h.contains(">700<") && h.contains(">1,350<"));
        assert!(h.contains("1 record(s) could not be read"));
        assert_eq!(h.matches("<svg class=\"bars\"").count() % 2, 0);
    }

    #[test]
    fn readable_figures() {
        assert_eq!(duration(0.4107), "411 ms");
        assert_eq!(duration(5.0), "5.0 s");
        assert_eq!(duration(125.2), "2 min 05 s");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(bytes(10_658), "10.4 KB");
        assert_eq!(bytes(12), "12 B");
        assert_eq!(when("2026-12-01T02:52:00.743633465+00:00"), "2026-12-01 02:52:00 UTC");
    }
}
