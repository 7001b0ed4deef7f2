//! Structured logs (`get_logger()`'s counterpart): text or JSON, level from the config.
//! Every line inside a job carries the run id and the job name through tracing spans.

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to stderr so stdout stays for command output.
/// `RUST_LOG`-style directives are accepted as the level (`info,mesh_core=debug`).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests, embedded use) keeps the first subscriber rather than failing.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_span_events(FmtSpan::NONE)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}
