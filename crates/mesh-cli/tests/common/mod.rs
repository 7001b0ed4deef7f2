//! Helpers shared by the integration tests that run the real `mesh` binary.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A private copy of the example domain (domain.json + projects/), so tests can edit it.
pub fn example_domain() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_root().join("domain.json"), dir.path().join("domain.json")).unwrap();
    copy_dir(&repo_root().join("projects"), &dir.path().join("projects"));
    dir
}

/// Runs the real `mesh` binary on `root`. The caller's environment must not leak into the
/// test: ENV alone selects the runtime.
pub fn mesh(root: &Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("mesh")
        .unwrap()
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("ENV")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .env_remove("F01_ENV")
        .output()
        .unwrap()
}

/// Exit code, stdout and stderr of a run, for assertion messages.
pub fn both(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
