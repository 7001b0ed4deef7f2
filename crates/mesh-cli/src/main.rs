//! `mesh`: the meshkit command line. Thin by design: it parses arguments, calls the
//! libraries, prints, and maps failures to exit codes scripts can rely on.

mod artifacts;
mod bootstrap;
mod cli;
mod describe;
mod envfile;
mod exit;
mod infra;
mod optimize;
mod runtime;
mod table_text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use mesh_domain::scaffold::{self, NewJob, NewTable, ScaffoldError};
use mesh_domain::{Domain, Layer, NameSheet};

use cli::{CheckCommand, Cli, Command, ConfigCommand, DeployCommand, Format, NewCommand, TableCommand};
use exit::Failure;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns every print after the reader went away (`mesh sql … |
    // head -2`) into a panic; the default action ends the process quietly, as Unix tools do.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Validate { format } => {
            let root = root(cli.root.as_deref())?;
            match mesh_domain::load_domain(&root).and_then(|d| {
                // Portable SQL needs the model (job → SQL file), so it runs once the model is valid.
                let sql = mesh_core::portable::check_domain(&d, &root);
                if sql.is_empty() {
                    Ok(d)
                } else {
                    Err(sql)
                }
            }) {
                Ok(d) => {
                    let tables: usize = d.projects.iter().map(|p| p.tables.len()).sum();
                    let jobs: usize = d.projects.iter().map(|p| p.jobs.len()).sum();
                    match format {
                        Format::Json => print_json(
                            &serde_json::json!({"valid": true, "projects": d.projects.len(), "tables": tables, "jobs": jobs}),
                        ),
                        Format::Text => println!(
                            "ok: domain {} ({}) is valid: {} projects, {tables} tables, {jobs} jobs",
                            d.name,
                            d.abbr,
                            d.projects.len()
                        ),
                    }
                    Ok(())
                }
                Err(diags) => {
                    if matches!(format, Format::Json) {
                        print_json(&serde_json::json!({"valid": false, "problems": diags}));
                    }
                    Err(Failure::Invalid(diags.to_string()))
                }
            }
        }
        Command::Names { env, project, format } => {
            let domain = load(cli.root.as_deref())?;
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
        Command::Describe { format } => {
            let domain = load(cli.root.as_deref())?;
            match format {
                Format::Json => print_json(&domain),
                Format::Text => print!("{}", describe::tree(&domain)),
            }
            Ok(())
        }
        Command::Run {
            projects,
            job,
            pipeline,
            params,
            env,
            sample_data,
            rows,
            seed,
            from,
            to,
            force,
        } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            let args = runtime::RunArgs {
                projects,
                job,
                pipeline,
                params,
                env,
                sample_data,
                rows,
                seed,
                range: from.zip(to),
                force,
            };
            runtime::run(&root, &domain, args)
        }
        Command::Sql { query, format } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            runtime::sql(&root, &domain, &query, format)
        }
        Command::Table(t) => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            let (what, table, format) = match t {
                TableCommand::Show { table, format } => ("show", table, format),
                TableCommand::History { table, format } => ("history", table, format),
                TableCommand::Snapshots { table, format } => ("snapshots", table, format),
                TableCommand::Files { table, format } => ("files", table, format),
                TableCommand::Check {
                    table,
                    all_snapshots,
                    format,
                } => return runtime::table_check(&root, &domain, &table, all_snapshots, format),
                TableCommand::Register { table } => return runtime::table_register(&root, &domain, &table),
            };
            runtime::table(&root, &domain, what, &table, format)
        }
        Command::SampleData { rows, seed } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            runtime::sample_data(&root, &domain, rows, seed)
        }
        Command::Config(ConfigCommand::Show { env, format }) => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            runtime::config_show(&root, &domain, env, format)
        }
        Command::Report { run, out } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            runtime::report(&root, &domain, run.as_deref(), out)
        }
        Command::Init {
            dir,
            name,
            abbr,
            region,
            accounts,
            github_repo,
        } => {
            let name = name.unwrap_or_else(|| {
                dir.file_name()
                    .and_then(|s| s.to_str())
                    .unwrap_or("domain")
                    .to_ascii_lowercase()
            });
            let accounts = scaffold::parse_account_args(&accounts).map_err(scaffold_failure)?;
            let files = scaffold::init_domain(&dir, &name, &abbr, &region, &accounts, github_repo.as_deref())
                .map_err(scaffold_failure)?;
            for f in files {
                println!("created {}", f.display());
            }
            let root = std::path::absolute(&dir)
                .map_err(|e| Failure::Runtime(format!("`{}`: cannot resolve it: {e}", dir.display())))?;
            let domain = load(Some(&root))?;
            let env_file = envfile::write_dotenv(&root, &domain, mesh_domain::Env::Local, false)?;
            println!("created {}", env_file.display());
            let missing: Vec<&str> = mesh_domain::Env::CLOUD
                .iter()
                .filter(|e| !domain.accounts.contains_key(e))
                .map(|e| e.as_str())
                .collect();
            if domain.github_repository.is_none() {
                println!(
                    "note: no github_repository in domain.json, so no GitHub deploy roles are rendered; add `\"github_repository\": \"owner/name\"` (or re-run mesh init with --github-repo) before the first deploy"
                );
            }
            if missing.is_empty() {
                let workflows = mesh_infra::workflows::render(&domain, &infra::mesh_source(&root))
                    .map_err(|e| Failure::Invalid(format!("error: {e}")))?;
                infra::write_workflows(&root, &workflows)?;
                println!(
                    "next: cd {} && mesh new project NAME --slug SLUG, then `mesh render` for infra/",
                    dir.display()
                );
            } else {
                println!(
                    "next: add the AWS account of {} to aws_accounts in {}/domain.json (or re-run mesh init with --account ENV=ID for each), then `mesh render` writes infra/ and .github/workflows/",
                    missing.join(", "),
                    dir.display()
                );
            }
            Ok(())
        }
        Command::New(new) => {
            let root = root(cli.root.as_deref())?;
            // Refused before anything is written: a rollback could not remove folders it
            // had to create above the project (`--root /nonexistent/dir` left `projects/`).
            if !root.join(mesh_domain::load::DOMAIN_FILE).is_file() {
                return Err(Failure::Invalid(format!(
                    "error: no {} in `{}`; nothing was written\n  help: pass --root pointing at a domain, or create one with `mesh init DIR`",
                    mesh_domain::load::DOMAIN_FILE,
                    root.display()
                )));
            }
            match new {
                NewCommand::Project {
                    name,
                    slug,
                    owner,
                    classification,
                } => {
                    let file = scaffold::new_project(&root, &name, &slug, &owner, classification.into())
                        .map_err(scaffold_failure)?;
                    println!("created {}", display_rel(&root, &file));
                }
                NewCommand::Table {
                    project,
                    name,
                    layer,
                    columns,
                    partition_by,
                    format,
                } => {
                    let columns = columns
                        .iter()
                        .map(|c| scaffold::parse_column_arg(c))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(scaffold_failure)?;
                    let layer = Layer::from(layer);
                    scaffold::new_table(
                        &root,
                        &NewTable {
                            project: &project,
                            name: &name,
                            layer,
                            columns,
                            partition_by,
                            format: format.as_deref(),
                        },
                    )
                    .map_err(scaffold_failure)?;
                    println!("added table {layer}.{name} to projects/{project}/project.toml");
                }
                NewCommand::Job {
                    project,
                    name,
                    inputs,
                    output,
                    mode,
                    incremental,
                    time_column,
                    grain,
                    keys,
                } => {
                    let domain = load(Some(&root))?;
                    let sql = scaffold::new_job(
                        &root,
                        domain.abbr.as_str(),
                        &NewJob {
                            project: &project,
                            name: &name,
                            inputs,
                            output: &output,
                            mode: mode.as_str(),
                            incremental,
                            time_range: time_column.as_deref().zip(grain.as_deref()),
                            keys,
                        },
                    )
                    .map_err(scaffold_failure)?;
                    println!(
                        "added job {name} to projects/{project}/project.toml; edit {}",
                        display_rel(&root, &sql)
                    );
                }
                NewCommand::Pipeline {
                    project,
                    name,
                    jobs,
                    optimize,
                    schedule,
                } => {
                    scaffold::new_pipeline(
                        &root,
                        &scaffold::NewPipeline {
                            project: &project,
                            name: &name,
                            jobs,
                            optimize,
                            schedule: schedule.as_deref(),
                        },
                    )
                    .map_err(scaffold_failure)?;
                    println!("added pipeline {name} to projects/{project}/project.toml; run it with `mesh run {project} --pipeline {name}`");
                }
            }
            Ok(())
        }
        Command::Optimize {
            project,
            table,
            only,
            dry_run,
            orphan_retention_hours,
            retain_last,
            force,
            format,
        } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            let args = optimize::OptimizeArgs {
                project,
                table,
                only,
                dry_run,
                format,
                orphan_retention_hours,
                retain_last,
                force,
            };
            optimize::optimize(&root, &domain, args)
        }
        Command::Render { env, out, check } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            infra::render(&root, &domain, env, out, check)
        }
        Command::Check(CheckCommand::Iam { env, infra }) => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            infra::check_iam(&root, &domain, env, infra)
        }
        Command::Build { env, out, format } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            artifacts::build(&root, &domain, env.unwrap_or(mesh_domain::Env::Local), out, format)
        }
        Command::Env { env, force, stdout } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            if stdout {
                print!("{}", envfile::dotenv_text(&root, &domain, env)?);
            } else {
                let path = envfile::write_dotenv(&root, &domain, env, force)?;
                println!("wrote {}", display_rel(&root, &path));
            }
            Ok(())
        }
        Command::Start {
            project,
            pipeline,
            env,
            run_date,
            wait,
            timeout,
            format,
        } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            runtime::start(
                &root,
                &domain,
                runtime::StartArgs {
                    project,
                    pipeline,
                    env,
                    run_date,
                    wait: wait.then(|| std::time::Duration::from_secs(timeout * 60)),
                    format,
                },
            )
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "mesh", &mut std::io::stdout());
            Ok(())
        }
        Command::Bootstrap {
            env,
            dry_run,
            import,
            terraform,
            format,
        } => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            bootstrap::run(
                &root,
                &domain,
                env,
                dry_run,
                import.then_some(terraform.as_str()),
                format,
            )
        }
        Command::Deploy(DeployCommand::Artifacts {
            env,
            dry_run,
            yes,
            format,
        }) => {
            let (root, domain) = root_and_domain(cli.root.as_deref())?;
            artifacts::deploy(&root, &domain, env, dry_run, yes, format)
        }
    }
}

