//! The generated GitHub workflows: snapshots, the committed `.github/workflows/` is current,
//! and the structure read back by an independent YAML parser (PyYAML, MESH_PYTHON): pinned
//! actions, least permissions, no expression inside a script, every deploy uploads the
//! artifacts after `terraform apply` in the same approved job, prod has its reviewer gate, and
//! the gate itself refuses an environment without reviewers or whose deploys their own author
//! may approve (run against a local fake API), and pull requests never reach prod.
//! zizmor (MESH_ZIZMOR) finds nothing in them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use mesh_domain::{Domain, Env, Naming};
use mesh_infra::workflows::{self, MeshSource, HEADER};
use mesh_infra::{Drift, Rendered};
use serde_json::Value;

fn example() -> Rendered {
    workflows::render(&common::example_domain(), &MeshSource::Workspace).expect("the example domain has workflows")
}

fn git_source() -> MeshSource {
    MeshSource::Git {
        url: "https://example.invalid/meshkit".into(),
        tag: "v0.1.0".into(),
    }
}

/// A domain other than the example: another abbreviation, region, versions and accounts, so
/// a value copied into the generator instead of derived from the model shows up.
fn other_domain() -> (tempfile::TempDir, Domain) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("domain.json"),
        r#"{"domain_name": "logistics", "domain_abbr": "lg7", "aws_region": "us-east-2",
            "glue_version": "4.0", "python_version": "3.10", "terraform_version": "1.10.3",
            "rust_toolchain": "1.96",
            "aws_accounts": {"dev": "444444444444", "int": "555555555555", "prod": "666666666666"}}"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("projects")).unwrap();
    let d = mesh_domain::load_domain(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, d)
}

/// Every workflow parsed by PyYAML, by file name.
fn parse(rendered: &Rendered) -> Vec<(String, Value)> {
    let python = common::tool("MESH_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    mesh_infra::write(rendered, dir.path()).unwrap();
    let paths: Vec<PathBuf> = rendered.files.iter().map(|f| dir.path().join(&f.path)).collect();
    let out = Command::new(python)
        .arg(common::tools_dir().join("yaml_to_json.py"))
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyYAML cannot read the workflows: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    paths
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                v[p.to_string_lossy().as_ref()].clone(),
            )
        })
        .collect()
}

fn doc<'a>(docs: &'a [(String, Value)], name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_array().expect("a job with steps")
}

fn run_of(step: &Value) -> &str {
    step["run"].as_str().unwrap_or("")
}

