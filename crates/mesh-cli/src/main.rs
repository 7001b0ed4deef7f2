//! `mesh`: the meshkit command line. Thin by design: it parses arguments, calls the
//! libraries, prints, and maps failures to exit codes scripts can rely on. Each command lives
//! in its own module under `commands/`; this file only dispatches.

mod cli;
mod commands;
mod common;
mod exit;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use cli::{CheckCommand, Cli, Command, ConfigCommand, DeployCommand, StateCommand};
use commands::*;
use common::root_and_domain;
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
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let flag = cli.root.as_deref();
    match cli.command {
        Command::Validate { format, against } => validate::run(flag, format, against.as_deref()),
        Command::Names { env, project, format } => names::run(flag, env, project, format),
        Command::Describe { table, format } => describe::run(flag, table, format),
        Command::Products { env, format } => {
            let (root, domain) = root_and_domain(flag)?;
            products::run(&root, &domain, env, format)
        }
        Command::Pull { format } => {
            let (root, domain) = root_and_domain(flag)?;
            pull::run(&root, &domain, format)
        }
        Command::Run(args) => {
            let (root, domain) = root_and_domain(flag)?;
            run::run(&root, &domain, args)
        }
        Command::Sql { query, format } => {
            let (root, domain) = root_and_domain(flag)?;
            sql::run(&root, &domain, &query, format)
        }
        Command::Table(t) => {
            let (root, domain) = root_and_domain(flag)?;
            table::run(&root, &domain, t)
        }
        Command::Plan {
            env,
            against,
            format,
            check,
        } => {
            let (root, domain) = root_and_domain(flag)?;
            plan::run(&root, &domain, env, against, format, check)
        }
        Command::Apply { env, dry_run, format } => {
            let (root, domain) = root_and_domain(flag)?;
            plan::apply(&root, &domain, env, dry_run, format)
        }
        Command::State(StateCommand::Show { job, env, format }) => {
            let (root, domain) = root_and_domain(flag)?;
            plan::state_show(&root, &domain, &job, env, format)
        }
        Command::State(StateCommand::Reset { job, env, format }) => {
            let (root, domain) = root_and_domain(flag)?;
            plan::state_reset(&root, &domain, &job, env, format)
        }
        Command::SampleData { rows, seed } => {
            let (root, domain) = root_and_domain(flag)?;
            sample_data::run(&root, &domain, rows, seed)
        }
        Command::Config(ConfigCommand::Show { env, format }) => {
            let (root, domain) = root_and_domain(flag)?;
            config::show(&root, &domain, env, format)
        }
        Command::Runs { limit, format } => {
            let (root, _) = root_and_domain(flag)?;
            runs::run(&root, limit, format)
        }
        Command::Report { run, out } => {
            let (root, domain) = root_and_domain(flag)?;
            report::run(&root, &domain, run.as_deref(), out)
        }
        Command::Init(args) => init::run(args),
        Command::New(what) => new::run(flag, what),
        Command::Optimize(args) => {
            let (root, domain) = root_and_domain(flag)?;
            optimize::run(&root, &domain, args)
        }
        Command::Render { env, out, check } => {
            let (root, domain) = root_and_domain(flag)?;
            render::run(&root, &domain, env, out, check)
        }
        Command::Check(CheckCommand::Iam { env, infra }) => {
            let (root, domain) = root_and_domain(flag)?;
            check::iam(&root, &domain, env, infra)
        }
        Command::Build { env, out, format } => {
            let (root, domain) = root_and_domain(flag)?;
            build::run(&root, &domain, env.unwrap_or(mesh_domain::Env::Local), out, format)
        }
        Command::Env { env: e, force, stdout } => {
            let (root, domain) = root_and_domain(flag)?;
            env::run(&root, &domain, e, force, stdout)
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
            let (root, domain) = root_and_domain(flag)?;
            start::run(
                &root,
                &domain,
                start::StartArgs {
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
            completions::run(shell);
            Ok(())
        }
        Command::Bootstrap {
            env,
            dry_run,
            import,
            terraform,
            format,
        } => {
            let (root, domain) = root_and_domain(flag)?;
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
            let (root, domain) = root_and_domain(flag)?;
            deploy::artifacts(&root, &domain, env, dry_run, yes, format)
        }
    }
}
