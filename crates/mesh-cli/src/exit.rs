//! Exit codes: 0 success, 1 a runtime failure, 2 invalid input or usage (clap uses 2 too).

use std::process::ExitCode;

pub enum Failure {
    /// The user's input is wrong: files, fields or arguments. Exit 2.
    Invalid(String),
    /// Something failed while doing valid work. Exit 1.
    Runtime(String),
}

impl Failure {
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Invalid(msg) => {
                eprintln!("{msg}");
                ExitCode::from(2)
            }
            Failure::Runtime(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(1)
            }
        }
    }
}