fn position(job: &Value, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    steps(job)
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no step that {what} in {job:#}"))
}

/// The example's workflows are committed in .github/workflows (checked by
/// `committed_workflows_match_the_model`); a domain of its own has no committed copy here.
#[test]
fn snapshot_of_a_domain_repositorys_own_ci() {
    // A domain repository of its own installs mesh instead of building meshkit.
    let (_dir, d) = other_domain();
    let git = workflows::render(&d, &git_source()).unwrap();
    insta::assert_snapshot!("other_domain__ci.yml", &git.files[0].contents);
    let prod = git.files.iter().find(|f| f.path.ends_with("deploy-prod.yml")).unwrap();
    insta::assert_snapshot!("other_domain__deploy-prod.yml", &prod.contents);
}

#[test]
fn committed_workflows_match_the_model() {
    let drift = workflows::drift(&example(), &common::repo_root()).unwrap();
    assert!(
        drift.is_empty(),
        ".github/workflows is out of date ({drift:?}); run `mesh render` and commit the result"
    );
}

#[test]
fn drift_finds_changed_missing_and_stale_workflows_but_leaves_hand_written_ones() {
    let rendered = example();
    let dir = tempfile::tempdir().unwrap();
    mesh_infra::write(&rendered, dir.path()).unwrap();
    assert!(workflows::drift(&rendered, dir.path()).unwrap().is_empty());
    let wf = dir.path().join(".github/workflows");
    std::fs::write(wf.join("deploy-int.yml"), "# edited\n").unwrap();
    std::fs::remove_file(wf.join("ci.yml")).unwrap();
    std::fs::write(wf.join("deploy-qa.yml"), format!("{HEADER}\nname: old\n")).unwrap();
    std::fs::write(wf.join("release.yml"), "name: release\n").unwrap();
    assert_eq!(
        workflows::drift(&rendered, dir.path()).unwrap(),
        vec![
            Drift::Missing(".github/workflows/ci.yml".into()),
            Drift::Differs(".github/workflows/deploy-int.yml".into()),
            Drift::Stale(".github/workflows/deploy-qa.yml".into()),
        ]
    );
}

#[test]
fn a_missing_account_is_named() {
    let (dir, _) = other_domain();
    let path = dir.path().join("domain.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(r#", "prod": "666666666666""#, "")).unwrap();
    let d = mesh_domain::load_domain(dir.path()).unwrap();
    let err = workflows::render(&d, &MeshSource::Workspace).unwrap_err().to_string();
    assert!(err.contains("aws_accounts.prod is missing"), "{err}");
}

/// The rules every workflow keeps, whatever the domain.
fn check_security(docs: &[(String, Value)]) {
    for (name, w) in docs {
        assert_eq!(
            w["permissions"],
            serde_json::json!({}),
            "{name}: the workflow grants nothing"
        );
        for (job_name, job) in w["jobs"].as_object().unwrap() {
            let perms = job["permissions"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}/{job_name}: no permissions"));
            for (scope, level) in perms {
                assert!(
                    level == "read" || (scope == "id-token" && level == "write"),
                    "{name}/{job_name}: {scope}: {level} is more than a deploy needs"
                );
            }
            for step in steps(job) {
                if let Some(uses) = step["uses"].as_str() {
                    let (_, sha) = uses.split_once('@').unwrap_or_else(|| panic!("{uses} is unpinned"));
                    assert!(
                        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                        "{name}: {uses} is not pinned to a full commit SHA"
                    );
                    if uses.starts_with("actions/checkout@") {
                        assert_eq!(step["with"]["persist-credentials"], false, "{name}/{job_name}");
                    }
                }
                assert!(
                    !run_of(step).contains("${{"),
                    "{name}/{job_name}: an expression is expanded inside a script: {}",
                    run_of(step)
                );
            }
        }
    }
}

/// A plan job shows both plans as its job summary: `mesh plan` of its environment in
/// Markdown and the text of the saved Terraform plan, written to `$GITHUB_STEP_SUMMARY`.
fn check_plan_summary(job: &Value, env: Env) {
    let tf_dir = format!("infra/envs/{env}");
    let plan = position(job, "saves a Terraform plan", |s| {
        run_of(s).starts_with("terraform plan ") && run_of(s).contains(" -out=tfplan")
    });
    assert_eq!(steps(job)[plan]["working-directory"], tf_dir.as_str());
    assert!(
        run_of(&steps(job)[plan]).contains("terraform show -no-color tfplan | tee tfplan.txt"),
        "the plan's text is logged and kept for the summary"
    );
    let mesh = position(job, "runs mesh plan", |s| {
        run_of(s).contains(&format!(
            "mesh plan --env {env} --format markdown --check | tee {tf_dir}/mesh-plan.md"
        ))
    });
    let summary = position(job, "writes the job summary", |s| {
        run_of(s).contains(">> \"$GITHUB_STEP_SUMMARY\"")
    });
    let text = run_of(&steps(job)[summary]);
    assert_eq!(steps(job)[summary]["working-directory"], tf_dir.as_str());
    assert!(
        text.contains("cat mesh-plan.md") && text.contains("tfplan.txt"),
        "{text}"
    );
    assert!(
        plan < summary && mesh < summary,
        "the summary is written after both plans"
    );
}

/// The deploy job applies the plan its run's plan job saved and showed, never a fresh one:
/// it needs the plan job, downloads that job's artifact from this run (no `run-id`, so no
/// other run's plan), into the directory Terraform runs in, and applies that file; no
/// `terraform plan` runs in it. The plan job plans with the read-only role before any
/// approval and uploads exactly the file the deploy job applies.
fn check_applies_the_saved_plan(d: &Domain, w: &Value, env: Env) {
    let n = Naming::for_domain(d, env);
    let account = &d.accounts[&env];
    let tf_dir = format!("infra/envs/{env}");
    let deploy = &w["jobs"]["deploy"];
    let plan_job = &w["jobs"]["plan"];
    assert!(plan_job.is_object(), "deploy-{env} has no plan job");
    let needs: Vec<&str> = match &deploy["needs"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        other => panic!("deploy-{env}: needs {other}"),
    };
    assert!(
        needs.contains(&"plan"),
        "deploy-{env}: the deploy job does not wait for the plan: {needs:?}"
    );
    assert_eq!(plan_job["needs"], "check");
    // The approval is asked after the plan: the plan job is outside the deploy environment.
    assert_ne!(
        plan_job["environment"],
        env.as_str(),
        "deploy-{env}: the plan waits for the approval"
    );
    if env == Env::Prod {
        assert!(
            plan_job["environment"].is_null(),
            "the prod plan role trusts no environment"
        );
    }
    let plan_role = format!("arn:aws:iam::{account}:role/{}", n.github_plan_role());
    let creds = position(plan_job, "assumes the plan role", |s| {
        s["with"]["role-to-assume"] == plan_role.as_str()
    });
    for s in steps(plan_job) {
        let role = s["with"]["role-to-assume"].as_str().unwrap_or("");
        assert!(role.is_empty() || role == plan_role, "deploy-{env}/plan assumes {role}");
    }
    check_plan_summary(plan_job, env);
    let plan = position(plan_job, "saves a Terraform plan", |s| {
        run_of(s).starts_with("terraform plan ")
    });
    let upload = position(plan_job, "uploads the saved plan", |s| {
        s["uses"].as_str().unwrap_or("").starts_with("actions/upload-artifact@")
    });
    assert!(creds < plan && plan < upload);
    let artifact = steps(plan_job)[upload]["with"]["name"].as_str().unwrap().to_string();
    let uploaded: Vec<&str> = steps(plan_job)[upload]["with"]["path"]
        .as_str()
        .unwrap()
        .lines()
        .collect();
    assert!(uploaded.contains(&format!("{tf_dir}/tfplan").as_str()), "{uploaded:?}");
    assert!(
        uploaded.contains(&format!("{tf_dir}/tfplan.lock.hcl").as_str()),
        "{uploaded:?}"
    );
    assert_eq!(steps(plan_job)[upload]["with"]["if-no-files-found"], "error");

    for s in steps(deploy) {
        assert!(
            !run_of(s).contains("terraform plan"),
            "deploy-{env}: the deploy job makes a fresh plan: {}",
            run_of(s)
        );
    }
    let download = position(deploy, "downloads the saved plan", |s| {
        s["uses"]
            .as_str()
            .unwrap_or("")
            .starts_with("actions/download-artifact@")
            && s["with"]["name"] == artifact.as_str()
    });
    let with = steps(deploy)[download]["with"].as_object().unwrap();
    assert!(
        !with.contains_key("run-id") && !with.contains_key("github-token") && !with.contains_key("pattern"),
        "deploy-{env}: the plan may come from another run: {with:?}"
    );
    assert_eq!(with["path"], tf_dir.as_str(), "the plan lands where Terraform runs");
    let init = position(deploy, "initialises Terraform", |s| {
        run_of(s).contains("terraform init")
    });
    assert!(
        run_of(&steps(deploy)[init]).contains("cp tfplan.lock.hcl .terraform.lock.hcl")
            && run_of(&steps(deploy)[init]).contains("-lockfile=readonly"),
        "deploy-{env}: the providers of the plan are installed"
    );
    let apply = position(deploy, "applies", |s| run_of(s).contains("terraform apply"));
    assert_eq!(
        run_of(&steps(deploy)[apply]).trim(),
        "terraform apply -input=false tfplan",
        "deploy-{env}: apply the saved plan file, nothing else"
    );
    assert_eq!(steps(deploy)[apply]["working-directory"], tf_dir.as_str());
    let creds = position(deploy, "assumes the deploy role", |s| {
        s["with"]["role-to-assume"] == format!("arn:aws:iam::{account}:role/{}", n.github_deploy_role()).as_str()
    });
    assert!(download < init && creds < init && init < apply);
}

/// Deploys and plans as the model says: per environment, its branch, role, versions and paths.
fn check_deploys(d: &Domain, docs: &[(String, Value)], source: &MeshSource) {
    let ci = doc(docs, "ci.yml");
    for env in Env::CLOUD {
        let n = Naming::for_domain(d, env);
        let account = &d.accounts[&env];
        let branch = env.branch().unwrap();
        let tf_dir = format!("infra/envs/{env}");
        let w = doc(docs, &format!("deploy-{env}.yml"));
        assert_eq!(w["on"]["push"]["branches"], serde_json::json!([branch]));
        let job = &w["jobs"]["deploy"];
        assert_eq!(
            job["environment"],
            env.as_str(),
            "deploy-{env} runs in its GitHub environment"
        );
        check_applies_the_saved_plan(d, w, env);
        let role = format!("arn:aws:iam::{account}:role/{}", n.github_deploy_role());
        let creds = position(job, "assumes the deploy role", |s| {
            s["with"]["role-to-assume"] == role.as_str()
        });
        assert_eq!(steps(job)[creds]["with"]["aws-region"], d.region.as_str());
        let tf = position(job, "installs Terraform", |s| {
            s["with"]["terraform_version"].is_string()
        });
        assert_eq!(
            steps(job)[tf]["with"]["terraform_version"],
            d.versions.terraform.as_str()
        );
        let apply = position(job, "applies", |s| run_of(s).starts_with("terraform apply"));
        assert_eq!(steps(job)[apply]["working-directory"], tf_dir.as_str());
        let build = position(job, "builds", |s| {
            run_of(s).contains(&format!("mesh build --env {env}"))
        });
        let upload = position(job, "uploads", |s| {
            run_of(s).contains(&format!("mesh deploy artifacts --env {env}"))
        });
        assert!(
            creds < apply && apply < build && build < upload,
            "deploy-{env}: credentials, apply, build, upload must run in that order"
        );
        // A failed upload fails the job: nothing lets the step fail quietly.
        let up = &steps(job)[upload];
        assert!(up["continue-on-error"].is_null() && up["if"].is_null(), "{up}");
        assert!(job["continue-on-error"].is_null());
        assert!(!run_of(up).contains("--dry-run") && !run_of(up).contains("||"));
        assert_eq!(job["defaults"]["run"]["shell"], "bash");
        // Nothing deploys outside this job.
        for (other, j) in w["jobs"].as_object().unwrap() {
            if other != "deploy" {
                assert!(
                    steps(j)
                        .iter()
                        .all(|s| !run_of(s).contains("terraform apply") && !run_of(s).contains("deploy artifacts")),
                    "deploy-{env}/{other} changes something"
                );
            }
        }
        // The reviewer gate: prod only, first step, before any change.
        let gate = steps(job)
            .iter()
            .position(|s| run_of(s).contains(&format!("/environments/{env}")));
        if env == Env::Prod {
            assert_eq!(gate, Some(0), "the prod gate is the first step");
            let g = &steps(job)[0];
            assert!(run_of(g).contains(r#"select(.type == "required_reviewers") | (.reviewers // []) | length"#));
            assert!(
                run_of(g).contains(".prevent_self_review == true"),
                "the prod gate must refuse an environment whose deploys their author can approve"
            );
            assert_eq!(g["env"]["GH_TOKEN"], "${{ github.token }}");
            assert_eq!(job["permissions"]["actions"], "read");
        } else {
            assert_eq!(gate, None, "{env} has no reviewer gate");
        }
        // Pull requests never reach prod: no plan job, no step assuming a role of its account.
        if env == Env::Prod {
            assert!(ci["jobs"]["plan-prod"].is_null(), "a pull request plans prod");
            for (job_name, j) in ci["jobs"].as_object().unwrap() {
                for s in steps(j) {
                    let role = s["with"]["role-to-assume"].as_str().unwrap_or("");
                    assert!(
                        !role.contains(&format!(":{account}:"))
                            || d.accounts.values().filter(|a| *a == account).count() > 1,
                        "ci/{job_name} assumes {role} of the prod account"
                    );
                    assert!(!role.ends_with(&format!("-{env}")), "ci/{job_name} assumes {role}");
                }
                let cond = j["if"].as_str().unwrap_or("");
                assert!(
                    !cond.contains(&format!("'{branch}'")),
                    "ci/{job_name} runs for pull requests into {branch}: {cond}"
                );
            }
            continue;
        }
        // The pull-request plan of this environment: read-only role, never an apply.
        let pj = &ci["jobs"][format!("plan-{env}")];
        assert!(
            pj["if"]
                .as_str()
                .unwrap()
                .contains(&format!("github.base_ref == '{branch}'")),
            "{pj}"
        );
        let plan_role = format!("arn:aws:iam::{account}:role/{}", n.github_plan_role());
        position(pj, "assumes the plan role", |s| {
            s["with"]["role-to-assume"] == plan_role.as_str()
        });
        position(pj, "plans", |s| run_of(s).starts_with("terraform plan"));
        check_plan_summary(pj, env);
        for s in steps(pj) {
            assert!(!run_of(s).contains("apply") && !run_of(s).contains("deploy"), "{s}");
        }
        for (scope, level) in pj["permissions"].as_object().unwrap() {
            assert!(level == "read" || scope == "id-token", "plan-{env}: {scope}: {level}");
        }
        assert_ne!(
            pj["environment"],
            env.as_str(),
            "plans never use the deploy environment"
        );
    }
    // Every pull request: the model plan against its base branch, with no AWS at all.
    let mp = &ci["jobs"]["plan-model"];
    assert_eq!(mp["if"], "github.event_name == 'pull_request'");
    assert!(mp["permissions"]["id-token"].is_null(), "the model plan needs no AWS");
    let s = position(mp, "plans the model against the base branch", |s| {
        run_of(s).contains("mesh plan --against \"origin/$GITHUB_BASE_REF\" --format markdown")
    });
    assert!(run_of(&steps(mp)[s]).contains("\"$GITHUB_STEP_SUMMARY\""));
    let co = position(mp, "checks out", |s| {
        s["uses"].as_str().unwrap_or("").starts_with("actions/checkout@")
    });
    assert_eq!(steps(mp)[co]["with"]["fetch-depth"], 0, "the base branch is fetched");
    // The check job: the model's Rust toolchain, the render check and the binary handed over.
    for (name, w) in docs {
        let check = &w["jobs"]["check"];
        position(check, "installs the model's Rust", |s| {
            run_of(s).contains(&format!("rustup toolchain install {} ", d.versions.rust))
        });
        position(check, "checks the rendering", |s| run_of(s).ends_with("render --check"));
        position(check, "audits the workflows", |s| {
            run_of(s).contains("zizmor\" --offline --min-severity medium .github/workflows/")
        });
        let install = match source {
            MeshSource::Workspace => "cargo build -p mesh-cli",
            MeshSource::Git { .. } => "cargo install --locked --git",
        };
        position(check, "gets mesh", |s| run_of(s).contains(install));
        assert!(
            w["jobs"]["check"]["permissions"]["id-token"].is_null(),
            "{name}: checks need no AWS"
        );
    }
}

#[test]
fn the_example_workflows_are_secure_and_deploy_everything_per_environment() {
    let d = common::example_domain();
    let docs = parse(&example());
    assert_eq!(docs.len(), 4);
    check_security(&docs);
    check_deploys(&d, &docs, &MeshSource::Workspace);
}

/// The `sub` of the OIDC token GitHub gives `job` of workflow `w`: its environment's when it
/// declares one, else the branch a push runs on, else `pull_request`.
fn token_subjects(repo: &str, w: &Value, job: &Value) -> Vec<String> {
    if let Some(e) = job["environment"].as_str() {
        return vec![format!("repo:{repo}:environment:{e}")];
    }
    let mut subs = Vec::new();
    for b in w["on"]["push"]["branches"].as_array().into_iter().flatten() {
        subs.push(format!("repo:{repo}:ref:refs/heads/{}", b.as_str().unwrap()));
    }
    if !w["on"]["pull_request"].is_null() {
        subs.push(format!("repo:{repo}:pull_request"));
    }
    subs
}

/// The `sub` each role of a rendered `github.tf` trusts, by role name.
fn trusted_subjects(github_tf: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut role = None;
    for line in github_tf.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("name = \"") {
            role = Some(name.trim_end_matches('"').to_string());
        }
        if let Some(sub) = line.strip_prefix("\"token.actions.githubusercontent.com:sub\" = \"") {
            out.push((role.clone().unwrap(), sub.trim_end_matches('"').to_string()));
        }
    }
    out
}

/// Pull requests never reach prod in AWS either. Every environment has a deploy role (trusting
/// its GitHub environment) and a read-only plan role; prod's plan role trusts only jobs without
/// an environment in runs of `main` (the deploy workflow's plan job), never a pull request's
/// token nor any GitHub environment a pull request's workflow could name. And every role a
/// generated job assumes trusts the token that job gets.
#[test]
fn every_job_can_assume_its_role_and_no_pull_request_a_prod_one() {
    let d = common::example_domain();
    let repo = d.github_repository.clone().unwrap();
    let rendered = common::render_all(&d);
    let docs = parse(&example());
    let mut trusts = Vec::new();
    for env in Env::CLOUD {
        let github = rendered
            .files
            .iter()
            .find(|f| f.path == Path::new(&format!("envs/{env}/github.tf")))
            .unwrap();
        let n = Naming::for_domain(&d, env);
        let subs = trusted_subjects(&github.contents);
        let plan_sub = match env {
            Env::Prod => format!("repo:{repo}:ref:refs/heads/main"),
            _ => format!("repo:{repo}:environment:{env}-plan"),
        };
        assert_eq!(
            subs,
            vec![
                (n.github_deploy_role(), format!("repo:{repo}:environment:{env}")),
                (n.github_plan_role(), plan_sub),
            ],
            "{env}"
        );
        assert!(github.contents.contains("arn:aws:iam::aws:policy/ReadOnlyAccess"));
        assert!(github.contents.contains("ReadNoObjectButTheStateAndTableMetadata"));
        for (role, sub) in subs {
            trusts.push((d.accounts[&env].clone(), role, sub));
        }
    }
    let prod_account = &d.accounts[&Env::Prod];
    for (name, w) in &docs {
        for (job_name, job) in w["jobs"].as_object().unwrap() {
            let subs = token_subjects(&repo, w, job);
            for s in steps(job) {
                let Some(arn) = s["with"]["role-to-assume"].as_str() else {
                    continue;
                };
                let (account, role) = arn
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|r| r.split_once(":role/"))
                    .unwrap();
                let trusted: Vec<&str> = trusts
                    .iter()
                    .filter(|(a, r, _)| a == account && r == role)
                    .map(|(_, _, s)| s.as_str())
                    .collect();
                assert!(
                    !trusted.is_empty() && subs.iter().all(|s| trusted.contains(&s.as_str())),
                    "{name}/{job_name} assumes {role}, which trusts {trusted:?}, with a token of {subs:?}"
                );
            }
        }
    }
    // No token of a pull request, whatever environment its workflow names, is trusted in prod.
    for (account, role, sub) in &trusts {
        if account == prod_account {
            assert!(
                !sub.ends_with(":pull_request") && !sub.contains(":environment:prod-plan"),
                "{role}: {sub}"
            );
            assert!(
                sub.ends_with(":environment:prod") || sub.ends_with(":ref:refs/heads/main"),
                "{role}: {sub}"
            );
        }
    }
}

/// What the plan role may read, evaluated with iam-rs: its inline policy over a stand-in for
/// AWS's ReadOnlyAccess (every `s3:Get*`): the Terraform state and the Iceberg metadata files
/// `mesh plan --env` loads, never a data file, a manifest, a raw file or a job's artifacts.
#[test]
fn the_plan_role_reads_the_state_and_table_metadata_but_no_data() {
    use iam_rs::{Arn, Decision, IAMPolicy, IAMRequest, PolicyEvaluator, Principal, PrincipalId};
    let d = common::example_domain();
    for env in Env::CLOUD {
        let n = Naming::for_domain(&d, env);
        let arns = mesh_infra::policy::arns(&d, &n).unwrap();
        let inline = mesh_infra::render::github_plan_policy(&n, &arns);
        let read_only = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}]});
        let evaluator = PolicyEvaluator::with_policies(vec![
            IAMPolicy::from_json(&read_only.to_string()).unwrap(),
            IAMPolicy::from_json(&inline.to_string()).unwrap(),
        ]);
        let role = arns.iam(&format!("role/{}", n.github_plan_role()));
        let can_get = |bucket: String, key: &str| {
            let req = IAMRequest::new(
                Principal::Aws(PrincipalId::String(role.clone())),
                "s3:GetObject",
                Arn::parse(&arns.object(&bucket, key)).unwrap(),
            );
            evaluator.evaluate(&req).unwrap().decision == Decision::Allow
        };
        let curated = n.bucket(mesh_domain::BucketKind::Data(mesh_domain::Layer::Curated));
        let refined = n.bucket(mesh_domain::BucketKind::Data(mesh_domain::Layer::Refined));
        let raw = n.bucket(mesh_domain::BucketKind::Data(mesh_domain::Layer::Raw));
        let artifacts = n.bucket(mesh_domain::BucketKind::Artifacts);
        let meta = "pj01/iceberg/daily_sales/metadata/00003-6f1e.metadata.json";
        assert!(can_get(artifacts.clone(), &n.terraform_state_key()), "{env}: the state");
        assert!(can_get(curated.clone(), meta), "{env}: a curated table's metadata");
        assert!(can_get(
            refined.clone(),
            "pj02/iceberg/orders_clean/metadata/00001-a.metadata.json"
        ));
        for (bucket, key) in [
            (
                curated.clone(),
                "pj01/iceberg/daily_sales/data/sale_date_month=2026-11/00000-0.parquet",
            ),
            (curated.clone(), "pj01/iceberg/daily_sales/metadata/snap-1-1-a.avro"),
            (curated.clone(), "pj01/iceberg/daily_sales/metadata/a-m0.avro"),
            (raw.clone(), "pj01/sales_events/event_date=2026-11-27/part-00000.csv"),
            (raw.clone(), meta),
            (artifacts.clone(), "jobs/pj01/daily_sales.json"),
            (artifacts.clone(), "terraform/other.tfstate"),
        ] {
            assert!(
                !can_get(bucket.clone(), key),
                "{env}: the plan role reads {bucket}/{key}"
            );
        }
    }
}

