//! Deploying a domain, on the real `mesh` binary: `mesh init` gives a new domain its
//! workflows and `.env` so it validates and renders with no hand edits; `mesh render --check`
//! covers the workflows; `mesh deploy artifacts --env prod` refuses outside CI without `--yes`
//! and uploads (to the moto server) with it; `mesh env` writes what `mesh config` reads.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

mod common;
use common::{example_domain, repo_root};

/// `mesh` with a clean environment: nothing of the caller's CI, AWS or domain settings.
fn mesh_cmd() -> Command {
    let mut cmd = Command::cargo_bin("mesh").unwrap();
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

fn mesh(root: &Path, args: &[&str]) -> Output {
    mesh_cmd().arg("--root").arg(root).args(args).output().unwrap()
}

fn both(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ACCOUNTS: [&str; 6] = [
    "--account",
    "dev=123456789012",
    "--account",
    "int=223456789012",
    "--account",
    "prod=323456789012",
];

#[test]
fn init_validate_render_with_no_hand_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("finance02");
    let out = ok(mesh_cmd()
        .arg("init")
        .arg(&root)
        .args(["--abbr", "s02", "--region", "us-east-2"])
        .args(ACCOUNTS)
        .output()
        .unwrap());
    assert!(out.contains("wrote 4 workflows"), "{out}");
    for f in ["domain.json", ".env", ".gitignore", ".github/workflows/ci.yml"] {
        assert!(root.join(f).is_file(), "{f} missing after init:\n{out}");
    }
    let domain: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("domain.json")).unwrap()).unwrap();
    assert_eq!(domain["aws_accounts"]["prod"], "323456789012");
    ok(mesh(&root, &["validate"]));
    let from_init = std::fs::read_to_string(root.join(".github/workflows/deploy-prod.yml")).unwrap();
    ok(mesh(&root, &["new", "project", "store", "--slug", "st01"]));
    let out = ok(mesh(&root, &["render"]));
    assert!(out.contains("wrote 4 workflows"), "{out}");
    assert!(root.join("infra/envs/prod/main.tf").is_file());
    let out = ok(mesh(&root, &["render", "--check"]));
    assert!(out.contains("ok: 4 workflows"), "{out}");
    // The workflows init wrote are the ones render writes.
    assert_eq!(
        std::fs::read_to_string(root.join(".github/workflows/deploy-prod.yml")).unwrap(),
        from_init
    );
    // Its own domain's deploys: role, region and the artifact upload in every environment.
    for env in ["dev", "int", "prod"] {
        let wf = std::fs::read_to_string(root.join(format!(".github/workflows/deploy-{env}.yml"))).unwrap();
        assert!(wf.contains(&format!("mesh deploy artifacts --env {env}")), "{wf}");
        assert!(wf.contains(&format!(":role/s02-github-deploy-{env}")), "{wf}");
        assert!(wf.contains("aws-region: us-east-2"), "{wf}");
        // Not meshkit's workspace: mesh is installed, not built from crates/.
        assert!(wf.contains("cargo install --locked --git"), "{wf}");
    }
    let env_file = std::fs::read_to_string(root.join(".env")).unwrap();
    assert!(
        env_file.contains("\nENV=local\n") && env_file.contains("\nS02_AWS_REGION=us-east-2\n"),
        "{env_file}"
    );
    assert!(std::fs::read_to_string(root.join(".gitignore"))
        .unwrap()
        .contains("/.env"));
}

