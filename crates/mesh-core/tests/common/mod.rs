//! Helpers shared by mesh-core's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_domain::Domain;

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The example domain (`domain.json` and `projects/`) copied into `to`.
pub fn copy_domain(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(repo.join("domain.json"), to.join("domain.json")).unwrap();
    for entry in walk(&repo.join("projects")) {
        let rel = entry.strip_prefix(&repo).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&entry, to.join(rel)).unwrap();
    }
}

/// The engine as `mesh run` opens it, with `F01_MEMORY_LIMIT` set when `limit` is.
pub async fn engine(root: &Path, domain: &Arc<Domain>, limit: Option<&str>) -> Engine {
    let vars: BTreeMap<String, String> = limit
        .map(|l| ("F01_MEMORY_LIMIT".to_string(), l.to_string()))
        .into_iter()
        .collect();
    let config = Config::resolve(&Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars,
        flags: BTreeMap::new(),
    })
    .unwrap();
    Engine::local(domain.clone(), root.to_path_buf(), &config)
        .await
        .unwrap()
}
