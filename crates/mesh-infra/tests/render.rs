//! Rendering of the example domain: the committed infra/ is current (it is the snapshot of
//! every rendered file, reviewed in each diff), every resource and argument exists in the AWS
//! provider schema, the IAM matrix holds and catches a leak. No external tools needed.

mod common;

use std::collections::BTreeSet;

use mesh_domain::Env;
use mesh_infra::hcl::{Block, Body, Expr};
use mesh_infra::{drift, Drift};
use serde_json::Value;

#[test]
fn a_full_rendering_with_distinct_paths() {
    let rendered = common::render_all(&common::example_domain());
    assert!(
        rendered.files.len() > 20,
        "expected a full rendering, got {} files",
        rendered.files.len()
    );
    let mut names = BTreeSet::new();
    for f in &rendered.files {
        assert!(names.insert(f.path.clone()), "two files render to {}", f.path.display());
    }
}

#[test]
fn rendering_is_deterministic() {
    let d = common::example_domain();
    let a = common::render_all(&d);
    let b = common::render_all(&d);
    assert_eq!(a.files, b.files);
}

#[test]
fn committed_infra_matches_the_model() {
    let root = common::repo_root();
    let rendered = common::render_all(&common::example_domain());
    let drift = drift(&rendered, &root.join("infra")).expect("compare");
    assert!(
        drift.is_empty(),
        "infra/ is out of date ({drift:?}); run `mesh render` and commit the result"
    );
}

#[test]
fn drift_finds_changed_missing_and_stale_files() {
    let (dir, rendered) = common::rendered_tree();
    assert!(drift(&rendered, dir.path()).unwrap().is_empty());
    let main = dir.path().join("envs/dev/main.tf");
    std::fs::write(&main, "# edited by hand\n").unwrap();
    std::fs::remove_file(dir.path().join("envs/prod/catalog.tf")).unwrap();
    std::fs::write(dir.path().join("envs/int/project_removed.tf"), "").unwrap();
    let found = drift(&rendered, dir.path()).unwrap();
    assert_eq!(
        found,
        vec![
            Drift::Missing("envs/prod/catalog.tf".into()),
            Drift::Differs("envs/dev/main.tf".into()),
            Drift::Stale("envs/int/project_removed.tf".into()),
        ]
    );
}

#[test]
fn every_name_comes_from_naming() {
    let d = common::example_domain();
    let n = mesh_domain::Naming::for_domain(&d, Env::Prod);
    let rendered = mesh_infra::render(&d, &[Env::Prod]).unwrap();
    let all: String = rendered.files.iter().map(|f| f.contents.as_str()).collect();
    let p = d.project("sales").unwrap();
    for expected in [
        n.bucket(mesh_domain::BucketKind::AccessLogs),
        n.terraform_state_key(),
        n.glue_role(&p.slug),
        n.glue_job(&p.slug, &p.jobs[0].name),
        n.state_machine(&p.slug, &p.pipelines[0].name),
        n.schedule(&p.slug, &p.pipelines[0].name),
        n.glue_runner_script().s3_uri(),
        n.job_spec(&p.slug, &p.jobs[0].name).s3_uri(),
        n.glue_temp(&p.slug).s3_uri(),
        n.ssm_table_parameter(&p.slug, &p.tables[0]),
    ] {
        assert!(all.contains(&format!("\"{expected}")), "`{expected}` is not rendered");
    }
    assert!(
        !all.contains("-dev\"") && !all.contains("-int\""),
        "prod rendering names another environment"
    );
}

#[test]
fn optimizer_settings_terraform_cannot_express_are_warned() {
    let mut domain = common::example_domain();
    // A value the manifest sets (meshkit's default is not warned of: see the test below).
    let daily = domain
        .projects
        .iter_mut()
        .flat_map(|p| p.tables.iter_mut())
        .find(|t| t.name.as_str() == "daily_sales")
        .unwrap();
    let mesh_domain::Storage::Iceberg(ice) = &mut daily.storage else {
        panic!("daily_sales is an Iceberg table")
    };
    ice.optimizers.compaction.as_mut().unwrap().min_input_files = 7;
    let rendered = mesh_infra::render(&domain, &[Env::Dev]).unwrap();
    let daily = rendered
        .warnings
        .iter()
        .find(|w| w.message.starts_with("f01_curated.daily_sales:"))
        .expect("a warning for daily_sales");
    assert!(
        daily.message.contains("min_input_files = 7 (AWS uses 100)"),
        "{}",
        daily.message
    );
}

