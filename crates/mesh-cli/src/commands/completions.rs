//! `mesh completions`: the shell completion script.

use crate::cli::Cli;

pub fn run(shell: clap_complete::Shell) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "mesh", &mut std::io::stdout());
}
