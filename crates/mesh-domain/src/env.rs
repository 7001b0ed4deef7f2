//! The four environments. `ENV` alone selects engine, storage, catalog and log level.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Env {
    Local,
    Dev,
    Int,
    Prod,
}

impl Env {
    pub const ALL: [Env; 4] = [Env::Local, Env::Dev, Env::Int, Env::Prod];
    /// Environments that have an AWS account and generated infrastructure.
    pub const CLOUD: [Env; 3] = [Env::Dev, Env::Int, Env::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Env::Local => "local",
            Env::Dev => "dev",
            Env::Int => "int",
            Env::Prod => "prod",
        }
    }

    pub fn is_cloud(self) -> bool {
        self != Env::Local
    }

    /// The git branch that deploys to this environment.
    pub fn branch(self) -> Option<&'static str> {
        match self {
            Env::Local => None,
            Env::Dev => Some("dev"),
            Env::Int => Some("int"),
            Env::Prod => Some("main"),
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an environment; use one of local, dev, int, prod")]
pub struct UnknownEnv(pub String);

impl std::str::FromStr for Env {
    type Err = UnknownEnv;
    fn from_str(s: &str) -> Result<Env, UnknownEnv> {
        Env::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEnv(s.to_string()))
    }
}
