//! The meshkit runtime: session, configuration, raw and table IO, jobs, checks, pipelines and logging,
//! for local runs on an embedded engine and for the cloud.
//!
//! `ENV` picks the runtime ([`engine::Engine::open`]); jobs, pipelines and raw IO are one code
//! path for all of them:
//!
//! | `ENV` | catalog | files |
//! |---|---|---|
//! | `local` (default) | SQLite, `.mesh/catalog.db` (Iceberg JDBC layout) | `.mesh/lake/{bucket}/{key}` |
//! | `dev`, `int`, `prod` | AWS Glue Data Catalog, databases `f01_raw`, `f01_refined`, `f01_curated` | S3: `s3://f01-raw-dev/pj01/sales_events/…`, `s3://f01-curated-dev/pj01/iceberg/daily_sales/…` |
//!
//! How the cloud runtime is configured (region, credentials, endpoints) is in [`cloud`].

pub mod artifacts;
pub mod backfill;
pub mod checks;
pub mod cloud;
pub mod config;
pub mod dag;
pub mod engine;
pub mod evolve;
pub mod fingerprint;
pub mod incremental;
pub mod inputs;
pub mod interval;
pub mod job;
pub mod jobstate;
pub mod layout;
pub mod logging;
pub mod memory_pool;
pub mod moves;
pub mod optimize;
pub mod params;
pub mod pipeline;
pub mod plan;
pub mod portable;
pub mod products;
pub mod raw;
pub mod raw_table;
pub mod record;
pub mod report;
pub mod retry;
pub mod sample;
pub mod select;
pub mod session;
pub mod sql_check;
pub mod sql_shape;
pub mod sql_tables;
pub mod start;
pub mod translate;

/// The table engine, for callers matching its errors (`mesh table check`, `register`).
pub use mesh_iceberg;
// Re-exported so the CLI names the same SDK types without depending on the SDK crates itself.
pub use aws_config;
pub use aws_sdk_sfn;
