//! `mesh products`: the domain's data products with their version, contract file and
//! consumers, and in the chosen environment the table's latest commit and whether the
//! freshness promise holds (its age is within the product's `freshness`).

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::product::{age_seconds, age_text as ago};
use mesh_domain::{Domain, Env, Freshness, Naming};
use serde::Serialize;

use crate::cli::Format;
use crate::common::{config, open_engine, print_json, tokio_runtime};
use crate::exit::Failure;

#[derive(Serialize)]
struct Row {
    product: String,
    version: u32,
    table: String,
    /// `{database}.{table}`.
    physical_name: String,
    contract: String,
    /// Whether the contract file is on disk (`mesh render` writes it).
    contract_present: bool,
    freshness: String,
    freshness_seconds: u64,
    consumers: Vec<mesh_domain::Consumer>,
    /// The current snapshot's commit time (ms since epoch); `None`: not written in this env.
    last_commit_ms: Option<i64>,
    age_seconds: Option<u64>,
    /// Whether the latest commit is within the freshness promise; `None`: not written.
    fresh: Option<bool>,
}

pub fn run(root: &Path, domain: &Domain, env: Option<Env>, format: Format) -> Result<(), Failure> {
    let mut flags = BTreeMap::new();
    if let Some(e) = env {
        flags.insert("env", e.to_string());
    }
    let cfg = config(root, domain, flags)?;
    let products: Vec<_> = domain.products().collect();
    let mut rows = Vec::new();
    let env_name = cfg.env.value.to_string();
    if !products.is_empty() {
        let rt = tokio_runtime()?;
        rt.block_on(async {
            let engine = open_engine(root, domain, &cfg).await?;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let n = Naming::for_domain(domain, cfg.env.value);
            for (project, product, table) in &products {
                let last = match engine.load_table(project, table).await {
                    Ok(t) => t.metadata().current_snapshot().map(|s| s.timestamp_ms()),
                    Err(mesh_core::mesh_iceberg::Error::TableNotFound { .. }) => None,
                    Err(e) => return Err(Failure::from(e)),
                };
                let age = last.map(|ms| age_seconds(ms, now_ms));
                let contract = product.contract_path();
                rows.push(Row {
                    product: product.name.to_string(),
                    version: product.version,
                    table: product.table.to_string(),
                    physical_name: n.qualified_table(table),
                    contract_present: root.join(&contract).is_file(),
                    contract: contract.display().to_string(),
                    freshness: product.freshness.to_string(),
                    freshness_seconds: product.freshness.seconds,
                    consumers: product.consumers.clone(),
                    last_commit_ms: last,
                    age_seconds: age,
                    fresh: age.map(|a| product.freshness.holds(a)),
                });
            }
            Ok::<(), Failure>(())
        })?;
    }
    let consumed = consumed_rows(domain);
    match format {
        Format::Json => print_json(&serde_json::json!({"env": env_name, "products": rows, "consumes": consumed})),
        Format::Text => {
            // A domain that only consumes is not told it has no products of its own.
            if !rows.is_empty() || consumed.is_empty() {
                print!("{}", text(&env_name, &rows));
            }
            print!("{}", consumed_text(&consumed));
        }
    }
    Ok(())
}

/// A product of another domain a project consumes, as pinned by `mesh pull`.
#[derive(Serialize)]
struct ConsumedRow {
    /// `f01.daily_sales@1`.
    product: String,
    project: String,
    /// The producer's checkout.
    path: String,
    /// The pinned snapshot and its commit time (ms); `None`: not pulled at this version.
    snapshot_id: Option<i64>,
    committed_at_ms: Option<i64>,
    age_seconds: Option<u64>,
    freshness: Option<String>,
    /// Whether the pinned commit is within the producer's freshness promise now: a pin kept
    /// long past it reads data the producer no longer promises.
    fresh: Option<bool>,
}

fn consumed_rows(domain: &Domain) -> Vec<ConsumedRow> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    domain
        .projects
        .iter()
        .flat_map(|p| p.consumes.iter().map(move |c| (p, c)))
        .map(|(p, c)| {
            let pin = c.pin.as_ref();
            let age = pin.map(|pin| age_seconds(pin.committed_at_ms, now_ms));
            let promise = pin.and_then(|pin| Freshness::parse(&pin.freshness).ok());
            ConsumedRow {
                product: c.to_string(),
                project: p.name.to_string(),
                path: c.path.display().to_string(),
                snapshot_id: pin.map(|pin| pin.snapshot_id),
                committed_at_ms: pin.map(|pin| pin.committed_at_ms),
                age_seconds: age,
                freshness: pin.map(|pin| pin.freshness.clone()),
                fresh: age.zip(promise).map(|(a, f)| f.holds(a)),
            }
        })
        .collect()
}

fn consumed_text(rows: &[ConsumedRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("consumed (other domains' products):\n");
    for r in rows {
        let state = match (r.snapshot_id, r.committed_at_ms, r.age_seconds, r.fresh) {
            (Some(id), Some(ms), Some(age), fresh) => format!(
                "pinned snapshot {id}, committed {} ({} ago){}",
                super::table::text::utc(ms),
                ago(age),
                match fresh {
                    Some(true) => format!(": within its promise ({})", r.freshness.as_deref().unwrap_or("")),
                    Some(false) => format!(
                        ": OLDER than its promise ({}): `mesh pull` to read the producer's latest",
                        r.freshness.as_deref().unwrap_or("")
                    ),
                    None => String::new(),
                }
            ),
            _ => "not pulled: run `mesh pull`".into(),
        };
        out += &format!("{} by project {} from {}\n  {state}\n", r.product, r.project, r.path);
    }
    out
}

fn text(env: &str, rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no data products: declare one with [[products]] in a project.toml (README, Data products)\n".into();
    }
    let mut out = String::new();
    for r in rows {
        let consumers: Vec<String> = r.consumers.iter().map(|c| c.to_string()).collect();
        let state = match (r.last_commit_ms, r.age_seconds, r.fresh) {
            (Some(ms), Some(age), Some(fresh)) => format!(
                "last commit {} ({} ago): {}",
                super::table::text::utc(ms),
                ago(age),
                if fresh {
                    format!("fresh (promise: within {})", r.freshness)
                } else {
                    format!("STALE (promise: within {})", r.freshness)
                }
            ),
            _ => format!("not written in {env} yet (promise: within {})", r.freshness),
        };
        out += &format!(
            "{} v{}  {} ({})\n  contract: {}{}\n  consumers: {}\n  {env}: {state}\n",
            r.product,
            r.version,
            r.table,
            r.physical_name,
            r.contract,
            if r.contract_present {
                ""
            } else {
                " (missing: run `mesh render`)"
            },
            if consumers.is_empty() {
                "none yet".into()
            } else {
                consumers.join("; ")
            },
        );
    }
    out
}
