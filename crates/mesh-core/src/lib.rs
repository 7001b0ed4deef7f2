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

// Grouped by concern; each module is also re-exported at the crate root under its own name
// (`mesh_core::plan`, `crate::raw`), the paths the rest of the workspace uses.
/// The engine a run opens and what configures it: the catalog and stores of `ENV`, the configuration and where each value comes from, the lake layout, DataFusion sessions and their memory pool, logs.
pub mod runtime {
    pub mod config;
    pub mod engine;
    pub mod layout;
    pub mod logging;
    pub mod memory_pool;
    pub mod session;
}
/// Reading inputs: raw CSV/JSON/Parquet files checked against the declared columns with the bad-row policy (whole reads and streamed scans), and registering a job's inputs in its session.
pub mod reading {
    pub mod inputs;
    pub mod raw;
    pub mod raw_table;
}
/// One job: its SQL run with Spark's functions and arithmetic, the result shaped to the output's declaration, checked, and committed; parameters; which failures are transient.
pub mod jobs {
    pub mod checks;
    pub mod job;
    pub mod params;
    pub mod retry;
    pub mod translate;
    pub mod type_names;
}
/// SQL read without running it: what only one engine can run, the result's shape against the manifest, the extra tables `mesh sql` knows.
pub mod sql {
    pub mod portable;
    pub mod sql_check;
    pub mod sql_shape;
    pub mod sql_tables;
}
/// Pipelines: the DAG of steps, selection, running steps with retries, run records and the HTML report.
pub mod pipelines {
    pub mod dag;
    pub mod pipeline;
    pub mod record;
    pub mod report;
    pub mod select;
}
/// State that moves with the calendar: intervals of time-range jobs, incremental bookmarks, backfills, and the operator's view of a job's state.
pub mod daily {
    pub mod backfill;
    pub mod incremental;
    pub mod interval;
    pub mod jobstate;
}
/// Model changes: the plan against an environment or a git ref, the classification rules, the evolution a write applies, job fingerprints, declared moves and retirements.
pub mod changes {
    pub mod classify;
    pub mod evolve;
    pub mod fingerprint;
    pub mod moves;
    pub mod plan;
}
/// The AWS side: SDK configuration, the deployable artifacts (job specs, SQL, the Glue runner), starting deployed pipelines.
pub mod aws {
    pub mod artifacts;
    pub mod cloud;
    pub mod start;
}
pub mod optimize;
pub mod products;
pub mod sample;

pub use aws::{artifacts, cloud, start};
pub use changes::{classify, evolve, fingerprint, moves, plan};
pub use daily::{backfill, incremental, interval, jobstate};
pub use jobs::{checks, job, params, retry, translate, type_names};
pub use pipelines::{dag, pipeline, record, report, select};
pub use reading::{inputs, raw, raw_table};
pub use runtime::{config, engine, layout, logging, memory_pool, session};
pub use sql::{portable, sql_check, sql_shape, sql_tables};

/// The table engine, for callers matching its errors (`mesh table check`, `register`).
pub use mesh_iceberg;
// Re-exported so the CLI names the same SDK types without depending on the SDK crates itself.
pub use aws_config;
pub use aws_sdk_sfn;
