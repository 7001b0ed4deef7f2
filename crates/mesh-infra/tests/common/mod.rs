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

/// A moto server started by a test, killed when dropped.
pub struct MotoServer {
    child: std::process::Child,
    pub endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The patched moto server (tests/tools/moto_server_patched.py) behind `tools/moto_faults.py`,
/// which injects the faults named by `env` (`MESH_MOTO_FAILING_JOBS`, `MESH_MOTO_THROTTLED_JOBS`).
pub fn start_moto_with_faults(account: &str, env: &[(&str, &str)]) -> MotoServer {
    start_moto_tool("moto_faults.py", account, env)
}

/// The patched moto server behind one of the fault injectors in `tests/tools/`.
pub fn start_moto_tool(injector: &str, account: &str, env: &[(&str, &str)]) -> MotoServer {
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};
    let python = tool("MESH_PYTHON");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(tools_dir().join(injector))
        .arg(repo_root().join("tests/tools/moto_server_patched.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ACCOUNT_ID", account)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut moto = MotoServer {
        child: cmd.spawn().expect("start moto"),
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
