//! `mesh config show`: every setting with its value and where it came from.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::{Domain, Env};

use crate::cli::Format;
use crate::common::{config, print_json};
use crate::exit::Failure;

pub fn show(root: &Path, domain: &Domain, env: Option<Env>, format: Format) -> Result<(), Failure> {
    let mut flags = BTreeMap::new();
    if let Some(e) = env {
        flags.insert("env", e.to_string());
    }
    let cfg = config(root, domain, flags)?;
    match format {
        Format::Json => print_json(&cfg),
        Format::Text => {
            for (k, v, src) in cfg.lines() {
                println!("{k:<16} {v:<50} ({src})");
            }
        }
    }
    Ok(())
}
