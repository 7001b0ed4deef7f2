//! `mesh report`: one self-contained HTML page per run (no scripts, no external files) with
//! each pipeline's DAG drawn as SVG and a table of per-step statistics.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::record::{PipelineRecord, RunRecord};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn color(status: &str) -> (&'static str, &'static str) {
    match status {
        "succeeded" => ("#e6f4ea", "#1e7e34"),
        "failed" => ("#fde8e8", "#b91c1c"),
        _ => ("#f1f1f1", "#6b7280"),
    }
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

fn dag_svg(p: &PipelineRecord) -> String {
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
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="pipeline {}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##,
        esc(&p.pipeline)
    );
    for s in &p.steps {
        let (x2, y2) = pos[s.name.as_str()];
        for d in &s.depends_on {
            if let Some((x1, y1)) = pos.get(d.as_str()) {
                let _ = write!(
                    svg,
                    r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
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
        let (fill, stroke) = color(&s.status);
        let _ = write!(
            svg,
            r##"<g class="step {status}"><title>{name}: {status}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="2"/><text x="{tx}" y="{ty1}" font-size="13" font-weight="600" fill="#111">{name}</text><text x="{tx}" y="{ty2}" font-size="11" fill="{stroke}">{status} · {secs:.1}s</text></g>"##,
            status = esc(&s.status),
            name = esc(&s.name),
            tx = x + 10,
            ty1 = y + 22,
            ty2 = y + 40,
            secs = s.seconds,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn metric(s: &crate::record::StepRecord, key: &str) -> String {
    s.metrics
        .get(key)
        .map(|v| v.to_string().trim_matches('"').to_string())
        .unwrap_or_else(|| "–".into())
}

pub fn render(r: &RunRecord) -> String {
    let mut html = String::new();
    let verdict = if r.succeeded {
        ("succeeded", "#1e7e34")
    } else {
        ("failed", "#b91c1c")
    };
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>meshkit run {id}</title><style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#111;max-width:1200px}}
h1{{font-size:1.4rem}} h2{{font-size:1.1rem;margin-top:2rem}} table{{border-collapse:collapse;width:100%;font-size:.9rem}}
th,td{{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}} th{{background:#f7f7f7}}
.verdict{{font-weight:700;color:{vc}}} .err{{color:#b91c1c;white-space:pre-wrap}} .num{{text-align:right;font-variant-numeric:tabular-nums}}
</style></head><body><h1>meshkit run <code>{id}</code></h1>
<p>Domain <b>{domain}</b> · env <b>{env}</b> · started {start} · {secs:.1}s · <span class="verdict">{verdict}</span></p>"#,
        id = esc(&r.run_id),
        domain = esc(&r.domain),
        env = esc(&r.env),
        start = esc(&r.started_at),
        secs = r.seconds,
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
    for p in &r.pipelines {
        let _ = write!(html, "<h2>{} / {}</h2>", esc(&p.project), esc(&p.pipeline));
        html.push_str(&dag_svg(p));
        html.push_str(r#"<table><thead><tr><th>step</th><th>what</th><th>status</th><th class="num">attempts</th><th class="num">seconds</th><th class="num">rows read</th><th class="num">rows written</th><th class="num">files</th><th class="num">bytes</th><th>snapshot</th><th>detail</th></tr></thead><tbody>"#);
        for s in &p.steps {
            let _ = write!(
                html,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{:.2}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td class="err">{}</td></tr>"#,
                esc(&s.name),
                esc(&s.target),
                esc(&s.status),
                s.attempts,
                s.seconds,
                esc(&metric(s, "rows_read")),
                esc(&metric(s, "rows_written")),
                esc(&metric(s, "files_added")),
                esc(&metric(s, "bytes_written")),
                esc(&metric(s, "snapshot_id")),
                esc(s.error.as_deref().unwrap_or("")),
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn report_draws_the_dag_and_escapes() {
        let html = render(&sample());
        assert!(html.contains("<svg"), "a DAG is drawn");
        assert_eq!(html.matches("<rect").count(), 2, "one box per step");
        assert_eq!(html.matches("<line").count(), 1, "one edge");
        assert!(html.contains("class=\"step failed\"") && html.contains("class=\"step skipped\""));
        assert!(!html.contains("<script>"), "error text is escaped");
        assert!(html.contains("&lt;script&gt;"));
        assert!(
            !html.contains("http://") || html.contains("http://www.w3.org/2000/svg"),
            "self-contained"
        );
    }
}