#[test]
fn another_domains_workflows_follow_its_own_model() {
    let (_dir, d) = other_domain();
    let rendered = workflows::render(&d, &git_source()).unwrap();
    let docs = parse(&rendered);
    check_security(&docs);
    check_deploys(&d, &docs, &git_source());
    let all: String = rendered.files.iter().map(|f| f.contents.as_str()).collect();
    for leaked in ["f01-", "eu-west-1", "111111111111", "1.9.8", "\"1.95\""] {
        assert!(
            !all.contains(leaked),
            "`{leaked}` of the example domain leaked into another domain"
        );
    }
}

#[test]
fn zizmor_finds_nothing() {
    let zizmor = common::tool("MESH_ZIZMOR");
    let (_dir, other) = other_domain();
    for (what, rendered) in [
        ("example", example()),
        ("other", workflows::render(&other, &git_source()).unwrap()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        mesh_infra::write(&rendered, dir.path()).unwrap();
        // Every finding, at any severity, in the regular and the pedantic persona.
        for persona in ["regular", "pedantic"] {
            let out = Command::new(&zizmor)
                .args(["--offline", "--no-progress", "--color", "never", "--persona", persona])
                .arg(dir.path().join(".github/workflows"))
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.contains("No findings"),
                "{what} ({persona}): zizmor found something:\n{text}"
            );
        }
    }
}

