//! Shared helpers of the mesh-infra integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mesh_domain::{Domain, Env};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub fn example_domain() -> Domain {
    match mesh_domain::load_domain(&repo_root()) {
        Ok(d) => d,
        Err(e) => panic!("the example domain must load:\n{e}"),
    }
}

pub fn render_all(domain: &Domain) -> mesh_infra::Rendered {
    mesh_infra::render(domain, &Env::CLOUD).expect("the example domain renders")
}

/// A checker installed by scripts/test.sh. Missing means the test cannot check anything, so it
/// fails rather than passing silently.
pub fn tool(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "{var} is not set: run the tests through scripts/test.sh, which installs the independent checkers and exports {var}"
        ),
    }
}

pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools")
}

/// Renders the example domain into a fresh folder.
pub fn rendered_tree() -> (tempfile::TempDir, mesh_infra::Rendered) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = render_all(&example_domain());
    mesh_infra::write(&rendered, dir.path()).expect("write");
    (dir, rendered)
}