#[test]
fn init_without_accounts_says_what_to_do_next() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("d");
    let out = ok(mesh_cmd()
        .arg("init")
        .arg(&root)
        .args(["--abbr", "s02", "--account", "dev=123456789012"])
        .output()
        .unwrap());
    assert!(
        out.contains("next: add the AWS account of int, prod to aws_accounts"),
        "{out}"
    );
    assert!(!root.join(".github").exists());
    ok(mesh(&root, &["validate"]));
    let o = mesh(&root, &["render"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("aws_accounts.int is missing"), "{}", both(&o));

    for (bad, says) in [
        ("dev=12345", "not an AWS account id"),
        ("local=123456789012", "not a cloud environment"),
        ("dev", "must be ENV=ID"),
    ] {
        let o = mesh_cmd()
            .arg("init")
            .arg(tmp.path().join("bad"))
            .args(["--abbr", "s02", "--account", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", both(&o));
        assert!(both(&o).contains(says), "{bad}: {}", both(&o));
        assert!(!tmp.path().join("bad/domain.json").exists());
    }
    let o = mesh_cmd()
        .arg("init")
        .arg(tmp.path().join("twice"))
        .args([
            "--abbr",
            "s02",
            "--account",
            "dev=123456789012",
            "--account",
            "dev=223456789012",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(both(&o).contains("given twice"), "{}", both(&o));
}

#[test]
fn render_check_covers_the_workflows() {
    let dir = example_domain();
    let root = dir.path();
    ok(mesh(root, &["render"]));
    ok(mesh(root, &["render", "--check"]));
    let wf = root.join(".github/workflows");
    let prod = wf.join("deploy-prod.yml");
    let text = std::fs::read_to_string(&prod).unwrap();
    std::fs::write(&prod, text.replace("mesh deploy artifacts --env prod", "true")).unwrap();
    std::fs::write(wf.join("release.yml"), "name: release\n").unwrap();
    let o = mesh(root, &["render", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        both(&o).contains("differs  .github/workflows/deploy-prod.yml"),
        "{}",
        both(&o)
    );
    assert!(
        !both(&o).contains("release.yml"),
        "hand-written workflows are not ours: {}",
        both(&o)
    );
    ok(mesh(root, &["render"]));
    assert_eq!(std::fs::read_to_string(&prod).unwrap(), text);
    assert!(wf.join("release.yml").is_file());
}

#[test]
fn mesh_env_writes_what_config_reads() {
    let dir = example_domain();
    let root = dir.path();
    let out = ok(mesh(root, &["env", "--env", "dev"]));
    assert!(out.contains("wrote .env"), "{out}");
    let text = std::fs::read_to_string(root.join(".env")).unwrap();
    for line in [
        "ENV=dev",
        "AWS_REGION=eu-west-1",
        "F01_AWS_REGION=eu-west-1",
        "# F01_LOG_LEVEL=",
        "# F01_S3_ENDPOINT=",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "no `{line}` in\n{text}");
    }
    let shown = ok(mesh(root, &["config", "show", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["env"]["value"], "dev", "{shown}");
    assert_eq!(v["aws_region"]["value"], "eu-west-1");
    // An existing .env is never replaced silently.
    let o = mesh(root, &["env"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("--force"));
    ok(mesh(root, &["env", "--force"]));
    assert!(std::fs::read_to_string(root.join(".env"))
        .unwrap()
        .contains("\nENV=local\n"));
}

/// The patched moto server, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_moto() -> Moto {
    let python = std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs moto and sets it"));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(python)
        .arg(repo_root().join("tests/tools/moto_server_patched.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let mut moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto exited with {status} before listening (is moto[server] installed in MESH_PYTHON?)");
        }
        assert!(
            Instant::now() < deadline,
            "moto did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

fn on_moto<'a>(cmd: &'a mut Command, m: &Moto) -> &'a mut Command {
    cmd.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", m.port))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
}

fn create_bucket(m: &Moto, bucket: &str) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", m.port)).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        m.port
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "CreateBucket {bucket}: {reply}");
}

#[test]
fn prod_uploads_outside_ci_need_yes() {
    let m = start_moto();
    create_bucket(&m, "f01-artifacts-prod");
    let dir = example_domain();
    let root = dir.path();
    let args = ["--root", root.to_str().unwrap(), "deploy", "artifacts", "--env", "prod"];

    // Outside CI, without --yes: refused before anything is built or sent, and says why.
    let o = on_moto(&mut mesh_cmd(), &m).args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("refusing to upload artifacts to prod from outside CI"),
        "{text}"
    );
    assert!(text.contains("required reviewer") && text.contains("--yes"), "{text}");
    // CI=false is not CI.
    let o = on_moto(&mut mesh_cmd(), &m)
        .args(args)
        .env("CI", "false")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    // Other environments and dry runs are not gated.
    ok(on_moto(&mut mesh_cmd(), &m)
        .args(args)
        .arg("--dry-run")
        .output()
        .unwrap());
    create_bucket(&m, "f01-artifacts-dev");
    ok(on_moto(&mut mesh_cmd(), &m)
        .args(["--root", root.to_str().unwrap(), "deploy", "artifacts", "--env", "dev"])
        .output()
        .unwrap());

    // With --yes, or inside CI (the approved workflow), the upload happens.
    let out = ok(on_moto(&mut mesh_cmd(), &m).args(args).arg("--yes").output().unwrap());
    assert!(out.contains("uploaded 9 artifacts to prod"), "{out}");
    for var in ["CI", "GITHUB_ACTIONS"] {
        let out = ok(on_moto(&mut mesh_cmd(), &m)
            .args(args)
            .env(var, "true")
            .output()
            .unwrap());
        assert!(out.contains("uploaded 9 artifacts to prod"), "{var}: {out}");
    }
}
