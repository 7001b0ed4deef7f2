//! `mesh names`: every derived AWS name and path of an environment.

use std::path::Path;

use mesh_domain::{Env, NameSheet};

use crate::cli::Format;
use crate::commands::describe;
use crate::common::{check_project, load, print_json};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, env: Env, project: Option<String>, format: Format) -> Result<(), Failure> {
    let domain = load(root_flag)?;
    if let Some(p) = &project {
        check_project(&domain, p)?;
    }
    let sheet = NameSheet::build(&domain, env, project.as_deref());
    match format {
        Format::Json => print_json(&sheet),
        Format::Text => describe::print_names(&sheet),
    }
    Ok(())
}