/// A one-request-at-a-time HTTP server that answers every request with `status` and `body`
/// and records the request lines and headers it saw.
fn fake_github(status: u16, body: &'static str) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end().to_string();
            if line.is_empty() {
                break;
            }
            seen.push(line);
        }
        write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let _ = reader.read(&mut [0u8; 1]);
        seen
    });
    (url, handle)
}

fn run_gate(script: &str, api: &str, tmp: &Path) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("GITHUB_API_URL", api)
        .env("GITHUB_REPOSITORY", "acme/finance01")
        .env("RUNNER_TEMP", tmp)
        .env("GH_TOKEN", "token-123")
        .output()
        .unwrap()
}

#[test]
fn the_prod_gate_refuses_an_environment_without_reviewers_or_with_self_review() {
    let docs = parse(&example());
    let job = &doc(&docs, "deploy-prod.yml")["jobs"]["deploy"];
    let script = run_of(&steps(job)[0]).to_string();
    let tmp = tempfile::tempdir().unwrap();
    let reviewed = r#"{"name": "prod", "protection_rules": [
        {"id": 1, "type": "wait_timer", "wait_timer": 0},
        {"id": 2, "type": "required_reviewers", "prevent_self_review": true,
         "reviewers": [{"type": "Team", "reviewer": {"slug": "platform"}}]}]}"#;
    let cases: [(u16, &'static str, bool, &str); 8] = [
        (
            200,
            reviewed,
            true,
            "prod requires approval by 1 reviewer(s), never the deploy's own author",
        ),
        // Reviewers, but the deploy's author may approve it alone.
        (
            200,
            r#"{"name": "prod", "protection_rules": [{"type": "required_reviewers", "prevent_self_review": false,
                "reviewers": [{"type": "User", "reviewer": {"login": "alice"}}, {"type": "User", "reviewer": {"login": "bob"}}]}]}"#,
            false,
            "prevent_self_review is off",
        ),
        // An older API answer without the field counts as off.
        (
            200,
            r#"{"name": "prod", "protection_rules": [{"type": "required_reviewers",
                "reviewers": [{"type": "Team", "reviewer": {"slug": "platform"}}]}]}"#,
            false,
            "prevent_self_review is off",
        ),
        // A truthy string is not `true`.
        (
            200,
            r#"{"name": "prod", "protection_rules": [{"type": "required_reviewers", "prevent_self_review": "yes",
                "reviewers": [{"type": "Team", "reviewer": {"slug": "platform"}}]}]}"#,
            false,
            "prevent_self_review is off",
        ),
        (
            200,
            r#"{"name": "prod", "protection_rules": []}"#,
            false,
            "has no required reviewers",
        ),
        (200, r#"{"name": "prod"}"#, false, "has no required reviewers"),
        (
            200,
            r#"{"name": "prod", "protection_rules": [{"type": "required_reviewers", "reviewers": []}]}"#,
            false,
            "has no required reviewers",
        ),
        (404, r#"{"message": "Not Found"}"#, false, "answered HTTP 404"),
    ];
    for (status, body, passes, says) in cases {
        let (url, server) = fake_github(status, body);
        let out = run_gate(&script, &url, tmp.path());
        let seen = server.join().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), passes, "{body}: {text}");
        assert!(text.contains(says), "{body}: expected `{says}` in {text}");
        assert_eq!(seen[0], "GET /repos/acme/finance01/environments/prod HTTP/1.1");
        assert!(seen.iter().any(|h| h == "Authorization: Bearer token-123"), "{seen:?}");
    }
}