/// README.md, the model's defaults and `mesh render` say the same thing: meshkit's defaults are
/// Glue's except `min_input_files`, a difference the README documents and `mesh render` does
/// not warn of, so a table with every default gets no warning.
#[test]
fn readme_model_defaults_and_the_render_warning_agree() {
    use mesh_domain::{Compaction, Optimizers, OrphanCleanup, Retention};
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let lost = format!(
        "min_input_files = {} (AWS uses {})",
        Compaction::DEFAULT_MIN_INPUT_FILES,
        Compaction::GLUE_MIN_INPUT_FILES
    );
    for stated in [
        format!("`min_file_size_ratio = {}`", Compaction::DEFAULT_MIN_FILE_SIZE_RATIO),
        format!("`min_input_files = {}`", Compaction::DEFAULT_MIN_INPUT_FILES),
        format!(
            "`delete_file_threshold = {}`",
            Compaction::DEFAULT_DELETE_FILE_THRESHOLD
        ),
        format!(
            "`snapshot_retention_days = {}`",
            Retention::DEFAULT_SNAPSHOT_RETENTION_DAYS
        ),
        format!("`retain_last = {}`", Retention::DEFAULT_RETAIN_LAST),
        format!("`clean_expired_files = {}`", Retention::DEFAULT_CLEAN_EXPIRED_FILES),
        format!("`retention_days = {}`", OrphanCleanup::DEFAULT_RETENTION_DAYS),
        format!("`run_rate_hours = {}`", Optimizers::DEFAULT_RUN_RATE_HOURS),
        format!(
            "Glue's compaction waits for {} small files",
            Compaction::GLUE_MIN_INPUT_FILES
        ),
        format!("`{lost}`"),
    ] {
        assert!(readme.contains(&stated), "README.md no longer says {stated}");
    }

    // A table with every optimizer setting left to its default.
    let dir = tempfile::tempdir().unwrap();
    let root = common::repo_root();
    std::fs::copy(root.join("domain.json"), dir.path().join("domain.json")).unwrap();
    let project = dir.path().join("projects/defaults");
    std::fs::create_dir_all(project.join("sql")).unwrap();
    std::fs::write(project.join("sql/copy.sql"), "SELECT id FROM refined.source\n").unwrap();
    std::fs::write(
        project.join("project.toml"),
        r#"name = "defaults"
project_slug = "df01"
owner = "platform"
classification = "internal"

[[tables]]
name = "source"
layer = "refined"
columns = [{ name = "id", type = "long" }]

[[tables]]
name = "kept"
layer = "curated"
columns = [{ name = "id", type = "long" }]

[[jobs]]
name = "copy"
sql = "sql/copy.sql"
inputs = ["refined.source"]
output = "curated.kept"
"#,
    )
    .unwrap();
    let domain = mesh_domain::load_domain(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let rendered = mesh_infra::render(&domain, &[Env::Dev]).unwrap();
    let kept: Vec<&str> = rendered
        .warnings
        .iter()
        .map(|w| w.message.as_str())
        .filter(|m| m.starts_with("f01_curated.kept:"))
        .collect();
    assert!(
        kept.is_empty(),
        "a table with default optimizers is warned of: {kept:?}"
    );
}

#[test]
fn a_domain_without_an_account_for_the_env_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::repo_root();
    let text = std::fs::read_to_string(root.join("domain.json")).unwrap();
    let mut json: Value = serde_json::from_str(&text).unwrap();
    json["aws_accounts"].as_object_mut().unwrap().remove("int");
    std::fs::write(dir.path().join("domain.json"), json.to_string()).unwrap();
    let d = mesh_domain::load_domain(dir.path()).expect("domain without projects loads");
    let err = mesh_infra::render(&d, &[Env::Int]).unwrap_err().to_string();
    assert!(err.contains("aws_accounts.int"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Provider schema

const META_ARGS: &[&str] = &["count", "depends_on", "for_each", "provider"];

fn schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/aws_provider_subset.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Problems of one block against its schema (`args`: argument name -> {required, block?}).
fn check_block(path: &str, body: &Body, args: &serde_json::Map<String, Value>, problems: &mut Vec<String>) {
    let mut present = BTreeSet::new();
    for (k, _) in body.attributes() {
        present.insert(k.to_string());
        match args.get(k) {
            None if META_ARGS.contains(&k) => {}
            None => problems.push(format!("{path}: unknown argument `{k}`")),
            Some(a) if a.get("block").is_some() && !matches!(k, "tags" | "tags_all") => {
                // Terraform accepts some nested blocks as attributes, but the provider
                // documents them as blocks; writing them as blocks keeps plans readable.
                problems.push(format!("{path}: `{k}` is a block, written as an attribute"))
            }
            Some(_) => {}
        }
    }
    for b in body.blocks() {
        let k = b.kind();
        present.insert(k.to_string());
        if k == "lifecycle" {
            continue;
        }
        match args.get(k).and_then(|a| a.get("block")).and_then(Value::as_object) {
            Some(nested) => check_block(&format!("{path}.{k}"), b.body(), nested, problems),
            None => problems.push(format!("{path}: unknown block `{k}`")),
        }
    }
    for (name, a) in args {
        if a["required"] == Value::Bool(true) && !present.contains(name) {
            problems.push(format!("{path}: required argument `{name}` is missing"));
        }
    }
}

fn check_resources(blocks: &[&Block], schema: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for b in blocks {
        if b.kind() != "resource" {
            continue;
        }
        let (kind, name) = (&b.labels()[0], &b.labels()[1]);
        match schema["resources"].get(kind.as_str()).and_then(Value::as_object) {
            Some(args) => check_block(&format!("{kind}.{name}"), b.body(), args, &mut problems),
            None => problems.push(format!("{kind}.{name}: unknown resource type `{kind}`")),
        }
    }
    problems
}

#[test]
fn every_resource_and_argument_exists_in_the_aws_provider_schema() {
    let schema = schema();
    let rendered = common::render_all(&common::example_domain());
    let mut types = BTreeSet::new();
    let mut problems = Vec::new();
    for f in &rendered.files {
        let Some(body) = &f.hcl else { continue };
        let blocks: Vec<&Block> = body.blocks().collect();
        types.extend(
            blocks
                .iter()
                .filter(|b| b.kind() == "resource")
                .map(|b| b.labels()[0].clone()),
        );
        problems.extend(
            check_resources(&blocks, &schema)
                .into_iter()
                .map(|p| format!("{}: {p}", f.path.display())),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        types.len() >= 20,
        "only {} resource types rendered: {types:?}",
        types.len()
    );
}

#[test]
fn the_schema_check_rejects_unknown_types_arguments_and_missing_required_ones() {
    let schema = schema();
    let bad_type = Block::resource("aws_glue_jobs", "x").attr("name", Expr::str("x"));
    let bad_arg = Block::resource("aws_s3_bucket", "x").attr("bucket_name", Expr::str("x"));
    let bad_nested = Block::resource("aws_glue_job", "x")
        .attr("name", Expr::str("x"))
        .attr("role_arn", Expr::str("x"))
        .block(Block::new("command", &[]).attr("script", Expr::str("s3://x")));
    let problems = check_resources(&[&bad_type, &bad_arg, &bad_nested], &schema);
    let text = problems.join("\n");
    assert!(text.contains("unknown resource type `aws_glue_jobs`"), "{text}");
    assert!(
        text.contains("aws_s3_bucket.x: unknown argument `bucket_name`"),
        "{text}"
    );
    assert!(
        text.contains("aws_glue_job.x.command: unknown argument `script`"),
        "{text}"
    );
    assert!(
        text.contains("aws_glue_job.x.command: required argument `script_location` is missing"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// IAM isolation

#[test]
fn iam_matrix_passes_for_the_example_domain() {
    let (dir, _) = common::rendered_tree();
    let d = common::example_domain();
    let report = mesh_infra::iam_check::check(&d, dir.path(), &Env::CLOUD).unwrap();
    assert!(report.passed(), "{report}");
    // 3 envs x 3 projects x 4 roles, each against 3 projects.
    assert_eq!(
        report.matrices.iter().map(|(_, rows)| rows.len()).sum::<usize>(),
        3 * 3 * 4 * 3
    );
    assert!(report.requests > 3000, "{} requests", report.requests);
}

/// The pre-filter (requests no `Allow` statement names are denied without evaluation) changes
/// nothing: the same matrix, requests and violations as evaluating every request, on the
/// example's policies and on policies widened in three ways (a bucket-wide object grant, a
/// wildcard bucket, a catalog-wide table grant).
#[test]
fn the_iam_prefilter_reports_exactly_what_full_evaluation_reports() {
    let (dir, _) = common::rendered_tree();
    let d = common::example_domain();
    let same = |envs: &[Env]| {
        let fast = mesh_infra::iam_check::check_with(&d, dir.path(), envs, true).unwrap();
        let full = mesh_infra::iam_check::check_with(&d, dir.path(), envs, false).unwrap();
        assert_eq!(fast.to_string(), full.to_string());
        assert_eq!(fast.requests, full.requests);
        fast
    };
    assert!(same(&Env::CLOUD).passed());
    let path = dir.path().join("envs/dev/policies/f01-glue-pj01-dev.json");
    let text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        ("arn:aws:s3:::f01-curated-dev/pj01/*", "arn:aws:s3:::f01-curated-dev/*"),
        ("arn:aws:s3:::f01-curated-dev/pj01/*", "arn:aws:s3:::f01-*-dev/*"),
        (":table/f01_curated/daily_sales", ":table/f01_curated/*"),
    ] {
        assert!(text.contains(from), "{from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let report = same(&[Env::Dev]);
        assert!(!report.passed(), "{to} was not counted");
    }
}

#[test]
fn iam_check_catches_a_bucket_wide_grant() {
    let (dir, _) = common::rendered_tree();
    let d = common::example_domain();
    let path = dir.path().join("envs/dev/policies/f01-glue-pj01-dev.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("arn:aws:s3:::f01-curated-dev/pj01/*"));
    std::fs::write(
        &path,
        text.replace("arn:aws:s3:::f01-curated-dev/pj01/*", "arn:aws:s3:::f01-curated-dev/*"),
    )
    .unwrap();
    let report = mesh_infra::iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
    assert!(!report.passed());
    let leaks: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    assert!(
        leaks
            .iter()
            .any(|l| l.contains("LEAK: allowed s3:GetObject on arn:aws:s3:::f01-curated-dev/pj02/")),
        "{}",
        leaks.join("\n")
    );
    assert!(
        leaks.iter().all(|l| l.contains("f01-glue-pj01-dev")),
        "{}",
        leaks.join("\n")
    );
}

#[test]
fn iam_check_catches_a_missing_prefix_condition_and_a_foreign_database() {
    let (dir, _) = common::rendered_tree();
    let d = common::example_domain();
    let path = dir.path().join("envs/prod/policies/f01-optimizer-pj03-prod.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for st in doc["Statement"].as_array_mut().unwrap() {
        if st["Sid"] == "ProjectDataList" {
            st.as_object_mut().unwrap().remove("Condition");
        }
        if st["Sid"] == "DomainCatalogRead" {
            st["Resource"] = serde_json::json!(["*"]);
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let report = mesh_infra::iam_check::check(&d, dir.path(), &[Env::Prod]).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("LEAK: allowed s3:ListBucket on arn:aws:s3:::f01-refined-prod (s3:prefix = pj01/"),
        "{text}"
    );
    assert!(
        text.contains("LEAK: allowed glue:GetTable on arn:aws:glue:eu-west-1:333333333333:table/default/"),
        "{text}"
    );
}

/// The grant issue 15 found: every project's Glue role could change every table of the
/// domain's databases. Counted now as a cross-project catalog write.
#[test]
fn iam_check_counts_a_cross_project_catalog_write() {
    let (dir, _) = common::rendered_tree();
    let d = common::example_domain();
    let path = dir.path().join("envs/dev/policies/f01-glue-pj01-dev.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut found = false;
    for st in doc["Statement"].as_array_mut().unwrap() {
        if st["Sid"] == "ProjectTablesWrite" {
            found = true;
            let resources = st["Resource"].as_array_mut().unwrap();
            assert!(
                resources.iter().all(|r| !r.as_str().unwrap().ends_with("/*")),
                "exact table ARNs: {resources:?}"
            );
            resources.push("arn:aws:glue:eu-west-1:111111111111:table/f01_*/*".into());
            resources.push("arn:aws:glue:eu-west-1:111111111111:database/f01_*".into());
        }
    }
    assert!(found, "the Glue role has a per-table write statement");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let report = mesh_infra::iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
    assert!(!report.passed());
    let leaks: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    for project in d.projects.iter().filter(|p| p.slug.as_str() != "pj01") {
        for t in &project.tables {
            let tail = format!("/{}", t.name);
            for action in ["glue:UpdateTable", "glue:CreateTable", "glue:DeletePartition"] {
                assert!(
                    leaks
                        .iter()
                        .any(|l| l.contains(&format!("allowed {action} on")) && l.contains(&tail)),
                    "{action} on {tail}: {}",
                    leaks.join("\n")
                );
            }
        }
    }
    assert!(
        leaks.iter().all(|l| l.contains("f01-glue-pj01-dev")),
        "{}",
        leaks.join("\n")
    );
}

#[test]
fn iam_check_reports_a_missing_policy_file_with_the_fix() {
    let (dir, _) = common::rendered_tree();
    std::fs::remove_file(dir.path().join("envs/int/policies/f01-sfn-pj02-int.json")).unwrap();
    let err = mesh_infra::iam_check::check(&common::example_domain(), dir.path(), &[Env::Int])
        .unwrap_err()
        .to_string();
    assert!(err.contains("f01-sfn-pj02-int") && err.contains("mesh render"), "{err}");
}

#[test]
fn iam_check_probes_every_s3_action_not_just_the_common_ones() {
    let (dir, _) = common::rendered_tree();
    let path = dir.path().join("envs/dev/policies/f01-sfn-pj03-dev.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["Statement"].as_array_mut().unwrap().push(serde_json::json!({
        "Sid": "Sneaky", "Effect": "Allow",
        "Action": ["s3:PutObjectRetention", "s3:PutBucketPolicy"],
        "Resource": ["arn:aws:s3:::f01-raw-dev", "arn:aws:s3:::f01-raw-dev/*"],
    }));
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let report = mesh_infra::iam_check::check(&common::example_domain(), dir.path(), &[Env::Dev]).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("f01-sfn-pj03-dev: LEAK: allowed s3:PutObjectRetention on arn:aws:s3:::f01-raw-dev/pj01/"),
        "{text}"
    );
    assert!(
        text.contains("f01-sfn-pj03-dev: LEAK: allowed s3:PutBucketPolicy on arn:aws:s3:::f01-raw-dev"),
        "{text}"
    );
}

/// `file("${path.module}/...")` arguments of a body, recursively.
fn module_files(body: &Body, out: &mut Vec<String>) {
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Call(f, args) if f == "file" => {
                for a in args {
                    if let Expr::ModulePath(p) = a {
                        out.push(p.clone());
                    }
                }
            }
            Expr::Call(_, items) | Expr::List(items) => items.iter().for_each(|i| walk(i, out)),
            Expr::Object(fields) => fields.iter().for_each(|(_, v)| walk(v, out)),
            _ => {}
        }
    }
    for (_, e) in body.attributes() {
        walk(e, out);
    }
    for b in body.blocks() {
        module_files(b.body(), out);
    }
}

#[test]
fn every_file_terraform_loads_is_rendered_and_every_json_file_is_loaded() {
    let rendered = common::render_all(&common::example_domain());
    let paths: BTreeSet<String> = rendered
        .files
        .iter()
        .map(|f| f.path.to_string_lossy().into_owned())
        .collect();
    let mut loaded = BTreeSet::new();
    for f in &rendered.files {
        let Some(body) = &f.hcl else { continue };
        let dir = f.path.parent().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        module_files(body, &mut files);
        for rel in files {
            let full = format!("{dir}/{rel}");
            assert!(
                paths.contains(&full),
                "{} loads {full}, which is not rendered",
                f.path.display()
            );
            loaded.insert(full);
        }
    }
    let json: BTreeSet<String> = paths.iter().filter(|p| p.ends_with(".json")).cloned().collect();
    assert_eq!(json, loaded, "rendered JSON files that no Terraform resource loads");
}

#[test]
fn projects_without_pipelines_or_schedules_get_no_orchestration_roles() {
    let mut d = common::example_domain();
    let (p0, p1) = (d.projects[0].slug.to_string(), d.projects[1].slug.to_string());
    d.projects[0].pipelines.clear();
    d.projects[1].pipelines[0].schedule = None;
    let rendered = mesh_infra::render(&d, &[Env::Dev]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    mesh_infra::write(&rendered, dir.path()).unwrap();
    let policies = dir.path().join("envs/dev/policies");
    assert!(!policies.join(format!("f01-sfn-{p0}-dev.json")).exists());
    assert!(!policies.join(format!("f01-scheduler-{p0}-dev.json")).exists());
    assert!(policies.join(format!("f01-sfn-{p1}-dev.json")).exists());
    assert!(!policies.join(format!("f01-scheduler-{p1}-dev.json")).exists());
    let all: String = rendered.files.iter().map(|f| f.contents.as_str()).collect();
    for role in [
        format!("{p0}_pipeline"),
        format!("{p0}_scheduler"),
        format!("{p1}_scheduler"),
    ] {
        assert!(
            !all.contains(&format!("aws_iam_role.{role}")),
            "{role} is referenced but not rendered"
        );
    }
    let report = mesh_infra::iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
    assert!(report.passed(), "{report}");
}

fn prevents_destroy(b: &Block) -> bool {
    b.body().blocks().any(|l| {
        l.kind() == "lifecycle"
            && l.body()
                .attributes()
                .any(|(k, v)| k == "prevent_destroy" && *v == Expr::Bool(true))
    })
}

/// Every Iceberg table and every bucket holding data or the Terraform state carries
/// `lifecycle { prevent_destroy = true }`, so a change that would destroy or replace one (a
/// new domain_abbr) fails `terraform plan`; raw Hive tables (a schema Terraform re-creates,
/// their files untouched) and the access-logs bucket do not need it.
#[test]
fn iceberg_tables_and_data_buckets_cannot_be_destroyed_by_terraform() {
    let d = common::example_domain();
    let rendered = common::render_all(&d);
    for env in Env::CLOUD {
        let mut protected = BTreeSet::new();
        let mut unprotected = BTreeSet::new();
        for f in rendered
            .files
            .iter()
            .filter(|f| f.path.starts_with(format!("envs/{env}")))
        {
            let Some(body) = &f.hcl else { continue };
            for b in body.blocks().filter(|b| b.kind() == "resource") {
                let (kind, name) = (b.labels()[0].as_str(), b.labels()[1].clone());
                if !matches!(kind, "aws_glue_catalog_table" | "aws_s3_bucket") {
                    continue;
                }
                let iceberg = b.body().blocks().any(|x| x.kind() == "open_table_format_input");
                let key = format!("{kind}.{name}{}", if iceberg { " (iceberg)" } else { "" });
                if prevents_destroy(b) {
                    protected.insert(key);
                } else {
                    unprotected.insert(key);
                }
            }
        }
        for bucket in ["raw", "refined", "curated", "artifacts"] {
            assert!(
                protected.contains(&format!("aws_s3_bucket.{bucket}")),
                "{env}: {bucket}: {unprotected:?}"
            );
        }
        assert!(
            unprotected.contains("aws_s3_bucket.access_logs"),
            "{env}: {protected:?}"
        );
        let mut iceberg = 0;
        for p in &d.projects {
            for t in p.tables.iter().filter(|t| t.layer.is_iceberg()) {
                iceberg += 1;
                let key = format!(
                    "aws_glue_catalog_table.{}_{}_{} (iceberg)",
                    p.slug,
                    t.layer.as_str(),
                    t.name
                );
                assert!(
                    protected.contains(&key),
                    "{env}: {key} can be destroyed; protected: {protected:?}"
                );
            }
        }
        assert!(iceberg >= 3, "{iceberg}");
        assert!(
            unprotected.iter().all(|k| !k.ends_with("(iceberg)")),
            "{env}: {unprotected:?}"
        );
    }
}
