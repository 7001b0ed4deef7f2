//! The meshkit runtime: what the seed's Python `core` package does (session, config, io,
//! iceberg, logging), for local runs on an embedded engine and for the cloud.

pub mod config;
pub mod dag;
pub mod layout;
pub mod logging;
pub mod record;
pub mod report;
pub mod sample;