/// The structure checks above fail on a broken workflow: each mutation of the rendered text
/// must be caught, or those checks would prove nothing.
#[test]
fn the_structure_checks_catch_broken_workflows() {
    let d = common::example_domain();
    let good = example();
    let prod = ".github/workflows/deploy-prod.yml";
    let ci = ".github/workflows/ci.yml";
    let checkout = format!("actions/checkout@{}", workflows::CHECKOUT.sha);
    let mutations: Vec<(&str, &str, String, String)> = vec![
        (
            "no reviewer gate",
            prod,
            "select(.type == \"required_reviewers\") | (.reviewers".into(),
            "select(.type == \"wait_timer\") | (.reviewers".into(),
        ),
        (
            "the author may approve their own deploy",
            prod,
            ".prevent_self_review == true".into(),
            ".prevent_self_review != null".into(),
        ),
        (
            "a pull request plans prod",
            ci,
            "github.base_ref == 'int'".into(),
            "github.base_ref == 'main'".into(),
        ),
        (
            "upload before apply",
            prod,
            "run: terraform apply -input=false tfplan".into(),
            "run: .mesh/bin/mesh deploy artifacts --env prod && terraform apply -input=false tfplan".into(),
        ),
        (
            "upload allowed to fail",
            prod,
            "run: .mesh/bin/mesh deploy artifacts --env prod".into(),
            "run: .mesh/bin/mesh deploy artifacts --env prod || true".into(),
        ),
        (
            "a plan that can write",
            ci,
            "    environment: dev-plan\n    permissions:\n".into(),
            "    environment: dev-plan\n    permissions:\n      pull-requests: write\n".into(),
        ),
        (
            "a fresh plan in the deploy job",
            prod,
            "run: terraform apply -input=false tfplan".into(),
            "run: terraform plan -input=false -out=tfplan && terraform apply -input=false tfplan".into(),
        ),
        (
            "an apply without the saved plan",
            prod,
            "run: terraform apply -input=false tfplan".into(),
            "run: terraform apply -input=false -auto-approve".into(),
        ),
        (
            "the plan of another run",
            prod,
            "          name: plan-prod\n          path: infra/envs/prod\n".into(),
            "          name: plan-prod\n          path: infra/envs/prod\n          run-id: \"1234\"\n".into(),
        ),
        (
            "another artifact than the plan job's",
            prod,
            "          name: plan-prod\n          path: infra/envs/prod\n".into(),
            "          name: plan-prod-previous\n          path: infra/envs/prod\n".into(),
        ),
        (
            "the deploy does not wait for the plan",
            prod,
            "    needs: [check, plan]\n".into(),
            "    needs: check\n".into(),
        ),
        (
            "the plan waits for the approval",
            prod,
            "    name: plan prod\n    needs: check\n".into(),
            "    name: plan prod\n    needs: check\n    environment: prod\n".into(),
        ),
        (
            "the plan is not shown",
            prod,
            "} >> \"$GITHUB_STEP_SUMMARY\"".into(),
            "} > /dev/null".into(),
        ),
        (
            "the pull request's plan is not shown",
            ci,
            "mesh plan --env dev --format markdown".into(),
            "mesh validate".into(),
        ),
        (
            "an unpinned action",
            prod,
            checkout.clone(),
            "actions/checkout@v4".into(),
        ),
        (
            "credentials kept",
            ci,
            "persist-credentials: false".into(),
            "persist-credentials: true".into(),
        ),
        (
            "an expression in a script",
            ci,
            "run: cargo fmt --all --check".into(),
            "run: echo ${{ github.head_ref }}".into(),
        ),
    ];
    for (what, file, from, to) in mutations {
        let mut bad = good.clone();
        let f = bad.files.iter_mut().find(|f| f.path == Path::new(file)).unwrap();
        assert!(f.contents.contains(&from), "{what}: `{from}` not in {file}");
        f.contents = f.contents.replacen(&from, &to, 1);
        let docs = parse(&bad);
        // The expected failure's message is noise here; only whether it fails matters.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let caught = std::panic::catch_unwind(|| {
            check_security(&docs);
            check_deploys(&d, &docs, &MeshSource::Workspace);
        });
        std::panic::set_hook(hook);
        assert!(caught.is_err(), "{what}: the structure checks did not notice");
    }
}

