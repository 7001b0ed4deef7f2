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

/// The real `mesh` binary, isolated from the caller: nothing of the environment that selects or
/// configures a runtime reaches it (ENV, log settings, the example domains' prefixed
/// variables, AWS variables and files, CI markers, MESH_ROOT). A test sets what it means to
/// test on the returned command.
pub fn mesh_cmd() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("mesh").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_")
            || k.starts_with("F01_")
            || k.starts_with("S02_")
            || ["ENV", "LOG_LEVEL", "LOG_FORMAT", "CI", "GITHUB_ACTIONS", "MESH_ROOT"].contains(&k.as_str())
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// [`mesh_cmd`] on the domain at `root`.
pub fn mesh_at(root: &Path) -> assert_cmd::Command {
    let mut cmd = mesh_cmd();
    cmd.arg("--root").arg(root);
    cmd
}

/// Runs `mesh ARGS` on `root` (see [`mesh_cmd`]).
pub fn mesh(root: &Path, args: &[&str]) -> std::process::Output {
    mesh_at(root).args(args).output().unwrap()
}

/// Runs `mesh ARGS` on `root` with these variables set.
pub fn mesh_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = mesh_at(root);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
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

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `mesh ARGS` on `root` and asserts it succeeded.
pub fn run_ok(root: &Path, args: &[&str]) -> std::process::Output {
    let out = mesh(root, args);
    assert!(out.status.success(), "mesh {}: {}", args.join(" "), both(&out));
    out
}

/// Replaces the first `from` of a file with `to`; the file must hold `from`.
pub fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

/// `git ARGS` in `root` with a throwaway identity, asserting it succeeded.
pub fn git(root: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", both(&out));
}

/// `--at` for a run `hours` after a commit at `committed_ms` (ms since the epoch), rounded up
/// to the second (`--at` has no milliseconds), so at least that long has passed.
pub fn at_hours_after(committed_ms: i64, hours: i64) -> String {
    chrono::DateTime::from_timestamp((committed_ms + 999) / 1000 + hours * 3600, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
