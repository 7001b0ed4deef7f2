//! `mesh validate`'s check of consumed products: each `[[consumes]]` entry must be pulled at
//! its version (`products.lock.json`), and, when the producer is checked out at its `path`,
//! the producer must still publish that major version with no breaking change since the pin
//! (mesh-infra's contract diff of the pinned contract against the producer's current one).

use std::path::Path;

use mesh_core::products::{Pin, LOCK_FILE};
use mesh_domain::source::SourceMap;
use mesh_domain::{Diagnostic, Diagnostics, Domain, Freshness, Name, PartitionField};
use mesh_infra::contract::{Contract, ContractColumn};

/// The problems of every consumed product, and notes for those whose producer is not checked
/// out (their pin cannot be compared here).
pub fn check(root: &Path, domain: &Domain) -> (Diagnostics, Vec<String>) {
    let mut diags = Diagnostics::default();
    let mut notes = Vec::new();
    let states = match mesh_core::products::check_pins(root, domain) {
        Ok(s) => s,
        Err(e) => {
            diags.push(Diagnostic::new(LOCK_FILE, "", e.to_string()));
            return (diags, notes);
        }
    };
    for s in states {
        let c = s.consumed;
        let file = s.project.dir.join(mesh_domain::load::PROJECT_FILE);
        let text = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
        let field = format!("consumes[{}].product", s.index);
        let line = SourceMap::toml(&text).line(&field);
        let mut push = |message: String, help: String| {
            diags.push(
                Diagnostic::new(file.clone(), field.clone(), message)
                    .at_line(line)
                    .with_help(help),
            );
        };
        let producer = match s.producer {
            Ok(d) => d,
            Err(mesh_core::products::ProductError::NotCheckedOut { .. }) => {
                notes.push(format!(
                    "note: {c}: the producer is not checked out at {}: its contract was not compared with the pin",
                    c.path.display()
                ));
                if s.pin.is_none() {
                    push(
                        format!("`{c}` is not pulled: {LOCK_FILE} has no pin for it"),
                        format!("check out the producer at {} and run `mesh pull`", c.path.display()),
                    );
                }
                continue;
            }
            Err(e) => {
                push(
                    e.to_string(),
                    "fix the producer's checkout, then run `mesh validate` again".into(),
                );
                continue;
            }
        };
        let Some((project, product, table)) = producer.product(c.product.as_str()) else {
            push(
                format!(
                    "domain `{}` no longer publishes `{}`, which this project reads at version {}",
                    c.producer, c.product, c.version
                ),
                format!(
                    "ask domain {}'s team which product replaces it, or stop reading it",
                    c.producer
                ),
            );
            continue;
        };
        let current = Contract::new(&producer, project, product, table);
        let Some(pin) = s.pin.filter(|p| p.version == c.version) else {
            push(
                format!(
                    "`{c}` is not pulled at version {}: {LOCK_FILE} has no pin for it",
                    c.version
                ),
                "run `mesh pull` to pin the producer's current snapshot, and commit the lock file".into(),
            );
            continue;
        };
        let pinned = pinned_contract(&current, &pin);
        let diff = mesh_infra::contract_diff::compare(std::slice::from_ref(&pinned), std::slice::from_ref(&current));
        let changes: Vec<String> = diff
            .iter()
            .flat_map(|d| d.changes.iter())
            .map(|ch| format!("{}{}", ch.what, if ch.breaking { " (breaking)" } else { "" }))
            .collect();
        let listed = if changes.is_empty() {
            String::new()
        } else {
            format!(": {}", changes.join("; "))
        };
        if product.version != c.version {
            push(
                format!(
                    "`{c}` no longer matches its producer: domain `{}` now publishes `{}` at version {}{listed}",
                    c.producer, c.product, product.version
                ),
                format!(
                    "adapt the jobs that read it to version {v} (contract {}), then write product = \"{}.{}@{v}\" and run `mesh pull`",
                    c.path.join(product.contract_path()).display(),
                    c.producer,
                    c.product,
                    v = product.version
                ),
            );
        } else if diff.iter().any(|d| d.breaking().next().is_some()) {
            push(
                format!("`{c}` changed in a way that breaks this project without a new major version{listed}"),
                format!(
                    "ask domain {}'s team to undo the change or publish it as version {} (their `mesh validate --against` refuses it)",
                    c.producer,
                    c.version + 1
                ),
            );
        }
    }
    (diags, notes)
}

/// The contract as pinned: the producer's current one with the pinned version, table, columns,
/// partitioning, identifier and freshness (what the comparison reads).
fn pinned_contract(current: &Contract, pin: &Pin) -> Contract {
    let mut c = current.clone();
    c.version = pin.version;
    c.physical_name = pin.qualified();
    c.columns = pin
        .columns
        .iter()
        .filter_map(|col| {
            Some(ContractColumn {
                name: Name::parse(&col.name).ok()?,
                data_type: mesh_domain::ColumnType::parse(&col.data_type)?,
                nullable: col.nullable,
                description: None,
                renamed_from: None,
            })
        })
        .collect();
    c.partitioning = pin
        .partition_by
        .iter()
        .filter_map(|p| PartitionField::parse(p).ok())
        .collect();
    c.identifier = pin.identifier.iter().filter_map(|i| Name::parse(i).ok()).collect();
    if let Ok(f) = Freshness::parse(&pin.freshness) {
        c.freshness = f;
    }
    c
}
