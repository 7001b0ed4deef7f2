//! `mesh names`: every derived AWS name and path of an environment.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::{Env, NameSheet};

use crate::cli::Format;
use crate::commands::describe;
use crate::common::{check_project, config, display_rel, print_json, root_and_domain};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, env: Env, project: Option<String>, format: Format) -> Result<(), Failure> {
    let (root, domain) = root_and_domain(root_flag)?;
    if let Some(p) = &project {
        check_project(&domain, p)?;
    }
    let mut sheet = NameSheet::build(&domain, env, project.as_deref());
    // Locally each bucket is a folder of the lake: the paths name the folders where files
    // land (`.mesh/lake/f01-raw-local/pj01/…`), not S3 URLs no one can open.
    let lake = (env == Env::Local)
        .then(|| config(&root, &domain, BTreeMap::new()))
        .transpose()?
        .map(|cfg| cfg.lake_root.value);
    if let Some(lake) = &lake {
        let shown = match format {
            // Scripts get absolute paths; people the path from the domain root.
            Format::Json => lake.display().to_string(),
            Format::Text => display_rel(&root, lake),
        };
        localize(&mut sheet, &format!("{}/", shown.trim_end_matches('/')));
    }
    match format {
        Format::Json => print_json(&sheet),
        Format::Text => {
            if let Some(lake) = &lake {
                println!(
                    "local: each bucket is a folder of the lake, {}/ (lake_root; `mesh config show`)",
                    display_rel(&root, lake).trim_end_matches('/')
                );
            }
            describe::print_names(&sheet)
        }
    }
    Ok(())
}

/// Every `s3://bucket/key` of the sheet as `{lake}bucket/key`.
fn localize(sheet: &mut NameSheet, lake: &str) {
    let local = |s: &mut String| {
        if let Some(rest) = s.strip_prefix("s3://") {
            *s = format!("{lake}{rest}");
        }
    };
    for p in &mut sheet.projects {
        p.data_prefixes.values_mut().for_each(local);
        p.iceberg_warehouses.values_mut().for_each(local);
        local(&mut p.glue_temp);
        for t in &mut p.tables {
            local(&mut t.location);
        }
    }
}
