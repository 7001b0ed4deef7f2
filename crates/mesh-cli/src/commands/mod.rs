//! One module per command (or command group); `main` dispatches to them.

pub mod bootstrap;
pub mod build;
pub mod check;
pub mod completions;
pub mod config;
pub mod deploy;
pub mod describe;
pub mod env;
pub mod init;
pub mod names;
pub mod new;
pub mod optimize;
pub mod pins;
pub mod plan;
pub mod products;
pub mod pull;
pub mod render;
pub mod report;
pub mod run;
pub mod runs;
pub mod sample_data;
pub mod sql;
pub mod start;
pub mod table;
pub mod validate;