fn display_rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn scaffold_failure(e: ScaffoldError) -> Failure {
    match e {
        ScaffoldError::Io { .. } => Failure::Runtime(e.to_string()),
        other => Failure::Invalid(other.to_string()),
    }
}

pub(crate) fn check_project(domain: &Domain, name: &str) -> Result<(), Failure> {
    if domain.project(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = domain.projects.iter().map(|p| p.name.as_str()).collect();
    let hint = mesh_domain::diagnostic::did_you_mean(name, known.iter().copied())
        .unwrap_or_else(|| format!("projects are: {}", known.join(", ")));
    Err(Failure::Invalid(format!(
        "error: --project: no project `{name}`\n  help: {hint}"
    )))
}

/// The domain root: `--root`, else the nearest folder above the current one with a domain.json.
fn root(flag: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(r) = flag {
        // Absolute, so every location derived from it (Iceberg table locations stored in the
        // catalog, file:// URLs) stays valid from any working directory.
        return std::path::absolute(r)
            .map_err(|e| Failure::Runtime(format!("--root `{}`: cannot resolve it: {e}", r.display())));
    }
    let cwd =
        std::env::current_dir().map_err(|e| Failure::Runtime(format!("cannot read the current directory: {e}")))?;
    mesh_domain::find_root(&cwd).ok_or_else(|| {
        Failure::Invalid(format!(
            "error: no domain.json in `{}` or any folder above it\n  help: run inside a domain repository, pass --root DIR, or create one with `mesh init DIR`",
            cwd.display()
        ))
    })
}

/// The domain root and its validated model, for commands that need both.
fn root_and_domain(flag: Option<&Path>) -> Result<(PathBuf, Domain), Failure> {
    let root = root(flag)?;
    let domain = load(Some(&root))?;
    Ok((root, domain))
}

fn load(flag: Option<&Path>) -> Result<Domain, Failure> {
    let root = root(flag)?;
    mesh_domain::load_domain(&root).map_err(|d| Failure::Invalid(format!("{d}\n  (run `mesh validate` after fixing)")))
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("model serialises"));
}

impl From<cli::LayerArg> for Layer {
    fn from(l: cli::LayerArg) -> Layer {
        match l {
            cli::LayerArg::Raw => Layer::Raw,
            cli::LayerArg::Refined => Layer::Refined,
            cli::LayerArg::Curated => Layer::Curated,
        }
    }
}
