//! Exit codes: 0 success, 1 a runtime failure, 2 invalid input or usage (clap uses 2 too).
//!
//! Each library error the CLI meets becomes a `Failure` here, in one place per type: which
//! variants mean "the user's files or arguments are wrong" (exit 2) and which "valid work
//! failed" (exit 1). Commands use `?`; messages carry no `error:` prefix, `report` adds it.

use std::process::ExitCode;

use mesh_core::mesh_iceberg;
use mesh_domain::diagnostic::Diagnostics;

pub enum Failure {
    /// The user's input is wrong: files, fields or arguments. Exit 2.
    Invalid(String),
    /// Something failed while doing valid work. Exit 1.
    Runtime(String),
    /// Problems found in the domain's files: every one is already its own `error:` line
    /// (mesh_domain::Diagnostics), so nothing is prefixed. Exit 2.
    Problems(String),
}

impl Failure {
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Invalid(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(2)
            }
            Failure::Runtime(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(1)
            }
            Failure::Problems(msg) => {
                eprintln!("{msg}");
                ExitCode::from(2)
            }
        }
    }

    fn invalid(e: impl std::fmt::Display) -> Failure {
        Failure::Invalid(e.to_string())
    }

    fn runtime(e: impl std::fmt::Display) -> Failure {
        Failure::Runtime(e.to_string())
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Failure {
        Failure::Problems(d.to_string())
    }
}

impl From<mesh_domain::scaffold::ScaffoldError> for Failure {
    fn from(e: mesh_domain::scaffold::ScaffoldError) -> Failure {
        use mesh_domain::scaffold::ScaffoldError::*;
        match e {
            // A rollback that could not undo everything is a fault of the machine (files
            // the process cannot write), like an IO error.
            Io { .. } | RollbackIncomplete { .. } => Failure::runtime(e),
            Invalid(_) | Rejected { .. } => Failure::invalid(e),
        }
    }
}

impl From<mesh_core::config::ConfigError> for Failure {
    fn from(e: mesh_core::config::ConfigError) -> Failure {
        Failure::invalid(e)
    }
}

impl From<mesh_core::record::RecordError> for Failure {
    fn from(e: mesh_core::record::RecordError) -> Failure {
        match e {
            mesh_core::record::RecordError::Write { .. } => Failure::runtime(e),
            // Reading: the run id or the file the user pointed at is wrong.
            _ => Failure::invalid(e),
        }
    }
}

impl From<mesh_domain::UnknownTable> for Failure {
    fn from(e: mesh_domain::UnknownTable) -> Failure {
        Failure::invalid(e)
    }
}

impl From<mesh_core::pipeline::PlanError> for Failure {
    fn from(e: mesh_core::pipeline::PlanError) -> Failure {
        Failure::invalid(e)
    }
}

impl From<mesh_core::backfill::BackfillError> for Failure {
    fn from(e: mesh_core::backfill::BackfillError) -> Failure {
        match e {
            mesh_core::backfill::BackfillError::State { .. } => Failure::runtime(e),
            _ => Failure::invalid(e),
        }
    }
}

impl From<mesh_core::start::StartError> for Failure {
    fn from(e: mesh_core::start::StartError) -> Failure {
        use mesh_core::start::StartError::*;
        match e {
            Aws { .. } | Timeout { .. } => Failure::runtime(e),
            _ => Failure::invalid(e),
        }
    }
}

impl From<mesh_core::optimize::OptimizeError> for Failure {
    fn from(e: mesh_core::optimize::OptimizeError) -> Failure {
        use mesh_core::optimize::OptimizeError::*;
        match e {
            Engine(e) => e.into(),
            Unsafe(_) | NotIceberg { .. } => Failure::invalid(e),
        }
    }
}

impl From<mesh_core::artifacts::ArtifactError> for Failure {
    fn from(e: mesh_core::artifacts::ArtifactError) -> Failure {
        match e {
            mesh_core::artifacts::ArtifactError::ReadSql { .. } => Failure::invalid(e),
            _ => Failure::runtime(e),
        }
    }
}

impl From<mesh_core::sample::SampleError> for Failure {
    fn from(e: mesh_core::sample::SampleError) -> Failure {
        Failure::runtime(e)
    }
}

impl From<mesh_core::raw::RawError> for Failure {
    fn from(e: mesh_core::raw::RawError) -> Failure {
        Failure::runtime(e)
    }
}

impl From<mesh_iceberg::Error> for Failure {
    fn from(e: mesh_iceberg::Error) -> Failure {
        match e {
            // A table that does not exist yet is a usage problem; a damaged one is named and
            // exits 1, never "run the job first".
            mesh_iceberg::Error::TableNotFound { .. } => {
                Failure::Invalid(format!("{e}\n  help: run the job that writes it first (mesh run)"))
            }
            mesh_iceberg::Error::Invalid { .. } | mesh_iceberg::Error::DuplicateKey { .. } => Failure::invalid(e),
            _ => Failure::runtime(e),
        }
    }
}

impl From<mesh_core::inputs::RegisterError> for Failure {
    fn from(e: mesh_core::inputs::RegisterError) -> Failure {
        match e {
            mesh_core::inputs::RegisterError::Engine(e) => Failure::from(*e),
            e @ mesh_core::inputs::RegisterError::NotWritten { .. } => Failure::invalid(e),
            other => Failure::runtime(other),
        }
    }
}

impl From<mesh_core::session::SessionError> for Failure {
    fn from(e: mesh_core::session::SessionError) -> Failure {
        Failure::runtime(e)
    }
}

impl From<mesh_infra::InfraError> for Failure {
    fn from(e: mesh_infra::InfraError) -> Failure {
        match e {
            mesh_infra::InfraError::Io { .. } | mesh_infra::InfraError::Evaluation { .. } => Failure::runtime(e),
            _ => Failure::invalid(e),
        }
    }
}

impl From<mesh_infra::bootstrap::BootstrapError> for Failure {
    fn from(e: mesh_infra::bootstrap::BootstrapError) -> Failure {
        use mesh_infra::bootstrap::BootstrapError::*;
        match e {
            WrongAccount { .. } | NoTerraformRoot { .. } => Failure::invalid(e),
            _ => Failure::runtime(e),
        }
    }
}

/// A query the planner refuses (syntax, unknown table or column, types) is the user's; an
/// error while reading the data is not.
impl From<datafusion::error::DataFusionError> for Failure {
    fn from(e: datafusion::error::DataFusionError) -> Failure {
        use datafusion::error::DataFusionError::*;
        // In the manifest's type names (`string`, not Arrow's `Utf8`).
        let text = mesh_core::type_names::in_message(&e.to_string());
        match e.find_root() {
            SQL(..) | Plan(_) | SchemaError(..) => Failure::Invalid(text),
            _ => Failure::Runtime(text),
        }
    }
}

impl From<datafusion::arrow::error::ArrowError> for Failure {
    fn from(e: datafusion::arrow::error::ArrowError) -> Failure {
        Failure::runtime(e)
    }
}
