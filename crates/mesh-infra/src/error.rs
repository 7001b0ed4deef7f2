use std::path::PathBuf;

use mesh_domain::Env;

/// Errors of the infrastructure generator. Each names the file or field and the fix.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("domain.json: aws_accounts.{env} is missing; add the 12-digit AWS account id of the `{env}` environment (policies and ARNs need it)")]
    MissingAccount { env: Env },
    #[error("`{env}` has no cloud infrastructure; use --env dev, int or prod")]
    NotCloud { env: Env },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid IAM policy document: {message}; re-render it with `mesh render`")]
    BadPolicy { path: PathBuf, message: String },
    #[error("{path}: the policy of role `{role}` is missing; run `mesh render` to write it")]
    MissingPolicy { path: PathBuf, role: String },
    #[error("{path}: the {what} that shares data products is missing; run `mesh render` to write it")]
    MissingResourcePolicy { path: PathBuf, what: String },
    #[error("IAM evaluation of `{action}` on `{resource}` failed: {message}")]
    Evaluation {
        action: String,
        resource: String,
        message: String,
    },
}

impl InfraError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> InfraError {
        InfraError::Io {
            path: path.into(),
            source,
        }
    }
}
