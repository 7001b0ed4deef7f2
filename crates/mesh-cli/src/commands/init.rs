//! `mesh init`: a new domain repository.

use std::path::Path;
use std::process::{Command, Stdio};

use mesh_domain::scaffold;

use crate::cli::InitArgs;
use crate::commands::{env, render};
use crate::common::load;
use crate::exit::Failure;

pub fn run(a: InitArgs) -> Result<(), Failure> {
    let InitArgs {
        dir,
        name,
        abbr,
        region,
        accounts,
        github_repo,
    } = a;
    let name = name.unwrap_or_else(|| {
        dir.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("domain")
            .to_ascii_lowercase()
    });
    let accounts = scaffold::parse_account_args(&accounts)?;
    let files = scaffold::init_domain(&dir, &name, &abbr, &region, &accounts, github_repo.as_deref())?;
    for f in files {
        println!("created {}", f.display());
    }
    let root = std::path::absolute(&dir)
        .map_err(|e| Failure::Runtime(format!("`{}`: cannot resolve it: {e}", dir.display())))?;
    let domain = load(Some(&root))?;
    let env_file = env::write_dotenv(&root, &domain, mesh_domain::Env::Local, false)?;
    println!("created {}", env_file.display());
    git_init(&root);
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
        let workflows = mesh_infra::workflows::render(&domain, &render::mesh_source(&root))?;
        render::write_workflows(&root, &workflows)?;
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

/// A domain is one repository: `git init` its folder, unless it is inside a repository already
/// (a domain kept in a monorepo) or git is not installed, each said in a note. Not a failure:
/// the domain is complete without it.
fn git_init(dir: &Path) {
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    };
    let mut inside = Command::new("git");
    inside.arg("-C").arg(dir).args(["rev-parse", "--is-inside-work-tree"]);
    quiet(&mut inside);
    match inside.status() {
        Err(_) => println!(
            "note: git was not found, so {} is not a repository yet; run `git init` there",
            dir.display()
        ),
        Ok(s) if s.success() => println!(
            "note: {} is inside a git repository already; no `git init`",
            dir.display()
        ),
        Ok(_) => {
            let mut init = Command::new("git");
            init.args(["init", "-q"]).arg(dir);
            quiet(&mut init);
            match init.status() {
                Ok(s) if s.success() => println!("initialized a git repository in {} (git init)", dir.display()),
                _ => println!("note: `git init` failed in {}; run it there by hand", dir.display()),
            }
        }
    }
}
