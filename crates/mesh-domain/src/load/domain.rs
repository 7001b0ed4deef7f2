//! `domain.json`: the domain's name and code, region, tool versions, AWS accounts and
//! GitHub repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::unchecked::UncheckedDomain;
use super::{read, FileCx, DOMAIN_FILE};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::env::Env;
use crate::ident::DomainAbbr;
use crate::model::{Domain, Versions};
use crate::source::SourceMap;

/// Glue versions meshkit can deploy, with the Python each one runs.
pub const GLUE_VERSIONS: [(&str, &str); 2] = [("4.0", "3.10"), ("5.0", "3.11")];

/// Reads and checks `domain.json`; the domain it returns has no projects yet.
pub(super) fn load_header(root: &Path, diags: &mut Diagnostics) -> Option<Domain> {
    let path = root.join(DOMAIN_FILE);
    if !path.is_file() {
        diags.push(
            Diagnostic::new(DOMAIN_FILE, "", format!("no {DOMAIN_FILE} in `{}`", root.display()))
                .with_help("run `mesh init DIR` to create a domain, or pass `--root` pointing at one"),
        );
        return None;
    }
    let text = read(root, &path, diags)?;
    let domain: UncheckedDomain = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; we print the line ourselves.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let help = if msg.starts_with("unknown field") {
                "remove the field; domain.json accepts domain_name, domain_abbr, aws_region, glue_version, python_version, terraform_version, rust_toolchain, aws_accounts, github_repository"
            } else if msg.starts_with("missing field") {
                "add the field; see README.md, section domain.json"
            } else {
                "fix the JSON syntax (a missing comma or quote is the usual cause)"
            };
            diags.push(
                Diagnostic::new(DOMAIN_FILE, "", msg)
                    .at_line(Some(e.line()))
                    .with_help(help),
            );
            return None;
        }
    };
    let mut cx = FileCx {
        file: PathBuf::from(DOMAIN_FILE),
        map: SourceMap::json(&text),
        diags,
    };
    let before = cx.diags.len();

    let name = domain.domain_name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        cx.err_help(
            "domain_name",
            format!("`{}` is not a valid domain name", domain.domain_name),
            "use 1 to 64 lowercase letters, digits, `-` or `_`, e.g. `finance01`",
        );
    }
    let abbr = match DomainAbbr::parse(&domain.domain_abbr) {
        Ok(a) => Some(a),
        Err(e) => {
            cx.err_help(
                "domain_abbr",
                e.to_string(),
                "pick a short code such as `f01`; it prefixes every AWS name",
            );
            None
        }
    };
    if !valid_region(&domain.aws_region) {
        cx.err_help(
            "aws_region",
            format!("`{}` is not an AWS region", domain.aws_region),
            "use a region code such as `eu-west-1` or `us-east-1`",
        );
    }
    let glue = domain.glue_version.clone().unwrap_or_else(|| "5.0".into());
    let python = match GLUE_VERSIONS.iter().find(|(g, _)| *g == glue) {
        None => {
            cx.err_help(
                "glue_version",
                format!("Glue version `{glue}` is not supported"),
                "use `5.0` (Spark 3.5, Python 3.11) or `4.0` (Spark 3.3, Python 3.10)",
            );
            domain.python_version.clone().unwrap_or_default()
        }
        Some((_, py)) => match &domain.python_version {
            Some(p) if p != py => {
                cx.err_help(
                    "python_version",
                    format!("Glue {glue} runs Python {py}, not {p}"),
                    format!("set `python_version` to `{py}` or remove it"),
                );
                p.clone()
            }
            _ => py.to_string(),
        },
    };
    let terraform = domain.terraform_version.clone().unwrap_or_else(|| "1.9.8".into());
    if !is_version(&terraform, 3) {
        cx.err_help(
            "terraform_version",
            format!("`{terraform}` is not a version"),
            "use MAJOR.MINOR.PATCH, e.g. `1.9.8`",
        );
    }
    let rust = domain.rust_toolchain.clone().unwrap_or_else(|| "1.95".into());
    if !is_version(&rust, 2) && !is_version(&rust, 3) {
        cx.err_help(
            "rust_toolchain",
            format!("`{rust}` is not a toolchain version"),
            "use e.g. `1.95`",
        );
    }
    let mut accounts = BTreeMap::new();
    for (env, id) in &domain.aws_accounts {
        match env.parse::<Env>() {
            Ok(e) if e.is_cloud() => {
                if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                    cx.err_help(
                        format!("aws_accounts.{env}"),
                        format!("`{id}` is not an AWS account id"),
                        "account ids are 12 digits, quoted",
                    );
                }
                accounts.insert(e, id.clone());
            }
            _ => cx.err_help(
                "aws_accounts",
                format!("`{env}` is not a cloud environment"),
                "use the keys dev, int and prod (local has no account)",
            ),
        }
    }
    if let Some(repo) = &domain.github_repository {
        if let Err(why) = check_github_repository(repo) {
            cx.err_help(
                "github_repository",
                format!("`{repo}` is not a GitHub repository: {why}"),
                "use `owner/name`, e.g. `acme/finance01-domain`",
            );
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    Some(Domain {
        name,
        abbr: abbr?,
        region: domain.aws_region,
        versions: Versions {
            glue,
            python,
            terraform,
            rust,
        },
        accounts,
        github_repository: domain.github_repository,
        projects: Vec::new(),
    })
}

/// GitHub's rules: an owner of 1–39 letters, digits or inner single hyphens; a repository name
/// of 1–100 letters, digits, `-`, `_` or `.`, not `.` or `..`. The name ends up in an IAM trust
/// condition, so nothing else (no wildcard) may pass.
pub fn check_github_repository(repo: &str) -> Result<(), &'static str> {
    let Some((owner, name)) = repo.split_once('/') else {
        return Err("it has no `/` between owner and name");
    };
    if owner.is_empty()
        || owner.len() > 39
        || owner.starts_with('-')
        || owner.ends_with('-')
        || owner.contains("--")
        || !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err("the owner must be 1 to 39 letters, digits or single inner hyphens");
    }
    if name.is_empty()
        || name.len() > 100
        || name == "."
        || name == ".."
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err("the name must be 1 to 100 letters, digits, `-`, `_` or `.`");
    }
    Ok(())
}

fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn is_version(v: &str, parts: usize) -> bool {
    let ps: Vec<&str> = v.split('.').collect();
    ps.len() == parts
        && ps
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_repositories_are_owner_slash_name_and_nothing_wider() {
        for ok in ["acme/finance01", "a/b", "Acme-Corp/repo.name_2", "x/.github"] {
            assert_eq!(check_github_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "acme",
            "acme/*",
            "*/*",
            "/repo",
            "acme/",
            "-acme/r",
            "ac--me/r",
            "acme/..",
            "acme/r/x",
            "acme/r:ref",
        ] {
            assert!(check_github_repository(bad).is_err(), "{bad}");
        }
    }
}