/// The deploy job applies the plan its own run's plan job saved and showed, in every
/// environment; the deploy workflow before saved plans (plan and apply in the one approved
/// job, so the approval came before any plan existed) fails the same check.
#[test]
fn the_deploy_applies_the_saved_plan_of_its_own_plan_job() {
    let d = common::example_domain();
    let docs = parse(&example());
    for env in Env::CLOUD {
        check_applies_the_saved_plan(&d, doc(&docs, &format!("deploy-{env}.yml")), env);
    }
    let before = Rendered {
        files: vec![mesh_infra::RenderedFile {
            path: ".github/workflows/deploy-prod.yml".into(),
            contents: std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deploy-prod-before-saved-plans.yml"),
            )
            .unwrap(),
            hcl: None,
        }],
        warnings: vec![],
    };
    let old = parse(&before);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(|| check_applies_the_saved_plan(&d, doc(&old, "deploy-prod.yml"), Env::Prod));
    std::panic::set_hook(hook);
    assert!(
        caught.is_err(),
        "a deploy that plans and applies in its approved job passed"
    );
}

/// Every string the writer emits reads back unchanged in an independent parser, whatever it
/// looks like to YAML (numbers, booleans, indicators, quotes, unicode, expressions).
#[test]
fn scalars_read_back_unchanged_in_pyyaml() {
    use mesh_infra::yaml::Y;
    let mut strings: Vec<String> = [
        "1.95",
        "1.9.8",
        "3.10",
        "0x1F",
        "1e3",
        "on",
        "Off",
        "YES",
        "n",
        "~",
        "null",
        "",
        " lead",
        "trail ",
        "a: b",
        "a #b",
        "#c",
        "- x",
        "[x]",
        "{x}",
        "*ref",
        "&anchor",
        "!tag",
        "%dir",
        "@at",
        "`tick`",
        "it's",
        "say \"hi\"",
        "back\\slash",
        "tab\there",
        "uni ✓ é",
        "${{ github.token }}",
        "arn:aws:iam::123456789012:role/x-github-deploy-dev",
        "cron(0 6 * * ? *)",
        "a,b",
        "?q",
        "|pipe",
        ">gt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // And a deterministic spread of short strings over YAML's special characters.
    let alphabet: Vec<char> = "a1 :#-?,[]{}&*!|>'\"%@`.~\\/".chars().collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        let mut s = String::new();
        for _ in 0..(x % 6 + 1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        strings.push(s);
    }
    let mut doc = Y::map();
    for (i, s) in strings.iter().enumerate() {
        doc = doc.kv(&format!("k{i}"), Y::str(s.clone()));
    }
    doc = doc.kv("all", Y::strs(strings.iter().take(12).cloned()));
    let rendered = Rendered {
        files: vec![mesh_infra::RenderedFile {
            path: "scalars.yml".into(),
            contents: doc.to_document(),
            hcl: None,
        }],
        warnings: vec![],
    };
    let back = &parse(&rendered)[0].1;
    for (i, s) in strings.iter().enumerate() {
        assert_eq!(back[format!("k{i}")], s.as_str(), "{s:?} did not read back");
    }
    assert_eq!(back["all"], serde_json::json!(strings[..12]));
}
