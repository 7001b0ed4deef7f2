//! The meshkit runtime: what the seed's Python `core` package does (session, config, io,
//! iceberg, logging), for local runs on an embedded engine and for the cloud.

pub mod artifacts;
pub mod checks;
pub mod config;
pub mod dag;
pub mod engine;
pub mod job;
pub mod layout;
pub mod logging;
pub mod optimize;
pub mod pipeline;
pub mod portable;
pub mod raw;
pub mod record;
pub mod report;
pub mod sample;
pub mod session;
